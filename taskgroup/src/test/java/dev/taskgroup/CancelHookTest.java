package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code CancelScope.onCancel} runs its action once, on another thread, soon after the scope it was
 * registered for becomes effectively cancelled while the registration is open; never after close;
 * failures go to the group or to close(); memory stays flat.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class CancelHookTest {
  private static final long PROMPT_MS = 1_000;

  /** How long "never runs" is watched for. */
  private static final Duration QUIET = Duration.ofMillis(100);

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  /** An action that records how often it ran, on which thread, and when. */
  private static final class Probe implements Body {
    final AtomicInteger runs = new AtomicInteger();
    final AtomicReference<Thread> ranOn = new AtomicReference<>();
    final AtomicLong ranAt = new AtomicLong();
    final CountDownLatch ran = new CountDownLatch(1);

    @Override
    public void run() {
      ranOn.compareAndSet(null, Thread.currentThread());
      ranAt.compareAndSet(0L, System.nanoTime());
      runs.incrementAndGet();
      ran.countDown();
    }

    /**
     * Waits until the action ran, at most {@code max}. Not interruptible: it is called from the
     * cancelled thread itself, whose interrupt must not cut the wait short.
     */
    boolean awaitRun(Duration max) {
      long until = System.nanoTime() + max.toNanos();
      while (ran.getCount() != 0L && System.nanoTime() - until < 0L) {
        Thread.yield();
      }
      return ran.getCount() == 0L;
    }

    /**
     * Watches for {@link #QUIET}: true if the action did not run. Not interruptible: it is called
     * from cancelled threads, to which re-delivery keeps sending interrupts.
     */
    boolean staysQuiet() {
      long until = System.nanoTime() + QUIET.toNanos();
      while (System.nanoTime() - until < 0L) {
        if (ran.getCount() == 0L) {
          return false;
        }
        Thread.yield();
      }
      return ran.getCount() != 0L;
    }
  }

  // ---- when it runs --------------------------------------------------------------------------

  @Test
  void runsOnceOnAnotherThreadSoonAfterItsScopeIsCancelledFromAnotherThread() throws Exception {
    CancelScope scope = CancelScope.create();
    Probe action = new Probe();
    CountDownLatch registered = new CountDownLatch(1);
    long[] cancelledAt = new long[1];
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    registered.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  cancelledAt[0] = System.nanoTime();
                  scope.cancel();
                  scope.cancel("again: still once");
                });
    Thread me = Thread.currentThread();
    scope.run(
        () -> {
          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
            registered.countDown();
            assertThat(action.awaitRun(Duration.ofSeconds(5))).isTrue();
            Thread.sleep(10_000); // cancelled as well
          }
        });
    canceller.join();
    long ms = Probes.millis(action.ranAt.get() - cancelledAt[0]);
    System.out.printf("onCancel action ran %d ms after cancel(), on %s%n", ms, action.ranOn.get());
    assertThat(action.runs).hasValue(1);
    assertThat(action.ranOn.get()).isNotSameAs(me);
    assertThat(ms).isLessThan(PROMPT_MS);
    assertThat(scope.cancelCaught()).isTrue();
  }

  @Test
  void cancelFromTheScopesOwnThreadRunsTheActionOnAnotherThread() throws Exception {
    CancelScope scope = CancelScope.create();
    Probe action = new Probe();
    Thread me = Thread.currentThread();
    scope.run(
        () -> {
          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
            scope.cancel();
            assertThat(action.awaitRun(Duration.ofSeconds(5))).isTrue();
          }
        });
    assertThat(action.runs).hasValue(1);
    assertThat(action.ranOn.get()).isNotSameAs(me);
  }

  @Test
  void alreadyCancelledScopeRunsTheActionBeforeOnCancelReturns() throws Exception {
    CancelScope scope = CancelScope.create();
    Probe action = new Probe();
    Thread me = Thread.currentThread();
    AtomicInteger runsWhenReturned = new AtomicInteger(-1);
    scope.run(
        () -> {
          scope.cancel();
          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
            runsWhenReturned.set(action.runs.get());
          }
        });
    assertThat(runsWhenReturned).hasValue(1);
    assertThat(action.runs).hasValue(1);
    assertThat(action.ranOn.get()).isNotSameAs(me);
  }

  @Test
  void deadlineOfTheScopeRunsTheAction() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(20));
    Probe action = new Probe();
    scope.run(
        () -> {
          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
            Thread.sleep(10_000);
          }
        });
    assertThat(action.runs).hasValue(1);
    assertThat(scope.cancelCaught()).isTrue();
  }

  @Test
  void closedRegistrationNeverRuns() throws Exception {
    CancelScope scope = CancelScope.create();
    Probe action = new Probe();
    scope.run(
        () -> {
          CancelScope.onCancel(action).close();
          scope.cancel();
          Thread.interrupted();
          assertThat(action.staysQuiet()).isTrue();
        });
    assertThat(action.runs).hasValue(0);
  }

  @RepeatedTest(30)
  void afterCloseReturnsTheActionDoesNotStartEvenWhenCancelRacesWithIt() throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicBoolean closeReturned = new AtomicBoolean();
    AtomicBoolean startedAfterClose = new AtomicBoolean();
    AtomicInteger runs = new AtomicInteger();
    CountDownLatch go = new CountDownLatch(1);
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    go.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  scope.cancel();
                });
    scope.run(
        () -> {
          CancelScope.Registration r =
              CancelScope.onCancel(
                  () -> {
                    if (closeReturned.get()) {
                      startedAfterClose.set(true);
                    }
                    runs.incrementAndGet();
                  });
          go.countDown();
          r.close();
          closeReturned.set(true);
          canceller.join();
          Thread.interrupted();
        });
    Thread.sleep(5); // an action started late would have run by now
    assertThat(startedAfterClose).isFalse();
    assertThat(runs.get()).isBetween(0, 1);
  }

  // ---- which scope -------------------------------------------------------------------------

  @Test
  void cancellingAScopeEnteredLaterDoesNotTriggerIt() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    Probe action = new Probe();
    outer.run(
        () -> {
          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
            inner.run(
                () -> {
                  inner.cancel();
                  Thread.sleep(10_000);
                });
            assertThat(action.staysQuiet()).isTrue();
          }
        });
    assertThat(inner.cancelCaught()).isTrue();
    assertThat(action.runs).hasValue(0);
  }

  @Test
  void cancellingAScopeEnteredLaterThatIsStillRunningDoesNotTriggerIt() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    Probe action = new Probe();
    AtomicBoolean quietWhileInnerCancelled = new AtomicBoolean();
    outer.run(
        () -> {
          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
            inner.run(
                () -> {
                  inner.cancel();
                  Thread.interrupted();
                  quietWhileInnerCancelled.set(action.staysQuiet());
                });
          }
        });
    assertThat(quietWhileInnerCancelled).isTrue();
    assertThat(action.runs).hasValue(0);
  }

  @Test
  void cancellingAScopeAboveInTheSameThreadTriggersIt() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    Probe action = new Probe();
    outer.run(
        () ->
            inner.run(
                () -> {
                  try (CancelScope.Registration r = CancelScope.onCancel(action)) {
                    outer.cancel();
                    assertThat(action.awaitRun(Duration.ofSeconds(5))).isTrue();
                  }
                }));
    assertThat(action.runs).hasValue(1);
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancellingTheEnclosingGroupTriggersAHookInAChildsScope(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    Probe action = new Probe();
    CountDownLatch registered = new CountDownLatch(1);
    long[] cancelledAt = new long[1];
    group.run(
        () -> {
          group.fork(
              () -> {
                CancelScope.create()
                    .run(
                        () -> {
                          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
                            registered.countDown();
                            Thread.sleep(60_000);
                          }
                        });
              });
          registered.await();
          cancelledAt[0] = System.nanoTime();
          group.cancel();
        });
    assertThat(action.runs).hasValue(1);
    System.out.printf(
        "hook in a %s child's scope ran %d ms after the group's cancel%n",
        kind, Probes.millis(action.ranAt.get() - cancelledAt[0]));
    assertThat(Probes.millis(action.ranAt.get() - cancelledAt[0])).isLessThan(PROMPT_MS);
    threads.assertAllDone();
  }

  @Test
  void aShieldBetweenKeepsACancelAboveFromTriggeringItUntilUnshielded() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope shield = CancelScope.shielded();
    CancelScope inner = CancelScope.create();
    Probe action = new Probe();
    AtomicBoolean quietWhileShielded = new AtomicBoolean();
    outer.run(
        () ->
            shield.run(
                () ->
                    inner.run(
                        () -> {
                          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
                            outer.cancel();
                            quietWhileShielded.set(action.staysQuiet());
                            shield.setShielded(false); // now effectively cancelled
                            assertThat(action.awaitRun(Duration.ofSeconds(5))).isTrue();
                            Thread.sleep(10_000);
                          }
                        })));
    assertThat(quietWhileShielded).isTrue();
    assertThat(action.runs).hasValue(1);
    assertThat(outer.cancelCaught()).isTrue();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void aShieldedScopeInAChildKeepsTheGroupsCancelFromTriggeringIt(ThreadKind kind)
      throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    Probe action = new Probe();
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch checked = new CountDownLatch(1);
    AtomicBoolean quiet = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () -> {
                CancelScope.shielded()
                    .run(
                        () -> {
                          try (CancelScope.Registration r = CancelScope.onCancel(action)) {
                            registered.countDown();
                            checked.await();
                          }
                        });
              });
          registered.await();
          try {
            group.cancel();
            quiet.set(action.staysQuiet());
          } finally {
            checked.countDown();
          }
        });
    assertThat(quiet).isTrue();
    assertThat(action.runs).hasValue(0);
    threads.assertAllDone();
  }

  // ---- failures ------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void actionThatThrowsIsAFailureOfTheInnermostEnclosingGroup(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = Fixtures.group("inner", threads);
    IllegalStateException boom = new IllegalStateException("hook failed");
    CountDownLatch registered = new CountDownLatch(1);
    AtomicReference<Throwable> fromInner = new AtomicReference<>();
    outer.run(
        () -> {
          try {
            inner.run(
                () -> {
                  inner.fork(
                      () -> {
                        try (CancelScope.Registration r =
                            CancelScope.onCancel(
                                () -> {
                                  throw boom;
                                })) {
                          registered.countDown();
                          Thread.sleep(60_000);
                        }
                      });
                  registered.await();
                  inner.cancel();
                });
          } catch (TaskGroupException e) {
            fromInner.set(e);
          }
        });
    assertThat(fromInner.get()).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) fromInner.get()).failures()).containsExactly(boom);
    assertThat(outer.cancelCalled()).isFalse();
    threads.assertAllDone();
  }

  @Test
  void actionThatThrowsWithNoGroupAroundIsThrownByClose() throws Exception {
    CancelScope scope = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("hook failed");
    CountDownLatch ran = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      try (CancelScope.Registration r =
                          CancelScope.onCancel(
                              () -> {
                                ran.countDown();
                                throw boom;
                              })) {
                        scope.cancel();
                        Probes.awaitTrue(
                            "the action ran", Duration.ofSeconds(5), () -> ran.getCount() == 0L);
                        Thread.interrupted(); // swallowed, so the body leaves normally
                      }
                    }));
    assertThat(thrown).isSameAs(boom);
  }

  @Test
  void actionThatThrowsAtOnceForAnAlreadyCancelledScopeIsThrownByClose() throws Exception {
    CancelScope scope = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("hook failed");
    AtomicBoolean onCancelReturned = new AtomicBoolean();
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      CancelScope.Registration r =
                          CancelScope.onCancel(
                              () -> {
                                throw boom;
                              });
                      onCancelReturned.set(true);
                      r.close();
                    }));
    assertThat(onCancelReturned).as("the failure is not thrown by onCancel").isTrue();
    assertThat(thrown).isSameAs(boom);
  }

  /**
   * An action's own failure of a cancellation type (one that waits for what the cancellation
   * cancelled gets a {@code CancellationException}, or an {@code InterruptedException}), with no
   * group around: it is the action's failure, not the thread's cancellation, and the cancelled
   * scope that {@code close()} throws it into must not absorb it. Before, all three forms lost it:
   * {@code run} returned normally.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cancellationTypedFailures")
  @Timeout(20)
  void anActionsOwnFailureOfACancellationTypeIsNotAbsorbedByTheCancelledScope(Throwable boom) {
    // Closed by try-with-resources: it rides on the sleep's InterruptedException, the cancellation.
    CancelScope first = CancelScope.create();
    Throwable thrown =
        catchThrowable(
            () ->
                first.run(
                    () -> {
                      try (CancelScope.Registration r =
                          CancelScope.onCancel(() -> throwAsUnchecked(boom))) {
                        first.cancel();
                        Thread.sleep(60_000);
                      }
                    }));
    assertThat(reached(thrown, boom)).as("closed by try-with-resources: %s", thrown).isTrue();

    // Closed by hand, after the cancellation was caught.
    CancelScope second = CancelScope.create();
    thrown =
        catchThrowable(
            () ->
                second.run(
                    () -> {
                      CancelScope.Registration r =
                          CancelScope.onCancel(() -> throwAsUnchecked(boom));
                      second.cancel();
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException cancelled) {
                        r.close();
                      }
                    }));
    assertThat(thrown).as("closed by hand").isSameAs(boom);

    // Left open in an inner scope, the outer one cancelled: the inner's exit throws it.
    CancelScope outer = CancelScope.create();
    thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        CancelScope.create()
                            .run(
                                () -> {
                                  CancelScope.onCancel(() -> throwAsUnchecked(boom));
                                  outer.cancel();
                                  Thread.sleep(60_000);
                                })));
    assertThat(reached(thrown, boom)).as("left open: %s", thrown).isTrue();
  }

  static java.util.stream.Stream<Throwable> cancellationTypedFailures() {
    return java.util.stream.Stream.of(
        new InterruptedException("the action's own"),
        new java.util.concurrent.CancellationException("the action's own"));
  }

  /** Whether {@code boom} is {@code thrown} or rides on it as a suppressed exception. */
  private static boolean reached(Throwable thrown, Throwable boom) {
    return thrown == boom
        || (thrown != null && java.util.Arrays.asList(thrown.getSuppressed()).contains(boom));
  }

  // ---- registrations left open, with no group around: the scope's exit closes them ----------

  /** An action that records its end, then throws {@code boom}. */
  private static Body failing(AtomicBoolean ended, RuntimeException boom) {
    return () -> {
      ended.set(true);
      throw boom;
    };
  }

  @RepeatedTest(5)
  void anActionLeftOpenThatThrowsWithNoGroupAroundIsThrownByTheScopesExitAfterItEnded() {
    CancelScope scope = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("hook failed");
    AtomicBoolean ended = new AtomicBoolean();
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      CancelScope.onCancel(failing(ended, boom)); // never closed
                      scope.cancel();
                      Thread.sleep(60_000);
                    }));
    assertThat(thrown).as("what the action threw, not lost").isSameAs(boom);
    assertThat(ended).as("the action ended before run returned").isTrue();
    assertThat(scope.cancelCaught()).isFalse();
  }

  /**
   * Runs a scope with no group around whose body leaves open a registration whose action throws
   * {@code boom}, cancels the scope, waits for the action to have run, then throws {@code
   * bodyThrows}; returns what the scope's run threw.
   */
  private static Throwable leftOpenThenBodyThrows(RuntimeException boom, Throwable bodyThrows) {
    CancelScope scope = CancelScope.create();
    AtomicBoolean ended = new AtomicBoolean();
    return catchThrowable(
        () ->
            scope.run(
                () -> {
                  CancelScope.onCancel(failing(ended, boom));
                  scope.cancel();
                  Probes.awaitTrue("the action ran", Duration.ofSeconds(5), ended::get);
                  CancelHookTest.<RuntimeException>throwAsUnchecked(bodyThrows);
                }));
  }

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> void throwAsUnchecked(Throwable t) throws X {
    throw (X) t;
  }

  @RepeatedTest(5)
  void anActionLeftOpenThatThrowsRidesOnAnErrorOfTheBody() {
    IllegalStateException boom = new IllegalStateException("hook failed");
    AssertionError bodyFailed = new AssertionError("the body's");
    Throwable thrown = leftOpenThenBodyThrows(boom, bodyFailed);
    assertThat(thrown).isSameAs(bodyFailed);
    assertThat(thrown.getSuppressed()).containsExactly(boom);
  }

  @RepeatedTest(3)
  void anActionLeftOpenThatThrowsIsNotLostWhenTheBodysErrorRefusesSuppressedExceptions() {
    IllegalStateException boom = new IllegalStateException("hook failed");
    Error bodyFailed = new Error("refuses suppression", null, false, false) {};
    Throwable thrown = leftOpenThenBodyThrows(boom, bodyFailed);
    assertThat(thrown).isSameAs(boom);
    assertThat(thrown.getSuppressed()).containsExactly(bodyFailed);
  }

  @RepeatedTest(5)
  void anActionLeftOpenThatThrowsIsThrownInsteadOfTheExceptionThatIsItsEffect() {
    IllegalStateException boom = new IllegalStateException("hook failed");
    // An Exception thrown while cancelled, once the action started, is its effect.
    Throwable thrown = leftOpenThenBodyThrows(boom, new java.io.IOException("socket closed"));
    assertThat(thrown).isSameAs(boom);
  }

  @Test
  void anActionLeftOpenInAnAlreadyCancelledScopeIsThrownByTheExitAndCloseLaterThrowsNothing() {
    CancelScope scope = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("hook failed");
    AtomicBoolean ended = new AtomicBoolean();
    AtomicReference<CancelScope.Registration> kept = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      kept.set(CancelScope.onCancel(failing(ended, boom)));
                    }));
    assertThat(thrown).isSameAs(boom);
    kept.get().close(); // thrown once, by the exit
  }

  @RepeatedTest(5)
  void aFailedActionLeftOpenIsNotDroppedWhenTheBodyRegistersAnother() {
    CancelScope scope = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("hook failed");
    AtomicReference<Thread> actionThread = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      CancelScope.onCancel(
                          () -> {
                            actionThread.set(Thread.currentThread());
                            throw boom;
                          });
                      scope.cancel();
                      Probes.awaitTrue(
                          "the action's thread ended",
                          Duration.ofSeconds(5),
                          () -> actionThread.get() != null && !actionThread.get().isAlive());
                      Thread.interrupted(); // swallowed
                      // Registering again unlinks the registrations that are spent.
                      try (CancelScope.Registration r = CancelScope.onCancel(() -> {})) {
                        assertThat(r).isNotNull();
                      }
                    }));
    assertThat(thrown).isSameAs(boom);
  }

  @RepeatedTest(5)
  void anActionLeftOpenInAScopeCancelledFromAboveIsThrownByTheInnerScopesExit() {
    CancelScope outer = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("hook failed");
    AtomicBoolean ended = new AtomicBoolean();
    AtomicReference<Throwable> innerThrew = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      try {
                        CancelScope.create()
                            .run(
                                () -> {
                                  CancelScope.onCancel(failing(ended, boom));
                                  outer.cancel();
                                  Thread.sleep(60_000);
                                });
                      } catch (Throwable t) {
                        innerThrew.set(t);
                        throw t;
                      }
                    }));
    assertThat(innerThrew.get()).isSameAs(boom);
    assertThat(thrown).isSameAs(boom);
  }

  @Test
  void groupWaitsForAHookActionBeforeRunReturns() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicBoolean actionDone = new AtomicBoolean();
    CountDownLatch registered = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              () -> {
                try (CancelScope.Registration r =
                    CancelScope.onCancel(
                        () -> {
                          try {
                            Thread.sleep(100); // the slow action under test
                          } catch (InterruptedException e) {
                            throw new IllegalStateException("hook interrupted", e);
                          }
                          actionDone.set(true);
                        })) {
                  registered.countDown();
                  Fixtures.parkUntilInterrupted();
                }
              });
          registered.await();
          group.cancel();
        });
    assertThat(actionDone).as("the hook's action ended before run returned").isTrue();
  }

  // ---- the real case: a read an interrupt cannot end ----------------------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void hookClosingTheSocketEndsABlockedReadAndTheGroupExitsNormally(ThreadKind kind)
      throws Exception {
    for (int round = 0; round < 10; round++) {
      hookClosesSocketRound(kind, round);
    }
  }

  private static void hookClosesSocketRound(ThreadKind kind, int round) throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
        Socket peer = server.accept()) { // the peer never writes
      Tracking threads = new Tracking(kind);
      TaskGroup group = Fixtures.group("g", threads);
      CountDownLatch registered = new CountDownLatch(1);
      AtomicReference<Throwable> readThrew = new AtomicReference<>();
      AtomicReference<Task<Integer>> task = new AtomicReference<>();
      AtomicReference<Thread> reader = new AtomicReference<>();
      long[] cancelledAt = new long[1];
      long[] endedAt = new long[1];
      try {
        group.run(
            () -> {
              task.set(
                  group.fork(
                      () -> {
                        reader.set(Thread.currentThread());
                        InputStream in = client.getInputStream();
                        try (CancelScope.Registration r =
                            CancelScope.onCancel(() -> close(client))) {
                          registered.countDown();
                          return in.read();
                        } catch (IOException e) {
                          readThrew.set(e);
                          throw e;
                        } finally {
                          endedAt[0] = System.nanoTime();
                        }
                      }));
              registered.await();
              Probes.awaitInSocketRead(reader.get(), Duration.ofSeconds(5));
              cancelledAt[0] = System.nanoTime();
              group.cancel();
            });
      } catch (TaskGroupException e) {
        throw new AssertionError(
            "round " + round + ": the cancelled read was reported as a failure of the group", e);
      }
      System.out.printf(
          "%s child's socket read (round %d) ended %d ms after cancel with %s%n",
          kind, round, Probes.millis(endedAt[0] - cancelledAt[0]), readThrew.get());
      assertThat(readThrew.get()).isInstanceOf(IOException.class);
      assertThat(task.get().state()).as("round %d", round).isEqualTo(Future.State.CANCELLED);
      assertThat(group.cancelCalled()).isTrue();
      assertThat(group.cancelCaught()).isTrue();
      assertThat(Probes.millis(endedAt[0] - cancelledAt[0])).isLessThan(PROMPT_MS);
      threads.assertAllDone();
    }
  }

  private static void close(Socket s) {
    try {
      s.close();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  // ---- memory -------------------------------------------------------------------------------

  @Test
  void registeringAndClosingManyHooksInOneScopeKeepsMemoryFlat() throws Exception {
    int hooks = 200_000;
    CancelScope scope = CancelScope.create();
    long[] heap = new long[2];
    long[] elapsed = new long[1];
    Probe neverRuns = new Probe();
    scope.run(
        () -> {
          try (CancelScope.Registration longLived = CancelScope.onCancel(neverRuns)) {
            for (int i = 0; i < 1_000; i++) { // warm up
              CancelScope.onCancel(neverRuns).close();
            }
            heap[0] = Probes.usedHeapAfterGc();
            long t0 = System.nanoTime();
            for (int i = 0; i < hooks; i++) {
              final int n = i;
              try (CancelScope.Registration r =
                  CancelScope.onCancel(() -> neverRuns.ranAt.set(n))) {
                if (n % 2 == 0) {
                  CancelScope.checkpoint();
                }
              }
            }
            elapsed[0] = System.nanoTime() - t0;
            heap[1] = Probes.usedHeapAfterGc();
          }
        });
    System.out.printf(
        "%d onCancel register/close in one scope: %d ms (%.2f us each); used heap after GC"
            + " %.1f MiB before, %.1f MiB after, growth %.2f MiB%n",
        hooks,
        Probes.millis(elapsed[0]),
        elapsed[0] / 1_000.0 / hooks,
        Probes.mib(heap[0]),
        Probes.mib(heap[1]),
        Probes.mib(heap[1] - heap[0]));
    assertThat(neverRuns.runs).hasValue(0);
    assertThat(heap[1] - heap[0]).as("heap growth in bytes").isLessThan(8L * 1024 * 1024);
  }

  /**
   * The action's thread is started by whichever thread delivers the cancellation; it inherits none
   * of that thread's inheritable thread locals (they would be one request's values in another's
   * action), and it runs with the registrant's context class loader, not the canceller's (an action
   * that loads a driver class of a web application finds it), as the javadoc of onCancel says.
   */
  @RepeatedTest(5)
  void anActionGetsNoInheritableThreadLocalOfTheCancellerAndTheRegistrantsClassLoader()
      throws Exception {
    InheritableThreadLocal<String> request = new InheritableThreadLocal<>();
    ClassLoader registrants = new java.net.URLClassLoader(new java.net.URL[0], null);
    ClassLoader cancellers = new java.net.URLClassLoader(new java.net.URL[0], null);
    AtomicReference<String> seenRequest = new AtomicReference<>("action did not run");
    AtomicReference<ClassLoader> seenLoader = new AtomicReference<>();
    CountDownLatch registered = new CountDownLatch(1);
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          g.fork(
              () -> {
                Thread.currentThread().setContextClassLoader(registrants);
                Body action =
                    () -> {
                      seenRequest.set(request.get());
                      seenLoader.set(Thread.currentThread().getContextClassLoader());
                    };
                try (var hook = CancelScope.onCancel(action)) {
                  registered.countDown();
                  Thread.sleep(60_000);
                }
                return null;
              });
          registered.await();
          Thread canceller =
              Thread.ofPlatform()
                  .unstarted(
                      () -> {
                        request.set("the canceller's request");
                        g.cancel();
                      });
          canceller.setContextClassLoader(cancellers);
          canceller.start();
          canceller.join();
        });
    assertThat(seenRequest.get()).isNull();
    assertThat(seenLoader.get()).isSameAs(registrants);
  }

  /**
   * Many registrations open at once in one scope (a server keeping one per live connection) cost
   * each the same: registering checked every one already open, and 100 000 took minutes. The
   * registrations are then closed in a random order, most of them; the scope's cancel runs exactly
   * the ones left open, once each.
   */
  @RepeatedTest(2)
  void manyOpenRegistrationsCostLinearTimeAndTheOpenOnesStillRun() throws Exception {
    int n = 100_000;
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    java.util.Random random = new java.util.Random(seed);
    AtomicInteger[] ran = new AtomicInteger[n];
    CancelScope scope = CancelScope.create();
    long[] tookNanos = new long[1];
    boolean[] open = new boolean[n];
    scope.run(
        () -> {
          CancelScope.Registration[] registrations = new CancelScope.Registration[n];
          long start = System.nanoTime();
          for (int i = 0; i < n; i++) {
            AtomicInteger count = ran[i] = new AtomicInteger();
            registrations[i] = CancelScope.onCancel(count::incrementAndGet);
          }
          tookNanos[0] = System.nanoTime() - start;
          for (int i = 0; i < n; i++) {
            open[i] = random.nextInt(100) == 0; // about 1 000 left open
            if (!open[i]) {
              registrations[i].close();
            }
            if (i % 1_000 == 999) { // pushes in between prune what was closed
              CancelScope.onCancel(() -> {}).close();
            }
          }
          scope.cancel();
        });
    System.out.printf("%,d registrations in %d ms%n", n, tookNanos[0] / 1_000_000);
    assertThat(Duration.ofNanos(tookNanos[0])).isLessThan(Duration.ofSeconds(10));
    for (int i = 0; i < n; i++) {
      assertThat(ran[i].get())
          .as("registration %d (open: %s), seed %d", i, open[i], seed)
          .isEqualTo(open[i] ? 1 : 0);
    }
  }
}
