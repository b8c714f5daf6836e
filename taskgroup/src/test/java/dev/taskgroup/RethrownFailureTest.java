package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A child's failure read by the body or a sibling and rethrown is still one failure, whichever way
 * it was read: {@code Task.get()}, or the task's {@code CompletableFuture} through {@code join()},
 * {@code get()}, a dependent stage or {@code CancelScope.await}. What was added to the rethrown
 * exception on its way (a {@code close()} that failed in a try-with-resources around the read) is a
 * failure of its own and is never lost. Ported from CPython {@code test_taskgroups.py}
 * test_taskgroup_23 (a sibling awaiting a failed task), with the ways a Java caller reads a
 * future's outcome.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class RethrownFailureTest {

  /** How a sibling reads the failed task's outcome (each throws what it threw, as it is). */
  interface Read {
    Object from(Task<Object> failed) throws Exception;
  }

  static final List<Read> READS =
      List.of(
          Task::get,
          t -> t.toCompletableFuture().join(),
          t -> t.toCompletableFuture().get(),
          t -> t.toCompletableFuture().thenApply(v -> v).join(),
          t -> t.toCompletableFuture().thenApply(v -> v).get(),
          t -> CancelScope.await(t.toCompletableFuture()),
          t -> CancelScope.await(t.toCompletableFuture().thenApply(v -> v)));

  private static TaskGroup collecting() {
    return TaskGroup.builder().name("collect").failurePolicy(FailurePolicy.COLLECT).build();
  }

  /**
   * Runs {@code g} with a body that forks a failing child and a sibling that reads and rethrows.
   */
  private static void runFailingAndReader(TaskGroup g, RuntimeException failure, Read read)
      throws InterruptedException {
    g.run(
        () -> {
          Task<Object> failing =
              g.fork(
                  () -> {
                    throw failure;
                  });
          g.fork(() -> read.from(failing));
        });
  }

  /** What {@link #runFailingAndReader} makes {@code g} throw. */
  private static List<Throwable> failuresOf(TaskGroup g, RuntimeException failure, Read read) {
    TaskGroupException e =
        catchThrowableOfType(TaskGroupException.class, () -> runFailingAndReader(g, failure, read));
    assertThat(e).as("run threw no TaskGroupException").isNotNull();
    return e.failures();
  }

  @RepeatedTest(5)
  void rethrownUnderCollectIsOneFailureWhateverTheRead() {
    for (int i = 0; i < READS.size(); i++) {
      RuntimeException failure = new RuntimeException("only once");
      assertThat(failuresOf(collecting(), failure, READS.get(i)))
          .as("read #%d", i)
          .containsExactly(failure);
    }
  }

  /**
   * A failure whose {@code toString()} throws: JDK 25's {@code CompletableFuture} then makes its
   * wrapper with an empty message and that exception suppressed on it. The exception is the
   * failure's own defect, not a failure added on the way back, and the rethrown failure is still
   * one failure (before, the group reported the {@code toString()}'s exception as a second one). On
   * a JDK whose future lets that exception out of the read instead, it is the reader's failure.
   */
  @RepeatedTest(3)
  void aRethrownFailureWhoseToStringThrowsIsStillOneFailure() {
    for (int i = 0; i < READS.size(); i++) {
      RuntimeException failure =
          new RuntimeException("only once") {
            @Override
            public String toString() {
              throw new IllegalStateException("toString() is broken");
            }
          };
      List<Throwable> failures = failuresOf(collecting(), failure, READS.get(i));
      assertThat(failures).as("read #%d", i).startsWith(failure);
      if (Runtime.version().feature() >= 25) {
        assertThat(failures).as("read #%d", i).containsExactly(failure);
      }
    }
  }

  // A sibling blocked in an uninterruptible join() when the failure cancels it (CANCEL_ALL): it
  // wakes cancelled and rethrows the CompletionException, which is the child's failure again.
  @RepeatedTest(20)
  void rethrownByACancelledSiblingIsOneFailure() {
    RuntimeException failure = new RuntimeException("only once");
    TaskGroup g = TaskGroup.named("cancel-all");
    CountDownLatch joining = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      CountDownLatch go = new CountDownLatch(1);
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                go.await();
                                throw failure;
                              });
                      CompletableFuture<Object> f = failing.toCompletableFuture();
                      g.fork(
                          () -> {
                            joining.countDown();
                            return f.join();
                          });
                      joining.await();
                      go.countDown();
                    }));
    assertThat(e.failures()).containsExactly(failure);
  }

  @Test
  void theHandlerSeesARethrownFailureOnce() throws Exception {
    for (int i = 0; i < READS.size(); i++) {
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      TaskGroup g =
          TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).onFailure(handled::add).build();
      RuntimeException failure = new RuntimeException("only once");
      runFailingAndReader(g, failure, READS.get(i));
      assertThat(handled).as("read #%d", i).containsExactly(failure);
    }
  }

  // The read's exception picks up a close() failure in a try-with-resources on its way out: that
  // one is new, and must be reported, even though the exception carrying it is not.
  @RepeatedTest(5)
  void aFailureSuppressedOnTheRethrownExceptionIsKept() {
    for (int i = 0; i < READS.size(); i++) {
      RuntimeException failure = new RuntimeException("the child's");
      IOException closeFailed = new IOException("close() failed on the way out");
      Read read = READS.get(i);
      Read withResource =
          t -> {
            try (AutoCloseable resource =
                () -> {
                  throw closeFailed;
                }) {
              return read.from(t);
            }
          };
      assertThat(failuresOf(collecting(), failure, withResource))
          .as("read #%d", i)
          .containsExactly(failure, closeFailed);
    }
  }

  @Test
  void aSuppressedFailureOnTheRethrownExceptionReachesTheHandler() throws Exception {
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    TaskGroup g =
        TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).onFailure(handled::add).build();
    RuntimeException failure = new RuntimeException("the child's");
    IOException closeFailed = new IOException("close() failed on the way out");
    g.run(
        () -> {
          Task<Object> failing =
              g.fork(
                  () -> {
                    throw failure;
                  });
          g.fork(
              () -> {
                try (AutoCloseable resource =
                    () -> {
                      throw closeFailed;
                    }) {
                  return failing.get();
                }
              });
        });
    assertThat(handled).containsExactly(failure, closeFailed);
  }

  // Another group's child failure, read and rethrown here, was never reported by this group: it is
  // this group's failure (wrapped as it was read), not dropped as a duplicate.
  @Test
  void anotherGroupsChildFailureRethrownHereIsReported() throws Exception {
    RuntimeException failure = new RuntimeException("elsewhere");
    TaskGroup other = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    Task<Object>[] failed = newTaskArray();
    catchThrowableOfType(
        TaskGroupException.class,
        () ->
            other.run(
                () -> {
                  failed[0] =
                      other.fork(
                          () -> {
                            throw failure;
                          });
                }));
    for (int i = 0; i < READS.size(); i++) {
      Read read = READS.get(i);
      TaskGroup here = collecting();
      TaskGroupException e =
          catchThrowableOfType(
              TaskGroupException.class,
              () -> here.run(() -> here.fork(() -> read.from(failed[0]))));
      assertThat(e).as("read #%d", i).isNotNull();
      assertThat(e.failures()).as("read #%d", i).hasSize(1);
      Throwable only = e.failures().get(0);
      assertThat(only)
          .as("read #%d", i)
          .isInstanceOfAny(ExecutionException.class, CompletionException.class);
      assertThat(only.getCause()).as("read #%d", i).isSameAs(failure);
    }
  }

  @SuppressWarnings("unchecked")
  private static Task<Object>[] newTaskArray() {
    return new Task[1];
  }
}
