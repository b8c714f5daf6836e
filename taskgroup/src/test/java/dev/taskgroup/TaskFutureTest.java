package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code Task.toCompletableFuture()}: the task's outcome as a CompletableFuture, both ways. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class TaskFutureTest {
  @Test
  void theSameFutureCompletesWithTheResult() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<CompletableFuture<String>> future = new AtomicReference<>();
    CountDownLatch go = new CountDownLatch(1);
    group.run(
        () -> {
          Task<String> task =
              group.fork(
                  () -> {
                    go.await();
                    return "result";
                  });
          future.set(task.toCompletableFuture());
          assertThat(task.toCompletableFuture()).isSameAs(future.get());
          assertThat(future.get()).isNotDone();
          go.countDown();
        });
    assertThat(future.get().get()).isEqualTo("result");
  }

  @Test
  void aFailureCompletesItExceptionally() {
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = TaskGroup.create();
    AtomicReference<Task<Object>> task = new AtomicReference<>();
    catchThrowable(
        () ->
            group.run(
                () ->
                    task.set(
                        group.fork(
                            () -> {
                              throw boom;
                            }))));
    CompletableFuture<Object> future = task.get().toCompletableFuture(); // made after the end
    assertThat(future).isCompletedExceptionally();
    assertThat(catchThrowable(future::join)).hasCause(boom);
  }

  @Test
  void aCancelledTaskCancelsIt() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<CompletableFuture<Void>> future = new AtomicReference<>();
    group.run(
        () -> {
          future.set(group.fork(() -> Thread.sleep(30_000)).toCompletableFuture());
          group.cancel();
        });
    assertThat(future.get()).isCancelled();
  }

  @RepeatedTest(3)
  void cancellingTheFutureCancelsTheTaskWhateverTheFlag() throws Exception {
    for (boolean flag : new boolean[] {false, true}) {
      TaskGroup group = TaskGroup.create();
      CountDownLatch running = new CountDownLatch(1);
      AtomicReference<Throwable> seen = new AtomicReference<>();
      AtomicReference<Task<Void>> task = new AtomicReference<>();
      group.run(
          () -> {
            task.set(
                group.fork(
                    () -> {
                      running.countDown();
                      seen.set(catchThrowable(() -> Thread.sleep(30_000)));
                    }));
            running.await();
            assertThat(task.get().toCompletableFuture().cancel(flag)).isTrue();
          });
      assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(task.get().toCompletableFuture()).isCancelled();
      assertThat(seen.get())
          .as("the task was interrupted")
          .isInstanceOf(InterruptedException.class);
    }
  }

  @Test
  void completingItFromOutsideDoesNotAffectTheTask() throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    go.await();
                    return "real";
                  }));
          assertThat(task.get().toCompletableFuture().complete("fake")).isTrue();
          go.countDown();
        });
    assertThat(task.get().get()).isEqualTo("real");
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
  }
}
