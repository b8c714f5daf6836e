package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.Finished;
import dev.taskgroup.Fixtures.Trail;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An adversarial sweep of {@link TaskGroup#start} and {@link StartSignal}, against AnyIO's {@code
 * tests/test_taskgroups.py} start tests and Trio's {@code _core/_tests/test_run.py} {@code
 * test_nursery_start*}: who cancels the work before and after it signals (the caller's scope, not
 * the group), races between the caller's cancellation and the signal (the value returned exactly
 * once or the work cancelled, never both, no interrupt left behind), signals from other threads and
 * after the work ended, starts from children, other groups and outside threads, under {@code
 * maxConcurrency}, context propagators and cooperative scopes.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class StartSweepTest {

  // ---- before it signals, the work belongs to the caller's scope, not to the group -----------

  /**
   * Closest to Trio test_run.py test_nursery_start: until {@code started()}, the task runs under
   * the caller's cancel scope, so cancelling the nursery does not reach it. StartSignal/start
   * javadoc: "Until it signals, the child is cancelled with the caller's scope"; onCancel: the
   * action runs when "the calling thread's innermost scope becomes effectively cancelled". The
   * caller here is shielded, so the group's cancel must neither interrupt the work nor fire its
   * cancel hook; once it signals it is moved under the cancelled group and sees the cancellation.
   */
  @RepeatedTest(5)
  void groupCancelFiresNoCancelHookOfWorkNotYetSignalledForAShieldedCaller() throws Exception {
    TaskGroup g = TaskGroup.named("start-shielded-caller");
    AtomicBoolean hookRan = new AtomicBoolean();
    AtomicBoolean interruptedBeforeSignal = new AtomicBoolean();
    AtomicBoolean cancelledAfterSignal = new AtomicBoolean();
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch groupCancelled = new CountDownLatch(1);
    AtomicReference<String> value = new AtomicReference<>();
    g.run(
        () ->
            CancelScope.shielded()
                .run(
                    () -> {
                      Thread canceller =
                          Thread.ofVirtual()
                              .start(
                                  () -> {
                                    awaitQuietly(registered);
                                    g.cancel("the group, not the caller");
                                    groupCancelled.countDown();
                                  });
                      value.set(
                          g.start(
                              s -> {
                                try (var hook = CancelScope.onCancel(() -> hookRan.set(true))) {
                                  registered.countDown();
                                  try {
                                    groupCancelled.await();
                                  } catch (InterruptedException e) {
                                    interruptedBeforeSignal.set(true);
                                    throw e;
                                  }
                                } // close() waits for an action that has started
                                s.started("up");
                                cancelledAfterSignal.set(CancelScope.isCancelled());
                              }));
                      canceller.join();
                    }));
    assertThat(interruptedBeforeSignal)
        .as("work interrupted by the group before it signalled")
        .isFalse();
    assertThat(hookRan).as("cancel hook of the work fired before it signalled").isFalse();
    assertThat(value.get()).isEqualTo("up");
    assertThat(cancelledAfterSignal).as("moved under the cancelled group").isTrue();
  }

  /**
   * The same as {@link #groupCancelFiresNoCancelHookOfWorkNotYetSignalledForAShieldedCaller} with
   * the caller on a plain thread outside any group (Trio: a task calling {@code nursery.start} on a
   * nursery it is not in, as in test_nursery_start_keeps_nursery_open).
   */
  @RepeatedTest(5)
  void groupCancelFiresNoCancelHookOfWorkNotYetSignalledForAnOutsideCaller() throws Exception {
    TaskGroup g = TaskGroup.named("start-outside-caller");
    AtomicBoolean hookRan = new AtomicBoolean();
    AtomicBoolean interruptedBeforeSignal = new AtomicBoolean();
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch groupCancelled = new CountDownLatch(1);
    AtomicReference<Object> outcome = new AtomicReference<>();
    g.run(
        () -> {
          Thread caller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        try {
                          outcome.set(
                              g.start(
                                  s -> {
                                    try (var hook = CancelScope.onCancel(() -> hookRan.set(true))) {
                                      registered.countDown();
                                      try {
                                        groupCancelled.await();
                                      } catch (InterruptedException e) {
                                        interruptedBeforeSignal.set(true);
                                        throw e;
                                      }
                                    }
                                    s.started("up");
                                  }));
                        } catch (Throwable e) {
                          outcome.set(e);
                        }
                      });
          registered.await();
          CancelScope.shielded()
              .run(
                  () -> {
                    g.cancel("the group, not the caller");
                    groupCancelled.countDown();
                    caller.join();
                  });
        });
    assertThat(interruptedBeforeSignal).isFalse();
    assertThat(hookRan).as("cancel hook of the work fired before it signalled").isFalse();
    assertThat(outcome.get()).isEqualTo("up");
  }

  /**
   * Trio test_run.py test_nursery_start_with_cancelled_nursery, "cancelling the setup_nursery just
   * before calling started()": the work runs a group of its own whose children sleep; the target
   * group is cancelled before the work signals (its caller is outside that group, so nothing
   * happens yet); signalling moves the work under the cancelled group, and every sleeping child
   * below it must then be cancelled, or nothing ends.
   */
  @RepeatedTest(10)
  void signallingIntoAGroupCancelledJustBeforeCancelsTheWorksOwnSleepingChildren()
      throws Exception {
    movedIntoACancelledGroup(true);
  }

  /** The same, "cancelling the setup_nursery just after calling started()". */
  @RepeatedTest(10)
  void cancellingTheGroupJustAfterTheSignalCancelsTheWorksOwnSleepingChildren() throws Exception {
    movedIntoACancelledGroup(false);
  }

  private static void movedIntoACancelledGroup(boolean before) throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    Finished sleepersDone = new Finished();
    AtomicBoolean interruptedBeforeSignal = new AtomicBoolean();
    outer.run(
        () -> {
          TaskGroup target =
              outer.start(
                  s -> {
                    TaskGroup setup = TaskGroup.named("setup");
                    setup.run(
                        () -> {
                          s.started(setup);
                          Fixtures.parkUntilInterrupted();
                        });
                  });
          target.start(
              s -> {
                TaskGroup own = TaskGroup.named("sleeping-children");
                own.run(
                    () -> {
                      CountDownLatch asleep = new CountDownLatch(2);
                      own.fork(Fixtures.blockedUntilCancelled(asleep, sleepersDone));
                      own.fork(Fixtures.blockedUntilCancelled(asleep, sleepersDone));
                      asleep.await();
                      if (before) {
                        target.cancel("just before started()");
                        interruptedBeforeSignal.set(CancelScope.isCancelled());
                      }
                      s.started();
                    });
              });
          if (!before) {
            target.cancel("just after started()");
          }
        });
    assertThat(interruptedBeforeSignal).as("cancelled before it signalled").isFalse();
    assertThat(sleepersDone.count()).isEqualTo(2);
  }

  /**
   * Trio test_run.py test_nursery_start_keeps_nursery_open: a start into a group from a task
   * outside it keeps that group open after its body returned, until the work has signalled and
   * ended; and when the work crashes before signalling, the crash goes to the caller only and the
   * group ends without a failure.
   */
  @RepeatedTest(5)
  void aPendingStartKeepsTheGroupOpenAfterItsBodyReturned() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    Trail trail = new Trail();
    outer.run(
        () -> {
          TaskGroup target = TaskGroup.named("target");
          CountDownLatch inWork = new CountDownLatch(1);
          CountDownLatch bodyReturned = new CountDownLatch(1);
          target.run(
              () -> {
                outer.fork(
                    () -> {
                      String v =
                          target.start(
                              s -> {
                                inWork.countDown();
                                bodyReturned.await();
                                s.started("late");
                                trail.add("work ends");
                              });
                      trail.add("start returned " + v);
                    });
                inWork.await();
                Thread owner = Thread.currentThread();
                Thread.ofVirtual()
                    .start(
                        () -> {
                          Probes.awaitWaiting(owner, Duration.ofSeconds(10));
                          bodyReturned.countDown();
                        });
              });
          trail.add("target run returned");
        });
    List<String> events = trail.events();
    assertThat(events).contains("start returned late");
    assertThat(events.indexOf("work ends")).isNotNegative();
    assertThat(events.indexOf("work ends")).isLessThan(events.indexOf("target run returned"));
  }

  /** The crashing half of Trio test_nursery_start_keeps_nursery_open. */
  @RepeatedTest(5)
  void aPendingStartThatCrashesLetsTheGroupEndWithoutFailure() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    RuntimeException crash = new IllegalStateException("KeyError");
    AtomicReference<Throwable> caught = new AtomicReference<>();
    TaskGroup target = TaskGroup.named("target");
    outer.run(
        () -> {
          CountDownLatch inWork = new CountDownLatch(1);
          CountDownLatch bodyReturned = new CountDownLatch(1);
          target.run(
              () -> {
                outer.fork(
                    () ->
                        caught.set(
                            catchThrowable(
                                () ->
                                    target.start(
                                        s -> {
                                          inWork.countDown();
                                          bodyReturned.await();
                                          throw crash;
                                        }))));
                inWork.await();
                Thread owner = Thread.currentThread();
                Thread.ofVirtual()
                    .start(
                        () -> {
                          Probes.awaitWaiting(owner, Duration.ofSeconds(10));
                          bodyReturned.countDown();
                        });
              });
        });
    assertThat(caught.get()).isSameAs(crash);
    assertThat(target.cancelCalled()).isFalse();
    assertThat(outer.cancelCalled()).isFalse();
  }

  /**
   * AnyIO test_taskgroups.py test_start_cancel_after_error (regression test for AnyIO #517): a
   * sibling's failure in an inner group cancels the inner body waiting in {@code outer.start}; the
   * work is cancelled before it completes, and the failure comes out once, inside the inner group's
   * exception inside the outer one.
   */
  @RepeatedTest(10)
  void aSiblingsFailureCancelsAStartWaitingInAnotherGroup() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    RuntimeException boom = new RuntimeException("This should cancel the second start() call");
    AtomicBoolean sleepCompleted = new AtomicBoolean();
    CountDownLatch inWork = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        inner.run(
                            () -> {
                              inner.fork(
                                  () -> {
                                    inWork.await();
                                    throw boom;
                                  });
                              outer.start(
                                  s -> {
                                    inWork.countDown();
                                    Thread.sleep(60_000);
                                    sleepCompleted.set(true);
                                    s.started();
                                  });
                            })));
    assertThat(sleepCompleted).isFalse();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).hasSize(1);
    Throwable innerFailure = ((TaskGroupException) thrown).failures().get(0);
    assertThat(innerFailure).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) innerFailure).failures()).containsExactly(boom);
  }

  // ---- values and failures before the signal --------------------------------------------------

  /**
   * AnyIO test_start_no_value / test_start_with_value: {@code started()} makes start return null,
   * as does {@code started(null)}; a value comes back as it was given (same instance).
   */
  @Test
  void startReturnsNullForNoValueAndTheSameInstanceForAValue() throws Exception {
    TaskGroup g = TaskGroup.named("values");
    Object token = new Object();
    AtomicReference<Object> none = new AtomicReference<>(token);
    AtomicReference<Object> nullValue = new AtomicReference<>(token);
    AtomicReference<Object> value = new AtomicReference<>();
    g.run(
        () -> {
          none.set(g.start(StartSignal::started));
          nullValue.set(g.<Object>start(s -> s.started(null)));
          value.set(g.start(s -> s.started(token)));
        });
    assertThat(none.get()).isNull();
    assertThat(nullValue.get()).isNull();
    assertThat(value.get()).isSameAs(token);
  }

  /**
   * AnyIO test_start_crash_before_started_call with an {@link Error} and with a checked exception:
   * the Error comes out of start as it is, the checked one as the cause (and only failure) of a
   * {@link TaskGroupException} naming the group; neither is a failure of the group, which is not
   * cancelled, and a sibling keeps running. The signal, kept and used after the failure, throws
   * IllegalStateException (StartSignal: "exactly once"; the work has ended).
   */
  @Test
  void anErrorOrACheckedExceptionBeforeTheSignalIsThrownByStartOnly() throws Exception {
    TaskGroup g = TaskGroup.named("crash-before");
    AssertionError error = new AssertionError("an Error before started()");
    IOException checked = new IOException("a checked exception before started()");
    AtomicReference<Throwable> fromError = new AtomicReference<>();
    AtomicReference<Throwable> fromChecked = new AtomicReference<>();
    AtomicBoolean siblingInterrupted = new AtomicBoolean();
    AtomicReference<StartSignal<Object>> leaked = new AtomicReference<>();
    AtomicReference<Throwable> afterFailure = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          g.fork(
              () -> {
                try {
                  release.await();
                } catch (InterruptedException e) {
                  siblingInterrupted.set(true);
                  throw e;
                }
              });
          fromError.set(
              catchThrowable(
                  () ->
                      g.start(
                          s -> {
                            leaked.set(s);
                            throw error;
                          })));
          afterFailure.set(catchThrowable(() -> leaked.get().started("after the failure")));
          fromChecked.set(
              catchThrowable(
                  () ->
                      g.start(
                          s -> {
                            throw checked;
                          })));
          assertThat(CancelScope.isCancelled()).isFalse();
          release.countDown();
        });
    assertThat(fromError.get()).isSameAs(error);
    assertThat(afterFailure.get()).isInstanceOf(IllegalStateException.class);
    assertThat(fromChecked.get())
        .isInstanceOf(TaskGroupException.class)
        .hasCause(checked)
        .hasMessageContaining("crash-before");
    assertThat(((TaskGroupException) fromChecked.get()).failures()).containsExactly(checked);
    assertThat(siblingInterrupted).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  /**
   * AnyIO test_start_crash_before_started_call / test_start_crash_after_started_call in a
   * supervisor (FailurePolicy.COLLECT with an onFailure handler): every failure surfaces exactly
   * once, in one place. The one before the signal is thrown by start and never reaches the handler
   * (start's javadoc: "it is not a failure of the group"); the one after it reaches the handler
   * once and is not thrown by start; the group is never cancelled.
   */
  @RepeatedTest(10)
  void inASupervisorEachStartFailureSurfacesExactlyOnce() throws Exception {
    var handled = new java.util.concurrent.ConcurrentLinkedQueue<Throwable>();
    TaskGroup g =
        TaskGroup.builder()
            .name("supervised-starts")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(handled::add)
            .build();
    RuntimeException before = new IllegalStateException("before started()");
    RuntimeException after = new IllegalStateException("after started()");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<String> value = new AtomicReference<>();
    g.run(
        () -> {
          thrown.set(
              catchThrowable(
                  () ->
                      g.start(
                          s -> {
                            throw before;
                          })));
          value.set(
              g.start(
                  s -> {
                    s.started("up");
                    throw after;
                  }));
        });
    assertThat(thrown.get()).isSameAs(before);
    assertThat(value.get()).isEqualTo("up");
    assertThat(handled).containsExactly(after);
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---- the signal: twice, from other threads, after the end ------------------------------------

  /**
   * Trio test_nursery_start ("calling started twice") / AnyIO test_start_called_twice, with the two
   * calls racing on two threads (StartSignal: "A signal may be used from any thread, exactly
   * once"): exactly one wins, the other throws IllegalStateException, and start returns the
   * winner's value.
   */
  @RepeatedTest(30)
  void twoThreadsRacingToSignalExactlyOneWins() throws Exception {
    TaskGroup g = TaskGroup.named("signal-race");
    AtomicReference<String> winner = new AtomicReference<>();
    AtomicInteger refused = new AtomicInteger();
    AtomicReference<Throwable> unexpected = new AtomicReference<>();
    AtomicReference<String> value = new AtomicReference<>();
    g.run(
        () ->
            value.set(
                g.start(
                    s -> {
                      CyclicBarrier both = new CyclicBarrier(2);
                      Runnable[] signallers = new Runnable[2];
                      for (int i = 0; i < 2; i++) {
                        String v = "v" + i;
                        signallers[i] =
                            () -> {
                              try {
                                both.await();
                                s.started(v);
                                if (!winner.compareAndSet(null, v)) {
                                  unexpected.set(new AssertionError("two signals won"));
                                }
                              } catch (IllegalStateException e) {
                                refused.incrementAndGet();
                              } catch (Exception e) {
                                unexpected.set(e);
                              }
                            };
                      }
                      Thread a = Thread.ofVirtual().start(signallers[0]);
                      Thread b = Thread.ofVirtual().start(signallers[1]);
                      a.join();
                      b.join();
                    })));
    assertThat(unexpected.get()).isNull();
    assertThat(refused.get()).isEqualTo(1);
    assertThat(value.get()).isEqualTo(winner.get());
  }

  /**
   * Trio test_nursery_start, "child exiting cleanly before calling started", with the signal given
   * from another thread racing the work's return: either the signal wins (start returns its value)
   * or the end does (start throws IllegalStateException and the late signal throws
   * IllegalStateException too); never both, never neither, nothing a failure of the group.
   */
  @RepeatedTest(40)
  void aSignalFromAnotherThreadRacingTheWorksReturnCountsExactlyOnce() throws Exception {
    TaskGroup g = TaskGroup.named("signal-vs-return");
    AtomicReference<Object> outcome = new AtomicReference<>();
    AtomicReference<Throwable> lateSignal = new AtomicReference<>();
    AtomicReference<Thread> signaller = new AtomicReference<>();
    g.run(
        () -> {
          try {
            outcome.set(
                g.start(
                    s -> {
                      CyclicBarrier both = new CyclicBarrier(2);
                      signaller.set(
                          Thread.ofVirtual()
                              .start(
                                  () -> {
                                    try {
                                      both.await();
                                      s.started("from another thread");
                                    } catch (Throwable e) {
                                      lateSignal.set(e);
                                    }
                                  }));
                      both.await(); // then return without signalling
                    }));
          } catch (IllegalStateException e) {
            outcome.set(e);
          }
          signaller.get().join();
        });
    if (outcome.get() instanceof IllegalStateException) {
      assertThat(lateSignal.get())
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("ended");
    } else {
      assertThat(outcome.get()).isEqualTo("from another thread");
      assertThat(lateSignal.get()).isNull();
    }
    assertThat(g.cancelCalled()).isFalse();
  }

  /**
   * Trio test_nursery_start: "if the call to start() is cancelled, then the call to started() does
   * nothing -- the child keeps executing under start(). The value it passed is ignored; start()
   * raises Cancelled." Here the work signals only in its shielded cleanup, after its caller gave
   * up: start throws InterruptedException (never the value), after the work has ended, and nothing
   * is a failure of the group.
   */
  @RepeatedTest(10)
  void aSignalAfterTheCallerWasCancelledIsIgnoredAndStartThrows() throws Exception {
    TaskGroup g = TaskGroup.named("late-signal");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<Object> returned = new AtomicReference<>();
    AtomicBoolean workEndedFirst = new AtomicBoolean();
    AtomicBoolean workEnded = new AtomicBoolean();
    AtomicReference<Throwable> signalThrew = new AtomicReference<>();
    g.run(
        () -> {
          CancelScope callerScope = CancelScope.create();
          CountDownLatch inWork = new CountDownLatch(1);
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitQuietly(inWork);
                        callerScope.cancel();
                      });
          callerScope.run(
              () -> {
                try {
                  returned.set(
                      g.start(
                          s -> {
                            try {
                              inWork.countDown();
                              Thread.sleep(60_000);
                            } finally {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        try {
                                          s.started("too late");
                                        } catch (IllegalStateException e) {
                                          signalThrew.set(e);
                                        }
                                      });
                              workEnded.set(true);
                            }
                          }));
                } catch (InterruptedException e) {
                  thrown.set(e);
                  workEndedFirst.set(workEnded.get());
                  throw e;
                }
              });
          canceller.join();
        });
    assertThat(returned.get()).isNull();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(workEndedFirst).isTrue();
    assertThat(signalThrew.get()).isNull();
    assertThat(g.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---- the caller cancelled at the instant the work signals ------------------------------------

  private static final Random RACE_RANDOM =
      new Random(Probes.seed("startsweep.seed", "StartSweepTest races"));

  /** How each race ended, per kind of stop: printed after the class, to see both sides ran. */
  private static final Map<String, AtomicInteger> TALLY = new ConcurrentSkipListMap<>();

  @AfterAll
  static void printTally() {
    System.out.println("StartSweepTest race outcomes: " + TALLY);
  }

  enum Stop {
    SCOPE_CANCEL,
    DEADLINE,
    OUTER_CANCEL,
    OUTSIDE_INTERRUPT
  }

  @RepeatedTest(60)
  void callerScopeCancelledAsTheWorkSignals() throws Exception {
    raceStopAgainstSignal(Stop.SCOPE_CANCEL);
  }

  @RepeatedTest(60)
  void callerDeadlineExpiringAsTheWorkSignals() throws Exception {
    raceStopAgainstSignal(Stop.DEADLINE);
  }

  @RepeatedTest(60)
  void outerScopeCancelledAsTheWorkSignals() throws Exception {
    raceStopAgainstSignal(Stop.OUTER_CANCEL);
  }

  @RepeatedTest(60)
  void callerInterruptedFromOutsideAsTheWorkSignals() throws Exception {
    raceStopAgainstSignal(Stop.OUTSIDE_INTERRUPT);
  }

  /**
   * start's javadoc: until it signals the child is cancelled with the caller's scope (if the caller
   * is cancelled or interrupted while waiting, the child is cancelled and waited for, then start
   * throws InterruptedException); after it signals, it is cancelled with the group. So when the
   * stop and the signal race, either start returns the value and the work is not cancelled by the
   * caller, or start throws InterruptedException after the work ended: never both, never a hang,
   * and once the caller's scope has exited no interrupt of the library's is left on the caller (an
   * outside interrupt is kept: thrown, or left set when start returns). Closest: Trio
   * test_nursery_start's cancelled-start cases, run as a race.
   */
  private static void raceStopAgainstSignal(Stop stop) throws Exception {
    TaskGroup g = TaskGroup.named("race-" + stop);
    int spins;
    synchronized (RACE_RANDOM) {
      spins = RACE_RANDOM.nextInt(100_000);
    }
    CyclicBarrier barrier = new CyclicBarrier(2);
    AtomicReference<Object> outcome = new AtomicReference<>();
    AtomicBoolean workInterrupted = new AtomicBoolean();
    AtomicBoolean workEnded = new AtomicBoolean();
    AtomicBoolean workEndedWhenThrown = new AtomicBoolean();
    AtomicBoolean interruptLeft = new AtomicBoolean();
    CountDownLatch release = new CountDownLatch(1);
    g.run(
        () -> {
          Thread caller = Thread.currentThread();
          CancelScope outerScope = CancelScope.create();
          CancelScope callerScope =
              stop == Stop.DEADLINE
                  ? CancelScope.withDeadline(Instant.now().plusSeconds(3600))
                  : CancelScope.create();
          Thread stopper =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        try {
                          barrier.await();
                        } catch (Exception e) {
                          return;
                        }
                        switch (stop) {
                          case SCOPE_CANCEL -> callerScope.cancel();
                          case DEADLINE -> callerScope.setDeadline(Instant.now());
                          case OUTER_CANCEL -> outerScope.cancel();
                          case OUTSIDE_INTERRUPT -> caller.interrupt();
                        }
                      });
          Startable<String> work =
              s -> {
                try {
                  barrier.await();
                  for (int i = 0; i < spins; i++) {
                    Thread.onSpinWait(); // spreads the signal over the stop's delivery
                  }
                  s.started("v");
                  release.await();
                } catch (InterruptedException e) {
                  workInterrupted.set(true);
                  throw e;
                } finally {
                  workEnded.set(true);
                }
              };
          Object result;
          try {
            if (stop == Stop.OUTSIDE_INTERRUPT) {
              result = g.start(work);
              interruptLeft.set(Thread.interrupted()); // the outside interrupt, kept
            } else {
              result =
                  outerScope.call(
                      () ->
                          callerScope.call(
                              () -> {
                                try {
                                  return g.start(work);
                                } catch (InterruptedException e) {
                                  workEndedWhenThrown.set(workEnded.get());
                                  throw e;
                                }
                              }));
              interruptLeft.set(Thread.interrupted());
            }
          } catch (InterruptedException e) {
            workEndedWhenThrown.set(workEnded.get());
            result = e;
            interruptLeft.set(Thread.interrupted());
          }
          // The outside interrupt may land after start returned: count it wherever it lands.
          boolean joinInterrupted = false;
          while (true) {
            try {
              stopper.join();
              break;
            } catch (InterruptedException e) {
              joinInterrupted = true;
            }
          }
          // (join of a thread that has ended does not look at the status)
          if (joinInterrupted || Thread.interrupted()) {
            interruptLeft.set(true);
          }
          outcome.set(result);
          if ("v".equals(result)) {
            assertThat(workInterrupted).as("work cancelled though start returned").isFalse();
          }
          release.countDown();
        });
    Object result = outcome.get();
    TALLY
        .computeIfAbsent(
            stop
                + (result instanceof Throwable
                    ? " threw"
                    : "v".equals(result) ? " value" : " absorbed"),
            k -> new AtomicInteger())
        .incrementAndGet();
    if ("v".equals(result)) {
      assertThat(workInterrupted).isFalse();
      if (stop == Stop.OUTSIDE_INTERRUPT) {
        assertThat(interruptLeft).as("outside interrupt lost").isTrue();
      } else {
        assertThat(interruptLeft).as("library interrupt left after the scope").isFalse();
      }
    } else if (result == null) {
      // the scope absorbed the cancellation: start threw, the work had ended
      assertThat(stop).isNotEqualTo(Stop.OUTSIDE_INTERRUPT);
      assertThat(workEndedWhenThrown).isTrue();
      assertThat(interruptLeft).as("library interrupt left after the scope").isFalse();
    } else {
      assertThat(result).isInstanceOf(InterruptedException.class);
      assertThat(stop).isEqualTo(Stop.OUTSIDE_INTERRUPT);
      assertThat(workEndedWhenThrown).isTrue();
      assertThat(interruptLeft).as("interrupt both thrown and left set").isFalse();
    }
    assertThat(g.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Closest to Trio test_nursery_start_with_cancelled_nursery, seen from the caller: the group is
   * cancelled between {@code started()} and the caller's return (by the work itself, right after it
   * signalled). start's javadoc: after it signals the child is cancelled with the group; the value
   * was given, so start returns it (the caller, in the group, then sees the cancellation at its
   * next checkpoint), and the work is cancelled.
   */
  @RepeatedTest(20)
  void groupCancelledBetweenTheSignalAndTheCallersReturn() throws Exception {
    TaskGroup g = TaskGroup.named("cancel-after-signal");
    AtomicReference<Object> value = new AtomicReference<>();
    AtomicBoolean callerSawCancel = new AtomicBoolean();
    AtomicBoolean workCancelled = new AtomicBoolean();
    g.run(
        () -> {
          value.set(
              g.start(
                  s -> {
                    s.started("v");
                    g.cancel("right after started()");
                    try {
                      Thread.sleep(60_000);
                    } catch (InterruptedException e) {
                      workCancelled.set(true);
                      throw e;
                    }
                  }));
          // The work may cancel the group before or after start returned here: either way the
          // value was given, and the caller sees the cancellation once it has happened.
          Probes.awaitTrue("the group cancelled", Duration.ofSeconds(10), g::cancelCalled);
          callerSawCancel.set(CancelScope.isCancelled());
          CancelScope.checkpoint();
        });
    assertThat(value.get()).isEqualTo("v");
    assertThat(callerSawCancel).isTrue();
    assertThat(workCancelled).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---- who calls start: a child, another group's child, an outside thread, a started work -------

  /**
   * Trio test_nursery_start ("start waits for the task to call started(), then returns, ... and the
   * given nursery then waits for it to exit"), called from a child of the same group: the started
   * work outlives the child that started it, the group waits for it, and cancelling the calling
   * child after the start returned does not reach the work.
   */
  @RepeatedTest(5)
  void startFromAChildOfTheSameGroupOutlivesThatChild() throws Exception {
    TaskGroup g = TaskGroup.named("start-from-child");
    Trail trail = new Trail();
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch startReturned = new CountDownLatch(1);
    AtomicReference<String> value = new AtomicReference<>();
    g.run(
        () -> {
          Task<Void> starter =
              g.fork(
                  () -> {
                    value.set(
                        g.start(
                            s -> {
                              s.started("ready");
                              try {
                                release.await();
                              } catch (InterruptedException e) {
                                trail.add("work interrupted");
                                throw e;
                              }
                              trail.add("work ended");
                            }));
                    startReturned.countDown();
                    Thread.sleep(60_000); // cancelled below
                  });
          startReturned.await();
          starter.cancel(true);
          assertThat(starter.state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
          trail.add("starter cancelled");
          release.countDown();
        });
    assertThat(value.get()).isEqualTo("ready");
    assertThat(trail.events()).containsExactly("starter cancelled", "work ended");
  }

  /**
   * A start from a child of another group (Trio: nursery.start on a nursery the caller is not in):
   * before it signals, the work is cancelled with the caller's group, not with its own; start then
   * throws InterruptedException after the work ended, and the target group is neither cancelled nor
   * failed.
   */
  @RepeatedTest(10)
  void startFromAnotherGroupsChildIsCancelledWithTheCallersGroup() throws Exception {
    TaskGroup target = TaskGroup.named("target");
    TaskGroup callers = TaskGroup.named("callers");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean workEndedFirst = new AtomicBoolean();
    Finished workDone = new Finished();
    target.run(
        () -> {
          CountDownLatch inWork = new CountDownLatch(1);
          callers.run(
              () -> {
                callers.fork(
                    () -> {
                      try {
                        target.start(
                            s -> {
                              try {
                                inWork.countDown();
                                Thread.sleep(60_000);
                              } finally {
                                workDone.mark();
                              }
                            });
                      } catch (InterruptedException e) {
                        thrown.set(e);
                        workEndedFirst.set(workDone.count() == 1);
                        throw e;
                      }
                    });
                inWork.await();
                callers.cancel("the callers' group");
              });
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(workEndedFirst).isTrue();
    assertThat(target.cancelCalled()).isFalse();
    assertThat(callers.cancelCaught()).isTrue();
  }

  /**
   * A start from a plain thread outside any group, interrupted while it waits: the work is
   * cancelled and waited for, start throws InterruptedException (the interrupt is thrown, not also
   * left set: the JDK's convention), and the group's other children are untouched.
   */
  @RepeatedTest(10)
  void startFromAnOutsideThreadInterruptedWhileWaiting() throws Exception {
    TaskGroup g = TaskGroup.named("outside-caller");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean statusAfter = new AtomicBoolean();
    AtomicBoolean workEndedFirst = new AtomicBoolean();
    AtomicBoolean siblingInterrupted = new AtomicBoolean();
    Finished workDone = new Finished();
    g.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          g.fork(
              () -> {
                try {
                  release.await();
                } catch (InterruptedException e) {
                  siblingInterrupted.set(true);
                  throw e;
                }
              });
          CountDownLatch inWork = new CountDownLatch(1);
          Thread caller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          g.start(
                              s -> {
                                try {
                                  inWork.countDown();
                                  Thread.sleep(60_000);
                                } finally {
                                  workDone.mark();
                                }
                              });
                        } catch (Throwable e) {
                          thrown.set(e);
                          workEndedFirst.set(workDone.count() == 1);
                          statusAfter.set(Thread.currentThread().isInterrupted());
                        }
                      });
          inWork.await();
          caller.interrupt();
          caller.join();
          release.countDown();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(workEndedFirst).isTrue();
    assertThat(statusAfter).as("interrupt both thrown and left set").isFalse();
    assertThat(siblingInterrupted).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  /**
   * Trio's nested start: a started work that itself starts a work before signalling. Values pass
   * through; and when the outermost caller is cancelled while the inner start is still pending,
   * both works are cancelled and have ended when the outer start throws.
   */
  @RepeatedTest(10)
  void nestedStartPassesValuesAndIsCancelledAsAWhole() throws Exception {
    TaskGroup g = TaskGroup.named("nested-start");
    AtomicReference<Integer> value = new AtomicReference<>();
    Finished done = new Finished();
    AtomicBoolean bothEndedFirst = new AtomicBoolean();
    g.run(
        () -> {
          value.set(
              g.start(
                  outer -> {
                    int inner =
                        g.start(
                            in -> {
                              in.started(2);
                              Fixtures.parkUntilInterrupted();
                            });
                    outer.started(inner + 1);
                    Fixtures.parkUntilInterrupted();
                  }));
          CancelScope callerScope = CancelScope.create();
          CountDownLatch innerWaiting = new CountDownLatch(1);
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitQuietly(innerWaiting);
                        callerScope.cancel();
                      });
          callerScope.run(
              () -> {
                try {
                  g.start(
                      outer -> {
                        try {
                          g.start(
                              in -> {
                                try {
                                  innerWaiting.countDown();
                                  Thread.sleep(60_000);
                                } finally {
                                  done.mark();
                                }
                              });
                        } finally {
                          done.mark();
                        }
                      });
                } catch (InterruptedException e) {
                  bothEndedFirst.set(done.count() == 2);
                  throw e;
                }
              });
          canceller.join();
          g.cancel("done");
        });
    assertThat(value.get()).isEqualTo(3);
    assertThat(bothEndedFirst).isTrue();
  }

  // ---- maxConcurrency --------------------------------------------------------------------------

  /**
   * TaskGroup.Builder.maxConcurrency: "a start child counts toward maxConcurrency" and a start from
   * the body waits for a place; cancelled while it waits, start throws InterruptedException, the
   * work never runs, and the place is not lost (a later start gets it once the holder ends).
   */
  @RepeatedTest(10)
  void startWaitingForAPlaceIsCancelledWithoutRunningTheWorkOrLosingThePlace() throws Exception {
    TaskGroup g = TaskGroup.builder().name("bounded").maxConcurrency(1).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<String> later = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch holding = new CountDownLatch(1);
          CountDownLatch release = new CountDownLatch(1);
          g.fork(
              () -> {
                holding.countDown();
                release.await();
              });
          holding.await();
          CancelScope callerScope = CancelScope.create();
          Thread owner = Thread.currentThread();
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        Probes.awaitWaiting(owner, Duration.ofSeconds(10));
                        callerScope.cancel();
                      });
          callerScope.run(
              () -> {
                try {
                  g.start(
                      s -> {
                        ran.set(true);
                        s.started("no");
                      });
                } catch (InterruptedException e) {
                  thrown.set(e);
                  throw e;
                }
              });
          canceller.join();
          release.countDown();
          later.set(g.start(s -> s.started("got the place")));
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(ran).isFalse();
    assertThat(later.get()).isEqualTo("got the place");
  }

  /**
   * The same from inside a child (the new child waits for its place on its own thread, per
   * maxConcurrency's javadoc): the calling child's scope is cancelled while the work waits for its
   * place; start throws InterruptedException, the work never runs, and the place is not lost.
   */
  @RepeatedTest(10)
  void startFromAChildWaitingForAPlaceIsCancelledWithoutLosingThePlace() throws Exception {
    Fixtures.Tracking threads = new Fixtures.Tracking(Fixtures.ThreadKind.VIRTUAL);
    TaskGroup g =
        TaskGroup.builder().name("bounded-child").maxConcurrency(2).threadFactory(threads).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<String> later = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch holding = new CountDownLatch(1);
          CountDownLatch release = new CountDownLatch(1);
          g.fork(
              () -> {
                holding.countDown();
                release.await();
              });
          holding.await();
          CancelScope callerScope = CancelScope.create();
          Task<Void> starter =
              g.fork(
                  () ->
                      callerScope.run(
                          () -> {
                            try {
                              g.start(
                                  s -> {
                                    ran.set(true);
                                    s.started("no");
                                  });
                            } catch (InterruptedException e) {
                              thrown.set(e);
                              throw e;
                            }
                          }));
          // holder, starter, then the started work's thread, which waits for its place
          Probes.awaitTrue(
              "the started work's thread",
              Duration.ofSeconds(10),
              () -> threads.threads.size() == 3);
          Probes.awaitWaiting(List.copyOf(threads.threads).get(2), Duration.ofSeconds(10));
          callerScope.cancel();
          starter.get();
          release.countDown();
          later.set(g.start(s -> s.started("got the place")));
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(ran).isFalse();
    assertThat(later.get()).isEqualTo("got the place");
  }

  // ---- context propagators ---------------------------------------------------------------------

  /**
   * ContextPropagator javadoc: start children are wrapped, and the propagators' code after the work
   * finishes before the child leaves its group. The work sees the caller's context both before and
   * after {@code started()} (signalling moves it in the scope tree, not to another context), and
   * the propagator's "after" has run when the group's run returns.
   */
  @RepeatedTest(5)
  void theWorkKeepsTheCallersContextAcrossTheSignal() throws Exception {
    var trail = Propagators.trail();
    TaskGroup g =
        TaskGroup.builder()
            .name("propagated")
            .contextPropagator(new Propagators.CarryRequest())
            .contextPropagator(new Propagators.Tagging("t", trail))
            .build();
    AtomicReference<String> before = new AtomicReference<>();
    AtomicReference<String> after = new AtomicReference<>();
    AtomicReference<String> nestedFork = new AtomicReference<>();
    Propagators.REQUEST.set("request-42");
    try {
      g.run(
          () -> {
            String v =
                g.start(
                    s -> {
                      before.set(Propagators.REQUEST.get());
                      s.started("x");
                      after.set(Propagators.REQUEST.get());
                      nestedFork.set(g.fork(Propagators.REQUEST::get).get());
                    });
            assertThat(v).isEqualTo("x");
          });
    } finally {
      Propagators.REQUEST.remove();
    }
    assertThat(before.get()).isEqualTo("request-42");
    assertThat(after.get()).isEqualTo("request-42");
    assertThat(nestedFork.get()).isEqualTo("request-42");
    assertThat(trail).contains("t before", "t after");
    assertThat(trail.stream().filter(e -> e.equals("t after")).count()).isEqualTo(2);
  }

  /**
   * ContextPropagator javadoc: "returning without calling work.run() (an IllegalStateException) ...
   * For a TaskGroup#start child whose work has not signalled yet, such a failure before the work is
   * thrown by start instead"; and one thrown before work.run() likewise. Neither is a failure of
   * the group; a wrap that throws makes start throw RejectedExecutionException and leaves the group
   * as it was.
   */
  @Test
  void propagatorFailuresBeforeTheWorkAreThrownByStartNotTheGroup() throws Exception {
    RuntimeException before = new IllegalArgumentException("propagator failed before the work");
    RuntimeException inWrap = new IllegalStateException("wrap failed");
    AtomicBoolean skip = new AtomicBoolean();
    AtomicBoolean fail = new AtomicBoolean();
    AtomicBoolean wrapFails = new AtomicBoolean();
    ContextPropagator p =
        work -> {
          if (wrapFails.get()) {
            throw inWrap;
          }
          boolean s = skip.get();
          boolean f = fail.get();
          return () -> {
            if (f) {
              throw before;
            }
            if (!s) {
              work.run();
            }
          };
        };
    TaskGroup g = TaskGroup.builder().name("propagator-misuse").contextPropagator(p).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> skipped = new AtomicReference<>();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    AtomicReference<Throwable> rejected = new AtomicReference<>();
    g.run(
        () -> {
          skip.set(true);
          skipped.set(catchThrowable(() -> g.start(s -> ran.set(true))));
          skip.set(false);
          fail.set(true);
          failed.set(catchThrowable(() -> g.start(s -> ran.set(true))));
          fail.set(false);
          wrapFails.set(true);
          rejected.set(catchThrowable(() -> g.start(s -> ran.set(true))));
          wrapFails.set(false);
          assertThat(CancelScope.isCancelled()).isFalse();
          assertThat(g.<String>start(s -> s.started("still works"))).isEqualTo("still works");
        });
    assertThat(ran).isFalse();
    assertThat(skipped.get()).isInstanceOf(IllegalStateException.class);
    assertThat(failed.get()).isSameAs(before);
    assertThat(rejected.get()).isInstanceOf(RejectedExecutionException.class).hasCause(inWrap);
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---- cooperative scopes ----------------------------------------------------------------------

  /**
   * CancelScope.cooperative javadoc: inside it the library never interrupts the calling thread, and
   * the cancellation is still seen by {@code start}. Cancelled while it waits, start throws
   * InterruptedException after the work (on its own thread, interrupted as usual) ended; the scope
   * absorbs it, and no interrupt is left on the caller.
   */
  @RepeatedTest(10)
  void startInACooperativeScopeCancelledWhileWaiting() throws Exception {
    TaskGroup g = TaskGroup.named("cooperative-caller");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean statusWhenThrown = new AtomicBoolean(true);
    AtomicBoolean workEndedFirst = new AtomicBoolean();
    Finished workDone = new Finished();
    AtomicReference<CancelScope> scope = new AtomicReference<>();
    g.run(
        () -> {
          CancelScope coop = CancelScope.cooperative();
          scope.set(coop);
          CountDownLatch inWork = new CountDownLatch(1);
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitQuietly(inWork);
                        coop.cancel();
                      });
          coop.run(
              () -> {
                try {
                  g.start(
                      s -> {
                        try {
                          inWork.countDown();
                          Thread.sleep(60_000);
                        } finally {
                          workDone.mark();
                        }
                      });
                } catch (InterruptedException e) {
                  thrown.set(e);
                  statusWhenThrown.set(Thread.currentThread().isInterrupted());
                  workEndedFirst.set(workDone.count() == 1);
                  throw e;
                }
              });
          canceller.join();
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(statusWhenThrown).as("interrupt set inside the cooperative scope").isFalse();
    assertThat(workEndedFirst).isTrue();
    assertThat(scope.get().cancelCaught()).isTrue();
  }

  private static void awaitQuietly(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
