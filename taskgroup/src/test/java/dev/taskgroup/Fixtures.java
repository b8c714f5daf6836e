package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/** Shared test helpers: thread factories that record what they make, and the item-19 checks. */
final class Fixtures {
  private Fixtures() {}

  /** The two kinds of thread a group may run children on, for parameterised tests. */
  static Stream<Arguments> threadKinds() {
    return Stream.of(Arguments.of(ThreadKind.VIRTUAL), Arguments.of(ThreadKind.PLATFORM));
  }

  enum ThreadKind {
    VIRTUAL,
    PLATFORM;

    Thread start(Runnable r) {
      return this == VIRTUAL ? Thread.ofVirtual().start(r) : Thread.ofPlatform().start(r);
    }

    ThreadFactory factory() {
      return this == VIRTUAL ? Thread.ofVirtual().factory() : Thread.ofPlatform().factory();
    }
  }

  /** A thread factory that keeps every thread it made, to check none outlives its group. */
  static final class Tracking implements ThreadFactory {
    private final ThreadFactory delegate;
    final Queue<Thread> threads = new ConcurrentLinkedQueue<>();

    Tracking(ThreadKind kind) {
      this.delegate = kind.factory();
    }

    @Override
    public Thread newThread(Runnable r) {
      Thread t = delegate.newThread(r);
      threads.add(t);
      return t;
    }

    /**
     * Nothing of a group outlives its run, checked right after run returned: every child thread has
     * run its last user code and terminates on its own at once, and the caller's interrupt status
     * is clear.
     */
    void assertAllDone() throws InterruptedException {
      assertThat(Thread.currentThread().isInterrupted())
          .as("interrupt status left on the caller")
          .isFalse();
      for (Thread t : threads) {
        assertThat(t.join(Duration.ofSeconds(5)))
            .as("child thread %s terminates at once after run", t)
            .isTrue();
      }
    }
  }

  /** A group whose children run on {@code kind} threads, tracked. */
  static TaskGroup group(String name, Tracking tracking) {
    return TaskGroup.builder().name(name).threadFactory(tracking).build();
  }

  /**
   * A child that counts {@code started} down, blocks until it is cancelled (or a minute passes),
   * and marks {@code finished} however it ends: the usual "sibling that a cancellation must reach".
   */
  static Body blockedUntilCancelled(CountDownLatch started, Finished finished) {
    return () -> {
      started.countDown();
      try {
        Thread.sleep(60_000);
      } finally {
        finished.mark();
      }
    };
  }

  /** Parks until interrupted, then returns (a child that ends quietly when cancelled). */
  static void parkUntilInterrupted() {
    while (!Thread.currentThread().isInterrupted()) {
      LockSupport.park();
    }
  }

  /** An ordered trail of events from any thread, for asserting exact sequences. */
  static final class Trail {
    private final Queue<String> events = new ConcurrentLinkedQueue<>();

    void add(String event) {
      events.add(event);
    }

    List<String> events() {
      return List.copyOf(events);
    }
  }

  /** A counter for children that reached their end (item 19: nothing still running). */
  static final class Finished {
    private final AtomicInteger count = new AtomicInteger();

    void mark() {
      count.incrementAndGet();
    }

    int count() {
      return count.get();
    }
  }

  /** The directory or jar a class was loaded from: the library's classes, or the tests'. */
  static java.nio.file.Path locationOf(Class<?> c) throws java.net.URISyntaxException {
    return java.nio.file.Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
  }

  /**
   * Runs {@code main} in a JVM of its own (this JVM's java), with the library and the test classes
   * on its class path and {@code options} before the class name ({@code args} after it); asserts
   * that it exits with 0 and returns what it printed, stripped.
   */
  static String runJvm(List<String> options, Class<?> main, String... args) throws Exception {
    String classPath = locationOf(TaskGroup.class) + java.io.File.pathSeparator + locationOf(main);
    return runJvm(options, classPath, main, args);
  }

  /** As {@link #runJvm(List, Class, String...)}, with {@code classPath} as the class path. */
  static String runJvm(List<String> options, String classPath, Class<?> main, String... args)
      throws Exception {
    List<String> command = new java.util.ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElseThrow());
    command.addAll(options);
    command.addAll(List.of("-cp", classPath, main.getName()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes()).strip();
    assertThat(p.waitFor()).as(out).isZero();
    return out;
  }
}
