package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An adversarial sweep of {@link CancelScope#onCancel} and {@link CancelScope#closeOnCancel} with
 * real resources (H2 statements, JDK sockets, a {@code sleep} process): registration racing a
 * group's cancel, actions that throw, block, cancel again, register, fork or close their own
 * registration, registrations kept after their scope, the same resource twice, ten thousand
 * registrations fired at once, and what counts as the cancellation once an action has started. Each
 * test checks what the javadoc of {@code CancelScope} / {@code Registration} promises: the action
 * runs at most once, never after its registration's {@code close()} returned, never while nothing
 * is cancelled, and every failure surfaces exactly once. The closest upstream analogues are Trio's
 * {@code test_cancel_scope_*} / AnyIO's {@code test_cancel_*} and JDK {@code Statement.cancel} /
 * {@code Socket.close} contracts (from memory: closest).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class HookSweepTest {

  // ---- H2: the cancelled statement's SQLException is the cancellation ------------------------

  /**
   * The javadoc example: {@code onCancel(statement::cancel)} around a long H2 query; the group's
   * cancel ends the query and the SQLException ends the child as cancelled (run returns normally,
   * cancelCaught true). Then, still in the cancelled scope, an unrelated {@code Exception} from a
   * {@code finally} is also absorbed: the javadoc says any Exception thrown after the action
   * started while the thread stays cancelled counts as the cancellation.
   */
  @RepeatedTest(3)
  void h2QueryCancelledByHookAndALaterUnrelatedExceptionBothCountAsTheCancellation()
      throws Exception {
    try (Connection observer = H2.memory("hooksweep-h2a")) {
      TaskGroup group = TaskGroup.named("h2");
      AtomicReference<Throwable> queryEnded = new AtomicReference<>();
      AtomicInteger actions = new AtomicInteger();
      group.run(
          () -> {
            group.fork(
                () -> {
                  try (Connection c = H2.memory("hooksweep-h2a");
                      Statement st = c.createStatement()) {
                    try (var hook =
                        CancelScope.onCancel(
                            () -> {
                              actions.incrementAndGet();
                              st.cancel();
                            })) {
                      st.executeQuery(H2.LONG_QUERY);
                    } catch (SQLException e) {
                      queryEnded.set(e);
                      throw e;
                    } finally {
                      if (queryEnded.get() != null) {
                        // cleanup that fails for an unrelated reason, still in the cancelled scope
                        throw new IllegalStateException("unrelated cleanup failure");
                      }
                    }
                  }
                });
            H2.awaitLongQueryRunning(observer);
            group.cancel();
          });
      assertThat(queryEnded.get()).isInstanceOf(SQLException.class);
      assertThat(actions.get()).isEqualTo(1);
      assertThat(group.cancelCaught()).isTrue();
    }
  }

  /**
   * The javadoc limits the rule to {@link Exception}: an {@link Error} thrown after the action
   * started, while the thread stays cancelled, is still a failure of the group.
   */
  @Test
  void anErrorAfterTheActionStartedIsStillAFailure() throws Exception {
    try (Connection observer = H2.memory("hooksweep-h2b")) {
      TaskGroup group = TaskGroup.named("h2-error");
      AssertionError error = new AssertionError("not a cancellation");
      assertThatThrownBy(
              () ->
                  group.run(
                      () -> {
                        group.fork(
                            () -> {
                              try (Connection c = H2.memory("hooksweep-h2b");
                                  Statement st = c.createStatement();
                                  var hook = CancelScope.onCancel(st::cancel)) {
                                st.executeQuery(H2.LONG_QUERY);
                              } catch (SQLException e) {
                                throw error;
                              }
                            });
                        H2.awaitLongQueryRunning(observer);
                        group.cancel();
                      }))
          .isInstanceOfSatisfying(
              TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(error));
    }
  }

  /**
   * The action cancels the H2 statement and then throws: the group fails with the action's
   * exception exactly once, while the child's SQLException (the action's effect) is absorbed as the
   * cancellation, not reported as a second failure.
   */
  @Test
  void anActionThatCancelsTheQueryAndThrowsIsTheOnlyFailure() throws Exception {
    try (Connection observer = H2.memory("hooksweep-h2c")) {
      TaskGroup group = TaskGroup.named("h2-throw");
      IllegalStateException boom = new IllegalStateException("action failed after cancel");
      AtomicReference<Throwable> childSaw = new AtomicReference<>();
      assertThatThrownBy(
              () ->
                  group.run(
                      () -> {
                        group.fork(
                            () -> {
                              try (Connection c = H2.memory("hooksweep-h2c");
                                  Statement st = c.createStatement();
                                  var hook =
                                      CancelScope.onCancel(
                                          () -> {
                                            st.cancel();
                                            throw boom;
                                          })) {
                                st.executeQuery(H2.LONG_QUERY);
                              } catch (SQLException e) {
                                childSaw.set(e);
                                throw e;
                              }
                            });
                        H2.awaitLongQueryRunning(observer);
                        group.cancel();
                      }))
          .isInstanceOfSatisfying(
              TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(boom));
      assertThat(childSaw.get()).isInstanceOf(SQLException.class);
    }
  }

  /**
   * The mark an action leaves on its thread lasts only while the thread stays in that cancellation:
   * after an inner scope whose action fired was left (absorbed), a later cancel of the outer scope,
   * for which no action was registered, does not turn an unrelated exception into the cancellation.
   */
  @RepeatedTest(5)
  void theActionsMarkDoesNotOutliveItsCancellation() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    IllegalStateException effect = new IllegalStateException("effect of the inner action");
    IllegalStateException later = new IllegalStateException("unrelated, later");
    assertThatThrownBy(
            () ->
                outer.run(
                    () -> {
                      inner.run(
                          () -> {
                            try (var reg = CancelScope.onCancel(() -> {})) {
                              inner.cancel();
                              throw effect;
                            }
                          });
                      assertThat(inner.cancelCaught()).isTrue();
                      outer.cancel();
                      throw later;
                    }))
        .isSameAs(later);
    assertThat(outer.cancelCaught()).isFalse();
  }

  /**
   * After the action fired, cleanup that fails inside a shielded scope is a failure (nothing is
   * cancelled inside the shield, and the judgment travels with the exception: CancelScope "What
   * counts as a cancellation"), even though the task outside stays cancelled.
   */
  @Test
  void aCleanupFailureInAShieldAfterTheActionFiredIsAFailureOfTheGroup() throws Exception {
    TaskGroup group = TaskGroup.named("shielded-cleanup");
    IllegalStateException cleanup = new IllegalStateException("cleanup failed");
    CountDownLatch registered = new CountDownLatch(1);
    AtomicInteger runs = new AtomicInteger();
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            try (var reg = CancelScope.onCancel(runs::incrementAndGet)) {
                              registered.countDown();
                              Fixtures.parkUntilInterrupted();
                            } finally {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        throw cleanup;
                                      });
                            }
                          });
                      registered.await();
                      group.cancel();
                    }))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(cleanup));
    assertThat(runs.get()).isEqualTo(1);
  }

  // ---- registration racing the group's cancel ----------------------------------------------

  /**
   * A child registers, checks isCancelled, and closes, while the group is cancelled from the body
   * at the same moment (barrier). The action runs at most once; never after close() returned; only
   * if the group was cancelled; and exactly once when the child saw the cancellation before close()
   * (Registration.close: "it starts now", and close waits for it).
   */
  @RepeatedTest(50)
  @Timeout(5)
  void registrationRacingTheGroupsCancelFiresAtMostOnceAndNeverAfterClose() throws Exception {
    TaskGroup group = TaskGroup.named("race");
    CyclicBarrier barrier = new CyclicBarrier(2);
    AtomicInteger runs = new AtomicInteger();
    AtomicBoolean closeReturned = new AtomicBoolean();
    AtomicBoolean ranAfterClose = new AtomicBoolean();
    AtomicBoolean ranWhileNotCancelled = new AtomicBoolean();
    AtomicInteger runsAtClose = new AtomicInteger(-1);
    AtomicBoolean sawCancelled = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () -> {
                barrier.await();
                var reg =
                    CancelScope.onCancel(
                        () -> {
                          if (closeReturned.get()) {
                            ranAfterClose.set(true);
                          }
                          if (!group.cancelCalled()) {
                            ranWhileNotCancelled.set(true);
                          }
                          runs.incrementAndGet();
                        });
                boolean saw = CancelScope.isCancelled();
                reg.close();
                runsAtClose.set(runs.get());
                closeReturned.set(true);
                sawCancelled.set(saw);
              });
          barrier.await();
          group.cancel();
        });
    assertThat(runs.get()).isLessThanOrEqualTo(1);
    assertThat(ranAfterClose).isFalse();
    assertThat(ranWhileNotCancelled).isFalse();
    assertThat(runs.get()).isEqualTo(runsAtClose.get());
    if (sawCancelled.get()) {
      assertThat(runsAtClose.get()).isEqualTo(1);
    }
  }

  // ---- actions that throw -------------------------------------------------------------------

  /**
   * An action that throws, inside a group: a failure of the group exactly once, and close() on the
   * registering thread returns normally (it is not thrown a second time there).
   */
  @Test
  void aThrowingActionInAGroupIsOneFailureOfTheGroupAndCloseDoesNotRethrowIt() throws Exception {
    TaskGroup group = TaskGroup.named("throws");
    IllegalStateException boom = new IllegalStateException("action failed");
    CountDownLatch registered = new CountDownLatch(1);
    AtomicBoolean closeReturnedNormally = new AtomicBoolean();
    assertThatThrownBy(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            var reg =
                                CancelScope.onCancel(
                                    () -> {
                                      throw boom;
                                    });
                            try {
                              registered.countDown();
                              Fixtures.parkUntilInterrupted();
                            } finally {
                              reg.close();
                              closeReturnedNormally.set(true);
                            }
                          });
                      registered.await();
                      group.cancel();
                    }))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(boom));
    assertThat(closeReturnedNormally).isTrue();
  }

  /**
   * No group: close() throws the action's exception once (a second close returns normally), and
   * that exception, thrown on the cancelled thread after the action started, is the action's own
   * failure: it leaves the cancelled scope as a failure, not absorbed as the cancellation.
   */
  @Test
  void withNoGroupCloseThrowsTheActionsFailureOnceAndTheScopeDoesNotAbsorbIt() throws Exception {
    IllegalStateException boom = new IllegalStateException("action failed");
    CancelScope scope = CancelScope.create();
    AtomicReference<CancelScope.Registration> kept = new AtomicReference<>();
    Thread t =
        Thread.ofPlatform()
            .unstarted(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          var reg =
                              CancelScope.onCancel(
                                  () -> {
                                    throw boom;
                                  });
                          kept.set(reg);
                          scope.cancel();
                          reg.close();
                        });
                  } catch (Throwable e) {
                    kept.set(null);
                    throw new RuntimeException(e);
                  }
                });
    AtomicReference<Throwable> escaped = new AtomicReference<>();
    t.setUncaughtExceptionHandler((th, e) -> escaped.set(e.getCause()));
    t.start();
    t.join();
    assertThat(escaped.get()).isSameAs(boom);
    assertThat(scope.cancelCaught()).isFalse();
  }

  /** A second close() of a registration whose action threw with no group around returns. */
  @Test
  void secondCloseAfterAThrowingActionReturnsNormally() throws Exception {
    IllegalStateException boom = new IllegalStateException("action failed");
    CancelScope scope = CancelScope.create();
    AtomicInteger thrown = new AtomicInteger();
    scope.run(
        () -> {
          var reg =
              CancelScope.onCancel(
                  () -> {
                    throw boom;
                  });
          scope.cancel();
          for (int i = 0; i < 3; i++) {
            try {
              reg.close();
            } catch (IllegalStateException e) {
              assertThat(e).isSameAs(boom);
              thrown.incrementAndGet();
            }
          }
        });
    assertThat(thrown.get()).isEqualTo(1);
  }

  // ---- re-entrant actions -------------------------------------------------------------------

  /**
   * An action that cancels the same scope again, closes its own registration (returns at once),
   * registers another action (its thread is in no scope: never runs) and forks into the group
   * (still running: the action is one of its members). Runs once; the forked child runs in the
   * cancelled group and is cancelled (not started) per fork's javadoc; nothing hangs.
   */
  @RepeatedTest(5)
  void reentrantActionCancelsAgainClosesItselfRegistersAndForks() throws Exception {
    TaskGroup group = TaskGroup.named("reentrant");
    AtomicInteger runs = new AtomicInteger();
    AtomicInteger nestedRuns = new AtomicInteger();
    AtomicReference<Task<Void>> forked = new AtomicReference<>();
    AtomicReference<CancelScope.Registration> self = new AtomicReference<>();
    CountDownLatch registered = new CountDownLatch(1);
    AtomicBoolean actionEnded = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () -> {
                CancelScope inner = CancelScope.create();
                inner.run(
                    () -> {
                      self.set(
                          CancelScope.onCancel(
                              () -> {
                                runs.incrementAndGet();
                                inner.cancel();
                                group.cancel();
                                while (self.get() == null) {
                                  Thread.onSpinWait();
                                }
                                self.get().close(); // from the action itself: returns at once
                                CancelScope.onCancel(nestedRuns::incrementAndGet).close();
                                forked.set(
                                    group.fork(
                                        () -> {
                                          nestedRuns.incrementAndGet();
                                        }));
                                actionEnded.set(true);
                              }));
                      registered.countDown();
                      try {
                        Fixtures.parkUntilInterrupted();
                      } finally {
                        self.get().close();
                      }
                    });
              });
          registered.await();
          group.cancel();
        });
    assertThat(runs.get()).isEqualTo(1);
    assertThat(actionEnded).isTrue();
    assertThat(nestedRuns.get()).isZero();
    assertThat(forked.get().state()).isEqualTo(Task.State.CANCELLED);
  }

  /**
   * close() from another thread while the action runs waits until the action ends (so the resource
   * is not used after close returns).
   */
  @RepeatedTest(3)
  void closeFromAnotherThreadWaitsForTheRunningAction() throws Exception {
    CancelScope scope = CancelScope.create();
    CountDownLatch actionStarted = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean actionDone = new AtomicBoolean();
    AtomicBoolean doneWhenCloseReturned = new AtomicBoolean();
    AtomicReference<CancelScope.Registration> reg = new AtomicReference<>();
    CountDownLatch registered = new CountDownLatch(1);
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          reg.set(
                              CancelScope.onCancel(
                                  () -> {
                                    actionStarted.countDown();
                                    release.await();
                                    actionDone.set(true);
                                  }));
                          registered.countDown();
                          Fixtures.parkUntilInterrupted();
                          CancelScope.checkpoint();
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    registered.await();
    scope.cancel();
    actionStarted.await();
    Thread closer =
        Thread.ofPlatform()
            .start(
                () -> {
                  reg.get().close();
                  doneWhenCloseReturned.set(actionDone.get());
                });
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (closer.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
      Thread.onSpinWait(); // polling: nothing else tells that close() is waiting
    }
    assertThat(closer.getState()).isEqualTo(Thread.State.WAITING);
    release.countDown();
    closer.join();
    owner.join();
    assertThat(doneWhenCloseReturned).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
  }

  // ---- registrations after their scope ---------------------------------------------------------

  /**
   * A registration kept (never closed) past the end of its scope: a later cancel() of the scope
   * never runs it, and close() still returns normally.
   */
  @Test
  void aRegistrationKeptAfterItsScopeEndedNeverRunsAndStillCloses() throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicInteger runs = new AtomicInteger();
    AtomicReference<CancelScope.Registration> kept = new AtomicReference<>();
    scope.run(() -> kept.set(CancelScope.onCancel(runs::incrementAndGet)));
    scope.cancel();
    kept.get().close();
    kept.get().close();
    assertThat(runs.get()).isZero();
    assertThat(scope.cancelCaught()).isFalse();
  }

  // ---- shields and cooperative scopes -----------------------------------------------------------

  /**
   * An action registered inside a shielded scope: the group's cancel does not run it (the scope is
   * not effectively cancelled); turning the shield off from another thread makes it effectively
   * cancelled and runs it, once (Trio: unshielding delivers the outer cancel, closest
   * test_cancel_shield_abort).
   */
  @RepeatedTest(5)
  void anActionRegisteredInAShieldRunsOnlyWhenTheShieldIsLifted() throws Exception {
    TaskGroup group = TaskGroup.named("shield");
    CancelScope shield = CancelScope.shielded();
    AtomicInteger runs = new AtomicInteger();
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch ran = new CountDownLatch(1);
    AtomicBoolean ranBeforeUnshield = new AtomicBoolean();
    AtomicBoolean unshielded = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () ->
                  shield.run(
                      () -> {
                        try (var reg =
                            CancelScope.onCancel(
                                () -> {
                                  if (!unshielded.get()) {
                                    ranBeforeUnshield.set(true);
                                  }
                                  runs.incrementAndGet();
                                  ran.countDown();
                                })) {
                          registered.countDown();
                          Fixtures.parkUntilInterrupted();
                        }
                      }));
          registered.await();
          group.cancel();
          // the cancel walk has fired what it fires before cancel() returns
          assertThat(runs.get()).isZero();
          unshielded.set(true);
          shield.setShielded(false);
          ran.await();
        });
    assertThat(runs.get()).isEqualTo(1);
    assertThat(ranBeforeUnshield).isFalse();
  }

  /**
   * A cooperative scope is never interrupted, but its onCancel actions still run (cooperative's
   * javadoc): closeOnCancel ends a socket read in it, and the SocketException counts as the
   * cancellation.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void closeOnCancelEndsASocketReadInACooperativeScope(boolean virtual) throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      CancelScope scope = CancelScope.cooperative();
      CountDownLatch reading = new CountDownLatch(1);
      AtomicReference<Throwable> readEnded = new AtomicReference<>();
      Runnable body =
          () -> {
            try (Socket s = new Socket(server.getInetAddress(), server.getLocalPort())) {
              scope.run(
                  () -> {
                    try (var reg = CancelScope.closeOnCancel(s)) {
                      reading.countDown();
                      s.getInputStream().read();
                    } catch (java.io.IOException e) {
                      readEnded.set(e);
                      throw e;
                    }
                  });
            } catch (Exception e) {
              throw new RuntimeException(e);
            }
          };
      Thread t = virtual ? Thread.ofVirtual().start(body) : Thread.ofPlatform().start(body);
      try (Socket peer = server.accept()) {
        reading.await();
        awaitBlocked(t);
        scope.cancel();
        t.join();
      }
      assertThat(readEnded.get()).isInstanceOf(java.net.SocketException.class);
      assertThat(scope.cancelCaught()).isTrue();
    }
  }

  // ---- resources -----------------------------------------------------------------------------

  /**
   * A ServerSocket.accept (not interruptible on a platform thread) ended by closeOnCancel under a
   * deadline, no group: the scope returns normally with cancelCaught, on both thread kinds.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void closeOnCancelEndsAnAcceptUnderADeadline(boolean virtual) throws Exception {
    ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(50));
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Runnable body =
        () -> {
          try {
            scope.run(
                () -> {
                  try (var reg = CancelScope.closeOnCancel(server)) {
                    server.accept().close();
                  }
                });
          } catch (Throwable e) {
            failed.set(e);
          }
        };
    Thread t = virtual ? Thread.ofVirtual().start(body) : Thread.ofPlatform().start(body);
    t.join();
    assertThat(failed.get()).isNull();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(server.isClosed()).isTrue();
  }

  /**
   * The same socket registered twice with closeOnCancel: each registration runs its action once, so
   * close() is called twice (Socket.close is idempotent); the read ends as the cancellation.
   */
  @Test
  void theSameResourceRegisteredTwiceIsClosedByBothRegistrations() throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      TaskGroup group = TaskGroup.named("twice");
      AtomicInteger closes = new AtomicInteger();
      CountDownLatch reading = new CountDownLatch(1);
      AtomicReference<Thread> reader = new AtomicReference<>();
      group.run(
          () -> {
            group.fork(
                () -> {
                  reader.set(Thread.currentThread());
                  try (Socket s = new Socket(server.getInetAddress(), server.getLocalPort())) {
                    AutoCloseable counted =
                        () -> {
                          closes.incrementAndGet();
                          s.close();
                        };
                    try (var a = CancelScope.closeOnCancel(counted);
                        var b = CancelScope.closeOnCancel(counted)) {
                      reading.countDown();
                      s.getInputStream().read();
                    }
                  }
                });
            try (Socket peer = server.accept()) {
              reading.await();
              awaitBlocked(reader.get());
              group.cancel();
              while (closes.get() < 2) {
                Thread.onSpinWait();
              }
            }
          });
      assertThat(closes.get()).isEqualTo(2);
      assertThat(group.cancelCaught()).isTrue();
    }
  }

  /**
   * A {@code sleep} process whose output the child reads (a read an interrupt does not end):
   * onCancel(process::destroy) ends it; the group returns normally and the process is gone.
   */
  @Test
  void processDestroyOnCancelEndsAReadOfItsOutput() throws Exception {
    Process p = new ProcessBuilder("/bin/sh", "-c", "exec sleep 30").start();
    try {
      TaskGroup group = TaskGroup.named("process");
      CountDownLatch reading = new CountDownLatch(1);
      AtomicInteger readResult = new AtomicInteger(Integer.MIN_VALUE);
      AtomicReference<Thread> reader = new AtomicReference<>();
      group.run(
          () -> {
            group.fork(
                () -> {
                  reader.set(Thread.currentThread());
                  try (var reg = CancelScope.onCancel(p::destroy)) {
                    InputStream in = p.getInputStream();
                    reading.countDown();
                    readResult.set(in.read());
                  }
                  CancelScope.checkpoint();
                  throw new AssertionError("checkpoint in a cancelled scope returned");
                });
            reading.await();
            awaitBlocked(reader.get());
            group.cancel();
          });
      assertThat(p.waitFor(5, TimeUnit.SECONDS)).isTrue();
      assertThat(readResult.get()).isEqualTo(-1);
      assertThat(group.cancelCaught()).isTrue();
    } finally {
      p.destroyForcibly();
    }
  }

  // ---- many registrations ----------------------------------------------------------------------

  /**
   * Ten thousand open registrations in one child's scope, fired by one cancel: every action runs
   * exactly once, and the group's run returns only after all of them ended (the group waits for
   * hooks).
   */
  @Test
  void tenThousandRegistrationsFiredAtOnceAllRunOnceBeforeTheGroupReturns() throws Exception {
    int n = 10_000;
    TaskGroup group = TaskGroup.named("many");
    int[] runs = new int[n];
    AtomicInteger total = new AtomicInteger();
    CountDownLatch registered = new CountDownLatch(1);
    long start = System.nanoTime();
    group.run(
        () -> {
          group.fork(
              () -> {
                List<CancelScope.Registration> regs = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                  int k = i;
                  regs.add(
                      CancelScope.onCancel(
                          () -> {
                            synchronized (runs) {
                              runs[k]++;
                            }
                            total.incrementAndGet();
                          }));
                }
                registered.countDown();
                Fixtures.parkUntilInterrupted();
                // leaves without closing them: the group must still wait for every action
              });
          registered.await();
          group.cancel();
        });
    assertThat(total.get()).isEqualTo(n);
    synchronized (runs) {
      for (int r : runs) {
        assertThat(r).isEqualTo(1);
      }
    }
    System.out.println(
        "10000 hooks: " + (System.nanoTime() - start) / 1_000_000 + " ms (register+fire)");
  }

  /**
   * A registration left open in an inner scope that the thread leaves, seeing the group's
   * cancellation by itself, before the cancel walk reaches it (the walk is busy firing an earlier
   * sibling's 10 000 hooks): the scope became effectively cancelled while the registration was
   * open, so its action must still run, once, before the group's run returns.
   */
  @RepeatedTest(2)
  void anOpenRegistrationOfAnInnerScopeLeftBeforeTheWalkReachesItStillRuns() throws Exception {
    int n = 10_000;
    TaskGroup group = TaskGroup.named("left-early");
    AtomicInteger slowRuns = new AtomicInteger();
    AtomicInteger runs = new AtomicInteger();
    CountDownLatch registered = new CountDownLatch(2);
    AtomicBoolean leftBeforeRun = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () -> {
                for (int i = 0; i < n; i++) {
                  CancelScope.onCancel(slowRuns::incrementAndGet);
                }
                registered.countDown();
                Fixtures.parkUntilInterrupted();
              });
          group.fork(
              () -> {
                CancelScope inner = CancelScope.create();
                inner.run(
                    () -> {
                      CancelScope.onCancel(runs::incrementAndGet); // left open
                      registered.countDown();
                      while (!CancelScope.isCancelled()) {
                        Thread.onSpinWait();
                      }
                    });
                leftBeforeRun.set(runs.get() == 0);
              });
          registered.await();
          group.cancel();
        });
    System.out.println("left the inner scope before its action ran: " + leftBeforeRun.get());
    assertThat(slowRuns.get()).isEqualTo(n);
    assertThat(runs.get()).isEqualTo(1);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  /** Polls (with a deadline) until {@code t} blocks: nothing else tells that a read has begun. */
  private static void awaitBlocked(Thread t) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (System.nanoTime() < deadline) {
      Thread.State s = t.getState();
      if (s == Thread.State.RUNNABLE && !t.isVirtual()) {
        // a platform thread in a socket read shows RUNNABLE: look at its stack
        for (StackTraceElement e : t.getStackTrace()) {
          if (e.isNativeMethod()) {
            return;
          }
        }
      } else if (s == Thread.State.WAITING || s == Thread.State.TIMED_WAITING) {
        return;
      }
      Thread.onSpinWait();
    }
  }
}
