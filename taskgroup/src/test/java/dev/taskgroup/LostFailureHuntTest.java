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
import org.junit.jupiter.api.RepeatedTest;
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

  /**
   * An I/O failure whose hashCode() throws; a SocketException, a kind an interrupt raises (so one
   * thrown while the cancellation's interrupt is pending is taken for it).
   */
  static final class HashCodeThrowsIo extends java.net.SocketException {
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
   * A SocketException thrown while the cancellation's interrupt is pending is the cancellation
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
                            sleepClosing(second, noSuppression, null);
                          });
                    }));
    assertThat(e).as("run reports the close failures").isNotNull();
    java.util.List<Throwable> seen = new java.util.ArrayList<>(e.failures());
    for (Throwable f : e.failures()) {
      seen.addAll(java.util.List.of(f.getSuppressed()));
    }
    assertThat(seen).contains(noSuppression, second);
  }

  /**
   * As above, but every close failure refuses suppressed exceptions, and a plain scope around the
   * try-with-resources is the one whose exit judges them: it throws one, and none of them can carry
   * the other. Each is still a failure of the group, whether the block runs in a child or in the
   * body (the scope kept only the one it threw, in 3 of 3 variants).
   */
  @RepeatedTest(3)
  void everyRidingCloseFailureSurfacesWhenNoneAcceptsSuppression() throws Exception {
    for (boolean inChild : new boolean[] {true, false}) {
      RuntimeException first = new RuntimeException("first close", null, false, false) {};
      RuntimeException second = new RuntimeException("second close", null, false, false) {};
      TaskGroup g = TaskGroup.named("riding");
      CountDownLatch blocked = new CountDownLatch(1);
      Body closing = () -> CancelScope.create().run(() -> sleepClosing(first, second, blocked));
      TaskGroupException e =
          catchThrowableOfType(
              TaskGroupException.class,
              () ->
                  g.run(
                      () -> {
                        if (inChild) {
                          g.fork(closing);
                          blocked.await();
                          g.cancel();
                        } else {
                          g.fork(
                              () -> {
                                blocked.await();
                                g.cancel();
                              });
                          closing.run();
                        }
                      }));
      assertThat(e).as("run reports the close failures (in a child: %s)", inChild).isNotNull();
      assertThat(e.failures())
          .as("in a child: %s", inChild)
          .containsExactlyInAnyOrder(first, second);
    }
  }

  /**
   * On a thread outside every group there is no group to keep the failures a plain scope's exit
   * cannot put on the one it throws: they go to the thread's uncaught-exception handler.
   */
  @RepeatedTest(3)
  void ridingCloseFailuresNoneCanCarryGoToTheHandlerOutsideEveryGroup() throws Exception {
    RuntimeException first = new RuntimeException("first close", null, false, false) {};
    RuntimeException second = new RuntimeException("second close", null, false, false) {};
    java.util.List<Throwable> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
    Throwable[] thrown = new Throwable[1];
    Thread t =
        Thread.ofPlatform()
            .uncaughtExceptionHandler((th, x) -> handled.add(x))
            .start(
                () -> {
                  CancelScope s = CancelScope.create();
                  thrown[0] =
                      catchThrowable(
                          () ->
                              s.run(
                                  () -> {
                                    s.cancel();
                                    sleepClosing(first, second, null);
                                  }));
                });
    t.join();
    assertThat(thrown[0]).isIn(first, second);
    assertThat(handled).containsExactly(thrown[0] == first ? second : first);
  }

  /**
   * Sleeps until interrupted in a try-with-resources of two resources whose {@code close()} throws
   * {@code a} and {@code b} (b's runs first), after counting down {@code entered} if given.
   */
  private static void sleepClosing(RuntimeException a, RuntimeException b, CountDownLatch entered)
      throws Exception {
    try (AutoCloseable ra =
            () -> {
              throw a;
            };
        AutoCloseable rb =
            () -> {
              throw b;
            }) {
      if (entered != null) {
        entered.countDown();
      }
      Thread.sleep(60_000);
    }
  }

  // ---- start(): a failure before started() while the caller is cancelled ------------------

  /**
   * start(): "if the work fails before signalling, start throws that failure". The caller's scope
   * is cancelled while it waits, so the work is cancelled too, and fails in its cleanup (a genuine
   * failure, raised while being cancelled). The failure must surface (thrown by start, or reported
   * by the group; TaskGroup: "failures are never lost, whatever the order of failures and
   * cancellations"). Closest: Trio test_nursery_start_failure / test_nursery_start_with_cancelled
   * (an error in the task before started() propagates out of start(), through the caller's
   * cancelled scope).
   */
  @org.junit.jupiter.params.ParameterizedTest(name = "caller has an onCancel action: {0}")
  @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
  void startWorkFailingWhileTheCallerIsCancelledIsNotLost(boolean callerHook) throws Exception {
    // With callerHook, an onCancel action of the caller's starts for the same cancellation: an
    // Exception the caller throws afterwards would be taken for the action's effect, unless the
    // failure keeps the judgment its task's exit made (CancelScope, "the judgment travels").
    for (int round = 0; round < 20; round++) {
      RuntimeException boom = new IllegalStateException("cleanup of the start()ed work failed");
      TaskGroup g = TaskGroup.named("start-cancelled-caller");
      CancelScope callerScope = CancelScope.create();
      Throwable[] fromStart = new Throwable[1];
      Throwable fromRun =
          catchThrowable(
              () ->
                  g.run(
                      () ->
                          callerScope.run(
                              () -> {
                                try (var r = callerHook ? CancelScope.onCancel(() -> {}) : null) {
                                  g.start(
                                      signal -> {
                                        callerScope.cancel(); // the caller is cancelled first
                                        try {
                                          Thread.sleep(60_000);
                                        } finally {
                                          throw boom; // never signalled
                                        }
                                      });
                                } catch (Throwable t) {
                                  fromStart[0] = t;
                                  throw t;
                                }
                              })));
      assertThat(fromStart[0])
          .as("round %d: start throws the work's failure", round)
          .isSameAs(boom);
      assertThat(fromRun).as("round %d", round).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) fromRun).failures())
          .as("round %d: reported once, by the body that let it through", round)
          .containsExactly(boom);
    }
  }

  // ---- failures in the same instant as a cancellation -------------------------------------

  /** How the group is cancelled in the instant the child fails. */
  enum Canceller {
    GROUP_CANCEL,
    OUTER_SCOPE_CANCEL,
    DEADLINE_NOW,
    OWNER_INTERRUPTED
  }

  /**
   * A child's RuntimeException is never the cancellation (neither by type nor by state; no hook),
   * whatever lands in the same instant: cancel(), an outer scope's cancel, a deadline set to now,
   * or the owner interrupted from outside. run reports it once (TaskGroup, "When outcomes
   * coincide": failures first). Closest: CPython test_taskgroups test_taskgroup_21/22 (an error
   * racing the parent's cancellation is still raised) and Trio test_cancel_scope_multierror.
   */
  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.EnumSource(Canceller.class)
  void failureInTheSameInstantAsACancellationIsReportedOnce(Canceller how) throws Exception {
    for (int round = 0; round < 50; round++) {
      RuntimeException boom = new IllegalStateException("round " + round);
      TaskGroup g = TaskGroup.named("same-instant");
      CancelScope outer = CancelScope.create();
      java.util.concurrent.CyclicBarrier line = new java.util.concurrent.CyclicBarrier(2);
      Thread owner = Thread.currentThread();
      Throwable e =
          catchThrowable(
              () ->
                  outer.run(
                      () ->
                          g.run(
                              () -> {
                                g.fork(
                                    () -> {
                                      line.await();
                                      if (how == Canceller.OWNER_INTERRUPTED) {
                                        owner.interrupt();
                                      }
                                      throw boom;
                                    });
                                line.await();
                                switch (how) {
                                  case GROUP_CANCEL -> g.cancel();
                                  case OUTER_SCOPE_CANCEL -> outer.cancel();
                                  case DEADLINE_NOW ->
                                      g.cancelScope().setDeadline(java.time.Instant.now());
                                  case OWNER_INTERRUPTED -> {}
                                }
                                Fixtures.parkUntilInterrupted();
                              })));
      boolean interrupted = Thread.interrupted();
      assertThat(e).as("round %d", round).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) e).failures()).as("round %d", round).containsExactly(boom);
      if (how != Canceller.OWNER_INTERRUPTED) {
        // (The outside interrupt races the group's own cancellation of the owner, caused by the
        // failure: one that lands while the library's is pending "may be absorbed with it",
        // CancelScope, "Interrupts"; so it is not asserted there.)
        assertThat(interrupted).as("no interrupt left (round %d)", round).isFalse();
      }
    }
  }

  // ---- Errors after an onCancel action started ---------------------------------------------

  /**
   * onCancel: after the action has started, an Exception is the action's effect, but "not an
   * Error": an Error the thread throws then is a failure, in every position (the scope, a child,
   * the group's body).
   */
  @Test
  void errorsAfterAHookStartedAreFailures() throws Exception {
    for (Error err :
        java.util.List.of(
            new StackOverflowError("user SOE"),
            new OutOfMemoryError("user OOM"),
            new AssertionError("user assertion"))) {
      // A plain scope: passes through unchanged.
      CancelScope scope = CancelScope.create();
      Throwable e =
          catchThrowable(
              () ->
                  scope.run(
                      () -> {
                        scope.cancel();
                        try (var r = CancelScope.onCancel(() -> {})) {
                          throw err;
                        }
                      }));
      assertThat(e).isSameAs(err);

      // A child of a cancelled group, and the body itself.
      for (boolean inBody : new boolean[] {false, true}) {
        TaskGroup g = TaskGroup.named("error-after-hook");
        CountDownLatch registered = new CountDownLatch(1);
        Body work =
            () -> {
              try (var r = CancelScope.onCancel(() -> {})) {
                registered.countDown();
                try {
                  Thread.sleep(60_000);
                } finally {
                  throw err;
                }
              }
            };
        TaskGroupException te =
            catchThrowableOfType(
                TaskGroupException.class,
                () ->
                    g.run(
                        () -> {
                          if (inBody) {
                            g.cancel();
                            work.run();
                          } else {
                            g.fork(work);
                            registered.await();
                            g.cancel();
                          }
                        }));
        assertThat(te).as("%s in %s", err, inBody ? "the body" : "a child").isNotNull();
        assertThat(te.failures()).containsExactly(err);
      }
    }
  }

  /** A cancel-hook action's own Error is a failure of the enclosing group (onCancel javadoc). */
  @RepeatedTest(20)
  void errorThrownByAHookActionIsAFailureOfTheGroup() {
    AssertionError err = new AssertionError("action failed");
    TaskGroup g = TaskGroup.named("hook-error");
    CountDownLatch registered = new CountDownLatch(1);
    TaskGroupException te =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try (var r =
                                CancelScope.onCancel(
                                    () -> {
                                      throw err;
                                    })) {
                              registered.countDown();
                              Thread.sleep(60_000);
                            }
                          });
                      registered.await();
                      g.cancel();
                    }));
    assertThat(te).isNotNull();
    assertThat(te.failures()).containsExactly(err);
  }

  // ---- many judged failures alive at once ------------------------------------------------

  /**
   * The usual way to close many resources in a cancelled task: each close() in a shield
   * (CancelScope javadoc: "cleanup whose I/O failures matter runs in a shielded scope"), the first
   * I/O failure kept and thrown at the end with the others suppressed on it. Each close failure is
   * judged a failure at its shield's exit and "the judgment travels with it"; after the shield the
   * cancellation's interrupt is delivered again, so only that judgment keeps the first failure from
   * being taken for the cancellation at the task's exit. It must hold for any number of resources
   * (closest: Java's try-with-resources contract, every close failure surfaces, primary first).
   */
  @org.junit.jupiter.params.ParameterizedTest(name = "{0} resources")
  @org.junit.jupiter.params.provider.ValueSource(ints = {2, 16, 17, 40})
  void firstOfManyShieldedCloseFailuresSurvivesTheCancelledTaskExit(int resources) {
    TaskGroup g = TaskGroup.named("many-closes");
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } finally {
                              IOException first = null;
                              for (int i = 0; i < resources; i++) {
                                int n = i;
                                try {
                                  CancelScope.shielded()
                                      .run(
                                          () -> {
                                            throw new IOException("close " + n + " failed");
                                          });
                                } catch (IOException closeFailure) {
                                  if (first == null) {
                                    first = closeFailure;
                                  } else {
                                    first.addSuppressed(closeFailure);
                                  }
                                }
                              }
                              assertThat(Thread.currentThread().isInterrupted())
                                  .as("the cancellation is delivered again after each shield")
                                  .isTrue();
                              throw first;
                            }
                          });
                      started.await();
                      g.cancel();
                    }));
    assertThat(e).as("run reports the close failures").isNotNull();
    assertThat(e.failures()).hasSize(1);
    assertThat(e.failures().get(0)).hasMessage("close 0 failed");
    assertThat(e.failures().get(0).getSuppressed()).hasSize(resources - 1);
  }

  // ---- invokeAll, propagators, handlers: failures raised while being cancelled -------------

  /**
   * invokeAll runs its tasks in a group, whose failures come first when outcomes coincide
   * (TaskGroup, "When outcomes coincide"): a task failing in its cleanup after the caller's scope
   * was cancelled is reported in the TaskGroupException, not dropped for the InterruptedException.
   * Closest: CPython test_asyncio gather / TaskGroup (an error raised while cancelling is kept).
   */
  @RepeatedTest(20)
  void invokeAllFailureRaisedWhileTheCallerIsCancelledIsReported() {
    RuntimeException boom = new IllegalStateException("cleanup failed");
    CancelScope caller = CancelScope.create();
    CountDownLatch cleanupReady = new CountDownLatch(1);
    Throwable e =
        catchThrowable(
            () ->
                caller.run(
                    () ->
                        TaskGroup.invokeAll(
                            java.util.List.<java.util.concurrent.Callable<Object>>of(
                                () -> {
                                  cleanupReady.countDown();
                                  try {
                                    Thread.sleep(60_000);
                                  } finally {
                                    throw boom;
                                  }
                                },
                                () -> {
                                  cleanupReady.await();
                                  caller.cancel();
                                  return null;
                                }))));
    assertThat(e).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) e).failures()).containsExactly(boom);
  }

  /**
   * ContextPropagator: "an exception thrown by the returned Runnable outside work.run() is a
   * failure of the group", also when the work itself ended by the group's cancellation.
   */
  @RepeatedTest(20)
  void propagatorFailureAfterACancelledWorkIsReported() {
    RuntimeException boom = new IllegalStateException("propagator's restore failed");
    ContextPropagator failingRestore =
        work ->
            () -> {
              work.run();
              throw boom;
            };
    TaskGroup g = TaskGroup.builder().name("propagator").contextPropagator(failingRestore).build();
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      g.fork(Fixtures.blockedUntilCancelled(started, new Fixtures.Finished()));
                      started.await();
                      g.cancel();
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(boom);
  }

  /**
   * onFailure: "an exception it throws is a failure of the group", also for a failure raised while
   * the group is being cancelled (FailurePolicy: "no failure is ever lost").
   */
  @RepeatedTest(20)
  void handlerThrowingForAFailureRaisedWhileCancelledIsReported() {
    RuntimeException boom = new IllegalStateException("cleanup failed");
    RuntimeException handlerBoom = new IllegalStateException("handler failed");
    java.util.List<Throwable> handled =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    TaskGroup g =
        TaskGroup.builder()
            .name("handler")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  throw handlerBoom;
                })
            .build();
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
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
    assertThat(handled).containsExactly(boom);
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(handlerBoom);
  }

  // ---- cause cycles, huge suppressed lists -------------------------------------------------

  /**
   * A failure whose causes form a cycle (legal: initCause only refuses the exception itself),
   * thrown by a cancelled child: no cancellation type in the chain, so a failure, reported once,
   * and the judgment's walk of the chain ends.
   */
  @RepeatedTest(5)
  void failureWithACauseCycleInACancelledChildIsReported() {
    RuntimeException a = new IllegalStateException("a");
    RuntimeException b = new IllegalArgumentException("b", a);
    a.initCause(b);
    TaskGroup g = TaskGroup.named("cause-cycle");
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } finally {
                              throw a;
                            }
                          });
                      started.await();
                      g.cancel();
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(a);
  }

  /**
   * Tens of thousands of failures riding on one cancellation (a close() loop in a cancelled scope
   * collecting every failure on the InterruptedException): all surface, and quickly (the scope's
   * exit must stay linear in their number).
   */
  @Test
  @Timeout(value = 10, unit = TimeUnit.SECONDS)
  void hugeRidingListSurfacesWhole() {
    int n = 50_000;
    CancelScope scope = CancelScope.create();
    Throwable e =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      InterruptedException cancellation = new InterruptedException("cancelled");
                      for (int i = 0; i < n; i++) {
                        cancellation.addSuppressed(new IllegalStateException("close " + i));
                      }
                      throw cancellation;
                    }));
    assertThat(e).isInstanceOf(IllegalStateException.class).hasMessage("close 0");
    assertThat(e.getSuppressed()).hasSize(n - 1);
  }

  // ---- scopes in a propagator's code after the work -------------------------------------

  /**
   * ContextPropagator: code after {@code work.run()} ("closing a tracing scope") runs on the
   * child's thread before it leaves its group. Cleanup there that runs in a shielded scope
   * (CancelScope: "cleanup whose I/O failures matter runs in a shielded scope"), a nested group
   * among it, must work like anywhere else: its failure passes through unchanged, not a
   * NullPointerException of the library's. Found by LostFailureChaosTest (IO_FROM_SHIELD in
   * PROPAGATOR_AFTER_WORK).
   */
  @org.junit.jupiter.params.ParameterizedTest(name = "work cancelled: {0}")
  @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
  void scopesInAPropagatorsCodeAfterTheWorkBehave(boolean cancelled) {
    java.util.List<Throwable> seen =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    IOException flushFailed = new IOException("flush failed");
    RuntimeException nestedFailed = new IllegalStateException("nested cleanup failed");
    ContextPropagator cleanupAfter =
        work ->
            () -> {
              work.run();
              try {
                CancelScope.shielded()
                    .run(
                        () -> {
                          throw flushFailed;
                        });
              } catch (Throwable t) {
                seen.add(t);
              }
              try {
                // Shielded: the code after the work is still the child's, which a cancellation of
                // the group reaches (ContextPropagator), so cleanup that must run goes in a shield.
                CancelScope.shielded()
                    .run(
                        () -> {
                          TaskGroup nested = TaskGroup.named("cleanup");
                          nested.run(
                              () ->
                                  nested.fork(
                                      () -> {
                                        throw nestedFailed;
                                      }));
                        });
              } catch (Throwable t) {
                seen.add(t);
              }
            };
    TaskGroup g = TaskGroup.builder().name("after-work").contextPropagator(cleanupAfter).build();
    CountDownLatch started = new CountDownLatch(1);
    Throwable e =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      if (cancelled) {
                        g.fork(Fixtures.blockedUntilCancelled(started, new Fixtures.Finished()));
                        started.await();
                        g.cancel();
                      } else {
                        g.fork(() -> {}); // the work returns; the propagator's code goes on
                      }
                    }));
    assertThat(e).as("nothing escaped the propagator").isNull();
    assertThat(seen).hasSize(2);
    assertThat(seen.get(0)).isSameAs(flushFailed);
    assertThat(seen.get(1)).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) seen.get(1)).failures()).containsExactly(nestedFailed);
  }

  /** How the body reads a failed child's failure object and rethrows it. */
  enum Reader {
    /** COLLECT, no handler: the failures are kept for run's exception. */
    COLLECT,
    /** CANCEL_ALL: the read is in a shielded scope, since the child's failure cancels the body. */
    CANCEL_ALL_SHIELDED,
    /** COLLECT with an onFailure handler: every failure is handed to it, once. */
    COLLECT_HANDLER
  }

  /**
   * The body rethrows a child's failure object itself ({@code e.getCause()} of {@code get()}) from
   * a try-with-resources whose close() fails: the object is reported once, and the close() failure
   * suppressed on it on the way is a failure of its own. (It was dropped with the duplicate: only a
   * wrapper's suppressed exceptions counted.) One exception suppressed on the failure in the child
   * itself is part of that failure, not a new one.
   */
  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.EnumSource(Reader.class)
  void aCloseFailureSuppressedOnARethrownFailureObjectIsAFailureOfItsOwn(Reader reader)
      throws Exception {
    IllegalStateException childFailure = new IllegalStateException("child failed");
    IOException partOfIt = new IOException("the child's own close failed");
    childFailure.addSuppressed(partOfIt);
    IOException closeFailure = new IOException("close around the rethrow failed");
    java.util.List<Throwable> handed = new java.util.concurrent.CopyOnWriteArrayList<>();
    TaskGroup.Builder b = TaskGroup.builder();
    if (reader != Reader.CANCEL_ALL_SHIELDED) {
      b.failurePolicy(FailurePolicy.COLLECT);
    }
    if (reader == Reader.COLLECT_HANDLER) {
      b.onFailure(handed::add);
    }
    TaskGroup g = b.build();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Object> child =
                          g.fork(
                              () -> {
                                throw childFailure;
                              });
                      CancelScope.Block<Exception> read =
                          () -> {
                            try (AutoCloseable r =
                                () -> {
                                  throw closeFailure;
                                }) {
                              try {
                                child.get();
                              } catch (ExecutionException e) {
                                throw (Exception) e.getCause(); // through the close()
                              }
                            }
                          };
                      if (reader == Reader.CANCEL_ALL_SHIELDED) {
                        CancelScope.shielded().run(read);
                      } else {
                        read.run();
                      }
                    }));
    if (reader == Reader.COLLECT_HANDLER) {
      assertThat(thrown).isNull();
      // (the handler is called for each throw of a failure, as for one shared by two children)
      assertThat(handed).startsWith(childFailure).containsOnlyOnce(closeFailure);
    } else {
      assertThat(((TaskGroupException) thrown).failures())
          .containsExactly(childFailure, closeFailure);
    }
  }
}
