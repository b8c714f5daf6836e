package dev.taskgroup.internal;

import java.util.concurrent.TimeUnit;

/**
 * The library's own background threads: the deadline timer (virtual) and its backstop, the
 * re-delivery watcher and the JMX bean's keeper (platform daemons). Each starts on demand, when
 * there is work for it, and ends once it has had nothing to do for {@link #keepAliveNanos} (system
 * property {@code dev.taskgroup.keepAliveMillis}, default 60 000, read once): a thread's code holds
 * the class loader that loaded the library, so a thread that lived as long as the JVM kept that
 * loader, and everything it loaded, after the application that used it was dropped (a web
 * application redeployed in a server, a plugin reloaded). Each owner's overview says how its thread
 * ends without losing work that arrives while it does.
 *
 * <p>Made by whichever thread first needs them, they keep none of its context (an inheritable
 * thread local holding a request, a web application's context class loader), as the JDK's own
 * system threads (InnocuousThread) keep none.
 *
 * <p>Class loading. The starter makes the objects a thread's loop begins with (its pass, its
 * queues) and hands them over, so that their classes are loaded on the starting thread, while the
 * application that uses the library runs. A server may close the loader of an application the
 * moment its last request ends (URLClassLoader.close); a thread started by that request whose first
 * act was to load a class then died with a NoClassDefFoundError, printed to the console. The
 * classes they may need only later (LATER_NEEDS) are loaded with the first thread's start.
 */
final class LibraryThreads {
  private static volatile long keepAliveNanos =
      TimeUnit.MILLISECONDS.toNanos(
          Math.max(1L, Long.getLong("dev.taskgroup.keepAliveMillis", 60_000L)));

  private LibraryThreads() {}

  /** How long a library thread with nothing to do stays alive. */
  static long keepAliveNanos() {
    return keepAliveNanos;
  }

  /** For tests: sets how long a library thread with nothing to do stays alive. */
  static void setKeepAliveMillis(long millis) {
    keepAliveNanos = TimeUnit.MILLISECONDS.toNanos(Math.max(1L, millis));
  }

  /** Starts a daemon platform thread named {@code name} that runs {@code work}, without context. */
  static Thread startPlatform(String name, Runnable work) {
    return start(Thread.ofPlatform().daemon().name(name), work);
  }

  /** Starts a virtual thread named {@code name} that runs {@code work}, without context. */
  static Thread startVirtual(String name, Runnable work) {
    return start(Thread.ofVirtual().name(name), work);
  }

  /**
   * Classes the library's threads may need first at any later time (an error to report, a test
   * clock's helper, a stuck warning, a queue growing), loaded with the first thread's start; see
   * "Class loading" above.
   */
  private static final String[] LATER_NEEDS = {
    "Uncaught", "ClockedThreads", "StuckWarning", "DeadlineHeap", "WatchQueue", "Redelivery$Chunk"
  };

  private static volatile boolean preloaded;

  private static void preload() {
    ClassLoader loader = LibraryThreads.class.getClassLoader();
    for (String name : LATER_NEEDS) {
      try {
        Class.forName("dev.taskgroup.internal." + name, false, loader);
      } catch (ClassNotFoundException | LinkageError missing) {
        // left to the first use, as before
      }
    }
    preloaded = true;
  }

  private static Thread start(Thread.Builder builder, Runnable work) {
    if (!preloaded) {
      preload();
    }
    Thread t =
        builder
            .inheritInheritableThreadLocals(false)
            .unstarted(
                () -> {
                  OURS.set(Boolean.TRUE);
                  work.run();
                });
    t.setContextClassLoader(ClassLoader.getSystemClassLoader());
    t.start();
    return t;
  }

  /** Set on each of the library's own threads, for their whole life. */
  private static final ThreadLocal<Boolean> OURS = new ThreadLocal<>();

  /** Whether the calling thread is one of the library's own (see {@link Uncaught}). */
  static boolean isCurrent() {
    return OURS.get() != null;
  }
}
