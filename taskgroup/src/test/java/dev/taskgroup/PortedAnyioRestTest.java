package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Twins of the rest of AnyIO 4's {@code tests/test_taskgroups.py}: the tests {@link
 * PortedAnyioTest} and {@link PortedScenariosTest} do not cover, plus adversarial variants of the
 * same families (start racing a cancel, failures of the host and the children, outside interrupts
 * of a scope, cancellations wrapped and rethrown, deadlines moved on a running scope, a group or
 * scope used after its exit). Translation: {@code start_soon} is {@code fork}, {@code tg.start} is
 * {@link TaskGroup#start}, a task's cancellation is its thread's interrupt, a native {@code
 * task.cancel()} is an interrupt from someone else, an {@code ExceptionGroup} is a {@link
 * TaskGroupException}, {@code KeyboardInterrupt} is an {@link Error}. Each test names the upstream
 * test it follows. Left out as meaningless for threads: {@code test_run_natively}, {@code
 * test_start_exception_delivery}, {@code test_task_group_in_generator}, {@code
 * test_cancel_host_asyncgen}, the generator-based coroutine tests, {@code
 * test_cancelscope_exit_before_enter} and {@code test_cancelscope_exit_in_wrong_task} (a scope is
 * entered and left by one {@code run} call on one thread), and {@code TestTaskStatusTyping}.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedAnyioRestTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  /** Blocks until interrupted (AnyIO's sleep_forever). */
  private static void sleepForever() throws InterruptedException {
    Thread.sleep(60_000);
  }

  /** Polls until {@code t} is parked or sleeping (AnyIO's wait_all_tasks_blocked), 10 s at most. */
  private static void awaitBlocked(Thread t) {
    Probes.awaitWaiting(t, Duration.ofSeconds(10));
  }

  /** Waits for {@code ref} to be set by another thread, 10 s at most. */
  private static Thread awaitThread(AtomicReference<Thread> ref) {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (ref.get() == null) {
      if (System.nanoTime() > end) {
        throw new AssertionError("the thread never showed up");
      }
      Thread.onSpinWait();
    }
    return ref.get();
  }

  private static boolean checkpointThrows() {
    try {
      CancelScope.checkpoint();
      return false;
    } catch (InterruptedException e) {
      return true;
    }
  }

  /** Spins (no checkpoint, no blocking call) until {@code nanos} have passed. */
  private static void spin(long nanos) {
    long end = System.nanoTime() + nanos;
    while (System.nanoTime() - end < 0) {
      Thread.onSpinWait();
    }
  }

  /** An error standing for Python's KeyboardInterrupt, a BaseException that is no Exception. */
  static final class Crash extends Error {
    Crash(String message) {
      super(message);
    }
  }

  // ---------------------------------------------------------------- closed groups and reuse

  // AnyIO test_already_closed: a group that ran to the end (no failure) takes no new work, and the
  // message says why; the refused calls leave it as it was.
  @Test
  void forkAndStartAfterACleanRunAreRefusedAndLeaveTheGroupDone() throws Exception {
    TaskGroup g = TaskGroup.named("closed");
    g.run(() -> {});
    assertThatThrownBy(() -> g.fork(() -> "x"))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    assertThatThrownBy(() -> g.start(StartSignal::started))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    assertThatThrownBy(() -> g.run(() -> {})).isInstanceOf(IllegalStateException.class);
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(g.toString()).contains("done");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_already_closed, re-entrant: run called again from the group's own body is refused,
  // and the group keeps working (its children run, run returns normally).
  @RepeatedTest(3)
  void runningTheGroupAgainFromItsBodyIsRefusedAndTheGroupStillWorks() throws Exception {
    TaskGroup g = TaskGroup.named("reentrant");
    AtomicReference<Throwable> second = new AtomicReference<>();
    AtomicBoolean childRan = new AtomicBoolean();
    g.run(
        () -> {
          second.set(catchThrowable(() -> g.run(() -> {})));
          g.fork(() -> childRan.set(true)).get();
        });
    assertThat(second.get()).isInstanceOf(IllegalStateException.class);
    assertThat(childRan).isTrue();
    assertThat(g.cancelCaught()).isFalse();
  }

  // AnyIO test_already_closed for the group's cancel scope: after the group's exit, a deadline in
  // the past and a cancel() reach nothing; cancel() only sets cancelCalled, never cancelCaught.
  @Test
  void theScopeOfAFinishedGroupCancelsNothing() throws Exception {
    TaskGroup g = TaskGroup.named("after-exit");
    AtomicReference<Thread> owner = new AtomicReference<>();
    g.run(() -> owner.set(Thread.currentThread()));
    CancelScope s = g.cancelScope();
    s.setDeadline(Instant.now().minusSeconds(1));
    s.cancel("late");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isFalse();
    assertThatThrownBy(() -> s.run(() -> {})).isInstanceOf(IllegalStateException.class);
    assertThat(CancelScope.isCancelled()).isFalse();
  }

  // ---------------------------------------------------------------- start

  // AnyIO test_no_called_started_twice: the work signals while the group is being cancelled. Either
  // start returns the value or it throws InterruptedException; never a "started twice" error, never
  // a failure of the group, and the group catches its cancel.
  @RepeatedTest(20)
  void aSignalRacingTheGroupsCancelIsNeverAFailure() throws Exception {
    TaskGroup g = TaskGroup.named("signal-vs-cancel");
    AtomicReference<Object> outcome = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch go = new CountDownLatch(1);
          g.fork(
              () -> {
                go.await();
                g.cancel();
              });
          try {
            outcome.set(
                g.<String>start(
                    s -> {
                      go.countDown();
                      s.started("v");
                      sleepForever();
                    }));
          } catch (InterruptedException e) {
            outcome.set(e);
          }
        });
    assertThat(outcome.get())
        .satisfiesAnyOf(
            o -> assertThat(o).isEqualTo("v"),
            o -> assertThat(o).isInstanceOf(InterruptedException.class));
    assertThat(g.cancelCaught()).isTrue();
  }

  // AnyIO test_start_crash_after_started_call, with an Error: the work signals, then throws an
  // Error; start returned the value, and run reports the Error as the only failure.
  @RepeatedTest(5)
  void anErrorAfterTheSignalIsTheGroupsFailure() throws Exception {
    TaskGroup g = TaskGroup.named("error-after-signal");
    AtomicReference<Integer> value = new AtomicReference<>();
    Crash crash = new Crash("after");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        value.set(
                            g.<Integer>start(
                                s -> {
                                  s.started(2);
                                  throw crash;
                                }))));
    assertThat(value).hasValue(2);
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(crash);
  }

  // AnyIO test_start_crash_before_started_call, with an Error: start throws the Error itself (an
  // unchecked failure is thrown as it is), and it is not a failure of the group.
  @RepeatedTest(5)
  void anErrorBeforeTheSignalIsThrownByStartAndNotByRun() throws Exception {
    TaskGroup g = TaskGroup.named("error-before-signal");
    Crash crash = new Crash("before");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    g.run(
        () ->
            thrown.set(
                catchThrowable(
                    () ->
                        g.start(
                            s -> {
                              throw crash;
                            }))));
    assertThat(thrown.get()).isSameAs(crash);
    assertThat(g.cancelCalled()).isFalse();
  }

  // AnyIO test_start_no_started_call, with the group cancelled while the work runs: the work
  // catches the cancellation and returns without signalling. start throws InterruptedException
  // (the caller is cancelled), not IllegalStateException, and the group absorbs its cancel.
  @RepeatedTest(20)
  void workThatSwallowsTheCancelAndReturnsUnsignalledEndsStartAsCancelled() throws Exception {
    TaskGroup g = TaskGroup.named("swallow-unsignalled");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch in = new CountDownLatch(1);
          g.fork(
              () -> {
                in.await();
                g.cancel();
              });
          thrown.set(
              catchThrowable(
                  () ->
                      g.start(
                          s -> {
                            in.countDown();
                            try {
                              sleepForever();
                            } catch (InterruptedException swallowed) {
                              // returns without signalling
                            }
                          })));
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(g.cancelCaught()).isTrue();
  }

  // AnyIO test_start_no_started_call racing a cancel, with the body not catching: start's
  // cancellation leaves the body like any other, so the group ends cancelled, not failed.
  @RepeatedTest(20)
  void aCancelledBodyWhoseStartedWorkSwallowsTheCancelDoesNotFailTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("swallow-uncaught");
    AtomicBoolean afterStart = new AtomicBoolean();
    g.run(
        () -> {
          CountDownLatch in = new CountDownLatch(1);
          g.fork(
              () -> {
                in.await();
                g.cancel();
              });
          g.start(
              s -> {
                in.countDown();
                try {
                  sleepForever();
                } catch (InterruptedException swallowed) {
                  // returns without signalling
                }
              });
          afterStart.set(true);
        });
    assertThat(afterStart).isFalse();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_start_cancels_parent_scope with the work swallowing the cancellation: the caller's
  // own scope is cancelled while it waits; the work returns unsignalled; the scope catches the
  // cancellation and the group is untouched.
  @RepeatedTest(20)
  void aCancelledCallerScopeWhoseStartedWorkSwallowsTheCancelCatchesIt() throws Exception {
    TaskGroup g = TaskGroup.named("swallow-scope");
    CancelScope scope = CancelScope.create();
    AtomicBoolean afterStart = new AtomicBoolean();
    g.run(
        () ->
            scope.run(
                () -> {
                  g.start(
                      s -> {
                        scope.cancel();
                        try {
                          sleepForever();
                        } catch (InterruptedException swallowed) {
                          // returns without signalling
                        }
                      });
                  afterStart.set(true);
                }));
    assertThat(afterStart).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_start_cancels_parent_scope, the shielded way round: the caller waits in start inside
  // a shield while the scope around the shield is cancelled; the work is not cancelled, signals,
  // and start returns its value. Outside the shield the cancellation then applies.
  @RepeatedTest(10)
  void startInsideAShieldIsNotCancelledByTheScopeOutside() throws Exception {
    TaskGroup g = TaskGroup.named("start-shielded");
    AtomicReference<String> value = new AtomicReference<>();
    AtomicBoolean workInterrupted = new AtomicBoolean();
    AtomicBoolean afterShieldThrew = new AtomicBoolean();
    CancelScope outer = CancelScope.create();
    g.run(
        () ->
            outer.run(
                () -> {
                  CancelScope.shielded()
                      .run(
                          () ->
                              value.set(
                                  g.<String>start(
                                      s -> {
                                        outer.cancel();
                                        try {
                                          Thread.sleep(20);
                                        } catch (InterruptedException e) {
                                          workInterrupted.set(true);
                                          throw e;
                                        }
                                        s.started("ready");
                                      })));
                  afterShieldThrew.set(true);
                  CancelScope.checkpoint();
                  afterShieldThrew.set(false);
                }));
    assertThat(workInterrupted).isFalse();
    assertThat(value).hasValue("ready");
    assertThat(afterShieldThrew).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
  }

  // AnyIO test_start_cancelled, from inside a shield: the group itself is cancelled, so a start
  // from
  // a shielded scope in its body still does not start the work (the group is effectively
  // cancelled for its children, whatever shields the caller).
  @RepeatedTest(5)
  void startFromAShieldIntoACancelledGroupDoesNotRunTheWork() throws Exception {
    TaskGroup g = TaskGroup.named("shielded-start-cancelled");
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    g.run(
        () -> {
          g.cancel();
          CancelScope.shielded()
              .run(
                  () ->
                      thrown.set(
                          catchThrowable(
                              () ->
                                  g.start(
                                      s -> {
                                        ran.set(true);
                                        s.started();
                                      }))));
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(ran).isFalse();
    assertThat(g.cancelCaught()).isTrue();
  }

  // AnyIO test_start_parent_id / test_start_soon_parent_id: a task forked by a child, and a task
  // started by a child, belong to the group (shown as its children, beside the forking child), and
  // the work waiting for its signal is shown in the tree too.
  @RepeatedTest(3)
  void tasksForkedOrStartedByAChildAreTheGroupsChildren() throws Exception {
    TaskGroup g = TaskGroup.named("parent-ids");
    AtomicReference<String> beforeSignal = new AtomicReference<>();
    AtomicReference<String> afterSignal = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch sub = new CountDownLatch(1);
          CountDownLatch release = new CountDownLatch(1);
          g.fork(
              "starter",
              () -> {
                g.fork("sub", () -> release.await());
                g.start(
                    s -> {
                      beforeSignal.set(TaskTree.capture().format());
                      s.started();
                      sub.countDown();
                      release.await();
                    });
                release.await();
                return null;
              });
          sub.await();
          afterSignal.set(TaskTree.capture().format());
          release.countDown();
        });
    for (String tree : List.of(beforeSignal.get(), afterSignal.get())) {
      int starter = column(tree, "task 'starter'");
      assertThat(column(tree, "task 'sub'")).as(tree).isEqualTo(starter);
    }
    // Before its signal the started work (unnamed) is shown too, a sibling of the starter: three
    // tasks at the starter's column.
    String before = beforeSignal.get();
    int at = column(before, "task 'starter'");
    assertThat(before.lines().filter(l -> l.indexOf("task ") == at).count())
        .as(before)
        .isEqualTo(3);
  }

  /** The column at which {@code node} starts on its line of {@code tree}. */
  private static int column(String tree, String node) {
    for (String line : tree.split("\n")) {
      int at = line.indexOf(node);
      if (at >= 0) {
        return at;
      }
    }
    throw new AssertionError(node + " not in\n" + tree);
  }

  // ---------------------------------------------------------------- failures of host and children

  // AnyIO test_host_exception: the body fails while a child sleeps; the child is cancelled (never
  // sets its result) and the body's exception is the only failure.
  @RepeatedTest(5)
  void aBodyFailureCancelsTheSleepingChildAndIsTheOnlyFailure() throws Exception {
    TaskGroup g = TaskGroup.named("host-exception");
    AtomicReference<String> result = new AtomicReference<>();
    IllegalStateException dummy = new IllegalStateException("dummy error");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            Thread.sleep(3_000);
                            result.set("a");
                          });
                      throw dummy;
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(dummy);
    assertThat(result).hasNullValue();
  }

  // AnyIO test_failing_child_task_cancels_host: a child fails once the body blocks; the body's
  // sleep
  // is cut short, and the child's exception is the only failure.
  @RepeatedTest(5)
  void aFailingChildCancelsTheBlockedBody() throws Exception {
    TaskGroup g = TaskGroup.named("child-cancels-host");
    AtomicBoolean sleepCompleted = new AtomicBoolean();
    Thread body = Thread.currentThread();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            awaitBlocked(body);
                            throw new IllegalStateException("foo");
                          });
                      Thread.sleep(5_000);
                      sleepCompleted.set(true);
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .satisfies(f -> assertThat(f).hasMessage("foo"));
    assertThat(sleepCompleted).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_failing_host_task_cancels_children: the body fails once its child blocks.
  @RepeatedTest(5)
  void aFailingBodyCancelsTheBlockedChild() throws Exception {
    TaskGroup g = TaskGroup.named("host-cancels-child");
    AtomicBoolean sleepCompleted = new AtomicBoolean();
    AtomicReference<Thread> child = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            child.set(Thread.currentThread());
                            Thread.sleep(5_000);
                            sleepCompleted.set(true);
                          });
                      awaitBlocked(awaitThread(child));
                      throw new IllegalStateException("foo");
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .satisfies(f -> assertThat(f).hasMessage("foo"));
    assertThat(sleepCompleted).isFalse();
  }

  // AnyIO test_exception_cancels_siblings: a child forked after its sibling blocked fails at once;
  // the sibling is cancelled and the failure is reported once.
  @RepeatedTest(5)
  void aFailingChildCancelsItsBlockedSibling() throws Exception {
    TaskGroup g = TaskGroup.named("cancels-siblings");
    AtomicBoolean sleepCompleted = new AtomicBoolean();
    AtomicReference<Thread> sibling = new AtomicReference<>();
    AtomicReference<Task<Void>> sleeperTask = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Void> sleeper =
                          g.fork(
                              () -> {
                                sibling.set(Thread.currentThread());
                                Thread.sleep(5_000);
                                sleepCompleted.set(true);
                              });
                      awaitBlocked(awaitThread(sibling));
                      g.fork(
                          () -> {
                            throw new IllegalStateException("foo");
                          });
                      sleeperTask.set(sleeper);
                      sleeper.get();
                    }));
    assertThat(sleeperTask.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .satisfies(f -> assertThat(f).hasMessage("foo"));
    assertThat(sleepCompleted).isFalse();
  }

  // AnyIO test_unhandled_exception_group: a KeyboardInterrupt in the host while a nested group
  // sleeps. Here an Error is a failure like any other (TaskGroup javadoc: "any exception or
  // error"), so run throws a TaskGroupException holding just that Error: the nested group's
  // cancellation adds nothing.
  @RepeatedTest(5)
  void anErrorInTheBodyCancelsANestedGroupAndIsTheOnlyFailure() throws Exception {
    TaskGroup g = TaskGroup.named("keyboard-interrupt");
    Crash crash = new Crash("^C");
    AtomicReference<Object> nestedOutcome = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      CountDownLatch nestedIn = new CountDownLatch(2);
                      g.fork(
                          () -> {
                            TaskGroup nested = TaskGroup.named("nested");
                            try {
                              nested.run(
                                  () -> {
                                    nested.fork(
                                        () -> {
                                          nestedIn.countDown();
                                          sleepForever();
                                        });
                                    nestedIn.countDown();
                                    sleepForever();
                                  });
                              nestedOutcome.set("returned");
                            } catch (InterruptedException e) {
                              nestedOutcome.set(e);
                              throw e;
                            }
                          });
                      nestedIn.await();
                      throw crash;
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(crash);
    assertThat(nestedOutcome.get()).isInstanceOf(InterruptedException.class);
  }

  // AnyIO test_cancel_cascade with an Error in cleanup: a child's finally throws an Error while
  // the group is cancelled on purpose; the Error is a failure, run does not return normally.
  @RepeatedTest(5)
  void anErrorFromCleanupDuringAGroupCancelIsReported() throws Exception {
    TaskGroup g = TaskGroup.named("error-in-cleanup");
    Crash crash = new Crash("cleanup");
    AtomicReference<Thread> child = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            child.set(Thread.currentThread());
                            try {
                              sleepForever();
                            } finally {
                              throw crash;
                            }
                          });
                      awaitBlocked(awaitThread(child));
                      g.cancel();
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(crash);
    assertThat(g.cancelCalled()).isTrue();
  }

  // AnyIO test_cancel_cascade with shielded cleanup that fails: a cancelled child's cleanup runs in
  // a shield, blocks there (not interrupted), then fails; the failure is reported.
  @RepeatedTest(5)
  void aFailureInShieldedCleanupOfACancelledChildIsReported() throws Exception {
    TaskGroup g = TaskGroup.named("shielded-cleanup-fails");
    AtomicReference<Thread> child = new AtomicReference<>();
    AtomicBoolean cleanupSlept = new AtomicBoolean();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            child.set(Thread.currentThread());
                            try {
                              sleepForever();
                            } finally {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        Thread.sleep(20);
                                        cleanupSlept.set(true);
                                        throw new IllegalStateException("goodbye failed");
                                      });
                            }
                          });
                      awaitBlocked(awaitThread(child));
                      g.cancel();
                    }));
    assertThat(cleanupSlept).isTrue();
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .satisfies(f -> assertThat(f).hasMessage("goodbye failed"));
  }

  // ---------------------------------------------------------------- outside interrupts

  // AnyIO test_propagate_native_cancellation_from_taskgroup: the owner, waiting in its body, is
  // interrupted by someone else; the child is cancelled and run throws InterruptedException.
  @RepeatedTest(5)
  void anOutsideInterruptOfTheOwnerCancelsTheChildAndThrows() throws Exception {
    AtomicReference<Throwable> outcome = new AtomicReference<>();
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    CountDownLatch childIn = new CountDownLatch(1);
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  TaskGroup g = TaskGroup.named("native-cancel");
                  try {
                    g.run(
                        () -> {
                          child.set(
                              g.fork(
                                  () -> {
                                    childIn.countDown();
                                    sleepForever();
                                  }));
                          sleepForever();
                        });
                    outcome.set(new AssertionError("run returned"));
                  } catch (Throwable e) {
                    outcome.set(e);
                  }
                });
    childIn.await();
    awaitBlocked(owner);
    owner.interrupt();
    owner.join(10_000);
    assertThat(owner.isAlive()).isFalse();
    assertThat(outcome.get()).isInstanceOf(InterruptedException.class);
    assertThat(child.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
  }

  // AnyIO TestUncancel.test_uncancel_after_native_cancel: an interrupt from someone else inside a
  // scope that nobody cancelled ends the scope with InterruptedException; the scope caught nothing.
  @Test
  void anOutsideInterruptInsideAScopeIsNotItsCancellation() {
    CancelScope scope = CancelScope.create();
    Throwable t =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      Thread.currentThread().interrupt();
                      Thread.sleep(0);
                    }));
    assertThat(t)
        .isInstanceOf(InterruptedException.class)
        .isNotInstanceOf(CancelledException.class);
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(scope.cancelCaught()).isFalse();
  }

  // AnyIO TestUncancel.test_uncancel_after_scope_cancel: a scope's own cancel, absorbed, leaves the
  // thread as it was: no interrupt status, not cancelled.
  @Test
  void anAbsorbedCancelLeavesNoInterruptOnTheThread() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          Thread.sleep(0);
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(CancelScope.isCancelled()).isFalse();
  }

  // AnyIO TestUncancel.test_uncancel_after_scope_and_native_cancel: an interrupt from someone else
  // pending when the scope is cancelled is not lost: after the scope it is set again or thrown.
  @RepeatedTest(5)
  void anOutsideInterruptPendingWhenTheScopeIsCancelledSurvivesTheScope() {
    CancelScope scope = CancelScope.create();
    Throwable t =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      Thread.currentThread().interrupt(); // someone else's interrupt
                      scope.cancel();
                      CancelScope.checkpoint();
                    }));
    boolean kept =
        t instanceof InterruptedException || (t == null && Thread.currentThread().isInterrupted());
    assertThat(kept).as("outside interrupt kept, thrown: %s", t).isTrue();
    assertThat(scope.cancelCalled()).isTrue();
  }

  // AnyIO TestUncancel.test_cancel_message_replaced: after catching an outside interrupt, an inner
  // scope is cancelled and its body replaces the cancellation with an InterruptedException of its
  // own after the library's landed; the scope absorbs it, nothing escapes.
  @Test
  void aReplacedCancellationIsStillAbsorbedAfterAnOutsideInterruptWasHandled() throws Exception {
    try {
      Thread.currentThread().interrupt();
      Thread.sleep(0);
    } catch (InterruptedException handled) {
      // the outside interrupt, handled and gone
    }
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          try {
            Thread.sleep(0);
          } catch (InterruptedException e) {
            throw new InterruptedException("replaced");
          }
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_reraise_cancelled_in_excgroup: the cancellation caught and rethrown wrapped (here in
  // a RuntimeException, the cancellation in its cause chain) is still the scope's cancellation.
  @Test
  void aCancellationRethrownWrappedIsAbsorbedByItsScope() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          try {
            sleepForever();
          } catch (InterruptedException e) {
            throw new RuntimeException("wrapped", e);
          }
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- futures

  // AnyIO test_cancel_native_future_tasks: a child awaiting a future that never completes is
  // cancelled with its group, and the future is cancelled (CancelScope.await javadoc).
  @RepeatedTest(5)
  void aChildAwaitingANeverCompletedFutureEndsWithTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("native-future");
    CompletableFuture<Void> never = new CompletableFuture<>();
    AtomicReference<Thread> child = new AtomicReference<>();
    g.run(
        () -> {
          g.fork(
              () -> {
                child.set(Thread.currentThread());
                return CancelScope.await(never);
              });
          awaitBlocked(awaitThread(child));
          g.cancel();
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(never).isCancelled();
  }

  // AnyIO test_cancel_native_future_tasks_cancel_scope: the same, with the await inside a scope of
  // the child's own.
  @RepeatedTest(5)
  void aChildAwaitingAFutureInsideItsOwnScopeEndsWithTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("native-future-scope");
    CompletableFuture<Void> never = new CompletableFuture<>();
    AtomicReference<Thread> child = new AtomicReference<>();
    CancelScope inner = CancelScope.create();
    g.run(
        () -> {
          g.fork(
              () ->
                  inner.run(
                      () -> {
                        child.set(Thread.currentThread());
                        CancelScope.await(never);
                      }));
          awaitBlocked(awaitThread(child));
          g.cancel();
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(never).isCancelled();
  }

  // AnyIO test_task_in_sync_spawn_callback: the work is called on the child's own thread, never on
  // the forking one.
  @Test
  void theWorkRunsOnTheChildsThreadNotTheForkers() throws Exception {
    TaskGroup g = TaskGroup.named("sync-spawn");
    Thread forker = Thread.currentThread();
    AtomicReference<Thread> ranOn = new AtomicReference<>();
    g.run(() -> g.fork(() -> ranOn.set(Thread.currentThread())));
    assertThat(ranOn.get()).isNotNull().isNotSameAs(forker);
  }

  // AnyIO test_shielded_cancel_sleep_time: cancelling a group whose child waits in a shield does
  // not
  // make the owner spin while it waits for the child: it sleeps, using little CPU.
  @RepeatedTest(2)
  void waitingForAShieldedChildOfACancelledGroupDoesNotSpin() throws Exception {
    ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    long hangNanos = TimeUnit.MILLISECONDS.toNanos(400);
    CountDownLatch event = new CountDownLatch(1);
    AtomicReference<Thread> child = new AtomicReference<>();
    AtomicBoolean childInterrupted = new AtomicBoolean();
    TaskGroup outer = TaskGroup.named("setter");
    long[] cpu = new long[1];
    outer.run(
        () -> {
          outer.fork(
              () -> {
                Thread.sleep(TimeUnit.NANOSECONDS.toMillis(hangNanos));
                event.countDown();
              });
          TaskGroup g = TaskGroup.named("shielded-sleeper");
          g.run(
              () -> {
                g.fork(
                    () ->
                        CancelScope.shielded()
                            .run(
                                () -> {
                                  child.set(Thread.currentThread());
                                  try {
                                    event.await();
                                  } catch (InterruptedException e) {
                                    childInterrupted.set(true);
                                    throw e;
                                  }
                                }));
                awaitBlocked(awaitThread(child));
                g.cancel();
                cpu[0] = mx.getCurrentThreadCpuTime();
              });
          cpu[0] = mx.getCurrentThreadCpuTime() - cpu[0];
        });
    assertThat(childInterrupted).isFalse();
    assertThat(cpu[0]).as("owner CPU while waiting, ns").isLessThan(hangNanos / 2);
  }

  // ---------------------------------------------------------------- deadlines and timeouts

  // AnyIO test_fail_after_scope_cancelled_before_timeout (xfail upstream: asyncio cannot tell):
  // a scope cancelled explicitly whose deadline passes before the checkpoint keeps the explicit
  // reason, the first one.
  @RepeatedTest(3)
  void anExplicitCancelBeforeTheDeadlinePassedKeepsItsReason() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(50));
    AtomicBoolean threw = new AtomicBoolean();
    scope.run(
        () -> {
          scope.cancel("mine");
          spin(TimeUnit.MILLISECONDS.toNanos(120));
          threw.set(true);
          CancelScope.checkpoint();
          threw.set(false);
        });
    assertThat(threw).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(scope.cancelReason()).contains("mine");
  }

  // AnyIO test_fail_after with the cancellation wrapped by the body: the TimeoutException's cause
  // is
  // what the body threw, and that holds the InterruptedException.
  @Test
  void failAfterChainsTheWrappedCancellation() {
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(20),
                    () -> {
                      try {
                        sleepForever();
                      } catch (InterruptedException e) {
                        throw new IllegalStateException("wrapped", e);
                      }
                      return null;
                    }));
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(t.getCause()).isInstanceOf(IllegalStateException.class).hasMessage("wrapped");
    assertThat(t.getCause().getCause()).isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_fail_after, with the body replacing the cancellation by an unrelated failure: the
  // failure passes through unchanged (not a timeout).
  @Test
  void failAfterPassesOnAnUnrelatedFailureRaisedWhileTimingOut() {
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(20),
                    () -> {
                      try {
                        sleepForever();
                      } catch (InterruptedException e) {
                        // the cancellation dropped, a failure of its own raised
                      }
                      throw new IllegalArgumentException("unrelated");
                    }));
    assertThat(t).isInstanceOf(IllegalArgumentException.class).hasMessage("unrelated");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_move_on_after with a negative delay: AnyIO treats it as already expired; here a
  // negative timeout is refused (CancelScope javadoc), and nothing runs.
  @Test
  void aNegativeTimeoutIsRefusedBeforeTheBodyRuns() {
    AtomicBoolean ran = new AtomicBoolean();
    assertThatThrownBy(
            () -> CancelScope.moveOnAfter(Duration.ofMillis(-1), () -> ran.getAndSet(true)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("negative");
    assertThatThrownBy(
            () -> CancelScope.failAfter(Duration.ofMillis(-1), () -> ran.getAndSet(true)))
        .isInstanceOf(IllegalArgumentException.class);
    CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(5));
    assertThatThrownBy(() -> scope.setTimeout(Duration.ofMillis(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(ran).isFalse();
  }

  // AnyIO test_deadline_reached_on_start, with a deadline in the past: the scope is cancelled
  // before
  // it runs, and a later deadline set before the run does not undo that.
  @Test
  void aPastDeadlineBeforeRunIsNotUndoneByALaterOne() throws Exception {
    CancelScope scope = CancelScope.withDeadline(Instant.now().minusSeconds(1));
    assertThat(scope.cancelCalled()).isTrue();
    scope.setDeadline(Instant.now().plusSeconds(60));
    AtomicBoolean completed = new AtomicBoolean();
    scope.run(
        () -> {
          CancelScope.checkpoint();
          completed.set(true);
        });
    assertThat(completed).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
  }

  // AnyIO test_deadline_moved, from another thread: a deadline brought forward while the body
  // blocks cancels it at the new time; one moved later after it fired does not undo it.
  @RepeatedTest(5)
  void aDeadlineBroughtForwardFromAnotherThreadCancelsTheBlockedBody() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(60));
    Thread body = Thread.currentThread();
    TaskGroup helper = TaskGroup.named("mover");
    AtomicBoolean completed = new AtomicBoolean();
    helper.run(
        () -> {
          helper.fork(
              () -> {
                awaitBlocked(body);
                scope.setDeadline(Instant.now().minusMillis(1));
              });
          CancelScope.shielded()
              .run(
                  () ->
                      scope.run(
                          () -> {
                            Thread.sleep(20_000);
                            completed.set(true);
                          }));
        });
    assertThat(completed).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
    scope.setDeadline(Instant.now().plusSeconds(60));
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_cancelled_not_caught, for a deadline: the deadline fires while the body spins with
  // no checkpoint; the body returns normally, so the scope caught nothing, and the deadline's
  // interrupt does not outlive the scope.
  @RepeatedTest(5)
  void aDeadlineFiringDuringABusyBodyThatReturnsIsNotCaughtAndLeavesNoInterrupt() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(10));
    String result =
        scope.call(
            () -> {
              spin(TimeUnit.MILLISECONDS.toNanos(60));
              while (!CancelScope.isCancelled()) {
                Thread.onSpinWait();
              }
              return "done";
            });
    assertThat(result).isEqualTo("done");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_shielded_deadline with the deadline expiring: a scope's own deadline inside a shield
  // fires while the scope outside (with a longer one) does not; the inner one catches it.
  @RepeatedTest(3)
  void aDeadlineInsideAShieldFiresAndIsCaughtThere() throws Exception {
    CancelScope outer = CancelScope.withTimeout(Duration.ofSeconds(30));
    CancelScope inner = CancelScope.withTimeout(Duration.ofMillis(20));
    AtomicBoolean afterInner = new AtomicBoolean();
    outer.run(
        () -> {
          CancelScope.shielded().run(() -> inner.run(() -> sleepForever()));
          afterInner.set(!CancelScope.isCancelled());
        });
    assertThat(inner.cancelCaught()).isTrue();
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(afterInner).isTrue();
  }

  // ---------------------------------------------------------------- nested scopes and exceptions

  // AnyIO test_cancelscope_wrong_exit_order, the exception-driven way: a failure thrown in the
  // innermost of two cancelled scopes leaves both unchanged; neither catches anything, and no
  // interrupt is left behind.
  @RepeatedTest(5)
  void aFailureLeavingTwoCancelledScopesPassesBothUnchanged() {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("boom");
    Throwable t =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        inner.run(
                            () -> {
                              outer.cancel();
                              inner.cancel();
                              throw boom;
                            })));
    assertThat(t).isSameAs(boom);
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_triple_nested_shield_checkpoint_in_outer, with only the outer of two scopes
  // cancelled: the cancellation leaving the inner one goes to the outer one (the outermost
  // cancelled), which catches it; the inner one caught nothing.
  @RepeatedTest(5)
  void aCancellationOfTheOuterScopePassesTheInnerOneAndIsCaughtOutside() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    AtomicBoolean afterInner = new AtomicBoolean();
    outer.run(
        () -> {
          inner.run(
              () -> {
                outer.cancel();
                sleepForever();
              });
          afterInner.set(true);
        });
    assertThat(afterInner).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(inner.cancelCalled()).isFalse();
  }

  // ---------------------------------------------------------------- groups, deadlines, shields

  // AnyIO test_cancel_child_task_when_host_is_shielded, the other way round: the group's own scope
  // shielded from inside its body keeps a cancel of the scope around it out of the body and the
  // children; once the group ends, the cancellation applies outside.
  @RepeatedTest(5)
  void aGroupShieldedFromItsBodyKeepsTheOuterCancelOut() throws Exception {
    CancelScope outer = CancelScope.create();
    TaskGroup g = TaskGroup.named("shielded-group");
    AtomicBoolean childSlept = new AtomicBoolean();
    AtomicBoolean bodySlept = new AtomicBoolean();
    AtomicBoolean afterGroup = new AtomicBoolean();
    outer.run(
        () -> {
          g.run(
              () -> {
                g.cancelScope().setShielded(true);
                outer.cancel();
                g.fork(
                    () -> {
                      Thread.sleep(20);
                      childSlept.set(true);
                    });
                Thread.sleep(20);
                bodySlept.set(true);
              });
          afterGroup.set(true);
          CancelScope.checkpoint();
          afterGroup.set(false);
        });
    assertThat(childSlept).isTrue();
    assertThat(bodySlept).isTrue();
    assertThat(afterGroup).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
  }

  // AnyIO test_deadline_moved, for a group: the builder's short timeout moved later from the body
  // lets the body and a child outlive the first deadline.
  @RepeatedTest(2)
  void aGroupTimeoutMovedLaterFromTheBodyDoesNotFire() throws Exception {
    TaskGroup g = TaskGroup.builder().name("moved").timeout(Duration.ofMillis(100)).build();
    AtomicBoolean childDone = new AtomicBoolean();
    AtomicBoolean bodyDone = new AtomicBoolean();
    g.run(
        () -> {
          g.cancelScope().setDeadline(Instant.now().plusSeconds(60));
          g.fork(
              () -> {
                Thread.sleep(250);
                childDone.set(true);
              });
          Thread.sleep(250);
          bodyDone.set(true);
        });
    assertThat(childDone).isTrue();
    assertThat(bodyDone).isTrue();
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
  }

  // AnyIO test_deadline_reached_on_start, for a group: a zero timeout cancels at once; the body's
  // first checkpoint throws, a fork returns a task already cancelled that runs nothing.
  @RepeatedTest(3)
  void aGroupWithAZeroTimeoutStartsCancelled() throws Exception {
    TaskGroup g = TaskGroup.builder().name("zero").timeout(Duration.ZERO).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<Void>> forked = new AtomicReference<>();
    AtomicBoolean pastCheckpoint = new AtomicBoolean();
    g.run(
        () -> {
          forked.set(g.fork(() -> ran.set(true)));
          CancelScope.checkpoint();
          pastCheckpoint.set(true);
        });
    assertThat(pastCheckpoint).isFalse();
    assertThat(ran).isFalse();
    assertThat(forked.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
  }

  // AnyIO test_exception_group_host with the host replacing its cancellation: a child fails, the
  // body's wait is cut short and the body throws its own exception from the catch. Both are
  // failures, the child's first.
  @RepeatedTest(5)
  void aBodyReplacingTheCancellationAChildsFailureCausedAddsItsOwnFailure() throws Exception {
    TaskGroup g = TaskGroup.named("host-replaces");
    IllegalStateException child = new IllegalStateException("child");
    IllegalArgumentException host = new IllegalArgumentException("host");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            throw child;
                          });
                      try {
                        sleepForever();
                      } catch (InterruptedException e) {
                        throw host;
                      }
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(child, host);
  }

  // AnyIO test_exception_group_filtering after a cancel: the outer group is cancelled on purpose,
  // and the cleanup of a nested group's child fails; the outer group reports the nested group's
  // TaskGroupException (kept whole), and nothing of the cancellation.
  @RepeatedTest(5)
  void aNestedGroupsCleanupFailureAfterAnOuterCancelIsReportedWhole() throws Exception {
    TaskGroup g = TaskGroup.named("outer-cancelled");
    AtomicReference<Thread> leaf = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            TaskGroup nested = TaskGroup.named("nested");
                            nested.run(
                                () -> {
                                  nested.fork(
                                      () -> {
                                        leaf.set(Thread.currentThread());
                                        try {
                                          sleepForever();
                                        } finally {
                                          throw new IllegalStateException("leaf cleanup");
                                        }
                                      });
                                  sleepForever();
                                });
                          });
                      awaitBlocked(awaitThread(leaf));
                      g.cancel();
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .isInstanceOfSatisfying(
            TaskGroupException.class,
            inner ->
                assertThat(inner.failures())
                    .singleElement()
                    .satisfies(f -> assertThat(f).hasMessage("leaf cleanup")));
  }

  // AnyIO test_cancel_scope_in_child_task, for a task's own cancel: Task.cancel of a child inside a
  // shield of its own waits for the child to leave the shield, then cancels it there; the group
  // and the body are untouched.
  @RepeatedTest(5)
  void cancellingAChildTaskReachesItOnlyAfterItsShield() throws Exception {
    TaskGroup g = TaskGroup.named("task-cancel-shield");
    AtomicBoolean shieldDone = new AtomicBoolean();
    AtomicBoolean afterShield = new AtomicBoolean();
    AtomicReference<Thread> child = new AtomicReference<>();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch cancelled = new CountDownLatch(1);
          task.set(
              g.fork(
                  () -> {
                    CancelScope.shielded()
                        .run(
                            () -> {
                              child.set(Thread.currentThread());
                              cancelled.await();
                              Thread.sleep(10);
                              shieldDone.set(true);
                            });
                    afterShield.set(true);
                    CancelScope.checkpoint();
                    afterShield.set(false);
                  }));
          awaitBlocked(awaitThread(child));
          assertThat(task.get().cancel(true)).isTrue();
          cancelled.countDown();
        });
    assertThat(shieldDone).isTrue();
    assertThat(afterShield).isTrue();
    assertThat(task.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isFalse();
  }

  // AnyIO test_fail_after around a group whose child fails as the deadline fires: the failure is
  // never swallowed by the timeout; it leaves as the group's TaskGroupException.
  @RepeatedTest(10)
  void aChildFailureRacingATimeoutAroundTheGroupIsNotLost() throws Exception {
    IllegalStateException boom = new IllegalStateException("boom");
    // The timeout is set once the child is inside its try: a child whose thread had not begun when
    // the deadline fired would run none of its code (no finally, no failure).
    CancelScope timeout = CancelScope.withTimeout(Duration.ofSeconds(60));
    Throwable t =
        catchThrowable(
            () ->
                timeout.call(
                    () -> {
                      TaskGroup g = TaskGroup.named("racing-timeout");
                      g.run(
                          () -> {
                            g.start(
                                s -> {
                                  try {
                                    s.started();
                                    sleepForever();
                                  } finally {
                                    throw boom;
                                  }
                                });
                            timeout.setTimeout(Duration.ofMillis(5));
                            sleepForever();
                          });
                      return "returned";
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures()).containsExactly(boom);
    assertThat(timeout.cancelCalled()).isTrue();
    assertThat(timeout.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // AnyIO test_cancel_propagation with a reason: the reason given to the group's cancel is what a
  // child's checkpoint reports, and the group's scope keeps the first reason.
  @RepeatedTest(3)
  void theReasonOfAGroupCancelReachesTheChildsCheckpoint() throws Exception {
    TaskGroup g = TaskGroup.named("reasons");
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicReference<Thread> child = new AtomicReference<>();
    g.run(
        () -> {
          g.fork(
              () -> {
                child.set(Thread.currentThread());
                try {
                  sleepForever();
                } catch (InterruptedException e) {
                  // the sleep's own exception; the checkpoint names the scope and reason
                }
                try {
                  CancelScope.checkpoint();
                } catch (InterruptedException e) {
                  seen.set(e);
                  throw e;
                }
              });
          awaitBlocked(awaitThread(child));
          g.cancel("shutting down");
          g.cancel("second reason");
        });
    assertThat(seen.get()).isInstanceOf(CancelledException.class);
    assertThat(seen.get().getMessage()).contains("shutting down");
    assertThat(g.cancelScope().cancelReason()).contains("shutting down");
  }

  // ---------------------------------------------------------------- after the signal

  // AnyIO test_start_parent_id's "permanent parent": after the signal the work belongs to the
  // group,
  // so cancelling the caller's scope (or its deadline firing) no longer reaches it, nor the scopes
  // and the nested group's children it opened before signalling.
  @RepeatedTest(10)
  void theCallersScopeCancelledAfterTheSignalReachesNothingOfTheWork() throws Exception {
    TaskGroup g = TaskGroup.named("moved-work");
    CancelScope caller = CancelScope.create();
    AtomicBoolean workDone = new AtomicBoolean();
    AtomicBoolean grandchildDone = new AtomicBoolean();
    AtomicBoolean innerCaught = new AtomicBoolean(true);
    CountDownLatch callerCancelled = new CountDownLatch(1);
    g.run(
        () -> {
          caller.run(
              () -> {
                g.start(
                    s -> {
                      CancelScope inner = CancelScope.create();
                      inner.run(
                          () -> {
                            TaskGroup nested = TaskGroup.named("nested-in-work");
                            nested.run(
                                () -> {
                                  nested.fork(
                                      () -> {
                                        callerCancelled.await();
                                        Thread.sleep(20);
                                        grandchildDone.set(true);
                                      });
                                  s.started();
                                  callerCancelled.await();
                                  Thread.sleep(20);
                                });
                          });
                      innerCaught.set(inner.cancelCaught());
                      workDone.set(true);
                    });
                caller.cancel();
                callerCancelled.countDown();
                CancelScope.checkpoint();
              });
        });
    assertThat(caller.cancelCaught()).isTrue();
    assertThat(workDone).isTrue();
    assertThat(grandchildDone).isTrue();
    assertThat(innerCaught).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // The same with the caller's deadline: it fires after the signal and cuts only the caller short.
  @RepeatedTest(3)
  void theCallersDeadlineFiringAfterTheSignalReachesOnlyTheCaller() throws Exception {
    TaskGroup g = TaskGroup.named("moved-work-deadline");
    CancelScope caller = CancelScope.withTimeout(Duration.ofSeconds(60));
    AtomicBoolean workDone = new AtomicBoolean();
    AtomicBoolean callerDone = new AtomicBoolean();
    g.run(
        () ->
            caller.run(
                () -> {
                  g.start(
                      s -> {
                        s.started();
                        Thread.sleep(150);
                        workDone.set(true);
                      });
                  // Brought forward once the work runs: fired before it began, none of it would.
                  caller.setTimeout(Duration.ofMillis(20));
                  Thread.sleep(10_000);
                  callerDone.set(true);
                }));
    assertThat(caller.cancelCaught()).isTrue();
    assertThat(callerDone).isFalse();
    assertThat(workDone).isTrue();
  }

  // ---------------------------------------------------------------- timeouts, more

  // AnyIO test_fail_after (instant) with a body that never checks: the result is returned, nothing
  // is thrown, and the deadline's interrupt does not outlive the scope.
  @RepeatedTest(5)
  void failAfterZeroWithABodyThatNeverChecksReturnsItsResultAndLeavesNoInterrupt()
      throws Exception {
    String result = CancelScope.failAfter(Duration.ZERO, () -> "ignored the timeout");
    assertThat(result).isEqualTo("ignored the timeout");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(CancelScope.isCancelled()).isFalse();
  }

  // AnyIO test_nested_move_on_after inside fail_after: the inner, shorter move_on_after fires and
  // is
  // caught there; the outer fail_after fires later and throws TimeoutException.
  @RepeatedTest(2)
  void aMoveOnAfterInsideAFailAfterCatchesItsOwnTimeoutThenTheOuterFires() {
    AtomicReference<Object> inner = new AtomicReference<>("unset");
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(200),
                    () -> {
                      inner.set(
                          CancelScope.moveOnAfter(
                              Duration.ofMillis(10),
                              () -> {
                                sleepForever();
                                return "slept";
                              }));
                      sleepForever();
                      return "outer slept";
                    }));
    assertThat(inner.get()).isNull();
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(t.getCause()).isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- forks while joining

  // AnyIO test_start_soon_while_running, from outside while the group joins: the body has ended but
  // a child still runs, so the group is open; a fork from another thread is accepted and run waits
  // for it too.
  @RepeatedTest(5)
  void aForkFromOutsideWhileTheGroupJoinsIsAcceptedAndAwaited() throws Exception {
    TaskGroup g = TaskGroup.named("late-fork");
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean lateRan = new AtomicBoolean();
    AtomicReference<Throwable> forkError = new AtomicReference<>();
    Thread outsider =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    while (!g.toString().endsWith(", joining]")) {
                      if (System.nanoTime() > end) {
                        throw new AssertionError("never joining: " + g);
                      }
                      Thread.onSpinWait();
                    }
                    g.fork(
                        () -> {
                          Thread.sleep(20);
                          lateRan.set(true);
                          release.countDown();
                        });
                  } catch (Throwable e) {
                    forkError.set(e);
                    release.countDown();
                  }
                });
    g.run(() -> g.fork(() -> release.await()));
    outsider.join();
    assertThat(forkError.get()).isNull();
    assertThat(lateRan).isTrue();
  }

  // The same racing the group's end: a fork from outside either is refused with
  // IllegalStateException or its child ran before run returned; no child runs after.
  @RepeatedTest(20)
  void aForkRacingTheGroupsEndNeverRunsAfterRunReturned() throws Exception {
    TaskGroup g = TaskGroup.named("fork-vs-end");
    AtomicBoolean returned = new AtomicBoolean();
    AtomicBoolean ranLate = new AtomicBoolean();
    AtomicReference<Throwable> unexpected = new AtomicReference<>();
    CountDownLatch running = new CountDownLatch(1);
    Thread outsider =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    running.await();
                    while (true) {
                      g.fork(
                          () -> {
                            if (returned.get()) {
                              ranLate.set(true);
                            }
                          });
                    }
                  } catch (IllegalStateException closed) {
                    // the group ended: refused, as documented
                  } catch (Throwable e) {
                    unexpected.set(e);
                  }
                });
    g.run(
        () -> {
          running.countDown();
          Thread.sleep(2);
        });
    returned.set(true);
    outsider.join(10_000);
    assertThat(outsider.isAlive()).isFalse();
    assertThat(unexpected.get()).isNull();
    assertThat(ranLate).isFalse();
  }

  // AnyIO test_deadline_moved, twice from another thread: brought forward, then moved back before
  // the earlier time; the earlier deadline, no longer set, must not fire.
  @RepeatedTest(3)
  void aDeadlineBroughtForwardThenMovedBackDoesNotFireAtTheEarlierTime() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(60));
    Thread body = Thread.currentThread();
    TaskGroup helper = TaskGroup.named("mover-back");
    AtomicBoolean completed = new AtomicBoolean();
    AtomicLong gap = new AtomicLong(Long.MAX_VALUE);
    helper.run(
        () -> {
          helper.fork(
              () -> {
                awaitBlocked(body);
                long t0 = System.nanoTime();
                scope.setDeadline(Instant.now().plusMillis(60));
                scope.setDeadline(Instant.now().plusSeconds(60));
                gap.set(System.nanoTime() - t0);
              });
          CancelScope.shielded()
              .run(
                  () ->
                      scope.run(
                          () -> {
                            Thread.sleep(300);
                            completed.set(true);
                          }));
        });
    // A helper descheduled for longer than the early deadline between its two calls proves nothing.
    Assumptions.assumeTrue(gap.get() < TimeUnit.MILLISECONDS.toNanos(50), "helper descheduled");
    assertThat(completed).isTrue();
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(scope.deadline()).isPresent();
  }

  // The same for a group's scope, from a child: the group's deadline brought forward and moved back
  // at once does not cancel the group.
  @RepeatedTest(3)
  void aGroupDeadlineBroughtForwardThenBackFromAChildDoesNotFire() throws Exception {
    TaskGroup g = TaskGroup.named("group-mover");
    AtomicBoolean bodyDone = new AtomicBoolean();
    AtomicLong gap = new AtomicLong(Long.MAX_VALUE);
    g.run(
        () -> {
          g.fork(
              () -> {
                long t0 = System.nanoTime();
                g.cancelScope().setTimeout(Duration.ofMillis(40));
                g.cancelScope().setTimeout(Duration.ofSeconds(60));
                gap.set(System.nanoTime() - t0);
              });
          Thread.sleep(300);
          bodyDone.set(true);
        });
    Assumptions.assumeTrue(gap.get() < TimeUnit.MILLISECONDS.toNanos(30), "child descheduled");
    assertThat(bodyDone).isTrue();
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---------------------------------------------------------------- start against every stop

  /** What stops the caller of start while the work waits. */
  private enum Stop {
    GROUP_CANCEL,
    SCOPE_CANCEL,
    SCOPE_DEADLINE
  }

  // AnyIO test_start_cancel_after_error / test_start_no_started_call / test_start_crash_before_
  // started_call, crossed and randomised: whatever stops the caller (its group, its scope, its
  // deadline), work that swallows the cancellation and returns unsignalled ends start as a
  // cancellation (absorbed where it belongs, never an IllegalStateException), and work that fails
  // in its cleanup has start throw that failure, reported once by the group.
  @RepeatedTest(12)
  void startAgainstEveryStopAndEveryUnsignalledEnding() throws Exception {
    long seed = System.nanoTime();
    System.out.println("PortedAnyioRestTest start sweep seed " + seed);
    java.util.Random random = new java.util.Random(seed);
    for (int round = 0; round < 6; round++) {
      Stop stop = Stop.values()[random.nextInt(Stop.values().length)];
      boolean fail = random.nextBoolean();
      int delayMicros = random.nextInt(300);
      String where =
          "seed " + seed + " round " + round + " " + stop + (fail ? " fail" : " swallow");
      TaskGroup g = TaskGroup.named("start-sweep");
      CancelScope scope =
          stop == Stop.SCOPE_DEADLINE
              ? CancelScope.withTimeout(Duration.ofNanos(delayMicros * 1_000L))
              : CancelScope.create();
      AtomicBoolean afterStart = new AtomicBoolean();
      AtomicBoolean began = new AtomicBoolean();
      IllegalStateException cleanup = new IllegalStateException("cleanup " + where);
      Throwable t =
          catchThrowable(
              () ->
                  g.run(
                      () ->
                          scope.run(
                              () -> {
                                CountDownLatch in = new CountDownLatch(1);
                                if (stop != Stop.SCOPE_DEADLINE) {
                                  g.fork(
                                      () -> {
                                        in.await();
                                        spin(delayMicros * 1_000L);
                                        if (stop == Stop.GROUP_CANCEL) {
                                          g.cancel();
                                        } else {
                                          scope.cancel();
                                        }
                                      });
                                }
                                g.start(
                                    s -> {
                                      began.set(true);
                                      in.countDown();
                                      try {
                                        sleepForever();
                                      } catch (InterruptedException e) {
                                        if (fail) {
                                          throw cleanup;
                                        }
                                      }
                                    });
                                afterStart.set(true);
                              })));
      assertThat(afterStart).as(where).isFalse();
      // A deadline can fire before the work's thread begins: then none of its code runs.
      if (fail && began.get()) {
        assertThat(t).as(where).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) t).failures()).as(where).containsExactly(cleanup);
      } else {
        assertThat(t).as(where).isNull();
        if (stop == Stop.GROUP_CANCEL) {
          assertThat(g.cancelCaught()).as(where).isTrue();
        } else {
          assertThat(scope.cancelCaught()).as(where).isTrue();
        }
      }
      Thread.interrupted();
    }
  }

  // ---------------------------------------------------------------- shields raised late

  // AnyIO test_shielding_mutate, racing: the group's scope is shielded from the body just after
  // the scope around it was cancelled; a child may or may not have been interrupted first
  // (CancelScope.setShielded javadoc). Either way the child ends SUCCESS or CANCELLED, never
  // FAILED,
  // the group reports no failure, and the cancellation applies again outside the group.
  @RepeatedTest(20)
  void aShieldRaisedJustAfterAnOuterCancelNeverTurnsTheChildsInterruptIntoAFailure()
      throws Exception {
    CancelScope outer = CancelScope.create();
    TaskGroup g = TaskGroup.named("late-shield");
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    AtomicBoolean afterGroup = new AtomicBoolean();
    outer.run(
        () -> {
          g.run(
              () -> {
                CountDownLatch in = new CountDownLatch(1);
                child.set(
                    g.fork(
                        () -> {
                          in.countDown();
                          Thread.sleep(50);
                        }));
                in.await();
                outer.cancel();
                g.cancelScope().setShielded(true);
              });
          afterGroup.set(true);
          CancelScope.checkpoint();
          afterGroup.set(false);
        });
    assertThat(child.get().state())
        .isIn(
            java.util.concurrent.Future.State.SUCCESS, java.util.concurrent.Future.State.CANCELLED);
    assertThat(afterGroup).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
  }

  // AnyIO test_shielded_deadline with the inner deadline zero: inside a shield inside a cancelled
  // scope, a move_on_after(0) fires at once and is caught there; the outer cancellation is seen
  // again only once the shield is left.
  @RepeatedTest(5)
  void aZeroTimeoutInsideAShieldOfACancelledScopeIsCaughtThere() throws Exception {
    CancelScope outer = CancelScope.create();
    AtomicReference<Object> inner = new AtomicReference<>("unset");
    AtomicBoolean inShieldAfter = new AtomicBoolean();
    AtomicBoolean afterShield = new AtomicBoolean();
    outer.run(
        () -> {
          outer.cancel();
          CancelScope.shielded()
              .run(
                  () -> {
                    inner.set(
                        CancelScope.moveOnAfter(
                            Duration.ZERO,
                            () -> {
                              sleepForever();
                              return "slept";
                            }));
                    inShieldAfter.set(!CancelScope.isCancelled());
                  });
          afterShield.set(true);
          CancelScope.checkpoint();
          afterShield.set(false);
        });
    assertThat(inner.get()).isNull();
    assertThat(inShieldAfter).isTrue();
    assertThat(afterShield).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
  }

  // AnyIO test_start_crash_after_started_call racing the caller's cancel: the work signals and
  // fails at once while the caller's scope is cancelled. Whichever wins, the failure is seen
  // exactly
  // once: thrown by start (the caller gave up first, the signal did nothing) or reported by the
  // group (the signal came first, the work was the group's when it failed).
  @RepeatedTest(20)
  void aFailureRightAfterTheSignalRacingTheCallersCancelIsSeenExactlyOnce() throws Exception {
    long seed = System.nanoTime();
    int delayMicros = new java.util.Random(seed).nextInt(200);
    TaskGroup g = TaskGroup.named("signal-then-fail");
    CancelScope caller = CancelScope.create();
    IllegalStateException boom = new IllegalStateException("boom, seed " + seed);
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      CountDownLatch in = new CountDownLatch(1);
                      g.fork(
                          () -> {
                            in.await();
                            spin(delayMicros * 1_000L);
                            caller.cancel();
                          });
                      caller.run(
                          () -> {
                            try {
                              g.start(
                                  s -> {
                                    in.countDown();
                                    spin(delayMicros * 1_000L);
                                    s.started();
                                    throw boom;
                                  });
                            } catch (Throwable e) {
                              fromStart.set(e);
                            }
                          });
                    }));
    int seen = fromStart.get() == boom ? 1 : 0;
    if (t != null) {
      assertThat(t).as("seed %d", seed).isInstanceOf(TaskGroupException.class);
      seen += (int) ((TaskGroupException) t).failures().stream().filter(f -> f == boom).count();
    }
    assertThat(seen).as("seed %d, start threw %s, run threw %s", seed, fromStart.get(), t).isOne();
  }

  // The swallowing work of test_start_no_started_call with the caller in a cooperative scope (never
  // interrupted itself, the work is): the scope is cancelled while start waits, the work swallows
  // its interrupt and returns unsignalled; start ends as the cancellation, which the scope catches.
  @RepeatedTest(10)
  void aCooperativeCallerWhoseStartedWorkSwallowsTheCancelCatchesIt() throws Exception {
    TaskGroup g = TaskGroup.named("swallow-cooperative");
    CancelScope scope = CancelScope.cooperative();
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    g.run(
        () ->
            scope.run(
                () -> {
                  try {
                    g.start(
                        s -> {
                          scope.cancel();
                          try {
                            sleepForever();
                          } catch (InterruptedException swallowed) {
                            // returns without signalling
                          }
                        });
                  } catch (Throwable e) {
                    fromStart.set(e);
                    throw e;
                  }
                }));
    assertThat(fromStart.get()).isInstanceOf(CancelledException.class);
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }
}
