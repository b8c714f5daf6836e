package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongConsumer;

/**
 * Every deadline of the process, on one timer: a binary min-heap of {@link Deadline} entries
 * ordered by their instant on the library's clock ({@link LibraryClock#nanoTime()}, the system's
 * monotonic clock unless a test clock is installed), and one thread that sleeps until the earliest
 * and cancels its scope.
 *
 * <pre>
 * Implementation overview
 *
 * One lock (LOCK) guards the heap, `size`, and every field of every Deadline (`queued` is also
 * read without it), except while a scope is still private to the thread that made it:
 * initTimeout fills in its entry without the lock, before the scope is published. A scope's
 * entry is in the heap only while the scope runs and its deadline has not fired; exit removes
 * it (O(log n), by the index the entry keeps), so nothing stays scheduled after a scope ends
 * and a million short scopes leave nothing behind.
 *
 * The timer thread (a virtual thread, see ensureTimer) is started on first use. It parks until
 * the earliest deadline (or without a time limit when the heap is empty); whoever puts a new
 * earliest entry at the top unparks it.
 * It fires expired entries outside the lock, in batches, marking every scope of a batch cancelled
 * before it delivers any (nested scopes that expire together are then all cancelled when their
 * threads wake, and the outermost absorbs): marking the scope cancelled is cheap, and the
 * delivery walk is done inline for a scope with no group below it, and on a new virtual thread
 * otherwise, so that a deadline over 100 000 children never stalls the other deadlines.
 *
 * Times are kept on the monotonic clock; an Instant is converted once, when it is set, so a jump
 * of the wall clock does not fire a deadline early or late (DeadlineClock converts, and keeps the
 * arithmetic from overflowing). A deadline FOREVER_NANOS (about 73 years) or more away is `never`:
 * it stays out of the heap, so that a test clock, which can move that far, does not fire it (nor
 * jump to it).
 *
 * With a test clock installed (LibraryClock.testClockInstalled()) the timer thread fires
 * nothing and parks without a time limit: the test clock moves the time and calls fireDue()
 * itself, which fires due entries in order and delivers each inline, so that its advance
 * returns only after every cancellation it caused has been delivered. Closing the test clock
 * wakes the timer (wakeTimer), which goes on with the entries left, on the system clock.
 * Invariant: while a test clock is installed, only fireDue() and the due path of schedule()
 * (a deadline set in the past) fire entries.
 * </pre>
 */
public final class Deadlines {
  private static final ReentrantLock LOCK = new ReentrantLock();

  /** The heap's smallest (and first) capacity. */
  private static final int INITIAL_CAPACITY = 64;

  /**
   * The heap; under LOCK. Doubles when full, halves when a quarter full (never below
   * INITIAL_CAPACITY): a burst of 100 000 concurrent deadlines does not keep a 100 000-slot array
   * for the life of the JVM.
   */
  private static Deadline[] heap = new Deadline[INITIAL_CAPACITY];

  /** Entries in the heap; under LOCK. */
  private static int size;

  /** The timer thread, started once; under LOCK. */
  private static Thread timer;

  /** The reason every expired deadline records (one object: firing allocates nothing). */
  private static final CancelReason EXPIRED =
      new CancelReason(CancelReason.Kind.DEADLINE, "deadline expired", "taskgroup-deadlines", 0L);

  /** Expired deadlines taken from the heap under one hold of the lock. */
  private static final int FIRE_BATCH = 64;

  private static final int NEW = 0;
  private static final int RUNNING = 1;
  private static final int STOPPED = 2;

  private Deadlines() {}

  /** One scope's deadline; every field under LOCK. */
  static final class Deadline {
    final EnteredScope scope;

    /** When it fires, on LibraryClock.nanoTime(); meaningful once set or started. */
    long nanos;

    /** A timeout not yet started (set before run), or null. */
    Duration pendingTimeout;

    /** The deadline as the user sees it, or null (a timeout before run). */
    Instant shown;

    /** NEW (scope not started), RUNNING (scheduled unless fired), STOPPED (scope exited). */
    int state = NEW;

    /** Index in the heap, or -1. */
    int index = -1;

    /**
     * The deadline is FOREVER_NANOS or more away: it never fires, and is never in the heap (on the
     * system clock no process lives that long; a test clock must not jump to it).
     */
    boolean never;

    /** Whether it is in the heap (index >= 0); volatile for stop()'s look without the lock. */
    volatile boolean queued;

    Deadline(EnteredScope scope) {
      this.scope = scope;
    }
  }

  // ---- what scopes call ---------------------------------------------------------------------

  /** Sets an absolute deadline (converted once to the monotonic clock). */
  public static void setDeadline(EnteredScope scope, Instant deadline) {
    long now = LibraryClock.nanoTime();
    Instant wallNow = LibraryClock.instant();
    long left = DeadlineClock.saturatedNanos(Duration.between(wallNow, deadline));
    boolean never = left == DeadlineClock.FOREVER_NANOS;
    // A test clock moves both clocks together, exactly: converting with its own readings is exact
    // and gives one Instant one nanoTime already, and no pair of system readings may touch it.
    long at =
        never || LibraryClock.testClockInstalled()
            ? now + left
            : DeadlineClock.wallToNano(now, wallNow, deadline);
    update(scope, at, deadline, null, never);
  }

  /** Sets a timeout: from now if the scope runs, else from when it starts. */
  public static void setTimeout(EnteredScope scope, Duration timeout) {
    update(scope, LibraryClock.nanoTime(), LibraryClock.instant(), timeout, false);
  }

  /**
   * Gives a scope that no other thread can see yet (just made, not yet returned to the user) a
   * timeout counted from when it starts. Without the lock: a million moveOnAfter calls from 10 000
   * threads do not queue on it here.
   */
  public static void initTimeout(EnteredScope fresh, Duration timeout) {
    Deadline d = new Deadline(fresh);
    d.pendingTimeout = timeout;
    fresh.deadline = d; // volatile: published with the entry's fields
  }

  /** The deadline as set, or for a timeout when it expires (empty before run starts). */
  public static Optional<Instant> deadline(EnteredScope scope) {
    LOCK.lock();
    try {
      Deadline d = scope.deadline;
      return d == null ? Optional.empty() : Optional.ofNullable(d.shown);
    } finally {
      LOCK.unlock();
    }
  }

  /** The scope starts running: schedule its deadline, if any; fire it now if already due. */
  static void start(EnteredScope scope) {
    // The clocks are read before the lock: a timeout counts from when run started, not from
    // when this thread got the lock (10 000 scopes entering at once queue on it for ms).
    long now = LibraryClock.nanoTime();
    Instant wallNow = LibraryClock.instant();
    boolean due;
    List<EnteredScope> alsoDue = null;
    LOCK.lock();
    try {
      Deadline d = scope.deadline;
      if (d.state != NEW) {
        return; // update() saw the scope running first and started it
      }
      d.state = RUNNING;
      if (d.pendingTimeout != null) {
        startTimeout(d, d.pendingTimeout, now, wallNow);
      }
      due = schedule(d);
      alsoDue = due ? takeDueBy(d.nanos) : null;
    } finally {
      LOCK.unlock();
    }
    if (due) {
      fireTogether(scope, alsoDue);
    }
  }

  /**
   * The scope stops running (its EXITED flag is already set): nothing of it stays scheduled.
   * Without the lock when the entry is not in the heap (it fired, the common case for a scope that
   * was cut short): a timer cancelling many scopes at once then does not queue behind the very
   * threads it woke. A concurrent update() re-reads EXITED after queueing (see there).
   */
  static void stop(EnteredScope scope) {
    Deadline d = scope.deadline;
    if (!d.queued) {
      return;
    }
    LOCK.lock();
    try {
      d.state = STOPPED;
      remove(d);
    } finally {
      LOCK.unlock();
    }
  }

  private static void update(
      EnteredScope scope, long nanos, Instant shown, Duration timeout, boolean never) {
    boolean due = false;
    List<EnteredScope> alsoDue = null;
    LOCK.lock();
    try {
      Deadline d = scope.deadline;
      if (d == null) {
        d = new Deadline(scope);
        scope.deadline = d;
        // Published before the flags are read: if the scope entered without seeing this entry,
        // start it here (Scope.enter reads `deadline` after setting ENTERED).
        if ((scope.flags() & (Scope.ENTERED | Scope.EXITED)) == Scope.ENTERED) {
          d.state = RUNNING;
        }
      }
      if (timeout != null && d.state != RUNNING) {
        d.pendingTimeout = timeout;
        d.shown = null;
        return;
      }
      d.pendingTimeout = null;
      if (timeout != null) {
        startTimeout(d, timeout, nanos, shown); // nanos, shown: the clocks, read before
      } else {
        d.nanos = nanos;
        d.shown = shown;
        d.never = never;
      }
      if (d.state == RUNNING) {
        remove(d);
        due = schedule(d);
        if ((scope.flags() & Scope.EXITED) != 0) { // exited meanwhile: stop() may have
          remove(d); // read `queued` before schedule() set it
          due = false;
        }
        alsoDue = due ? takeDueBy(d.nanos) : null;
      }
    } finally {
      LOCK.unlock();
    }
    if (due) {
      fireTogether(scope, alsoDue);
    }
  }

  /**
   * Takes out of the heap every entry due no later than {@code nanos} (a deadline just found due):
   * they are due now too, and the timer, which may be late, has not fired them yet. Null if none.
   * Under LOCK.
   */
  private static List<EnteredScope> takeDueBy(long nanos) {
    List<EnteredScope> taken = null;
    while (size > 0 && heap[0].nanos - nanos <= 0L) {
      if (taken == null) {
        taken = new ArrayList<>();
      }
      taken.add(heap[0].scope);
      remove(heap[0]);
    }
    return taken;
  }

  /**
   * Fires a scope found due when its deadline was set or its run started, together with the entries
   * due with it (takeDueBy): all are marked before any is delivered, as on the timer, so that an
   * outer scope with the same Instant, still waiting for a late timer, is cancelled when the inner
   * one's thread looks, and absorbs (a scope entered just after its deadline passed otherwise
   * expired alone and absorbed the outer's cancellation).
   */
  private static void fireTogether(EnteredScope scope, List<EnteredScope> others) {
    if (others == null) {
      fire(scope);
      return;
    }
    others.removeIf(s -> !markExpired(s));
    boolean mine = markExpired(scope);
    for (EnteredScope s : others) {
      deliverExpired(s);
    }
    if (mine) {
      deliverExpired(scope);
    }
  }

  /** Starts a timeout at {@code now} (nanoTime) / {@code wallNow}, both read by the caller. */
  private static void startTimeout(Deadline d, Duration timeout, long now, Instant wallNow) {
    long timeoutNanos = DeadlineClock.saturatedNanos(timeout);
    d.nanos = DeadlineClock.saturatedAdd(now, timeoutNanos);
    d.shown = DeadlineClock.saturatedInstant(wallNow, timeout); // exact: not cut at FOREVER_NANOS
    d.never = timeoutNanos >= DeadlineClock.FOREVER_NANOS;
    d.pendingTimeout = null;
  }

  /** Puts a running entry in the heap unless it is already due or never is; under LOCK. */
  private static boolean schedule(Deadline d) {
    if (d.never) {
      return false; // forever: nothing to schedule
    }
    if (d.nanos - LibraryClock.nanoTime() <= 0L) {
      return true;
    }
    if (size == heap.length) {
      heap = Arrays.copyOf(heap, size * 2);
    }
    d.index = size;
    d.queued = true;
    heap[size++] = d;
    siftUp(d.index);
    if (d.index == 0) {
      ensureTimer();
      LockSupport.unpark(timer);
    }
    return false;
  }

  /** Cancels the scope for its deadline, handing big walks to a virtual thread. */
  private static void fire(EnteredScope scope) {
    if (markExpired(scope)) {
      deliverExpired(scope);
    }
  }

  /** Marks an expired scope cancelled; false if it was cancelled before. */
  private static boolean markExpired(EnteredScope scope) {
    if (!scope.markCancelled(EXPIRED, Scope.CANCEL_CALLED)) {
      return false;
    }
    Events.deadlineExpired(scope);
    return true;
  }

  /** Delivers the cancellation of a scope markExpired marked. */
  private static void deliverExpired(EnteredScope scope) {
    if (scope.hasGroupBelow()) {
      Thread.ofVirtual().name("taskgroup-deadline").start(scope::afterCancelled);
    } else {
      scope.afterCancelled();
    }
  }

  // ---- what the test clock calls (LibraryClock) ---------------------------------------------

  /** When the earliest pending deadline is due; empty when none is. */
  public static OptionalLong nextDue() {
    LOCK.lock();
    try {
      return size == 0 ? OptionalLong.empty() : OptionalLong.of(heap[0].nanos);
    } finally {
      LOCK.unlock();
    }
  }

  /**
   * Fires every deadline due by {@code limit}, on the calling thread (the test clock's, which fires
   * what its move of the time passes): all are marked expired first, and then delivered in time
   * order, each instant's after {@code moveTo} has been given that instant. So nested scopes whose
   * deadlines the move passes, in whatever order, all expire before any thread hears of one (the
   * outermost absorbs), while each cancellation is still delivered at its own time.
   */
  public static void fireDueBy(long limit, LongConsumer moveTo) {
    List<EnteredScope> due = new ArrayList<>();
    long[] at = new long[8];
    LOCK.lock();
    try {
      while (size > 0 && heap[0].nanos - limit <= 0L) {
        if (due.size() == at.length) {
          at = Arrays.copyOf(at, at.length * 2);
        }
        at[due.size()] = heap[0].nanos; // taken from the top: in time order
        due.add(heap[0].scope);
        remove(heap[0]);
      }
    } finally {
      LOCK.unlock();
    }
    boolean[] marked = new boolean[due.size()];
    for (int i = 0; i < due.size(); i++) {
      marked[i] = markExpired(due.get(i));
    }
    for (int i = 0; i < due.size(); i++) {
      if (i == 0 || at[i] != at[i - 1]) {
        moveTo.accept(at[i]);
      }
      if (marked[i]) {
        due.get(i).afterCancelled();
      }
    }
  }

  /**
   * Fires every deadline due now, earliest first, on the calling thread (the timer thread does not
   * fire while a test clock is installed): when this returns, each expired scope is cancelled and
   * its cancellation delivered, however many threads it reaches.
   */
  public static void fireDue() {
    List<EnteredScope> due = new ArrayList<>();
    for (; ; ) {
      LOCK.lock();
      try {
        // All those due are taken together, whatever their instants: all are marked before any
        // is delivered, as on the timer thread (nested scopes with one deadline expire together,
        // and so do those the test clock's one move has passed: see VirtualClock.advanceTo).
        long now = LibraryClock.nanoTime();
        while (size > 0 && heap[0].nanos - now <= 0L) {
          due.add(heap[0].scope);
          remove(heap[0]);
        }
      } finally {
        LOCK.unlock();
      }
      if (due.isEmpty()) {
        return;
      }
      due.removeIf(scope -> !markExpired(scope));
      for (EnteredScope scope : due) {
        scope.afterCancelled(); // inline, as the overview says: advance returns once delivered
      }
      due.clear();
    }
  }

  /** Wakes the timer thread to re-read the clock (a test clock was closed). */
  public static void wakeTimer() {
    LOCK.lock();
    try {
      if (timer != null) {
        LockSupport.unpark(timer);
      }
    } finally {
      LOCK.unlock();
    }
  }

  // ---- the timer thread ---------------------------------------------------------------------

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
  private static void ensureTimer() {
    if (timer == null) {
      timer =
          Thread.ofVirtual()
              .name("taskgroup-deadlines")
              .inheritInheritableThreadLocals(false)
              .unstarted(Deadlines::loop);
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
        LockSupport.park(Deadlines.class); // the test clock fires (fireDue); close wakes us
        continue;
      }
      LOCK.lock();
      try {
        long now = LibraryClock.nanoTime();
        long last = 0L;
        while (size > 0) {
          Deadline top = heap[0];
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
          remove(top);
          if (count == expired.length) {
            expired = Arrays.copyOf(expired, count * 2);
          }
          last = top.nanos;
          expired[count++] = top.scope;
        }
      } finally {
        LOCK.unlock();
      }
      // Every scope of the batch is marked before any is delivered: scopes that expire together
      // (nested ones with one deadline) are all cancelled when their threads wake, and the
      // outermost absorbs, as when they are cancelled together by hand.
      for (int i = 0; i < count; i++) {
        try {
          if (!markExpired(expired[i])) {
            expired[i] = null; // cancelled before: nothing to deliver
          }
        } catch (Throwable t) {
          expired[i] = null;
          timerFailed(t);
        }
      }
      for (int i = 0; i < count; i++) {
        if (expired[i] == null) {
          continue;
        }
        try {
          deliverExpired(expired[i]);
        } catch (Throwable t) {
          timerFailed(t);
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
  private static void timerFailed(Throwable t) {
    Thread.UncaughtExceptionHandler h = Thread.getDefaultUncaughtExceptionHandler();
    if (h != null) {
      h.uncaughtException(Thread.currentThread(), t);
    } else {
      t.printStackTrace();
    }
  }

  // ---- the heap (under LOCK) ----------------------------------------------------------------

  private static void remove(Deadline d) {
    int i = d.index;
    if (i < 0) {
      return;
    }
    d.index = -1;
    d.queued = false;
    Deadline last = heap[--size];
    heap[size] = null;
    if (last != d) {
      heap[i] = last;
      last.index = i;
      siftDown(i);
      siftUp(last.index);
    }
    if (heap.length > INITIAL_CAPACITY && size < heap.length / 4) {
      // Halved at a quarter, doubled when full: an entry added and removed at the boundary costs
      // no copy each time (the next copy is at least heap.length / 4 operations away).
      heap = Arrays.copyOf(heap, heap.length / 2);
    }
  }

  /** The heap's capacity now (for the tests: it shrinks back after a burst). */
  static int heapCapacity() {
    LOCK.lock();
    try {
      return heap.length;
    } finally {
      LOCK.unlock();
    }
  }

  private static void siftUp(int i) {
    Deadline d = heap[i];
    while (i > 0) {
      int p = (i - 1) >>> 1;
      Deadline parent = heap[p];
      if (parent.nanos - d.nanos <= 0L) {
        break;
      }
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = d;
    d.index = i;
  }

  private static void siftDown(int i) {
    Deadline d = heap[i];
    int half = size >>> 1;
    while (i < half) {
      int c = 2 * i + 1;
      int r = c + 1;
      if (r < size && heap[r].nanos - heap[c].nanos < 0L) {
        c = r;
      }
      if (d.nanos - heap[c].nanos <= 0L) {
        break;
      }
      heap[i] = heap[c];
      heap[i].index = i;
      i = c;
    }
    heap[i] = d;
    d.index = i;
  }
}
