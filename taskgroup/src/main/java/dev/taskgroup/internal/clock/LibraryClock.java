package dev.taskgroup.internal.clock;

import dev.taskgroup.internal.ClockedThreads;
import dev.taskgroup.internal.Deadlines;
import java.lang.invoke.VarHandle;
import java.time.Instant;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;

/**
 * The library's clock: the one place every deadline and every library sleep reads the time, and the
 * seam through which a test installs a virtual one.
 *
 * <pre>
 * Implementation overview
 *
 * `source` is null (the system clock: System.nanoTime(), Instant.now()) until a test clock is
 * installed; then it is that TimeSource. The library's timeline is one monotonic line across
 * install and close: a test clock starts at the library's current nanoTime, and when it is
 * closed `source` becomes a Shifted system clock that goes on from the virtual time it had
 * reached. So a deadline or sleep still pending at close needs no conversion: it goes on, on the
 * system clock, with the time it had left. (A process that never installs a test clock only
 * ever sees `source == null`: one static read per call, and a library sleep's registration in
 * SYSTEM_PARKED below.)
 *
 * `testClock` is true while a test clock is installed. Scope entry and fork read it (one static
 * read) to decide whether to register the thread in ClockedThreads, which the test clock's
 * auto-advance inspects; nothing is registered otherwise.
 *
 * `SYSTEM_PARKED` holds the threads parked in parkUntil on the system clock or a Shifted one: a
 * sleep that began before a test clock was installed must move to it, or it stays parked for its
 * real-time remainder while the test clock's advance goes past its end. A thread adds itself,
 * re-reads `source`, parks only if it is unchanged, and removes itself; install() writes `source`
 * and then unparks every thread in the set. Dekker-style, with a full fence between the write and
 * the read on each side: the sleeper writes the set, then reads `source`; install writes `source`,
 * then reads the set. So either the sleeper reads the test clock and does not park, or install
 * finds it in the set and unparks it (parked, or about to park: the permit then makes the park
 * return at once). Either way it returns, and its caller's loop (PlainScope.sleep) re-reads the
 * time and parks on the test clock. Each thread adds and removes only itself; install() only
 * reads the set, and an unpark that comes after the thread left it is a spurious wakeup, which
 * every park allows (callers loop). (A test clock wakes its own sleepers when it is closed, and
 * uninstall wakes the deadline timer, so no other change of clock needs this.) The cost on the
 * system clock is one set add and remove per park, and a park is a wait.
 *
 * Writers: install and uninstall, under the class lock. Readers: any thread.
 * Invariant: testClock == (source is a test clock, not null and not Shifted).
 * </pre>
 */
public final class LibraryClock {
  /** The installed time, or null for the system clock; see the overview. */
  private static volatile TimeSource source;

  /** Whether a test clock is installed: scope entry and fork register their threads. */
  private static volatile boolean testClock;

  /**
   * The threads in parkUntil on the system clock or a Shifted one, which install() wakes so that
   * they move to the test clock; see the overview.
   */
  private static final Set<Thread> SYSTEM_PARKED = ConcurrentHashMap.newKeySet();

  private LibraryClock() {}

  /**
   * Now, in nanoseconds on the library's monotonic timeline.
   *
   * @return the current time
   */
  public static long nanoTime() {
    TimeSource s = source;
    return s == null ? System.nanoTime() : s.nanoTime();
  }

  /**
   * Now, on the wall clock the library uses to convert an {@code Instant} deadline.
   *
   * @return the current instant
   */
  public static Instant instant() {
    TimeSource s = source;
    return s == null ? Instant.now() : s.instant();
  }

  /**
   * Parks the calling thread until {@link #nanoTime()} reaches {@code deadlineNanos}, or less (an
   * unpark, an interrupt, a change of clock): callers loop.
   *
   * @param deadlineNanos when to wake
   * @param blocker what the thread waits for, shown in thread dumps on the system clock
   */
  public static void parkUntil(long deadlineNanos, Object blocker) {
    TimeSource s = source;
    if (s != null && !(s instanceof Shifted)) {
      s.parkUntil(deadlineNanos);
      return;
    }
    // On the system clock: registered while parked, so that install() can wake this thread to
    // move to the test clock (see the overview for the ordering).
    Thread me = Thread.currentThread();
    SYSTEM_PARKED.add(me);
    try {
      VarHandle.fullFence(); // the set's write before the read of `source`
      if (source != s) {
        return; // a test clock was installed meanwhile: the caller re-reads the time
      }
      if (s == null) {
        LockSupport.parkNanos(blocker, deadlineNanos - System.nanoTime());
      } else {
        s.parkUntil(deadlineNanos); // a Shifted system clock
      }
    } finally {
      SYSTEM_PARKED.remove(me);
    }
  }

  /**
   * Parks the calling thread with no end in time (a sleep beyond the library's horizon), until
   * unparked, interrupted, or the clock changes: callers loop.
   *
   * @param blocker what the thread waits for, shown in thread dumps on the system clock
   */
  public static void parkForever(Object blocker) {
    TimeSource s = source;
    if (s == null) {
      LockSupport.park(blocker);
    } else {
      s.parkForever();
    }
  }

  /**
   * Wakes {@code thread} without interrupting it (a cancellation inside a cooperative scope: a
   * library wait it may be in re-checks), through the test clock when one is installed, which then
   * counts the thread as about to run, not blocked: see {@link TimeSource#wake}.
   *
   * @param thread the thread to wake
   */
  public static void wake(Thread thread) {
    TimeSource s = source;
    if (s == null) {
      LockSupport.unpark(thread);
    } else {
      s.wake(thread);
    }
  }

  /**
   * Whether a test clock is installed (threads entering scopes are then registered).
   *
   * @return whether the time is a test clock's
   */
  public static boolean testClockInstalled() {
    return testClock;
  }

  /**
   * Installs a test clock: from now on every deadline and library sleep reads it, including a sleep
   * begun before (on the system clock), which is woken to move to it.
   *
   * @param clock the clock; its {@code nanoTime()} must start at this class's current one
   * @throws IllegalStateException if a test clock is already installed
   */
  public static synchronized void install(TimeSource clock) {
    if (testClock) {
      throw new IllegalStateException(
          "a VirtualClock is already installed: close it first (the library has one clock per"
              + " process, so tests that install one must not run in parallel)");
    }
    source = clock;
    testClock = true;
    VarHandle.fullFence(); // the write of `source` before the read of the set
    // Sleeps begun on the system clock (before this install, or left by a closed test clock and
    // going on on a Shifted one) move to the new clock: each returns, re-reads the time, and
    // parks on the test clock.
    for (Thread t : SYSTEM_PARKED) {
      LockSupport.unpark(t);
    }
  }

  /**
   * Goes back to the system clock, continuing from {@code clock}'s current time, and wakes the
   * deadline timer so that it waits on the system clock again.
   *
   * @param clock the installed clock
   * @throws IllegalStateException if {@code clock} is not the installed one
   */
  public static synchronized void uninstall(TimeSource clock) {
    if (source != clock || !testClock) {
      throw new IllegalStateException("this clock is not installed");
    }
    source = new Shifted(clock.nanoTime() - System.nanoTime());
    testClock = false;
    ClockedThreads.clear();
    Deadlines.wakeTimer();
  }

  /**
   * The earliest pending deadline, on this clock's timeline.
   *
   * @return when the next deadline is due, or empty when none is pending
   */
  public static OptionalLong nextDeadline() {
    return Deadlines.nextDue();
  }

  /**
   * How many deadlines have been scheduled since the process started: a change between two looks is
   * activity, even when the earliest deadline stays the same.
   *
   * @return the count
   */
  public static long deadlinesScheduled() {
    return Deadlines.scheduledCount();
  }

  /**
   * Fires, on the calling thread and in deadline order, every deadline due at {@link #nanoTime()}:
   * when this returns, each one's cancellation has been delivered.
   */
  public static void fireDueDeadlines() {
    Deadlines.fireDue();
  }

  /**
   * The threads registered while the test clock was installed that are still inside a scope or a
   * group (a forked child not yet started included).
   *
   * @return a snapshot, in no particular order
   */
  public static List<Thread> threadsInScopes() {
    return ClockedThreads.snapshot();
  }

  /** The system clock, shifted to go on from where a closed test clock stopped. */
  private record Shifted(long offset) implements TimeSource {
    @Override
    public long nanoTime() {
      return System.nanoTime() + offset;
    }

    @Override
    public Instant instant() {
      return Instant.now();
    }

    @Override
    public void parkUntil(long deadlineNanos) {
      LockSupport.parkNanos(LibraryClock.class, deadlineNanos - nanoTime());
    }
  }
}
