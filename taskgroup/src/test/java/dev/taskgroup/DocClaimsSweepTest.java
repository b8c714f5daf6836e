package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.Fixtures.ThreadKind;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Checks that the user-facing documents say the truth: each test asserts one concrete behavioural
 * claim of README.md, docs/guide.md, docs/cancellation.md, docs/migrating/*.md or a public class's
 * javadoc, quoted (shortened) in the test's comment. Claims that earlier tests already assert are
 * not repeated here; the equivalence claims of the migration guides are checked against the
 * upstream behaviour they name (Trio, asyncio, Kotlin, the JDK), from memory where marked
 * "closest".
 */
@Timeout(20)
class DocClaimsSweepTest {

  // ---------------------------------------------------------------- guide: Cancelling a group

  /**
   * Guide, "Cancelling a group": a fork into a group that is already cancelled does not start the
   * work, "the thread factory is not even called", and returns a task that is already CANCELLED.
   */
  @RepeatedTest(20)
  void forkIntoCancelledGroupNeverCallsTheFactory() throws Exception {
    AtomicInteger made = new AtomicInteger();
    ThreadFactory counting =
        r -> {
          made.incrementAndGet();
          return Thread.ofVirtual().unstarted(r);
        };
    var group = TaskGroup.builder().name("g").threadFactory(counting).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    group.run(
        () -> {
          group.cancel();
          task.set(group.fork(() -> ran.set(true)));
        });
    assertThat(made).hasValue(0);
    assertThat(ran).isFalse();
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * Guide / TaskGroup.cancel javadoc: "Calling it after the group finished only sets
   * cancelCalled()": cancelCaught stays false, and nothing is interrupted on the caller.
   */
  @Test
  void cancelAfterFinishOnlySetsCancelCalled() throws Exception {
    var group = TaskGroup.named("late");
    group.run(() -> group.fork(() -> {}));
    group.cancel("too late");
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide: "Calling cancel() before run makes the group start cancelled: the body's first
   * checkpoint throws"; the group absorbs it and run returns normally with cancelCaught().
   */
  @Test
  void cancelBeforeRunStartsCancelled() throws Exception {
    var group = TaskGroup.named("early");
    group.cancel("before");
    AtomicBoolean after = new AtomicBoolean();
    group.run(
        () -> {
          CancelScope.checkpoint();
          after.set(true);
        });
    assertThat(after).isFalse();
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(group.cancelScope().cancelReason()).contains("before");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide: "Calling cancel() twice is the same as once; the first reason is kept and shows up in
   * cancelScope().cancelReason()".
   */
  @Test
  void firstReasonIsKept() throws Exception {
    var group = TaskGroup.named("twice");
    group.run(
        () -> {
          group.cancel("first");
          group.cancel("second");
        });
    assertThat(group.cancelScope().cancelReason()).contains("first");
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * Trio mapping: "n.cancel_scope.cancel() | n.cancel() (or n.cancelScope().cancel())". Cancelling
   * the group's scope view must be the same as cancelling the group: run returns normally, both
   * flags on the group are set.
   */
  @RepeatedTest(20)
  void cancellingTheGroupsScopeIsCancellingTheGroup() throws Exception {
    var group = TaskGroup.named("nursery");
    CountDownLatch started = new CountDownLatch(1);
    Fixtures.Finished finished = new Fixtures.Finished();
    group.run(
        () -> {
          group.fork(Fixtures.blockedUntilCancelled(started, finished));
          started.await();
          group.cancelScope().cancel("via scope");
        });
    assertThat(finished.count()).isEqualTo(1);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(group.cancelScope().cancelCalled()).isTrue();
    assertThat(group.cancelScope().cancelCaught()).isTrue();
  }

  /**
   * Builder.timeout javadoc: "zero cancels at once" and "run returns normally"; guide deadline
   * table: "the group is cancelled, run returns normally".
   */
  @Test
  void zeroGroupTimeoutCancelsAtOnce() throws Exception {
    var group = TaskGroup.builder().name("zero").timeout(Duration.ZERO).build();
    AtomicBoolean after = new AtomicBoolean();
    group.run(
        () -> {
          Thread.sleep(60_000);
          after.set(true);
        });
    assertThat(after).isFalse();
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
  }

  // ---------------------------------------------------------------- checkpoints and delivery

  /**
   * Guide, "Checkpoints": checkpoint throws "if someone else interrupted the thread (that interrupt
   * is then cleared, as JDK blocking methods do)", as a plain InterruptedException.
   */
  @Test
  void checkpointOnOutsideInterruptIsPlainAndClears() {
    Thread.currentThread().interrupt();
    assertThatThrownBy(CancelScope::checkpoint)
        .isExactlyInstanceOf(InterruptedException.class)
        .isNotInstanceOf(CancelledException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide, "Checkpoints" and "Level-triggered re-delivery": in a cancelled region a checkpoint
   * throws a CancelledException "whose message names the cancelled scope or group and the reason",
   * "throws every time, and leaves the interrupt status set".
   */
  @Test
  void checkpointInCancelledRegionThrowsEveryTimeAndKeepsStatus() throws Exception {
    var group = TaskGroup.named("orders");
    List<Throwable> seen = new ArrayList<>();
    List<Boolean> status = new ArrayList<>();
    group.run(
        () -> {
          group.cancel("client went away");
          for (int i = 0; i < 3; i++) {
            try {
              CancelScope.checkpoint();
            } catch (InterruptedException e) {
              seen.add(e);
              status.add(Thread.currentThread().isInterrupted());
            }
          }
        });
    assertThat(seen).hasSize(3).allMatch(e -> e instanceof CancelledException);
    assertThat(seen.get(0).getMessage()).contains("orders").contains("client went away");
    assertThat(status).containsExactly(true, true, true);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide, "Which scope absorbs a cancellation": "A plain scope whose body returns normally despite
   * cancel() (it never hit a checkpoint) reports cancelCaught() == false"; with "An interrupt the
   * library delivered for a scope never outlives that scope".
   */
  @Test
  void bodyIgnoringCancelCatchesNothingAndLeavesNoInterrupt() throws Exception {
    var scope = CancelScope.create();
    String r =
        scope.call(
            () -> {
              scope.cancel();
              return "done";
            });
    assertThat(r).isEqualTo("done");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide, "Which scope absorbs a cancellation": "a group cancelled by its own cancel() ... reports
   * cancelCaught() even when its body had already returned" (the wait for children is a
   * checkpoint). Here a child cancels after the body returned and then ends normally.
   */
  @RepeatedTest(20)
  void cancelAfterBodyReturnedIsStillCaught() throws Exception {
    var group = TaskGroup.named("late-cancel");
    CountDownLatch bodyDone = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              () -> {
                bodyDone.await();
                group.cancel("from child");
              });
          bodyDone.countDown();
        });
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * Guide, nested groups: "middle.cancel() called from inside inner: inner.run throws
   * InterruptedException (it is not the cancelled one), middle.run absorbs it and returns normally,
   * and outer is untouched and goes on". Trio's nested-scope rule (closest:
   * test_cancel_scope_nesting).
   */
  @RepeatedTest(10)
  void nestedGroupsMiddleAbsorbs() throws Exception {
    var outer = TaskGroup.named("outer");
    var middle = TaskGroup.named("middle");
    var inner = TaskGroup.named("inner");
    AtomicReference<Throwable> innerThrew = new AtomicReference<>();
    AtomicBoolean outerWentOn = new AtomicBoolean();
    outer.run(
        () -> {
          middle.run(
              () -> {
                try {
                  inner.run(
                      () -> {
                        middle.cancel("stop");
                        Thread.sleep(60_000);
                      });
                } catch (InterruptedException e) {
                  innerThrew.set(e);
                  throw e;
                }
              });
          CancelScope.checkpoint();
          outerWentOn.set(true);
        });
    assertThat(innerThrew.get()).isInstanceOf(InterruptedException.class);
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(middle.cancelCaught()).isTrue();
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(outerWentOn).isTrue();
  }

  // ---------------------------------------------------------------- outcomes coincide

  /**
   * Guide, "When outcomes coincide", case 2: someone else interrupts the owner: run throws
   * InterruptedException, cancelCaught() is false, the children are cancelled and waited for, and
   * "run leaves the interrupt status clear, as JDK blocking methods do".
   */
  @RepeatedTest(20)
  void outsideInterruptOfOwner() throws Exception {
    Probes.onThread(
        ThreadKind.PLATFORM,
        () -> {
          var group = TaskGroup.named("owner");
          CountDownLatch started = new CountDownLatch(1);
          Fixtures.Finished finished = new Fixtures.Finished();
          Thread owner = Thread.currentThread();
          assertThatThrownBy(
                  () ->
                      group.run(
                          () -> {
                            group.fork(Fixtures.blockedUntilCancelled(started, finished));
                            started.await();
                            owner.interrupt();
                            Thread.sleep(60_000);
                          }))
              .isInstanceOf(InterruptedException.class);
          assertThat(finished.count()).isEqualTo(1);
          assertThat(group.cancelCaught()).isFalse();
          assertThat(group.cancelCalled()).isFalse();
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
        });
  }

  /**
   * Guide, "When outcomes coincide", case 1: a failure and an outside interrupt: run throws
   * TaskGroupException and "an outside interrupt stays set on the thread".
   */
  @RepeatedTest(20)
  void failureWinsOverOutsideInterruptWhichStaysSet() throws Exception {
    Probes.onThread(
        ThreadKind.PLATFORM,
        () -> {
          var group = TaskGroup.named("both");
          Thread owner = Thread.currentThread();
          CountDownLatch bodyDone = new CountDownLatch(1);
          AtomicBoolean go = new AtomicBoolean();
          AtomicReference<Thread> child = new AtomicReference<>();
          Thread helper =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        try {
                          bodyDone.await();
                        } catch (InterruptedException e) {
                          return;
                        }
                        Probes.awaitWaiting(owner, Duration.ofSeconds(10));
                        owner.interrupt(); // an outside interrupt while the owner joins
                        go.set(true);
                        LockSupport.unpark(child.get());
                      });
          assertThatThrownBy(
                  () ->
                      group.run(
                          () -> {
                            CountDownLatch childUp = new CountDownLatch(1);
                            group.fork(
                                () -> {
                                  child.set(Thread.currentThread());
                                  childUp.countDown();
                                  while (!go.get()) {
                                    LockSupport.park(); // ignores interrupts
                                  }
                                  throw new IllegalStateException("boom");
                                });
                            childUp.await();
                            bodyDone.countDown();
                          }))
              .isInstanceOf(TaskGroupException.class);
          assertThat(Thread.interrupted()).as("outside interrupt stays set").isTrue();
          helper.join();
        });
  }

  // ---------------------------------------------------------------- deadlines

  /** CancelScope.deadline javadoc: for a relative timeout, "empty before run starts". */
  @Test
  void relativeDeadlineIsEmptyBeforeRun() throws Exception {
    var scope = CancelScope.withTimeout(Duration.ofHours(1));
    assertThat(scope.deadline()).isEmpty();
    Instant before = Instant.now();
    AtomicReference<Instant> inside = new AtomicReference<>();
    scope.run(() -> inside.set(scope.deadline().orElseThrow()));
    assertThat(inside.get()).isAfter(before.plus(Duration.ofMinutes(59)));
  }

  /**
   * Guide, Deadlines: "setDeadline and setTimeout work while the scope runs, and take effect at
   * once ... A deadline in the past cancels at once." (Trio: setting scope.deadline in the past
   * cancels at the next checkpoint.)
   */
  @Test
  void pastDeadlineSetWhileRunningCancelsAtOnce() throws Exception {
    var scope = CancelScope.create();
    scope.run(
        () -> {
          scope.setDeadline(Instant.now().minusSeconds(1));
          assertThat(CancelScope.isCancelled()).isTrue();
          Thread.sleep(60_000);
        });
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
  }

  /** CancelScope.withDeadline javadoc: "one in the past cancels at once when run starts". */
  @Test
  void pastWithDeadlineCancelsWhenRunStarts() throws Exception {
    var scope = CancelScope.withDeadline(Instant.now().minusSeconds(5));
    AtomicBoolean at = new AtomicBoolean();
    scope.run(
        () -> {
          at.set(CancelScope.isCancelled());
          CancelScope.checkpoint();
        });
    assertThat(at).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
  }

  /**
   * Guide, Deadlines: "If the body ignores the cancellation and completes anyway, failAfter returns
   * its result and throws nothing."
   */
  @Test
  void failAfterReturnsResultOfBodyThatIgnoresCancel() throws Exception {
    String r =
        CancelScope.failAfter(
            Duration.ofMillis(1),
            () -> {
              while (!CancelScope.isCancelled()) {
                Thread.onSpinWait();
              }
              return "ignored";
            });
    assertThat(r).isEqualTo("ignored");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide, mistakes table: "a negative Duration | IllegalArgumentException", for every method that
   * takes one (CancelScope.sleep's javadoc says so too).
   */
  @Test
  void negativeDurationsAreRejected() {
    Duration neg = Duration.ofMillis(-1);
    assertThatThrownBy(() -> CancelScope.withTimeout(neg))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.create().setTimeout(neg))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.moveOnAfter(neg, () -> 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.failAfter(neg, () -> 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.sleep(neg)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> TaskGroup.builder().timeout(neg))
        .isInstanceOf(IllegalArgumentException.class);
  }

  /**
   * CancelScope.sleep javadoc: "A zero duration is just a checkpoint" (so it throws if cancelled).
   */
  @Test
  void zeroSleepIsACheckpoint() throws Exception {
    CancelScope.sleep(Duration.ZERO);
    var scope = CancelScope.create();
    AtomicBoolean after = new AtomicBoolean();
    scope.run(
        () -> {
          scope.cancel();
          CancelScope.sleep(Duration.ZERO);
          after.set(true);
        });
    assertThat(after).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
  }

  // ---------------------------------------------------------------- scopes

  /**
   * Guide, Cancel scopes: "a body that throws IOException makes scope.run throw IOException" (the
   * same object, unchanged), also in a scope that is not cancelled.
   */
  @Test
  void blockIsTransparentToCheckedExceptions() {
    IOException io = new IOException("disk");
    assertThatThrownBy(
            () ->
                CancelScope.create()
                    .run(
                        () -> {
                          throw io;
                        }))
        .isSameAs(io);
  }

  /** Guide, mistakes table: "run twice (group or scope) | IllegalStateException". */
  @Test
  void scopeRunsOnce() throws Exception {
    var scope = CancelScope.create();
    scope.run(() -> {});
    assertThatThrownBy(() -> scope.run(() -> {})).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> scope.call(() -> 1)).isInstanceOf(IllegalStateException.class);
  }

  /**
   * Guide, mistakes table: "run on a group's own cancelScope() | IllegalStateException: it runs
   * with the group"; "A rejected call leaves every group and scope as it was".
   */
  @Test
  void groupScopeCannotBeRun() throws Exception {
    var group = TaskGroup.named("g");
    assertThatThrownBy(() -> group.cancelScope().run(() -> {}))
        .isInstanceOf(IllegalStateException.class);
    AtomicBoolean ran = new AtomicBoolean();
    group.run(() -> ran.set(true));
    assertThat(ran).isTrue();
  }

  /**
   * toString javadocs: "TaskGroup[orders, joining] ... or new before it runs"; "CancelScope[group
   * 'orders', running]"; Task "Task[fetch-1, cancelled]".
   */
  @Test
  void toStringShapes() throws Exception {
    var group = TaskGroup.named("orders");
    assertThat(group.toString()).isEqualTo("TaskGroup[orders, new]");
    assertThat(CancelScope.create().toString()).isEqualTo("CancelScope[new]");
    AtomicReference<String> running = new AtomicReference<>();
    AtomicReference<String> scopeRunning = new AtomicReference<>();
    AtomicReference<Task<Void>> t = new AtomicReference<>();
    group.run(
        () -> {
          running.set(group.toString());
          scopeRunning.set(group.cancelScope().toString());
          t.set(group.fork("fetch-1", Fixtures::parkUntilInterrupted));
          t.get().cancel(true);
        });
    assertThat(running.get()).isEqualTo("TaskGroup[orders, running]");
    assertThat(scopeRunning.get()).isEqualTo("CancelScope[group 'orders', running]");
    assertThat(group.toString()).isEqualTo("TaskGroup[orders, done]");
    // a finished task shows "done" (TaskTree: "done: finished"), whatever its outcome
    assertThat(t.get().toString()).isEqualTo("Task[fetch-1, done]");
  }

  // ---------------------------------------------------------------- shields

  /**
   * Guide, Shields: "Entering a shielded scope drops an interrupt that the library had delivered
   * for a cancellation above it" and "Turned off while a scope above is cancelled, it delivers that
   * cancellation at once". (Trio: test_cancel_shield_abort, closest.)
   */
  @RepeatedTest(20)
  void shieldDropsAndUnshieldDelivers() throws Exception {
    var outer = CancelScope.create();
    AtomicBoolean insideInterrupted = new AtomicBoolean(true);
    AtomicBoolean afterOff = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          var shield = CancelScope.shielded();
          shield.run(
              () -> {
                insideInterrupted.set(Thread.currentThread().isInterrupted());
                Thread.sleep(1); // blocking works
                shield.setShielded(false);
                afterOff.set(Thread.currentThread().isInterrupted());
              });
          CancelScope.checkpoint();
        });
    assertThat(insideInterrupted).isFalse();
    assertThat(afterOff).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- start

  /**
   * Guide, start: "started may be called from any thread; calling it twice throws
   * IllegalStateException"; "started() (no value) makes start return null".
   */
  @RepeatedTest(10)
  void startedFromAnotherThreadAndTwice() throws Exception {
    var group = TaskGroup.named("s");
    AtomicReference<Throwable> second = new AtomicReference<>();
    Object value =
        group.call(
            () -> {
              Object v =
                  group.start(
                      signal -> {
                        Thread helper = Thread.ofVirtual().start(signal::started);
                        helper.join();
                        try {
                          signal.started();
                        } catch (Throwable e) {
                          second.set(e);
                        }
                      });
              return v == null ? "null" : v;
            });
    assertThat(value).isEqualTo("null");
    assertThat(second.get()).isInstanceOf(IllegalStateException.class);
  }

  /**
   * Guide, start: "If the work fails before signalling, start throws that failure (a checked one
   * wrapped in a TaskGroupException), and it is not a failure of the group. If the work returns
   * without signalling, start throws IllegalStateException."
   */
  @Test
  void startFailuresBeforeSignal() throws Exception {
    var group = TaskGroup.named("s");
    IOException io = new IOException("bind");
    IllegalArgumentException iae = new IllegalArgumentException("bad");
    group.run(
        () -> {
          assertThatThrownBy(
                  () ->
                      group.start(
                          s -> {
                            throw io;
                          }))
              .isInstanceOf(TaskGroupException.class)
              .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(io));
          assertThatThrownBy(
                  () ->
                      group.start(
                          s -> {
                            throw iae;
                          }))
              .isSameAs(iae);
          assertThatThrownBy(() -> group.start(s -> {})).isInstanceOf(IllegalStateException.class);
        });
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * Guide, start: "A start into a cancelled group does not run the work and throws
   * InterruptedException."
   */
  @Test
  void startIntoCancelledGroup() throws Exception {
    var group = TaskGroup.named("s");
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    group.run(
        () -> {
          group.cancel();
          try {
            group.start(
                s -> {
                  ran.set(true);
                  s.started();
                });
          } catch (InterruptedException e) {
            thrown.set(e);
            throw e;
          }
        });
    assertThat(ran).isFalse();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
  }

  /**
   * Trio guide: "As in Trio, until it signals the child is cancelled with the caller, not with the
   * nursery" (Trio's nursery.start runs the task in the caller's context until started(); closest:
   * trio test_nursery_start). Here the caller is a thread outside the group: cancelling the group
   * while the child has not signalled does not cancel it; once it signals it belongs to the
   * cancelled group and is cancelled.
   */
  @RepeatedTest(10)
  void startChildBelongsToCallerUntilSignalled() throws Exception {
    var nursery = TaskGroup.named("nursery");
    CountDownLatch inWork = new CountDownLatch(1);
    CountDownLatch cancelled = new CountDownLatch(1);
    AtomicBoolean cancelledBeforeSignal = new AtomicBoolean(true);
    AtomicBoolean endedByCancel = new AtomicBoolean();
    AtomicReference<Object> started = new AtomicReference<>();
    AtomicReference<Throwable> callerThrew = new AtomicReference<>();
    AtomicReference<Thread> callerThread = new AtomicReference<>();
    nursery.run(
        () -> {
          Thread caller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        try {
                          started.set(
                              nursery.start(
                                  signal -> {
                                    inWork.countDown();
                                    cancelled.await();
                                    cancelledBeforeSignal.set(CancelScope.isCancelled());
                                    signal.started("ready");
                                    try {
                                      Thread.sleep(60_000);
                                    } catch (InterruptedException e) {
                                      endedByCancel.set(true);
                                      throw e;
                                    }
                                  }));
                        } catch (Throwable e) {
                          callerThrew.set(e);
                        }
                      });
          callerThread.set(caller);
          inWork.await();
          nursery.cancel("stop");
          cancelled.countDown();
        });
    callerThread.get().join();
    assertThat(callerThrew.get()).isNull();
    assertThat(cancelledBeforeSignal).isFalse();
    assertThat(started.get()).isEqualTo("ready");
    assertThat(endedByCancel).isTrue();
    assertThat(nursery.cancelCaught()).isTrue();
  }

  // ---------------------------------------------------------------- bounded concurrency

  /**
   * Guide, Bounded concurrency: "If the caller is cancelled or interrupted while waiting for a
   * place, fork returns a task that is already CANCELLED, without starting the work, and leaves the
   * interrupt status set."
   */
  @RepeatedTest(20)
  void forkWaitingForAPlaceInterrupted() throws Exception {
    var group = TaskGroup.builder().name("bounded").maxConcurrency(1).build();
    CountDownLatch holding = new CountDownLatch(1);
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Task<Void>> second = new AtomicReference<>();
    AtomicBoolean statusAfter = new AtomicBoolean();
    CountDownLatch release = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              () -> {
                holding.countDown();
                release.await();
              });
          holding.await();
          Thread outsider =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        second.set(group.fork(() -> secondRan.set(true)));
                        statusAfter.set(Thread.currentThread().isInterrupted());
                      });
          Probes.awaitWaiting(outsider, Duration.ofSeconds(10));
          outsider.interrupt();
          outsider.join();
          release.countDown();
        });
    assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(secondRan).isFalse();
    assertThat(statusAfter).isTrue();
  }

  /** Guide, start: "A start child counts toward maxConcurrency." */
  @RepeatedTest(10)
  void startCountsTowardMaxConcurrency() throws Exception {
    var group = TaskGroup.builder().name("bounded").maxConcurrency(1).build();
    AtomicBoolean forkedRan = new AtomicBoolean();
    AtomicBoolean ranWhileStartChildAlive = new AtomicBoolean();
    AtomicBoolean startChildAlive = new AtomicBoolean();
    group.run(
        () -> {
          CountDownLatch stop = new CountDownLatch(1);
          group.start(
              s -> {
                startChildAlive.set(true);
                s.started();
                stop.await();
                startChildAlive.set(false);
              });
          Thread outsider =
              Thread.ofVirtual()
                  .start(
                      () ->
                          group.fork(
                              () -> {
                                ranWhileStartChildAlive.set(startChildAlive.get());
                                forkedRan.set(true);
                              }));
          Probes.awaitWaiting(outsider, Duration.ofSeconds(10));
          assertThat(forkedRan).isFalse();
          stop.countDown();
          outsider.join();
        });
    assertThat(forkedRan).isTrue();
    assertThat(ranWhileStartChildAlive).isFalse();
  }

  // ---------------------------------------------------------------- invokeAll / invokeAny

  /**
   * Guide: "invokeAny: ... A failing task does not stop the others; if all fail, TaskGroupException
   * holds every failure" (in order, says the javadoc); "tasks at least one": empty throws
   * IllegalArgumentException, as ExecutorService.invokeAny does.
   */
  @RepeatedTest(10)
  void invokeAnyAllFailAndEmpty() throws Exception {
    RuntimeException a = new RuntimeException("a");
    IOException b = new IOException("b");
    CountDownLatch aThrown = new CountDownLatch(1);
    List<Callable<String>> tasks =
        List.of(
            () -> {
              aThrown.countDown();
              throw a;
            },
            () -> {
              aThrown.await();
              throw b;
            });
    assertThatThrownBy(() -> TaskGroup.invokeAny(tasks))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(
            e -> assertThat(((TaskGroupException) e).failures()).containsExactlyInAnyOrder(a, b));
    assertThatThrownBy(() -> TaskGroup.invokeAny(List.<Callable<String>>of()))
        .isInstanceOf(IllegalArgumentException.class);
  }

  /**
   * Guide: "invokeAny: the first success; the rest are cancelled and waited for" — the loser's
   * cleanup has run when invokeAny returns (ExecutorService.invokeAny only cancels; closest:
   * OpenJDK InvokeAnyTest).
   */
  @RepeatedTest(20)
  void invokeAnyWaitsForTheCancelledRest() throws Exception {
    AtomicBoolean loserDone = new AtomicBoolean();
    CountDownLatch loserUp = new CountDownLatch(1); // a loser not yet started never runs
    String r =
        TaskGroup.invokeAny(
            List.<Callable<String>>of(
                () -> {
                  loserUp.countDown();
                  try {
                    Thread.sleep(60_000);
                  } finally {
                    loserDone.set(true);
                  }
                  return "slow";
                },
                () -> {
                  loserUp.await();
                  return "fast";
                }));
    assertThat(r).isEqualTo("fast");
    assertThat(loserDone).isTrue();
  }

  /**
   * Guide / invokeAny javadoc: "once one succeeds, or the caller is cancelled first, the others'
   * failures are dropped, as ExecutorService.invokeAny drops them" — a task that failed before the
   * caller's cancellation is not thrown: invokeAny throws the cancellation (closest: OpenJDK
   * InvokeAnyTest, interrupt while waiting).
   */
  @RepeatedTest(10)
  void invokeAnyDropsFailuresWhenTheCallerIsCancelledFirst() throws Exception {
    CountDownLatch failed = new CountDownLatch(1);
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    var scope = CancelScope.create();
    scope.run(
        () -> {
          try {
            TaskGroup.invokeAny(
                List.<Callable<String>>of(
                    () -> {
                      failed.countDown();
                      throw new IllegalStateException("early failure");
                    },
                    () -> {
                      failed.await();
                      scope.cancel(); // the caller is cancelled before anyone succeeds
                      Thread.sleep(60_000);
                      return "never";
                    }));
          } catch (InterruptedException | RuntimeException t) {
            thrown.set(t);
            throw t;
          }
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(scope.cancelCaught()).isTrue();
  }

  /**
   * README / guide: "invokeAll ... (all results, in order; like ExecutorService.invokeAll or
   * asyncio's gather)"; "the first failure cancels the rest, and every failure is reported".
   */
  @RepeatedTest(10)
  void invokeAllOrderAndFailureCancelsRest() throws Exception {
    List<Integer> r =
        TaskGroup.invokeAll(
            List.<Callable<Integer>>of(
                () -> {
                  Thread.sleep(5);
                  return 1;
                },
                () -> 2));
    assertThat(r).containsExactly(1, 2);
    AtomicBoolean cancelled = new AtomicBoolean();
    CountDownLatch otherUp = new CountDownLatch(1); // a task not yet started never runs
    RuntimeException boom = new RuntimeException("boom");
    assertThatThrownBy(
            () ->
                TaskGroup.invokeAll(
                    List.<Callable<Integer>>of(
                        () -> {
                          otherUp.countDown();
                          try {
                            Thread.sleep(60_000);
                          } catch (InterruptedException e) {
                            cancelled.set(true);
                            throw e;
                          }
                          return 1;
                        },
                        () -> {
                          otherUp.await();
                          throw boom;
                        })))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(boom));
    assertThat(cancelled).isTrue();
  }

  // ---------------------------------------------------------------- tasks

  /**
   * Guide, Tasks: "task.cancel(mayInterrupt) cancels that one task's scope, whatever the flag; once
   * it returns true the state is CANCELLED and a late result is dropped. A late failure is still a
   * failure of the group." The sibling is not touched (README: "cancel() cancels that one task").
   */
  @RepeatedTest(20)
  void taskCancelFalseStillInterruptsAndLateFailureCounts() throws Exception {
    var group = TaskGroup.named("tasks");
    IllegalStateException late = new IllegalStateException("late");
    AtomicReference<Task<String>> sibling = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(2);
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      Task<Void> t =
                          group.fork(
                              () -> {
                                started.countDown();
                                try {
                                  Thread.sleep(60_000);
                                } catch (InterruptedException e) {
                                  throw late;
                                }
                              });
                      sibling.set(
                          group.fork(
                              () -> {
                                started.countDown();
                                return "sibling";
                              }));
                      started.await();
                      assertThat(t.cancel(false)).isTrue();
                      assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
                      assertThat(sibling.get().get()).isEqualTo("sibling");
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(late));
  }

  /** Task javadoc: cancelling the toCompletableFuture(), "with either flag, cancels the task". */
  @RepeatedTest(10)
  void cancellingTheCompletableFutureCancelsTheTask() throws Exception {
    var group = TaskGroup.named("cf");
    AtomicReference<Task<Void>> t = new AtomicReference<>();
    group.run(
        () -> {
          t.set(group.fork(Fixtures::parkUntilInterrupted));
          t.get().toCompletableFuture().cancel(false);
        });
    assertThat(t.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * Guide, Tasks: "A result that has arrived is returned even to a cancelled caller"; asyncio
   * mapping "task.result() | task.resultNow() once done".
   */
  @Test
  void resultReturnedToCancelledCaller() throws Exception {
    var group = TaskGroup.named("r");
    AtomicReference<String> got = new AtomicReference<>();
    group.run(
        () -> {
          Task<String> t = group.fork(() -> "v");
          while (!t.isDone()) {
            Thread.onSpinWait();
          }
          group.cancel();
          assertThat(t.resultNow()).isEqualTo("v");
          got.set(t.get());
        });
    assertThat(got.get()).isEqualTo("v");
  }

  /**
   * Task.name javadoc: "otherwise the name of its thread (empty for an unnamed virtual thread)";
   * guide: "fork(name, work) names the child's thread whichever factory made it".
   */
  @Test
  void taskNames() throws Exception {
    var group =
        TaskGroup.builder()
            .name("n")
            .threadFactory(Thread.ofPlatform().name("worker-", 0).factory())
            .build();
    AtomicReference<String> threadName = new AtomicReference<>();
    group.run(
        () -> {
          Task<Void> plain = group.fork(() -> {});
          Task<Void> named =
              group.fork("mine", () -> threadName.set(Thread.currentThread().getName()));
          plain.get();
          named.get();
          assertThat(plain.name()).isEqualTo("worker-0");
          assertThat(named.name()).isEqualTo("mine");
        });
    assertThat(threadName.get()).isEqualTo("mine");
    var virtual = TaskGroup.named("v");
    virtual.run(() -> assertThat(virtual.fork(() -> {}).name()).isEmpty());
  }

  // ---------------------------------------------------------------- thread factories, context

  /**
   * Guide, Threads: "A factory that throws or returns null makes fork throw
   * RejectedExecutionException (with the factory's exception as cause), and the group is as it
   * was."
   */
  @Test
  void badFactoryRejectsForkAndGroupGoesOn() throws Exception {
    RuntimeException oops = new RuntimeException("no threads");
    AtomicInteger calls = new AtomicInteger();
    ThreadFactory flaky =
        r -> {
          int n = calls.getAndIncrement();
          if (n == 0) {
            throw oops;
          }
          if (n == 1) {
            return null;
          }
          return Thread.ofVirtual().unstarted(r);
        };
    var group = TaskGroup.builder().name("f").threadFactory(flaky).build();
    String r =
        group.call(
            () -> {
              assertThatThrownBy(() -> group.fork(() -> 1))
                  .isInstanceOf(RejectedExecutionException.class)
                  .hasCause(oops);
              assertThatThrownBy(() -> group.fork(() -> 1))
                  .isInstanceOf(RejectedExecutionException.class);
              return group.fork(() -> "ok").get();
            });
    assertThat(r).isEqualTo("ok");
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * README, Context: "A child's thread inherits its forking thread's inheritable thread locals ...
   * Nothing else is inherited: a plain ThreadLocal ... missing in the child."
   */
  @Test
  void inheritableThreadLocalsOnly() throws Exception {
    InheritableThreadLocal<String> inheritable = new InheritableThreadLocal<>();
    ThreadLocal<String> plain = new ThreadLocal<>();
    inheritable.set("i");
    plain.set("p");
    try {
      var group = TaskGroup.named("ctx");
      List<String> seen =
          group.call(() -> group.fork(() -> List.of(inheritable.get(), "" + plain.get())).get());
      assertThat(seen).containsExactly("i", "null");
    } finally {
      inheritable.remove();
      plain.remove();
    }
  }

  /**
   * README, Context: "A wrap that throws rejects the fork (RejectedExecutionException, the group as
   * it was); the wrapped code throwing is a failure of the group; code a propagator runs after the
   * work ... ends before run returns."
   */
  @RepeatedTest(20)
  void propagatorClaims() throws Exception {
    AtomicBoolean throwInWrap = new AtomicBoolean(true);
    Queue<String> trail = new ConcurrentLinkedQueue<>();
    RuntimeException wrapFail = new RuntimeException("wrap");
    ContextPropagator p =
        work -> {
          if (throwInWrap.get()) {
            throw wrapFail;
          }
          return () -> {
            try {
              work.run();
            } finally {
              Thread.yield();
              trail.add("after");
            }
          };
        };
    var group = TaskGroup.builder().name("p").contextPropagator(p).build();
    group.run(
        () -> {
          assertThatThrownBy(() -> group.fork(() -> {}))
              .isInstanceOf(RejectedExecutionException.class);
          throwInWrap.set(false);
          group.fork(() -> trail.add("work"));
        });
    assertThat(trail).containsExactly("work", "after");
  }

  // ---------------------------------------------------------------- hooks and await

  /**
   * Guide, hooks: onCancel "runs action once, on another thread, soon after the calling thread's
   * innermost scope is cancelled (at once if it already is)"; "with no group, thrown by close()".
   */
  @Test
  void onCancelAtOnceOnAnotherThreadAndCloseThrows() throws Exception {
    var scope = CancelScope.create();
    AtomicReference<Thread> ranOn = new AtomicReference<>();
    IOException io = new IOException("close failed");
    AtomicReference<Throwable> fromClose = new AtomicReference<>();
    scope.run(
        () -> {
          scope.cancel();
          CountDownLatch ran = new CountDownLatch(1);
          var reg =
              CancelScope.onCancel(
                  () -> {
                    ranOn.set(Thread.currentThread());
                    ran.countDown();
                    throw io;
                  });
          assertThat(ran.getCount()).as("ran before onCancel returned").isZero();
          try {
            reg.close();
          } catch (Throwable e) {
            fromClose.set(e);
          }
        });
    assertThat(ranOn.get()).isNotNull().isNotSameAs(Thread.currentThread());
    assertThat(fromClose.get()).isSameAs(io);
  }

  /**
   * Guide, hooks: "An exception the action throws is a failure of the innermost enclosing group".
   */
  @RepeatedTest(10)
  void onCancelActionFailureIsGroupFailure() throws Exception {
    var group = TaskGroup.named("hooked");
    IllegalStateException boom = new IllegalStateException("hook");
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      try (var reg =
                          CancelScope.onCancel(
                              () -> {
                                throw boom;
                              })) {
                        group.cancel();
                        Thread.sleep(60_000);
                      }
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(boom));
  }

  /**
   * CancelScope.await javadoc: a cancelled caller cancels the stage; "An interrupt from someone
   * else throws InterruptedException and leaves the stage alone"; "CancellationException if someone
   * else cancelled the stage".
   */
  @RepeatedTest(10)
  void awaitClaims() throws Exception {
    CompletableFuture<String> f1 = new CompletableFuture<>();
    var scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          CancelScope.await(f1);
        });
    assertThat(f1.isCancelled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();

    CompletableFuture<String> f2 = new CompletableFuture<>();
    Thread.currentThread().interrupt();
    assertThatThrownBy(() -> CancelScope.await(f2)).isInstanceOf(InterruptedException.class);
    assertThat(f2.isDone()).isFalse();

    CompletableFuture<String> f3 = new CompletableFuture<>();
    f3.cancel(false);
    assertThatThrownBy(() -> CancelScope.await(f3)).isInstanceOf(CancellationException.class);
  }

  // ---------------------------------------------------------------- supervisors (Kotlin)

  /**
   * Kotlin mapping "supervisorScope { } | builder().failurePolicy(COLLECT)": in supervisorScope a
   * failing child cancels nobody, but a failure of the scope's body cancels the children and is
   * thrown (kotlinx.coroutines SupervisorTest, closest). Guide: "A failure of the body still
   * cancels the children, whatever the policy."
   */
  @RepeatedTest(10)
  void collectIsSupervisorScope() throws Exception {
    var supervisor = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    IllegalStateException child = new IllegalStateException("child");
    AtomicReference<String> sibling = new AtomicReference<>();
    assertThatThrownBy(
            () ->
                supervisor.run(
                    () -> {
                      Task<Void> bad =
                          supervisor.fork(
                              () -> {
                                throw child;
                              });
                      Task<String> good = supervisor.fork(() -> "fine");
                      assertThatThrownBy(bad::get).isInstanceOf(ExecutionException.class);
                      sibling.set(good.get());
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(child));
    assertThat(sibling.get()).isEqualTo("fine");

    var second = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    IllegalStateException body = new IllegalStateException("body");
    AtomicBoolean childCancelled = new AtomicBoolean();
    assertThatThrownBy(
            () ->
                second.run(
                    () -> {
                      CountDownLatch started = new CountDownLatch(1);
                      second.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException e) {
                              childCancelled.set(true);
                              throw e;
                            }
                          });
                      started.await();
                      throw body;
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(body));
    assertThat(childCancelled).isTrue();
  }

  /**
   * Guide, supervisors: with a handler, a body failure goes to the handler "and run then returns
   * normally; a handler that throws makes its exception a failure that run reports, and cancels the
   * rest".
   */
  @RepeatedTest(10)
  void onFailureHandlerClaims() throws Exception {
    Queue<Throwable> handled = new ConcurrentLinkedQueue<>();
    IllegalStateException body = new IllegalStateException("body");
    var g =
        TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).onFailure(handled::add).build();
    g.run(
        () -> {
          throw body;
        });
    assertThat(handled).containsExactly(body);

    RuntimeException fromHandler = new RuntimeException("handler");
    AtomicBoolean restCancelled = new AtomicBoolean();
    var h =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  throw fromHandler;
                })
            .build();
    assertThatThrownBy(
            () ->
                h.run(
                    () -> {
                      CountDownLatch started = new CountDownLatch(1);
                      h.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException e) {
                              restCancelled.set(true);
                              throw e;
                            }
                          });
                      started.await();
                      h.fork(
                          () -> {
                            throw new IOException("child");
                          });
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).contains(fromHandler));
    assertThat(restCancelled).isTrue();
  }

  /** Guide: "onFailure without COLLECT is rejected by build() with a message saying so." */
  @Test
  void onFailureWithoutCollectRejected() {
    assertThatThrownBy(() -> TaskGroup.builder().onFailure(f -> {}).build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("COLLECT");
  }

  /**
   * Guide, mistakes table: "fork or start before run | IllegalStateException saying to fork from
   * the body or its children"; "fork after the group finished | IllegalStateException naming the
   * group".
   */
  @Test
  void forkOutsideTheRunMessages() throws Exception {
    var group = TaskGroup.named("closed-one");
    assertThatThrownBy(() -> group.fork(() -> 1))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("body");
    assertThatThrownBy(() -> group.start(s -> s.started()))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("body");
    group.run(() -> {});
    assertThatThrownBy(() -> group.fork(() -> 1))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed-one");
    assertThatThrownBy(() -> group.start(s -> s.started()))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed-one");
  }

  /**
   * Kotlin guide: "withContext(NonCancellable) | CancelScope.shielded().run(...)" and "isActive |
   * !CancelScope.isCancelled()": inside the shield the thread is not cancelled.
   */
  @Test
  void shieldIsNonCancellable() throws Exception {
    var group = TaskGroup.create();
    AtomicBoolean activeInShield = new AtomicBoolean();
    group.run(
        () -> {
          group.cancel();
          assertThat(CancelScope.isCancelled()).isTrue();
          CancelScope.shielded().run(() -> activeInShield.set(!CancelScope.isCancelled()));
        });
    assertThat(activeInShield).isTrue();
  }

  /**
   * Guide, cancelScope().cancelReason() javadoc: "a description of what cancelled it (... a failure
   * in the group ...)"; TaskGroup.cancelCalled: "A group cancelling its children because of a
   * failure ... does not set it".
   */
  @Test
  void failureCancellationHasReasonButNotCancelCalled() throws Exception {
    var group = TaskGroup.named("f");
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            throw new IllegalStateException("x");
                          });
                      Thread.sleep(60_000);
                    }))
        .isInstanceOf(TaskGroupException.class);
    assertThat(group.cancelCalled()).isFalse();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(group.cancelScope().cancelReason()).isPresent();
  }

  // ---------------------------------------------------------------- second batch

  /**
   * Guide, start: "Until it signals, the child belongs to the caller's scope: if the caller is
   * cancelled or interrupted while waiting, the child is cancelled and waited for, and start throws
   * InterruptedException." Trio: a cancelled nursery.start caller cancels the not-yet-started task
   * (closest: trio test_nursery_start cancellation cases). Here the caller is interrupted from
   * outside.
   */
  @RepeatedTest(20)
  void startCallerInterruptedBeforeSignal() throws Exception {
    var group = TaskGroup.named("g");
    CountDownLatch inWork = new CountDownLatch(1);
    AtomicBoolean childEnded = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean childEndedBeforeStartThrew = new AtomicBoolean();
    group.run(
        () -> {
          Thread caller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        try {
                          group.start(
                              s -> {
                                inWork.countDown();
                                try {
                                  Thread.sleep(60_000);
                                } finally {
                                  childEnded.set(true);
                                }
                              });
                        } catch (Throwable e) {
                          childEndedBeforeStartThrew.set(childEnded.get());
                          thrown.set(e);
                        }
                      });
          inWork.await();
          caller.interrupt();
          caller.join();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(childEndedBeforeStartThrew).as("child waited for before start threw").isTrue();
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * Guide, start: "Once it signals, it belongs to the group": cancelling the caller's own scope
   * after start returned does not cancel the child (StartSignal.started javadoc: "From now on the
   * work is cancelled with its group instead of with the caller").
   */
  @RepeatedTest(20)
  void startChildOutlivesCallersScopeAfterSignal() throws Exception {
    var group = TaskGroup.named("g");
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean childSawCancel = new AtomicBoolean();
    group.run(
        () -> {
          var callerScope = CancelScope.create();
          callerScope.run(
              () -> {
                group.start(
                    s -> {
                      s.started();
                      release.await();
                      childSawCancel.set(CancelScope.isCancelled());
                    });
                callerScope.cancel();
              });
          assertThat(callerScope.cancelCalled()).isTrue();
          release.countDown();
        });
    assertThat(childSawCancel).isFalse();
  }

  /**
   * Guide, model sentence 2: "run does not return or throw until the body and every child have
   * finished". A start child that has not signalled (its caller outside the group) is a child: the
   * group's run waits for it.
   */
  @RepeatedTest(10)
  void groupWaitsForAnUnsignalledStartChild() throws Exception {
    var group = TaskGroup.named("g");
    CountDownLatch inWork = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean childDone = new AtomicBoolean();
    AtomicReference<Thread> caller = new AtomicReference<>();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () -> {
                          caller.set(
                              Thread.ofVirtual()
                                  .start(
                                      () -> {
                                        try {
                                          group.start(
                                              s -> {
                                                inWork.countDown();
                                                release.await();
                                                s.started();
                                                childDone.set(true);
                                              });
                                        } catch (InterruptedException e) {
                                          throw new AssertionError(e);
                                        }
                                      }));
                          inWork.await();
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    inWork.await();
    Probes.awaitWaiting(owner, Duration.ofSeconds(10));
    assertThat(owner.isAlive()).isTrue();
    release.countDown();
    owner.join();
    assertThat(childDone).isTrue();
    caller.get().join();
  }

  /**
   * TaskGroup.cancelScope javadoc: "The group's own cancel scope: its deadline, shield and cancel
   * reason". Shielding it keeps a cancellation from above out of the group's children, as a
   * shielded Trio nursery scope does (closest: trio test_cancel_shield_abort).
   */
  @RepeatedTest(10)
  void shieldedGroupScopeKeepsOuterCancelOut() throws Exception {
    var outer = CancelScope.create();
    AtomicReference<String> got = new AtomicReference<>();
    outer.run(
        () -> {
          outer.cancel();
          var group = TaskGroup.named("shielded");
          group.cancelScope().setShielded(true);
          got.set(
              group.call(
                  () ->
                      group
                          .fork(
                              () -> {
                                Thread.sleep(5);
                                return "child ran";
                              })
                          .get()));
          CancelScope.checkpoint();
        });
    assertThat(got.get()).isEqualTo("child ran");
    assertThat(outer.cancelCaught()).isTrue();
  }

  /**
   * Group deadline through its scope (guide, Deadlines: "setDeadline and setTimeout work while the
   * scope runs"): a group's scope.setTimeout while running cancels the group, run returns normally;
   * Builder.timeout shows up as the scope's deadline().
   */
  @Test
  void groupDeadlineThroughItsScope() throws Exception {
    var group = TaskGroup.named("dl");
    group.run(
        () -> {
          group.cancelScope().setTimeout(Duration.ZERO);
          Thread.sleep(60_000);
        });
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    var timed = TaskGroup.builder().timeout(Duration.ofHours(1)).build();
    assertThat(timed.cancelScope().deadline()).isEmpty();
    timed.run(() -> assertThat(timed.cancelScope().deadline()).isPresent());
  }

  /**
   * CancelScope.cooperative javadoc: "inside it the library never interrupts the calling thread";
   * "checkpoint (which throws without setting the interrupt status)"; "threads forked inside it are
   * interrupted as usual"; "On leaving it into a region that is still cancelled, delivery resumes
   * at once."
   */
  @RepeatedTest(10)
  void cooperativeClaims() throws Exception {
    var group = TaskGroup.named("coop");
    AtomicBoolean interruptedInside = new AtomicBoolean(true);
    AtomicBoolean statusAfterCheckpoint = new AtomicBoolean(true);
    AtomicReference<Throwable> checkpointThrew = new AtomicReference<>();
    AtomicBoolean childInterrupted = new AtomicBoolean();
    AtomicBoolean interruptedAfterLeaving = new AtomicBoolean();
    group.run(
        () -> {
          CancelScope.cooperative()
              .run(
                  () -> {
                    CountDownLatch childUp = new CountDownLatch(1);
                    group.fork(
                        () -> {
                          childUp.countDown();
                          try {
                            Thread.sleep(60_000);
                          } catch (InterruptedException e) {
                            childInterrupted.set(true);
                            throw e;
                          }
                        });
                    childUp.await();
                    group.cancel();
                    long until = System.nanoTime() + Duration.ofMillis(100).toNanos();
                    boolean interrupted = false;
                    while (System.nanoTime() - until < 0) { // longer than 5 re-delivery periods
                      interrupted |= Thread.currentThread().isInterrupted();
                    }
                    interruptedInside.set(interrupted);
                    try {
                      CancelScope.checkpoint();
                    } catch (InterruptedException e) {
                      checkpointThrew.set(e);
                    }
                    statusAfterCheckpoint.set(Thread.currentThread().isInterrupted());
                  });
          interruptedAfterLeaving.set(Thread.currentThread().isInterrupted());
        });
    assertThat(interruptedInside).isFalse();
    assertThat(checkpointThrew.get()).isInstanceOf(CancelledException.class);
    assertThat(statusAfterCheckpoint).isFalse();
    assertThat(childInterrupted).isTrue();
    assertThat(interruptedAfterLeaving).isTrue();
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * CancelScope.onCancel javadoc: the action runs when "the calling thread's innermost scope
   * becomes effectively cancelled ... Scopes entered later do not trigger it."
   */
  @RepeatedTest(10)
  void onCancelIgnoresScopesEnteredLater() throws Exception {
    var outer = CancelScope.create();
    CountDownLatch ran = new CountDownLatch(1);
    AtomicBoolean ranForInner = new AtomicBoolean();
    outer.run(
        () -> {
          try (var reg = CancelScope.onCancel(ran::countDown)) {
            var inner = CancelScope.create();
            inner.run(
                () -> {
                  inner.cancel();
                  CancelScope.checkpoint();
                });
            assertThat(inner.cancelCaught()).isTrue();
            ranForInner.set(ran.getCount() == 0);
            outer.cancel();
            assertThat(ran.await(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
          }
        });
    assertThat(ranForInner).isFalse();
  }

  /**
   * CancelScope.closeOnCancel javadoc: "close it to remove the action (the resource stays open)".
   */
  @Test
  void closedCloseOnCancelLeavesResourceOpen() throws Exception {
    AtomicBoolean closed = new AtomicBoolean();
    var scope = CancelScope.create();
    scope.run(
        () -> {
          CancelScope.closeOnCancel(() -> closed.set(true)).close();
          scope.cancel();
          CancelScope.checkpoint();
        });
    assertThat(closed).isFalse();
  }

  /**
   * Guide, "What counts as a cancellation": for a thread that is effectively cancelled,
   * InterruptedIOException, CancellationException and anything with InterruptedException in its
   * cause chain are the cancellation; SocketTimeoutException is not (a failure).
   */
  @Test
  void whatCountsAsACancellation() throws Exception {
    List<Exception> cancellations =
        List.of(
            new java.io.InterruptedIOException("iio"),
            new CancellationException("ce"),
            new RuntimeException("wrapped", new InterruptedException()),
            new java.nio.channels.ClosedByInterruptException());
    for (Exception e : cancellations) {
      var group = TaskGroup.named("c");
      group.run(
          () -> {
            group.cancel();
            throw e;
          });
      assertThat(group.cancelCaught()).as("%s is the cancellation", e).isTrue();
    }
    var group = TaskGroup.named("t");
    var timeout = new java.net.SocketTimeoutException("read timed out");
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      group.cancel();
                      // with the interrupt status still set, any IOException is the cancellation
                      // (the last rule); the exception for SocketTimeoutException shows only
                      // once the status is clear
                      Thread.interrupted();
                      throw timeout;
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(timeout));
  }

  /**
   * Guide, Tasks table: "SUCCESS | the work returned, even if the group was cancelled meanwhile".
   */
  @RepeatedTest(10)
  void successDespiteGroupCancel() throws Exception {
    var group = TaskGroup.named("s");
    AtomicReference<Task<String>> t = new AtomicReference<>();
    CountDownLatch up = new CountDownLatch(1);
    group.run(
        () -> {
          t.set(
              group.fork(
                  () -> {
                    up.countDown();
                    try {
                      Thread.sleep(60_000);
                    } catch (InterruptedException swallowed) {
                      // ignores the cancellation and returns a result
                    }
                    return "kept";
                  }));
          up.await();
          group.cancel();
        });
    assertThat(t.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(t.get().get()).isEqualTo("kept");
  }

  /** README: toString gives the state "joining" for a group whose body ended. */
  @RepeatedTest(10)
  void joiningState() throws Exception {
    var group = TaskGroup.named("j");
    CountDownLatch bodyDone = new CountDownLatch(1);
    AtomicReference<String> seen = new AtomicReference<>();
    Thread owner = Thread.currentThread();
    group.run(
        () -> {
          group.fork(
              () -> {
                bodyDone.await();
                Probes.awaitWaiting(owner, Duration.ofSeconds(10));
                seen.set(group.toString());
              });
          bodyDone.countDown();
        });
    assertThat(seen.get()).isEqualTo("TaskGroup[j, joining]");
  }

  /**
   * TaskGroupException javadoc: getCause() is the first failure, the others are suppressed; guide:
   * "the name shows up in messages".
   */
  @RepeatedTest(10)
  void exceptionShape() throws Exception {
    var group = TaskGroup.named("shape");
    IllegalStateException first = new IllegalStateException("first");
    IllegalStateException second = new IllegalStateException("second");
    try {
      group.run(
          () -> {
            CountDownLatch up = new CountDownLatch(1);
            group.fork(
                () -> {
                  up.countDown();
                  try {
                    Thread.sleep(60_000);
                  } finally {
                    throw second;
                  }
                });
            up.await(); // a child whose thread has not started yet never runs its work
            throw first;
          });
      throw new AssertionError("no failure");
    } catch (TaskGroupException e) {
      assertThat(e.failures()).containsExactly(first, second);
      assertThat(e.getCause()).isSameAs(first);
      assertThat(e.getSuppressed()).containsExactly(second);
      assertThat(e.getMessage()).contains("shape");
    }
  }

  /**
   * Guide, "Interrupts from someone else": an outside interrupt "that was already pending when a
   * cancellation arrived ... is kept: it is still set, or thrown, once the scope exits".
   */
  @Test
  void pendingOutsideInterruptSurvivesCancellation() throws Exception {
    var scope = CancelScope.create();
    boolean thrown = false;
    try {
      scope.run(
          () -> {
            Thread.currentThread().interrupt();
            scope.cancel();
            CancelScope.checkpoint();
          });
    } catch (InterruptedException e) {
      thrown = true;
    }
    assertThat(thrown || Thread.interrupted()).isTrue();
  }

  /**
   * ContextPropagator javadoc: wrap returning null rejects the fork; a returned Runnable that does
   * not call work.run() is an IllegalStateException failure and the work does not run; calling it
   * twice throws IllegalStateException.
   */
  @Test
  void propagatorRuleViolations() throws Exception {
    ContextPropagator nullWrap = work -> null;
    var g1 = TaskGroup.builder().contextPropagator(nullWrap).build();
    g1.run(
        () ->
            assertThatThrownBy(() -> g1.fork(() -> {}))
                .isInstanceOf(RejectedExecutionException.class));

    AtomicBoolean ran = new AtomicBoolean();
    ContextPropagator skip = work -> () -> {};
    var g2 = TaskGroup.builder().contextPropagator(skip).build();
    assertThatThrownBy(() -> g2.run(() -> g2.fork(() -> ran.set(true))))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(
            e ->
                assertThat(((TaskGroupException) e).failures())
                    .singleElement()
                    .isInstanceOf(IllegalStateException.class));
    assertThat(ran).isFalse();

    AtomicInteger runs = new AtomicInteger();
    AtomicReference<Throwable> second = new AtomicReference<>();
    ContextPropagator twice =
        work ->
            () -> {
              work.run();
              try {
                work.run();
              } catch (Throwable e) {
                second.set(e);
              }
            };
    var g3 = TaskGroup.builder().contextPropagator(twice).build();
    g3.run(() -> g3.fork(runs::incrementAndGet));
    assertThat(runs).hasValue(1);
    assertThat(second.get()).isInstanceOf(IllegalStateException.class);
  }

  /**
   * README: "The tool attaches ... and calls the JMX bean dev.taskgroup:type=TaskTree (operations
   * format, toJson) ... registered when the library is first used."
   */
  @Test
  void jmxBeanIsRegistered() throws Exception {
    var group = TaskGroup.named("jmx-visible");
    AtomicReference<Object> formatted = new AtomicReference<>();
    var server = java.lang.management.ManagementFactory.getPlatformMBeanServer();
    var name = new javax.management.ObjectName("dev.taskgroup:type=TaskTree");
    group.run(
        () -> {
          formatted.set(server.invoke(name, "format", new Object[0], new String[0]));
          assertThat(server.invoke(name, "toJson", new Object[0], new String[0]))
              .asString()
              .contains("jmx-visible");
        });
    assertThat(formatted.get()).asString().contains("jmx-visible");
  }

  /** Task.toCompletableFuture javadoc: "completing it from outside does not affect the task". */
  @RepeatedTest(10)
  void completingTheFutureDoesNotAffectTheTask() throws Exception {
    var group = TaskGroup.named("cf");
    AtomicReference<Task<String>> t = new AtomicReference<>();
    CountDownLatch release = new CountDownLatch(1);
    group.run(
        () -> {
          t.set(
              group.fork(
                  () -> {
                    release.await();
                    return "real";
                  }));
          t.get().toCompletableFuture().complete("fake");
          t.get().toCompletableFuture().completeExceptionally(new RuntimeException());
          assertThat(t.get().state()).isEqualTo(Future.State.RUNNING);
          release.countDown();
        });
    assertThat(t.get().get()).isEqualTo("real");
  }

  /**
   * Guide: "call(body) returns the body's result (or null when a cancellation cut the body short)".
   */
  @Test
  void callReturnsNullWhenCutShort() throws Exception {
    var group = TaskGroup.named("c");
    String r =
        group.call(
            () -> {
              group.cancel();
              Thread.sleep(60_000);
              return "never";
            });
    assertThat(r).isNull();
  }

  // ---------------------------------------------------------------- third batch

  /**
   * CancelledException javadoc: the library throws it "from a library wait (Task.get(), fork
   * waiting for a place, TaskGroup.start)", with a message naming the group and the reason ("group
   * 'search' cancelled by ...: found it").
   */
  @RepeatedTest(10)
  void libraryWaitsThrowCancelledException() throws Exception {
    var group = TaskGroup.named("search");
    AtomicReference<Throwable> fromGet = new AtomicReference<>();
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    group.run(
        () -> {
          Task<Void> t = group.fork(() -> Thread.sleep(60_000)); // ends CANCELLED, never SUCCESS
          group.cancel("found it");
          try {
            t.get();
          } catch (InterruptedException e) {
            fromGet.set(e);
          }
          try {
            group.start(StartSignal::started);
          } catch (InterruptedException e) {
            fromStart.set(e);
          }
        });
    assertThat(fromGet.get())
        .isInstanceOf(CancelledException.class)
        .hasMessageContaining("group 'search'")
        .hasMessageContaining("found it");
    assertThat(fromStart.get()).isInstanceOf(CancelledException.class);
  }

  /**
   * CancelledException javadoc: "when a cancellation that arrived as another exception (a
   * ClosedByInterruptException ...) leaves a scope that does not absorb it; that exception is then
   * its cause".
   */
  @Test
  void cancellationArrivingAsAnotherExceptionLeavesAsCancelledException() throws Exception {
    var outer = CancelScope.create();
    var cbie = new java.nio.channels.ClosedByInterruptException();
    AtomicReference<Throwable> leftInner = new AtomicReference<>();
    outer.run(
        () -> {
          outer.cancel("outer");
          try {
            CancelScope.create()
                .run(
                    () -> {
                      throw cbie;
                    });
          } catch (Exception e) {
            leftInner.set(e);
            throw e;
          }
        });
    assertThat(leftInner.get()).isInstanceOf(CancelledException.class).hasCause(cbie);
    assertThat(outer.cancelCaught()).isTrue();
  }

  /**
   * TaskGroupException javadoc: "a nested group's TaskGroupException is kept as one failure, not
   * flattened. The same throwable thrown by two children (a shared exception object) is listed
   * once." (asyncio: a nested ExceptionGroup stays nested.)
   */
  @RepeatedTest(10)
  void nestedNotFlattenedSharedListedOnce() throws Exception {
    var outer = TaskGroup.builder().name("outer").failurePolicy(FailurePolicy.COLLECT).build();
    IllegalStateException shared = new IllegalStateException("shared");
    AtomicReference<Throwable> nested = new AtomicReference<>();
    try {
      outer.run(
          () -> {
            outer.fork(
                () -> {
                  var inner = TaskGroup.named("inner");
                  try {
                    inner.run(
                        () -> {
                          inner.fork(
                              () -> {
                                throw new IOException("deep");
                              });
                        });
                  } catch (TaskGroupException e) {
                    nested.set(e);
                    throw e;
                  }
                });
            CountDownLatch both = new CountDownLatch(2);
            for (int i = 0; i < 2; i++) {
              outer.fork(
                  () -> {
                    both.countDown();
                    both.await();
                    throw shared;
                  });
            }
          });
      throw new AssertionError("no failure");
    } catch (TaskGroupException e) {
      assertThat(e.failures()).containsExactlyInAnyOrder(nested.get(), shared);
    }
  }

  /**
   * Guide: "Forking is allowed from any thread while the group is open (from the start of run until
   * the body and all children are done)": a child may fork a sibling after the body returned, and
   * run waits for it (asyncio: "new tasks may still be added to the group" while __aexit__ waits).
   */
  @RepeatedTest(10)
  void forkAfterBodyReturnedIsWaitedFor() throws Exception {
    var group = TaskGroup.named("late-fork");
    CountDownLatch bodyDone = new CountDownLatch(1);
    AtomicBoolean siblingDone = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () -> {
                bodyDone.await();
                group.fork(
                    () -> {
                      Thread.sleep(5);
                      siblingDone.set(true);
                    });
              });
          bodyDone.countDown();
        });
    assertThat(siblingDone).isTrue();
  }

  /**
   * asyncio 3.15 TaskGroup.cancel() (the guide's equivalence "tg.cancel() | tg.cancel()"): "cancel
   * is idempotent and may be called after the task group has already exited"; "If cancel is called
   * before entering the task group, the group will be cancelled upon entry" (CPython
   * Doc/library/asyncio-task.rst, gh-108951).
   */
  @Test
  void asyncioCancelEquivalence() throws Exception {
    var before = TaskGroup.create();
    before.cancel();
    AtomicBoolean childRan = new AtomicBoolean();
    before.run(() -> before.fork(() -> childRan.set(true)));
    assertThat(childRan).isFalse();
    assertThat(before.cancelCaught()).isTrue();
    before.cancel();
    before.cancel("again");
    assertThat(before.cancelCalled()).isTrue();
  }

  // ---------------------------------------------------------------- fourth batch

  /** Runs {@code code} and returns the message of the NullPointerException it must throw. */
  private static String npe(org.assertj.core.api.ThrowableAssert.ThrowingCallable code) {
    Throwable t = org.assertj.core.api.Assertions.catchThrowable(code);
    assertThat(t).isInstanceOf(NullPointerException.class);
    return t.getMessage();
  }

  /**
   * Guide, mistakes table: "a null argument | NullPointerException naming the parameter" (the
   * TaskGroup and CancelScope javadocs: "Null arguments throw NullPointerException naming the
   * parameter"), for every public method, checked against the javadoc's parameter name.
   */
  @Test
  void everyNullArgumentIsNamed() throws Exception {
    Duration d = Duration.ofSeconds(1);
    var scope = CancelScope.create();
    var b = TaskGroup.builder();
    assertThat(npe(() -> TaskGroup.named(null))).isEqualTo("name");
    assertThat(npe(() -> TaskGroup.invokeAll(null))).isEqualTo("tasks");
    assertThat(npe(() -> TaskGroup.invokeAny(null))).isEqualTo("tasks");
    List<Callable<Integer>> withNull = new ArrayList<>();
    withNull.add(() -> 1);
    withNull.add(null);
    assertThat(npe(() -> TaskGroup.invokeAll(withNull))).contains("tasks");
    assertThat(npe(() -> TaskGroup.invokeAny(withNull))).contains("tasks");
    assertThat(npe(() -> b.name(null))).isEqualTo("name");
    assertThat(npe(() -> b.threadFactory(null))).isEqualTo("factory");
    assertThat(npe(() -> b.failurePolicy(null))).isEqualTo("policy");
    assertThat(npe(() -> b.onFailure(null))).isEqualTo("handler");
    assertThat(npe(() -> b.timeout(null))).isEqualTo("timeout");
    assertThat(npe(() -> b.contextPropagator(null))).isEqualTo("propagator");
    assertThat(npe(() -> CancelScope.withTimeout(null))).isEqualTo("timeout");
    assertThat(npe(() -> CancelScope.withDeadline(null))).isEqualTo("deadline");
    assertThat(npe(() -> scope.setDeadline(null))).isEqualTo("deadline");
    assertThat(npe(() -> scope.setTimeout(null))).isEqualTo("timeout");
    assertThat(npe(() -> scope.cancel(null))).isEqualTo("reason");
    assertThat(npe(() -> scope.run(null))).isEqualTo("body");
    assertThat(npe(() -> scope.call(null))).isEqualTo("body");
    assertThat(npe(() -> CancelScope.onCancel(null))).isEqualTo("action");
    assertThat(npe(() -> CancelScope.closeOnCancel(null))).isEqualTo("resource");
    assertThat(npe(() -> CancelScope.await(null))).isEqualTo("stage");
    assertThat(npe(() -> CancelScope.sleep(null))).isEqualTo("duration");
    assertThat(npe(() -> CancelScope.moveOnAfter(null, () -> 1))).isEqualTo("timeout");
    assertThat(npe(() -> CancelScope.moveOnAfter(d, null))).isEqualTo("body");
    assertThat(npe(() -> CancelScope.failAfter(null, () -> 1))).isEqualTo("timeout");
    assertThat(npe(() -> CancelScope.failAfter(d, null))).isEqualTo("body");
    var group = TaskGroup.named("nulls");
    assertThat(npe(() -> group.run(null))).isEqualTo("body");
    assertThat(npe(() -> group.call(null))).isEqualTo("body");
    assertThat(npe(() -> group.cancel(null))).isEqualTo("reason");
    group.run(
        () -> {
          assertThat(npe(() -> group.fork((Callable<Integer>) null))).isEqualTo("work");
          assertThat(npe(() -> group.fork((Body) null))).isEqualTo("work");
          assertThat(npe(() -> group.fork(null, () -> 1))).isEqualTo("name");
          assertThat(npe(() -> group.fork("n", (Body) null))).isEqualTo("work");
          assertThat(npe(() -> group.start(null))).isEqualTo("work");
        });
    // the rejected calls left the scope as it was
    scope.run(() -> {});
  }

  /**
   * Guide, Shields: "Give shielded cleanup a deadline of its own (CancelScope.withTimeout(d) then
   * setShielded(true)) if it might block for ever": inside a cancelled region the shield's own
   * deadline still fires and the shield absorbs it (Trio: a shielded scope's own deadline still
   * applies, closest: trio test_cancel_scope_shield with deadline).
   */
  @RepeatedTest(10)
  void shieldWithItsOwnDeadline() throws Exception {
    var outer = CancelScope.create();
    var cleanup = CancelScope.withTimeout(Duration.ofMillis(20));
    cleanup.setShielded(true);
    AtomicBoolean afterCleanup = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          cleanup.run(() -> Thread.sleep(60_000));
          afterCleanup.set(true);
          CancelScope.checkpoint();
        });
    assertThat(cleanup.cancelCaught()).isTrue();
    assertThat(afterCleanup).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
  }

  /**
   * CancelScope.onCancel: the action runs when the calling thread's innermost scope "becomes
   * effectively cancelled"; inside a shield a cancellation above does not make it so.
   */
  @RepeatedTest(10)
  void onCancelInsideAShieldDoesNotFireForOuterCancel() throws Exception {
    var outer = CancelScope.create();
    AtomicBoolean fired = new AtomicBoolean();
    AtomicBoolean firedAfterShieldCancel = new AtomicBoolean();
    outer.run(
        () -> {
          var shield = CancelScope.shielded();
          shield.run(
              () -> {
                CountDownLatch ran = new CountDownLatch(1);
                try (var reg =
                    CancelScope.onCancel(
                        () -> {
                          fired.set(true);
                          ran.countDown();
                        })) {
                  outer.cancel();
                  assertThat(ran.await(100, java.util.concurrent.TimeUnit.MILLISECONDS)).isFalse();
                  shield.cancel(); // interrupts this thread: wait without an interruptible call
                  Probes.awaitTrue("action fired", Duration.ofSeconds(10), () -> fired.get());
                  firedAfterShieldCancel.set(fired.get());
                }
              });
        });
    assertThat(firedAfterShieldCancel).isTrue();
  }

  /** Guide, supervisors: "The handler runs on the failing thread." */
  @Test
  void handlerRunsOnTheFailingThread() throws Exception {
    AtomicReference<String> handlerThread = new AtomicReference<>();
    var g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> handlerThread.set(Thread.currentThread().getName()))
            .build();
    g.run(
        () ->
            g.fork(
                "failing-child",
                () -> {
                  throw new IOException("x");
                }));
    assertThat(handlerThread.get()).isEqualTo("failing-child");
  }

  /**
   * README, Context: "Children of fork, start, invokeAll / invokeAny and onCancel actions are all
   * wrapped"; "contextPropagator may be given several times (applied in that order, the last one
   * outermost)".
   */
  @RepeatedTest(10)
  void propagatorsReachEveryKindOfChildInOrder() throws Exception {
    ThreadLocal<String> ctx = new ThreadLocal<>();
    Queue<String> order = new ConcurrentLinkedQueue<>();
    ContextPropagator first =
        work -> {
          String captured = ctx.get();
          return () -> {
            order.add("first");
            ctx.set(captured);
            try {
              work.run();
            } finally {
              ctx.remove();
            }
          };
        };
    ContextPropagator second =
        work ->
            () -> {
              order.add("second");
              work.run();
            };
    var group = TaskGroup.builder().contextPropagator(first).contextPropagator(second).build();
    Queue<String> seen = new ConcurrentLinkedQueue<>();
    ctx.set("request-7");
    try {
      group.run(
          () -> {
            seen.add("fork:" + group.fork(ctx::get).get());
            seen.add(
                "start:"
                    + group.start(
                        (StartSignal<String> s) -> {
                          s.started(ctx.get());
                        }));
            seen.add("invokeAll:" + TaskGroup.invokeAll(List.<Callable<String>>of(ctx::get)));
            seen.add("invokeAny:" + TaskGroup.invokeAny(List.<Callable<String>>of(ctx::get)));
            var scope = CancelScope.create();
            CountDownLatch hook = new CountDownLatch(1);
            scope.run(
                () -> {
                  try (var reg =
                      CancelScope.onCancel(
                          () -> {
                            seen.add("onCancel:" + ctx.get());
                            hook.countDown();
                          })) {
                    scope.cancel();
                    hook.await();
                  }
                });
          });
    } finally {
      ctx.remove();
    }
    assertThat(seen)
        .containsExactly(
            "fork:request-7",
            "start:request-7",
            "invokeAll:[request-7]",
            "invokeAny:request-7",
            "onCancel:request-7");
    assertThat(order.peek()).isEqualTo("second"); // the last one given runs outermost
  }

  // ---------------------------------------------------------------- fifth batch: precedence

  /**
   * Guide: "cancelCaught() says that the group absorbed its own cancellation and run returned
   * normally because of it"; "cancel() and a failure in either order: the failure is still thrown".
   * With both, run throws and nothing was caught.
   */
  @RepeatedTest(10)
  void cancelThenFailureNothingCaught() throws Exception {
    var group = TaskGroup.named("both");
    IllegalStateException boom = new IllegalStateException("boom");
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      group.cancel();
                      throw boom;
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(boom));
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();

    var scope = CancelScope.create();
    assertThatThrownBy(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      throw boom;
                    }))
        .isSameAs(boom);
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Guide, "When outcomes coincide": case 3 (a cancelled scope above the group is visible) comes
   * before case 4 (the group's own cancel): the group's run throws InterruptedException, its
   * cancelCaught() is false, and the outermost cancelled scope absorbs it. Trio: the outermost
   * cancelled scope catches (closest: trio test_cancel_scope_multierror_filtering / nested-cancel
   * tests).
   */
  @RepeatedTest(10)
  void outerCancelWinsOverGroupsOwnCancel() throws Exception {
    var outer = CancelScope.create();
    var group = TaskGroup.named("inner");
    AtomicReference<Throwable> fromRun = new AtomicReference<>();
    outer.run(
        () -> {
          try {
            group.run(
                () -> {
                  group.cancel("own");
                  outer.cancel("outer");
                  Thread.sleep(60_000);
                });
          } catch (InterruptedException e) {
            fromRun.set(e);
            throw e;
          }
        });
    assertThat(fromRun.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * CancelScope.failAfter / moveOnAfter javadoc: "throws InterruptedException if cancelled from
   * above", also when their own deadline has fired too: the cancellation from above is not turned
   * into a TimeoutException or a null result (Trio: fail_after inside a cancelled outer scope lets
   * Cancelled through, closest: trio test_fail_after cases).
   */
  @RepeatedTest(10)
  void deadlineHelpersInsideCancelledRegion() throws Exception {
    var outer = CancelScope.create();
    AtomicReference<Throwable> fromFail = new AtomicReference<>();
    outer.run(
        () -> {
          outer.cancel();
          try {
            CancelScope.failAfter(
                Duration.ZERO,
                () -> {
                  Thread.sleep(60_000);
                  return 1;
                });
          } catch (Exception e) {
            fromFail.set(e);
          }
        });
    assertThat(fromFail.get()).isInstanceOf(InterruptedException.class);

    var outer2 = CancelScope.create();
    AtomicReference<Object> fromMove = new AtomicReference<>("not reached");
    AtomicReference<Throwable> moveThrew = new AtomicReference<>();
    outer2.run(
        () -> {
          outer2.cancel();
          try {
            fromMove.set(
                CancelScope.moveOnAfter(
                    Duration.ZERO,
                    () -> {
                      Thread.sleep(60_000);
                      return 1;
                    }));
          } catch (InterruptedException e) {
            moveThrew.set(e);
            throw e;
          }
        });
    assertThat(moveThrew.get()).isInstanceOf(InterruptedException.class);
    assertThat(outer2.cancelCaught()).isTrue();
  }

  /**
   * Guide, Tasks: "A caller that is not cancelled (... a thread outside the group) gets the
   * ExecutionException"; Task javadoc: "resultNow(), exceptionNow() and state() never throw for a
   * cancellation" (they follow the Future contract: exceptionNow of a failed task is the failure).
   */
  @Test
  void outsideReaderGetsExecutionException() throws Exception {
    var group = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    IOException io = new IOException("io");
    AtomicReference<Task<Void>> failed = new AtomicReference<>();
    AtomicReference<Task<Void>> cancelled = new AtomicReference<>();
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      failed.set(
                          group.fork(
                              () -> {
                                throw io;
                              }));
                      cancelled.set(group.fork(() -> Thread.sleep(60_000)));
                      cancelled.get().cancel(true);
                    }))
        .isInstanceOf(TaskGroupException.class);
    assertThatThrownBy(() -> failed.get().get())
        .isInstanceOf(ExecutionException.class)
        .hasCause(io);
    assertThat(failed.get().exceptionNow()).isSameAs(io);
    assertThat(failed.get().state()).isEqualTo(Future.State.FAILED);
    assertThatThrownBy(() -> cancelled.get().get()).isInstanceOf(CancellationException.class);
    assertThat(cancelled.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThatThrownBy(() -> cancelled.get().resultNow()).isInstanceOf(IllegalStateException.class);
  }

  // ---------------------------------------------------------------- sixth batch: delivery

  /**
   * Guide, "Level-triggered re-delivery": "A thread that swallowed the interrupt is interrupted
   * again as soon as it enters or leaves a scope or reaches a checkpoint".
   */
  @RepeatedTest(10)
  void swallowedInterruptComesBackAtScopeEntryAndExit() throws Exception {
    var group = TaskGroup.named("level");
    AtomicBoolean atEntry = new AtomicBoolean();
    AtomicBoolean atExit = new AtomicBoolean();
    group.run(
        () -> {
          group.cancel();
          Thread.interrupted(); // swallowed
          CancelScope.create()
              .run(
                  () -> {
                    atEntry.set(Thread.currentThread().isInterrupted());
                    Thread.interrupted(); // swallowed again, inside
                  });
          atExit.set(Thread.currentThread().isInterrupted());
        });
    assertThat(atEntry).isTrue();
    assertThat(atExit).isTrue();
    assertThat(group.cancelCaught()).isTrue(); // the wait for children is a checkpoint
  }

  /**
   * Guide, Shields: setShielded(true) "Turned on from the scope's own thread, it drops such an
   * interrupt too".
   */
  @RepeatedTest(10)
  void shieldTurnedOnDropsPendingInterrupt() throws Exception {
    var outer = CancelScope.create();
    AtomicBoolean before = new AtomicBoolean();
    AtomicBoolean after = new AtomicBoolean(true);
    outer.run(
        () -> {
          var inner = CancelScope.create();
          inner.run(
              () -> {
                outer.cancel();
                before.set(Thread.currentThread().isInterrupted());
                inner.setShielded(true);
                after.set(Thread.currentThread().isInterrupted());
                Thread.sleep(1); // blocking works under the shield
              });
          CancelScope.checkpoint();
        });
    assertThat(before).isTrue();
    assertThat(after).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  /**
   * Guide, "Interrupts from someone else": "An interrupt the library delivered for a scope never
   * outlives that scope", also when another thread's cancel() races the scope's exit (a
   * cross-thread version of jcstress CancelVersusExit, at the API level).
   */
  @RepeatedTest(50)
  void cancelRacingExitLeavesNoInterrupt() throws Exception {
    Probes.onThread(
        ThreadKind.PLATFORM,
        () -> {
          var scope = CancelScope.create();
          CountDownLatch inside = new CountDownLatch(1);
          Thread canceller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          inside.await();
                        } catch (InterruptedException e) {
                          return;
                        }
                        scope.cancel();
                      });
          scope.run(
              () -> {
                inside.countDown();
                for (int i = 0; i < 1_000; i++) {
                  Thread.onSpinWait();
                }
              });
          canceller.join();
          assertThat(Thread.currentThread().isInterrupted())
              .as("interrupt outlived the scope (caught=%s)", scope.cancelCaught())
              .isFalse();
        });
  }

  /**
   * Guide, "Cancelling a group": "cancel() ... may be called ... from any other thread. The body
   * and every running child are interrupted, the group waits for all of them, and then run returns
   * normally" (Trio: nursery.cancel_scope.cancel() from outside).
   */
  @RepeatedTest(20)
  void cancelFromAnUnrelatedThread() throws Exception {
    var group = TaskGroup.named("remote");
    CountDownLatch up = new CountDownLatch(2);
    Fixtures.Finished finished = new Fixtures.Finished();
    Thread remote =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    up.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  group.cancel("remote");
                });
    group.run(
        () -> {
          group.fork(Fixtures.blockedUntilCancelled(up, finished));
          up.countDown();
          Thread.sleep(60_000);
        });
    remote.join();
    assertThat(finished.count()).isEqualTo(1);
    assertThat(group.cancelCaught()).isTrue();
    assertThat(group.cancelScope().cancelReason()).contains("remote");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- seventh batch: deadlines

  /**
   * CancelScope.deadline javadoc: "The deadline: as set, or for a relative timeout when it expires
   * (empty before run starts)". An Instant given to withDeadline or setDeadline reads back as set,
   * before and during the run; setTimeout before run is "from when it starts", so empty until then.
   */
  @RepeatedTest(20)
  void deadlineReadsBackAsSet() throws Exception {
    Instant at = Instant.now().plusSeconds(3600).plusNanos(123_456_789);
    var scope = CancelScope.withDeadline(at);
    assertThat(scope.deadline()).contains(at);
    scope.run(() -> assertThat(scope.deadline()).contains(at));
    var other = CancelScope.create();
    Instant at2 = Instant.now().plusSeconds(7200).plusNanos(987_654_321);
    other.setDeadline(at2);
    assertThat(other.deadline()).contains(at2);
    other.run(
        () -> {
          assertThat(other.deadline()).contains(at2);
          Instant at3 = Instant.now().plusSeconds(60).plusNanos(1);
          other.setDeadline(at3);
          assertThat(other.deadline()).contains(at3);
        });
    var relative = CancelScope.create();
    relative.setTimeout(Duration.ofHours(1));
    assertThat(relative.deadline()).isEmpty();
    relative.run(() -> assertThat(relative.deadline()).isPresent());
  }

  /**
   * CancelScope.cancelReason javadoc: "a description of what cancelled it (a plain cancel(), the
   * deadline, a failure in the group, the owner being interrupted); empty while it is not
   * cancelled"; isShielded reflects shielded() / setShielded.
   */
  @Test
  void reasonsAndShieldFlags() throws Exception {
    var scope = CancelScope.withTimeout(Duration.ZERO);
    assertThat(scope.cancelReason()).isEmpty();
    scope.run(CancelScope::checkpoint);
    assertThat(scope.cancelReason()).isPresent();
    assertThat(scope.cancelCalled()).isTrue();

    var plain = CancelScope.create();
    plain.cancel();
    assertThat(plain.cancelReason()).isPresent();

    assertThat(CancelScope.shielded().isShielded()).isTrue();
    assertThat(CancelScope.create().isShielded()).isFalse();
    var g = TaskGroup.create();
    assertThat(g.cancelScope().isShielded()).isFalse();

    Probes.onThread(
        ThreadKind.PLATFORM,
        () -> {
          var group = TaskGroup.named("interrupted-owner");
          Thread.currentThread().interrupt();
          assertThatThrownBy(() -> group.run(() -> Thread.sleep(60_000)))
              .isInstanceOf(InterruptedException.class);
          assertThat(group.cancelScope().cancelReason()).isPresent();
          assertThat(group.cancelCalled()).isFalse();
        });
  }

  /**
   * CancelScope.sleep javadoc: cancelled, it "throws InterruptedException and leaves the interrupt
   * status set"; interrupted by someone else, "it throws and clears the status (like
   * Thread.sleep(Duration))".
   */
  @RepeatedTest(10)
  void sleepStatusRules() throws Exception {
    var scope = CancelScope.create();
    AtomicBoolean statusAfterCancel = new AtomicBoolean();
    scope.run(
        () -> {
          Thread canceller = Thread.ofVirtual().unstarted(scope::cancel);
          Thread me = Thread.currentThread();
          Thread.ofVirtual()
              .start(
                  () -> {
                    Probes.awaitWaiting(me, Duration.ofSeconds(10));
                    canceller.start();
                  });
          try {
            CancelScope.sleep(Duration.ofMinutes(1));
          } catch (InterruptedException e) {
            statusAfterCancel.set(Thread.currentThread().isInterrupted());
            throw e;
          }
        });
    assertThat(statusAfterCancel).isTrue();
    assertThat(scope.cancelCaught()).isTrue();

    Thread me = Thread.currentThread();
    Thread interrupter =
        Thread.ofVirtual()
            .start(
                () -> {
                  Probes.awaitWaiting(me, Duration.ofSeconds(10));
                  me.interrupt();
                });
    assertThatThrownBy(() -> CancelScope.sleep(Duration.ofMinutes(1)))
        .isExactlyInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    interrupter.join();
  }

  /**
   * ExecutorService guide: "future.cancel(true) | task.cancel(true): the task's thread is
   * interrupted until it stops"; Task javadoc: "Once cancel returns true the state is CANCELLED ...
   * The group waits for the task's thread either way"; Kotlin "isActive | !isCancelled()".
   */
  @RepeatedTest(10)
  void taskCancelIsLevelTriggeredAndWaitedFor() throws Exception {
    var group = TaskGroup.named("level-task");
    AtomicInteger swallowed = new AtomicInteger();
    AtomicBoolean ended = new AtomicBoolean();
    AtomicBoolean stateAtOnce = new AtomicBoolean();
    CountDownLatch up = new CountDownLatch(1);
    group.run(
        () -> {
          Task<Void> t =
              group.fork(
                  () -> {
                    up.countDown();
                    while (swallowed.get() < 3) {
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException e) {
                        swallowed.incrementAndGet(); // swallowed: must come back
                      }
                    }
                    assertThat(CancelScope.isCancelled()).isTrue();
                    ended.set(true);
                  });
          up.await();
          assertThat(t.cancel(true)).isTrue();
          stateAtOnce.set(t.state() == Future.State.CANCELLED);
        });
    assertThat(stateAtOnce).isTrue();
    assertThat(swallowed).hasValue(3);
    assertThat(ended).as("run waited for the cancelled task's thread").isTrue();
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * Guide, start: the work's failure before signalling is start's; "Once it signals, it belongs to
   * the group": a failure after the signal is a failure of the group (Trio: an exception after
   * task_status.started() propagates out of the nursery).
   */
  @RepeatedTest(10)
  void failureAfterSignalIsTheGroups() throws Exception {
    var group = TaskGroup.named("after-signal");
    IllegalStateException late = new IllegalStateException("after");
    AtomicReference<Object> got = new AtomicReference<>();
    assertThatThrownBy(
            () ->
                group.run(
                    () ->
                        got.set(
                            group.start(
                                (StartSignal<String> s) -> {
                                  s.started("up");
                                  throw late;
                                }))))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(late));
    assertThat(got.get()).isEqualTo("up");
  }

  /**
   * CancelScope.closeOnCancel javadoc: "An exception thrown by close() is handled as the action's,
   * as it is, never wrapped": a failure of the innermost enclosing group.
   */
  @RepeatedTest(10)
  void closeOnCancelFailureIsTheGroupsUnwrapped() throws Exception {
    var group = TaskGroup.named("closer");
    IOException io = new IOException("close failed");
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      try (var reg =
                          CancelScope.closeOnCancel(
                              () -> {
                                throw io;
                              })) {
                        group.cancel();
                        Thread.sleep(60_000);
                      }
                    }))
        .isInstanceOf(TaskGroupException.class)
        .satisfies(e -> assertThat(((TaskGroupException) e).failures()).containsExactly(io));
  }

  /**
   * invokeAll / invokeAny javadoc: "InterruptedException if the caller was cancelled or interrupted
   * (the tasks are cancelled and waited for first)"; called by a cancelled caller, no task's work
   * completes and the caller's group absorbs the cancellation.
   */
  @Test
  void invokeFromCancelledCaller() throws Exception {
    var group = TaskGroup.named("caller");
    AtomicInteger completed = new AtomicInteger();
    AtomicReference<Throwable> all = new AtomicReference<>();
    AtomicReference<Throwable> any = new AtomicReference<>();
    group.run(
        () -> {
          group.cancel();
          Callable<String> slow =
              () -> {
                Thread.sleep(60_000);
                completed.incrementAndGet();
                return "x";
              };
          try {
            TaskGroup.invokeAll(List.of(slow, slow));
          } catch (InterruptedException e) {
            all.set(e);
          }
          try {
            TaskGroup.invokeAny(List.of(slow, slow));
          } catch (InterruptedException e) {
            any.set(e);
          }
        });
    assertThat(all.get()).isInstanceOf(InterruptedException.class);
    assertThat(any.get()).isInstanceOf(InterruptedException.class);
    assertThat(completed).hasValue(0);
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * Guide, "When outcomes coincide": "Whatever the outcome, no child is still running when run
   * returns or throws, however often the owner is interrupted"; case 2: an outside interrupt while
   * the owner waits for its children makes run throw InterruptedException, status clear.
   */
  @RepeatedTest(20)
  void hammeredOwnerStillWaitsForStubbornChild() throws Exception {
    Probes.onThread(
        ThreadKind.PLATFORM,
        () -> {
          var group = TaskGroup.named("hammered");
          Thread owner = Thread.currentThread();
          AtomicBoolean release = new AtomicBoolean();
          AtomicBoolean childEnded = new AtomicBoolean();
          AtomicBoolean runEnded = new AtomicBoolean();
          CountDownLatch childUp = new CountDownLatch(1);
          Thread hammer =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          childUp.await();
                        } catch (InterruptedException e) {
                          return;
                        }
                        for (int i = 0; i < 200 && !runEnded.get(); i++) {
                          owner.interrupt();
                          Thread.onSpinWait();
                        }
                        release.set(true);
                      });
          assertThatThrownBy(
                  () ->
                      group.run(
                          () -> {
                            group.fork(
                                () -> {
                                  childUp.countDown();
                                  while (!release.get()) {
                                    LockSupport.parkNanos(100_000); // ignores interrupts
                                  }
                                  childEnded.set(true);
                                });
                            childUp.await();
                          }))
              .isInstanceOf(InterruptedException.class);
          runEnded.set(true);
          assertThat(childEnded).as("no child still running when run throws").isTrue();
          hammer.join();
          Thread.interrupted(); // the hammer may have landed after run threw
          assertThat(group.cancelCaught()).isFalse();
        });
  }

  /**
   * Guide, Bounded concurrency: "A fork from inside one of the group's own children does not wait:
   * it returns at once, and the new child waits for its place on its own thread".
   */
  @RepeatedTest(20)
  void forkFromChildOfFullGroupReturnsAtOnce() throws Exception {
    var group = TaskGroup.builder().name("bounded").maxConcurrency(1).build();
    AtomicBoolean parentDone = new AtomicBoolean();
    AtomicBoolean childSawParentDone = new AtomicBoolean();
    AtomicReference<Future.State> stateRightAfterFork = new AtomicReference<>();
    group.run(
        () ->
            group.fork(
                () -> {
                  Task<Void> sub = group.fork(() -> childSawParentDone.set(parentDone.get()));
                  stateRightAfterFork.set(sub.state());
                  parentDone.set(true);
                }));
    assertThat(stateRightAfterFork.get()).isEqualTo(Future.State.RUNNING);
    assertThat(childSawParentDone).as("sub-child ran only once its parent gave its place").isTrue();
  }

  /**
   * README: "no thread that outlives the block that started it"; guide, Threads: "After run
   * returns, none of the children's code, and none of the library's bookkeeping for them, is still
   * running". An onCancel action is code the group started for its member: when run returns it has
   * ended, whether the registration was closed by the body or left open by a child.
   */
  @RepeatedTest(10)
  void onCancelActionsEndBeforeRunReturns() throws Exception {
    AtomicBoolean closedActionDone = new AtomicBoolean();
    AtomicBoolean openActionDone = new AtomicBoolean();
    CountDownLatch actionsStarted = new CountDownLatch(2);
    var group = TaskGroup.named("hooks");
    group.run(
        () -> {
          CountDownLatch childRegistered = new CountDownLatch(1);
          group.fork(
              () -> {
                CancelScope.onCancel( // left open on purpose
                    () -> {
                      actionsStarted.countDown();
                      try {
                        Thread.sleep(100); // the action's own work
                      } finally {
                        openActionDone.set(true);
                      }
                    });
                childRegistered.countDown();
                Thread.sleep(60_000);
              });
          childRegistered.await();
          try (var reg =
              CancelScope.onCancel(
                  () -> {
                    actionsStarted.countDown();
                    try {
                      Thread.sleep(100);
                    } finally {
                      closedActionDone.set(true);
                    }
                  })) {
            group.cancel();
            Thread.sleep(60_000);
          }
        });
    assertThat(actionsStarted.getCount()).isZero();
    assertThat(closedActionDone).as("action of a closed registration").isTrue();
    assertThat(openActionDone).as("action of a registration left open by a child").isTrue();
  }
}
