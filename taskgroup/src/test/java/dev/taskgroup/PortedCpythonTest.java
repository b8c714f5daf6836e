package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Twins of CPython's {@code Lib/test/test_asyncio/test_taskgroups.py} (the {@code test_taskgroup_*}
 * tests, the 3.15 {@code TaskGroup.cancel()} tests, errors in {@code __aexit__}, base exceptions)
 * and {@code Lib/test/test_asyncio/test_timeouts.py} ({@code asyncio.timeout}), translated to
 * threads: {@code create_task} is {@code fork}, cancelling the task that runs the group is an
 * interrupt of the group's owner thread from outside, {@code asyncio.timeout} is {@link
 * CancelScope#failAfter} or a scope with a deadline, and {@code KeyboardInterrupt} / a {@code
 * BaseException} is a Java {@link Error} (a failure like any other here: see the notes on the
 * tests). Each test names the upstream test it follows; scenarios already in {@link
 * PortedScenariosTest} are not repeated.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedCpythonTest {

  /** asyncio's MyBaseExc / KeyboardInterrupt: an Error. */
  static final class MyBaseError extends Error {
    MyBaseError(String m) {
      super(m);
    }
  }

  /** asyncio's MyExc. */
  static final class MyExc extends RuntimeException {
    MyExc(String m) {
      super(m);
    }
  }

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  /** Polls until {@code t} is parked or sleeping, 10 s at most. */
  private static void awaitBlocked(Thread t) {
    Probes.awaitWaiting(t, Duration.ofSeconds(10));
  }

  /** Runs {@code body} on a new platform thread, recording what it throws. */
  private static final class Owner {
    final AtomicReference<Throwable> thrown = new AtomicReference<>();
    final AtomicBoolean interruptedAfter = new AtomicBoolean();
    final Thread thread;

    Owner(Body body) {
      thread =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      body.run();
                    } catch (Throwable t) {
                      thrown.set(t);
                    }
                    interruptedAfter.set(Thread.interrupted());
                  });
    }

    void join() throws InterruptedException {
      thread.join();
    }
  }

  /** asyncio's {@code 1 / 0}: throws ArithmeticException (without a constant-folding warning). */
  private static int divide(int a, int b) {
    return a / b;
  }

  private static List<Throwable> failures(Throwable t) {
    assertThat(t).isInstanceOf(TaskGroupException.class);
    return ((TaskGroupException) t).failures();
  }

  private static List<Class<?>> types(Throwable t) {
    List<Class<?>> out = new ArrayList<>();
    for (Throwable f : failures(t)) {
      out.add(f.getClass());
    }
    return out;
  }

  // ============================================================ test_taskgroups.py

  // test_taskgroup_01 / test_taskgroup_02: results after run, also of a task forked after a wait.
  @RepeatedTest(5)
  void resultsAreThereAfterRunAlsoForATaskForkedLater() throws Exception {
    TaskGroup g = TaskGroup.named("results");
    List<Task<Integer>> tasks = Collections.synchronizedList(new ArrayList<>());
    g.run(
        () -> {
          tasks.add(
              g.fork(
                  () -> {
                    Thread.sleep(10);
                    return 42;
                  }));
          Thread.sleep(15);
          tasks.add(
              g.fork(
                  () -> {
                    Thread.sleep(5);
                    return 11;
                  }));
        });
    assertThat(tasks.get(0).resultNow()).isEqualTo(42);
    assertThat(tasks.get(1).resultNow()).isEqualTo(11);
  }

  // test_taskgroup_04 / test_cancel_children_on_child_error: three children fail; the sleeping
  // sibling and the body are cancelled; only the failures are reported; no code after run.
  @RepeatedTest(10)
  void childErrorsCancelTheSiblingAndTheBodyAndOnlyTheErrorsAreReported() throws Exception {
    TaskGroup g = TaskGroup.named("children-errors");
    AtomicBoolean siblingCancelled = new AtomicBoolean();
    AtomicBoolean runnerCancelled = new AtomicBoolean();
    AtomicInteger num = new AtomicInteger();
    AtomicReference<Task<Void>> t2 = new AtomicReference<>();
    CountDownLatch siblingRunning = new CountDownLatch(1);
    Throwable t =
        catchThrowable(
            () -> {
              g.run(
                  () -> {
                    for (int i = 0; i < 3; i++) {
                      g.fork(
                          () -> {
                            siblingRunning.await(); // else it may be cancelled before it starts
                            Thread.sleep(10);
                            return divide(1, 0);
                          });
                    }
                    t2.set(
                        g.fork(
                            () -> {
                              try {
                                siblingRunning.countDown();
                                Thread.sleep(5_000);
                              } catch (InterruptedException e) {
                                siblingCancelled.set(true);
                                throw e;
                              }
                              num.incrementAndGet();
                            }));
                    try {
                      Thread.sleep(10_000);
                    } catch (InterruptedException e) {
                      runnerCancelled.set(true);
                      throw e;
                    }
                  });
              num.addAndGet(10);
            });
    assertThat(types(t)).isNotEmpty().allMatch(c -> c == ArithmeticException.class);
    assertThat(num).hasValue(0);
    assertThat(siblingCancelled).isTrue();
    assertThat(runnerCancelled).isTrue();
    assertThat(t2.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_cancellation / test_taskgroup_07 / test_taskgroup_17 / test_taskgroup_22: the owner is
  // interrupted from outside; every child and the body see the cancellation, and run throws
  // InterruptedException.
  @RepeatedTest(10)
  void anOutsideInterruptReachesEveryChildAndTheBodyAndRunThrowsInterrupted() throws Exception {
    AtomicInteger num = new AtomicInteger();
    CountDownLatch started = new CountDownLatch(5);
    Owner owner =
        new Owner(
            () -> {
              TaskGroup g = TaskGroup.named("outside");
              g.run(
                  () -> {
                    for (int i = 0; i < 5; i++) {
                      g.fork(
                          () -> {
                            try {
                              started.countDown();
                              Thread.sleep(5_000);
                            } catch (InterruptedException e) {
                              num.incrementAndGet();
                              throw e;
                            }
                          });
                    }
                    try {
                      Thread.sleep(10_000);
                    } catch (InterruptedException e) {
                      num.addAndGet(10);
                      throw e;
                    }
                  });
            });
    started.await();
    awaitBlocked(owner.thread);
    owner.thread.interrupt();
    owner.join();
    assertThat(owner.thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(num).hasValue(15);
  }

  // test_taskgroup_09 / test_taskgroup_10: the body fails; both children end CANCELLED.
  @RepeatedTest(10)
  void aBodyFailureLeavesTheChildrenCancelled() throws Exception {
    for (boolean waitFirst : new boolean[] {true, false}) {
      TaskGroup g = TaskGroup.named("body-fails");
      List<Task<Integer>> tasks = new ArrayList<>();
      Throwable t =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        tasks.add(
                            g.fork(
                                () -> {
                                  Thread.sleep(1_000);
                                  return 42;
                                }));
                        tasks.add(
                            g.fork(
                                () -> {
                                  Thread.sleep(2_000);
                                  return 11;
                                }));
                        if (waitFirst) {
                          Thread.sleep(10);
                        }
                        throw new ArithmeticException("/ by zero");
                      }));
      assertThat(types(t)).containsExactly(ArithmeticException.class);
      assertThat(tasks).allSatisfy(k -> assertThat(k.state()).isEqualTo(Future.State.CANCELLED));
    }
  }

  // test_taskgroup_11 / test_taskgroup_12: nested groups, the owner interrupted from outside; the
  // interrupt passes through both, every thread ends, run throws InterruptedException.
  @RepeatedTest(10)
  void anOutsideInterruptPassesThroughNestedGroups() throws Exception {
    CountDownLatch started = new CountDownLatch(6);
    AtomicInteger ended = new AtomicInteger();
    Body sleeper =
        () -> {
          try {
            started.countDown();
            Thread.sleep(10_000);
          } finally {
            ended.incrementAndGet();
          }
        };
    Owner owner =
        new Owner(
            () -> {
              TaskGroup g1 = TaskGroup.named("g1");
              g1.run(
                  () -> {
                    g1.fork(sleeper);
                    TaskGroup g2 = TaskGroup.named("g2");
                    g2.run(
                        () -> {
                          for (int i = 0; i < 5; i++) {
                            g2.fork(sleeper);
                          }
                          Thread.sleep(10_000);
                        });
                  });
            });
    started.await();
    awaitBlocked(owner.thread);
    owner.thread.interrupt();
    owner.join();
    assertThat(owner.thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(ended).hasValue(6);
  }

  // test_taskgroup_13: a child of the outer group fails; the inner group is cancelled with the
  // outer body and is no failure of its own: only the ValueError is reported.
  @RepeatedTest(10)
  void anOuterChildFailureCancelsTheInnerGroupWhichReportsNothing() throws Exception {
    TaskGroup g1 = TaskGroup.named("g1");
    Throwable t =
        catchThrowable(
            () ->
                g1.run(
                    () -> {
                      g1.fork(
                          () -> {
                            Thread.sleep(10);
                            throw new IllegalArgumentException("0.1");
                          });
                      TaskGroup g2 = TaskGroup.named("g2");
                      g2.run(
                          () ->
                              g2.fork(
                                  () -> {
                                    Thread.sleep(10_000);
                                    throw new IllegalArgumentException("10");
                                  }));
                    }));
    assertThat(failures(t)).singleElement().isInstanceOf(IllegalArgumentException.class);
    assertThat(failures(t).get(0)).hasMessage("0.1");
  }

  // test_taskgroup_14: a child of the inner group fails; the outer group reports the inner group's
  // exception (holding the failure) as its one failure, and its other child is cancelled.
  @RepeatedTest(10)
  void anInnerChildFailureIsReportedAsTheInnerGroupsException() throws Exception {
    TaskGroup g1 = TaskGroup.named("g1");
    Throwable t =
        catchThrowable(
            () ->
                g1.run(
                    () -> {
                      g1.fork(
                          () -> {
                            Thread.sleep(10_000);
                            throw new IllegalArgumentException("10");
                          });
                      TaskGroup g2 = TaskGroup.named("g2");
                      g2.run(
                          () ->
                              g2.fork(
                                  () -> {
                                    Thread.sleep(10);
                                    throw new IllegalArgumentException("0.1");
                                  }));
                    }));
    Throwable only = failures(t).get(0);
    assertThat(failures(t)).hasSize(1);
    assertThat(types(only)).containsExactly(IllegalArgumentException.class);
    assertThat(failures(only).get(0)).hasMessage("0.1");
  }

  // test_taskgroup_15 / test_taskgroup_16 (3.13+: the ExceptionGroup wins over the CancelledError):
  // the owner is interrupted from outside; while being cancelled a child fails in its finally.
  // run throws the failure (TaskGroupException), and the outside interrupt stays set.
  @RepeatedTest(10)
  void aChildFailingWhileTheOwnerIsInterruptedFromOutsideWinsAndKeepsTheInterrupt()
      throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    Owner owner =
        new Owner(
            () -> {
              TaskGroup g1 = TaskGroup.named("g1");
              g1.run(
                  () -> {
                    g1.fork(
                        () -> {
                          try {
                            started.countDown();
                            Thread.sleep(10_000);
                          } finally {
                            throw new ArithmeticException("/ by zero");
                          }
                        });
                    try {
                      Thread.sleep(10_000);
                    } catch (InterruptedException e) {
                      Thread.sleep(50); // cleanup that waits: cancelled too
                      throw e;
                    }
                  });
            });
    started.await();
    awaitBlocked(owner.thread);
    owner.thread.interrupt();
    owner.join();
    assertThat(types(owner.thrown.get())).containsExactly(ArithmeticException.class);
    assertThat(owner.interruptedAfter).as("the outside interrupt stays set").isTrue();
  }

  // test_taskgroup_18: cancelled from outside, the body turns the cancellation into MyExc; that is
  // a failure, reported, and the outside interrupt stays set. (The body restores the interrupt it
  // took, as Java code must: one it swallows, the library cannot know about.)
  @RepeatedTest(10)
  void aBodyTurningAnOutsideInterruptIntoAnExceptionIsAFailure() throws Exception {
    AtomicInteger num = new AtomicInteger();
    Owner owner =
        new Owner(
            () -> {
              TaskGroup g = TaskGroup.named("weird");
              g.run(
                  () -> {
                    try {
                      Thread.sleep(10_000);
                    } catch (InterruptedException e) {
                      num.addAndGet(10);
                      Thread.currentThread().interrupt(); // keeps the interrupt, as it should
                      throw new MyExc("weird");
                    }
                  });
            });
    awaitBlocked(owner.thread);
    owner.thread.interrupt();
    owner.join();
    assertThat(types(owner.thrown.get())).containsExactly(MyExc.class);
    assertThat(num).hasValue(10);
    assertThat(owner.interruptedAfter).isTrue();
  }

  // test_taskgroup_19, test_taskgroup_20 / 20a (KeyboardInterrupt / a BaseException from the
  // body's finally) and test_taskgroup_21a (a BaseException from the child): an exception or an
  // Error thrown in the body's finally while a child's failure cancels it, and the other way
  // round: both are reported, the trigger first. asyncio re-raises a bare KeyboardInterrupt
  // (test_taskgroup_20); here every Error is a failure and goes in the TaskGroupException.
  @RepeatedTest(10)
  void aFailureInTheBodysFinallyDuringCancellationIsReportedWithTheTrigger() throws Exception {
    record Case(Throwable fromChild, Throwable fromBodyFinally) {}
    for (Case c :
        List.of(
            new Case(new ArithmeticException("child"), new MyExc("finally")),
            new Case(new ArithmeticException("child"), new MyBaseError("finally")),
            new Case(new MyBaseError("child"), new IllegalArgumentException("finally")))) {
      TaskGroup g = TaskGroup.named("finally");
      Throwable t =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        Thread host = Thread.currentThread();
                        g.fork(
                            () -> {
                              awaitBlocked(host);
                              throwUnchecked(c.fromChild());
                            });
                        try {
                          Thread.sleep(10_000);
                        } finally {
                          throwUnchecked(c.fromBodyFinally());
                        }
                      }));
      assertThat(failures(t)).containsExactly(c.fromChild(), c.fromBodyFinally());
    }
  }

  private static void throwUnchecked(Throwable t) {
    if (t instanceof Error e) {
      throw e;
    }
    throw (RuntimeException) t;
  }

  // test_taskgroup_24: a child forks two more after a wait; all three finish before run returns.
  @RepeatedTest(5)
  void aChildForkingLaterIntoTheGroupIsWaitedFor() throws Exception {
    TaskGroup g = TaskGroup.named("root");
    AtomicInteger done = new AtomicInteger();
    g.run(
        () ->
            g.fork(
                () -> {
                  Thread.sleep(10);
                  for (int d : new int[] {10, 20}) {
                    g.fork(
                        () -> {
                          Thread.sleep(d);
                          done.incrementAndGet();
                        });
                  }
                }));
    assertThat(done).hasValue(2);
  }

  // test_taskgroup_25 (hydra): children keep forking two more each until a sibling fails; the
  // failure stops the hydra (forks into the cancelled group start nothing) and is reported alone.
  @RepeatedTest(5)
  void aFailureStopsChildrenThatKeepForkingChildren() throws Exception {
    TaskGroup g = TaskGroup.named("hydra");
    AtomicInteger heads = new AtomicInteger();
    Body[] hydra = new Body[1];
    hydra[0] =
        () -> {
          heads.incrementAndGet();
          Thread.sleep(1);
          g.fork(hydra[0]);
          g.fork(hydra[0]);
        };
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(hydra[0]);
                      g.fork(
                          () -> {
                            while (heads.get() < 10) {
                              Thread.sleep(1);
                            }
                            throw new ArithmeticException("hercules");
                          });
                    }));
    assertThat(types(t)).containsExactly(ArithmeticException.class);
    assertThat(heads.get()).isGreaterThanOrEqualTo(10);
  }

  // test_taskgroup_task_name / test_name: the name given to fork is the task's and its thread's.
  @Test
  void theNameGivenToForkIsTheTasksAndItsThreads() throws Exception {
    TaskGroup g = TaskGroup.named("names");
    AtomicReference<String> threadName = new AtomicReference<>();
    AtomicReference<Task<Void>> t = new AtomicReference<>();
    g.run(
        () -> {
          t.set(g.fork("yolo", () -> threadName.set(Thread.currentThread().getName())));
          assertThat(t.get().name()).isEqualTo("yolo");
        });
    assertThat(threadName).hasValue("yolo");
    assertThat(t.get().name()).isEqualTo("yolo");
  }

  // test_taskgroup_no_create_task_after_failure: a child, cancelled by a sibling's failure, forks.
  // asyncio raises RuntimeError there; here (TaskGroup.fork javadoc) a fork into an effectively
  // cancelled group returns a task already CANCELLED whose work never runs. Only the one failure.
  @RepeatedTest(10)
  void aForkFromAChildCancelledByAFailureStartsNothing() throws Exception {
    TaskGroup g = TaskGroup.named("no-fork-after-failure");
    AtomicReference<Task<Void>> late = new AtomicReference<>();
    AtomicBoolean lateRan = new AtomicBoolean();
    CountDownLatch running = new CountDownLatch(1);
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            running.await();
                            return divide(1, 0);
                          });
                      g.fork(
                          () -> {
                            try {
                              running.countDown();
                              Thread.sleep(10_000);
                            } catch (InterruptedException e) {
                              late.set(g.fork(() -> lateRan.set(true)));
                            }
                          });
                    }));
    assertThat(types(t)).containsExactly(ArithmeticException.class);
    assertThat(late.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(lateRan).isFalse();
  }

  // test_taskgroup_context_manager_exit_raises (gh-95289): a resource's close in the body fails
  // while a child's failure cancels the body; both are reported and no interrupt is left.
  @RepeatedTest(10)
  void aFailingCloseInTheBodyDuringCancellationIsReportedWithTheChildsFailure() throws Exception {
    TaskGroup g = TaskGroup.named("exit-raises");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      try (AutoCloseable database =
                          () -> {
                            throw new MyExc("close");
                          }) {
                        g.fork(
                            () -> {
                              throw new MyExc("child");
                            });
                        Thread.sleep(1_000);
                      }
                    }));
    assertThat(failures(t)).extracting(Throwable::getMessage).containsExactly("child", "close");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_cancelling_level_preserved / test_cancellation_does_not_leak_out_of_tg: after a group that
  // failed and cancelled its body, the owner thread is not cancelled: it may wait again.
  @RepeatedTest(10)
  void aGroupThatFailedLeavesNoCancellationOnItsOwner() throws Exception {
    TaskGroup g = TaskGroup.named("leak");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            throw new IllegalStateException("raise_after");
                          });
                      Thread.sleep(10_000);
                    }));
    assertThat(types(t)).containsExactly(IllegalStateException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(CancelScope.isCancelled()).isFalse();
    CancelScope.checkpoint();
    Thread.sleep(1);
  }

  // test_nested_groups_both_cancelled: a child of the outer group fails, which cancels the inner
  // group too; the inner group's child then fails while cancelled. The inner run throws its
  // failure (failures come first, TaskGroup javadoc), the body catches it and is still cancelled
  // by the outer failure, and the outer group reports only its own child's failure.
  @RepeatedTest(10)
  void nestedGroupsBothFailingReportEachFailureAtItsOwnLevel() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    AtomicReference<Throwable> innerThrew = new AtomicReference<>();
    AtomicBoolean cancelledAfterInner = new AtomicBoolean();
    CountDownLatch innerRunning = new CountDownLatch(1);
    Throwable t =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      TaskGroup inner = TaskGroup.named("inner");
                      try {
                        inner.run(
                            () -> {
                              inner.fork(
                                  () -> {
                                    innerRunning.countDown();
                                    while (!CancelScope.isCancelled()) {
                                      Thread.onSpinWait(); // until the outer failure reaches it
                                    }
                                    throw new IllegalStateException("inner");
                                  });
                              innerRunning.await(); // else it might be cancelled before it starts
                              outer.fork(
                                  () -> {
                                    throw new IllegalArgumentException("outer");
                                  });
                            });
                      } catch (TaskGroupException e) {
                        innerThrew.set(e);
                      }
                      cancelledAfterInner.set(CancelScope.isCancelled());
                    }));
    assertThat(failures(t)).singleElement().isInstanceOf(IllegalArgumentException.class);
    assertThat(failures(innerThrew.get()))
        .singleElement()
        .isInstanceOf(IllegalStateException.class);
    assertThat(cancelledAfterInner).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_error_and_cancel: the owner of a group is interrupted from outside, and a child, cancelled
  // by that, fails in its cleanup; run throws the failure, and the outside interrupt stays set
  // (TaskGroup javadoc, "When outcomes coincide" (1)), so the owner's next wait still stops. The
  // child fails only once the owner's interrupt has cancelled it: a failure that cancels the owner
  // in the instant the owner consumes the outside interrupt cannot be told apart from it.
  @RepeatedTest(10)
  void anOutsideInterruptDuringAFailingGroupStillStopsTheOwnersNextWait() throws Exception {
    CountDownLatch childRunning = new CountDownLatch(1);
    AtomicBoolean sleptAfter = new AtomicBoolean();
    AtomicReference<Throwable> fromRun = new AtomicReference<>();
    Owner owner =
        new Owner(
            () -> {
              TaskGroup g = TaskGroup.named("error-and-cancel");
              try {
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            childRunning.countDown();
                            while (!CancelScope.isCancelled()) {
                              Thread.onSpinWait(); // no checkpoint: it fails whatever
                            }
                            throw new IllegalStateException("raise_error");
                          });
                      new CountDownLatch(1).await();
                    });
              } catch (TaskGroupException | InterruptedException e) {
                fromRun.set(e);
              }
              Thread.sleep(1_000);
              sleptAfter.set(true);
            });
    childRunning.await();
    awaitBlocked(owner.thread);
    owner.thread.interrupt();
    owner.join();
    assertThat(fromRun.get()).isInstanceOf(TaskGroupException.class);
    assertThat(sleptAfter).as("the outside interrupt was lost").isFalse();
    assertThat(owner.thrown.get()).isInstanceOf(InterruptedException.class);
  }

  // test_cancels_task_if_created_during_creation (gh-128550): a child forks a sibling that fails at
  // once; the forking child is cancelled at its next checkpoint and the failure is reported.
  @RepeatedTest(20)
  void aChildWhoseForkedSiblingFailsAtOnceIsCancelledAtItsNextCheckpoint() throws Exception {
    TaskGroup g = TaskGroup.named("during-creation");
    AtomicBoolean ran = new AtomicBoolean();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              g.fork(
                                  () -> {
                                    throw new MyExc("third task failed");
                                  });
                              assertThatThrownBy(() -> Thread.sleep(10_000))
                                  .isInstanceOf(InterruptedException.class);
                              ran.set(true);
                            })));
    assertThat(failures(t)).singleElement().isInstanceOf(MyExc.class);
    assertThat(ran).isTrue();
  }

  // ------------------------------------------------ 3.15 TaskGroup.cancel() beyond PortedScenarios

  // test_taskgroup_cancel_before_exception: the group is cancelled, then a child fails while being
  // cancelled; the failure wins and run throws it; the cancel was called but not caught.
  @RepeatedTest(10)
  void aFailureDuringTheGroupsOwnCancellationIsThrown() throws Exception {
    TaskGroup g = TaskGroup.named("cancel-then-fail");
    CountDownLatch in = new CountDownLatch(1);
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try {
                              in.countDown();
                              Thread.sleep(10_000);
                            } finally {
                              throw new MyExc("in cleanup");
                            }
                          });
                      in.await();
                      g.cancel();
                    }));
    assertThat(failures(t)).singleElement().isInstanceOf(MyExc.class);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_taskgroup_cancel_after_exception: a child fails, then the body calls cancel(); run still
  // throws the failure.
  @RepeatedTest(10)
  void cancelAfterAChildFailedStillThrowsTheFailure() throws Exception {
    TaskGroup g = TaskGroup.named("fail-then-cancel");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Void> bad =
                          g.fork(
                              () -> {
                                throw new MyExc("first");
                              });
                      try {
                        bad.get();
                      } catch (InterruptedException e) {
                        // cancelled by the failure: cancel anyway
                      }
                      g.cancel();
                    }));
    assertThat(failures(t)).singleElement().isInstanceOf(MyExc.class);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_taskgroup_cancel_nested: cancelling an inner group ends it only; the outer body goes on.
  @RepeatedTest(10)
  void cancellingAnInnerGroupLeavesTheOuterGroupRunning() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    AtomicBoolean outerContinued = new AtomicBoolean();
    AtomicBoolean outerChildDone = new AtomicBoolean();
    TaskGroup inner = TaskGroup.named("inner");
    outer.run(
        () -> {
          outer.fork(
              () -> {
                Thread.sleep(30);
                outerChildDone.set(true);
              });
          inner.run(
              () -> {
                inner.fork(() -> Thread.sleep(10_000));
                inner.cancel();
                Thread.sleep(10_000);
              });
          Thread.sleep(1);
          outerContinued.set(true);
        });
    assertThat(inner.cancelCaught()).isTrue();
    assertThat(outerContinued).isTrue();
    assertThat(outerChildDone).isTrue();
    assertThat(outer.cancelCalled()).isFalse();
  }

  // ============================================================ test_timeouts.py

  // test_timeout_basic / test_timeout_at_basic: the deadline fires; the scope shows it as set.
  @RepeatedTest(3)
  void aTimeoutAtADeadlineFiresAndKeepsTheDeadline() throws Exception {
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(10),
                    () -> {
                      Thread.sleep(10_000);
                      return null;
                    }))
        .isInstanceOf(TimeoutException.class);
    Instant deadline = Instant.now().plusMillis(10);
    CancelScope cm = CancelScope.withDeadline(deadline);
    cm.run(() -> Thread.sleep(10_000));
    assertThat(cm.cancelCaught()).isTrue();
    assertThat(cm.deadline()).contains(deadline);
  }

  // test_timeout_exception_cause: the TimeoutException chains the cancellation that ended the body
  // (asyncio: raise TimeoutError from the CancelledError): the InterruptedException of the
  // blocking call, the library's own CancelledException from a checkpoint, or an
  // InterruptedIOException of a blocking read: whichever the scope absorbed, it is the cause.
  @RepeatedTest(3)
  void aTimeoutExceptionChainsTheCancellationThatEndedTheBody() throws Exception {
    Throwable[] seen = new Throwable[3];
    Throwable fromSleep =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      try {
                        Thread.sleep(10_000);
                      } catch (InterruptedException e) {
                        seen[0] = e;
                        throw e;
                      }
                      return null;
                    }));
    assertThat(fromSleep).isInstanceOf(TimeoutException.class);
    assertThat(fromSleep.getCause()).isSameAs(seen[0]).isInstanceOf(InterruptedException.class);
    Throwable fromCheckpoint =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      try {
                        CancelScope.sleep(Duration.ofSeconds(10));
                      } catch (CancelledException e) {
                        seen[1] = e;
                        throw e;
                      }
                      return null;
                    }));
    assertThat(fromCheckpoint.getCause()).isSameAs(seen[1]);
    assertThat(((CancelledException) seen[1]).getMessage()).contains("deadline");
    java.io.PipedOutputStream out = new java.io.PipedOutputStream();
    java.io.PipedInputStream in = new java.io.PipedInputStream(out);
    Throwable fromRead =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(20),
                    () -> {
                      try {
                        return in.read();
                      } catch (java.io.InterruptedIOException e) {
                        seen[2] = e;
                        throw e;
                      }
                    }));
    assertThat(fromRead).isInstanceOf(TimeoutException.class);
    assertThat(fromRead.getCause()).isSameAs(seen[2]);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_nested_timeouts: two scopes with the same deadline; the inner body sees the cancellation,
  // only the outermost scope absorbs it.
  @RepeatedTest(10)
  void twoScopesWithTheSameDeadlineOnlyTheOuterAbsorbs() throws Exception {
    Instant deadline = Instant.now().plusMillis(10);
    CancelScope cm1 = CancelScope.withDeadline(deadline);
    CancelScope cm2 = CancelScope.withDeadline(deadline);
    AtomicBoolean cancelled = new AtomicBoolean();
    cm1.run(
        () -> {
          try {
            cm2.run(() -> Thread.sleep(10_000));
          } catch (InterruptedException e) {
            cancelled.set(true);
            throw e;
          }
        });
    assertThat(cancelled).isTrue();
    assertThat(cm1.cancelCaught()).isTrue();
    assertThat(cm2.cancelCalled()).isTrue();
    assertThat(cm2.cancelCaught()).isFalse();
  }

  // test_timeout_not_called: a long timeout not reached: not cancelled, deadline still ahead.
  @Test
  void aTimeoutNotReachedLeavesTheScopeUncancelledWithItsDeadlineAhead() throws Exception {
    CancelScope cm = CancelScope.withTimeout(Duration.ofSeconds(10));
    cm.run(() -> Thread.sleep(10));
    Instant after = Instant.now();
    assertThat(cm.cancelCalled()).isFalse();
    assertThat(cm.deadline()).hasValueSatisfying(d -> assertThat(d).isAfter(after));
  }

  // test_timeout_zero_sleep_zero / test_timeout_in_the_past_sleep_zero: a zero sleep is a
  // checkpoint and sees a deadline already reached.
  @Test
  void aZeroSleepSeesADeadlineInThePastOrNow() throws Exception {
    for (CancelScope cm :
        List.of(
            CancelScope.withTimeout(Duration.ZERO),
            CancelScope.withDeadline(Instant.now().minusSeconds(11)))) {
      cm.run(() -> CancelScope.sleep(Duration.ZERO));
      assertThat(cm.cancelCaught()).isTrue();
    }
  }

  // test_foreign_exception_passed / test_foreign_exception_on_timeout: an exception of the body
  // passes through unchanged, whether or not the timeout fired (then it is not a TimeoutException).
  @RepeatedTest(5)
  void anExceptionOfTheBodyPassesThroughFailAfterUnchanged() throws Exception {
    MyExc keyError = new MyExc("KeyError");
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofSeconds(10),
                    () -> {
                      throw keyError;
                    }))
        .isSameAs(keyError);
    ArithmeticException crash = new ArithmeticException("/ by zero");
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(10),
                    () -> {
                      try {
                        Thread.sleep(1_000);
                      } finally {
                        throw crash;
                      }
                    }))
        .isSameAs(crash);
  }

  // test_foreign_cancel_doesnt_timeout_if_not_expired / test_cancel_in_timeout_after_cancellation:
  // an interrupt from someone else inside fail_after is an InterruptedException, not a timeout.
  @Test
  void aForeignInterruptInsideFailAfterIsNotATimeout() throws Exception {
    CancelScope cm = CancelScope.withTimeout(Duration.ofSeconds(10));
    assertThatThrownBy(
            () ->
                cm.run(
                    () -> {
                      Thread.currentThread().interrupt();
                      Thread.sleep(10_000);
                    }))
        .isInstanceOf(InterruptedException.class)
        .isNotInstanceOf(CancelledException.class);
    assertThat(cm.cancelCalled()).isFalse();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofSeconds(1),
                    () -> {
                      Thread.currentThread().interrupt();
                      Thread.sleep(2_000);
                      return null;
                    }))
        .isInstanceOf(InterruptedException.class);
  }

  // test_outer_task_is_not_cancelled: a child that caught its own timeout succeeds.
  @RepeatedTest(5)
  void aChildThatCaughtItsTimeoutSucceeds() throws Exception {
    TaskGroup g = TaskGroup.named("outer-task");
    AtomicReference<Task<String>> t = new AtomicReference<>();
    g.run(
        () ->
            t.set(
                g.fork(
                    () -> {
                      try {
                        CancelScope.failAfter(
                            Duration.ofMillis(1),
                            () -> {
                              Thread.sleep(10_000);
                              return null;
                            });
                        return "no timeout";
                      } catch (TimeoutException e) {
                        return "timed out";
                      }
                    })));
    assertThat(t.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(t.get().resultNow()).isEqualTo("timed out");
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_nested_timeouts_concurrent: the outer timeout (2 ms) fires during busy work inside an
  // inner
  // one (100 ms): the outer throws TimeoutException; the inner lets the cancellation through as an
  // InterruptedException (asyncio raises a second TimeoutError there; a scope here absorbs only a
  // cancellation of its own with no cancelled scope above it visible).
  @RepeatedTest(5)
  void anOuterTimeoutFiringInsideAnInnerOneIsTheOutersTimeout() throws Exception {
    AtomicReference<Throwable> fromInner = new AtomicReference<>();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(2),
                    () -> {
                      try {
                        CancelScope.failAfter(
                            Duration.ofMillis(100),
                            () -> {
                              long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(10);
                              while (System.nanoTime() < end) {
                                Thread.onSpinWait(); // crunching numbers
                              }
                              Thread.sleep(1_000);
                              return null;
                            });
                      } catch (Exception e) {
                        fromInner.set(e);
                        throw e;
                      }
                      return null;
                    }))
        .isInstanceOf(TimeoutException.class);
    assertThat(fromInner.get()).isInstanceOf(InterruptedException.class);
  }

  // test_nested_timeouts_loop_busy: the inner timeout fires during busy work and is caught; the
  // outer one then stops a long sleep.
  @RepeatedTest(3)
  void anInnerTimeoutCaughtThenTheOuterTimeoutStopsTheNextSleep() throws Exception {
    long t0 = System.nanoTime();
    AtomicBoolean innerTimedOut = new AtomicBoolean();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(300),
                    () -> {
                      try {
                        CancelScope.failAfter(
                            Duration.ofMillis(10),
                            () -> {
                              long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(50);
                              while (System.nanoTime() < end) {
                                Thread.onSpinWait();
                              }
                              Thread.sleep(1_000);
                              return null;
                            });
                      } catch (TimeoutException e) {
                        innerTimedOut.set(true);
                      }
                      Thread.sleep(10_000);
                      return null;
                    }))
        .isInstanceOf(TimeoutException.class);
    assertThat(innerTimedOut).isTrue();
    assertThat(System.nanoTime() - t0).isLessThan(TimeUnit.SECONDS.toNanos(5));
  }

  // test_reschedule: a child's scope gets its deadline moved from another thread, then moved out of
  // reach (Instant.MAX: asyncio's reschedule(None)); the child cancelled as a task is not a
  // timeout.
  @RepeatedTest(5)
  void reschedulingAChildsDeadlineFromOutsideAndCancellingTheTask() throws Exception {
    TaskGroup g = TaskGroup.named("reschedule");
    AtomicReference<CancelScope> cm = new AtomicReference<>();
    CountDownLatch entered = new CountDownLatch(1);
    Instant deadline1 = Instant.now().plusSeconds(10);
    Instant deadline2 = deadline1.plusSeconds(20);
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    CancelScope s = CancelScope.withDeadline(deadline1);
                    cm.set(s);
                    s.run(
                        () -> {
                          entered.countDown();
                          Thread.sleep(50_000);
                        });
                  }));
          entered.await();
          assertThat(cm.get().deadline()).contains(deadline1);
          cm.get().setDeadline(deadline2);
          assertThat(cm.get().deadline()).contains(deadline2);
          cm.get().setDeadline(Instant.MAX);
          assertThat(cm.get().deadline()).contains(Instant.MAX);
          task.get().cancel(true);
        });
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(cm.get().cancelCalled()).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_nested_timeout_in_finally: in the finally of a body whose timeout fired, a new 10 ms
  // fail_after is still inside the cancelled outer scope. asyncio gives the inner one its own
  // TimeoutError; here cancellation is level-triggered (Trio): the cleanup's sleep is cancelled at
  // once by the outer scope, the inner fail_after lets that through, and the outer one times out.
  // (Cleanup that must wait belongs in a shielded scope.)
  @RepeatedTest(5)
  void aTimeoutInTheFinallyOfATimedOutBodyIsCutByTheOuterOne() throws Exception {
    AtomicReference<Throwable> fromInner = new AtomicReference<>();
    long t0 = System.nanoTime();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(10),
                    () -> {
                      try {
                        Thread.sleep(1_000);
                      } finally {
                        try {
                          CancelScope.failAfter(
                              Duration.ofMillis(10),
                              () -> {
                                Thread.sleep(10_000);
                                return null;
                              });
                        } catch (Exception e) {
                          fromInner.set(e);
                        }
                      }
                      return null;
                    }))
        .isInstanceOf(TimeoutException.class);
    assertThat(fromInner.get()).isInstanceOf(InterruptedException.class);
    assertThat(System.nanoTime() - t0).isLessThan(TimeUnit.SECONDS.toNanos(5));
  }

  // test_timeout_after_cancellation: after an interrupt from someone else was taken by a sleep, a
  // fail_after(0) in the finally times out as usual.
  @Test
  void failAfterZeroAfterAForeignInterruptWasTakenTimesOut() throws Exception {
    try {
      Thread.currentThread().interrupt();
      Thread.sleep(1_000);
    } catch (InterruptedException e) {
      // taken
    } finally {
      assertThatThrownBy(
              () ->
                  CancelScope.failAfter(
                      Duration.ZERO,
                      () -> {
                        Thread.sleep(1_000);
                        return null;
                      }))
          .isInstanceOf(TimeoutException.class);
    }
  }

  // test_timeout_in_cancelled_task: inside a cancelled group, fail_after(10 s) throws the group's
  // cancellation, not a TimeoutException, and the group absorbs it.
  @RepeatedTest(5)
  void failAfterInsideACancelledGroupThrowsTheCancellation() throws Exception {
    TaskGroup g = TaskGroup.named("cancelled-task");
    AtomicReference<Throwable> fromFailAfter = new AtomicReference<>();
    g.run(
        () -> {
          g.cancel();
          try {
            CancelScope.failAfter(
                Duration.ofSeconds(10),
                () -> {
                  Thread.sleep(10_000);
                  return null;
                });
          } catch (Exception e) {
            fromFailAfter.set(e);
            throw e;
          }
        });
    assertThat(fromFailAfter.get()).isInstanceOf(InterruptedException.class);
    assertThat(g.cancelCaught()).isTrue();
  }

  // test_repr_active / test_repr_expired / test_repr_finished: the scope's state in toString.
  @Test
  void toStringShowsTheScopesState() throws Exception {
    CancelScope cm = CancelScope.withTimeout(Duration.ofSeconds(10));
    assertThat(cm.toString()).contains("new");
    cm.run(() -> assertThat(cm.toString()).contains("running"));
    assertThat(cm.toString()).contains("done");
    CancelScope expired = CancelScope.withTimeout(Duration.ZERO);
    expired.run(
        () -> {
          assertThat(expired.toString()).contains("cancelled");
          CancelScope.checkpoint();
        });
    assertThat(expired.toString()).contains("done");
  }
}
