package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.lang.ref.Reference;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The lost-failure hunt, second round: where a failure meets a cancellation, and where the failure
 * itself misbehaves. Every exception the user's code raises must surface exactly once (in what
 * {@code run} throws, in a handler, or to the caller of {@code get}/{@code start}/{@code await}),
 * never be absorbed as a cancellation unless the javadoc says it counts as one ({@code
 * CancelScope}, "Catching"; {@code onCancel}), and nothing may hang or leave the thread inside a
 * scope it left.
 *
 * <p>Misbehaving exceptions (a {@code toString()}, {@code getCause()} or {@code hashCode()} that
 * throws; {@code equals} that is true for a whole class of values) are the library's input like any
 * other: Trio and asyncio never call user methods of an exception on their bookkeeping path except
 * to print it (closest: CPython {@code test_asyncio.test_taskgroups}, which keeps the exception
 * objects themselves in an {@code ExceptionGroup}).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class LostFailureHuntTest {

  @AfterEach
  void threadLeftClean() {
    // Every test runs on the JUnit thread (SEPARATE_THREAD mode): what a scope left on it shows.
    assertThat(CancelScope.isCancelled()).as("test thread left effectively cancelled").isFalse();
    assertThat(Thread.interrupted()).as("interrupt left on the test thread").isFalse();
  }

  // ---- misbehaving exceptions -------------------------------------------------------------

  /** A failure whose toString() (and so its message in a string concatenation) throws. */
  static final class ToStringThrows extends RuntimeException {
    ToStringThrows() {
      super("to-string-throws");
    }

    @Override
    public String toString() {
      throw new IllegalStateException("toString() of a user exception threw");
    }
  }

  /** A failure whose getCause() throws. */
  static final class GetCauseThrows extends RuntimeException {
    GetCauseThrows() {
      super("get-cause-throws");
    }

    @Override
    public synchronized Throwable getCause() {
      throw new IllegalStateException("getCause() of a user exception threw");
    }
  }

  /** An I/O failure whose hashCode() throws. */
  static final class HashCodeThrowsIo extends IOException {
    HashCodeThrowsIo() {
      super("hash-code-throws");
    }

    @Override
    public int hashCode() {
      throw new IllegalStateException("hashCode() of a user exception threw");
    }

    @Override
    public boolean equals(Object o) {
      return this == o;
    }
  }

  /**
   * A value-like failure: equal to any other with the same code (a vendor's SQL error, compared by
   * its error code). Legal Java; the library must never confuse two such instances.
   */
  static final class CodedFailure extends RuntimeException {
    final int code;

    CodedFailure(int code) {
      super("code " + code);
      this.code = code;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof CodedFailure c && c.code == code;
    }

    @Override
    public int hashCode() {
      return code;
    }
  }

  /**
   * A child's failure whose toString() throws is still reported by run (TaskGroup, "Failures": any
   * exception a child throws is a failure; never lost), and the group does not hang. Closest:
   * CPython test_taskgroups "test_taskgroup_07" (a child's error surfaces in the group's error).
   */
  @Test
  void childFailureWhoseToStringThrowsIsReported() {
    ToStringThrows boom = new ToStringThrows();
    TaskGroup g = TaskGroup.named("to-string");
    Throwable e =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              throw boom;
                            })));
    assertThat(e).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) e).failures()).containsExactly(boom);
  }

  /**
   * Task.get() of a child that failed with such an exception throws ExecutionException with it as
   * the cause (Task/Future contract: "ExecutionException if the computation threw"), not the
   * exception its toString() threw.
   */
  @Test
  void getOfFailureWhoseToStringThrowsIsExecutionException() {
    ToStringThrows boom = new ToStringThrows();
    TaskGroup g =
        TaskGroup.builder().name("to-string-get").failurePolicy(FailurePolicy.COLLECT).build();
    Throwable[] got = new Throwable[1];
    catchThrowable(
        () ->
            g.run(
                () -> {
                  Task<Object> t =
                      g.fork(
                          () -> {
                            throw boom;
                          });
                  got[0] = catchThrowable(t::get);
                }));
    assertThat(got[0]).isInstanceOf(ExecutionException.class).hasCause(boom);
  }

  /**
   * A body failure whose getCause() throws: run still waits for the children, exits the group's
   * scope and reports the failure (TaskGroup: "run returns only when the body and every child have
   * finished, whatever happens").
   */
  @Test
  void bodyFailureWhoseGetCauseThrowsIsReportedAndJoined() throws Exception {
    GetCauseThrows boom = new GetCauseThrows();
    TaskGroup g = TaskGroup.named("get-cause-body");
    CountDownLatch childStarted = new CountDownLatch(1);
    Thread[] child = new Thread[1];
    Throwable e =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            child[0] = Thread.currentThread();
                            childStarted.countDown();
                            Fixtures.parkUntilInterrupted();
                          });
                      childStarted.await();
                      throw boom;
                    }));
    assertThat(e).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) e).failures()).containsExactly(boom);
    // As Fixtures.Tracking checks it: the child's thread ends at once after run.
    assertThat(child[0].join(java.time.Duration.ofSeconds(5))).as("child outlived run").isTrue();
  }

  /**
   * A child's genuine failure in its cleanup after the group was cancelled, whose getCause()
   * throws: not a cancellation by type or state, so a failure (CancelScope, "Catching"); and the
   * group must not wait for ever for the child.
   */
  @Test
  void cleanupFailureWhoseGetCauseThrowsInCancelledChildIsReported() {
    GetCauseThrows boom = new GetCauseThrows();
    TaskGroup g = TaskGroup.named("get-cause-child");
    CountDownLatch started = new CountDownLatch(1);
    Throwable e =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } finally {
                              throw boom;
                            }
                          });
                      started.await();
                      g.cancel();
                    }));
    assertThat(e).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) e).failures()).containsExactly(boom);
  }

  /**
   * The same in a plain cancelled scope: the failure passes through unchanged and the scope is left
   * (the thread is no longer inside it: checked after each test).
   */
  @Test
  void plainScopeFailureWhoseGetCauseThrowsLeavesTheScope() {
    GetCauseThrows boom = new GetCauseThrows();
    CancelScope scope = CancelScope.create();
    Throwable e =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      throw boom;
                    }));
    assertThat(e).isSameAs(boom);
  }

  /**
   * An IOException thrown while the cancellation's interrupt is pending is the cancellation
   * (CancelScope, "Catching"), whatever its hashCode() does: the scope absorbs it and is left.
   */
  @Test
  void ioExceptionWhoseHashCodeThrowsWhileInterruptPendingIsAbsorbed() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          assertThat(Thread.currentThread().isInterrupted()).isTrue();
          throw new HashCodeThrowsIo();
        });
    assertThat(scope.cancelCaught()).isTrue();
  }

  /**
   * onCancel: "once the action has started, any Exception the calling thread throws while it stays
   * cancelled counts as the cancellation". That must hold for a value-like exception equal to an
   * action's failure thrown earlier by another registration's close(): equality is not identity.
   */
  @Test
  void hookEffectEqualToAnEarlierActionFailureIsStillTheCancellation() throws Exception {
    CancelScope first = CancelScope.create();
    Throwable actionFailure =
        catchThrowable(
            () ->
                first.run(
                    () -> {
                      first.cancel();
                      try (var r =
                          CancelScope.onCancel(
                              () -> {
                                throw new CodedFailure(42);
                              })) {
                        // the action ran (the scope is cancelled); close() throws its failure
                      }
                    }));
    assertThat(actionFailure)
        .as("close() throws the action's failure")
        .isEqualTo(new CodedFailure(42));

    CancelScope second = CancelScope.create();
    second.run(
        () -> {
          second.cancel();
          try (var r = CancelScope.onCancel(() -> {})) {
            throw new CodedFailure(42); // the action's effect, as a cancelled statement's error
          }
        });
    assertThat(second.cancelCaught())
        .as("the hook's effect is absorbed as the cancellation")
        .isTrue();
    Reference.reachabilityFence(actionFailure);
  }

  /**
   * Failures riding on a cancellation (close() failures a try-with-resources suppressed on the
   * cancellation's InterruptedException) are failures, never lost (TaskGroup, "Failures"), also
   * when the first of them does not accept suppressed exceptions.
   */
  @Test
  void everyRidingCloseFailureSurfacesWhenTheFirstRefusesSuppression() {
    RuntimeException noSuppression = new RuntimeException("first close", null, false, false) {};
    RuntimeException second = new RuntimeException("second close");
    TaskGroup g = TaskGroup.named("riding");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      CancelScope inner = CancelScope.create();
                      inner.run(
                          () -> {
                            inner.cancel();
                            try (AutoCloseable a =
                                    () -> {
                                      throw second;
                                    };
                                AutoCloseable b =
                                    () -> {
                                      throw noSuppression;
                                    }) {
                              Thread.sleep(60_000);
                            }
                          });
                    }));
    assertThat(e).as("run reports the close failures").isNotNull();
    java.util.List<Throwable> seen = new java.util.ArrayList<>(e.failures());
    for (Throwable f : e.failures()) {
      seen.addAll(java.util.List.of(f.getSuppressed()));
    }
    assertThat(seen).contains(noSuppression, second);
  }
}
