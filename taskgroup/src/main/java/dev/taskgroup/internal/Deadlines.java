package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Every deadline of the process, on one timer: a binary min-heap of {@link Deadline} entries
 * ordered by their instant on the library's clock ({@link LibraryClock#nanoTime()}, the system's
 * monotonic clock unless a test clock is installed), and one thread that sleeps until the earliest
 * and cancels its scope.
 *
 * <pre>
 * Implementation overview
 *
 * One lock (LOCK) guards the heap (DeadlineHeap) and every field of every Deadline (`queued` is
 * also read without it), except while a scope is still private to the thread that made it:
 * initTimeout fills in its entry without the lock, before the scope is published. Nobody parks
 * or waits for a lock while holding it (the backstop and platform threads rely on that: see
 * lockNoQueue and lock). A scope's entry is in the heap only while the scope runs and its
 * deadline has not fired; exit removes it (O(log n), by the index the entry keeps), so nothing
 * stays scheduled after a scope ends and a million short scopes leave nothing behind.
 *
 * The timer thread (DeadlineTimer, a virtual thread) is started on first use. It parks until
 * the earliest deadline (or without a time limit when the heap is empty); whoever puts a new
 * earliest entry at the top unparks it.
 * It fires expired entries in batches: under the lock it takes each out of the heap and marks its
 * scope cancelled (a few atomic updates, no wait: expireTaken; the JFR events it records have their
 * types registered before the lock is taken, Events.prepare), then, outside the lock, delivers
 * them. Every scope of a batch is marked before any is delivered: nested scopes that expire
 * together are all cancelled when their threads wake, and the outermost absorbs. The delivery walk
 * is done inline for a scope with no group below it, and on a new virtual thread otherwise, so that
 * a deadline over 100 000 children never stalls the other deadlines (a helper that a test clock's
 * auto-advance counts until the walk is done: ClockedThreads.startHelper). Marking under the lock
 * makes an expiry atomic with the deadline it read: a deadline moved from another thread either
 * lands before the expiry, and nothing fires before the new one, or after it, and finds the scope
 * cancelled (its entry `fired`: the new value is recorded, never scheduled). Marked outside the
 * lock, a move landing between the taking and the marking returned with the scope uncancelled,
 * then saw it cancelled at the old time. Every path that fires does the same: the timer and the
 * backstop (DeadlineTimer.firePass), a deadline found due when set or started (update, start),
 * the test clock (fireDue).
 *
 * The timer runs only when a carrier is free. Its backstop (DeadlineBackstop, one platform
 * thread) fires, with the timer's own pass, the entries overdue by its GRACE: those the timer
 * left because CPU-bound virtual threads hold every carrier. Each entry is taken out of the heap
 * under LOCK by one of the two, and fired once. The backstop polls (it is not woken by a new
 * earliest entry unless it is idle), so setting a deadline costs no platform-thread unpark.
 *
 * A deadline set in the past before the scope ever ran expires at once (update marks the scope
 * cancelled, as cancel() before run does): cancelCalled() is true from then on and the scope
 * starts cancelled, whatever deadline is set later, as in Trio. After the scope exited, a deadline
 * change fires nothing.
 *
 * Times are kept on the monotonic clock; an Instant is converted once, when it is set, so a jump
 * of the wall clock does not fire a deadline early or late (DeadlineClock converts, and keeps the
 * arithmetic from overflowing). A deadline FOREVER_NANOS (about 73 years) or more away is `never`:
 * it stays out of the heap, so that a test clock, which can move that far, does not fire it (nor
 * jump to it).
 *
 * With a test clock installed (LibraryClock.testClockInstalled()) the timer thread and its
 * backstop fire nothing and park without a time limit: the test clock moves the time and calls
 * fireDue() itself, which fires due entries in order and delivers each inline, so that its
 * advance returns only after every cancellation it caused has been delivered. Closing the test
 * clock wakes both (DeadlineTimer.wakeIfStarted), which go on with the entries left, on the
 * system clock.
 * Invariant: while a test clock is installed, only fireDue() and the due path of schedule()
 * (a deadline set in the past, or a scope entered after its deadline) fire entries. The due path
 * takes every entry due no later than its own (expireWithDue), and so can take entries the test
 * clock has just made due, between its move and its fireDue(): that fireDue() then finds nothing,
 * yet advance must not return before their delivery. So while a test clock is installed the due
 * path lists its batch in DELIVERING from the marking (under LOCK, so a later takeDue sees it)
 * until its delivery is done, delivers inline as fireDue() does (no helper thread to wait for),
 * and fireDue() returns only once DELIVERING is empty, or once every thread still delivering has
 * been seen blocked in code that is not the library's (ClockedThreads.blockedInUserCode, five
 * looks 0.1 ms apart): a delivery runs user code (a channel's close, which Thread.interrupt()
 * calls; the default handler), which may wait for the very clock that waits for it (a close
 * waiting for a thread in a sleep on the test clock: advance deadlocked). A thread blocked in the
 * library's own waits is waited for. With no test clock nothing is listed.
 * </pre>
 */
public final class Deadlines {
  static final ReentrantLock LOCK = new ReentrantLock();

  /** The pending deadlines, earliest first; under LOCK. */
  static final DeadlineHeap HEAP = new DeadlineHeap();

  /**
   * How many deadlines have been put in the heap, ever; under LOCK. A test clock's auto-advance
   * reads it as activity: a thread entering scopes whose deadlines all fall on one virtual instant
   * leaves the earliest deadline unchanged, and can be between two scopes (counted nowhere) at
   * every sample the clock takes.
   */
  private static long scheduled;

  /** The reason every expired deadline records (one object: firing allocates nothing). */
  private static final CancelReason EXPIRED =
      new CancelReason(CancelReason.Kind.DEADLINE, "deadline expired", "taskgroup-deadlines", 0L);

  /**
   * Batches that the due path of start() or update() marked while a test clock was installed and
   * has not finished delivering, each with the thread delivering it: fireDue() waits for them (see
   * the overview's last paragraph).
   */
  private static final Map<Expired, Thread> DELIVERING = new ConcurrentHashMap<>();

  private static final int NEW = 0;
  private static final int RUNNING = 1;
  private static final int STOPPED = 2;

  private Deadlines() {}

  /**
   * Takes LOCK without queueing on it, for the deadline backstop, a platform thread that must fire
   * while no carrier is free. A release of the lock wakes only the first thread queued, which takes
   * the lock and on its own release wakes the next: when the first is a virtual thread with no
   * carrier (the very case the backstop is for), every thread queued behind it stays parked, the
   * lock free, until a carrier frees up (seen in a test: the backstop stuck for seconds behind the
   * starved timer). tryLock() takes the lock whenever it is free, whatever is queued, and no holder
   * parks while holding it, so it comes free within microseconds: this spins, then yields, then
   * parks for short moments (ThreadState.waitBriefly, which gives back a permit it may have
   * consumed).
   */
  static void lockNoQueue() {
    for (int round = 0; !LOCK.tryLock(); round++) {
      ThreadState.waitBriefly(round);
    }
  }

  /**
   * Takes LOCK: a virtual thread queues on it; a platform thread does not (lockNoQueue), for the
   * reason the backstop does not: queued behind the timer (a virtual thread) when CPU-bound virtual
   * threads took every carrier, a platform thread setting or reading a deadline, or entering or
   * leaving a scope with one, stayed parked, the lock free, until a carrier freed up (seconds, in a
   * test). A virtual thread in that queue waits for a carrier anyway.
   */
  static void lock() {
    if (Thread.currentThread().isVirtual()) {
      LOCK.lock();
    } else {
      lockNoQueue();
    }
  }

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

    /**
     * The deadline has expired and its scope was marked cancelled (expireTaken; or it was cancelled
     * or exited before): a deadline set from then on is recorded, never scheduled.
     */
    boolean fired;

    /** Whether it is in the heap (index >= 0); volatile for stop()'s look without the lock. */
    volatile boolean queued;

    Deadline(EnteredScope scope) {
      this.scope = scope;
    }
  }

  // ---- what scopes call ---------------------------------------------------------------------

  /** Sets an absolute deadline (converted once to the monotonic clock). */
  public static void setDeadline(EnteredScope scope, Instant deadline) {
    long now;
    Instant wallNow;
    do {
      now = LibraryClock.nanoTime();
      wallNow = LibraryClock.instant();
    } while (movedSince(now));
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
    long now;
    Instant wallNow;
    do {
      now = LibraryClock.nanoTime();
      wallNow = LibraryClock.instant();
    } while (movedSince(now));
    update(scope, now, wallNow, timeout, false);
  }

  /**
   * Whether a test clock moved the time since {@code now} was read: it moves its nanoseconds and
   * its instant together, and an advance between a caller's two reads put them a step apart (a
   * timeout then expired a step before the deadline it showed, an Instant deadline a step early),
   * so the caller reads both again. On the system clock, one volatile read (the clocks are read
   * back to back there, as they always were).
   */
  private static boolean movedSince(long now) {
    return LibraryClock.testClockInstalled() && LibraryClock.nanoTime() != now;
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
    lock();
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
    long now;
    Instant wallNow;
    do {
      now = LibraryClock.nanoTime();
      wallNow = LibraryClock.instant();
    } while (movedSince(now));
    Expired expired = null;
    Throwable[] thrown = {null};
    Events.prepare(); // may expire: the events of the marking, under the lock (see there)
    lock();
    try {
      Deadline d = scope.deadline;
      if (d.state != NEW) {
        return; // update() saw the scope running first and started it
      }
      d.state = RUNNING;
      if (d.pendingTimeout != null) {
        startTimeout(d, d.pendingTimeout, now, wallNow);
      }
      if (schedule(d)) {
        expired = expireWithDue(d, thrown);
      }
    } finally {
      LOCK.unlock();
    }
    deliverAfterUnlock(expired, thrown[0]);
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
    lock();
    try {
      d.state = STOPPED;
      HEAP.remove(d);
    } finally {
      LOCK.unlock();
    }
  }

  private static void update(
      EnteredScope scope, long nanos, Instant shown, Duration timeout, boolean never) {
    Expired expired = null;
    Throwable[] thrown = {null};
    Events.prepare(); // may expire: the events of the marking, under the lock (see there)
    lock();
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
      } else {
        d.pendingTimeout = null;
        if (timeout != null) {
          startTimeout(d, timeout, nanos, shown); // nanos, shown: the clocks, read before
        } else {
          d.nanos = nanos;
          d.shown = shown;
          d.never = never;
        }
      }
      if (d.fired || (timeout != null && d.state != RUNNING)) {
        // Nothing to schedule: a timeout set before run waits for start(); an expired deadline
        // is recorded (deadline() shows it, as in Trio), and the scope stays cancelled.
      } else if (d.state == RUNNING) {
        HEAP.remove(d);
        boolean due = schedule(d);
        if ((scope.flags() & Scope.EXITED) != 0) { // exited meanwhile: stop() may have
          HEAP.remove(d); // read `queued` before schedule() set it
        } else if (due) {
          expired = expireWithDue(d, thrown);
        }
      } else if (timeout == null
          && !never
          && (scope.flags() & (Scope.ENTERED | Scope.EXITED)) == 0
          && nanos - LibraryClock.nanoTime() <= 0L) {
        // A deadline in the past set before run: the scope has expired now, as cancel() before
        // run would (cancelCalled() true, it starts cancelled, a later deadline does not undo
        // it). Not yet entered, it has nothing to deliver to (unless run started meanwhile).
        expired = Expired.of(expireInto(d, null, thrown));
      }
    } finally {
      LOCK.unlock();
    }
    deliverAfterUnlock(expired, thrown[0]);
  }

  /**
   * Expires an entry found due when its deadline was set or its run started (schedule() returned
   * true), together with every entry in the heap due no later than it: those are due now too, and
   * the timer, which may be late, has not fired them yet. All are marked before any is delivered,
   * as on the timer, so that an outer scope with the same Instant, still waiting for a late timer,
   * is cancelled when the inner one's thread looks, and absorbs (a scope entered just after its
   * deadline passed otherwise expired alone and absorbed the outer's cancellation). Under LOCK.
   *
   * @return the scopes to deliver, the entry's own last; null if none
   */
  private static Expired expireWithDue(Deadline d, Throwable[] thrown) {
    List<EnteredScope> expired = null;
    for (Deadline top; (top = HEAP.peek()) != null && top.nanos - d.nanos <= 0L; ) {
      HEAP.remove(top);
      expired = expireInto(top, expired, thrown);
    }
    return Expired.of(expireInto(d, expired, thrown));
  }

  /**
   * The scopes the due path marked, to deliver once LOCK is released; {@code counted}: in
   * DELIVERING until they are delivered (a test clock was installed at the marking). A key of
   * DELIVERING by identity.
   */
  private static final class Expired {
    final List<EnteredScope> scopes;
    final boolean counted;

    private Expired(List<EnteredScope> scopes, boolean counted) {
      this.scopes = scopes;
      this.counted = counted;
    }

    /** Under LOCK. Null if there is nothing to deliver. */
    static Expired of(List<EnteredScope> scopes) {
      if (scopes == null) {
        return null;
      }
      boolean counted = Features.ON && LibraryClock.testClockInstalled();
      Expired batch = new Expired(scopes, counted);
      if (counted) {
        DELIVERING.put(batch, Thread.currentThread());
      }
      return batch;
    }
  }

  /**
   * Marks the scope of an entry taken out of the heap (or never put in) cancelled for its expired
   * deadline, under LOCK: see the overview. What marking threw is kept in {@code thrown[0]}, to be
   * reported once the lock is released (a report runs the default uncaught-exception handler).
   *
   * @return whether the scope's cancellation is to be delivered (false: it was cancelled before,
   *     has exited, or marking threw)
   */
  static boolean expireTaken(Deadline d, Throwable[] thrown) {
    d.fired = true;
    try {
      return markExpired(d.scope);
    } catch (Throwable t) {
      keep(thrown, t);
      // Thrown after the mark (recording its event): a running scope marked is still delivered
      // (delivery is idempotent, should another canceller have marked it first).
      int f = d.scope.flags();
      return (f & (Scope.CANCEL_CALLED | Scope.ENTERED | Scope.EXITED))
          == (Scope.CANCEL_CALLED | Scope.ENTERED);
    }
  }

  /** expireTaken, adding the scope to {@code into} (made if null) if it is to be delivered. */
  private static List<EnteredScope> expireInto(
      Deadline d, List<EnteredScope> into, Throwable[] thrown) {
    if (expireTaken(d, thrown)) {
      if (into == null) {
        into = new ArrayList<>();
      }
      into.add(d.scope);
    }
    return into;
  }

  /** Keeps {@code t} to report later: the first, with the others suppressed in it. */
  private static void keep(Throwable[] thrown, Throwable t) {
    if (thrown[0] == null) {
      thrown[0] = t;
    } else if (thrown[0] != t) {
      thrown[0].addSuppressed(t);
    }
  }

  /**
   * After LOCK is released: delivers what was marked (inline when counted for a test clock, as
   * fireDue() does), then reports what marking threw (a report runs the default handler, which may
   * block: nothing waits behind it).
   */
  private static void deliverAfterUnlock(Expired expired, Throwable thrown) {
    if (expired != null) {
      try {
        for (EnteredScope scope : expired.scopes) {
          if (expired.counted) {
            scope.afterCancelled();
          } else {
            deliverExpired(scope);
          }
        }
      } finally {
        if (expired.counted) {
          DELIVERING.remove(expired);
        }
      }
    }
    if (thrown != null) {
      Uncaught.report(thrown);
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
      return true; // the caller expires it (expireWithDue)
    }
    scheduled++;
    if (HEAP.add(d)) { // the new earliest
      DeadlineTimer.wake(); // started on first use
    }
    return false;
  }

  /**
   * Marks an expired scope cancelled; false if it was cancelled before, or has exited (then nothing
   * is marked: see Scope.markExpiredUnlessExited).
   */
  static boolean markExpired(EnteredScope scope) {
    if (!scope.markExpiredUnlessExited(EXPIRED)) {
      return false;
    }
    Events.deadlineExpired(scope);
    return true;
  }

  /** Delivers the cancellation of a scope markExpired marked. */
  static void deliverExpired(EnteredScope scope) {
    if (scope.hasGroupBelow()) {
      // A helper: a test clock's auto-advance counts it until the delivery is done.
      ClockedThreads.startHelper(
          Thread.ofVirtual().name("taskgroup-deadline"), scope::afterCancelled);
    } else {
      scope.afterCancelled();
    }
  }

  // ---- what the test clock calls (LibraryClock) ---------------------------------------------

  /** How many deadlines have been scheduled, ever (see {@link #scheduled}'s comment). */
  public static long scheduledCount() {
    lock();
    try {
      return scheduled;
    } finally {
      LOCK.unlock();
    }
  }

  /** When the earliest pending deadline is due; empty when none is. */
  public static OptionalLong nextDue() {
    lock();
    try {
      Deadline first = HEAP.peek();
      return first == null ? OptionalLong.empty() : OptionalLong.of(first.nanos);
    } finally {
      LOCK.unlock();
    }
  }

  /**
   * Fires every deadline due now, earliest first, on the calling thread (the timer thread does not
   * fire while a test clock is installed): when this returns, each expired scope is cancelled and
   * its cancellation delivered, however many threads it reaches. Those due are all marked before
   * any is delivered, as on the timer thread (nested scopes with one deadline expire together).
   */
  public static void fireDue() {
    List<EnteredScope> due = new ArrayList<>();
    while (takeDue(due)) {
      fireTakenInline(due);
    }
    awaitDeliveriesElsewhere();
  }

  /**
   * Waits until no batch marked by the due path of another thread is being delivered, or until
   * every thread delivering one is blocked in what its delivery called (see the overview): entries
   * this call would have fired may be among them. Polls: such a batch is rare and short, and its
   * thread signals nobody. A permit the parks consumed is handed back at the end.
   */
  private static void awaitDeliveriesElsewhere() {
    if (DELIVERING.isEmpty()) {
      return;
    }
    for (int round = 0, blockedLooks = 0; !DELIVERING.isEmpty() && blockedLooks < 5; round++) {
      if (round < 64) {
        Thread.onSpinWait();
      } else { // looks 0.1 ms apart: a thread only passing through a wait is not taken for blocked
        blockedLooks = allBlocked(DELIVERING.values()) ? blockedLooks + 1 : 0;
        LockSupport.parkNanos(100_000L);
      }
    }
    LockSupport.unpark(Thread.currentThread());
  }

  private static boolean allBlocked(Collection<Thread> threads) {
    for (Thread t : threads) {
      if (!ClockedThreads.blockedInUserCode(t)) {
        return false;
      }
    }
    return true;
  }

  /**
   * fireDue's first half: under LOCK, takes every entry due now out of the heap and marks its scope
   * (expireTaken); adds to {@code into} those to deliver. Whether any entry was due.
   */
  static boolean takeDue(List<EnteredScope> into) {
    Throwable[] thrown = {null};
    boolean any = false;
    Events.prepare(); // the events of the marking, under the lock: see there
    lock();
    try {
      long now = LibraryClock.nanoTime();
      for (Deadline top; (top = HEAP.peek()) != null && top.nanos - now <= 0L; any = true) {
        HEAP.remove(top);
        expireInto(top, into, thrown);
      }
    } finally {
      LOCK.unlock();
    }
    if (thrown[0] != null) {
      Uncaught.report(thrown[0]);
    }
    return any;
  }

  /** fireDue's second half: delivers, inline, each scope takeDue marked; clears the list. */
  static void fireTakenInline(List<EnteredScope> due) {
    for (EnteredScope scope : due) {
      scope.afterCancelled(); // inline, as the overview says: advance returns once delivered
    }
    due.clear();
  }

  /** Wakes the timer thread to re-read the clock (a test clock was closed). */
  public static void wakeTimer() {
    DeadlineTimer.wakeIfStarted();
  }

  /** The heap's capacity now (for the tests: it shrinks back after a burst). */
  static int heapCapacity() {
    lock();
    try {
      return HEAP.capacity();
    } finally {
      LOCK.unlock();
    }
  }
}
