package dev.taskgroup;

import dev.taskgroup.Fixtures.ThreadKind;
import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/**
 * Measuring helpers for the deadline, shield, re-delivery, hook and interrupt-order tests: run code
 * on a thread of a given kind and get back what it threw, wait for a condition without sleeping,
 * measure the heap after GC, and summarise delays.
 */
final class Probes {
  private Probes() {}

  /** Code run on a probe thread. */
  interface Action {
    void run() throws Exception;
  }

  /**
   * Runs {@code action} on a new thread of {@code kind}, waits for it (at most {@code max}) and
   * rethrows what it threw. A thread that does not finish in time is a failure that shows its
   * stack; it is then interrupted so it does not outlive the test.
   */
  static void onThread(ThreadKind kind, Duration max, Action action) throws Exception {
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread t =
        kind.start(
            () -> {
              try {
                action.run();
              } catch (Throwable e) {
                thrown.set(e);
              }
            });
    if (!t.join(max)) {
      StackTraceElement[] stack = t.getStackTrace();
      t.interrupt();
      throw new AssertionError(
          "thread "
              + t
              + " still running after "
              + max
              + " (stuck?) at:\n  "
              + String.join("\n  ", Arrays.stream(stack).map(String::valueOf).toList()));
    }
    Throwable e = thrown.get();
    if (e instanceof Exception ex) {
      throw ex;
    }
    if (e instanceof Error err) {
      throw err;
    }
  }

  /** {@link #onThread(ThreadKind, Duration, Action)} with 20 s to finish. */
  static void onThread(ThreadKind kind, Action action) throws Exception {
    onThread(kind, Duration.ofSeconds(20), action);
  }

  /** Waits (spinning politely, never sleeping) until {@code condition} holds, or fails. */
  static void awaitTrue(String what, Duration max, BooleanSupplier condition) {
    long until = System.nanoTime() + max.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - until > 0L) {
        throw new AssertionError("timed out after " + max + " waiting for: " + what);
      }
      Thread.yield();
    }
  }

  /** Waits until {@code t} is parked or blocked (WAITING / TIMED_WAITING), or fails. */
  static void awaitWaiting(Thread t, Duration max) {
    awaitTrue(
        t + " waiting",
        max,
        () -> {
          Thread.State s = t.getState();
          return s == Thread.State.WAITING || s == Thread.State.TIMED_WAITING;
        });
  }

  /**
   * Waits until {@code t} is blocked inside a socket read: a frame of the JDK's socket
   * implementation on its stack, and the thread parked (virtual) or in the native read (platform,
   * where the state stays RUNNABLE).
   */
  static void awaitInSocketRead(Thread t, Duration max) {
    awaitTrue(
        t + " blocked in a socket read",
        max,
        () -> {
          StackTraceElement[] stack = t.getStackTrace();
          boolean inSocket =
              Arrays.stream(stack)
                  .anyMatch(e -> e.getClassName().equals("sun.nio.ch.NioSocketImpl"));
          boolean blocked =
              t.getState() == Thread.State.WAITING
                  || (stack.length > 0 && stack[0].isNativeMethod());
          return inSocket && blocked;
        });
  }

  /** The heap in use after a full GC: the least of a few measurements, in bytes. */
  static long usedHeapAfterGc() throws InterruptedException {
    // One reading of the heap's use, not totalMemory() - freeMemory(): those are two readings,
    // and a heap that grows between them (a test allocating on other threads) made it negative.
    var heap = java.lang.management.ManagementFactory.getMemoryMXBean();
    long least = Long.MAX_VALUE;
    for (int i = 0; i < 5; i++) {
      System.gc();
      Thread.sleep(20); // lets reference processing finish; orders no threads
      least = Math.min(least, heap.getHeapMemoryUsage().getUsed());
    }
    return least;
  }

  /**
   * Collects until every reference is cleared or 10 s have passed (finished threads may still be
   * ending), and returns how many referents are still reachable.
   */
  static int awaitCleared(List<? extends WeakReference<?>> refs) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    int alive;
    do {
      throwOnEveryCarrier();
      System.gc();
      alive = (int) refs.stream().filter(r -> r.get() != null).count();
      if (alive == 0) {
        return 0;
      }
      Thread.sleep(20); // lets finished threads terminate between collections; orders none
    } while (System.nanoTime() < end);
    return alive;
  }

  /**
   * Throws and catches an exception on virtual threads across the carriers. HotSpot can keep the
   * last exception thrown on a carrier in that carrier's own state until another is thrown there
   * (seen about once in a thousand groups whose children fail, while the JIT recompiles the child's
   * path): a root outside the library that would make a retention check fail for the JVM's sake.
   * (Measured: the task and its thread were unreachable; one exception thrown on each carrier let
   * the failure go.)
   */
  private static void throwOnEveryCarrier() throws InterruptedException {
    int n = 4 * Runtime.getRuntime().availableProcessors();
    Thread[] threads = new Thread[n];
    for (int i = 0; i < n; i++) {
      threads[i] =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      throw new IllegalStateException("replaces a carrier's last exception");
                    } catch (IllegalStateException expected) {
                      // thrown only to be caught
                    }
                  });
    }
    for (Thread t : threads) {
      t.join();
    }
  }

  static double mib(long bytes) {
    return bytes / (1024.0 * 1024.0);
  }

  static long millis(long nanos) {
    return TimeUnit.NANOSECONDS.toMillis(nanos);
  }

  static double millisExact(long nanos) {
    return nanos / 1_000_000.0;
  }

  /** Median, p99 and max of {@code nanos}, as milliseconds, for printing. */
  static String summary(long[] nanos) {
    long[] s = nanos.clone();
    Arrays.sort(s);
    return String.format(
        "n=%d median=%.2f ms p99=%.2f ms max=%.2f ms",
        s.length,
        millisExact(percentile(s, 50)),
        millisExact(percentile(s, 99)),
        millisExact(s[s.length - 1]));
  }

  /** The {@code p}-th percentile (nearest rank) of sorted {@code s}. */
  static long percentile(long[] sorted, double p) {
    int rank = (int) Math.ceil(p / 100.0 * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
  }

  /**
   * The seed of a randomised test: the system property {@code property} if given (to replay), else
   * a fresh one. Every randomised test takes its seed here, and it is printed the same way for all
   * of them: {@code <what> seed=N (replay: -D<property>=N)}.
   */
  static long seed(String property, String what) {
    Long given = Long.getLong(property);
    long seed = given != null ? given : System.nanoTime() ^ Thread.currentThread().threadId();
    System.out.printf("%s seed=%d (replay: -D%s=%d)%n", what, seed, property, seed);
    return seed;
  }
}
