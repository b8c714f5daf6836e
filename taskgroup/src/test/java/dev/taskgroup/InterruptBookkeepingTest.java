package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.Trail;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.nio.channels.ClosedByInterruptException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Interrupt bookkeeping, shields and what counts as a cancellation (docs/guide.md): whose interrupt
 * survives what.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class InterruptBookkeepingTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted(); // a failing test must not poison the next one
  }

  @Test
  void libraryInterruptDoesNotSurviveTheScopeItWasFor() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          assertThat(Thread.currentThread().isInterrupted()).isTrue();
        });
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    Thread.sleep(1); // would throw if the interrupt had leaked
  }

  @Test
  void libraryInterruptDoesNotSurviveAFailureLeavingTheScope() {
    CancelScope scope = CancelScope.create();
    IllegalStateException failure = new IllegalStateException();
    Throwable thrown =
        catchThrowableOfType(
            IllegalStateException.class,
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      throw failure;
                    }));
    assertThat(thrown).isSameAs(failure);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void outsideInterruptPendingWhenCancelledIsStillSetAfterExit() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          Thread.currentThread().interrupt(); // someone else's
          scope.cancel();
        });
    assertThat(Thread.currentThread().isInterrupted()).isTrue();
  }

  @Test
  void outsideInterruptConsumedByAnAbsorbedCancellationIsSetAgain() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          Thread.currentThread().interrupt(); // someone else's
          scope.cancel();
          Thread.sleep(10_000); // throws, clearing the status; the scope absorbs it
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isTrue();
  }

  @Test
  void outsideInterruptInAnUncancelledScopePassesThrough() {
    CancelScope scope = CancelScope.create();
    InterruptedException e =
        catchThrowableOfType(
            InterruptedException.class,
            () ->
                scope.run(
                    () -> {
                      Thread.currentThread().interrupt();
                      Thread.sleep(10_000);
                    }));
    assertThat(e).isNotNull();
    assertThat(scope.cancelCaught()).isFalse();
  }

  @Test
  void outsideInterruptSetInAnUncancelledScopeStaysSet() throws Exception {
    CancelScope.create().run(() -> Thread.currentThread().interrupt());
    assertThat(Thread.currentThread().isInterrupted()).isTrue();
  }

  @Test
  void checkpointOutsideAnyCancelledScopeThrowsForAnOutsideInterruptAndClearsIt() {
    Thread.currentThread().interrupt();
    assertThat(catchThrowableOfType(InterruptedException.class, CancelScope::checkpoint))
        .isNotNull();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void checkpointPassesWhenNothingIsCancelled() throws Exception {
    CancelScope.checkpoint();
    CancelScope.create().run(CancelScope::checkpoint);
    assertThat(CancelScope.isCancelled()).isFalse();
  }

  @Test
  void swallowedCancellationIsDeliveredAgainAtTheNextScopeEntryAndCheckpoint() throws Exception {
    CancelScope scope = CancelScope.create();
    Trail trail = new Trail();
    scope.run(
        () -> {
          scope.cancel();
          try {
            Thread.sleep(10_000);
          } catch (InterruptedException swallowed) {
            trail.add("swallowed; status " + Thread.currentThread().isInterrupted());
          }
          CancelScope.create().run(() -> trail.add("entered; status " + isInterrupted()));
          Thread.interrupted();
          try {
            CancelScope.checkpoint();
          } catch (InterruptedException again) {
            trail.add("checkpoint threw; status " + isInterrupted());
          }
        });
    assertThat(trail.events())
        .containsExactly(
            "swallowed; status false", "entered; status true", "checkpoint threw; status true");
    assertThat(isInterrupted()).isFalse();
  }

  private static boolean isInterrupted() {
    return Thread.currentThread().isInterrupted();
  }

  // ---- shields ----------------------------------------------------------------------------

  @Test
  void enteringAShieldDropsTheLibrarysInterruptSoCleanupCanBlock() throws Exception {
    CancelScope outer = CancelScope.create();
    Trail trail = new Trail();
    outer.run(
        () -> {
          outer.cancel();
          try {
            Thread.sleep(10_000);
          } finally {
            CancelScope.shielded()
                .run(
                    () -> {
                      Thread.sleep(5); // blocking cleanup runs
                      CancelScope.checkpoint();
                      trail.add("cleanup done");
                    });
          }
        });
    assertThat(trail.events()).containsExactly("cleanup done");
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void shieldTurnedOnFromItsThreadDropsThePendingInterrupt() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    Trail trail = new Trail();
    outer.run(
        () ->
            inner.run(
                () -> {
                  outer.cancel();
                  inner.setShielded(true);
                  Thread.sleep(5); // the blocking call under test: completes while shielded
                  trail.add("not cancelled while shielded");
                  inner.setShielded(false);
                  trail.add("status after unshield: " + isInterrupted());
                  Thread.sleep(10_000);
                }));
    assertThat(trail.events())
        .containsExactly("not cancelled while shielded", "status after unshield: true");
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
  }

  @Test
  void unshieldingWhileAboveIsCancelledDeliversAtOnceToChildren() throws Exception {
    TaskGroup outer = TaskGroup.create();
    Trail trail = new Trail();
    outer.run(
        () -> {
          TaskGroup shieldedGroup = TaskGroup.create();
          shieldedGroup.cancelScope().setShielded(true);
          shieldedGroup.run(
              () -> {
                java.util.concurrent.CountDownLatch started =
                    new java.util.concurrent.CountDownLatch(1);
                shieldedGroup.fork(
                    () -> {
                      started.countDown();
                      Fixtures.parkUntilInterrupted();
                      trail.add("child interrupted");
                    });
                started.await();
                outer.cancel();
                Thread.sleep(5); // the blocking call under test: completes while shielded
                trail.add("shielded body not cancelled");
                shieldedGroup.cancelScope().setShielded(false);
              });
        });
    assertThat(trail.events()).containsExactly("shielded body not cancelled", "child interrupted");
    assertThat(outer.cancelCaught()).isTrue();
  }

  // ---- the cancellation family ------------------------------------------------------------

  static Stream<Arguments> cancellationFamily() {
    return Stream.of(
        Arguments.of("InterruptedException", (Supplier<Exception>) InterruptedException::new),
        Arguments.of(
            "ClosedByInterruptException", (Supplier<Exception>) ClosedByInterruptException::new),
        Arguments.of("InterruptedIOException", (Supplier<Exception>) InterruptedIOException::new),
        Arguments.of("CancellationException", (Supplier<Exception>) CancellationException::new),
        Arguments.of(
            "cause chain",
            (Supplier<Exception>)
                () -> new ExecutionException(new RuntimeException(new InterruptedException()))),
        Arguments.of(
            "IOException while interrupted",
            (Supplier<Exception>) () -> new java.net.SocketException("Closed by interrupt")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cancellationFamily")
  void cancellationFamilyIsAbsorbedByTheCancelledScope(String name, Supplier<Exception> make)
      throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          throw make.get();
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(isInterrupted()).isFalse();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cancellationFamily")
  void cancellationFamilyPropagatesAsInterruptedExceptionThroughAnUncancelledScope(
      String name, Supplier<Exception> make) throws Exception {
    CancelScope outer = CancelScope.create();
    Throwable[] seen = new Throwable[1];
    outer.run(
        () -> {
          try {
            CancelScope.create()
                .run(
                    () -> {
                      outer.cancel("why");
                      throw make.get();
                    });
          } catch (InterruptedException e) {
            seen[0] = e;
            throw e;
          }
        });
    assertThat(seen[0]).isInstanceOf(InterruptedException.class);
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void socketTimeoutIsAFailureEvenWhenCancelled() {
    CancelScope scope = CancelScope.create();
    SocketTimeoutException timeout = new SocketTimeoutException();
    Throwable thrown =
        catchThrowableOfType(
            SocketTimeoutException.class,
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      Thread.interrupted(); // the status no longer says "cancelled"
                      throw timeout;
                    }));
    assertThat(thrown).isSameAs(timeout);
  }

  @Test
  void ioExceptionAfterTheInterruptWasConsumedIsAFailure() {
    CancelScope scope = CancelScope.create();
    IOException io = new IOException("real failure");
    Throwable thrown =
        catchThrowableOfType(
            IOException.class,
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      Thread.interrupted();
                      throw io;
                    }));
    assertThat(thrown).isSameAs(io);
  }

  @Test
  void cancellationFamilyWhenNotCancelledIsNotAbsorbed() {
    CancelScope scope = CancelScope.create();
    CancellationException ce = new CancellationException("someone else's");
    Throwable thrown =
        catchThrowableOfType(
            CancellationException.class,
            () ->
                scope.run(
                    () -> {
                      throw ce;
                    }));
    assertThat(thrown).isSameAs(ce);
  }

  // ---- failures riding on a cancellation --------------------------------------------------

  @Test
  void failureSuppressedByAnAbsorbedCancellationIsThrown() {
    CancelScope scope = CancelScope.create();
    IllegalStateException closeFailed = new IllegalStateException("close failed");
    Throwable thrown =
        catchThrowableOfType(
            IllegalStateException.class,
            () ->
                scope.run(
                    () -> {
                      try (AutoCloseable resource =
                          () -> {
                            throw closeFailed;
                          }) {
                        scope.cancel();
                        Thread.sleep(10_000);
                      }
                    }));
    assertThat(thrown).isSameAs(closeFailed);
    assertThat(isInterrupted()).isFalse();
  }

  @Test
  void failureSuppressedByACancelledChildIsAFailureOfTheGroup() throws Exception {
    TaskGroup group = TaskGroup.create();
    IllegalStateException closeFailed = new IllegalStateException("close failed");
    java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            try (AutoCloseable resource =
                                () -> {
                                  throw closeFailed;
                                }) {
                              started.countDown();
                              Thread.sleep(10_000);
                            }
                            return null;
                          });
                      started.await();
                      group.cancel();
                    }));
    assertThat(e.failures()).containsExactly(closeFailed);
  }

  @Test
  void cancelHookFailureWithNoGroupSurvivesTryWithResources() {
    CancelScope scope = CancelScope.create();
    IllegalStateException hookFailed = new IllegalStateException("hook failed");
    Throwable thrown =
        catchThrowableOfType(
            IllegalStateException.class,
            () ->
                scope.run(
                    () -> {
                      try (var hook =
                          CancelScope.onCancel(
                              () -> {
                                throw hookFailed;
                              })) {
                        scope.cancel();
                        Thread.sleep(10_000);
                      }
                    }));
    assertThat(thrown).isSameAs(hookFailed);
  }
}
