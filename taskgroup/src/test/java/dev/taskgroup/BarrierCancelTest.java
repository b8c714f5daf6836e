package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Children waiting at a {@link CyclicBarrier} when their group is cancelled: the party interrupted
 * first gets an {@code InterruptedException} and breaks the barrier, and the others get a {@link
 * BrokenBarrierException}, some before their own interrupt came. In a cancelled thread that is the
 * cancellation, so the group ends normally; where nothing is cancelled it stays a failure.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BarrierCancelTest {
  private static final int PARTIES = 3;

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancellingChildrenAtABarrierEndsTheGroupNormally(ThreadKind kind) throws Exception {
    for (int round = 0; round < 20; round++) {
      CyclicBarrier barrier = new CyclicBarrier(PARTIES + 1); // one party never comes
      TaskGroup group = TaskGroup.builder().threadFactory(kind.factory()).build();
      List<Task<Integer>> waiting = new ArrayList<>();
      group.run(
          () -> {
            for (int i = 0; i < PARTIES; i++) {
              waiting.add(group.fork(() -> barrier.await()));
            }
            Probes.awaitTrue(
                "every child waiting at the barrier",
                Duration.ofSeconds(20),
                () -> barrier.getNumberWaiting() == PARTIES);
            group.cancel("enough");
          });
      assertThat(group.cancelCaught()).as("round %d", round).isTrue();
      assertThat(waiting).allMatch(t -> t.state() == Future.State.CANCELLED);
    }
  }

  @RepeatedTest(10)
  void aGroupTimeoutEndsChildrenAtABarrierNormally() throws Exception {
    CyclicBarrier barrier = new CyclicBarrier(PARTIES + 1);
    TaskGroup group = TaskGroup.builder().timeout(Duration.ofMillis(20)).build();
    group.run(
        () -> {
          for (int i = 0; i < PARTIES; i++) {
            group.fork(() -> barrier.await());
          }
        });
    assertThat(group.cancelCaught()).isTrue();
  }

  @RepeatedTest(5)
  void aBarrierBrokenWhileNothingIsCancelledIsAFailure() throws Exception {
    CyclicBarrier barrier = new CyclicBarrier(2);
    TaskGroup group = TaskGroup.create();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      Task<Integer> waiter = group.fork(() -> barrier.await());
                      Probes.awaitTrue(
                          "the child waiting at the barrier",
                          Duration.ofSeconds(20),
                          () -> barrier.getNumberWaiting() == 1);
                      barrier.reset(); // breaks it for the waiter: nothing is cancelled
                      waiter.get();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(BrokenBarrierException.class);
  }
}
