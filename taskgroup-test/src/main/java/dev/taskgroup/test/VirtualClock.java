package dev.taskgroup.test;

import dev.taskgroup.internal.clock.LibraryClock;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A virtual clock for taskgroup's deadlines and sleeps, so that a test of 30-second deadline logic
 * runs in milliseconds, deterministically.
 *
 * {@snippet :
 * try (var clock = VirtualClock.install().autoAdvance()) {
 *   String reply = CancelScope.moveOnAfter(Duration.ofSeconds(30), () -> slowServer.ask());
 *   assertThat(reply).isNull();                     // gave up after 30 virtual seconds
 * }
 * }
 *
 * <h2>What runs on it</h2>
 *
 * While installed, the library reads this clock instead of the system's for every deadline ({@code
 * CancelScope.withTimeout}, {@code withDeadline}, {@code setTimeout}, {@code setDeadline}, {@code
 * moveOnAfter}, {@code failAfter}, a group's {@code timeout}) and for {@code CancelScope.sleep}.
 * The time moves only when {@link #advance(Duration)} moves it, or, after {@link #autoAdvance()},
 * when every thread in the library's groups and scopes is blocked. An {@code Instant} deadline is
 * read against {@link #instant()}, the virtual now. A deadline or sleep about 73 years away or more
 * (2<sup>61</sup> ns, where the library's durations saturate; {@code ChronoUnit.FOREVER}, say) is
 * forever: no advance fires or ends it, and {@link #autoAdvance()} does not jump to it.
 *
 * <p>What it cannot make virtual: the JDK's own clocks and waits ({@code Thread.sleep}, {@code
 * System.nanoTime}, {@code Instant.now}, {@code Object.wait(ms)}, {@code
 * BlockingQueue.poll(timeout)}, socket timeouts, {@code Future.get(timeout)}, including {@code
 * Task.get(timeout)}), and the library's internal re-delivery of swallowed interrupts, which stays
 * on real time. Code under test that should run on virtual time sleeps with {@code
 * CancelScope.sleep} and bounds its waits with cancel scopes.
 *
 * <h2>One per process</h2>
 *
 * The library has one clock per process: {@link #install()} fails while another virtual clock is
 * installed, and every thread of the process sees the virtual time, including other tests running
 * at the same time. Tests that install one must therefore not run in parallel with tests that use
 * the library's deadlines; {@link VirtualTime} takes care of that in JUnit.
 *
 * <p>Every method may be called from any thread. Null arguments throw {@link NullPointerException}
 * naming the parameter.
 */
public final class VirtualClock implements AutoCloseable {
  /** How long every thread must stay blocked before {@link #autoAdvance()} moves the time. */
  public static final Duration DEFAULT_AUTO_ADVANCE_THRESHOLD = Duration.ofMillis(10);

  /* Implementation overview
   *
   * `time` holds the virtual now and the sleepers (VirtualTimeline). The library's deadlines
   * stay in the library (Deadlines), which stops firing them on its own while this clock is
   * installed; advanceTo() moves the time's now step by step to each next deadline or sleeper due
   * up to the target, and at each step fires the deadlines due (inline: delivered when the call
   * returns) and then wakes the sleepers due. Deadlines before sleepers at the same instant.
   *
   * `advancing` serialises moves of the time: advance(), the auto-advance thread, close().
   * `closed` is set once by close(); afterwards nothing moves the time. `autoThread` is started
   * once, by the first autoAdvance(), and ends when closed. Its samples (the threads' states, then
   * the CPU time of the platform ones, and the library's counts) are local to autoAdvanceLoop.
   * Invariant: the time's now never decreases, and changes only under `advancing`.
   */

  /** The library's horizon: a deadline or sleep this far away or more is forever. */
  private static final long MAX_NANOS = VirtualTimeline.FOREVER_NANOS;

  private static final long POLL_NANOS = 1_000_000L;

  private final VirtualTimeline time;
  private final ReentrantLock advancing = new ReentrantLock();
  private final AtomicBoolean closed = new AtomicBoolean();

  /** The auto-advance thread, or null; under `advancing`. */
  private Thread autoThread;

  /** Real nanoseconds every thread must stay blocked before an auto-advance. */
  private volatile long thresholdNanos = DEFAULT_AUTO_ADVANCE_THRESHOLD.toNanos();

  private VirtualClock() {
    this.time = new VirtualTimeline(LibraryClock.nanoTime(), Instant.now());
  }

  /**
   * Installs a new virtual clock: from now on the library's deadlines and sleeps use it. Its time
   * starts at the real now and stands still until moved. Close it (try-with-resources) to go back
   * to the system clock.
   *
   * @return the installed clock
   * @throws IllegalStateException if a virtual clock is already installed (close it first; tests
   *     that install one must not run in parallel)
   */
  public static VirtualClock install() {
    VirtualClock clock = new VirtualClock();
    LibraryClock.install(clock.time);
    return clock;
  }

  /**
   * The virtual now: the real time when the clock was installed, plus every advance since. An
   * {@code Instant} deadline set while the clock is installed is read against it.
   *
   * @return the virtual now (after {@link #close()}, the time the clock had reached)
   */
  public Instant instant() {
    return time.instant();
  }

  /**
   * Moves the time forward by {@code duration}, firing every deadline and waking every sleep due on
   * the way, in time order. When it returns, the cancellation of each deadline that fired has been
   * delivered (every thread it cancels has been interrupted, and the threads of its {@code
   * onCancel} actions started) and every sleeper due has been woken; what those threads do next
   * happens on their own threads, after: an action may not have run its first statement yet (close
   * its registration, which waits for it, before looking at its effect).
   *
   * <p>Each deadline fires at its own instant: no thread sees a scope expired before the time has
   * reached its deadline. Deadlines at the same instant expire together (all are cancelled before
   * any is delivered, so of nested scopes given one deadline the outermost absorbs). Deadlines at
   * different instants fire one after the other, and the threads the first woke run meanwhile: when
   * one advance passes an inner scope's deadline and then its outer scope's, whether the inner
   * absorbs (its thread left it before the outer's instant came) or the outer does depends on how
   * fast that thread runs. For a determined outcome, advance to the first deadline, wait for what
   * its thread does, then advance on.
   *
   * @param duration how far to move; zero fires what is due now
   * @throws NullPointerException if {@code duration} is null
   * @throws IllegalArgumentException if {@code duration} is negative
   * @throws IllegalStateException if this clock is closed
   */
  public void advance(Duration duration) {
    Objects.requireNonNull(duration, "duration");
    if (duration.isNegative()) {
      throw new IllegalArgumentException(
          "duration must not be negative, was " + duration + ": time only moves forward");
    }
    long nanos = saturatedNanos(duration);
    advancing.lock();
    try {
      checkOpen("advance");
      advanceTo(time.nanoTime() + nanos);
      if (nanos == MAX_NANOS) {
        // Beyond the library's horizon (no deadline or sleep is ever set further than
        // MAX_NANOS ahead, every one due has now fired): only the instant moves on.
        time.skip(duration.minusNanos(MAX_NANOS));
      }
    } finally {
      advancing.unlock();
    }
  }

  /**
   * Moves the time by itself from now on: whenever every thread inside the library's groups and
   * scopes has been blocked for {@link #DEFAULT_AUTO_ADVANCE_THRESHOLD} of real time, the time
   * jumps to the next deadline or sleep, which fires (as Trio's {@code autojump_threshold}).
   *
   * <p><b>Blocked</b> means that the thread's {@link Thread#getState() state} is {@code WAITING} or
   * {@code TIMED_WAITING} (parked: a library wait, a lock, a queue, a latch, {@code
   * CancelScope.sleep}; in {@code Thread.sleep} or {@code Object.wait}; or a virtual thread parked
   * in I/O), and it has no interrupt pending and is not a sleeper this clock has just woken (both
   * are about to run). A {@code RUNNABLE} thread (running, ready to run, or a platform thread in
   * native I/O) and a {@code BLOCKED} one (waiting for a monitor) hold the clock still, and so does
   * a child forked but not yet started. The threads looked at are those that entered a scope or
   * group, or were forked, while this clock was installed, for as long as they are inside one; a
   * thread outside every scope does not count (a thread that entered its scope before the clock was
   * installed is not seen until it enters another).
   *
   * <p>The clock cannot tell why a thread waits. A thread blocked in a JDK call on real time, such
   * as {@code Thread.sleep}, a socket read on a virtual thread, or {@code queue.poll(1, SECONDS)},
   * counts as blocked: the clock may jump while it waits, so a deadline may fire before the thing
   * it waits for would have happened.
   *
   * <p>The threads are sampled every millisecond. Activity, which starts the threshold anew, is: a
   * thread not blocked at a sample (a virtual thread reads {@code RUNNABLE} from the moment it is
   * unparked, even before it gets a carrier); CPU time spent between two samples by a platform
   * thread, where the JVM measures thread CPU time ({@link
   * java.lang.management.ThreadMXBean#isThreadCpuTimeSupported()}; it does on the usual JDKs), for
   * a platform thread reads {@code WAITING} from its unpark until the operating system runs it; a
   * deadline set or removed, a sleep begun, a thread entering or leaving the threads looked at.
   * What can still be missed: a platform thread unparked that the operating system does not run for
   * a whole threshold (a machine overloaded, or one CPU that the JIT compiler holds while the JVM
   * warms up, with a threshold of a few milliseconds: choose a longer threshold there), or any
   * platform thread's run between two samples where the JVM does not measure CPU time; and a thread
   * woken by something the clock does not look at (a thread outside every scope, a JDK wait on real
   * time) that runs and blocks again between two samples.
   *
   * @return this clock
   * @throws IllegalStateException if this clock is closed
   */
  public VirtualClock autoAdvance() {
    return autoAdvance(DEFAULT_AUTO_ADVANCE_THRESHOLD);
  }

  /**
   * As {@link #autoAdvance()}, with a threshold of your choice: a longer one for code that blocks
   * briefly on things the clock cannot see, a shorter one for faster tests.
   *
   * @param threshold how long, in real time, every thread must stay blocked before a jump
   * @return this clock
   * @throws NullPointerException if {@code threshold} is null
   * @throws IllegalArgumentException if {@code threshold} is negative
   * @throws IllegalStateException if this clock is closed
   */
  public VirtualClock autoAdvance(Duration threshold) {
    Objects.requireNonNull(threshold, "threshold");
    if (threshold.isNegative()) {
      throw new IllegalArgumentException("threshold must not be negative, was " + threshold);
    }
    advancing.lock();
    try {
      checkOpen("autoAdvance");
      thresholdNanos = saturatedNanos(threshold);
      if (autoThread == null) {
        // Made here, on the caller's thread: the first one in a JVM loads the JVM's management
        // classes, tens of milliseconds of CPU that would otherwise compete, on a busy CPU, with
        // the threads the auto-advance thread has begun to watch.
        PlatformCpu platformCpu = new PlatformCpu();
        autoThread =
            Thread.ofPlatform()
                .daemon()
                .name("taskgroup-virtual-clock")
                .start(() -> autoAdvanceLoop(platformCpu));
      }
    } finally {
      advancing.unlock();
    }
    return this;
  }

  /**
   * Goes back to the system clock. What is still pending goes on there with the time it had left: a
   * deadline 10 virtual seconds away fires 10 real seconds later, a sleep with 10 seconds to go
   * sleeps 10 real seconds more. Closing twice has no further effect.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    Thread auto;
    advancing.lock();
    try {
      auto = autoThread;
      LibraryClock.uninstall(time);
      time.close(); // sleepers wake and go on with the time they had left, on the system clock
    } finally {
      advancing.unlock();
    }
    if (auto != null) {
      LockSupport.unpark(auto);
      joinUninterruptibly(auto);
    }
  }

  @Override
  public String toString() {
    return "VirtualClock[" + instant() + (closed.get() ? ", closed" : "") + "]";
  }

  // ---- moving the time (under `advancing`) -----------------------------------------------------

  private void advanceTo(long target) {
    for (; ; ) {
      OptionalLong next = nextDue();
      if (next.isEmpty() || next.getAsLong() - target > 0L) {
        break;
      }
      if (next.getAsLong() - time.nanoTime() > 0L) {
        time.moveTo(next.getAsLong());
      }
      fireDue();
    }
    if (target - time.nanoTime() > 0L) {
      time.moveTo(target);
    }
    fireDue();
  }

  private void fireDue() {
    LibraryClock.fireDueDeadlines();
    time.wakeDueSleepers();
  }

  /** The earliest deadline or sleep pending. */
  private OptionalLong nextDue() {
    OptionalLong deadline = LibraryClock.nextDeadline();
    OptionalLong sleeper = time.nextSleeper();
    if (deadline.isEmpty()) {
      return sleeper;
    }
    if (sleeper.isEmpty() || deadline.getAsLong() - sleeper.getAsLong() <= 0L) {
      return deadline;
    }
    return sleeper;
  }

  /** {@code d} in nanoseconds, at most MAX_NANOS (a longer one would overflow a long). */
  private static long saturatedNanos(Duration d) {
    try {
      return Math.min(d.toNanos(), MAX_NANOS);
    } catch (ArithmeticException tooLong) {
      return MAX_NANOS;
    }
  }

  private void checkOpen(String what) {
    if (closed.get()) {
      throw new IllegalStateException("cannot " + what + ": this VirtualClock is closed");
    }
  }

  // ---- auto-advance ------------------------------------------------------------------------

  private void autoAdvanceLoop(PlatformCpu platformCpu) {
    long quietSince = System.nanoTime();
    long lastSleeps = -1L;
    long lastScheduled = -1L;
    long lastCpu = -1L;
    int lastThreads = -1;
    OptionalLong lastDue = OptionalLong.empty();
    while (!closed.get()) {
      LockSupport.parkNanos(this, POLL_NANOS);
      List<Thread> threads = LibraryClock.threadsInScopes();
      // Before the states: a sleeper this clock woke reads WAITING until it runs, and stops
      // counting as waking once its park returns. Read after the states, a sleeper that woke in
      // between was counted neither way (WAITING in the states, no longer waking).
      boolean waking = time.sleeperWaking();
      boolean blocked = allBlocked(threads);
      // Read after the snapshot: a thread that was outside every scope in the snapshot (it does
      // not count) and has entered one with a deadline since shows here as a new next due, which
      // is activity. Reading it before let the clock jump to that deadline at once (after a quiet
      // spell with nothing due) while its thread was running.
      OptionalLong due = nextDue();
      long sleeps = time.sleepsStarted();
      // Every deadline scheduled is activity too: a thread entering scope after scope, each with
      // a deadline on the same virtual instant, leaves `due` unchanged, and when the samples are
      // far apart (a loaded machine) two in a row can find it outside every scope in the snapshot
      // and inside the next one when `due` is read: quiet, with a deadline that is its own.
      long scheduled = LibraryClock.deadlinesScheduled();
      // CPU time spent by the platform threads is activity too: one unparked shows as WAITING
      // until the OS runs it, so two of them handing items to each other can both read WAITING
      // at sample after sample while they work; but any one of them that ran between two samples
      // has spent CPU time. Read after the states: one that read WAITING and has run since shows
      // here.
      long cpu = platformCpu.sum(threads);
      long realNow = System.nanoTime();
      boolean same =
          sleeps == lastSleeps
              && scheduled == lastScheduled
              && threads.size() == lastThreads
              && due.equals(lastDue)
              && cpu == lastCpu;
      if (!blocked || waking || !same) {
        lastCpu = cpu;
        lastScheduled = scheduled;
        lastSleeps = sleeps;
        lastThreads = threads.size();
        lastDue = due;
        quietSince = realNow;
        continue;
      }
      if (realNow - quietSince < thresholdNanos) {
        continue;
      }
      advancing.lock();
      try {
        OptionalLong next = nextDue();
        if (!closed.get() && next.isPresent() && next.equals(due)) { // else: activity, see above
          long target = next.getAsLong();
          advanceTo(
              target - time.nanoTime() > 0L ? target : time.nanoTime()); // (the timeline may wrap)
        }
      } finally {
        advancing.unlock();
      }
      quietSince = System.nanoTime();
    }
  }

  /**
   * Whether every thread is WAITING or TIMED_WAITING with no interrupt pending (an interrupted
   * thread cannot stay parked: it is about to run, typically to handle a cancellation that a
   * deadline just delivered).
   */
  private static boolean allBlocked(List<Thread> threads) {
    for (Thread t : threads) {
      Thread.State s = t.getState();
      if ((s != Thread.State.WAITING && s != Thread.State.TIMED_WAITING) || t.isInterrupted()) {
        return false;
      }
    }
    return true;
  }

  /**
   * The CPU time spent by the platform threads of a snapshot, where the JVM measures thread CPU
   * time ({@link ThreadMXBean}; else always 0). Virtual threads are left out: the JVM does not
   * measure theirs, and they read RUNNABLE from the moment they are unparked.
   */
  private static final class PlatformCpu {
    /** The JVM's bean, or null when it cannot measure thread CPU time. */
    private final ThreadMXBean bean;

    PlatformCpu() {
      ThreadMXBean b = ManagementFactory.getThreadMXBean();
      this.bean = b.isThreadCpuTimeSupported() ? b : null;
    }

    /**
     * The sum, in nanoseconds, over the platform threads of {@code threads}: it grows when any of
     * them runs (a thread's CPU time never decreases; one that leaves the snapshot changes its
     * size, which is activity anyway).
     */
    long sum(List<Thread> threads) {
      if (bean == null) {
        return 0L;
      }
      long sum = 0L;
      for (Thread t : threads) {
        if (!t.isVirtual()) {
          long nanos = bean.getThreadCpuTime(t.threadId()); // -1: ended, or measuring disabled
          if (nanos > 0L) {
            sum += nanos;
          }
        }
      }
      return sum;
    }
  }

  private static void joinUninterruptibly(Thread t) {
    boolean interrupted = false;
    while (t.isAlive()) {
      try {
        t.join();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
