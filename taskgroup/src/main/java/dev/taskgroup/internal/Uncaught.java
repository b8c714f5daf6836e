package dev.taskgroup.internal;

/**
 * Reports a throwable that no caller of the library can be handed: one thrown in a thread of the
 * library's own (the deadline timer, the re-delivery watcher), or by another thread's code while
 * the library interrupts that thread (a channel whose close fails, see {@link
 * ThreadState#interruptOther}). It goes to the default uncaught-exception handler, as if a thread
 * had died of it, or is printed when none is set; the thread that met it carries on. What the
 * handler throws is ignored, as the JVM ignores it for a thread that died.
 *
 * <p>A library thread (LibraryThreads: the deadline timer and its backstop, the re-delivery
 * watcher) serves every thread of the process: it hands the report to a new thread
 * ("taskgroup-uncaught"), which tells the handler the library thread's name, so that a handler that
 * blocks (logging to a full disk, behind a lock) holds up only its report, not every later deadline
 * or re-delivery. Any other thread reports itself, after the work that met the throwable.
 */
final class Uncaught {
  private Uncaught() {}

  static void report(Throwable t) {
    Thread on = Thread.currentThread();
    if (LibraryThreads.isCurrent()) {
      try {
        LibraryThreads.startVirtual("taskgroup-uncaught", () -> reportAs(on, t));
        return;
      } catch (Throwable cannotStart) {
        t.addSuppressed(cannotStart); // (out of memory) reported here, then
      }
    }
    reportAs(on, t);
  }

  private static void reportAs(Thread on, Throwable t) {
    try {
      Thread.UncaughtExceptionHandler h = Thread.getDefaultUncaughtExceptionHandler();
      if (h != null) {
        h.uncaughtException(on, t);
      } else {
        t.printStackTrace();
      }
    } catch (Throwable ignored) {
      // Ignored: nobody is left to hand it to.
    }
  }
}
