package dev.taskgroup.jcstress;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Small helpers shared by the race tests: bounded waits and short names for what was thrown. */
final class Race {
  /** No wait in these tests lasts longer: past it something hung, and the test says so. */
  static final long BOUND_NANOS = TimeUnit.SECONDS.toNanos(10);

  private Race() {}

  /**
   * Spins until {@code condition} holds, at most {@link #BOUND_NANOS}.
   *
   * @return whether it held (false: gave up)
   */
  static boolean await(BooleanSupplier condition) {
    long start = System.nanoTime();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - start > BOUND_NANOS) {
        return false;
      }
      Thread.onSpinWait();
    }
    return true;
  }

  /**
   * Blocks until {@code latch} opens, at most {@link #BOUND_NANOS}, whatever interrupts arrive (the
   * status is kept for the caller): for a thread that only waits, so that it leaves the CPU to the
   * threads that race (a child's virtual thread needs a carrier).
   *
   * @return whether it opened (false: gave up)
   */
  static boolean awaitLatch(CountDownLatch latch) {
    long deadline = System.nanoTime() + BOUND_NANOS;
    boolean interrupted = false;
    try {
      for (; ; ) {
        try {
          return latch.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Busy-waits for about {@code nanos}, without any checkpoint or interruptible call. */
  static void spinFor(long nanos) {
    long start = System.nanoTime();
    while (System.nanoTime() - start < nanos) {
      Thread.onSpinWait();
    }
  }

  /** The simple class name of {@code t}, for an outcome label. */
  static String name(Throwable t) {
    return t.getClass().getSimpleName();
  }

  /** A failure that is not a cancellation; no stack trace, so a test instance stays cheap. */
  static final class Boom extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Boom() {
      super("boom", null, false, false);
    }
  }
}
