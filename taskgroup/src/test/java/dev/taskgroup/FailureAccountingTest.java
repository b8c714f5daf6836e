package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every failure is reported exactly once and never lost: an exception judged a failure at a
 * shield's exit stays a failure further out, and a child's failure read back through {@code get()}
 * is not counted a second time.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FailureAccountingTest {

  /** Blocks until the thread is cancelled (the cancellation's InterruptedException). */
  private static void blockUntilCancelled() throws InterruptedException {
    Thread.sleep(60_000);
  }

  /** Runs {@code cleanup} in a shield in the finally block of a cancelled child. */
  private static TaskGroupException failureFromShieldedCleanup(
      ThreadKind kind, CancelScope.Block<Exception> cleanup) {
    Tracking threads = new Tracking(kind);
    TaskGroup g = Fixtures.group("shielded-cleanup", threads);
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              g.fork(
                  () -> {
                    started.countDown();
                    try {
                      blockUntilCancelled();
                    } finally {
                      CancelScope.shielded().run(cleanup);
                    }
                    return null;
                  });
              started.await();
              g.cancel();
            });
    assertThat(e).as("run() must report the cleanup's failure").isNotNull();
    return e;
  }

  /** Runs {@code body} in {@code g} and returns the TaskGroupException run threw. */
  private static TaskGroupException failureOf(TaskGroup g, Body body) {
    TaskGroupException e = catchThrowableOfType(TaskGroupException.class, () -> g.run(body));
    assertThat(e).as("run() must report the failure").isNotNull();
    return e;
  }

  @RepeatedTest(20)
  void ioExceptionFromShieldedCleanupStaysAFailure() {
    IOException flush = new IOException("flush failed");
    TaskGroupException e =
        failureFromShieldedCleanup(
            ThreadKind.VIRTUAL,
            () -> {
              throw flush;
            });
    assertThat(e.failures()).containsExactly(flush);
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void ioExceptionFromNestedShieldsStaysAFailure(ThreadKind kind) {
    IOException flush = new IOException("flush failed");
    TaskGroupException e =
        failureFromShieldedCleanup(
            kind,
            () ->
                CancelScope.create()
                    .run(
                        () ->
                            CancelScope.shielded()
                                .run(
                                    () -> {
                                      throw flush;
                                    })));
    assertThat(e.failures()).containsExactly(flush);
  }

  @RepeatedTest(20)
  void socketTimeoutFromShieldAfterCatchingTheCancellationIsAFailure() {
    SocketTimeoutException timeout = new SocketTimeoutException("read timed out");
    Tracking threads = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup g = Fixtures.group("catching", threads);
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              g.fork(
                  () -> {
                    started.countDown();
                    try {
                      blockUntilCancelled();
                    } catch (InterruptedException cancelled) {
                      CancelScope.shielded()
                          .run(
                              () -> {
                                throw timeout;
                              });
                    }
                    return null;
                  });
              started.await();
              g.cancel();
            });
    assertThat(e.failures()).containsExactly(timeout);
  }

  @RepeatedTest(10)
  void ioExceptionFromShieldInTheBodyOfACancelledGroupIsAFailure() throws Exception {
    IOException flush = new IOException("flush failed");
    TaskGroup g = TaskGroup.named("body");
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              g.cancel();
              try {
                CancelScope.checkpoint();
              } finally {
                CancelScope.shielded()
                    .run(
                        () -> {
                          throw flush;
                        });
              }
            });
    assertThat(e.failures()).containsExactly(flush);
  }

  @RepeatedTest(20)
  void childFailureReadByTheBodysGetIsReportedOnce() {
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup g = TaskGroup.named("getter");
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              Task<String> user =
                  g.fork(
                      () -> {
                        throw boom;
                      });
              Task<String> orders = g.fork(() -> "orders");
              render(user.get(), orders.get());
            });
    assertThat(e.failures()).containsExactly(boom);
  }

  private static void render(String user, String orders) {
    assertThat(user + orders).isNotEmpty();
  }

  @RepeatedTest(20)
  void childFailureReadAfterItEndedIsReportedOnce() {
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup g = TaskGroup.named("late-getter");
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              Task<Void> failing =
                  g.fork(
                      () -> {
                        throw boom;
                      });
              while (!failing.isDone()) {
                Thread.onSpinWait();
              }
              failing.get();
            });
    assertThat(e.failures()).containsExactly(boom);
  }

  @RepeatedTest(10)
  void childFailureInCleanupAfterCancelReadByGetIsReportedOnce() {
    IllegalStateException boom = new IllegalStateException("cleanup failed");
    TaskGroup g = TaskGroup.named("cancel-then-fail");
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              Task<Void> child =
                  g.fork(
                      () -> {
                        started.countDown();
                        try {
                          blockUntilCancelled();
                        } finally {
                          throw boom;
                        }
                      });
              started.await();
              g.cancel();
              CancelScope.shielded().run(() -> child.get());
            });
    assertThat(e.failures()).containsExactly(boom);
  }

  @RepeatedTest(10)
  void collectPolicyBodyRethrowingAChildFailureReportsItOnce() {
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              Task<Void> failing =
                  g.fork(
                      () -> {
                        throw boom;
                      });
              Task<Void> sibling = g.fork(() -> failing.get());
              try {
                sibling.get(); // the sibling failed with the same failure
              } catch (ExecutionException expected) {
                assertThat(expected).hasRootCause(boom);
              }
              failing.get();
            });
    assertThat(e.failures()).containsExactly(boom);
  }

  @RepeatedTest(10)
  void getOnAFailedChildOfAnotherGroupIsStillAFailure() throws Exception {
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup inner = TaskGroup.named("inner");
    Task<?>[] failed = new Task<?>[1];
    catchThrowableOfType(
        TaskGroupException.class,
        () ->
            inner.run(
                () ->
                    failed[0] =
                        inner.fork(
                            () -> {
                              throw boom;
                            })));
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroupException e =
        catchThrowableOfType(TaskGroupException.class, () -> outer.run(() -> failed[0].get()));
    assertThat(e.failures()).hasSize(1);
    assertThat(e.failures().get(0)).isInstanceOf(ExecutionException.class).hasCause(boom);
  }

  @RepeatedTest(10)
  void theSameFailureRethrownByTheBodyIsKeptOnce() {
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    TaskGroupException e =
        failureOf(
            g,
            () -> {
              Task<Void> failing =
                  g.fork(
                      () -> {
                        throw boom;
                      });
              try {
                failing.get();
              } catch (ExecutionException ex) {
                throw (RuntimeException) ex.getCause(); // the usual unwrapping
              }
            });
    assertThat(e.failures()).containsExactly(boom);
  }
}
