package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Two cancellers of one task. {@code Task.cancel()} sets the task's outcome first and then marks
 * the task's scope, which interrupts its thread; a second canceller that comes between the two
 * finds the outcome set. Its {@code toCompletableFuture().cancel()} returns true and runs the
 * future's dependent stages at once, so it must leave the task cancelled in every respect before it
 * returns, not only its outcome: the task's code interrupted, its scope cancelled. The window is a
 * few instructions wide; the test holds it open by doing the first canceller's first half itself
 * ({@link TaskImpl#claimCancelledOutcome}) and its second half only at the end.
 */
class TaskCancelRaceTest {
  @RepeatedTest(5)
  @Timeout(20)
  void aCancellerThatFindsTheOutcomeSetByAnotherStillCancelsTheTaskBeforeItReturns()
      throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch interrupted = new CountDownLatch(1);
    AtomicBoolean scopeCancelledInStage = new AtomicBoolean();
    AtomicBoolean interruptedBeforeWinnerWentOn = new AtomicBoolean();
    group.run(
        () -> {
          Task<Void> task =
              group.fork(
                  () -> {
                    started.countDown();
                    try {
                      new CountDownLatch(1).await(); // ends only when interrupted
                    } finally {
                      interrupted.countDown();
                    }
                    return null;
                  });
          started.await();
          TaskImpl<?> impl = (TaskImpl<?>) task;
          CompletableFuture<Void> future = task.toCompletableFuture(); // the second canceller's
          future.whenComplete(
              (v, e) -> scopeCancelledInStage.set((impl.flags() & Scope.CANCELLED) != 0));
          assertThat(impl.claimCancelledOutcome()).isTrue(); // the first canceller, paused

          assertThat(future.cancel(true)).isTrue();

          assertThat(scopeCancelledInStage).as("scope cancelled when the stage ran").isTrue();
          interruptedBeforeWinnerWentOn.set(interrupted.await(10, TimeUnit.SECONDS));
          impl.cancel(CancelReason.of(CancelReason.Kind.TASK_CANCEL, "Task.cancel()")); // goes on
        });
    assertThat(interruptedBeforeWinnerWentOn)
        .as("the task's code was interrupted by the second canceller")
        .isTrue();
  }

  @RepeatedTest(5)
  @Timeout(20)
  void aCancelOfATaskThatNeverStartedOrEndedCancelledRecordsNothing() throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch started = new CountDownLatch(1);
    group.run(
        () -> {
          Task<Void> ended =
              group.fork(
                  () -> {
                    started.countDown();
                    new CountDownLatch(1).await();
                    return null;
                  });
          started.await();
          group.cancel("done");
          Task<Void> neverStarted = group.fork(() -> null);
          ended.toCompletableFuture().exceptionally(e -> null).join();
          for (Task<Void> task : java.util.List.of(ended, neverStarted)) {
            TaskImpl<?> impl = (TaskImpl<?>) task;
            CancelReason before = impl.reason();
            assertThat(task.isCancelled()).isTrue();
            assertThat(task.cancel(true)).isFalse();
            assertThat(task.toCompletableFuture().cancel(true)).isTrue(); // the future follows
            assertThat(impl.reason()).isSameAs(before);
            assertThat(impl.flags() & Scope.CANCEL_CALLED).isZero();
          }
        });
  }
}
