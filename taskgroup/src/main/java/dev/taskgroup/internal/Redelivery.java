package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Level-triggered delivery for threads that swallow the interrupt and block again without passing a
 * library checkpoint: the JVM has no hook for "this thread is about to block", so a background
 * thread looks at every thread the library interrupted and interrupts it again if its interrupt
 * status is clear while it is still effectively cancelled.
 *
 * <pre>
 * Implementation overview
 *
 * Registration: whoever delivers a cancellation interrupt (ThreadState.deliver or settle) puts
 * the thread's state in `incoming`, once (the WATCHED status bit says it is queued or watched).
 * `incoming` is a chunk of slots (Chunk), chained to the full chunks before it that the watcher
 * has not taken yet: a registration claims a slot with one getAndAdd on the chunk's count and
 * then fills it; a registration that finds the chunk full installs a new one (by CAS) and tries
 * again. No link field per thread, and no object per registration: a parked child carries
 * nothing for a watch it may never need. The watcher swaps in an empty chunk and then seals each
 * chunk it took by adding SIZE to its count, so a registration that still held the old chunk
 * gets a slot number past the end and moves on to the new one; a slot claimed before the seal
 * is filled at once after the claim (even when the registering thread overflows its stack right
 * then), and the watcher waits for it. The first registration in an
 * empty chunk wakes the watcher if it is idle (parked with nothing to watch; a registration that
 * overflows its stack before the wake-up leaves it to the next registration); a busy watcher
 * wakes at least every BASE by itself and takes new registrations then, so a new watch is first
 * checked within 2 * BASE of the delivery. Nothing is registered, and nothing runs, while
 * nothing is cancelled.
 *
 * The watcher (one daemon platform thread at most, started on demand) owns its watches (Watches: a
 * queue of those never checked, in the order they were registered, and one queue per interval
 * between checks, each in the order its checks fall due, so that a pass costs what it checks and
 * not what it watches: a slow cancellation of 100 000 threads is not walked again every pass).
 * Each watch is checked when due (ThreadState.recheck, under the thread's BUSY bit when it must
 * act):
 *   no longer effectively cancelled, finished,
 *   joining, waiting for its onCancel action,
 *   or in a cooperative scope                    -> dropped (WATCHED cleared)
 *   status clear (swallowed)                     -> interrupted again; next check after BASE
 *   status still set (not reacted yet)           -> next check after twice the last interval,
 *                                                   at most CAP
 * so a thread that swallows is interrupted again within BOUND (default 20 ms; system property
 * dev.taskgroup.redeliveryMillis): CAP is 7/8 of BOUND, leaving the rest for the watcher's own
 * lateness. A mass cancellation of threads that simply end costs a few checks each, not a full
 * walk of the tree every period. A thread that swallows again and again is re-interrupted every
 * BASE: measured with 1 000 such threads (each catching InterruptedException and sleeping
 * again), the process used about one core, most of it the threads' own wake-ups.
 *
 * The front of a mass cancellation. Threads interrupted together run in about the order they
 * were interrupted, and a thread whose interrupt is still pending has not run since: it cannot
 * have swallowed anything, and checking it is pure cost. Worse, the check reads the lines of
 * the thread and its task just before its carrier writes them as the thread ends, on another
 * core: measured with 100 000 parked children cancelled at once on one carrier, the first
 * checks made some JVMs end the children at half speed for their whole life (a cancel of about
 * 40 ms instead of 19; none with the watcher kept quiet). So once FRONT first checks in a row
 * in one pass found the interrupt pending, the pass puts off the rest of the first checks it
 * meets by BASE / 2, and the next pass starts again at the front, which has moved on by then.
 * A first check is never put off past FIRST_LATEST after the watcher took the watch, so it
 * still comes within CAP of the delivery and the bound holds for a thread that swallows at
 * once. Checks after the first (a known swallower, or backing off) are never put off. The run
 * order is trusted no further than that: a platform thread, a thread that was already running,
 * or one woken by something else runs ahead of the front and may swallow long before the front
 * reaches it. So what a long mass cancellation still costs the watcher is one check per CAP for
 * each thread not yet run after its first check: the JVM does not tell when a thread last ran.
 *
 * The watcher's end. Idle for the library threads' keep-alive (LibraryThreads), the watcher ends,
 * so that it does not keep the library's class loader for ever. `watcher` is written under the
 * class's monitor (startWatcher, retire) and read without it by watch(). A registration claims its
 * slot, then reads `watcher`; the ending watcher clears `watcher`, then looks at `incoming` (all
 * volatile, or atomic): either the registration reads null and starts a new watcher, or the
 * watcher sees the claim, sets `watcher` back and goes on. A new watcher cannot start before the
 * old one has decided: both hold the monitor.
 * </pre>
 */
public final class Redelivery {
  /** The longest time a swallowed cancellation goes undelivered. */
  static final long BOUND_NANOS =
      TimeUnit.MILLISECONDS.toNanos(
          Math.max(1L, Long.getLong("dev.taskgroup.redeliveryMillis", 20L)));

  /** The first check after a delivery, and after each re-delivery. */
  static final long BASE_NANOS = Math.max(BOUND_NANOS / 4, 250_000L);

  /** The longest interval between two checks of one watch. */
  static final long CAP_NANOS = Math.max(BOUND_NANOS - BOUND_NANOS / 8, BASE_NANOS);

  /**
   * How late a new watch's first check may be put off, after the watcher took it (which is at most
   * BASE after the delivery): so that it still comes within CAP of the delivery.
   */
  static final long FIRST_LATEST_NANOS = Math.max(CAP_NANOS - BASE_NANOS, BASE_NANOS);

  /** First checks in a row finding the interrupt still pending that mark a mass cancellation. */
  static final int FRONT = 64;

  /** Threads newly interrupted, not yet seen by the watcher; see the overview. */
  private static volatile Chunk incoming = new Chunk(null);

  /**
   * The watcher thread, or null while there is none; written under the class's monitor
   * (startWatcher, retire). See "The watcher's end".
   */
  private static volatile Thread watcher;

  /**
   * Whether the watcher is parked with nothing to watch (only then does a new registration wake
   * it). Otherwise it wakes by itself at least every BASE and takes new registrations then, so a
   * mass cancellation does not wake it once per thread.
   */
  private static volatile boolean idle;

  /**
   * Whether a registration that had to wake the idle watcher overflowed its stack before it could:
   * the next registration wakes it (see watch).
   */
  private static volatile boolean wakeUpLost;

  private Redelivery() {}

  /** Queues {@code ts}, whose WATCHED bit the caller just set, for watching. */
  static void watch(ThreadState ts) {
    for (; ; ) {
      Chunk c = incoming;
      int i = (int) Chunk.COUNT.getAndAdd(c, 1);
      if (i < Chunk.SIZE) {
        try {
          Chunk.SLOT.setRelease(c.slots, i, ts);
        } catch (Throwable error) {
          // A StackOverflowError (the registering thread near its stack's end, the VarHandle call
          // not yet compiled): the slot is claimed, and the watcher waits for every claimed slot
          // to be filled. Left empty, it would wait for ever, and no thread in the JVM would be
          // interrupted again. A plain store needs no frame. The wake-up below is skipped too: an
          // idle watcher that this registration (the first in its chunk) had to wake would sleep
          // on, and the registrations after it wake nobody. The next one wakes it instead.
          c.slots[i] = ts;
          wakeUpLost = true;
          throw error;
        }
        Thread w = watcher;
        if (w == null) {
          startWatcher();
        } else if ((i == 0 && c.older == null && idle) || wakeUpLost) {
          try {
            wakeUpLost = false;
            LockSupport.unpark(w);
          } catch (Throwable error) {
            // (A StackOverflowError, as above.) The idle watcher parks until this registration
            // wakes it, and the registrations after it (not the first in their chunk) wake
            // nobody: left asleep, it would never interrupt any thread again. The next
            // registration wakes it instead. A field write needs no frame.
            wakeUpLost = true;
            throw error;
          }
        }
        return;
      }
      INCOMING.compareAndSet(c, new Chunk(c)); // full (or taken by the watcher): move on
    }
  }

  /** A chunk of registrations; see the overview. */
  private static final class Chunk {
    static final int SIZE = 128;

    final ThreadState[] slots = new ThreadState[SIZE];

    /** Slots claimed (getAndAdd); SIZE or more once full or sealed by the watcher. */
    volatile int count;

    /** The full chunk before this one, not yet taken by the watcher; or null. */
    final Chunk older;

    /** The chunk after this one, set by the watcher once it took them (see oldestFirst). */
    Chunk newer;

    Chunk(Chunk older) {
      this.older = older;
    }

    /**
     * Links the chunks the watcher took, newest first through {@code older}, the other way through
     * {@code newer}, and returns the oldest: the watcher adds watches in the order they were
     * registered (see "The front of a mass cancellation"). Only the watcher calls this.
     */
    static Chunk oldestFirst(Chunk newest) {
      Chunk c = newest;
      if (c == null) {
        return null;
      }
      while (c.older != null) {
        c.older.newer = c;
        c = c.older;
      }
      return c;
    }

    /** Whether no registration has claimed a slot here or in an older chunk. */
    boolean isEmpty() {
      return count == 0 && older == null;
    }

    /**
     * Takes slot {@code i}, which a registration has claimed: waits the instant until it is filled,
     * then empties it, so that the chunk (which a frame of the watcher may still hold while it
     * parks) keeps no thread state, nor through it a finished task's result or failure.
     */
    ThreadState take(int i) {
      ThreadState ts;
      for (int round = 0; (ts = (ThreadState) SLOT.getAcquire(slots, i)) == null; round++) {
        ThreadState.waitBriefly(round);
      }
      slots[i] = null; // sealed: only the watcher touches the slots now
      return ts;
    }

    static final VarHandle COUNT;
    static final VarHandle SLOT = MethodHandles.arrayElementVarHandle(ThreadState[].class);

    static {
      try {
        COUNT = MethodHandles.lookup().findVarHandle(Chunk.class, "count", int.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }
  }

  private static synchronized Thread startWatcher() {
    Thread w = watcher;
    if (w == null) {
      Watches watches = new Watches(); // loaded here: see LibraryThreads, "Class loading"
      w = LibraryThreads.startPlatform("taskgroup-redelivery", () -> loop(watches));
      watcher = w; // only once started: a start() that overflowed leaves it to the next call
    }
    return w;
  }

  /**
   * Ends the idle watcher unless a registration has come (see "The watcher's end"); only the
   * watcher calls this.
   *
   * @return whether the watcher ends
   */
  private static synchronized boolean retire() {
    watcher = null; // then read `incoming`: watch() claims a slot, then reads `watcher`
    if (incoming.isEmpty()) {
      idle = false;
      return true;
    }
    watcher = Thread.currentThread();
    return false;
  }

  /** For tests: whether the watcher thread runs. */
  static boolean running() {
    return watcher != null;
  }

  /**
   * The watcher's loop: takes the new registrations, makes the checks that are due, and parks until
   * the next one is due (at most BASE, to take new registrations) or, with nothing to watch, until
   * a registration wakes it; idle for the keep-alive, it ends.
   */
  private static void loop(Watches watches) {
    for (; ; ) {
      long now = System.nanoTime();
      long nextDue;
      try {
        takeRegistrations(watches, now);
        nextDue = watches.pass(now);
      } catch (Throwable bug) {
        // A bug (or an OutOfMemoryError growing a queue) must not kill the one watcher of the
        // process: every later swallowed cancellation would go undelivered. What is lost is the
        // watch in hand (or, while taking, the registrations not yet taken); the next pass comes
        // within BASE.
        Uncaught.report(bug);
        nextDue = now + BASE_NANOS;
      }
      if (watches.isEmpty()) {
        idle = true; // then read `incoming`: watch() writes it, then reads `idle`
        if (incoming.isEmpty()) {
          long keepAlive = LibraryThreads.keepAliveNanos();
          long parked = System.nanoTime();
          LockSupport.parkNanos(Redelivery.class, keepAlive);
          if (System.nanoTime() - parked >= keepAlive && retire()) {
            return;
          }
        }
        idle = false;
      } else {
        long wait = Math.min(nextDue - System.nanoTime(), BASE_NANOS);
        if (wait > 0L) {
          LockSupport.parkNanos(Redelivery.class, wait);
        }
      }
    }
  }

  /** Moves every registration from `incoming` to the watches, in the order they were made. */
  private static void takeRegistrations(Watches watches, long now) {
    Chunk taken = incoming.isEmpty() ? null : (Chunk) INCOMING.getAndSet(new Chunk(null));
    for (Chunk c = Chunk.oldestFirst(taken); c != null; c = c.newer) {
      int claimed = Math.min((int) Chunk.COUNT.getAndAdd(c, Chunk.SIZE), Chunk.SIZE); // seal
      for (int i = 0; i < claimed; i++) {
        watches.fresh.add(c.take(i), now);
      }
    }
  }

  /**
   * The intervals between checks of a watch: {@code LEVEL_NANOS[0]} is BASE (the first check after
   * a delivery or a re-delivery), each next level twice the last, the last one CAP.
   */
  static final long[] LEVEL_NANOS = levels();

  private static long[] levels() {
    long[] levels = new long[0];
    for (long iv = BASE_NANOS; ; iv = Math.min(iv * 2, CAP_NANOS)) {
      levels = Arrays.copyOf(levels, levels.length + 1);
      levels[levels.length - 1] = iv;
      if (iv >= CAP_NANOS) {
        return levels;
      }
    }
  }

  /**
   * The watcher's watches, in queues that keep each one's checks in the order they fall due, so
   * that a pass costs what it checks. Only the watcher thread touches this.
   *
   * <ul>
   *   <li>{@code fresh}: watches never checked, in the order they were registered, each with the
   *       time the watcher took it. The first check is due BASE after that, and is put off behind
   *       the front of a mass cancellation (see the class overview), never past FIRST_LATEST after
   *       it. Taken times only grow along the queue, so the watches past FIRST_LATEST are a prefix
   *       of it, and a pass stops at the first watch it puts off: every watch behind it would be
   *       put off too.
   *   <li>{@code rechecks[k]}: watches checked before, each with the time its next check is due,
   *       which is LEVEL_NANOS[k] after the check that put it there: every due in one queue is the
   *       same interval after a time that only grows, so each queue is in the order its checks fall
   *       due.
   * </ul>
   */
  private static final class Watches {
    final WatchQueue fresh = new WatchQueue();

    final WatchQueue[] rechecks = new WatchQueue[LEVEL_NANOS.length];

    /**
     * Until when the first checks behind the front found by the last pass are put off (BASE / 2
     * after it): only first checks past FIRST_LATEST are made before then.
     */
    long frontPutOffUntil = System.nanoTime();

    Watches() {
      for (int k = 0; k < rechecks.length; k++) {
        rechecks[k] = new WatchQueue();
      }
    }

    boolean isEmpty() {
      if (!fresh.isEmpty()) {
        return false;
      }
      for (WatchQueue q : rechecks) {
        if (!q.isEmpty()) {
          return false;
        }
      }
      return true;
    }

    /** Makes every check due at {@code now}; returns when the next one is due. */
    long pass(long now) {
      long nextDue = firstChecks(now);
      for (int k = 0; k < rechecks.length; k++) {
        WatchQueue q = rechecks[k];
        while (!q.isEmpty() && q.firstTime() - now <= 0L) {
          ThreadState ts = q.removeFirst();
          schedule(ts, ts.recheck(), k + 1, now);
        }
      }
      fresh.shrinkIfEmpty();
      for (WatchQueue q : rechecks) { // after every check: one may have moved a watch back
        q.shrinkIfEmpty();
        if (!q.isEmpty()) {
          nextDue = Math.min(nextDue, q.firstTime());
        }
      }
      return nextDue;
    }

    /**
     * The first checks due at {@code now}, in the order the watches were registered; returns when
     * the next one is due.
     */
    private long firstChecks(long now) {
      boolean walkFront = now - frontPutOffUntil >= 0L;
      int pendingInARow = 0; // first checks in a row that found the interrupt still pending
      while (!fresh.isEmpty()) {
        long taken = fresh.firstTime();
        if (taken + BASE_NANOS - now > 0L) {
          return taken + BASE_NANOS; // not due yet, nor any watch behind it
        }
        long latest = taken + FIRST_LATEST_NANOS;
        if (latest - now > 0L && (!walkFront || pendingInARow >= FRONT)) {
          if (walkFront) { // behind the front of a mass cancellation: not yet
            frontPutOffUntil = now + BASE_NANOS / 2;
          }
          return Math.min(frontPutOffUntil, latest);
        }
        ThreadState ts = fresh.removeFirst();
        int outcome = ts.recheck();
        pendingInARow = outcome == ThreadState.RECHECK_PENDING ? pendingInARow + 1 : 0;
        schedule(ts, outcome, 1, now);
      }
      return Long.MAX_VALUE;
    }

    /**
     * Puts {@code ts}, just checked, where its next check is due: nowhere once dropped; BASE from
     * now once interrupted again; the interval {@code pendingLevel} (at most CAP) while its
     * interrupt is still pending.
     */
    private void schedule(ThreadState ts, int outcome, int pendingLevel, long now) {
      if (outcome == ThreadState.RECHECK_DROP) {
        return;
      }
      int k =
          outcome == ThreadState.RECHECK_SWALLOWED
              ? 0
              : Math.min(pendingLevel, LEVEL_NANOS.length - 1);
      rechecks[k].add(ts, now + LEVEL_NANOS[k]);
    }
  }

  private static final VarHandle INCOMING;

  static {
    try {
      INCOMING =
          MethodHandles.lookup().findStaticVarHandle(Redelivery.class, "incoming", Chunk.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
