package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A conformance sweep of cancel scopes, shields, deadlines, outcome precedence and exception
 * shapes, aimed at failures that could be lost or misjudged where a cancellation and a failure
 * meet: a failure riding on a cancellation through a scope that does not absorb it, a shielded
 * cleanup's failure that wraps the cancellation it caught, the same failure suppressed twice, a
 * stale cancellation of an exited scope rethrown elsewhere (Kotlin's leaking
 * TimeoutCancellationException), deadlines moved after they fired, nested groups failing at every
 * level. Each scenario names the upstream test or contract it follows ("closest" when from memory).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ScopeSweepTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted(); // a failing test must not poison the next one
  }

  /** A resource whose close() fails with a given exception. */
  private record FailingClose(Exception failure) implements AutoCloseable {
    @Override
    public void close() throws Exception {
      throw failure;
    }
  }

  // ------------------------------------------------- failures riding on a cancellation (defects)

  // Javadoc TaskGroup "Failures are never lost"; guide "A failure is never lost, including one
  // suppressed by a cancellation (a close() that throws in a try-with-resources that is being
  // cancelled)". Closest upstream: Trio test_cancel_scope_exit_doesnt_create_cyclic_garbage /
  // AnyIO test_cancel_scope_suppressed_exception (an error raised while a Cancelled unwinds is
  // kept).
  // The inner scope is not the cancelled one, so it lets the cancellation through and throws the
  // riding IOException instead; the outer cancelled scope must not take that IOException for the
  // cancellation (its interrupt is pending again after the inner exit).
  @RepeatedTest(20)
  void anIoFailureRidingOnACancellationIsStillThrownByTheCancelledOuterScope() throws Exception {
    IOException closeFailed = new IOException("close failed");
    var outer = CancelScope.create();
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        CancelScope.create()
                            .run(
                                () -> {
                                  try (var r = new FailingClose(closeFailed)) {
                                    outer.cancel();
                                    Thread.sleep(60_000);
                                  }
                                })));
    assertThat(thrown)
        .as("the close() failure, not absorbed as the cancellation")
        .isSameAs(closeFailed);
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).as("interrupt left after run").isFalse();
  }

  // The same through a group: the body's inner scope throws the riding IOException, and the
  // cancelled group must report it (TaskGroupException), not return normally.
  @RepeatedTest(20)
  void anIoFailureRidingOnACancellationThroughAnInnerScopeFailsTheCancelledGroup()
      throws Exception {
    IOException closeFailed = new IOException("close failed");
    var g = TaskGroup.named("riding");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        CancelScope.create()
                            .run(
                                () -> {
                                  try (var r = new FailingClose(closeFailed)) {
                                    g.cancel();
                                    Thread.sleep(60_000);
                                  }
                                })));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Javadoc CancelScope "Every other exception passes through unchanged, and is a failure": the
  // scope must not replace the failure with an IllegalArgumentException("Self-suppression not
  // permitted") when the cancellation carries the same failure twice (a shared, preallocated
  // exception suppressed by two resources).
  @Test
  void theSameFailureSuppressedTwiceOnACancellationIsThrownItself() throws Exception {
    IllegalStateException shared = new IllegalStateException("close failed");
    var outer = CancelScope.create();
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        CancelScope.create()
                            .run(
                                () -> {
                                  try (var a = new FailingClose(shared);
                                      var b = new FailingClose(shared)) {
                                    outer.cancel();
                                    Thread.sleep(60_000);
                                  }
                                })));
    assertThat(thrown).isSameAs(shared);
    assertThat(shared.getSuppressed()).doesNotContain(shared);
  }

  // --------------------------------------------- shielded cleanup failures while cancelled

  // Javadoc CancelScope: "An exception is judged once, at the innermost scope exit it reaches, and
  // the judgment travels with it"; a cleanup failure in a shield (nothing cancelled there) is a
  // failure. AnyIO test_shielded_cleanup_after_cancel (closest), with the cleanup failing with an
  // exception that wraps the cancellation it caught (new RuntimeException(msg, e), the usual way
  // out of a lambda that cannot throw checked exceptions).
  @Test
  void aShieldedCleanupFailureWrappingTheCancellationIsThrownByTheCancelledScope()
      throws Exception {
    var outer = CancelScope.create();
    AtomicReference<RuntimeException> failure = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        CancelScope.create()
                            .run(
                                () -> {
                                  outer.cancel();
                                  try {
                                    Thread.sleep(60_000);
                                  } catch (InterruptedException e) {
                                    CancelScope.shielded()
                                        .run(
                                            () -> {
                                              failure.set(
                                                  new IllegalStateException("rollback failed", e));
                                              throw failure.get();
                                            });
                                  }
                                })));
    assertThat(thrown).isNotNull().isSameAs(failure.get());
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Two judgments in flight on one thread: the first cleanup failure is travelling out when a
  // finally block on its way runs a second shielded cleanup that fails the same way and is caught
  // there. The second judgment must not make the first one look like the cancellation again.
  @RepeatedTest(5)
  void aSecondJudgedFailureCaughtOnTheWayDoesNotUnjudgeTheFirst() throws Exception {
    var outer = CancelScope.create();
    AtomicReference<RuntimeException> failure = new AtomicReference<>();
    AtomicReference<RuntimeException> handled = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      try {
                        CancelScope.create()
                            .run(
                                () -> {
                                  outer.cancel();
                                  try {
                                    Thread.sleep(60_000);
                                  } catch (InterruptedException e) {
                                    CancelScope.shielded()
                                        .run(
                                            () -> {
                                              failure.set(
                                                  new IllegalStateException("rollback failed", e));
                                              throw failure.get();
                                            });
                                  }
                                });
                      } finally {
                        try {
                          CancelScope.shielded()
                              .run(
                                  () -> {
                                    handled.set(
                                        new IllegalStateException(
                                            "release failed", new CancellationException()));
                                    throw handled.get();
                                  });
                        } catch (IllegalStateException logged) {
                          assertThat(logged).isSameAs(handled.get());
                        }
                      }
                    }));
    assertThat(handled.get()).isNotNull();
    assertThat(thrown).isNotNull().isSameAs(failure.get());
    assertThat(outer.cancelCaught()).isFalse();
  }

  // The same on a group's child (whose judgments a task keeps, not its thread): the group reports
  // the first failure.
  @RepeatedTest(5)
  void aSecondJudgedFailureCaughtOnTheWayInAChildDoesNotUnjudgeTheFirst() throws Exception {
    var g = TaskGroup.named("two judgments");
    AtomicReference<RuntimeException> failure = new AtomicReference<>();
    AtomicReference<RuntimeException> handled = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              try {
                                g.cancel();
                                try {
                                  Thread.sleep(60_000);
                                } catch (InterruptedException e) {
                                  CancelScope.shielded()
                                      .run(
                                          () -> {
                                            failure.set(
                                                new IllegalStateException("flush failed", e));
                                            throw failure.get();
                                          });
                                }
                              } finally {
                                try {
                                  CancelScope.shielded()
                                      .run(
                                          () -> {
                                            handled.set(
                                                new IllegalStateException(
                                                    "unlock failed", new CancellationException()));
                                            throw handled.get();
                                          });
                                } catch (IllegalStateException logged) {
                                  // handled here
                                }
                              }
                            })));
    assertThat(handled.get()).isNotNull();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure.get());
  }

  // The same in a child of a cancelled group: the group reports it (TaskGroup: "including those
  // raised while being cancelled").
  @RepeatedTest(10)
  void aShieldedCleanupFailureWrappingTheCancellationFailsTheCancelledGroup() throws Exception {
    var g = TaskGroup.named("cleanup");
    AtomicReference<RuntimeException> failure = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            g.cancel();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException e) {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        failure.set(new IllegalStateException("flush failed", e));
                                        throw failure.get();
                                      });
                            }
                          });
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure.get());
    assertThat(g.cancelCalled()).isTrue();
  }

  // Rethrowing the cancellation itself from a shield is not a failure: the outermost cancelled
  // scope still absorbs it (Trio: Cancelled re-raised from a shielded finally is still Cancelled).
  @Test
  void theCancellationRethrownFromAShieldIsStillAbsorbedByTheCancelledScope() throws Exception {
    var outer = CancelScope.create();
    outer.run(
        () ->
            CancelScope.create()
                .run(
                    () -> {
                      outer.cancel();
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException e) {
                        CancelScope.shielded()
                            .run(
                                () -> {
                                  throw e;
                                });
                      }
                    }));
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // PortedScenarios covers a checked exception from shielded cleanup in a group; here an Error and
  // a TaskGroupException of a nested group, from a shield in a cancelled plain scope.
  @Test
  void anErrorFromShieldedCleanupIsThrownByTheCancelledScope() throws Exception {
    var outer = CancelScope.create();
    AssertionError boom = new AssertionError("boom");
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      outer.cancel();
                      try {
                        Thread.sleep(60_000);
                      } finally {
                        CancelScope.shielded()
                            .run(
                                () -> {
                                  throw boom;
                                });
                      }
                    }));
    assertThat(thrown).isSameAs(boom);
    assertThat(outer.cancelCaught()).isFalse();
  }

  @Test
  void aNestedGroupsFailureInShieldedCleanupIsThrownByTheCancelledScope() throws Exception {
    var outer = CancelScope.create();
    IllegalStateException inner = new IllegalStateException("inner child failed");
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      outer.cancel();
                      try {
                        Thread.sleep(60_000);
                      } finally {
                        CancelScope.shielded()
                            .run(
                                () -> {
                                  var nested = TaskGroup.named("nested");
                                  nested.run(
                                      () ->
                                          nested.fork(
                                              () -> {
                                                throw inner;
                                              }));
                                });
                      }
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(inner);
  }

  // A failure carrying the cancellation as a suppressed exception (not a cause) is a failure
  // (javadoc: only the cause chain makes a cancellation).
  @Test
  void aFailureWithTheCancellationSuppressedIsAFailureOfTheCancelledScope() throws Exception {
    var outer = CancelScope.create();
    IllegalStateException failure = new IllegalStateException("gave up");
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      outer.cancel();
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException e) {
                        failure.addSuppressed(e);
                        throw failure;
                      }
                    }));
    assertThat(thrown).isSameAs(failure);
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ------------------------------------------------------------ stale cancellations (Kotlin)

  // Kotlin withTimeout: a TimeoutCancellationException leaking from an inner withTimeout into an
  // outer scope that is not cancelled must not be taken for the outer's cancellation (closest:
  // kotlinx.coroutines WithTimeoutTest.testNestedTimeout / testIncompleteWithTimeoutState). A
  // CancelledException of an exited scope, rethrown in an outer scope that is not cancelled,
  // passes through unchanged and leaves the outer neither cancelled nor caught.
  @Test
  void aStaleCancellationOfAnExitedScopeIsNotAbsorbedByAnUncancelledOuterScope() throws Exception {
    var outer = CancelScope.create();
    var inner = CancelScope.create();
    AtomicReference<InterruptedException> stored = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      inner.run(
                          () -> {
                            inner.cancel();
                            try {
                              CancelScope.checkpoint();
                            } catch (InterruptedException e) {
                              stored.set(e);
                            }
                          });
                      assertThat(CancelScope.isCancelled()).isFalse();
                      throw stored.get();
                    }));
    assertThat(stored.get()).isInstanceOf(CancelledException.class);
    assertThat(thrown).isSameAs(stored.get());
    assertThat(inner.cancelCaught()).as("inner's body swallowed it").isFalse();
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // CPython test_timeouts test_nested_timeouts_loop_busy / Kotlin nested withTimeout: an inner
  // failAfter that fires throws TimeoutException, which is a failure (not a cancellation) for an
  // outer timeout scope that has not fired.
  @Test
  void anInnerFailAfterTimeoutPassesThroughAnOuterTimeoutThatDidNotFire() throws Exception {
    var outer = CancelScope.withTimeout(Duration.ofHours(1));
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        CancelScope.failAfter(
                            Duration.ofMillis(10),
                            () -> {
                              Thread.sleep(60_000);
                              return null;
                            })));
    assertThat(thrown).isInstanceOf(TimeoutException.class);
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(outer.cancelCaught()).isFalse();
  }

  // Future contract (JDK FutureTask): get() of a task cancelled by Task.cancel throws
  // CancellationException; the body that lets it out of a group that is not cancelled fails the
  // group with it (javadoc TaskGroup: "Any exception ... that is not the cancellation itself is a
  // failure"), and the sibling is not cancelled by Task.cancel.
  @RepeatedTest(20)
  void getOfATaskCancelledAloneThrowsCancellationWhichFailsAnUncancelledGroup() throws Exception {
    var g = TaskGroup.named("future");
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch afterCancel = new CountDownLatch(1);
    AtomicReference<Boolean> siblingCancelled = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Void> t =
                          g.fork(
                              () -> {
                                started.countDown();
                                Thread.sleep(60_000);
                              });
                      Task<Void> sibling =
                          g.fork(
                              () -> {
                                afterCancel.await();
                                siblingCancelled.set(CancelScope.isCancelled());
                              });
                      started.await();
                      t.cancel(true);
                      afterCancel.countDown();
                      sibling.get(); // the sibling ends normally: Task.cancel cancels t alone
                      t.get();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(CancellationException.class);
    assertThat(g.cancelCalled()).isFalse();
    assertThat(siblingCancelled.get()).isFalse();
  }

  // ---------------------------------------------------------------- deadlines after firing

  // Trio test_cancel_scope_deadline (closest): cancellation is sticky; moving the deadline later
  // after it fired does not uncancel the scope, and deadline() reports the new one.
  @Test
  void movingAFiredDeadlineLaterLeavesTheScopeCancelledAndItAbsorbs() throws Exception {
    var scope = CancelScope.withTimeout(Duration.ZERO);
    Instant later = Instant.now().plusSeconds(3600);
    AtomicReference<Boolean> cancelledAfterMove = new AtomicReference<>();
    scope.run(
        () -> {
          assertThat(CancelScope.isCancelled()).isTrue();
          scope.setDeadline(later);
          cancelledAfterMove.set(CancelScope.isCancelled());
          CancelScope.checkpoint();
        });
    assertThat(cancelledAfterMove.get()).isTrue();
    assertThat(scope.deadline()).contains(later);
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(scope.cancelReason()).hasValueSatisfying(r -> assertThat(r).contains("deadline"));
  }

  // Trio test_timeouts (closest): a deadline moved later from another thread while the body is
  // blocked, then into the past, fires only at the second move; Instant.MAX in between means none.
  @RepeatedTest(20)
  void aDeadlineMovedToNeverThenIntoThePastFromAnotherThreadFiresOnlyThen() throws Exception {
    var scope = CancelScope.withTimeout(Duration.ofMillis(50));
    CountDownLatch blocked = new CountDownLatch(1);
    CountDownLatch postponed = new CountDownLatch(1);
    AtomicReference<Boolean> cancelledAfterPostpone = new AtomicReference<>();
    Thread mover =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    blocked.await();
                    scope.setDeadline(Instant.MAX);
                    postponed.countDown();
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    scope.run(
        () -> {
          blocked.countDown();
          postponed.await();
          // the 50 ms timeout would have fired by now if the move had not taken effect
          CancelScope.sleep(Duration.ofMillis(100));
          cancelledAfterPostpone.set(CancelScope.isCancelled());
          scope.setDeadline(Instant.now().minusSeconds(1));
          CancelScope.sleep(Duration.ofSeconds(60));
        });
    mover.join();
    assertThat(cancelledAfterPostpone.get()).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ------------------------------------------------------------------ outcome precedence

  // TaskGroup "When outcomes coincide": (2) the owner interrupted by someone else beats (3) a
  // cancelled scope above and (4) the group's own cancel: run throws InterruptedException; the
  // outer cancelled scope absorbs it, and the outside interrupt is set again (javadoc: "never
  // lost").
  @RepeatedTest(20)
  void anOutsideInterruptBeatsAnOuterCancelAndTheGroupsOwnAndStaysSetAfterTheOuter()
      throws Exception {
    var outer = CancelScope.create();
    var g = TaskGroup.named("owner");
    AtomicReference<Throwable> fromRun = new AtomicReference<>();
    CountDownLatch childStarted = new CountDownLatch(1);
    outer.run(
        () -> {
          try {
            g.run(
                () -> {
                  g.fork(
                      () -> {
                        childStarted.countDown();
                        Thread.sleep(60_000);
                      });
                  childStarted.await();
                  Thread.currentThread().interrupt(); // someone else's, before any cancel
                  g.cancel();
                  outer.cancel();
                  Thread.sleep(60_000);
                });
          } catch (InterruptedException e) {
            fromRun.set(e);
            throw e;
          }
        });
    assertThat(fromRun.get()).isInstanceOf(InterruptedException.class);
    assertThat(g.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.interrupted()).as("the outside interrupt survives the outer scope").isTrue();
  }

  // ------------------------------------------------------------------- exception shapes

  // Javadoc TaskGroupException: failures in order, nested groups kept as one failure (not
  // flattened), getCause() the first, the others suppressed, never itself; message names the group
  // and the count. Three levels failing at once (AnyIO test_nested_exception_groups, closest).
  @RepeatedTest(10)
  void threeNestedGroupsFailingAtOnceKeepEveryFailureNestedOnce() throws Exception {
    var a = TaskGroup.named("a");
    var barrier = new CyclicBarrier(3);
    IllegalStateException fa = new IllegalStateException("a");
    IllegalStateException fb = new IllegalStateException("b");
    // not an IOException: one thrown while a cancellation's interrupt is pending is the
    // cancellation (javadoc CancelScope), and the levels above cancel this one at once
    Exception fc = new Exception("c");
    Throwable thrown =
        catchThrowable(
            () ->
                a.run(
                    () -> {
                      a.fork(
                          () -> {
                            var b = TaskGroup.named("b");
                            b.run(
                                () -> {
                                  b.fork(
                                      () -> {
                                        var c = TaskGroup.named("c");
                                        c.run(
                                            () -> {
                                              barrier.await();
                                              throw fc;
                                            });
                                      });
                                  barrier.await();
                                  throw fb;
                                });
                          });
                      barrier.await();
                      throw fa;
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    TaskGroupException ea = (TaskGroupException) thrown;
    assertThat(ea.failures()).hasSize(2).contains(fa);
    TaskGroupException eb =
        (TaskGroupException)
            ea.failures().stream().filter(f -> f instanceof TaskGroupException).findFirst().get();
    assertThat(eb.failures()).hasSize(2).contains(fb);
    TaskGroupException ec =
        (TaskGroupException)
            eb.failures().stream().filter(f -> f instanceof TaskGroupException).findFirst().get();
    assertThat(ec.failures()).containsExactly(fc);
    for (TaskGroupException e : new TaskGroupException[] {ea, eb, ec}) {
      assertThat(e.getCause()).isSameAs(e.failures().get(0));
      assertThat(Arrays.asList(e.getSuppressed()))
          .containsExactlyElementsOf(e.failures().subList(1, e.failures().size()));
      assertThat(e.getSuppressed()).doesNotContain(e);
      assertThat(e.getMessage()).contains("group '").contains("failure");
    }
    assertThat(ec.getMessage()).isEqualTo("group 'c' failed with 1 failure; first: " + fc);
    assertThat(ea.getMessage()).startsWith("group 'a' failed with 2 failures; first: ");
  }

  // The same failure instance thrown by two children (a shared, preallocated exception): kept
  // once, and never suppressed by itself (the implementation's "the same throwable rethrown is
  // one"; the public javadoc lists "each throwable").
  @RepeatedTest(10)
  void theSameFailureThrownByTwoChildrenIsKeptOnce() throws Exception {
    IllegalStateException shared = new IllegalStateException("shared");
    var g = TaskGroup.builder().name("shared").failurePolicy(FailurePolicy.COLLECT).build();
    var both = new CountDownLatch(2);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      for (int i = 0; i < 2; i++) {
                        g.fork(
                            () -> {
                              both.countDown();
                              both.await();
                              throw shared;
                            });
                      }
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(shared);
    assertThat(thrown.getSuppressed()).isEmpty();
  }
}
