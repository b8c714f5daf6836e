package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.Finished;
import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.io.IOException;
import java.lang.ref.WeakReference;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Scenarios translated to threads from the Trio, AnyIO, CPython asyncio and OpenJDK
 * StructuredTaskScope test suites, written against this library's contract (its javadoc). Each test
 * names the upstream test it follows. (The retention scenario of CPython's refcycle tests is in
 * RetentionTest.)
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedScenariosTest {

  /** An Error, not an Exception, as a child or the body may throw. */
  static final class Boom extends Error {
    Boom(String m) {
      super(m);
    }
  }

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static boolean checkpointThrows() {
    try {
      CancelScope.checkpoint();
      return false;
    } catch (InterruptedException e) {
      return true;
    }
  }

  private static Thread startThread(Runnable r) {
    return Thread.ofPlatform().start(r);
  }

  /** A platform thread that calls {@code cancel} once {@code started} has opened. */
  private static Thread cancelOnceStarted(CountDownLatch started, Runnable cancel) {
    return startThread(
        () -> {
          try {
            started.await();
          } catch (InterruptedException e) {
            return;
          }
          cancel.run();
        });
  }

  // ---------------------------------------------------------------- cancel(): where and when

  // Ported from CPython test_taskgroups.py test_taskgroup_cancel_body (3.15 TaskGroup.cancel()).
  @RepeatedTest(20)
  void cancelFromTheBodyStopsTheBodyAndEveryChildAndRunReturnsNormally() throws Exception {
    Tracking tracking = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup g = Fixtures.group("body-cancel", tracking);
    CountDownLatch started = new CountDownLatch(2);
    Finished finished = new Finished();
    AtomicBoolean pastCheckpoint = new AtomicBoolean();
    List<Task<Void>> tasks = new ArrayList<>();
    g.run(
        () -> {
          tasks.add(g.fork(Fixtures.blockedUntilCancelled(started, finished)));
          tasks.add(g.fork(Fixtures.blockedUntilCancelled(started, finished)));
          started.await();
          g.cancel();
          CancelScope.checkpoint();
          pastCheckpoint.set(true);
        });
    assertThat(pastCheckpoint).as("body checkpoint after cancel() must throw").isFalse();
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(finished.count()).isEqualTo(2);
    assertThat(tasks).allSatisfy(t -> assertThat(t.state()).isEqualTo(Future.State.CANCELLED));
    tracking.assertAllDone();
  }

  // Ported from AnyIO test_taskgroups.py test_cancel_scope_in_child_task / CPython
  // test_taskgroup_cancel_from_child (3.15).
  @RepeatedTest(20)
  void cancelFromAChildStopsTheBodyAndTheSiblings() throws Exception {
    Tracking tracking = new Tracking(ThreadKind.PLATFORM);
    TaskGroup g = Fixtures.group("child-cancel", tracking);
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicBoolean bodyInterrupted = new AtomicBoolean();
    g.run(
        () -> {
          Task<Void> sibling = g.fork(Fixtures.blockedUntilCancelled(started, finished));
          g.fork(
              () -> {
                started.await();
                g.cancel("child says stop");
                return "done";
              });
          try {
            Thread.sleep(60_000);
          } catch (InterruptedException e) {
            bodyInterrupted.set(true);
            throw e;
          } finally {
            assertThat(sibling).isNotNull();
          }
        });
    assertThat(bodyInterrupted).isTrue();
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(finished.count()).isEqualTo(1);
    tracking.assertAllDone();
  }

  // Ported from OpenJDK StructuredTaskScopeTest testShutdownInOtherThread / Trio test_run.py
  // test_cancel_scope cancelled from outside (run_sync_soon).
  @RepeatedTest(20)
  void cancelFromAnUnrelatedThreadStopsTheGroupWithoutTouchingThatThread() throws Exception {
    Tracking tracking = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup g = Fixtures.group("outside-cancel", tracking);
    CountDownLatch started = new CountDownLatch(3);
    Finished finished = new Finished();
    AtomicBoolean outsiderInterrupted = new AtomicBoolean();
    Thread outsider =
        startThread(
            () -> {
              try {
                started.await();
              } catch (InterruptedException e) {
                return;
              }
              g.cancel();
              outsiderInterrupted.set(Thread.currentThread().isInterrupted());
            });
    g.run(
        () -> {
          for (int i = 0; i < 3; i++) {
            g.fork(Fixtures.blockedUntilCancelled(started, finished));
          }
        });
    outsider.join();
    assertThat(outsiderInterrupted).as("cancel() interrupted the outside caller").isFalse();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(finished.count()).isEqualTo(3);
    tracking.assertAllDone();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_cancel_before_enter (3.15) / AnyIO
  // test_cancel_before_entering_scope.
  @Test
  void cancelBeforeRunStartsTheGroupCancelledAndForkDoesNotStartWork() throws Exception {
    TaskGroup g = TaskGroup.named("pre-cancelled");
    g.cancel();
    assertThat(g.cancelCalled()).isTrue();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    AtomicBoolean cancelledInBody = new AtomicBoolean();
    g.run(
        () -> {
          cancelledInBody.set(CancelScope.isCancelled());
          task.set(g.fork(() -> ran.set(true)));
          CancelScope.checkpoint();
        });
    assertThat(cancelledInBody).isTrue();
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(ran).isFalse();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_cancel_after_exit (3.15).
  @Test
  void cancelAfterRunOnlySetsCancelCalled() throws Exception {
    TaskGroup g = TaskGroup.named("finished");
    Task<Integer> t = g.call(() -> g.fork(() -> 42));
    g.cancel("too late");
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
    assertThat(t.resultNow()).isEqualTo(42);
    assertThat(g.toString()).contains("done");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_cancel_idempotent (3.15).
  @Test
  void cancelIsIdempotentAndKeepsTheFirstReason() throws Exception {
    TaskGroup g = TaskGroup.named("idem");
    AtomicReference<String> reason = new AtomicReference<>();
    g.run(
        () -> {
          g.cancel("first");
          g.cancel("second");
          g.cancel();
          reason.set(g.cancelScope().cancelReason().orElse("<none>"));
        });
    assertThat(reason.get()).contains("first").doesNotContain("second");
    assertThat(g.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted())
        .as("cancel() three times from the body leaks an interrupt")
        .isFalse();
  }

  // Rejected-call rule; after CPython test_taskgroup_cancel_before_enter (3.15) with a bad
  // argument.
  @Test
  void cancelWithNullReasonIsRejectedAndLeavesTheGroupUncancelled() throws Exception {
    TaskGroup g = TaskGroup.named("npe");
    assertThatThrownBy(() -> g.cancel(null)).isInstanceOf(NullPointerException.class);
    assertThat(g.cancelCalled()).isFalse();
    AtomicBoolean cancelled = new AtomicBoolean(true);
    g.run(() -> cancelled.set(CancelScope.isCancelled()));
    assertThat(cancelled).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---------------------------------------------------------------- failures: none lost

  // Ported from Trio test_run.py test_nursery_multierror / CPython test_taskgroups.py
  // test_taskgroup_07 (body error raised while cancelled is reported with the child error).
  @RepeatedTest(20)
  void failuresOfBodyChildHookAndShieldedCleanupAreAllReportedFirstFailureFirst() throws Exception {
    TaskGroup g = TaskGroup.named("all-failures");
    RuntimeException first = new IllegalStateException("child A fails first");
    IOException hookFailure = new IOException("cancel hook failed");
    IOException cleanupFailure = new IOException("shielded cleanup failed");
    IllegalStateException bodyFailure = new IllegalStateException("body failed while cancelled");
    CountDownLatch ready = new CountDownLatch(2);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try (var hook =
                                CancelScope.onCancel(
                                    () -> {
                                      throw hookFailure;
                                    })) {
                              ready.countDown();
                              Thread.sleep(60_000);
                            }
                          });
                      g.fork(
                          () -> {
                            try {
                              ready.countDown();
                              Thread.sleep(60_000);
                            } finally {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        throw cleanupFailure;
                                      });
                            }
                          });
                      ready.await();
                      g.fork(
                          () -> {
                            throw first;
                          });
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException e) {
                        throw bodyFailure;
                      }
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    List<Throwable> failures = ((TaskGroupException) thrown).failures();
    assertThat(failures.get(0)).isSameAs(first);
    assertThat(failures).containsExactlyInAnyOrder(first, hookFailure, cleanupFailure, bodyFailure);
    assertThat(thrown.getCause()).isSameAs(first);
    assertThat(thrown.getSuppressed()).hasSize(3);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from AnyIO test_taskgroups.py test_cancel_child_task_debris / Trio test_run.py
  // test_cancel_shield_abort: a cleanup failure after an explicit cancel() is not lost.
  @RepeatedTest(20)
  void shieldedCleanupFailureAfterExplicitCancelMakesRunThrow() throws Exception {
    TaskGroup g = TaskGroup.named("cleanup");
    IOException cleanupFailure = new IOException("goodbye failed");
    CountDownLatch ready = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try {
                              ready.countDown();
                              Thread.sleep(60_000);
                            } finally {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        Thread.sleep(1); // blocking cleanup, shielded
                                        throw cleanupFailure;
                                      });
                            }
                          });
                      ready.await();
                      g.cancel();
                    }));
    assertThat(thrown)
        .as("outcome (1) failures wins over (4) own cancel")
        .isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(cleanupFailure);
    assertThat(g.cancelCalled()).isTrue();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_cancel_before_exception /
  // test_taskgroup_cancel_after_exception (3.15): a cancel() racing a child failure never hides
  // it.
  @RepeatedTest(20)
  void outsideCancelRacingAChildFailureNeverLosesTheFailure() throws Exception {
    TaskGroup g = TaskGroup.named("race");
    RuntimeException failure = new RuntimeException("failed during the race");
    CountDownLatch go = new CountDownLatch(1);
    AtomicBoolean childThrew = new AtomicBoolean();
    Thread canceller =
        startThread(
            () -> {
              try {
                go.await();
              } catch (InterruptedException e) {
                return;
              }
              g.cancel();
            });
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            go.await();
                            childThrew.set(true);
                            throw failure;
                          });
                      go.countDown();
                    }));
    canceller.join();
    if (!childThrew.get()) {
      assertThat(thrown).as("child never ran: nothing to report").isNull();
      return;
    }
    assertThat(thrown)
        .as("the child threw but run did not report it")
        .isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_21 / test_taskgroup_21a (a
  // BaseException in a child) and OpenJDK StructuredTaskScopeTest testForkWithError.
  @RepeatedTest(20)
  void anErrorThrownByAChildIsReportedUnwrappedAndCancelsTheSiblings() throws Exception {
    Tracking tracking = new Tracking(ThreadKind.PLATFORM);
    TaskGroup g = Fixtures.group("error-child", tracking);
    Boom boom = new Boom("child error");
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicReference<Task<Object>> failing = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(Fixtures.blockedUntilCancelled(started, finished));
                      started.await();
                      failing.set(
                          g.fork(
                              () -> {
                                throw boom;
                              }));
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    assertThat(finished.count()).isEqualTo(1);
    assertThat(failing.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(failing.get().exceptionNow()).isSameAs(boom);
    assertThatThrownBy(() -> failing.get().get())
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isSameAs(boom);
    tracking.assertAllDone();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_22 / test_taskgroup_errors_in_body (a
  // BaseException raised by the body while children run).
  @RepeatedTest(20)
  void anErrorThrownByTheBodyIsReportedAndTheChildrenAreCancelled() throws Exception {
    Tracking tracking = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup g = Fixtures.group("error-body", tracking);
    Boom boom = new Boom("body error");
    CountDownLatch started = new CountDownLatch(2);
    Finished finished = new Finished();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(Fixtures.blockedUntilCancelled(started, finished));
                      g.fork(Fixtures.blockedUntilCancelled(started, finished));
                      started.await();
                      throw boom;
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    assertThat(finished.count()).isEqualTo(2);
    assertThat(g.cancelCalled()).as("a failure is not cancel()").isFalse();
    tracking.assertAllDone();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_18 (sequenced errors keep their
  // order) / OpenJDK StructuredTaskScopeTest (Joiner.awaitAll): COLLECT keeps failures in order.
  @RepeatedTest(20)
  void collectReportsSequencedFailuresInTheOrderTheyHappened() throws Exception {
    TaskGroup g = TaskGroup.builder().name("ordered").failurePolicy(FailurePolicy.COLLECT).build();
    RuntimeException a = new RuntimeException("A");
    RuntimeException b = new RuntimeException("B");
    RuntimeException c = new RuntimeException("C");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Object> ta =
                          g.fork(
                              () -> {
                                throw a;
                              });
                      Task<Object> tb =
                          g.fork(
                              () -> {
                                catchThrowable(ta::get);
                                throw b;
                              });
                      catchThrowable(tb::get);
                      throw c;
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(a, b, c);
  }

  // Ported from the Task javadoc promise plus CPython test_taskgroups.py
  // test_taskgroup_23 (a sibling awaiting a failed task): rethrowing get()'s ExecutionException
  // does not double-count.
  @RepeatedTest(20)
  void aSiblingRethrowingTheExecutionExceptionDoesNotCountTheFailureTwice() throws Exception {
    TaskGroup g = TaskGroup.builder().name("once").failurePolicy(FailurePolicy.COLLECT).build();
    RuntimeException failure = new RuntimeException("only once");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      g.fork(() -> failing.get()); // throws ExecutionException(failure)
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure);
  }

  // No direct upstream (closest: AnyIO test_taskgroups.py test_cancelled_not_caught): a child that
  // throws InterruptedException while nothing cancels it has failed; it must not vanish.
  @Test
  void aChildThrowingInterruptedExceptionWhileNotCancelledIsAFailure() throws Exception {
    TaskGroup g = TaskGroup.named("spurious-ie");
    InterruptedException spurious = new InterruptedException("not a cancellation");
    AtomicReference<Task<Object>> t = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        t.set(
                            g.fork(
                                () -> {
                                  throw spurious;
                                }))));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(spurious);
    assertThat(t.get().state()).isEqualTo(Future.State.FAILED);
  }

  // ---------------------------------------------------------------- level-triggered delivery

  // Ported from Trio test_run.py test_cancel_edge_cases / test_basic_timeout (cancellation stays
  // raised at every checkpoint): a child that swallows the interrupt is interrupted again.
  @RepeatedTest(20)
  void aChildThatSwallowsTheInterruptIsInterruptedAgainUntilItEnds() throws Exception {
    TaskGroup g = TaskGroup.named("swallower");
    CountDownLatch started = new CountDownLatch(1);
    AtomicInteger swallowed = new AtomicInteger();
    g.run(
        () -> {
          g.fork(
              () -> {
                started.countDown();
                while (swallowed.get() < 3) {
                  try {
                    Thread.sleep(60_000);
                  } catch (InterruptedException e) {
                    swallowed.incrementAndGet(); // swallowed, no library call in between
                  }
                }
              });
          started.await();
          g.cancel();
        });
    assertThat(swallowed.get()).isEqualTo(3);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from Trio test_run.py test_cancel_edge_cases (owner side): the body swallows the
  // cancellation twice and keeps waiting; it is interrupted again and nothing leaks afterwards.
  @RepeatedTest(20)
  void aBodyThatSwallowsTheCancellationLeavesNoInterruptAfterRun() throws Exception {
    TaskGroup g = TaskGroup.named("body-swallower");
    AtomicInteger swallowed = new AtomicInteger();
    g.run(
        () -> {
          g.fork(
              () -> {
                g.cancel();
              });
          while (swallowed.get() < 2) {
            try {
              Thread.sleep(60_000);
            } catch (InterruptedException e) {
              swallowed.incrementAndGet();
            }
          }
          // returns normally with a library interrupt possibly re-delivered
        });
    assertThat(swallowed.get()).isEqualTo(2);
    assertThat(Thread.currentThread().isInterrupted())
        .as("library interrupt leaked to the caller after the body swallowed it")
        .isFalse();
  }

  // ---------------------------------------------------------------- interrupts around run

  // Ported from OpenJDK StructuredTaskScopeTest testInterruptJoin1 / Trio KeyboardInterrupt
  // tests: an outside interrupt of the owner cancels and waits, then run throws.
  @RepeatedTest(20)
  void anOutsideInterruptOfTheOwnerCancelsTheChildrenThenRunThrowsInterrupted() throws Exception {
    Tracking tracking = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup g = Fixtures.group("owner-interrupted", tracking);
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    Thread owner = Thread.currentThread();
    Thread interrupter =
        startThread(
            () -> {
              try {
                started.await();
              } catch (InterruptedException e) {
                return;
              }
              Probes.awaitWaiting(owner, Duration.ofSeconds(10));
              owner.interrupt();
            });
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(Fixtures.blockedUntilCancelled(started, finished));
                      started.await();
                      new CountDownLatch(1).await();
                    }));
    interrupter.join();
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(finished.count()).isEqualTo(1);
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
    for (Thread t : tracking.threads) {
      assertThat(t.join(Duration.ofSeconds(5))).isTrue();
    }
  }

  // Ported from OpenJDK StructuredTaskScopeTest testJoinWithInterruptStatusSet: an interrupt the
  // body set itself (not the library) survives a failing run (outcome 1 keeps it set).
  @Test
  void anInterruptSetByTheBodyItselfSurvivesAFailingRun() throws Exception {
    TaskGroup g = TaskGroup.named("self-interrupt");
    RuntimeException failure = new RuntimeException("after self-interrupt");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Thread.currentThread().interrupt();
                      throw failure;
                    }));
    boolean stillSet = Thread.interrupted();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(stillSet).as("outside interrupt lost after TaskGroupException").isTrue();
  }

  // Ported from Trio test_run.py test_cancel_scope_nesting / CancelScope javadoc "never lost":
  // a pending foreign interrupt when the group's own cancel is delivered is kept or thrown.
  @RepeatedTest(20)
  void aForeignInterruptPendingWhenTheGroupCancelsItselfIsNotLost() throws Exception {
    TaskGroup g = TaskGroup.named("pending-foreign");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Thread.currentThread().interrupt(); // someone else's interrupt
                      g.cancel();
                    }));
    boolean stillSet = Thread.interrupted();
    assertThat(thrown == null ? stillSet : thrown instanceof InterruptedException)
        .as("foreign interrupt lost: thrown=%s, status=%s", thrown, stillSet)
        .isTrue();
  }

  // ---------------------------------------------------------------- deadlines and shields

  // Ported from AnyIO test_taskgroups.py test_deadline_reached_on_start / Trio test_run.py
  // test_cancel_scope_deadline in the past.
  @Test
  void aScopeWithADeadlineInThePastIsCancelledAtOnceAndAbsorbsIt() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope past = CancelScope.withDeadline(Instant.now().minusSeconds(3600));
    AtomicBoolean reached = new AtomicBoolean();
    outer.run(
        () -> {
          past.run(
              () -> {
                CancelScope.checkpoint();
                reached.set(true);
              });
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(reached).isFalse();
    assertThat(past.cancelCaught()).isTrue();
    assertThat(past.cancelCalled()).isTrue();
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from CPython test_timeouts.py / AnyIO test_fail_after_zero: a group with a zero
  // timeout starts no work and returns normally.
  @Test
  void aGroupWithZeroTimeoutStartsNoChildAndReturnsNormally() throws Exception {
    TaskGroup g = TaskGroup.builder().name("zero").timeout(Duration.ZERO).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<Void>> t = new AtomicReference<>();
    g.run(() -> t.set(g.fork(() -> ran.set(true))));
    assertThat(ran).isFalse();
    assertThat(t.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from AnyIO test_taskgroups.py test_deadline_moved / Trio test_run.py
  // test_basic_timeout (deadline changed while running): moved into the past from another thread.
  @RepeatedTest(20)
  void movingARunningGroupsDeadlineIntoThePastCancelsIt() throws Exception {
    TaskGroup g = TaskGroup.builder().name("moved").timeout(Duration.ofHours(1)).build();
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    Thread mover =
        startThread(
            () -> {
              try {
                started.await();
              } catch (InterruptedException e) {
                return;
              }
              g.cancelScope().setDeadline(Instant.now().minusSeconds(1));
            });
    g.run(
        () -> {
          g.fork(Fixtures.blockedUntilCancelled(started, finished));
          Thread.sleep(60_000);
        });
    mover.join();
    assertThat(finished.count()).isEqualTo(1);
    assertThat(g.cancelCalled()).as("an expired deadline counts as cancelCalled").isTrue();
    assertThat(g.cancelCaught()).isTrue();
  }

  // Ported from AnyIO test_taskgroups.py test_deadline_moved (later): a deadline pushed out
  // before it fires does not fire.
  @Test
  void movingADeadlineLaterBeforeItFiresKeepsTheScopeRunning() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(30));
    AtomicBoolean completed = new AtomicBoolean();
    scope.run(
        () -> {
          scope.setDeadline(Instant.now().plusSeconds(3600));
          CancelScope.sleep(Duration.ofMillis(150)); // the work: outlives the old deadline
          completed.set(true);
        });
    assertThat(completed).isTrue();
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(scope.cancelCaught()).isFalse();
  }

  // Rejected call leaves state: a negative timeout is rejected and the deadline is unchanged.
  // After AnyIO test_taskgroups.py test_deadline_moved.
  @Test
  void aRejectedSetTimeoutLeavesTheDeadlineAsItWas() throws Exception {
    Instant deadline = Instant.now().plusSeconds(3600);
    CancelScope scope = CancelScope.withDeadline(deadline);
    assertThatThrownBy(() -> scope.setTimeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> scope.setDeadline(null)).isInstanceOf(NullPointerException.class);
    assertThat(scope.deadline()).isPresent();
    assertThat(Duration.between(scope.deadline().orElseThrow(), deadline).abs())
        .isLessThan(Duration.ofMillis(10));
    scope.run(() -> assertThat(CancelScope.isCancelled()).isFalse());
    assertThat(scope.cancelCalled()).isFalse();
  }

  // Ported from Trio test_run.py test_cancel_shielding / AnyIO test_shielded_cleanup: inside a
  // cancelled group a shielded scope can block, and a nested group inside the shield runs its
  // children to completion.
  @RepeatedTest(20)
  void aShieldInsideACancelledGroupLetsANestedGroupRunToCompletion() throws Exception {
    TaskGroup outer = TaskGroup.named("outer-cancelled");
    AtomicReference<String> inner = new AtomicReference<>();
    AtomicBoolean cancelledAfterShield = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          CancelScope.shielded()
              .run(
                  () -> {
                    assertThat(CancelScope.isCancelled()).isFalse();
                    TaskGroup nested = TaskGroup.named("nested-in-shield");
                    inner.set(
                        nested.call(
                            () -> {
                              Task<String> t =
                                  nested.fork(
                                      () -> {
                                        CancelScope.sleep(Duration.ofMillis(20));
                                        return "completed";
                                      });
                              return t.get();
                            }));
                  });
          cancelledAfterShield.set(checkpointThrows());
        });
    assertThat(inner.get()).isEqualTo("completed");
    assertThat(cancelledAfterShield).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from AnyIO test_taskgroups.py test_shielded_deadline / Trio test_run.py
  // test_cancel_shield_abort: a shield's own deadline still works inside a cancelled scope.
  @RepeatedTest(20)
  void aShieldedScopesOwnDeadlineWorksInsideACancelledScope() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope shield = CancelScope.shielded();
    AtomicBoolean outerStillCancelled = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          shield.setTimeout(Duration.ofMillis(20));
          shield.run(() -> Thread.sleep(60_000));
          try {
            CancelScope.checkpoint();
          } catch (InterruptedException e) {
            outerStillCancelled.set(true);
            throw e; // let outer absorb it
          }
        });
    assertThat(shield.cancelCaught()).isTrue();
    assertThat(outerStillCancelled).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from Trio test_run.py test_nursery_cancel_doesnt_create_cyclic_garbage /
  // test_cancel_scope_nesting and AnyIO test_cancel_propagation: an outer group's cancel passes
  // through an inner group to the outer, which absorbs it.
  @RepeatedTest(20)
  void anOuterGroupsCancelPassesThroughTheInnerGroupAndIsAbsorbedByTheOuter() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicReference<Throwable> innerThrew = new AtomicReference<>();
    Thread canceller = cancelOnceStarted(started, outer::cancel);
    outer.run(
        () -> {
          try {
            inner.run(() -> inner.fork(Fixtures.blockedUntilCancelled(started, finished)));
          } catch (InterruptedException e) {
            innerThrew.set(e);
            throw e;
          }
        });
    canceller.join();
    assertThat(innerThrew.get()).isInstanceOf(InterruptedException.class);
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(inner.cancelCalled()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(finished.count()).isEqualTo(1);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- misuse: rejected calls

  // Ported from OpenJDK StructuredTaskScopeTest testForkAfterClose / CPython test_taskgroups.py
  // test_taskgroup_create_task_after_exit ("TaskGroup ... is finished").
  @Test
  void forkAndStartAfterTheGroupFinishedThrowIllegalStateAndChangeNothing() throws Exception {
    TaskGroup g = TaskGroup.named("finished");
    g.run(() -> g.fork(() -> 1));
    String before = g.toString();
    assertThatThrownBy(() -> g.fork(() -> 2)).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> g.fork("n", () -> {})).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> g.start(s -> s.started(1))).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> g.run(() -> {})).isInstanceOf(IllegalStateException.class);
    assertThat(g.toString()).isEqualTo(before);
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_not_entered / OpenJDK
  // StructuredTaskScopeTest testForkBeforeOpen: fork before run is rejected, then run works.
  @Test
  void forkAndStartBeforeRunThrowIllegalStateAndTheGroupStillRuns() throws Exception {
    TaskGroup g = TaskGroup.named("not-entered");
    String before = g.toString();
    assertThatThrownBy(() -> g.fork(() -> 2)).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> g.start(s -> s.started(1))).isInstanceOf(IllegalStateException.class);
    assertThat(g.toString()).isEqualTo(before);
    Integer r = g.call(() -> g.fork(() -> 7).get());
    assertThat(r).isEqualTo(7);
    assertThat(g.cancelCalled()).isFalse();
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_double_enter: a second run while the
  // first is running is rejected and does not disturb the first.
  @RepeatedTest(20)
  void aSecondRunWhileRunningIsRejectedAndTheFirstCompletesNormally() throws Exception {
    TaskGroup g = TaskGroup.named("double");
    AtomicReference<Throwable> second = new AtomicReference<>();
    AtomicBoolean cancelledAfter = new AtomicBoolean(true);
    String result =
        g.call(
            () -> {
              second.set(catchThrowable(() -> g.run(() -> {})));
              Thread other =
                  startThread(
                      () -> second.compareAndSet(null, catchThrowable(() -> g.run(() -> {}))));
              other.join();
              cancelledAfter.set(CancelScope.isCancelled());
              return g.fork(() -> "still works").get();
            });
    assertThat(second.get()).isInstanceOf(IllegalStateException.class);
    assertThat(result).isEqualTo("still works");
    assertThat(cancelledAfter).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---------------------------------------------------------------- start()

  // Ported from AnyIO test_taskgroups.py test_start_crash_before_started_call.
  @Test
  void startWhoseWorkFailsBeforeSignallingThrowsThatFailureAndTheGroupIsFine() throws Exception {
    TaskGroup g = TaskGroup.named("start-crash-before");
    RuntimeException crash = new IllegalArgumentException("crash before started");
    IOException checked = new IOException("checked crash before started");
    AtomicReference<Throwable> unchecked = new AtomicReference<>();
    AtomicReference<Throwable> wrapped = new AtomicReference<>();
    g.run(
        () -> {
          unchecked.set(
              catchThrowable(
                  () ->
                      g.start(
                          s -> {
                            throw crash;
                          })));
          wrapped.set(
              catchThrowable(
                  () ->
                      g.start(
                          s -> {
                            throw checked;
                          })));
          assertThat(CancelScope.isCancelled()).as("failure before started cancels").isFalse();
        });
    assertThat(unchecked.get()).isSameAs(crash);
    assertThat(wrapped.get()).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) wrapped.get()).failures()).containsExactly(checked);
    assertThat(g.cancelCalled()).isFalse();
  }

  // Ported from AnyIO test_taskgroups.py test_start_crash_after_started_call.
  @RepeatedTest(20)
  void startWhoseWorkFailsAfterSignallingIsAFailureOfTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("start-crash-after");
    RuntimeException crash = new RuntimeException("crash after started");
    AtomicReference<String> value = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      value.set(
                          g.start(
                              s -> {
                                s.started("up");
                                throw crash;
                              }));
                      Thread.sleep(60_000); // cancelled by the failure
                    }));
    assertThat(value.get()).isEqualTo("up");
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(crash);
  }

  // Ported from AnyIO test_taskgroups.py test_start_no_started_call / Trio test_run.py
  // test_nursery_start ("child exited without calling task_status.started()").
  @Test
  void startWhoseWorkReturnsWithoutSignallingThrowsIllegalState() throws Exception {
    TaskGroup g = TaskGroup.named("start-no-signal");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    g.run(() -> thrown.set(catchThrowable(() -> g.start(s -> {}))));
    assertThat(thrown.get()).isInstanceOf(IllegalStateException.class);
    assertThat(g.cancelCalled()).isFalse();
  }

  // Ported from AnyIO test_taskgroups.py test_start_called_twice.
  @Test
  void signallingTwiceThrowsIllegalStateAndStartKeepsTheFirstValue() throws Exception {
    TaskGroup g = TaskGroup.named("start-twice");
    AtomicReference<Throwable> secondSignal = new AtomicReference<>();
    AtomicReference<String> value = new AtomicReference<>();
    g.run(
        () ->
            value.set(
                g.start(
                    s -> {
                      s.started("first");
                      secondSignal.set(catchThrowable(() -> s.started("second")));
                    })));
    assertThat(value.get()).isEqualTo("first");
    assertThat(secondSignal.get()).isInstanceOf(IllegalStateException.class);
  }

  // Ported from Trio test_run.py test_nursery_start (start in a cancelled nursery raises
  // Cancelled and the task never runs) / AnyIO test_start_native_host_cancelled.
  @Test
  void startInACancelledGroupThrowsInterruptedAndDoesNotRunTheWork() throws Exception {
    TaskGroup g = TaskGroup.named("start-cancelled");
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    g.run(
        () -> {
          g.cancel();
          thrown.set(catchThrowable(() -> g.start(s -> ran.set(true))));
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(ran).isFalse();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from Trio test_run.py test_nursery_start (caller cancelled while waiting for
  // started(): the child is cancelled with the caller's scope and waited for).
  @RepeatedTest(20)
  void theCallerCancelledWhileStartWaitsCancelsAndWaitsForTheChild() throws Exception {
    TaskGroup g = TaskGroup.named("start-waiting");
    CancelScope callerScope = CancelScope.create();
    CountDownLatch inWork = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean finishedWhenStartThrew = new AtomicBoolean();
    g.run(
        () -> {
          Thread canceller =
              startThread(
                  () -> {
                    try {
                      inWork.await();
                    } catch (InterruptedException e) {
                      return;
                    }
                    callerScope.cancel();
                  });
          callerScope.run(
              () -> {
                try {
                  g.start(
                      s -> {
                        try {
                          inWork.countDown();
                          Thread.sleep(60_000);
                        } finally {
                          finished.mark();
                        }
                      });
                } catch (InterruptedException e) {
                  thrown.set(e);
                  finishedWhenStartThrew.set(finished.count() == 1);
                  throw e;
                }
              });
          canceller.join();
          assertThat(CancelScope.isCancelled()).as("group itself not cancelled").isFalse();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(finishedWhenStartThrew).as("start threw before its child finished").isTrue();
    assertThat(callerScope.cancelCaught()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---------------------------------------------------------------- invokeAll / invokeAny

  // Ported from OpenJDK StructuredTaskScopeTest (Joiner.allSuccessfulOrThrow,
  // testAwaitAllSuccessful) / CPython test_taskgroups gather-style results.
  @RepeatedTest(20)
  void invokeAllReturnsResultsInOrderAndAFailureCancelsTheRest() throws Exception {
    List<Callable<Integer>> ok = List.of(() -> 1, () -> 2, () -> 3);
    assertThat(TaskGroup.invokeAll(ok)).containsExactly(1, 2, 3);

    RuntimeException failure = new RuntimeException("invokeAll failure");
    Finished finished = new Finished();
    CountDownLatch started = new CountDownLatch(1);
    List<Callable<Integer>> bad =
        List.of(
            () -> {
              Fixtures.blockedUntilCancelled(started, finished).run();
              return 0;
            },
            () -> {
              started.await();
              throw failure;
            });
    Throwable thrown = catchThrowable(() -> TaskGroup.invokeAll(bad));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure);
    assertThat(finished.count()).isEqualTo(1);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from OpenJDK StructuredTaskScopeTest (Joiner.anySuccessfulResultOrThrow,
  // testAnySuccessful / testAllFailed).
  @RepeatedTest(20)
  void invokeAnyReturnsTheFirstSuccessAndReportsEveryFailureWhenAllFail() throws Exception {
    Finished finished = new Finished();
    CountDownLatch started = new CountDownLatch(1);
    List<Callable<String>> race =
        List.of(
            () -> {
              throw new IOException("fast failure does not stop the others");
            },
            () -> {
              Fixtures.blockedUntilCancelled(started, finished).run();
              return "slow";
            },
            () -> {
              started.await();
              return "winner";
            });
    assertThat(TaskGroup.invokeAny(race)).isEqualTo("winner");
    assertThat(finished.count()).as("loser cancelled and waited for").isEqualTo(1);

    IOException a = new IOException("a");
    IOException b = new IOException("b");
    List<Callable<String>> allFail =
        List.of(
            () -> {
              throw a;
            },
            () -> {
              throw b;
            });
    Throwable thrown = catchThrowable(() -> TaskGroup.invokeAny(allFail));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactlyInAnyOrder(a, b);
    assertThatThrownBy(() -> TaskGroup.invokeAny(List.<Callable<String>>of()))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from OpenJDK StructuredTaskScopeTest testInterruptJoin (invokeAll variant): the
  // caller's cancelled scope stops invokeAll, which throws InterruptedException after waiting.
  @RepeatedTest(20)
  void invokeAllInsideACancelledScopeThrowsInterruptedAfterTheTasksStopped() throws Exception {
    CancelScope scope = CancelScope.create();
    Finished finished = new Finished();
    CountDownLatch started = new CountDownLatch(2);
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread canceller = cancelOnceStarted(started, scope::cancel);
    scope.run(
        () -> {
          try {
            TaskGroup.invokeAll(
                List.<Callable<Object>>of(
                    () -> {
                      Fixtures.blockedUntilCancelled(started, finished).run();
                      return null;
                    },
                    () -> {
                      Fixtures.blockedUntilCancelled(started, finished).run();
                      return null;
                    }));
          } catch (Throwable t) {
            thrown.set(t);
            throw t;
          }
        });
    canceller.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(finished.count()).isEqualTo(2);
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- Task.get() from everywhere

  // Ported from the Task javadoc and CPython test_taskgroups.py test_taskgroup_03/04 (awaiting a
  // failed child from the body): the cancelled owner's get() throws InterruptedException, and the
  // failure is reported once.
  @RepeatedTest(20)
  void getFromTheCancelledOwnerThrowsInterruptedAndTheFailureIsReportedOnce() throws Exception {
    TaskGroup g = TaskGroup.named("owner-get");
    RuntimeException failure = new RuntimeException("child failed");
    AtomicReference<Throwable> fromGet = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Object> t =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      try {
                        t.get();
                      } catch (Throwable e) {
                        fromGet.set(e);
                        throw e;
                      }
                    }));
    assertThat(fromGet.get()).isInstanceOf(InterruptedException.class);
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure);
  }

  // Ported from OpenJDK StructuredTaskScopeTest testSubtaskGet / testSubtaskGetAfterJoin: after
  // run, get() from this and another thread gives the outcome, and a timed get does not hang.
  @Test
  void getAfterRunFromAnyThreadGivesTheOutcome() throws Exception {
    TaskGroup g = TaskGroup.builder().name("after").failurePolicy(FailurePolicy.COLLECT).build();
    RuntimeException failure = new RuntimeException("f");
    List<Task<String>> tasks = new ArrayList<>();
    CountDownLatch started = new CountDownLatch(1);
    catchThrowable(
        () ->
            g.run(
                () -> {
                  tasks.add(g.fork(() -> "ok"));
                  tasks.add(
                      g.fork(
                          () -> {
                            throw failure;
                          }));
                  Task<String> blocked =
                      g.fork(
                          () -> {
                            started.countDown();
                            Thread.sleep(60_000);
                            return "never";
                          });
                  tasks.add(blocked);
                  started.await();
                  assertThat(blocked.cancel(true)).isTrue();
                }));
    Queue<Throwable> problems = new ConcurrentLinkedQueue<>();
    Runnable check =
        () -> {
          try {
            assertThat(tasks.get(0).get()).isEqualTo("ok");
            assertThat(tasks.get(0).get(1, TimeUnit.MILLISECONDS)).isEqualTo("ok");
            assertThatThrownBy(() -> tasks.get(1).get())
                .isInstanceOf(ExecutionException.class)
                .cause()
                .isSameAs(failure);
            assertThatThrownBy(() -> tasks.get(2).get()).isInstanceOf(CancellationException.class);
            assertThatThrownBy(() -> tasks.get(2).get(1, TimeUnit.MILLISECONDS))
                .isInstanceOf(CancellationException.class);
          } catch (Throwable t) {
            problems.add(t);
          }
        };
    check.run();
    Thread other = startThread(check);
    other.join();
    assertThat(problems).isEmpty();
    assertThat(tasks.get(2).state()).isEqualTo(Future.State.CANCELLED);
  }

  // Ported from CPython test_taskgroups.py test_taskgroup_cancel_children_on_child_error (one
  // child cancelled on its own does not cancel the group).
  @RepeatedTest(20)
  void cancellingOneTaskDoesNotCancelTheGroupOrItsSiblings() throws Exception {
    TaskGroup g = TaskGroup.named("one-task");
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicReference<String> sibling = new AtomicReference<>();
    g.run(
        () -> {
          Task<Void> victim = g.fork(Fixtures.blockedUntilCancelled(started, finished));
          Task<String> other =
              g.fork(
                  () -> {
                    started.await();
                    CancelScope.sleep(Duration.ofMillis(20));
                    return "sibling done";
                  });
          started.await();
          assertThat(victim.cancel(true)).isTrue();
          assertThat(victim.cancel(true)).as("second cancel").isFalse();
          sibling.set(other.get());
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(sibling.get()).isEqualTo("sibling done");
    assertThat(finished.count()).isEqualTo(1);
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
  }

  // ---------------------------------------------------------------- retention

  // Ported from CPython test_taskgroups.py test_exception_refcycles_errors /
  // test_exception_refcycles_parent_task and Trio test_nursery_cancel_doesnt_create_cyclic_garbage:
  // a finished group kept alive keeps none of its children, their work or their results.
  @RepeatedTest(3)
  void aFinishedGroupKeptAliveKeepsNoChildWorkOrResult() throws Exception {
    TaskGroup g = TaskGroup.named("retention");
    CancelScope view = g.cancelScope();
    Queue<WeakReference<Object>> refs = new ConcurrentLinkedQueue<>();
    CountDownLatch started = new CountDownLatch(1);
    g.run(
        () -> {
          for (int i = 0; i < 50; i++) {
            byte[] payload = new byte[4096];
            Callable<byte[]> work = () -> payload;
            refs.add(new WeakReference<>(work));
            refs.add(new WeakReference<>(payload));
            g.fork(work);
          }
          Object held = new Object();
          refs.add(new WeakReference<>(held));
          g.fork(
              () -> {
                started.countDown();
                Thread.sleep(60_000);
                return held;
              });
          started.await();
          g.cancel();
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Probes.awaitCleared(List.copyOf(refs)))
        .as("children of a finished group still reachable from it (%s)", view)
        .isZero();
    assertThat(g.toString()).contains("done");
  }

  // ---------------------------------------------------------------- maxConcurrency

  // Ported from AnyIO test_synchronization.py CapacityLimiter cancel tests
  // (test_cancel_while_waiting-style) on a bounded group: a fork waiting for a place when the
  // group is cancelled does not run its work, and run does not hang.
  @RepeatedTest(20)
  void aForkWaitingForAPlaceWhenTheGroupIsCancelledDoesNotRunTheWork() throws Exception {
    TaskGroup g = TaskGroup.builder().name("bounded").maxConcurrency(1).build();
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Object> forkOutcome = new AtomicReference<>();
    AtomicBoolean reachedFork = new AtomicBoolean();
    Thread owner = Thread.currentThread();
    Thread canceller =
        startThread(
            () -> {
              try {
                started.await();
              } catch (InterruptedException e) {
                return;
              }
              Probes.awaitTrue("owner at the fork", Duration.ofSeconds(10), reachedFork::get);
              Probes.awaitWaiting(owner, Duration.ofSeconds(10));
              g.cancel();
            });
    g.run(
        () -> {
          g.fork(Fixtures.blockedUntilCancelled(started, finished));
          started.await();
          reachedFork.set(true);
          try {
            forkOutcome.set(g.fork(() -> secondRan.set(true)));
          } catch (Throwable t) {
            forkOutcome.set(t);
            throw t;
          }
        });
    canceller.join();
    assertThat(secondRan).isFalse();
    Object outcome = forkOutcome.get();
    if (outcome == null) {
      assertThat(reachedFork).isFalse();
    } else if (outcome instanceof Task<?> t) {
      assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
    } else {
      assertThat(outcome).isInstanceOf(InterruptedException.class);
    }
    assertThat(g.cancelCaught()).isTrue();
    assertThat(finished.count()).isEqualTo(1);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Ported from AnyIO CapacityLimiter tests: a place freed by Task.cancel goes to the waiting
  // fork, in a group that is not itself cancelled.
  @RepeatedTest(20)
  void aPlaceFreedByCancellingOneTaskGoesToTheWaitingFork() throws Exception {
    TaskGroup g = TaskGroup.builder().name("bounded-free").maxConcurrency(1).build();
    CountDownLatch started = new CountDownLatch(1);
    Finished finished = new Finished();
    AtomicReference<String> second = new AtomicReference<>();
    g.run(
        () -> {
          Task<Void> first = g.fork(Fixtures.blockedUntilCancelled(started, finished));
          started.await();
          Thread canceller = startThread(() -> first.cancel(true));
          second.set(g.fork(() -> "ran").get());
          canceller.join();
        });
    assertThat(second.get()).isEqualTo("ran");
    assertThat(finished.count()).isEqualTo(1);
    assertThat(g.cancelCalled()).isFalse();
  }

  // Rejected builder setter leaves the builder unchanged (Builder javadoc).
  @Test
  void aRejectedBuilderSetterLeavesTheBuilderAsItWas() throws Exception {
    TaskGroup.Builder b = TaskGroup.builder().name("builder").maxConcurrency(1);
    assertThatThrownBy(() -> b.maxConcurrency(0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> b.timeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    TaskGroup g = b.build();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxSeen = new AtomicInteger();
    g.run(
        () -> {
          for (int i = 0; i < 10; i++) {
            g.fork(
                () -> {
                  int now = running.incrementAndGet();
                  maxSeen.accumulateAndGet(now, Math::max);
                  Thread.yield();
                  running.decrementAndGet();
                });
          }
        });
    assertThat(maxSeen.get()).as("maxConcurrency(1) kept after a rejected setter").isEqualTo(1);
    assertThat(g.cancelCalled()).as("rejected timeout(-1) left no deadline").isFalse();
    assertThat(g.cancelScope().deadline()).isEmpty();
  }

  // The group's scope view cannot be run on its own (TaskGroup#cancelScope javadoc); the rejected
  // run leaves the group runnable.
  @Test
  void runningTheGroupsScopeViewIsRejectedAndTheGroupStillRuns() throws Exception {
    TaskGroup g = TaskGroup.named("view");
    assertThatThrownBy(() -> g.cancelScope().run(() -> {}))
        .isInstanceOf(IllegalStateException.class);
    assertThat(g.cancelScope().cancelCalled()).isFalse();
    g.run(() -> g.fork(() -> 1));
    assertThat(g.cancelCalled()).isFalse();
  }
}
