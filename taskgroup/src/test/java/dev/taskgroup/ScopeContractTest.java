package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Adversarial edges of the CancelScope / shield / propagator / task-tree contract, learned from
 * Trio's test_run.py and test_timeouts.py, AnyIO's test_taskgroups.py and CPython's
 * test_timeouts.py.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ScopeContractTest {
  private static final Duration MAX = Duration.ofSeconds(20);

  @AfterEach
  void clearStatus() {
    Thread.interrupted(); // a failing test must not poison the next one
  }

  // ---------------------------------------------------------------- cancel before / after / during

  // Trio test_cancel_scope_cancel_before_entering; javadoc: "before it runs, the scope starts
  // cancelled".
  @Test
  void cancelBeforeRunMakesTheFirstCheckpointThrowAndTheScopeAbsorbsIt() throws Exception {
    var scope = CancelScope.create();
    scope.cancel("early");
    AtomicBoolean after = new AtomicBoolean();
    AtomicReference<Boolean> cancelledInside = new AtomicReference<>();
    scope.run(
        () -> {
          cancelledInside.set(CancelScope.isCancelled());
          CancelScope.checkpoint();
          after.set(true);
        });
    assertThat(cancelledInside.get()).isTrue();
    assertThat(after.get()).as("code after the checkpoint").isFalse();
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(scope.cancelReason()).contains("early");
    assertThat(Thread.currentThread().isInterrupted()).as("interrupt left after run").isFalse();
  }

  // Javadoc cancel(): "after the scope exited it only sets cancelCalled()".
  @Test
  void cancelAfterTheScopeExitedOnlySetsCancelCalled() throws Exception {
    var scope = CancelScope.create();
    scope.run(() -> {});
    scope.cancel("late");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(scope.cancelReason()).as("not cancelled: no reason").isEmpty();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(scope.toString()).isEqualTo("CancelScope[done]");
  }

  // Trio cancel_called vs cancelled_caught; javadoc: "A body that returns normally despite
  // cancel() leaves cancelCaught() false" and "An interrupt the library delivered for a scope
  // never survives that scope's exit".
  @RepeatedTest(10)
  void aBodyThatSwallowsItsOwnCancelIsNotCaughtAndLeavesNoInterrupt() throws Exception {
    var scope = CancelScope.create();
    String result =
        scope.call(
            () -> {
              scope.cancel();
              try {
                Thread.sleep(10_000);
              } catch (InterruptedException swallowed) {
                // ignore
              }
              return "finished";
            });
    assertThat(result).isEqualTo("finished");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).as("interrupt survived exit").isFalse();
  }

  // Javadoc cancel(String): "the first reason given is kept"; NPE rejected call changes nothing.
  @Test
  void aRejectedNullReasonLeavesARunningScopeUncancelled() throws Exception {
    var scope = CancelScope.create();
    scope.run(
        () -> {
          assertThatThrownBy(() -> scope.cancel(null)).isInstanceOf(NullPointerException.class);
          assertThat(scope.cancelCalled()).isFalse();
          assertThat(CancelScope.isCancelled()).isFalse();
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
        });
    assertThat(scope.cancelCaught()).isFalse();
  }

  // ---------------------------------------------------------------- deadlines

  // Trio test_cancel_scope_deadline (set to zero while running); javadoc setTimeout: "zero
  // cancels at once".
  @Test
  void setTimeoutZeroWhileRunningCancelsBeforeTheSetterReturns() throws Exception {
    var scope = CancelScope.create();
    AtomicReference<Boolean> cancelledAtOnce = new AtomicReference<>();
    scope.run(
        () -> {
          scope.setTimeout(Duration.ZERO);
          cancelledAtOnce.set(CancelScope.isCancelled());
          CancelScope.checkpoint();
        });
    assertThat(cancelledAtOnce.get()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
  }

  // Javadoc setTimeout: "@throws IllegalArgumentException if timeout is negative" and a rejected
  // call changes nothing (also setDeadline(null)).
  @Test
  void rejectedDeadlineSettersLeaveARunningScopesDeadlineAsItWas() throws Exception {
    Instant far = Instant.now().plus(Duration.ofHours(1));
    var scope = CancelScope.withDeadline(far);
    scope.run(
        () -> {
          assertThatThrownBy(() -> scope.setTimeout(Duration.ofMillis(-1)))
              .isInstanceOf(IllegalArgumentException.class);
          assertThatThrownBy(() -> scope.setDeadline(null))
              .isInstanceOf(NullPointerException.class)
              .hasMessageContaining("deadline");
          assertThatThrownBy(() -> scope.setTimeout(null))
              .isInstanceOf(NullPointerException.class)
              .hasMessageContaining("timeout");
          assertThat(scope.deadline()).contains(far);
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(scope.cancelCalled()).isFalse();
  }

  // Trio: move_on_after(inf).deadline == inf. A timeout past what Instant can hold shows
  // Instant.MAX (as setDeadline(Instant.MAX) does), and one of 100 years shows 100 years, not the
  // 73 years (2^61 ns) after which the library stops scheduling it.
  @Test
  void theDeadlineOfAHugeTimeoutIsShownExactlyOrAsInstantMax() throws Exception {
    Instant before = Instant.now();
    var forever = CancelScope.withTimeout(ChronoUnit.FOREVER.getDuration());
    var century = CancelScope.withTimeout(Duration.ofDays(36_525));
    forever.run(() -> assertThat(forever.deadline()).contains(Instant.MAX));
    century.run(
        () ->
            assertThat(century.deadline().orElseThrow())
                .isAfterOrEqualTo(before.plus(Duration.ofDays(36_525)))
                .isBefore(Instant.now().plus(Duration.ofDays(36_526))));
    var set = CancelScope.create();
    set.run(
        () -> {
          set.setTimeout(ChronoUnit.FOREVER.getDuration());
          assertThat(set.deadline()).contains(Instant.MAX);
        });
    assertThat(forever.cancelCalled() || century.cancelCalled() || set.cancelCalled()).isFalse();
  }

  // Trio test_timekeeping / huge deadlines; javadoc withTimeout: a timeout, no upper bound stated.
  @Test
  void aHugeTimeoutDoesNotOverflowIntoAnImmediateCancel() throws Exception {
    var scope = CancelScope.withTimeout(Duration.ofSeconds(Long.MAX_VALUE));
    AtomicReference<Throwable> deadlineQuery = new AtomicReference<>();
    String r =
        scope.call(
            () -> {
              CancelScope.checkpoint();
              CancelScope.sleep(Duration.ofMillis(5));
              try {
                assertThat(scope.deadline()).isPresent();
                assertThat(scope.deadline().get()).isAfter(Instant.now().plus(Duration.ofDays(1)));
              } catch (Throwable t) {
                deadlineQuery.set(t);
              }
              return "ok";
            });
    assertThat(r).isEqualTo("ok");
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(deadlineQuery.get()).as("deadline() of a huge timeout").isNull();
  }

  // Javadoc setDeadline: "while running it takes effect at once, earlier or later"; Instant.MAX
  // is the furthest deadline there is, Instant.MIN the earliest.
  @Test
  void extremeInstantsAreAcceptedWithoutOverflow() throws Exception {
    var far = CancelScope.create();
    far.run(
        () -> {
          far.setDeadline(Instant.MAX);
          CancelScope.sleep(Duration.ofMillis(5));
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(far.cancelCalled()).isFalse();

    var past = CancelScope.create();
    AtomicBoolean after = new AtomicBoolean();
    past.run(
        () -> {
          past.setDeadline(Instant.MIN);
          CancelScope.checkpoint();
          after.set(true);
        });
    assertThat(after.get()).isFalse();
    assertThat(past.cancelCaught()).isTrue();
  }

  // Javadoc withDeadline: "one in the past cancels at once when run starts", "converted once to
  // the monotonic clock" — the extreme instants given before run must not overflow.
  @Test
  void withDeadlineOfTheExtremeInstantsBeforeRunDoesNotOverflow() throws Exception {
    var min = CancelScope.withDeadline(Instant.MIN);
    AtomicBoolean afterMin = new AtomicBoolean();
    min.run(
        () -> {
          CancelScope.checkpoint();
          afterMin.set(true);
        });
    assertThat(afterMin.get()).isFalse();
    assertThat(min.cancelCaught()).isTrue();

    var max = CancelScope.withDeadline(Instant.MAX);
    max.run(
        () -> {
          CancelScope.sleep(Duration.ofMillis(5));
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(max.cancelCalled()).isFalse();
  }

  // Trio test_cancel_scope_deadline after exit; javadoc cancel(): "after the scope exited it only
  // sets cancelCalled()" and "An interrupt the library delivered for a scope never survives that
  // scope's exit".
  @Test
  void aPastDeadlineOnAFinishedScopeInterruptsNobodyAndIsNotCaught() throws Exception {
    var scope = CancelScope.create();
    scope.run(() -> {});
    scope.setDeadline(Instant.now().minusSeconds(1));
    scope.setTimeout(Duration.ZERO);
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    CancelScope.checkpoint(); // the thread is not cancelled by a finished scope
  }

  // Trio test_cancel_scope_nesting / asyncio test_nested_timeouts_concurrent: inner and outer
  // expire together; javadoc: "the InterruptedException propagates to the outermost cancelled
  // scope, which absorbs it".
  @RepeatedTest(40)
  void innerAndOuterWithTheSameDeadlineAreAbsorbedByTheOuter() throws Exception {
    Instant at = Instant.now().plusMillis(30);
    var outer = CancelScope.withDeadline(at);
    var inner = CancelScope.withDeadline(at);
    AtomicBoolean afterInner = new AtomicBoolean();
    outer.run(
        () -> {
          inner.run(() -> Thread.sleep(10_000));
          afterInner.set(true);
        });
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).as("inner caught what the outer should").isFalse();
    assertThat(afterInner.get()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // CPython test_nested_timeouts_loop_busy / Trio fail_after nesting: nested failAfter with equal
  // timeouts; javadoc failAfter: "@throws InterruptedException if cancelled from above".
  @RepeatedTest(10)
  void nestedFailAfterWithAPastOuterDeadlineThrowsTimeoutFromTheOuterOnly() throws Exception {
    AtomicReference<Throwable> fromInner = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      try {
                        return CancelScope.failAfter(
                            Duration.ZERO,
                            () -> {
                              Thread.sleep(10_000);
                              return "inner";
                            });
                      } catch (Throwable e) {
                        fromInner.set(e);
                        throw e;
                      }
                    }));
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(fromInner.get())
        .as("the inner failAfter is cancelled from above")
        .isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_nested_fail_after_with_exception; javadoc: "Every other exception passes through
  // unchanged, and is a failure" (a finally that replaces the cancellation with its own failure).
  @RepeatedTest(10)
  void failAfterWhoseBodyReplacesTheCancellationWithAFailureThrowsTheFailure() {
    IllegalStateException cleanup = new IllegalStateException("cleanup failed");
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(20),
                    () -> {
                      try {
                        Thread.sleep(10_000);
                      } finally {
                        throw cleanup;
                      }
                    }));
    assertThat(t).as("the failure, not a TimeoutException").isSameAs(cleanup);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Trio test_timeouts fail_after inside a shield; javadoc shielded(): "its own cancel() and
  // deadline still work" and failAfter: "throws TimeoutException if the deadline cancelled the
  // body".
  @RepeatedTest(10)
  void failAfterInsideAShieldInsideACancelledScopeTimesOutThenTheOuterIsDelivered()
      throws Exception {
    var outer = CancelScope.create();
    AtomicReference<Throwable> insideShield = new AtomicReference<>();
    AtomicBoolean afterShield = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          CancelScope.shielded()
              .run(
                  () -> {
                    try {
                      CancelScope.failAfter(
                          Duration.ofMillis(20),
                          () -> {
                            Thread.sleep(10_000);
                            return null;
                          });
                    } catch (TimeoutException e) {
                      insideShield.set(e);
                    }
                  });
          CancelScope.checkpoint();
          afterShield.set(true);
        });
    assertThat(insideShield.get()).isInstanceOf(TimeoutException.class);
    assertThat(afterShield.get()).as("outer cancel delivered after the shield").isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  // Trio test_cancel_scope_nesting (move_on_after inside a cancelled scope); javadoc moveOnAfter:
  // "@throws InterruptedException if cancelled from above".
  @RepeatedTest(10)
  void moveOnAfterCancelledFromAboveThrowsInsteadOfReturningNull() throws Exception {
    var outer = CancelScope.create();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean returned = new AtomicBoolean();
    outer.run(
        () -> {
          try {
            CancelScope.moveOnAfter(
                Duration.ofSeconds(30),
                () -> {
                  outer.cancel();
                  Thread.sleep(10_000);
                  return "late";
                });
            returned.set(true);
          } catch (InterruptedException e) {
            thrown.set(e);
            throw e;
          }
        });
    assertThat(returned.get()).isFalse();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(outer.cancelCaught()).isTrue();
  }

  // ---------------------------------------------------------------- shields

  // Trio test_cancel_shield_abort (shield turned on while inside); javadoc setShielded: "On, from
  // the thread running the scope, it drops an interrupt the library delivered for a cancellation
  // above ... Off, while a scope above is cancelled, it delivers that cancellation at once."
  @RepeatedTest(10)
  void shieldingWhileInsideAfterTheOuterIsCancelledLetsTheBodyBlockThenUnshieldDelivers()
      throws Exception {
    var outer = CancelScope.create();
    var inner = CancelScope.create();
    AtomicBoolean blockedOk = new AtomicBoolean();
    AtomicReference<Boolean> cancelledAfterOff = new AtomicReference<>();
    AtomicBoolean afterOff = new AtomicBoolean();
    outer.run(
        () ->
            inner.run(
                () -> {
                  outer.cancel();
                  assertThat(CancelScope.isCancelled()).isTrue();
                  inner.setShielded(true);
                  assertThat(CancelScope.isCancelled()).isFalse();
                  Thread.sleep(20); // stands for a blocking call that must not be interrupted
                  CancelScope.sleep(Duration.ofMillis(5));
                  blockedOk.set(true);
                  inner.setShielded(false);
                  cancelledAfterOff.set(CancelScope.isCancelled());
                  Thread.sleep(10_000);
                  afterOff.set(true);
                }));
    assertThat(blockedOk.get()).isTrue();
    assertThat(cancelledAfterOff.get()).isTrue();
    assertThat(afterOff.get()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Javadoc setShielded: "On, from the thread running the scope, it drops an interrupt the library
  // delivered for a cancellation above" — a scope that has finished is run by no thread, so
  // shielding it must not drop the interrupt of the still-running cancelled scope around it.
  @RepeatedTest(10)
  void shieldingAFinishedScopeDoesNotDropTheEnclosingScopesCancellation() throws Exception {
    var outer = CancelScope.create();
    var finished = CancelScope.create();
    AtomicBoolean afterSleep = new AtomicBoolean();
    AtomicLong sleptNanos = new AtomicLong();
    outer.run(
        () -> {
          finished.run(() -> {});
          outer.cancel();
          finished.setShielded(true);
          long t0 = System.nanoTime();
          try {
            Thread.sleep(5_000); // must be interrupted at once: the thread is cancelled
            afterSleep.set(true);
          } finally {
            sleptNanos.set(System.nanoTime() - t0);
          }
        });
    assertThat(afterSleep.get())
        .as("slept %d ms though cancelled", sleptNanos.get() / 1_000_000)
        .isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  // Javadoc setShielded: "Off, while a scope above is cancelled, it delivers that cancellation at
  // once" — for a finished shielded scope there is nothing below it to deliver to.
  @Test
  void unshieldingAFinishedShieldFromOutsideAnyScopeInterruptsNobody() throws Exception {
    var outer = CancelScope.create();
    var shield = CancelScope.shielded();
    outer.run(
        () -> {
          outer.cancel();
          shield.run(() -> CancelScope.sleep(Duration.ofMillis(1)));
          CancelScope.checkpoint(); // delivered at the shield's exit
        });
    assertThat(outer.cancelCaught()).isTrue();
    shield.setShielded(false);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    CancelScope.checkpoint();
    Thread.sleep(1); // a blocking call: must not throw
  }

  // AnyIO test_shielding_nested / Trio test_cancel_scope_shield nested; javadoc shielded():
  // "cancellation of scopes above it does not reach it or anything below it".
  @Test
  void aNestedShieldKeepsOutTheCancelOfTheShieldAboveIt() throws Exception {
    var outer = CancelScope.shielded();
    var inner = CancelScope.shielded();
    AtomicBoolean innerBlockedOk = new AtomicBoolean();
    AtomicBoolean afterInner = new AtomicBoolean();
    outer.run(
        () -> {
          inner.run(
              () -> {
                outer.cancel();
                assertThat(CancelScope.isCancelled()).isFalse();
                CancelScope.sleep(Duration.ofMillis(10));
                innerBlockedOk.set(true);
              });
          CancelScope.checkpoint();
          afterInner.set(true);
        });
    assertThat(innerBlockedOk.get()).isTrue();
    assertThat(afterInner.get()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCalled()).isFalse();
  }

  // AnyIO test_cancel_from_shielded_scope / Trio shield: a cancel arriving from another thread
  // during a shield is delivered at the shield's exit (javadoc: shield keeps it out; "A thread
  // that swallowed the interrupt is interrupted again when it enters or leaves a scope").
  @RepeatedTest(10)
  void aCancelArrivingFromAnotherThreadDuringAShieldIsDeliveredAtItsExit() throws Exception {
    var group = TaskGroup.create();
    CountDownLatch inShield = new CountDownLatch(1);
    AtomicBoolean shieldWorkDone = new AtomicBoolean();
    AtomicBoolean afterShield = new AtomicBoolean();
    AtomicReference<Throwable> afterShieldThrown = new AtomicReference<>();
    group.run(
        () -> {
          group.fork(
              () -> {
                CancelScope.shielded()
                    .run(
                        () -> {
                          inShield.countDown();
                          Probes.awaitTrue("group cancelled", MAX, group::cancelCalled);
                          Thread.sleep(20); // a blocking call that must complete
                          shieldWorkDone.set(true);
                        });
                try {
                  Thread.sleep(10_000);
                  afterShield.set(true);
                } catch (InterruptedException e) {
                  afterShieldThrown.set(e);
                  throw e;
                }
              });
          inShield.await();
          group.cancel();
        });
    assertThat(shieldWorkDone.get()).isTrue();
    assertThat(afterShield.get()).isFalse();
    assertThat(afterShieldThrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCaught()).isTrue();
  }

  // ---------------------------------------------------------------- misnesting

  // Trio test_cancel_scope_misnesting (re-entering a scope from inside itself); javadoc: "A scope
  // runs once; a second run throws IllegalStateException."
  @Test
  void runningAScopeFromInsideItselfIsRejectedAndChangesNothing() throws Exception {
    var scope = CancelScope.create();
    AtomicBoolean nestedBodyRan = new AtomicBoolean();
    AtomicBoolean afterRejected = new AtomicBoolean();
    scope.run(
        () -> {
          assertThatThrownBy(() -> scope.run(() -> nestedBodyRan.set(true)))
              .isInstanceOf(IllegalStateException.class);
          assertThat(CancelScope.isCancelled()).isFalse();
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
          CancelScope.sleep(Duration.ofMillis(1));
          afterRejected.set(true);
        });
    assertThat(nestedBodyRan.get()).isFalse();
    assertThat(afterRejected.get()).isTrue();
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(scope.cancelCaught()).isFalse();
    // finished: cancel() now only sets cancelCalled()
    scope.cancel();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Trio test_cancel_scope_misnesting (scope entered in another task); javadoc: "a second run
  // throws IllegalStateException" and "Every method may be called from any thread".
  @RepeatedTest(10)
  void runningAScopeOnAnotherThreadWhileItRunsIsRejectedAndTheOwnerIsUnaffected() throws Exception {
    var scope = CancelScope.create();
    CountDownLatch inside = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Throwable> other = new AtomicReference<>();
    AtomicBoolean otherBodyRan = new AtomicBoolean();
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    inside.await();
                    scope.run(() -> otherBodyRan.set(true));
                  } catch (Throwable e) {
                    other.set(e);
                  } finally {
                    release.countDown();
                  }
                });
    String r =
        scope.call(
            () -> {
              inside.countDown();
              release.await();
              CancelScope.sleep(Duration.ofMillis(1));
              return "done";
            });
    t.join();
    assertThat(other.get()).isInstanceOf(IllegalStateException.class);
    assertThat(otherBodyRan.get()).isFalse();
    assertThat(r).isEqualTo("done");
    assertThat(scope.cancelCalled()).isFalse();
  }

  // Javadoc: "Scopes nest: a scope run inside another is below it" (nesting is where run is
  // called, not where the scope was created).
  @Test
  void aScopeCreatedInsideACancelledScopeButRunOnAnotherThreadIsNotCancelled() throws Exception {
    var outer = CancelScope.create();
    AtomicReference<CancelScope> made = new AtomicReference<>();
    outer.run(
        () -> {
          made.set(CancelScope.create());
          outer.cancel();
        });
    AtomicReference<Boolean> cancelledThere = new AtomicReference<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    made.get()
                        .run(
                            () -> {
                              cancelledThere.set(CancelScope.isCancelled());
                              CancelScope.sleep(Duration.ofMillis(5));
                            });
                  } catch (Throwable e) {
                    failure.set(e);
                  }
                });
    t.join();
    assertThat(failure.get()).isNull();
    assertThat(cancelledThere.get()).isFalse();
    assertThat(made.get().cancelCaught()).isFalse();
  }

  // Javadoc: "A scope runs once; a second run throws IllegalStateException" (a cancelled and
  // caught scope keeps its outcome).
  @Test
  void aSecondRunOfACaughtScopeIsRejectedAndKeepsItsOutcome() throws Exception {
    var scope = CancelScope.withTimeout(Duration.ZERO);
    scope.run(CancelScope::checkpoint);
    assertThat(scope.cancelCaught()).isTrue();
    AtomicBoolean ran = new AtomicBoolean();
    assertThatThrownBy(() -> scope.call(() -> ran.getAndSet(true)))
        .isInstanceOf(IllegalStateException.class);
    assertThat(ran.get()).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- sleep

  // Javadoc run(): "@throws InterruptedException ... the thread is interrupted by someone else";
  // sleep: "if the thread is interrupted by someone else, it throws and clears the status".
  @RepeatedTest(10)
  void anOutsideInterruptWhileSleepingInAScopeIsAPlainInterruptNotACancellation() throws Exception {
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<Boolean> statusAfter = new AtomicReference<>();
    AtomicReference<CancelScope> scopeRef = new AtomicReference<>();
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  var scope = CancelScope.create();
                  scopeRef.set(scope);
                  try {
                    scope.run(() -> CancelScope.sleep(Duration.ofMinutes(5)));
                  } catch (Throwable e) {
                    thrown.set(e);
                  }
                  statusAfter.set(Thread.currentThread().isInterrupted());
                });
    Probes.awaitWaiting(t, MAX);
    t.interrupt();
    t.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(thrown.get()).isNotInstanceOf(CancelledException.class);
    assertThat(statusAfter.get()).as("cleared, as Thread.sleep does").isFalse();
    assertThat(scopeRef.get().cancelCalled()).isFalse();
    assertThat(scopeRef.get().cancelCaught()).isFalse();
  }

  // Javadoc: "An interrupt from someone else that was pending when a cancellation was delivered
  // is never lost: it is set again, or thrown, after the scope exits."
  @RepeatedTest(10)
  void aForeignInterruptPendingWhenTheScopeIsCancelledSurvivesTheScope() throws Exception {
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<Boolean> statusAfter = new AtomicReference<>();
    CountDownLatch inside = new CountDownLatch(1);
    AtomicBoolean go = new AtomicBoolean();
    var scope = CancelScope.create();
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          inside.countDown();
                          while (!go.get()) {
                            Thread.onSpinWait(); // busy: the interrupt stays pending
                          }
                          CancelScope.sleep(Duration.ofMinutes(5));
                        });
                  } catch (Throwable e) {
                    thrown.set(e);
                  }
                  statusAfter.set(Thread.interrupted());
                });
    inside.await();
    t.interrupt(); // foreign, first
    Probes.awaitTrue("interrupt pending", MAX, t::isInterrupted);
    scope.cancel();
    go.set(true);
    t.join();
    assertThat(thrown.get() instanceof InterruptedException || statusAfter.get())
        .as("foreign interrupt lost: thrown=%s status=%s", thrown.get(), statusAfter.get())
        .isTrue();
  }

  // Javadoc cooperative(): "the cancellation is still seen by checkpoint() (which throws without
  // setting the interrupt status)" and "inside it the library never interrupts the calling
  // thread" — CancelScope.sleep is a checkpoint, cancelled from another thread while it waits.
  @RepeatedTest(10)
  void sleepInACooperativeScopeCancelledFromAnotherThreadThrowsWithoutSettingTheStatus()
      throws Exception {
    var scope = CancelScope.cooperative();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<Boolean> statusInside = new AtomicReference<>();
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          try {
                            CancelScope.sleep(Duration.ofMinutes(5));
                          } catch (InterruptedException e) {
                            thrown.set(e);
                            statusInside.set(Thread.currentThread().isInterrupted());
                            throw e;
                          }
                        });
                  } catch (Throwable e) {
                    thrown.compareAndSet(null, e);
                  }
                });
    Probes.awaitWaiting(t, MAX);
    scope.cancel();
    t.join(MAX.toMillis());
    assertThat(t.isAlive()).as("sleep in a cooperative scope never woke").isFalse();
    assertThat(thrown.get()).isInstanceOf(CancelledException.class);
    assertThat(statusInside.get()).as("status set inside a cooperative scope").isFalse();
    assertThat(scope.cancelCaught()).isTrue();
  }

  // Javadoc sleep: "A zero duration is just a checkpoint" (returns at once when not cancelled).
  @Test
  void sleepZeroOutsideAnyScopeReturnsAtOnceAndNegativeIsRejectedWithoutTouchingTheStatus()
      throws Exception {
    CancelScope.sleep(Duration.ZERO);
    Thread.currentThread().interrupt();
    assertThatThrownBy(() -> CancelScope.sleep(Duration.ofNanos(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(Thread.currentThread().isInterrupted())
        .as("a rejected call must not consume the interrupt")
        .isTrue();
    Thread.interrupted();
  }

  // ---------------------------------------------------------------- context propagation

  /** Records wrap / before / after with a tag into a shared trail. */
  private static ContextPropagator tagging(String tag, Queue<String> trail) {
    return work -> {
      trail.add(tag + " wrap");
      return () -> {
        trail.add(tag + " before");
        try {
          work.run();
        } finally {
          trail.add(tag + " after");
        }
      };
    };
  }

  // Javadoc ContextPropagator: "Each wrap is called on the Runnable the previous one returned, so
  // the last one applied runs outermost in the child" — for start, invokeAll and onCancel too.
  @Test
  void startInvokeAllAndOnCancelAllWrapInOrderWithTheLastOutermost() throws Exception {
    Queue<String> startTrail = new ConcurrentLinkedQueue<>();
    Queue<String> invokeTrail = new ConcurrentLinkedQueue<>();
    Queue<String> hookTrail = new ConcurrentLinkedQueue<>();
    AtomicReference<Queue<String>> current = new AtomicReference<>(startTrail);
    ContextPropagator a =
        work -> tagging("A", current.get()).wrap(work); // records into whichever trail is current
    ContextPropagator b = work -> tagging("B", current.get()).wrap(work);
    TaskGroup group = TaskGroup.builder().contextPropagator(a).contextPropagator(b).build();
    group.run(
        () -> {
          Queue<String> st = current.get();
          String v =
              group.start(
                  (StartSignal<String> s) -> {
                    st.add("work");
                    s.started("v");
                  });
          assertThat(v).isEqualTo("v");
          current.set(invokeTrail);
          TaskGroup.invokeAll(
              List.of(
                  () -> {
                    invokeTrail.add("work");
                    return 1;
                  }));
          current.set(hookTrail);
          var inner = CancelScope.create();
          CountDownLatch ran = new CountDownLatch(1);
          inner.run(
              () -> {
                try (var hook =
                    CancelScope.onCancel(
                        () -> {
                          hookTrail.add("work");
                          ran.countDown();
                        })) {
                  inner.cancel();
                  ran.await(20, TimeUnit.SECONDS);
                  Thread.sleep(10_000);
                }
              });
        });
    Probes.awaitTrue("hook propagator done", MAX, () -> hookTrail.contains("B after"));
    List<String> expected =
        List.of("A wrap", "B wrap", "B before", "A before", "work", "A after", "B after");
    assertThat(List.copyOf(startTrail)).as("start").isEqualTo(expected);
    assertThat(List.copyOf(invokeTrail)).as("invokeAll").isEqualTo(expected);
    assertThat(List.copyOf(hookTrail)).as("onCancel").isEqualTo(expected);
  }

  // Javadoc ContextPropagator: "If it throws ... the fork ... throws RejectedExecutionException
  // with that exception as its cause, the work does not run and the group is as it was" — for a
  // fork from a child while a sibling runs, and for an Error thrown by wrap.
  @RepeatedTest(10)
  void wrapThrowingOnAForkFromAChildRejectsOnlyThatForkAndTheSiblingFinishes() throws Exception {
    AtomicInteger wraps = new AtomicInteger();
    AssertionError error = new AssertionError("wrap error");
    RuntimeException boom = new IllegalStateException("wrap boom");
    TaskGroup group =
        TaskGroup.builder()
            .name("wrap-throws")
            .contextPropagator(
                work -> {
                  int n = wraps.incrementAndGet();
                  if (n == 3) {
                    throw boom;
                  }
                  if (n == 4) {
                    throw error;
                  }
                  return work;
                })
            .build();
    CountDownLatch siblingIn = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean rejectedRan = new AtomicBoolean();
    AtomicReference<Throwable> first = new AtomicReference<>();
    AtomicReference<Throwable> second = new AtomicReference<>();
    AtomicReference<Task<String>> sibling = new AtomicReference<>();
    group.run(
        () -> {
          sibling.set(
              group.fork(
                  () -> {
                    siblingIn.countDown();
                    release.await();
                    return "sibling";
                  }));
          group.fork(
              () -> {
                siblingIn.await();
                first.set(catchThrowable(() -> group.fork(() -> rejectedRan.set(true))));
                second.set(catchThrowable(() -> group.fork(() -> rejectedRan.set(true))));
                assertThat(group.cancelCalled()).isFalse();
                release.countDown();
              });
        });
    assertThat(first.get()).isInstanceOf(RejectedExecutionException.class).hasCause(boom);
    assertThat(second.get()).isInstanceOf(RejectedExecutionException.class).hasCause(error);
    assertThat(rejectedRan.get()).isFalse();
    assertThat(sibling.get().get()).isEqualTo("sibling");
    assertThat(group.cancelCalled()).isFalse();
  }

  // Javadoc ContextPropagator: "must call work.run() once, on that thread (a second call, or one
  // from another thread, throws IllegalStateException)" and "returning without calling work.run()
  // (an IllegalStateException)" is a failure of the group, "and then the work does not run".
  @Test
  void aPropagatorThatRunsTheWorkOnAnotherThreadIsAFailureAndTheWorkNeverRuns() throws Exception {
    AtomicReference<Throwable> onOtherThread = new AtomicReference<>();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      Thread t =
                          Thread.ofPlatform()
                              .start(
                                  () -> {
                                    try {
                                      work.run();
                                    } catch (Throwable e) {
                                      onOtherThread.set(e);
                                    }
                                  });
                      try {
                        t.join();
                      } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                      }
                    })
            .build();
    AtomicBoolean ran = new AtomicBoolean();
    Throwable t = catchThrowable(() -> group.run(() -> group.fork(() -> ran.set(true))));
    assertThat(onOtherThread.get()).isInstanceOf(IllegalStateException.class);
    assertThat(ran.get()).as("the work ran on a foreign thread").isFalse();
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .isInstanceOf(IllegalStateException.class);
  }

  // Javadoc ContextPropagator: "An exception thrown by the returned Runnable outside work.run() is
  // a failure of the group" — also for a start child that already signalled.
  @Test
  void aPropagatorThrowingAfterASignalledStartChildIsAFailureOfTheGroup() throws Exception {
    RuntimeException after = new IllegalStateException("restore failed");
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      work.run();
                      throw after;
                    })
            .build();
    AtomicReference<String> started = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                group.run(
                    () -> started.set(group.start((StartSignal<String> s) -> s.started("up")))));
    assertThat(started.get()).isEqualTo("up");
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(after);
  }

  // ---------------------------------------------------------------- task tree

  // Javadoc TaskTree: "done: finished (... a capture leaves finished nodes out)" — after a failed
  // group, a cancelled group, a scope left by an exception and a rejected second run.
  @Test
  void nothingFinishedIsListedAfterFailuresCancelsAndRejectedRuns() throws Exception {
    String tag = "finished-" + System.nanoTime();
    TaskGroup failed = TaskGroup.named(tag + "-failed");
    assertThatThrownBy(
            () ->
                failed.run(
                    () -> {
                      failed.fork(
                          tag + "-fails",
                          () -> {
                            throw new IOException("x");
                          });
                      failed.fork(tag + "-cancelled", () -> Thread.sleep(10_000));
                    }))
        .isInstanceOf(TaskGroupException.class);
    TaskGroup cancelled = TaskGroup.named(tag + "-cancel");
    cancelled.run(
        () -> {
          cancelled.fork(tag + "-child", () -> Thread.sleep(10_000));
          cancelled.cancel();
        });
    var thrownOut = CancelScope.create();
    assertThatThrownBy(
            () ->
                thrownOut.run(
                    () -> {
                      throw new IOException("out");
                    }))
        .isInstanceOf(IOException.class);
    assertThatThrownBy(() -> thrownOut.run(() -> {})).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> failed.run(() -> {})).isInstanceOf(IllegalStateException.class);
    Probes.awaitTrue(
        "no finished node listed", MAX, () -> !TaskTree.capture().format().contains(tag));
    String text = TaskTree.capture().format();
    assertThat(text).doesNotContain(tag);
    assertThat(text)
        .as("no node of this thread")
        .doesNotContain("#" + Thread.currentThread().threadId() + " ");
  }

  // ---------------------------------------------------------------- retention

  // Brief: "objects kept reachable after they are finished"; javadoc run(): "Runs body inside this
  // scope" (only while it runs): a finished scope kept alive must not keep its body reachable.
  // (A closed Registration does keep its action: not promised either way, so not asserted.)
  @Test
  void aFinishedScopeKeptAliveKeepsNoBody() throws Exception {
    List<WeakReference<Object>> refs = new ArrayList<>();
    List<Object> keep = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      keep.add(runOneRetainedScope(refs, i % 2 == 0));
    }
    assertThat(Probes.awaitCleared(refs)).as("bodies still reachable").isZero();
    assertThat(keep).hasSize(3);
  }

  /** Runs one scope whose body captures a payload; returns the finished scope. */
  private static CancelScope runOneRetainedScope(List<WeakReference<Object>> refs, boolean timed)
      throws Exception {
    Object big = new byte[1 << 20];
    refs.add(new WeakReference<>(big));
    var scope = timed ? CancelScope.withTimeout(Duration.ofHours(1)) : CancelScope.create();
    scope.run(() -> assertThat(big).isNotNull());
    return scope;
  }
}
