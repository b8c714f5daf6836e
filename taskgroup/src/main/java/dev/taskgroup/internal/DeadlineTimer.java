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
 * Its backstop ({@link DeadlineBackstop}) fires what it leaves overdue, with the same code ({@link
 * #firePass}).
 *
 * <p>`timer` is written and read under Deadlines.LOCK: set when the timer starts, cleared when it
 * ends (see ensureStarted).
 */
final class DeadlineTimer {
  /** Expired deadlines taken from the heap under one hold of the lock. */
  private static final int FIRE_BATCH = 64;

  /** How long the timer pauses after an error in a pass, so that a bug does not make it spin. */
  private static final long ERROR_PAUSE_NANOS = 1_000_000L;

  /** What {@link #firePass} found: a full batch was fired; more may be due, pass again at once. */
  static final int MORE = 0;

  /** What {@link #firePass} found: the earliest entry left is due in {@link Pass#leftNanos}. */
  static final int WAIT = 1;

  /** What {@link #firePass} found: the heap is empty. */
  static final int EMPTY = 2;

  /** What {@link #firePass} found: a test clock is installed; nothing was taken (it fires). */
  static final int TEST_CLOCK = 3;

  /** The timer thread, or null while there is none; under Deadlines.LOCK. */
  private static Thread timer;

  private DeadlineTimer() {}

  /**
   * A new earliest deadline: starts the timer on first use, and wakes it (and the backstop, if it
   * is idle); under Deadlines.LOCK.
   */
  static void wake() {
    ensureStarted();
    LockSupport.unpark(timer);
    DeadlineBackstop.newEarliest();
  }

  /**
   * Wakes the timer and its backstop, if started, to re-read the clock (a test clock was closed).
   */
  static void wakeIfStarted() {
    Deadlines.lock();
    try {
      if (timer != null) {
        LockSupport.unpark(timer);
      }
      DeadlineBackstop.wakeIfStarted();
    } finally {
      Deadlines.LOCK.unlock();
    }
  }

  /**
   * The timer is a virtual thread. Measured with 10 000 deadlines spread over a second on 2 cores:
   * as a platform thread it fired late (median 0.1-3 ms, p99 5-16 ms), because each interrupt it
   * delivered woke a carrier thread that then pre-empted the timer on its core. A virtual timer
   * sleeps on the JDK's own timer, which fires on the carriers (as Thread.sleep does), and the
   * interrupts it delivers are pushed to its carrier's own queue. The price: it runs only when a
   * carrier is free, which is why it has a backstop on a platform thread (DeadlineBackstop).
   *
   * <p>Started by the first new earliest entry while there is no timer, it ends once the heap has
   * been empty for the library threads' keep-alive (LibraryThreads), deciding so under
   * Deadlines.LOCK with the heap empty: the next new earliest entry, under the same lock, finds no
   * timer and starts one. Invariant (under the lock): the heap has entries only while the timer
   * runs (an entry that is not a new earliest joins an earlier one).
   */
  private static void ensureStarted() {
    if (timer == null) {
      Pass pass = new Pass(0L, false); // loaded here: see LibraryThreads, "Class loading"
      timer = LibraryThreads.startVirtual("taskgroup-deadlines", () -> loop(pass));
    }
  }

  private static void loop(Pass pass) {
    for (; ; ) {
      int found;
      try {
        found = firePass(pass);
      } catch (Throwable t) {
        // A bug (or an OutOfMemoryError) must not kill the one timer of the process.
        Uncaught.report(t);
        LockSupport.parkNanos(Deadlines.class, ERROR_PAUSE_NANOS);
        continue;
      }
      switch (found) {
        case MORE -> {} // more may be due
        case WAIT -> LockSupport.parkNanos(Deadlines.class, pass.leftNanos);
        case EMPTY -> {
          // A new earliest wakes it; a keep-alive with nothing to fire ends it.
          long keepAlive = LibraryThreads.keepAliveNanos();
          long parked = System.nanoTime();
          LockSupport.parkNanos(Deadlines.class, keepAlive);
          if (System.nanoTime() - parked >= keepAlive && retire()) {
            return;
          }
        }
        default -> LockSupport.park(Deadlines.class); // a test clock: its close wakes
      }
    }
  }

  /** Ends the timer if the heap is still empty; see ensureStarted. */
  private static boolean retire() {
    Deadlines.LOCK.lock();
    try {
      if (Deadlines.HEAP.peek() != null) {
        return false;
      }
      timer = null;
      return true;
    } finally {
      Deadlines.LOCK.unlock();
    }
  }

  /** For tests: whether the timer thread runs. */
  static boolean running() {
    Deadlines.LOCK.lock();
    try {
      return timer != null;
    } finally {
      Deadlines.LOCK.unlock();
    }
  }

  /**
   * One firing thread's way of firing (the timer's, the backstop's), and its state between passes.
   */
  static final class Pass {
    /** How overdue an entry must be for this thread to take it. */
    final long graceNanos;

    /**
     * The backstop's passes: they take the lock without queueing on it (Deadlines.lockNoQueue) and
     * deliver on the calling thread, since a virtual thread may get no carrier.
     */
    final boolean backstop;

    /** The scopes of the batch in hand; grows past FIRE_BATCH only for one instant's entries. */
    EnteredScope[] expired = new EnteredScope[FIRE_BATCH];

    /** After a pass that found WAIT: how long until the earliest entry left is due for it. */
    long leftNanos;

    Pass(long graceNanos, boolean backstop) {
      this.graceNanos = graceNanos;
      this.backstop = backstop;
    }
  }

  /**
   * One pass of a firing thread, the timer's or the backstop's: takes out of the heap, under
   * Deadlines.LOCK, the entries due {@code pass.graceNanos} ago or earlier (at most a batch, but
   * every entry of the batch's last instant) and marks each one's scope cancelled there
   * (Deadlines.expireTaken: see the Deadlines overview for why under the lock), then, outside it,
   * delivers each: the timer's pass on a new virtual thread when the scope has a group below
   * (Deadlines.deliverExpired), the backstop's always on the calling thread. An entry is taken by
   * one pass only, so it is fired once, by whichever thread took it. What fails on one scope is
   * reported once the lock is released and the others go on; an error while taking (an
   * OutOfMemoryError growing the batch) still delivers what was marked.
   *
   * @return MORE, WAIT (then {@code pass.leftNanos} is set), EMPTY or TEST_CLOCK
   */
  static int firePass(Pass pass) {
    EnteredScope[] expired = pass.expired;
    int count = 0;
    int taken = 0;
    int found = EMPTY;
    Throwable[] thrown = {null};
    Events.prepare(); // the events of the marking, under the lock: see there
    try {
      if (pass.backstop) {
        Deadlines.lockNoQueue();
      } else {
        Deadlines.LOCK.lock();
      }
      try {
        long now = LibraryClock.nanoTime();
        // Read after the clock: a clock read before the install is the system's (or the test
        // clock's first, equal to it), and nothing is fired while a test clock is installed.
        if (LibraryClock.testClockInstalled()) {
          return TEST_CLOCK;
        }
        long last = 0L;
        for (Deadline top; (top = Deadlines.HEAP.peek()) != null; ) {
          long left = top.nanos - now + pass.graceNanos;
          if (left > 0L) {
            pass.leftNanos = left;
            found = WAIT;
            break;
          }
          // A full batch still takes every entry due at the same nanoTime as its last one: one
          // Instant on nested scopes is one nanoTime, and they must be marked in one batch.
          if (taken >= FIRE_BATCH && top.nanos != last) {
            found = MORE;
            break;
          }
          if (count == expired.length) {
            expired = Arrays.copyOf(expired, count * 2); // before the remove: loses no entry
          }
          Deadlines.HEAP.remove(top);
          last = top.nanos;
          taken++;
          if (Deadlines.expireTaken(top, thrown)) {
            expired[count++] = top.scope; // marked: to deliver
          }
        }
      } finally {
        Deadlines.LOCK.unlock();
      }
    } finally {
      if (thrown[0] != null) {
        Uncaught.report(thrown[0]);
      }
      deliver(expired, count, pass.backstop);
      // A burst at one instant keeps no big array.
      pass.expired = expired.length > FIRE_BATCH ? new EnteredScope[FIRE_BATCH] : expired;
    }
    return found;
  }

  /**
   * Delivers the batch, every scope of which was marked before (under the lock): scopes that expire
   * together (nested ones with one deadline) are all cancelled when their threads wake, and the
   * outermost absorbs, as when they are cancelled together by hand. Leaves the array cleared.
   */
  private static void deliver(EnteredScope[] expired, int count, boolean deliverHere) {
    for (int i = 0; i < count; i++) {
      EnteredScope scope = expired[i];
      expired[i] = null;
      try {
        if (deliverHere) {
          scope.afterCancelled();
        } else {
          Deadlines.deliverExpired(scope);
        }
      } catch (Throwable t) {
        Uncaught.report(t);
      }
    }
  }
}
