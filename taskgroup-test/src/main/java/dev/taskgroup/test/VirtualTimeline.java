package dev.taskgroup.test;

import dev.taskgroup.internal.clock.TimeSource;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.util.Collections;
import java.util.HashSet;
import java.util.OptionalLong;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The time a {@link VirtualClock} installs in the library: the virtual now, and the threads
 * sleeping on it.
 *
 * <pre>
 * Implementation overview
 *
 * `current` (the virtual now: nanoseconds and instant in one immutable record, so that they are
 * read as a pair; `now` below) is written only by the clock, under its `advancing` lock, and read
 * by anyone (volatile).
 * `lock` guards `sleepers` (a min-heap by wake time, then arrival), `closed`, `sleepsStarted` and
 * `waking` (sleepers the clock, or the library's wake() for a cancellation it delivers without
 * an interrupt, took out of `sleepers` and unparked whose parkUntil has not yet returned: a
 * woken platform thread shows as WAITING until it runs, and must not count as blocked for
 * auto-advance).
 *
 * A sleep (parkUntil, one park per call; the library's sleep loops): register, re-check `now`,
 * park, unregister. The clock moves `now` first and then wakes every registered sleeper due, so
 * a sleeper either sees the new `now` in its re-check or is registered when the clock looks.
 * close() marks the timeline closed and wakes every sleeper; a sleep that registers after that
 * returns at once. The library has switched to the system clock before close() runs, so a woken
 * sleeper goes on there with the time it had left.
 * A wake() that finds the thread not sleeping (it is on its way to a sleep: it checked for a
 * cancellation just before the library delivered one) is remembered in `wokenAwake` (under
 * `lock`), and that thread's next sleep returns at once. The unpark wake() makes is not enough:
 * the sleep takes `lock` before it parks, and a thread that waits for the lock parks on it,
 * which uses up the permit; it then slept until its own end (a day, in a test), and auto-advance
 * jumped there (1 round in 150 with the CPUs loaded).
 * A sleep the library made "forever" (CancelScope.sleep saturates at FOREVER_NANOS) parks in
 * parkForever(), which registers it in `foreverSleepers`: no advance wakes it, close() does.
 * (Not as an end FOREVER_NANOS from now: once the time has moved, a re-park after a spurious
 * wakeup put that end under the horizon, and an advance of 73 years ended the sleep.) parkUntil
 * sends a deadline FOREVER_NANOS or more away there too.
 * Invariant: a sleeper is in `sleepers` (or `foreverSleepers`) from its registration until its
 * parkUntil returns, or until the clock wakes it (whichever is first).
 * </pre>
 */
final class VirtualTimeline implements TimeSource {
  /**
   * The virtual now, on the library's timeline and as an instant, published together in one record:
   * a reader of both (the library converting a deadline, a thread checking the time after a
   * deadline fired) never sees the nanoseconds of one move with the instant of another. Two
   * volatile fields let a deadline set during an advance expire a step before the instant it
   * showed. The instant is kept on its own so that it stays exact (and never goes back) when the
   * total moved is more than a long of nanoseconds holds, where the nanoseconds wrap. Written only
   * by moveTo and skip, under the clock's lock.
   */
  private volatile Now current;

  private record Now(long nanos, Instant instant) {}

  private final ReentrantLock lock = new ReentrantLock();
  private final PriorityQueue<Sleeper> sleepers =
      new PriorityQueue<>(
          (a, b) -> a.wake != b.wake ? Long.signum(a.wake - b.wake) : Long.compare(a.seq, b.seq));

  /**
   * Sleepers whose wake time is the library's "forever" ({@link #FOREVER_NANOS} or more away): no
   * advance wakes them, only close().
   */
  private final Set<Sleeper> foreverSleepers = new HashSet<>();

  private boolean closed;
  private long sleepsStarted;

  /**
   * Threads woken while not sleeping: their next sleep returns at once (see the overview). Weak: a
   * thread that never sleeps again (it ended) is not kept until the clock closes.
   */
  private final Set<Thread> wokenAwake = Collections.newSetFromMap(new WeakHashMap<>());

  /** Sleepers woken by the clock whose parkUntil has not returned yet: not blocked any more. */
  private int waking;

  private record Sleeper(long wake, long seq, Thread thread) {}

  /** The library's "forever": sleeps and deadlines saturate at this distance. */
  static final long FOREVER_NANOS = Long.MAX_VALUE / 4;

  VirtualTimeline(long originNanos, Instant originInstant) {
    this.current = new Now(originNanos, originInstant);
  }

  /** Moves {@code now} forward to {@code nanos}; only the clock, under its lock. */
  void moveTo(long nanos) {
    Now was = current;
    current = new Now(nanos, plus(was.instant, Duration.ofNanos(nanos - was.nanos)));
  }

  /**
   * Moves only the instant: the part of an advance beyond the library's horizon (no deadline or
   * sleep can be due that far), which {@code now} cannot represent; only the clock, under its lock.
   * Saturates at {@link Instant#MAX}.
   */
  void skip(Duration d) {
    Now was = current;
    current = new Now(was.nanos, plus(was.instant, d));
  }

  private static Instant plus(Instant i, Duration d) {
    try {
      return i.plus(d);
    } catch (DateTimeException | ArithmeticException beyond) {
      return Instant.MAX;
    }
  }

  @Override
  public long nanoTime() {
    return current.nanos;
  }

  @Override
  public Instant instant() {
    return current.instant;
  }

  @Override
  public void parkUntil(long deadlineNanos) {
    if (deadlineNanos - nanoTime() <= 0L) {
      return;
    }
    Sleeper s;
    lock.lock();
    try {
      if (closed || wokenAwake.remove(Thread.currentThread())) {
        return;
      }
      s = new Sleeper(deadlineNanos, sleepsStarted++, Thread.currentThread());
      (deadlineNanos - nanoTime() >= FOREVER_NANOS ? foreverSleepers : sleepers).add(s);
    } finally {
      lock.unlock();
    }
    try {
      if (deadlineNanos - nanoTime() > 0L) {
        LockSupport.park(this);
      }
    } finally {
      lock.lock();
      try {
        if (!sleepers.remove(s) && !foreverSleepers.remove(s)) {
          waking--; // the clock took it out and counted it (wakeDueSleepers)
        }
      } finally {
        lock.unlock();
      }
    }
  }

  @Override
  public void parkForever() {
    Sleeper s;
    lock.lock();
    try {
      if (closed || wokenAwake.remove(Thread.currentThread())) {
        return;
      }
      s = new Sleeper(nanoTime(), sleepsStarted++, Thread.currentThread());
      foreverSleepers.add(s);
    } finally {
      lock.unlock();
    }
    try {
      LockSupport.park(this);
    } finally {
      lock.lock();
      try {
        if (!foreverSleepers.remove(s)) {
          waking--; // close() took it out and counted it
        }
      } finally {
        lock.unlock();
      }
    }
  }

  /**
   * Wakes {@code thread} for a cancellation the library delivers without an interrupt: a sleep of
   * it is ended as the clock ends one that is due (taken out and counted in {@code waking} until
   * its parkUntil returns), so that auto-advance does not take the thread, WAITING until it is
   * scheduled, for a blocked one and move the time on, even to the end of that very sleep.
   */
  @Override
  public void wake(Thread thread) {
    lock.lock();
    try {
      // A thread sleeps at most once at a time (its own parkUntil or parkForever call).
      if (sleepers.removeIf(s -> s.thread == thread)
          || foreverSleepers.removeIf(s -> s.thread == thread)) {
        waking++;
      } else {
        wokenAwake.add(thread); // on its way to a sleep, maybe: that one returns at once
      }
      LockSupport.unpark(thread);
    } finally {
      lock.unlock();
    }
  }

  /** When the earliest sleeper is due; empty when none sleeps. */
  OptionalLong nextSleeper() {
    lock.lock();
    try {
      Sleeper s = sleepers.peek();
      return s == null ? OptionalLong.empty() : OptionalLong.of(s.wake);
    } finally {
      lock.unlock();
    }
  }

  /** Wakes every sleeper due at {@code now}, earliest first. */
  void wakeDueSleepers() {
    lock.lock();
    try {
      while (!sleepers.isEmpty() && sleepers.peek().wake - nanoTime() <= 0L) {
        waking++;
        LockSupport.unpark(sleepers.poll().thread);
      }
    } finally {
      lock.unlock();
    }
  }

  /** Whether a sleeper the clock woke has yet to run (it still shows as WAITING meanwhile). */
  boolean sleeperWaking() {
    lock.lock();
    try {
      return waking > 0;
    } finally {
      lock.unlock();
    }
  }

  /** How many sleeps have started: a change means some thread did something. */
  long sleepsStarted() {
    lock.lock();
    try {
      return sleepsStarted;
    } finally {
      lock.unlock();
    }
  }

  /** No more sleeps on this timeline: wakes every sleeper (they go on on the system clock). */
  void close() {
    lock.lock();
    try {
      closed = true;
      for (Sleeper s : sleepers) {
        waking++;
        LockSupport.unpark(s.thread);
      }
      sleepers.clear();
      for (Sleeper s : foreverSleepers) {
        waking++;
        LockSupport.unpark(s.thread);
      }
      foreverSleepers.clear();
      wokenAwake.clear();
    } finally {
      lock.unlock();
    }
  }
}
