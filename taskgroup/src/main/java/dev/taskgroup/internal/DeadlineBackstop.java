package dev.taskgroup.internal;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The deadline timer's backstop: a platform thread that fires the deadlines the timer leaves
 * overdue by GRACE or more, because the timer, a virtual thread, gets no carrier.
 *
 * <pre>
 * Implementation overview
 *
 * The JDK wakes a parked virtual thread by handing it to the carrier pool. While CPU-bound
 * virtual threads hold every carrier, the timer (DeadlineTimer) is never run, and a deadline
 * around such code did not fire, even though the code calls checkpoint() every millisecond: a
 * checkpoint sees a cancellation as soon as the scope is marked, and nobody marked it. The timer
 * stays a virtual thread (see DeadlineTimer.ensureStarted: as a platform thread it fired late
 * whenever the carriers it woke pre-empted it); this thread only steps in when it is late.
 *
 * One daemon platform thread per JVM at most, started with the timer (by the first new earliest
 * entry while there is none), without context (LibraryThreads). It runs the timer's
 * own pass (DeadlineTimer.firePass) with a grace: it takes out of the heap, under Deadlines.LOCK,
 * only entries overdue by GRACE, marks them all, then delivers each on this thread. Not on a new
 * virtual thread, as the timer does for a scope with a group below: that thread would be starved
 * too. (A cancel hook still runs on a virtual thread of its own; its scope's thread is marked and
 * interrupted first.) An entry is taken out of the heap by one thread only, under the lock, so
 * each fires once, by the timer or by the backstop. Across the two, marks follow each one's
 * batches only: an entry the backstop takes can be marked before an earlier one the timer took
 * and has not marked yet (the timer was held up for GRACE in between).
 *
 * States of the backstop, one thread:
 *   POLLING  the heap has entries, or has been empty for less than IDLE_AFTER: parks until
 *            min(earliest + GRACE, now + POLL); nobody wakes it
 *   IDLE     empty for IDLE_AFTER: parks for the keep-alive (LibraryThreads), `idle` set; the
 *            next new earliest entry (DeadlineTimer.wake) clears `idle` and unparks it, and it
 *            polls again for at least IDLE_AFTER
 *   ENDED    idle for the whole keep-alive: in one hold of the lock, with the heap empty and
 *            `idle` still set, clears `backstop` and ends; the next new earliest entry finds none
 *            and starts one
 *   TESTING  a test clock is installed (firePass found it): parks without a time limit, not
 *            idle; the clock's close (DeadlineTimer.wakeIfStarted) unparks it
 *
 * Why it polls instead of being woken: the timer is unparked for every new earliest entry; the
 * backstop too would cost every such entry a platform-thread unpark (a system call, and a thread
 * woken on a core the carriers use), the common case of a scope with a timeout. Polling costs it
 * POLL of lateness for an entry put on top after it parked, and a few wake-ups a second (each one
 * lock, one peek) while deadlines are pending. Only the first new earliest entry after a second
 * with none pays an unpark.
 *
 * The bound: an entry put in the heap at t, due at d >= t, is fired by the backstop at the latest
 * at max(d + GRACE, t + POLL) <= d + GRACE + POLL, if the timer has not fired it, plus the OS's
 * lateness in waking a platform thread and the delivery of the entries taken with it. Then a
 * CPU-bound thread sees it at its next checkpoint().
 *
 * The backstop never queues on Deadlines.LOCK (Deadlines.lockNoQueue): virtual threads queue
 * there (the timer, threads entering scopes), a release wakes only the first thread queued, and
 * a virtual thread first in the queue with no carrier kept everything queued behind it parked, the
 * backstop too, until the busy threads ended. It takes the lock with tryLock whenever it is free;
 * no holder parks while holding it.
 *
 * `backstop` and `idle` are read and written under Deadlines.LOCK, the lock under which the heap
 * changes: the backstop decides to go idle in the same hold in which it finds the heap empty, and
 * whoever adds an entry reads `idle` in its hold; an unpark that comes after the decision and
 * before the park leaves a permit, so the park returns. Every park is in a loop that looks at the
 * heap again, so an early return (a spurious wake-up, the permit lockNoQueue gives back) costs a
 * pass, never a deadline. Errors in a pass are reported (Uncaught.report) and it polls again: the
 * thread ends only idle. It ends in a hold that finds the heap empty and `idle` still set, so no
 * entry came since it went idle; an entry that comes after that hold finds `backstop` null and
 * starts a new one.
 * Invariants: `idle` is set only by the backstop, with the heap empty, in the hold before it parks
 * idle, and whoever clears it unparks it. (A spurious wake-up leaves it set: the next new earliest
 * entry then unparks a backstop that is polling already, once.) The heap has entries only while
 * `backstop` is set (or its start failed, reported).
 * </pre>
 */
final class DeadlineBackstop {
  /** How late the timer may be before the backstop fires for it. */
  static final long GRACE_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  /** How often the backstop looks at the heap while it polls: the lateness of a new earliest. */
  static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  /**
   * How long the heap stays empty before the backstop goes idle (or the keep-alive, if shorter: a
   * test's).
   */
  static final long IDLE_AFTER_NANOS = TimeUnit.SECONDS.toNanos(1);

  /**
   * The backstop thread, or null while there is none: written by the new earliest entry whose
   * start() succeeds, cleared by the backstop as it ends; read by newEarliest and wakeIfStarted.
   * Under Deadlines.LOCK.
   */
  private static Thread backstop;

  /**
   * Whether the backstop is parked without a time limit, the heap empty. Set by the backstop
   * (parkIdle), cleared by the new earliest entry that unparks it (newEarliest). Under
   * Deadlines.LOCK.
   */
  private static boolean idle;

  private DeadlineBackstop() {}

  /**
   * A new earliest entry is in the heap (DeadlineTimer.wake, under Deadlines.LOCK): starts the
   * backstop on first use, wakes it only if it is idle.
   */
  static void newEarliest() {
    assert Deadlines.LOCK.isHeldByCurrentThread();
    if (backstop == null) {
      start();
    } else if (idle) {
      idle = false;
      LockSupport.unpark(backstop);
    }
  }

  /** A test clock was closed (under Deadlines.LOCK): the backstop reads the clock again. */
  static void wakeIfStarted() {
    assert Deadlines.LOCK.isHeldByCurrentThread();
    if (backstop != null) {
      LockSupport.unpark(backstop);
    }
  }

  /** For tests: whether the backstop thread runs. */
  static boolean running() {
    Deadlines.lock();
    try {
      return backstop != null;
    } finally {
      Deadlines.LOCK.unlock();
    }
  }

  /** For tests: whether the backstop is parked idle (or about to). */
  static boolean idle() {
    Deadlines.lock();
    try {
      return idle;
    } finally {
      Deadlines.LOCK.unlock();
    }
  }

  /**
   * Starts the backstop. Kept only once started: if the start fails (no memory for a thread), the
   * error is reported and the next new earliest entry tries again; the timer goes on meanwhile.
   */
  private static void start() {
    try {
      // Made here: see LibraryThreads, "Class loading".
      DeadlineTimer.Pass pass = new DeadlineTimer.Pass(GRACE_NANOS, true);
      backstop = LibraryThreads.startPlatform("taskgroup-deadline-backstop", () -> loop(pass));
    } catch (Throwable t) {
      Uncaught.report(t);
    }
  }

  private static void loop(DeadlineTimer.Pass pass) {
    long emptySince = 0L;
    boolean empty = false; // the heap was empty at every pass since emptySince
    for (; ; ) {
      try {
        int found = DeadlineTimer.firePass(pass);
        long now = System.nanoTime();
        if (found != DeadlineTimer.EMPTY) {
          empty = false;
        } else if (!empty) {
          empty = true;
          emptySince = now;
        } else if (now - emptySince
            >= Math.min(IDLE_AFTER_NANOS, LibraryThreads.keepAliveNanos())) {
          int idled = parkIdle();
          if (idled == ENDED) {
            return;
          } else if (idled == WOKEN) {
            // Woken by a new entry: it polls again for IDLE_AFTER at least, so that a thread that
            // enters one scope with a timeout at a time (the heap empty in between) costs one
            // unpark a second at most, not one per scope.
            empty = false;
            continue;
          }
        }
        switch (found) {
          case DeadlineTimer.MORE -> {} // more may be overdue
          case DeadlineTimer.WAIT ->
              LockSupport.parkNanos(DeadlineBackstop.class, Math.min(pass.leftNanos, POLL_NANOS));
          case DeadlineTimer.TEST_CLOCK -> LockSupport.park(DeadlineBackstop.class);
          default -> LockSupport.parkNanos(DeadlineBackstop.class, POLL_NANOS);
        }
      } catch (Throwable t) {
        // A bug, or an OutOfMemoryError (the lock allocates when contended): never die, poll.
        Uncaught.report(t);
        LockSupport.parkNanos(DeadlineBackstop.class, POLL_NANOS);
      }
    }
  }

  /** What parkIdle did: returned at once, an entry having come since the last pass. */
  private static final int NOT_IDLE = 0;

  /** What parkIdle did: parked idle, and was woken (or woke) before the keep-alive ran out. */
  private static final int WOKEN = 1;

  /** What parkIdle did: stayed idle for the whole keep-alive; the backstop ends. */
  private static final int ENDED = 2;

  /**
   * Goes idle if the heap is still empty: parks until a new earliest entry wakes it, or for the
   * keep-alive, after which it ends if still idle. A spurious wake-up leaves `idle` set: the next
   * new earliest entry then unparks a backstop that is already polling, harmlessly.
   *
   * @return NOT_IDLE, WOKEN or ENDED
   */
  private static int parkIdle() {
    Deadlines.lockNoQueue();
    try {
      if (Deadlines.HEAP.peek() != null) {
        return NOT_IDLE;
      }
      idle = true;
    } finally {
      Deadlines.LOCK.unlock();
    }
    long keepAlive = LibraryThreads.keepAliveNanos();
    long parked = System.nanoTime();
    LockSupport.parkNanos(DeadlineBackstop.class, keepAlive);
    if (System.nanoTime() - parked < keepAlive) {
      return WOKEN;
    }
    Deadlines.lockNoQueue();
    try {
      if (!idle || Deadlines.HEAP.peek() != null) {
        return WOKEN; // a new earliest entry came as the keep-alive ran out
      }
      idle = false;
      backstop = null;
      return ENDED;
    } finally {
      Deadlines.LOCK.unlock();
    }
  }
}
