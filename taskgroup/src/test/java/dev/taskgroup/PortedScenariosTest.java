package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Scenarios translated from the Trio and AnyIO cancel-scope suites, step by step. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedScenariosTest {
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

  @RepeatedTest(5)
  void shieldStepByStepAsInTrio() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    outer.run(
        () -> {
          inner.run(
              () -> {
                CancelScope.checkpoint();
                outer.cancel();
                assertThat(checkpointThrows()).as("after outer.cancel").isTrue();
                assertThat(inner.isShielded()).isFalse();
                inner.setShielded(true);
                assertThat(inner.isShielded()).isTrue();
                assertThat(checkpointThrows()).as("shielded from outer").isFalse();
                CancelScope innerest = CancelScope.create();
                innerest.run(
                    () -> {
                      innerest.cancel();
                      assertThat(checkpointThrows()).as("not shielded from innerest").isTrue();
                    });
                assertThat(checkpointThrows()).as("after innerest").isFalse();
                inner.setShielded(false);
                assertThat(checkpointThrows()).as("shield off").isTrue();
                inner.setShielded(true);
                assertThat(checkpointThrows()).as("shield on again").isFalse();
                inner.cancel();
                CancelScope.checkpoint();
              });
          assertThat(inner.cancelCaught()).isTrue();
        });
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void cancelOfTheGroupFromInsideAShieldInTheBodyLandsAfterTheShield() throws Exception {
    TaskGroup tg = TaskGroup.create();
    AtomicBoolean reached = new AtomicBoolean();
    tg.run(
        () -> {
          CancelScope shield = CancelScope.shielded();
          shield.run(
              () -> {
                tg.cancel();
                assertThat(CancelScope.isCancelled()).isFalse();
                Thread.sleep(1); // the blocking call under test: completes in the shield
              });
          assertThatThrownBy(CancelScope::checkpoint).isInstanceOf(InterruptedException.class);
          reached.set(true);
          CancelScope.checkpoint();
        });
    assertThat(reached).isTrue();
    assertThat(tg.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void aShieldedScopesOwnCancelStillWorks() throws Exception {
    CancelScope s = CancelScope.shielded();
    s.run(
        () -> {
          s.cancel();
          assertThat(CancelScope.isCancelled()).isTrue();
          CancelScope.checkpoint();
        });
    assertThat(s.cancelCaught()).isTrue();
  }

  @RepeatedTest(5)
  void tripleNestedShieldCheckpointInOuter() throws Exception {
    AtomicBoolean past = new AtomicBoolean();
    TaskGroup tg = TaskGroup.create();
    tg.run(
        () ->
            tg.fork(
                () -> {
                  CancelScope s1 = CancelScope.create();
                  CancelScope s2 = CancelScope.create();
                  s1.run(
                      () -> {
                        s2.run(
                            () ->
                                CancelScope.shielded()
                                    .run(
                                        () -> {
                                          s1.cancel();
                                          s2.cancel();
                                        }));
                        CancelScope.checkpoint();
                        CancelScope.checkpoint();
                        past.set(true);
                      });
                  assertThat(s1.cancelCaught()).isTrue();
                  assertThat(s2.cancelCaught()).isFalse();
                }));
    assertThat(past).isFalse();
  }

  @RepeatedTest(5)
  void tripleNestedShieldCheckpointInMiddle() throws Exception {
    AtomicBoolean past = new AtomicBoolean();
    CancelScope s1 = CancelScope.create();
    CancelScope s2 = CancelScope.create();
    s1.run(
        () ->
            s2.run(
                () -> {
                  CancelScope.shielded().run(s1::cancel);
                  CancelScope.checkpoint();
                  CancelScope.checkpoint();
                  past.set(true);
                }));
    assertThat(past).isFalse();
    assertThat(s1.cancelCaught()).isTrue();
    assertThat(s2.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void failAfterWorksAfterAGroupAbsorbedItsCancel() throws Exception {
    TaskGroup tg = TaskGroup.create();
    tg.run(
        () -> {
          tg.cancel();
          new CountDownLatch(1).await();
        });
    AtomicBoolean complete = new AtomicBoolean();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(50),
                    () -> {
                      Thread.sleep(5_000);
                      complete.set(true);
                      return 1;
                    }))
        .isInstanceOf(TimeoutException.class);
    assertThat(complete).isFalse();
  }

  @Test
  void cancelEdgeCases() throws Exception {
    CancelScope a = CancelScope.create();
    a.run(
        () -> {
          a.cancel();
          a.cancel();
          CancelScope.checkpoint();
        });
    assertThat(a.cancelCalled()).isTrue();
    assertThat(a.cancelCaught()).isTrue();

    CancelScope b = CancelScope.create();
    b.run(
        () -> {
          b.cancel();
          assertThatThrownBy(() -> Thread.sleep(10_000)).isInstanceOf(InterruptedException.class);
          assertThatThrownBy(() -> Thread.sleep(10_000)).isInstanceOf(InterruptedException.class);
        });
    assertThat(b.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void zeroTimeoutCancelsAtOnce() throws Exception {
    CancelScope s = CancelScope.withTimeout(Duration.ZERO);
    s.run(
        () -> {
          CancelScope.checkpoint();
          throw new AssertionError("not reached");
        });
    assertThat(s.cancelCalled()).isTrue();
    assertThat(s.cancelCaught()).isTrue();
    assertThat(
            CancelScope.moveOnAfter(
                Duration.ZERO,
                () -> {
                  Thread.sleep(5_000);
                  return 1;
                }))
        .isNull();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      Thread.sleep(5_000);
                      return 1;
                    }))
        .isInstanceOf(TimeoutException.class);
  }

  @Test
  void shieldingOnAfterTheCancelPropagatesPastTheShieldToTheCancelledOuter() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    outer.run(
        () ->
            inner.run(
                () -> {
                  outer.cancel();
                  try {
                    CancelScope.checkpoint();
                  } finally {
                    inner.setShielded(true);
                  }
                }));
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void settingsBeforeRun() throws Exception {
    CancelScope pre = CancelScope.create();
    pre.cancel();
    pre.run(() -> Thread.sleep(10_000));
    assertThat(pre.cancelCalled()).isTrue();
    assertThat(pre.cancelCaught()).isTrue();

    CancelScope after = CancelScope.create();
    after.run(() -> {});
    after.cancel();
    assertThat(after.cancelCalled()).isTrue();
    assertThat(after.cancelCaught()).isFalse();
    assertThatThrownBy(() -> after.run(() -> {})).isInstanceOf(IllegalStateException.class);

    CancelScope shield = CancelScope.create();
    shield.setShielded(true);
    CancelScope outer = CancelScope.create();
    outer.run(
        () ->
            shield.run(
                () -> {
                  outer.cancel();
                  CancelScope.checkpoint();
                  shield.setShielded(false);
                  assertThat(checkpointThrows()).isTrue();
                }));
    assertThat(outer.cancelCaught()).isFalse();

    CancelScope dl = CancelScope.create();
    dl.setDeadline(Instant.now().plusMillis(100));
    long t0 = System.nanoTime();
    dl.run(() -> Thread.sleep(10_000));
    assertThat(dl.cancelCaught()).isTrue();
    assertThat(System.nanoTime() - t0).isGreaterThan(TimeUnit.MILLISECONDS.toNanos(90));
  }

  @RepeatedTest(5)
  void cancelAboveTheGroupReachesChildrenWhileTheOwnerIsShielded() throws Exception {
    CountDownLatch cancelled = new CountDownLatch(1);
    CountDownLatch blocked = new CountDownLatch(1);
    CancelScope parent2 = CancelScope.create();
    parent2.run(
        () -> {
          TaskGroup tg = TaskGroup.create();
          tg.run(
              () -> {
                tg.fork(
                    () -> {
                      blocked.countDown();
                      try {
                        new CountDownLatch(1).await();
                      } catch (InterruptedException e) {
                        cancelled.countDown();
                        throw e;
                      }
                    });
                blocked.await();
                CancelScope.shielded()
                    .run(
                        () ->
                            CancelScope.failAfter(
                                Duration.ofSeconds(5),
                                () -> {
                                  parent2.cancel();
                                  cancelled.await();
                                  return null;
                                }));
              });
        });
    assertThat(parent2.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void scopeIsClearedAfterMoveOnAfter() throws Exception {
    CancelScope.moveOnAfter(
        Duration.ofMillis(20),
        () -> {
          Thread.sleep(5_000);
          return null;
        });
    Thread.sleep(0); // the blocking calls under test: would throw on a leak
    Thread.sleep(1);
    CancelScope.checkpoint();
  }

  @Test
  void cancelledInnerInsideCancelledOuterPropagatesToTheOuter() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    AtomicBoolean reached = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          inner.run(
              () -> {
                inner.cancel();
                new CountDownLatch(1).await();
              });
          reached.set(true);
        });
    assertThat(reached).isFalse();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void nestedFailAfterUnderACancelledScope() throws Exception {
    CancelScope scope = CancelScope.create();
    TaskGroup tg = TaskGroup.create();
    CountDownLatch entered = new CountDownLatch(1);
    tg.run(
        () ->
            scope.run(
                () ->
                    CancelScope.create()
                        .run(
                            () -> {
                              tg.fork(
                                  () -> {
                                    entered.await();
                                    scope.cancel();
                                  });
                              CancelScope.failAfter(
                                  Duration.ofSeconds(1),
                                  () -> {
                                    entered.countDown();
                                    Thread.sleep(2_000);
                                    throw new AssertionError("not reached");
                                  });
                              throw new AssertionError("not reached either");
                            })));
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
  }
}
