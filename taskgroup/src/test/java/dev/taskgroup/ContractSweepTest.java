package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.Trail;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An adversarial sweep of the contracts of context propagation, supervisors ({@link
 * FailurePolicy#COLLECT}), {@code maxConcurrency}, {@link TaskGroup#start}, {@link
 * TaskGroup#invokeAll} / {@link TaskGroup#invokeAny}: each test asserts one promise of the javadoc
 * or the guide, in the situations the focused tests do not reach (misuse, failures at awkward
 * moments, cancellation racing a handshake or a wait for a place). Scenarios follow Trio's {@code
 * nursery.start} tests, CPython's {@code test_taskgroups.py}, Kotlin's {@code supervisorScope} and
 * OpenJDK's {@code StructuredTaskScope} tests where named ("closest" when from memory).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ContractSweepTest {

  // ---- maxConcurrency ---------------------------------------------------------------------

  /**
   * guide.md, "Bounded concurrency": a child that waits for its own sub-tasks gives them a group of
   * its own, whose children do not count against the outer limit. With one place, held by the
   * child, the nested group's two sub-tasks run and the child gets their results (the recursive
   * divide-and-conquer shape). The wait is bounded so that a deadlock fails the test instead of
   * hanging it.
   */
  @RepeatedTest(10)
  void aChildWaitingForSubTasksInANestedGroupCompletesUnderOnePlace() throws Exception {
    TaskGroup group = TaskGroup.builder().name("fork-join").maxConcurrency(1).build();
    Integer sum =
        group.call(
            () ->
                group
                    .fork(
                        () -> {
                          TaskGroup halves = TaskGroup.named("halves");
                          return halves.call(
                              () -> {
                                Task<Integer> left = halves.fork(() -> 20);
                                Task<Integer> right = halves.fork(() -> 22);
                                return left.get(5, TimeUnit.SECONDS)
                                    + right.get(5, TimeUnit.SECONDS);
                              });
                        })
                    .get());
    assertThat(sum).isEqualTo(42);
  }

  /**
   * A child that ends with an {@link Error} gives its place back (CPython test_taskgroups treats
   * BaseException specially; here an Error is a failure like any other, FailurePolicy's javadoc),
   * and so do a child whose propagator throws before the work, a start() whose work fails before
   * signalling, a start() whose work returns without signalling and a child cancelled with its own
   * Task.cancel: after all of them the only place is free again and a fork from the owner runs at
   * once. A leaked place would make the last fork wait; the timeout scope turns that into a
   * CANCELLED task.
   */
  @RepeatedTest(50)
  void everyWayAChildCanEndGivesItsPlaceBack() throws Exception {
    AtomicInteger wraps = new AtomicInteger();
    List<Throwable> handled = new ArrayList<>();
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  synchronized (handled) {
                    handled.add(f);
                  }
                })
            .contextPropagator(
                work -> {
                  if (wraps.incrementAndGet() == 2) {
                    return () -> {
                      throw new IllegalStateException("propagator before the work");
                    };
                  }
                  return work;
                })
            .build();
    AssertionError error = new AssertionError("an Error in a child");
    AtomicReference<Task<String>> last = new AtomicReference<>();
    group.run(
        () -> {
          Task<Void> a =
              group.fork(
                  () -> {
                    throw error;
                  });
          Task<Void> b = group.fork(() -> {}); // its propagator throws before the work
          assertThat(catchThrowable(() -> group.start(s -> {}))) // returns without signalling
              .isInstanceOf(IllegalStateException.class);
          assertThat(
                  catchThrowable(
                      () ->
                          group.start(
                              s -> {
                                throw new IllegalArgumentException("bind failed");
                              })))
              .hasMessage("bind failed");
          CountDownLatch running = new CountDownLatch(1);
          Task<Void> c =
              group.fork(
                  () -> {
                    running.countDown();
                    Fixtures.parkUntilInterrupted();
                  });
          running.await();
          c.cancel(true);
          CancelScope bound = CancelScope.withTimeout(Duration.ofSeconds(5));
          bound.run(() -> last.set(group.fork(() -> "ran")));
          assertThat(a.state()).isEqualTo(Future.State.FAILED);
          assertThat(b.state()).isEqualTo(Future.State.FAILED);
        });
    assertThat(last.get().state()).as("the last fork got a place").isEqualTo(Future.State.SUCCESS);
    assertThat(handled).hasSize(2).contains(error);
    assertThat(handled).anySatisfy(f -> assertThat(f).hasMessage("propagator before the work"));
  }

  /**
   * TaskGroupException: failures are listed "in the order they happened". Under maxConcurrency(1)
   * the children run one after the other, each starting only once the one before has ended, so the
   * order of their failures is the order of the forks. (A propagator widens the gap between a
   * child's end and its report, where a child that gave its place back too early lets the next one
   * start, fail and be reported first.)
   */
  @RepeatedTest(20)
  void failuresUnderOnePlaceAreKeptInTheOrderTheyHappened() {
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .contextPropagator(new Propagators.Tagging("t", Propagators.trail()))
            .build();
    List<Throwable> thrown = new ArrayList<>();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      for (int i = 0; i < 10; i++) {
                        IllegalStateException failure = new IllegalStateException("child " + i);
                        thrown.add(failure);
                        group.fork(
                            () -> {
                              throw failure;
                            });
                      }
                    }));
    assertThat(e.failures())
        .extracting(Throwable::getMessage)
        .containsExactlyElementsOf(thrown.stream().map(Throwable::getMessage).toList());
  }

  /**
   * FailurePolicy.CANCEL_ALL: "the first failure cancels the body and every other child". Under
   * maxConcurrency(1) a fork queued behind a failing child must not get to run its work: the
   * failure has cancelled the group before the place it waits for is free.
   */
  @RepeatedTest(50)
  void aQueuedForkNeverRunsAfterTheFailureThatFreedItsPlace() {
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .contextPropagator(new Propagators.Tagging("t", Propagators.trail()))
            .build();
    IllegalStateException boom = new IllegalStateException("boom");
    AtomicBoolean secondRan = new AtomicBoolean();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            throw boom;
                          });
                      group.fork(() -> secondRan.set(true));
                    }));
    assertThat(e.failures()).containsExactly(boom);
    assertThat(secondRan).as("the queued fork ran after the failure").isFalse();
  }

  /**
   * Forks from inside a child under maxConcurrency(1) queue for the place on their own threads;
   * when the group is then cancelled, none of the queued ones runs its work, each ends CANCELLED,
   * none is a failure, and run returns normally having caught its cancellation (StructuredTaskScope
   * tests: "fork after shutdown does not run the subtask", closest).
   */
  @RepeatedTest(20)
  void forksQueuedInsideAChildAreCancelledWithoutRunning() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicInteger ran = new AtomicInteger();
    List<Task<Integer>> queued = new ArrayList<>();
    group.run(
        () -> {
          CountDownLatch forked = new CountDownLatch(1);
          group.fork(
              () -> {
                for (int i = 0; i < 5; i++) {
                  queued.add(group.fork(ran::incrementAndGet));
                }
                forked.countDown();
                Fixtures.parkUntilInterrupted(); // keeps the only place
              });
          forked.await();
          group.cancel();
        });
    assertThat(group.cancelCaught()).isTrue();
    assertThat(ran.get()).as("queued work never ran").isZero();
    assertThat(queued).extracting(Task::state).containsOnly(Future.State.CANCELLED);
  }

  /**
   * A start() from outside the group waiting for a place when the group is cancelled: TaskGroup's
   * javadoc, {@code start}: "InterruptedException if ... the group is effectively cancelled (then
   * the work does not start)"; fork re-checks after its wait for a place and returns a CANCELLED
   * task. The body holds the group open in a shielded scope until the outsider's start returned.
   */
  @RepeatedTest(10)
  void startWaitingForAPlaceWhenTheGroupIsCancelledDoesNotRunTheWork() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean workRan = new AtomicBoolean();
    AtomicReference<Object> outcome = new AtomicReference<>();
    group.run(
        () -> {
          CountDownLatch holding = new CountDownLatch(1);
          group.fork(
              () -> {
                holding.countDown();
                Fixtures.parkUntilInterrupted();
              });
          holding.await();
          Thread outsider =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          outcome.set(
                              group.start(
                                  signal -> {
                                    workRan.set(true);
                                    signal.started("started");
                                  }));
                        } catch (Throwable t) {
                          outcome.set(t);
                        }
                      });
          Probes.awaitWaiting(outsider, Duration.ofSeconds(10)); // waits for the place
          group.cancel();
          CancelScope.shielded().run(outsider::join); // the group stays open until it returned
        });
    assertThat(outcome.get()).isInstanceOf(InterruptedException.class);
    assertThat(workRan).as("the work did not start").isFalse();
  }

  // ---- start() --------------------------------------------------------------------------------

  /**
   * An interrupt that reaches the caller of start() just as the work signals must not be lost:
   * either start throws InterruptedException (cancelling the child), or it returns the value with
   * the interrupt status still set (the JDK's rule for a method that does not throw it; TaskGroup's
   * javadoc: "an interrupt of the owner from outside stays set"). The caller is a plain platform
   * thread outside any group, so the library has no bookkeeping of its own to fall back on. The
   * work interrupts the caller right after signalling, which lands in the caller's wake-up.
   */
  @RepeatedTest(50)
  void anInterruptArrivingWithTheSignalIsNeverSwallowed() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<String> verdict = new AtomicReference<>();
    group.run(
        () -> {
          AtomicBoolean interruptSent = new AtomicBoolean();
          Thread caller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        Thread me = Thread.currentThread();
                        try {
                          group.start(
                              signal -> {
                                signal.started();
                                me.interrupt();
                                interruptSent.set(true);
                              });
                        } catch (InterruptedException e) {
                          verdict.set("threw InterruptedException");
                          return;
                        }
                        while (!interruptSent.get()) {
                          Thread.onSpinWait();
                        }
                        verdict.set(
                            Thread.currentThread().isInterrupted()
                                ? "returned, status set"
                                : "returned, interrupt lost");
                      });
          CancelScope.shielded().run(caller::join);
        });
    assertThat(verdict.get()).isIn("threw InterruptedException", "returned, status set");
  }

  /**
   * Trio's {@code test_nursery_start} ("started then crash", closest): work that signals and then
   * fails is a failure of the group (policy CANCEL_ALL: the body is cancelled), while start() has
   * already returned its value.
   */
  @RepeatedTest(10)
  void workFailingAfterItSignalledIsAFailureOfTheGroup() throws Exception {
    TaskGroup group = TaskGroup.create();
    IllegalStateException crash = new IllegalStateException("crash after started");
    AtomicReference<Object> value = new AtomicReference<>();
    AtomicBoolean bodyCancelled = new AtomicBoolean();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      CountDownLatch go = new CountDownLatch(1);
                      value.set(
                          group.start(
                              signal -> {
                                signal.started(7);
                                go.await();
                                throw crash;
                              }));
                      go.countDown();
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException ie) {
                        bodyCancelled.set(true);
                        throw ie;
                      }
                    }));
    assertThat(value.get()).isEqualTo(7);
    assertThat(e.failures()).containsExactly(crash);
    assertThat(bodyCancelled).isTrue();
  }

  /**
   * Until it signals, a start() child is cancelled with the caller's scope, not with the group
   * (TaskGroup.start javadoc; Trio runs it in the caller's nursery until {@code started()}). A
   * group cancelled meanwhile therefore does not stop it; once it signals it belongs to the group
   * and the group's cancellation reaches it. The caller is outside the group; start returns the
   * value.
   */
  @RepeatedTest(10)
  void groupCancelledBeforeTheSignalReachesTheChildOnceItSignals() throws Exception {
    TaskGroup group = TaskGroup.create();
    Trail trail = new Trail();
    AtomicReference<Object> outcome = new AtomicReference<>();
    group.run(
        () -> {
          CountDownLatch waiting = new CountDownLatch(1);
          CountDownLatch cancelled = new CountDownLatch(1);
          Thread outsider =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          outcome.set(
                              group.start(
                                  signal -> {
                                    waiting.countDown();
                                    cancelled.await(); // not interrupted: not the group's yet
                                    trail.add("not cancelled before the signal");
                                    signal.started("v");
                                    try {
                                      Thread.sleep(60_000);
                                    } catch (InterruptedException e) {
                                      trail.add("cancelled with the group after the signal");
                                      throw e;
                                    }
                                  }));
                        } catch (Throwable t) {
                          outcome.set(t);
                        }
                      });
          waiting.await();
          CancelScope.shielded()
              .run(
                  () -> {
                    group.cancel();
                    cancelled.countDown();
                    outsider.join();
                  });
        });
    assertThat(outcome.get()).isEqualTo("v");
    assertThat(trail.events())
        .containsExactly(
            "not cancelled before the signal", "cancelled with the group after the signal");
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * The caller of start() interrupted while it waits (an outside thread, so by someone else): the
   * child is cancelled and has finished before start throws InterruptedException (TaskGroup.start
   * javadoc; Trio: cancelling the caller of {@code nursery.start} cancels the task, closest).
   */
  @RepeatedTest(10)
  void callerInterruptedWhileWaitingCancelsTheChildAndWaitsForIt() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicBoolean childFinished = new AtomicBoolean();
    AtomicReference<Object> outcome = new AtomicReference<>();
    AtomicBoolean finishedWhenStartThrew = new AtomicBoolean();
    group.run(
        () -> {
          CountDownLatch running = new CountDownLatch(1);
          Thread outsider =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          group.start(
                              signal -> {
                                running.countDown();
                                try {
                                  Thread.sleep(60_000);
                                } finally {
                                  childFinished.set(true);
                                }
                              });
                          outcome.set("returned");
                        } catch (Throwable t) {
                          finishedWhenStartThrew.set(childFinished.get());
                          outcome.set(t);
                        }
                      });
          running.await();
          outsider.interrupt();
          CancelScope.shielded().run(outsider::join);
        });
    assertThat(outcome.get()).isInstanceOf(InterruptedException.class);
    assertThat(finishedWhenStartThrew).isTrue();
    assertThat(group.cancelCalled()).isFalse();
  }

  /** Trio: {@code nursery.start} into a closed nursery raises; here IllegalStateException. */
  @Test
  void startIntoAFinishedGroupIsRejectedAndTheWorkNeverRuns() throws Exception {
    TaskGroup group = TaskGroup.named("closed");
    group.run(() -> {});
    AtomicBoolean ran = new AtomicBoolean();
    assertThatThrownBy(
            () ->
                group.start(
                    s -> {
                      ran.set(true);
                      s.started();
                    }))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    assertThat(ran).isFalse();
  }

  // ---- context propagation --------------------------------------------------------------------

  /**
   * ContextPropagator: "the last one applied runs outermost", and an outer propagator's restore
   * runs even when an inner one throws after the work; the inner one's exception is the failure,
   * kept once, and the task fails with it.
   */
  @Test
  void innerPropagatorThrowingAfterTheWorkStillLetsTheOuterRestore() throws Exception {
    Queue<String> trail = Propagators.trail();
    IllegalStateException restoreFailed = new IllegalStateException("inner restore failed");
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      trail.add("inner before");
                      work.run();
                      trail.add("inner throws");
                      throw restoreFailed;
                    })
            .contextPropagator(new Propagators.Tagging("outer", trail))
            .build();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () ->
                        task.set(
                            group.fork(
                                () -> {
                                  trail.add("work");
                                }))));
    assertThat(e.failures()).containsExactly(restoreFailed);
    assertThat(task.get().exceptionNow()).isSameAs(restoreFailed);
    assertThat(trail)
        .containsSubsequence("outer before", "inner before", "work", "inner throws", "outer after");
  }

  /**
   * A propagator that runs the work on another thread breaks ContextPropagator's rule ("must call
   * work.run() once, on that thread"): the work does not run there, and the child fails with an
   * IllegalStateException.
   */
  @Test
  void aPropagatorRunningTheWorkOnAnotherThreadIsAFailureAndTheWorkNeverRuns() throws Exception {
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      Thread other = Thread.ofVirtual().start(work);
                      try {
                        other.join();
                      } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                      }
                    })
            .build();
    AtomicBoolean ran = new AtomicBoolean();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class, () -> group.run(() -> group.fork(() -> ran.set(true))));
    assertThat(ran).isFalse();
    assertThat(e.failures()).hasSize(1).first().isInstanceOf(IllegalStateException.class);
  }

  /**
   * Context reaches a grandchild forked from a child (the child's thread carries the context while
   * its work runs, so the grandchild's wrap captures it there), a start()ed child, and the tasks of
   * an invokeAll and an invokeAny called from a child.
   */
  @Test
  void contextReachesGrandchildrenStartedChildrenAndInvocationsFromAChild() throws Exception {
    TaskGroup group = TaskGroup.builder().contextPropagator(new Propagators.CarryRequest()).build();
    List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
    Propagators.REQUEST.set("req-1");
    try {
      group.run(
          () ->
              group.fork(
                  () -> {
                    seen.add("child " + Propagators.REQUEST.get());
                    group.fork(() -> seen.add("grandchild " + Propagators.REQUEST.get())).get();
                    group.start(
                        s -> {
                          seen.add("started " + Propagators.REQUEST.get());
                          s.started();
                        });
                    seen.addAll(
                        TaskGroup.invokeAll(
                            List.of(() -> "invokeAll " + Propagators.REQUEST.get())));
                    seen.add(
                        TaskGroup.invokeAny(
                            List.of(() -> "invokeAny " + Propagators.REQUEST.get())));
                    return null;
                  }));
    } finally {
      Propagators.REQUEST.remove();
    }
    assertThat(seen)
        .containsExactlyInAnyOrder(
            "child req-1",
            "grandchild req-1",
            "started req-1",
            "invokeAll req-1",
            "invokeAny req-1");
  }

  /**
   * The same for work run by start() before it signals, when the caller of start() is outside the
   * group: ContextPropagator's javadoc has invokeAll / invokeAny apply "those of the innermost
   * group enclosing the caller", and a start() child is a child of the group it was started in.
   */
  @Test
  void invokeAllFromAStartChildBeforeItSignalsAppliesItsGroupsPropagators() throws Exception {
    TaskGroup group = TaskGroup.builder().contextPropagator(new Propagators.CarryRequest()).build();
    AtomicReference<Object> seen = new AtomicReference<>();
    group.run(
        () -> {
          Thread outsider =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          seen.set(
                              group.start(
                                  s -> {
                                    Propagators.REQUEST.set("set in the start child");
                                    s.started(
                                        TaskGroup.invokeAll(
                                                List.of(() -> "" + Propagators.REQUEST.get()))
                                            .get(0));
                                  }));
                        } catch (Throwable t) {
                          seen.set(t);
                        }
                      });
          CancelScope.shielded().run(outsider::join);
        });
    assertThat(seen.get()).isEqualTo("set in the start child");
  }

  // ---- supervisors ----------------------------------------------------------------------------

  /**
   * Kotlin's supervisorScope (closest): a failing child cancels nobody; failures raised after the
   * group was cancelled (in a child's cleanup) are kept too, all in the order they happened.
   */
  @RepeatedTest(10)
  void supervisorKeepsFailuresRaisedAfterItsCancellation() throws Exception {
    TaskGroup group = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    IllegalStateException first = new IllegalStateException("first");
    IllegalStateException inCleanup = new IllegalStateException("in cleanup after cancel");
    AtomicBoolean siblingUndisturbed = new AtomicBoolean();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      CountDownLatch cleanupReady = new CountDownLatch(1);
                      group.fork(
                          () -> {
                            cleanupReady.countDown();
                            try {
                              Thread.sleep(60_000);
                            } finally {
                              throw inCleanup;
                            }
                          });
                      Task<Void> failing =
                          group.fork(
                              () -> {
                                throw first;
                              });
                      while (!failing.isDone()) {
                        Thread.onSpinWait();
                      }
                      cleanupReady.await();
                      siblingUndisturbed.set(!CancelScope.isCancelled());
                      group.cancel();
                    }));
    assertThat(siblingUndisturbed).isTrue();
    assertThat(e.failures()).containsExactly(first, inCleanup);
    assertThat(group.cancelCalled()).isTrue();
  }

  /**
   * FailurePolicy: "Whatever the policy, a failure of the group's body cancels every child, and no
   * failure is ever lost: each one is either reported by run ... or handed to the failure handler."
   * With a handler, the body's failure goes to the handler, and the children are cancelled.
   */
  @Test
  void supervisorWithHandlerHandsTheBodysFailureToItAndCancelsTheChildren() throws Exception {
    List<Throwable> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
    TaskGroup group =
        TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).onFailure(handled::add).build();
    IllegalStateException boom = new IllegalStateException("body");
    AtomicBoolean childCancelled = new AtomicBoolean();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      CountDownLatch started = new CountDownLatch(1);
                      group.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException ie) {
                              childCancelled.set(true);
                              throw ie;
                            }
                          });
                      started.await();
                      throw boom;
                    }));
    System.out.println("run with a handler and a failing body: " + thrown);
    assertThat(handled).containsExactly(boom);
    assertThat(childCancelled).isTrue();
  }

  // ---- invokeAll / invokeAny --------------------------------------------------------------------

  /**
   * ExecutorService.invokeAny semantics (OpenJDK InvokeAnyTest, closest): a task ending with an
   * Error does not stop the others; a later success is returned.
   */
  @RepeatedTest(10)
  void invokeAnyReturnsASuccessAfterAnotherTaskThrewAnError() throws Exception {
    CountDownLatch errorThrown = new CountDownLatch(1);
    String r =
        TaskGroup.invokeAny(
            List.<Callable<String>>of(
                () -> {
                  errorThrown.countDown();
                  throw new AssertionError("task error");
                },
                () -> {
                  errorThrown.await();
                  return "ok";
                }));
    assertThat(r).isEqualTo("ok");
  }

  /**
   * invokeAny / invokeAll javadoc: "InterruptedException if the caller was cancelled or interrupted
   * (the tasks are cancelled and waited for first)".
   */
  @RepeatedTest(10)
  void invocationsCancelledFromTheCallersScopeCancelAndAwaitTheirTasks() throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicInteger finished = new AtomicInteger();
      AtomicInteger finishedWhenThrown = new AtomicInteger(-1);
      CountDownLatch started = new CountDownLatch(2);
      CancelScope scope = CancelScope.create();
      Callable<String> blocked =
          () -> {
            started.countDown();
            try {
              Thread.sleep(60_000);
              return "late";
            } finally {
              finished.incrementAndGet();
            }
          };
      Thread canceller =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      started.await();
                    } catch (InterruptedException e) {
                      return;
                    }
                    scope.cancel();
                  });
      scope.run(
          () -> {
            try {
              if (any) {
                TaskGroup.invokeAny(List.of(blocked, blocked));
              } else {
                TaskGroup.invokeAll(List.of(blocked, blocked));
              }
            } catch (InterruptedException e) {
              finishedWhenThrown.set(finished.get());
              throw e;
            }
          });
      canceller.join();
      assertThat(scope.cancelCaught()).as("any=%s", any).isTrue();
      assertThat(finishedWhenThrown.get()).as("any=%s", any).isEqualTo(2);
    }
  }

  /** A null element is rejected before any task runs: "a rejected call leaves ... as it was". */
  @Test
  void invocationsWithANullElementRunNothing() {
    AtomicBoolean ran = new AtomicBoolean();
    Callable<String> marks =
        () -> {
          ran.set(true);
          return "x";
        };
    assertThatThrownBy(() -> TaskGroup.invokeAny(Arrays.asList(marks, null)))
        .isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> TaskGroup.invokeAll(Arrays.asList(marks, null)))
        .isInstanceOf(NullPointerException.class);
    assertThat(ran).isFalse();
  }

  // ---- second sweep -------------------------------------------------------------------------

  /**
   * TaskGroup.start: "InterruptedException if the caller is cancelled ... first". A caller whose
   * own scope is already cancelled gets it, and the work does not run (Trio: {@code nursery.start}
   * from a cancelled scope, closest).
   */
  @RepeatedTest(10)
  void startFromACancelledCallerScopeThrowsAndTheWorkNeverRuns() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    group.run(
        () -> {
          CancelScope caller = CancelScope.create();
          caller.run(
              () -> {
                caller.cancel();
                thrown.set(
                    catchThrowable(
                        () ->
                            group.start(
                                s -> {
                                  ran.set(true);
                                  s.started();
                                })));
              });
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(ran).isFalse();
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * invokeAll / invokeAny from a body whose group is cancelled: InterruptedException, and no task
   * runs (their group starts inside a cancelled scope, so every fork is CANCELLED before it
   * starts).
   */
  @Test
  void invocationsFromACancelledBodyThrowAndRunNothing() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicInteger ran = new AtomicInteger();
    List<Throwable> thrown = new java.util.concurrent.CopyOnWriteArrayList<>();
    group.run(
        () -> {
          group.cancel();
          thrown.add(catchThrowable(() -> TaskGroup.invokeAll(List.of(ran::incrementAndGet))));
          thrown.add(catchThrowable(() -> TaskGroup.invokeAny(List.of(ran::incrementAndGet))));
        });
    assertThat(thrown)
        .hasSize(2)
        .allSatisfy(t -> assertThat(t).isInstanceOf(InterruptedException.class));
    assertThat(ran.get()).isZero();
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * A started child of a supervisor that fails after signalling: the failure goes to the handler
   * and cancels nobody (Kotlin supervisorScope, closest); start had returned the value.
   */
  @RepeatedTest(10)
  void supervisedStartChildFailingAfterItSignalledCancelsNobody() throws Exception {
    List<Throwable> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
    TaskGroup group =
        TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).onFailure(handled::add).build();
    IllegalStateException crash = new IllegalStateException("server crashed");
    AtomicBoolean siblingFinishedNormally = new AtomicBoolean();
    group.run(
        () -> {
          CountDownLatch crashed = new CountDownLatch(1);
          group.fork(
              () -> {
                crashed.await(); // not interrupted: nobody is cancelled
                siblingFinishedNormally.set(true);
              });
          int port =
              group.start(
                  s -> {
                    s.started(8080);
                    try {
                      throw crash;
                    } finally {
                      crashed.countDown();
                    }
                  });
          assertThat(port).isEqualTo(8080);
        });
    assertThat(handled).containsExactly(crash);
    assertThat(siblingFinishedNormally).isTrue();
  }

  /**
   * StartSignal: "A signal may be used ... exactly once". Work that hands its signal to another
   * thread and returns without signalling makes start throw IllegalStateException; a started() that
   * comes after that is rejected with IllegalStateException too, and the group is not disturbed (no
   * failure, nothing moved into it).
   */
  @RepeatedTest(10)
  void aSignalGivenAfterTheWorkEndedIsRejectedAndChangesNothing() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<StartSignal<String>> leaked = new AtomicReference<>();
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    AtomicReference<Throwable> late = new AtomicReference<>();
    group.run(
        () -> {
          fromStart.set(
              catchThrowable(() -> group.start((StartSignal<String> s) -> leaked.set(s))));
          late.set(catchThrowable(() -> leaked.get().started("too late")));
        });
    assertThat(fromStart.get()).isInstanceOf(IllegalStateException.class);
    assertThat(late.get()).isInstanceOf(IllegalStateException.class);
    assertThat(group.cancelCalled()).isFalse();
  }

  /**
   * ContextPropagator: "An exception thrown by the returned Runnable outside work.run() is a
   * failure of the group"; only "such a failure before the work" of a start child that has not
   * signalled is thrown by start instead. So a propagator that throws after work that returned
   * without signalling: start throws IllegalStateException (no signal), and the group reports the
   * propagator's exception.
   */
  @Test
  void propagatorThrowingAfterAStartWorkThatNeverSignalledIsAFailureOfTheGroup() throws Exception {
    IllegalStateException restore = new IllegalStateException("restore failed");
    TaskGroup group =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .contextPropagator(
                work ->
                    () -> {
                      work.run();
                      throw restore;
                    })
            .build();
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () -> group.run(() -> fromStart.set(catchThrowable(() -> group.start(s -> {})))));
    assertThat(fromStart.get()).isInstanceOf(IllegalStateException.class);
    assertThat(e.failures()).containsExactly(restore);
  }

  /**
   * CPython test_taskgroups, "cancellation while in __aexit__" (closest): the scope around the
   * group is cancelled while the owner waits for its children; a child that fails in its cleanup
   * during that cancellation is still reported: TaskGroupException wins over the
   * InterruptedException ("When outcomes coincide", (1) before (3)), and the failure is not lost.
   */
  @RepeatedTest(10)
  void outerCancellationWhileJoiningStillReportsCleanupFailures() throws Exception {
    IllegalStateException cleanup = new IllegalStateException("cleanup failed");
    CancelScope outer = CancelScope.create();
    TaskGroup group = TaskGroup.create();
    CountDownLatch childBlocked = new CountDownLatch(1);
    Thread owner = Thread.currentThread();
    Thread canceller =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    childBlocked.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  Probes.awaitTrue(
                      "owner joining",
                      Duration.ofSeconds(10),
                      () -> group.toString().contains("joining"));
                  outer.cancel();
                });
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        group.run(
                            () ->
                                group.fork(
                                    () -> {
                                      childBlocked.countDown();
                                      try {
                                        Thread.sleep(60_000);
                                      } finally {
                                        throw cleanup;
                                      }
                                    }))));
    canceller.join();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(cleanup);
    assertThat(owner.isInterrupted()).isFalse();
  }

  /**
   * CPython test_taskgroups (KeyboardInterrupt / SystemExit in the body, closest): in Java an Error
   * is a failure like any other (TaskGroup javadoc: "Any exception or error"): the children are
   * cancelled and run throws TaskGroupException holding the Error itself, not the raw Error.
   */
  @Test
  void anErrorInTheBodyCancelsTheChildrenAndIsReportedInTheException() {
    TaskGroup group = TaskGroup.create();
    StackOverflowError error = new StackOverflowError("body");
    AtomicBoolean childCancelled = new AtomicBoolean();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      CountDownLatch started = new CountDownLatch(1);
                      group.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException ie) {
                              childCancelled.set(true);
                              throw ie;
                            }
                          });
                      started.await();
                      throw error;
                    }));
    assertThat(e.failures()).containsExactly(error);
    assertThat(childCancelled).isTrue();
  }

  /**
   * Randomised: outside threads fork into a group under maxConcurrency while the group is cancelled
   * at a random moment. Every fork returns a task that ends SUCCESS (its work ran) or CANCELLED (it
   * never ran: the work here cannot be cut short), no failure appears, and every place is given
   * back (a last fork through a shield runs at once). Seed printed.
   */
  @RepeatedTest(20)
  void outsideForksRacingACancellationAreAllAccountedFor() throws Exception {
    long seed = Probes.seed("sweep.seed", "outsideForksRacingACancellation");
    java.util.Random random = new java.util.Random(seed);
    int max = 1 + random.nextInt(3);
    int threads = 2 + random.nextInt(4);
    int perThread = 5 + random.nextInt(20);
    int cancelAfter = 1 + random.nextInt(threads * perThread);
    TaskGroup group = TaskGroup.builder().maxConcurrency(max).build();
    AtomicInteger ran = new AtomicInteger();
    AtomicInteger forked = new AtomicInteger();
    List<Task<Integer>> tasks = new java.util.concurrent.CopyOnWriteArrayList<>();
    group.run(
        () -> {
          List<Thread> outsiders = new ArrayList<>();
          for (int t = 0; t < threads; t++) {
            outsiders.add(
                Thread.ofPlatform()
                    .start(
                        () -> {
                          for (int i = 0; i < perThread; i++) {
                            tasks.add(group.fork(ran::incrementAndGet));
                            if (forked.incrementAndGet() == cancelAfter) {
                              group.cancel();
                            }
                          }
                        }));
          }
          CancelScope.shielded()
              .run(
                  () -> {
                    for (Thread o : outsiders) {
                      o.join();
                    }
                  });
        });
    assertThat(group.cancelCaught()).isTrue();
    assertThat(tasks).hasSize(threads * perThread);
    long succeeded = tasks.stream().filter(t -> t.state() == Future.State.SUCCESS).count();
    long cancelled = tasks.stream().filter(t -> t.state() == Future.State.CANCELLED).count();
    assertThat(succeeded + cancelled).as("seed %d", seed).isEqualTo(tasks.size());
    assertThat(succeeded).as("seed %d", seed).isEqualTo(ran.get());
  }
}
