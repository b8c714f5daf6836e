package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Propagated children racing a cancel: whatever the moment, every propagator that ran its code
 * before the work also ran its code after it, before run returned.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PropagationStressTest {
  private static final int CHILDREN = 50;

  /** Counts entries and exits around the work; exits only after a short busy restore. */
  private static final class Balanced implements ContextPropagator {
    final AtomicInteger entered = new AtomicInteger();
    final AtomicInteger exited = new AtomicInteger();

    @Override
    public Runnable wrap(Runnable work) {
      return () -> {
        entered.incrementAndGet();
        try {
          work.run();
        } finally {
          Thread.onSpinWait();
          exited.incrementAndGet();
        }
      };
    }
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancelledPropagatedChildrenFinishTheirPropagatorsBeforeRunReturns(ThreadKind kind)
      throws Exception {
    for (int round = 0; round < 20; round++) {
      Tracking tracking = new Tracking(kind);
      Balanced balanced = new Balanced();
      TaskGroup group =
          TaskGroup.builder().threadFactory(tracking).contextPropagator(balanced).build();
      CountDownLatch someRunning = new CountDownLatch(CHILDREN / 2);
      group.run(
          () -> {
            for (int i = 0; i < CHILDREN; i++) {
              group.fork(
                  () -> {
                    someRunning.countDown();
                    Fixtures.parkUntilInterrupted();
                  });
            }
            someRunning.await();
            group.cancel();
          });
      assertThat(balanced.exited.get()).isEqualTo(balanced.entered.get());
      assertThat(balanced.entered.get()).isPositive();
      tracking.assertAllDone();
    }
  }

  @RepeatedTest(10)
  void aFailingChildCancelsPropagatedSiblingsAndEveryPropagatorStillRestores() throws Exception {
    Balanced balanced = new Balanced();
    TaskGroup group = TaskGroup.builder().contextPropagator(balanced).build();
    RuntimeException boom = new IllegalStateException("boom");
    Throwable thrown = null;
    try {
      group.run(
          () -> {
            for (int i = 0; i < CHILDREN; i++) {
              group.fork(Fixtures::parkUntilInterrupted);
            }
            group.fork(
                () -> {
                  throw boom;
                });
          });
    } catch (TaskGroupException e) {
      thrown = e;
    }
    assertThat(thrown)
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(boom));
    assertThat(balanced.exited.get()).isEqualTo(balanced.entered.get());
  }
}
