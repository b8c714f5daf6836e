package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskTree;
import dev.taskgroup.internal.clock.LibraryClock;
import java.lang.ref.WeakReference;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * An adversarial conformance suite for the test kit: what {@link VirtualClock}'s javadoc promises
 * about advancing (boundaries, huge and repeated advances, ties), auto-advance (what holds the
 * clock still, what lets it jump), closing, and retention, checked against the closest upstream
 * contracts (Trio's {@code MockClock}, kotlinx-coroutines-test's {@code TestCoroutineScheduler}).
 */
@VirtualTime
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class VirtualTimeContractTest {
  private static final Duration CENTURY = Duration.ofDays(36_525);

  // ---- huge advances ---------------------------------------------------------------------------

  /**
   * "Moves the time forward by {@code duration}": a century is a century. Closest upstream: Trio's
   * {@code MockClock.jump(seconds)} and kotlinx {@code advanceTimeBy}, which add the amount as
   * given.
   */
  @Test
  void anAdvanceOfACenturyMovesTheVirtualNowByACentury(VirtualClock clock) {
    Instant start = clock.instant();
    clock.advance(CENTURY);
    assertThat(Duration.between(start, clock.instant())).isEqualTo(CENTURY);
  }

  /** "Time only moves forward": however far it is moved, the virtual now never goes back. */
  @Test
  void theVirtualNowNeverGoesBackAcrossManyHugeAdvances(VirtualClock clock) {
    Instant previous = clock.instant();
    for (int i = 0; i < 8; i++) {
      clock.advance(CENTURY);
      Instant now = clock.instant();
      assertThat(now).as("after advance #%d", i + 1).isAfter(previous);
      previous = now;
    }
  }

  /**
   * A sleep of a millennium is not over after a century. Closest upstream: Trio's {@code
   * sleep(math.inf)} / kotlinx {@code delay(Long.MAX_VALUE)} never end on a mock clock, whatever
   * the jump.
   */
  @Test
  void aMillenniumSleepIsNotWokenByACenturyAdvance(VirtualClock clock) throws Exception {
    AtomicReference<String> outcome = new AtomicReference<>();
    Thread sleeper =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    CancelScope.sleep(CENTURY.multipliedBy(10));
                    outcome.set("woke");
                  } catch (InterruptedException e) {
                    outcome.set("interrupted");
                  }
                });
    VirtualClockTest.awaitState(sleeper, Thread.State.WAITING);
    clock.advance(CENTURY);
    boolean ended = sleeper.join(Duration.ofMillis(500));
    try {
      assertThat(outcome.get()).as("the millennium sleep after one century").isNull();
      assertThat(ended).isFalse();
    } finally {
      sleeper.interrupt();
      sleeper.join();
    }
  }

  /** A timeout of a millennium has not expired after a century. */
  @Test
  void aMillenniumTimeoutHasNotFiredAfterACentury(VirtualClock clock) throws Exception {
    var scope = CancelScope.withTimeout(CENTURY.multipliedBy(10));
    CountDownLatch inside = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          inside.countDown();
                          release.await();
                        });
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    inside.await();
    clock.advance(CENTURY);
    try {
      assertThat(scope.cancelCalled()).as("deadline fired after a century").isFalse();
    } finally {
      release.countDown();
      runner.join();
    }
  }

  /**
   * The library's timeline is a long of nanoseconds, compared by difference; a virtual clock moved
   * for centuries wraps it. Auto-advance still jumps to the next deadline when the deadline lies
   * just past the wrap (a comparison by value would pick the current time and stall for good).
   */
  @Test
  void autoAdvanceJumpsAcrossTheWrapOfTheNanosecondTimeline(VirtualClock clock) throws Exception {
    // Up to 5 s before the largest long on the library's timeline (which goes on from where
    // earlier clocks of this JVM left it), in steps the timeline takes whole (2^61 ns at most).
    long left = Long.MAX_VALUE - LibraryClock.nanoTime() - TimeUnit.SECONDS.toNanos(5); // unsigned
    long step = Long.MAX_VALUE / 4;
    while (Long.compareUnsigned(left, step) > 0) {
      clock.advance(Duration.ofNanos(step));
      left -= step;
    }
    clock.advance(Duration.ofNanos(left));
    assertThat(Long.MAX_VALUE - LibraryClock.nanoTime()).isEqualTo(TimeUnit.SECONDS.toNanos(5));
    Instant start = clock.instant();
    clock.autoAdvance();
    assertThat(CancelScope.moveOnAfter(ofSec(10), () -> sleepThen(Duration.ofHours(1)))).isNull();
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(10));
  }

  /**
   * {@code setTimeout} / {@code setDeadline} while running "take effect at once, earlier or later",
   * also between forever and a finite time: a 10 s timeout made forever does not fire after an
   * hour; made 1 s again, it fires 1 s later.
   */
  @Test
  void aRunningDeadlineMovedToForeverAndBackFiresOnlyWhenFinite(VirtualClock clock)
      throws Exception {
    var scope = CancelScope.withTimeout(ofSec(10));
    CountDownLatch inside = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () ->
                    runIgnoringInterrupt(
                        scope,
                        () -> {
                          inside.countDown();
                          new CountDownLatch(1).await();
                        }));
    inside.await();
    scope.setTimeout(ChronoUnit.FOREVER.getDuration());
    clock.advance(Duration.ofHours(1));
    assertThat(scope.cancelCalled()).as("forever, after an hour").isFalse();
    scope.setDeadline(Instant.MAX);
    clock.advance(CENTURY);
    assertThat(scope.cancelCalled()).as("Instant.MAX, after a century").isFalse();
    scope.setTimeout(ofSec(1));
    clock.advance(Duration.ofMillis(999));
    assertThat(scope.cancelCalled()).isFalse();
    clock.advance(Duration.ofMillis(1));
    assertThat(scope.cancelCalled()).isTrue();
    runner.join();
    assertThat(scope.cancelCaught()).isTrue();
  }

  /**
   * {@code autoAdvance(threshold)} documents only null and negative thresholds as errors; a very
   * long one (a test that wants jumps only in practice never) must be accepted, as {@code advance}
   * accepts a very long duration.
   */
  @Test
  void autoAdvanceAcceptsAThresholdTooLongForNanoseconds(VirtualClock clock) {
    assertThatCode(() -> clock.autoAdvance(Duration.ofSeconds(Long.MAX_VALUE)))
        .doesNotThrowAnyException();
  }

  // ---- retention -------------------------------------------------------------------------------

  /**
   * The library's promise (RetentionTest, javadoc of TaskGroup): once a child has finished, its
   * result is unreachable unless somebody holds its Task. An installed clock, moved by hand (no
   * auto-advance), must not keep every task forked while it is installed.
   */
  @RepeatedTest(3)
  void anInstalledClockKeepsNoFinishedTaskOrItsResult(VirtualClock clock) throws Exception {
    int burst = 400;
    Queue<WeakReference<Object>> results = new ConcurrentLinkedQueue<>();
    CountDownLatch produced = new CountDownLatch(burst);
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < burst; i++) {
            g.fork(
                () -> {
                  Object result = new byte[1024];
                  results.add(new WeakReference<>(result));
                  produced.countDown();
                  return result;
                });
          }
          produced.await();
          clock.advance(Duration.ofSeconds(1)); // the clock is in use, by hand
          assertThat(awaitCleared(List.copyOf(results)))
              .as("results of finished tasks still reachable while the clock is installed")
              .isZero();
        });
  }

  /**
   * Terminated threads that used a scope while the clock was installed are not kept by it either
   * (the clock looks at threads inside scopes; one that ended is gone).
   */
  @RepeatedTest(3)
  void anInstalledClockKeepsNoTerminatedThreadThatUsedAScope(VirtualClock clock) throws Exception {
    List<WeakReference<Thread>> threads = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      Thread t =
          Thread.ofVirtual() // (a terminated platform thread can stay reachable from the JDK)
              .start(
                  () -> {
                    try {
                      CancelScope.create().run(CancelScope::checkpoint);
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  });
      t.join();
      threads.add(new WeakReference<>(t));
    }
    clock.advance(Duration.ofSeconds(1));
    assertThat(awaitCleared(threads))
        .as("terminated threads still reachable while the clock is installed")
        .isZero();
  }

  /** A sleep cut short by a cancellation leaves nothing behind in the clock (not its thread). */
  @RepeatedTest(3)
  void sleepsCutShortByCancellationLeaveNoThreadInTheClock(VirtualClock clock) throws Exception {
    List<WeakReference<Thread>> threads = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      var scope = CancelScope.create();
      Thread t =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      scope.run(() -> CancelScope.sleep(Duration.ofDays(1)));
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  });
      VirtualClockTest.awaitState(t, Thread.State.WAITING);
      scope.cancel();
      t.join();
      assertThat(scope.cancelCaught()).isTrue();
      threads.add(new WeakReference<>(t));
    }
    assertThat(awaitCleared(threads)).as("sleepers kept by the clock").isZero();
  }

  // ---- boundaries and ties ---------------------------------------------------------------------

  /**
   * {@code advance(d)} where {@code d} is exactly the time left to a group's deadline fires it, and
   * the cancellation has been delivered when {@code advance} returns; one nanosecond less does not.
   * Closest upstream: Trio's {@code test_mock_clock} ({@code clock.jump} to exactly a deadline
   * expires it) and kotlinx {@code advanceTimeBy(n)} which runs tasks due at exactly {@code n} only
   * with {@code runCurrent()} (here advance promises "due on the way", the target included).
   */
  @RepeatedTest(10)
  void aGroupDeadlineFiresExactlyAtTheBoundaryAndNotANanosecondBefore(VirtualClock clock)
      throws Exception {
    int children = 20;
    CountDownLatch waiting = new CountDownLatch(children);
    var group = TaskGroup.builder().timeout(Duration.ofSeconds(30)).build();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () -> {
                          for (int i = 0; i < children; i++) {
                            group.fork(
                                () -> {
                                  waiting.countDown();
                                  new CountDownLatch(1).await(); // only a cancellation ends it
                                });
                          }
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    waiting.await();
    clock.advance(Duration.ofSeconds(30).minusNanos(1));
    assertThat(group.cancelCalled()).as("one nanosecond before the deadline").isFalse();
    clock.advance(Duration.ofNanos(1));
    assertThat(group.cancelCalled()).as("at the deadline, when advance returns").isTrue();
    owner.join();
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * A deadline and a sleep due at the same instant: the scope around the sleep is cancelled and
   * absorbs it, as in Trio ({@code with move_on_after(10): await sleep(10)} on a {@code MockClock}
   * jumped by 10: both expire, the cancellation propagates to the outermost cancelled scope).
   * Closest: Trio's {@code test_cancel_scope_deadline} family.
   */
  @RepeatedTest(10)
  void aDeadlineAndASleepDueAtTheSameInstantTheScopeIsCancelled(VirtualClock clock)
      throws Exception {
    AtomicReference<String> result = new AtomicReference<>("not run");
    AtomicReference<CancelScope> scope = new AtomicReference<>(CancelScope.withTimeout(ofSec(10)));
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    result.set(
                        scope
                            .get()
                            .call(
                                () -> {
                                  CancelScope.sleep(ofSec(10));
                                  return "slept";
                                }));
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    VirtualClockTest.awaitState(runner, Thread.State.WAITING);
    clock.advance(ofSec(10));
    runner.join();
    assertThat(result.get()).isNull();
    assertThat(scope.get().cancelCaught()).isTrue();
  }

  /**
   * Many deadlines due at one instant: a single {@code advance} fires every one of them, and each
   * cancellation is delivered before it returns. (asyncio's {@code test_timeouts}: many timeouts at
   * one loop time all expire in one iteration; closest.)
   */
  @RepeatedTest(10)
  void manyDeadlinesAtOneInstantAllFireInOneAdvance(VirtualClock clock) throws Exception {
    int n = 100;
    List<CancelScope> scopes = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      scopes.add(CancelScope.withTimeout(ofSec(10)));
    }
    CountDownLatch inside = new CountDownLatch(n);
    TaskGroup group = TaskGroup.create();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () -> {
                          for (CancelScope s : scopes) {
                            group.fork(
                                () ->
                                    s.run(
                                        () -> {
                                          inside.countDown();
                                          new CountDownLatch(1).await();
                                        }));
                          }
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    inside.await();
    clock.advance(ofSec(10));
    assertThat(scopes).allSatisfy(s -> assertThat(s.cancelCalled()).isTrue());
    owner.join();
    assertThat(scopes).allSatisfy(s -> assertThat(s.cancelCaught()).isTrue());
    assertThat(group.cancelCalled()).isFalse();
  }

  // ---- moving the time while things happen ------------------------------------------------------

  /**
   * No sleep ends before its virtual duration, and no timeout fires before its own, while one
   * thread moves the time in small steps and a group forks children that start their sleeps and
   * timeouts at arbitrary virtual times (register / re-check / park against a concurrent move).
   */
  @RepeatedTest(20)
  void whileChildrenAreForkedAndTimeMovesNoSleepOrTimeoutEndsEarly(VirtualClock clock)
      throws Exception {
    int children = 40;
    Queue<String> early = new ConcurrentLinkedQueue<>();
    CountDownLatch done = new CountDownLatch(children);
    TaskGroup group = TaskGroup.create();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () -> {
                          for (int i = 0; i < children; i++) {
                            boolean sleeps = i % 2 == 0;
                            group.fork(
                                () -> {
                                  try {
                                    Instant before = clock.instant();
                                    if (sleeps) {
                                      CancelScope.sleep(ofSec(1));
                                    } else {
                                      CancelScope.moveOnAfter(
                                          ofSec(1),
                                          () -> {
                                            new CountDownLatch(1).await();
                                            return null;
                                          });
                                    }
                                    Duration took = Duration.between(before, clock.instant());
                                    if (took.compareTo(ofSec(1)) < 0) {
                                      early.add((sleeps ? "sleep" : "timeout") + " took " + took);
                                    }
                                  } finally {
                                    done.countDown();
                                  }
                                  return null;
                                });
                          }
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    while (done.getCount() > 0) {
      clock.advance(Duration.ofMillis(50));
      Thread.yield();
    }
    owner.join();
    assertThat(early).isEmpty();
  }

  /** Advances from several threads at once add up; the time never goes back in between. */
  @RepeatedTest(20)
  void concurrentAdvancesAddUp(VirtualClock clock) throws Exception {
    Instant start = clock.instant();
    int threads = 4;
    int steps = 200;
    Queue<String> backwards = new ConcurrentLinkedQueue<>();
    List<Thread> movers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      movers.add(
          Thread.ofPlatform()
              .start(
                  () -> {
                    Instant last = clock.instant();
                    for (int i = 0; i < steps; i++) {
                      clock.advance(Duration.ofMillis(1));
                      Instant now = clock.instant();
                      if (now.isBefore(last)) {
                        backwards.add(last + " then " + now);
                      }
                      last = now;
                    }
                  }));
    }
    for (Thread t : movers) {
      t.join();
    }
    assertThat(backwards).isEmpty();
    assertThat(clock.instant()).isEqualTo(start.plusMillis((long) threads * steps));
  }

  /**
   * A child that never blocks (busy, checking {@code isCancelled()}) is still cancelled by an
   * advance, which does not wait for it; the group then ends as cancelled by its own deadline.
   */
  @RepeatedTest(5)
  void aBusyChildIsCancelledByAnAdvanceThatDoesNotWaitForIt(VirtualClock clock) throws Exception {
    CountDownLatch spinning = new CountDownLatch(1);
    var group = TaskGroup.builder().timeout(ofSec(5)).build();
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    group.run(
                        () ->
                            group.fork(
                                () -> {
                                  spinning.countDown();
                                  while (!CancelScope.isCancelled()) {
                                    Thread.onSpinWait();
                                  }
                                  CancelScope.checkpoint(); // throws: the cancellation
                                }));
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    spinning.await();
    clock.advance(ofSec(5));
    assertThat(group.cancelCalled()).isTrue();
    owner.join();
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * A failure caused by an advance is reported, not lost (kotlinx {@code runTest} reports what
   * fails in the test's coroutines at its end; here the group does): an {@code onCancel} action
   * that a deadline fired by {@code advance} starts, and that throws, is a failure of the group.
   */
  @RepeatedTest(5)
  void aFailingOnCancelActionStartedByAnAdvanceFailsTheGroup(VirtualClock clock) throws Exception {
    CountDownLatch inside = new CountDownLatch(1);
    var group = TaskGroup.builder().timeout(ofSec(5)).build();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () ->
                            group.fork(
                                () -> {
                                  try (var hook =
                                      CancelScope.onCancel(
                                          () -> {
                                            throw new java.io.IOException("hook failed");
                                          })) {
                                    inside.countDown();
                                    new CountDownLatch(1).await();
                                  }
                                }));
                  } catch (Throwable e) {
                    thrown.set(e);
                  }
                });
    inside.await();
    clock.advance(ofSec(5));
    owner.join();
    assertThat(thrown.get())
        .isInstanceOf(dev.taskgroup.TaskGroupException.class)
        .satisfies(
            e ->
                assertThat(((dev.taskgroup.TaskGroupException) e).failures())
                    .anySatisfy(f -> assertThat(f).hasMessage("hook failed")));
  }

  // ---- what stays on real time -----------------------------------------------------------------

  /**
   * The javadoc: {@code Task.get(timeout)} stays on real time. A timed get of a child asleep for an
   * hour of virtual time gives up after its real timeout and does not move the clock; the child
   * ends when the virtual hour is advanced.
   */
  @Test
  void aTimedTaskGetWaitsOnRealTimeAndMovesNothing(VirtualClock clock) throws Exception {
    Instant start = clock.instant();
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          var child =
              group.fork(
                  () -> {
                    CancelScope.sleep(Duration.ofHours(1));
                    return "woke";
                  });
          long t0 = System.nanoTime();
          assertThatThrownBy(() -> child.get(100, TimeUnit.MILLISECONDS))
              .isInstanceOf(java.util.concurrent.TimeoutException.class);
          assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(100_000_000L);
          assertThat(clock.instant()).isEqualTo(start);
          clock.advance(Duration.ofHours(1));
          assertThat(child.get()).isEqualTo("woke");
        });
  }

  // ---- auto-advance ----------------------------------------------------------------------------

  /**
   * A timeout meant as "never" ({@code ChronoUnit.FOREVER}) is not something to jump to: with
   * everything blocked and nothing else due, the clock must not fire it. Closest upstream: Trio's
   * {@code MockClock(autojump_threshold=0)} with {@code move_on_at(math.inf)} never jumps to it
   * (there is no next deadline).
   */
  @Test
  void autoAdvanceDoesNotJumpToAForeverTimeout(VirtualClock clock) throws Exception {
    clock.autoAdvance(Duration.ZERO);
    var scope = CancelScope.withTimeout(ChronoUnit.FOREVER.getDuration());
    CountDownLatch release = new CountDownLatch(1);
    Thread runner = Thread.ofVirtual().start(() -> runIgnoringInterrupt(scope, release::await));
    VirtualClockTest.awaitState(runner, Thread.State.WAITING);
    spinRealMillis(200); // many thresholds with everything blocked
    try {
      assertThat(scope.cancelCalled()).as("forever timeout fired by auto-advance").isFalse();
    } finally {
      release.countDown();
      runner.join();
    }
  }

  /**
   * The javadoc: a thread is blocked only if it "is not a sleeper this clock has just woken". A
   * deadline inside a cooperative scope ends a sleep without an interrupt; platform threads woken
   * so, many at once while busy threads hold the cores, show as WAITING until they are scheduled,
   * and the clock must not move on meanwhile: it would jump to the end of their own day-long
   * sleeps. Each reads the instant of its deadline (absolute, so that a child entering late reads
   * it too).
   */
  @RepeatedTest(20)
  void platformThreadsWokenByTheirDeadlineInACooperativeScopeHoldTheAutoAdvanceStill(
      VirtualClock clock) throws Exception {
    clock.autoAdvance(Duration.ofMillis(1));
    Instant start = clock.instant();
    Instant deadline = start.plus(ofSec(1));
    Queue<Duration> read = new ConcurrentLinkedQueue<>();
    AtomicBoolean stop = new AtomicBoolean();
    List<Thread> busy = new ArrayList<>();
    for (int i = 0; i < 2 * Runtime.getRuntime().availableProcessors(); i++) {
      busy.add(
          Thread.ofPlatform()
              .start(
                  () -> {
                    while (!stop.get()) {
                      Thread.onSpinWait();
                    }
                  }));
    }
    int children = 40;
    var group = TaskGroup.builder().threadFactory(r -> Thread.ofPlatform().unstarted(r)).build();
    try {
      group.run(
          () -> {
            for (int i = 0; i < children; i++) {
              group.fork(
                  () -> {
                    CancelScope.cooperative()
                        .run(
                            () ->
                                CancelScope.withDeadline(deadline)
                                    .run(() -> CancelScope.sleep(Duration.ofDays(1))));
                    read.add(Duration.between(start, clock.instant()));
                  });
            }
          });
    } finally {
      stop.set(true);
      for (Thread t : busy) {
        t.join();
      }
    }
    assertThat(read).hasSize(children).containsOnly(ofSec(1));
  }

  /**
   * The javadoc: a platform thread in native I/O is RUNNABLE and holds the clock still. A child on
   * a platform thread blocked in a real socket read, under a 1 s group timeout, sees no jump while
   * it reads; it reads what the peer sends.
   */
  @RepeatedTest(5)
  void aPlatformThreadInASocketReadHoldsTheAutoAdvanceStill(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
        Socket peer = server.accept()) {
      AtomicReference<Thread> reader = new AtomicReference<>();
      AtomicInteger read = new AtomicInteger(-2);
      var group =
          TaskGroup.builder()
              .timeout(ofSec(1))
              .threadFactory(r -> Thread.ofPlatform().unstarted(r))
              .build();
      Thread owner =
          Thread.ofVirtual()
              .start(
                  () ->
                      runIgnoringInterrupt(
                          CancelScope.create(),
                          () ->
                              group.run(
                                  () ->
                                      group.fork(
                                          () -> {
                                            reader.set(Thread.currentThread());
                                            read.set(client.getInputStream().read());
                                          }))));
      awaitInSocketRead(
          reader,
          () ->
              "reader="
                  + reader.get()
                  + " group="
                  + group
                  + " read="
                  + read.get()
                  + " moved="
                  + Duration.between(start, clock.instant()));
      spinRealMillis(200); // 20 thresholds
      assertThat(clock.instant()).as("the clock jumped during a native read").isEqualTo(start);
      peer.getOutputStream().write(42);
      owner.join();
      assertThat(read.get()).isEqualTo(42);
    }
  }

  /**
   * The javadoc's counterpart: a socket read on a virtual thread parks, counts as blocked, and the
   * clock jumps to the group's deadline, whose cancellation ends the read.
   */
  @RepeatedTest(5)
  void aVirtualThreadInASocketReadLetsTheClockJumpToTheDeadline(VirtualClock clock)
      throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
        Socket peer = server.accept()) {
      var group = TaskGroup.builder().timeout(ofSec(1)).build();
      group.run(() -> group.fork(() -> client.getInputStream().read()));
      assertThat(group.cancelCaught()).isTrue();
      assertThat(clock.instant()).isEqualTo(start.plusSeconds(1));
    }
  }

  /**
   * The threshold is real time every thread stays blocked before a jump: with 300 ms, a wait that
   * needs one jump takes at least 300 ms of real time, and lands exactly on the deadline.
   */
  @Test
  void autoAdvanceWaitsItsThresholdOfRealTimeBeforeAJump(VirtualClock clock) throws Exception {
    clock.autoAdvance(Duration.ofMillis(300));
    Instant start = clock.instant();
    long t0 = System.nanoTime();
    assertThat(CancelScope.moveOnAfter(ofSec(10), () -> sleepThen(Duration.ofHours(1)))).isNull();
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(300_000_000L);
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(10));
  }

  /**
   * The javadoc: a RUNNABLE thread inside a scope holds the clock still. A thread that does nothing
   * but enter and leave scopes with a one-hour timeout is always running and always entering one:
   * the clock must never jump to such a deadline, not even in the instant between the scope's
   * deadline being scheduled and the thread being counted. (NestedDeadlinesTest's first test failed
   * 2 runs in 10 this way: the outer 60 s deadline fired before the inner scope was entered.)
   */
  @RepeatedTest(5)
  void aThreadEnteringScopesWithDeadlinesIsNeverJumpedOver(VirtualClock clock) throws Exception {
    clock.autoAdvance(); // the default threshold: a thread between two scopes for 10 ms is idle
    Instant start = clock.instant();
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
    int entered = 0;
    while (System.nanoTime() - until < 0L) {
      var scope = CancelScope.withTimeout(Duration.ofHours(1));
      scope.run(() -> {});
      entered++;
      assertThat(scope.cancelCalled()).as("after %d scopes", entered).isFalse();
    }
    assertThat(clock.instant()).as("after %d scopes", entered).isEqualTo(start);
  }

  /**
   * A chain of sleeps under auto-advance is not skipped: each jump goes to the next sleep only once
   * the sleeper woken by the previous one has started it, so a ticker of 1 s ticks exactly 25 times
   * before a 25.5 s deadline. (A jump while a woken sleeper has yet to run would skip ahead to the
   * deadline.) Platform threads, which show as WAITING until they run, on purpose. Closest: Trio's
   * {@code test_autojump} with a periodic task.
   */
  @RepeatedTest(10)
  void aTickerUnderAutoAdvanceTicksOncePerVirtualSecond(VirtualClock clock) throws Exception {
    clock.autoAdvance(Duration.ZERO);
    AtomicInteger ticks = new AtomicInteger();
    var group =
        TaskGroup.builder()
            .timeout(Duration.ofMillis(25_500))
            .threadFactory(r -> Thread.ofPlatform().unstarted(r))
            .build();
    group.run(
        () ->
            group.fork(
                () -> {
                  while (true) {
                    CancelScope.sleep(ofSec(1));
                    ticks.incrementAndGet();
                  }
                }));
    assertThat(group.cancelCaught()).isTrue();
    assertThat(ticks.get()).isEqualTo(25);
  }

  /**
   * Children queued for a place under {@code maxConcurrency} hold the clock still until they run:
   * three 1 s sleeps one at a time end at 1, 2 and 3 virtual seconds.
   */
  @RepeatedTest(5)
  void childrenWaitingForAPlaceRunInTurnOnVirtualTime(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    Queue<Duration> ended = new ConcurrentLinkedQueue<>();
    var group = TaskGroup.builder().maxConcurrency(1).build();
    group.run(
        () -> {
          for (int i = 0; i < 3; i++) {
            group.fork(
                () -> {
                  CancelScope.sleep(ofSec(1));
                  ended.add(Duration.between(start, clock.instant()));
                });
          }
        });
    assertThat(List.copyOf(ended)).containsExactly(ofSec(1), ofSec(2), ofSec(3));
  }

  /** {@code start} waits for its child's signal on virtual time: a 5 s warm-up takes 5 s. */
  @RepeatedTest(5)
  void startWaitsForTheSignalOnVirtualTime(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          String port =
              group.start(
                  signal -> {
                    CancelScope.sleep(ofSec(5));
                    signal.started("ready");
                    CancelScope.sleep(Duration.ofHours(1));
                  });
          assertThat(port).isEqualTo("ready");
          assertThat(clock.instant()).isEqualTo(start.plusSeconds(5));
          group.cancel();
        });
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * Nested deadlines and a shield on virtual time: the outer 10 s deadline cuts the work short, the
   * cleanup in a shielded scope with its own 5 s timeout still sleeps on, and is cut at 15 s.
   * Closest: Trio's docs example of shielded cleanup ({@code with move_on_after(5) as
   * cleanup_scope: cleanup_scope.shield = True}).
   */
  @RepeatedTest(5)
  void aShieldedCleanupAfterAnOuterDeadlineRunsOnItsOwnVirtualTimeout(VirtualClock clock)
      throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    AtomicReference<Instant> cleanupEnded = new AtomicReference<>();
    var cleanup = CancelScope.withTimeout(ofSec(5));
    cleanup.setShielded(true);
    String result =
        CancelScope.moveOnAfter(
            ofSec(10),
            () -> {
              try {
                return sleepThen(Duration.ofHours(1));
              } finally {
                cleanup.run(() -> CancelScope.sleep(Duration.ofHours(1)));
                cleanupEnded.set(clock.instant());
              }
            });
    assertThat(result).isNull();
    assertThat(cleanup.cancelCaught()).isTrue();
    assertThat(cleanupEnded.get()).isEqualTo(start.plusSeconds(15));
  }

  // ---- closing ---------------------------------------------------------------------------------

  /**
   * After {@code close()} the auto-advance thread has ended (no thread of the clock outlives it),
   * and every method but {@code instant()} and {@code close()} says the clock is closed.
   */
  @Test
  void closeEndsTheAutoAdvanceThreadAndLaterCallsSayClosed(VirtualClock clock) throws Exception {
    clock.autoAdvance(Duration.ofDays(1));
    assertThat(clockThreads()).isNotEmpty();
    clock.advance(ofSec(3));
    Instant reached = clock.instant();
    clock.close();
    assertThat(clockThreads()).as("auto-advance threads alive after close").isEmpty();
    assertThat(clock.instant()).isEqualTo(reached);
    assertThatThrownBy(clock::autoAdvance)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    assertThatThrownBy(() -> clock.advance(Duration.ZERO))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    assertThatThrownBy(() -> clock.autoAdvance(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessageContaining("threshold");
    clock.close(); // again: no effect; the extension closes it a third time
  }

  /** Null and negative thresholds are refused as documented, before anything starts. */
  @Test
  void autoAdvanceRefusesNullAndNegativeThresholds(VirtualClock clock) {
    assertThatThrownBy(() -> clock.autoAdvance(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessageContaining("threshold");
    assertThatThrownBy(() -> clock.autoAdvance(Duration.ofMillis(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(clockThreads()).isEmpty();
  }

  /**
   * Closing while one thread waits inside a scope with a pending deadline and another sleeps: both
   * go on (with the minute they had left, on the system clock), and the next clock can be installed
   * at once, starting at the real now; it stands still, so neither ends meanwhile.
   */
  @Test
  void afterCloseWaitersGoOnAndANewClockCanBeInstalledAtOnce(VirtualClock clock) throws Exception {
    var scope = CancelScope.withTimeout(Duration.ofHours(1));
    CountDownLatch release = new CountDownLatch(1);
    Thread waiter = Thread.ofVirtual().start(() -> runIgnoringInterrupt(scope, release::await));
    Thread sleeper =
        Thread.ofVirtual()
            .start(() -> runIgnoringInterrupt(CancelScope.create(), () -> sleepThen(ofSec(3600))));
    VirtualClockTest.awaitState(waiter, Thread.State.WAITING);
    VirtualClockTest.awaitState(sleeper, Thread.State.WAITING);
    clock.advance(Duration.ofMinutes(59));
    clock.close();
    try (VirtualClock next = VirtualClock.install()) {
      assertThat(next.instant()).isBefore(clock.instant()); // the real now again
      assertThat(scope.cancelCalled()).isFalse();
      assertThat(sleeper.isAlive()).isTrue();
    } finally {
      release.countDown();
      sleeper.interrupt();
      waiter.join();
      sleeper.join();
    }
  }

  // ---- the JUnit extension ---------------------------------------------------------------------

  /** A virtual-time test class whose {@code @AfterEach} fails. */
  @VirtualTime
  static class AfterEachFails {
    @AfterEach
    void after() {
      throw new IllegalStateException("after each fails on purpose");
    }

    @Test
    void test(VirtualClock clock) {
      clock.advance(Duration.ofHours(1));
    }
  }

  /** A virtual-time test class whose {@code @BeforeEach} fails. */
  @VirtualTime
  static class BeforeEachFails {
    @BeforeEach
    void before(VirtualClock clock) {
      clock.autoAdvance();
      throw new IllegalStateException("before each fails on purpose");
    }

    @Test
    void test() {}
  }

  /** Annotated, and so is its {@code @Nested} class: one clock per test, not two. */
  @VirtualTime
  static class Outer {
    @Test
    void outer(VirtualClock clock) {
      clock.advance(Duration.ofMinutes(1));
    }

    @Nested
    @VirtualTime
    class Inner {
      @Test
      void inner(VirtualClock clock) throws InterruptedException {
        clock.autoAdvance();
        assertThat(CancelScope.moveOnAfter(ofSec(5), () -> sleepThen(Duration.ofHours(1))))
            .isNull();
      }
    }
  }

  /** Asks for the clock in its constructor, which the javadoc says is refused. */
  @VirtualTime
  static class ClockInConstructor {
    ClockInConstructor(VirtualClock clock) {}

    @Test
    void test() {}
  }

  /** One virtual-time method beside a plain one: the plain one runs on the system clock. */
  static class OneMethodAnnotated {
    @Test
    @VirtualTime
    void virtual(VirtualClock clock) {
      clock.advance(Duration.ofDays(1));
    }

    @Test
    void plain() {
      VirtualClock.install().close(); // nothing installed: it can install one
    }
  }

  /**
   * The extension closes the clock "after the test, whether it passed or not": also when an
   * {@code @AfterEach} or a {@code @BeforeEach} (after the clock was installed) fails.
   */
  @Test
  void theClockIsClosedWhenAnAfterEachOrABeforeEachFails(VirtualClock clock) {
    clock.close(); // this test's own clock: the classes run below install theirs
    for (Class<?> c : List.of(AfterEachFails.class, BeforeEachFails.class)) {
      TestExecutionSummary summary = runClass(c);
      assertThat(summary.getTestsFailedCount()).as(c.getSimpleName()).isEqualTo(1);
      assertThat(clockThreads()).as("auto-advance thread left by " + c.getSimpleName()).isEmpty();
      VirtualClock.install().close(); // nothing left installed
    }
  }

  /** {@code @Inherited} / {@code @Nested}: the extension is registered once, one clock per test. */
  @Test
  void aNestedAnnotatedClassGetsOneClockPerTest(VirtualClock clock) {
    clock.close();
    TestExecutionSummary summary = runClass(Outer.class);
    summary.getFailures().forEach(f -> f.getException().printStackTrace());
    assertThat(summary.getTestsSucceededCount()).isEqualTo(2);
    assertThat(summary.getTotalFailureCount()).isZero();
    VirtualClock.install().close();
  }

  /**
   * The javadoc: a {@code VirtualClock} parameter outside a test (a constructor) throws {@link
   * ParameterResolutionException}.
   */
  @Test
  void aClockParameterInAConstructorIsRefusedClearly(VirtualClock clock) {
    clock.close();
    TestExecutionSummary summary = runClass(ClockInConstructor.class);
    assertThat(summary.getTestsFailedCount()).isEqualTo(1);
    Throwable failure = summary.getFailures().get(0).getException();
    assertThat(failure)
        .isInstanceOf(ParameterResolutionException.class)
        .hasMessageContaining("exists only per test");
    VirtualClock.install().close();
  }

  /** {@code @VirtualTime} on a method gives that method a clock, and no other. */
  @Test
  void anAnnotatedMethodLeavesItsSiblingOnTheSystemClock(VirtualClock clock) {
    clock.close();
    TestExecutionSummary summary = runClass(OneMethodAnnotated.class);
    summary.getFailures().forEach(f -> f.getException().printStackTrace());
    assertThat(summary.getTestsSucceededCount()).isEqualTo(2);
  }

  private static TestExecutionSummary runClass(Class<?> testClass) {
    var request =
        LauncherDiscoveryRequestBuilder.request()
            .selectors(DiscoverySelectors.selectClass(testClass))
            .configurationParameter("junit.jupiter.execution.parallel.enabled", "false")
            .build();
    var listener = new SummaryGeneratingListener();
    LauncherFactory.create().execute(request, listener);
    return listener.getSummary();
  }

  // ---- small helpers ---------------------------------------------------------------------------

  /** Work that may throw and be interrupted. */
  interface Work {
    void run() throws Exception;
  }

  /** Runs {@code work} in {@code scope}; an interrupt (a test's own clean-up) just ends it. */
  private static void runIgnoringInterrupt(CancelScope scope, Work work) {
    try {
      scope.run(work::run);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static String sleepThen(Duration d) throws InterruptedException {
    CancelScope.sleep(d);
    return "slept";
  }

  /** Burns real time on this (RUNNABLE) thread; used only to let a clock's threshold pass. */
  private static void spinRealMillis(long ms) {
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
    while (System.nanoTime() - until < 0L) {
      Thread.onSpinWait();
    }
  }

  private static List<Thread> clockThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().equals("taskgroup-virtual-clock") && t.isAlive())
        .toList();
  }

  /**
   * Waits (at most 10 s) until the thread in {@code ref} is in a native socket read (platform
   * thread); fails with {@code state} otherwise.
   */
  private static void awaitInSocketRead(AtomicReference<Thread> ref, Supplier<String> state) {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      Thread t = ref.get();
      if (t != null) {
        StackTraceElement[] stack = t.getStackTrace();
        boolean inSocket =
            Arrays.stream(stack).anyMatch(e -> e.getClassName().equals("sun.nio.ch.NioSocketImpl"));
        if (inSocket && stack.length > 0 && stack[0].isNativeMethod()) {
          return;
        }
      }
      if (System.nanoTime() - until > 0L) {
        throw new AssertionError("no socket read after 10 s: " + state.get());
      }
      Thread.onSpinWait();
    }
  }

  private static Duration ofSec(long s) {
    return Duration.ofSeconds(s);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  /**
   * Sweeps the task tree's roots and collects until every reference is cleared or 5 s have passed;
   * returns how many are left. (The 20 ms pause lets finished threads terminate between
   * collections; it orders nothing.)
   */
  static int awaitCleared(List<? extends WeakReference<?>> refs) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    int alive;
    do {
      // The library's tree keeps the threads that used scopes until its next sweep (amortised,
      // bounded: TreeRoots); a capture sweeps it, so what is left is kept by something else.
      TaskTree.capture();
      System.gc();
      alive = (int) refs.stream().filter(r -> r.get() != null).count();
      if (alive == 0) {
        return 0;
      }
      Thread.sleep(20);
    } while (System.nanoTime() < end);
    return alive;
  }
}
