package dev.taskgroup.internal;

import dev.taskgroup.internal.Deadlines.Deadline;
import dev.taskgroup.internal.clock.LibraryClock;
import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;

/**
 * The one thread that fires the deadlines of {@link Deadlines} on the system clock: it parks until
 * the earliest entry of the heap is due (without a time limit when there is none, or while a test
 * clock is installed, which fires them itself), takes the expired entries out in batches under
 * Deadlines.LOCK, marks every scope of a batch cancelled and then delivers each (see the overview
 * of Deadlines). Whoever puts a new earliest entry at the top of the heap wakes it ({@link #wake}).
 *
 * <p>`timer` is written once, under Deadlines.LOCK, and read under it.
 */
final class DeadlineTimer {
  /** Expired deadlines taken from the heap under one hold of the lock. */
  private static final int FIRE_BATCH = 64;

  /** The timer thread, started once; under Deadlines.LOCK. */
  private static Thread timer;

  private DeadlineTimer() {}

  /** A new earliest deadline: starts the timer on first use, and wakes it; under Deadlines.LOCK. */
  static void wake() {
    ensureStarted();
    LockSupport.unpark(timer);
  }

  /** Wakes the timer, if it has started, to re-read the clock (a test clock was closed). */
  static void wakeIfStarted() {
    Deadlines.LOCK.lock();
    try {
      if (timer != null) {
        LockSupport.unpark(timer);
      }
    } finally {
      Deadlines.LOCK.unlock();
    }
  }

  /**
   * The timer is a virtual thread. Measured with 10 000 deadlines spread over a second on 2 cores:
   * as a platform thread it fired late (median 0.1-3 ms, p99 5-16 ms), because each interrupt it
   * delivered woke a carrier thread that then pre-empted the timer on its core. A virtual timer
   * sleeps on the JDK's own timer, which fires on the carriers (as Thread.sleep does), and the
   * interrupts it delivers are pushed to its carrier's own queue.
   *
   * <p>Made by whichever thread first sets a deadline, it lives as long as the JVM: it keeps none
   * of that thread's context (an inheritable thread local holding a request, a web application's
   * context class loader), as the JDK's own system threads (InnocuousThread) keep none.
   */
  private static void ensureStarted() {
    if (timer == null) {
      timer =
          Thread.ofVirtual()
              .name("taskgroup-deadlines")
              .inheritInheritableThreadLocals(false)
              .unstarted(DeadlineTimer::loop);
      timer.setContextClassLoader(ClassLoader.getSystemClassLoader());
      timer.start();
    }
  }

  private static void loop() {
    EnteredScope[] expired = new EnteredScope[FIRE_BATCH];
    for (; ; ) {
      int count = 0;
      long waitNanos = -1L;
      if (LibraryClock.testClockInstalled()) {
        LockSupport.park(
            Deadlines.class); // the test clock fires (Deadlines.fireDue); close wakes us
        continue;
      }
      Deadlines.LOCK.lock();
      try {
        long now = LibraryClock.nanoTime();
        long last = 0L;
        for (Deadline top; (top = Deadlines.HEAP.peek()) != null; ) {
          long left = top.nanos - now;
          if (left > 0L) {
            waitNanos = left;
            break;
          }
          // A full batch still takes every entry due at the same nanoTime as its last one: one
          // Instant on nested scopes is one nanoTime, and they must be marked in one batch.
          if (count >= FIRE_BATCH && top.nanos != last) {
            break;
          }
          Deadlines.HEAP.remove(top);
          if (count == expired.length) {
            expired = Arrays.copyOf(expired, count * 2);
          }
          last = top.nanos;
          expired[count++] = top.scope;
        }
      } finally {
        Deadlines.LOCK.unlock();
      }
      // Every scope of the batch is marked before any is delivered: scopes that expire together
      // (nested ones with one deadline) are all cancelled when their threads wake, and the
      // outermost absorbs, as when they are cancelled together by hand.
      for (int i = 0; i < count; i++) {
        try {
          if (!Deadlines.markExpired(expired[i])) {
            expired[i] = null; // cancelled before: nothing to deliver
          }
        } catch (Throwable t) {
          expired[i] = null;
          failed(t);
        }
      }
      for (int i = 0; i < count; i++) {
        if (expired[i] == null) {
          continue;
        }
        try {
          Deadlines.deliverExpired(expired[i]);
        } catch (Throwable t) {
          failed(t);
        }
        expired[i] = null;
      }
      if (count >= FIRE_BATCH) {
        if (expired.length > FIRE_BATCH) {
          expired = new EnteredScope[FIRE_BATCH]; // a burst at one instant keeps no big array
        }
        continue; // more may be due
      }
      if (waitNanos < 0L) {
        LockSupport.park(Deadlines.class);
      } else {
        LockSupport.parkNanos(Deadlines.class, waitNanos);
      }
    }
  }

  /** A bug (or an OutOfMemoryError) must not kill the one timer of the process. */
  private static void failed(Throwable t) {
    Uncaught.report(t);
  }
}
