package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

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

  /** Thread factories a test runs with: the library's own (virtual) and platform threads. */
  static Stream<ThreadFactory> factories() {
    return Stream.of(Thread.ofVirtual().factory(), Thread.ofPlatform().factory());
  }

  @ParameterizedTest
  @MethodSource("factories")
  void aForkFromADependentStageOfABoundedGroupsChildDoesNotWaitForThePlaceItsThreadHolds(
      ThreadFactory factory) throws Exception {
    for (boolean fails : new boolean[] {false, true}) {
      TaskGroup group =
          TaskGroup.builder()
              .maxConcurrency(1)
              .failurePolicy(FailurePolicy.COLLECT)
              .threadFactory(factory)
              .build();
      CountDownLatch release = new CountDownLatch(1);
      AtomicReference<Task<String>> fromStage = new AtomicReference<>();
      Throwable fromRun =
          catchThrowable(
              () ->
                  group.run(
                      () -> {
                        Task<String> first =
                            group.fork(
                                () -> {
                                  release.await();
                                  if (fails) {
                                    throw new IllegalStateException("the first child failed");
                                  }
                                  return "first";
                                });
                        // Added before the task ends: it runs on the task's thread as it ends,
                        // while that
                        // thread still holds the group's one place.
                        first
                            .toCompletableFuture()
                            .whenComplete(
                                (v, e) -> fromStage.set(group.fork(() -> "from the stage")));
                        release.countDown();
                      }));
      if (fails) {
        assertThat(fromRun).isInstanceOf(TaskGroupException.class); // the first child's, collected
      } else {
        assertThat(fromRun).isNull();
      }
      assertThat(fromStage.get()).as("fails=%s", fails).isNotNull();
      assertThat(fromStage.get().resultNow()).isEqualTo("from the stage");
    }
  }

  @ParameterizedTest
  @MethodSource("factories")
  void aCancelOfTheGroupReachesADependentStageBlockingOnTheTasksThread(ThreadFactory factory)
      throws Exception {
    TaskGroup group = TaskGroup.builder().threadFactory(factory).build();
    CountDownLatch added = new CountDownLatch(1);
    CountDownLatch stageBlocking = new CountDownLatch(1);
    CountDownLatch never = new CountDownLatch(1);
    AtomicReference<Throwable> stageSaw = new AtomicReference<>();
    group.run(
        () -> {
          Task<Void> task = group.fork(() -> added.await()); // ends once the stage is added
          task.toCompletableFuture()
              .whenComplete(
                  (v, e) -> {
                    stageBlocking.countDown();
                    try {
                      never.await();
                    } catch (InterruptedException interrupted) {
                      stageSaw.set(interrupted);
                    }
                  });
          added.countDown();
          stageBlocking.await();
          group.cancel(); // run returns only once the stage has ended
        });
    assertThat(stageSaw.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCaught()).isTrue();
  }
}
