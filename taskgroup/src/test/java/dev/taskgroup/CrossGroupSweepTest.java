package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Groups across threads and groups: a child of one group forking into its parent group or into a
 * sibling group, forks racing the end of a run, a cancel reaching several levels of nested groups,
 * inner and outer cancels racing, a group run inside a shield, a child cancelling its own, its
 * parent's and a sibling's group, {@link Task#get()} across groups, platform and virtual owners,
 * and one group run from two threads at once. Each scenario checks what the {@link TaskGroup},
 * {@link CancelScope} and {@link Task} javadoc promise (which scope absorbs, what {@code run}
 * throws, that every failure surfaces once, that no child outlives its group and no interrupt is
 * left behind).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class CrossGroupSweepTest {

  private static final long WAIT_S = 10;

  private static void await(CountDownLatch latch) throws InterruptedException {
    if (!latch.await(WAIT_S, TimeUnit.SECONDS)) {
      throw new AssertionError("latch not reached in time");
    }
  }

  /** Waits uninterruptibly (for code that must not react to the cancellation). */
  private static void awaitUninterruptibly(CountDownLatch latch) {
    boolean interrupted = false;
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
    try {
      while (true) {
        try {
          if (latch.await(Math.max(0, end - System.nanoTime()), TimeUnit.NANOSECONDS)) {
            return;
          }
          throw new AssertionError("latch not reached in time");
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static void sleepUntilInterrupted(AtomicInteger interrupts) {
    try {
      Thread.sleep(Duration.ofSeconds(WAIT_S * 3));
      throw new AssertionError("never interrupted");
    } catch (InterruptedException e) {
      interrupts.incrementAndGet();
    }
  }

  // Trio: a nursery passed down to a task of an inner nursery may be used to start tasks that
  // outlive the inner nursery (closest: trio test_nursery "nursery can be passed around").
  @RepeatedTest(20)
  void childOfInnerGroupForksIntoParentGroupWhichJoinsIt() throws Exception {
    TaskGroup outer = TaskGroup.named("B");
    TaskGroup inner = TaskGroup.named("A");
    CountDownLatch innerDone = new CountDownLatch(1);
    AtomicBoolean outerReturned = new AtomicBoolean();
    AtomicBoolean escapeRanAfterInner = new AtomicBoolean();
    AtomicBoolean escapeSawOuterReturned = new AtomicBoolean();
    AtomicReference<Task<String>> escaped = new AtomicReference<>();
    outer.run(
        () ->
            outer.fork(
                () -> {
                  inner.run(
                      () ->
                          inner.fork(
                              () ->
                                  escaped.set(
                                      outer.fork(
                                          () -> {
                                            await(innerDone);
                                            escapeRanAfterInner.set(true);
                                            escapeSawOuterReturned.set(outerReturned.get());
                                            return "escaped";
                                          }))));
                  innerDone.countDown();
                  return null;
                }));
    outerReturned.set(true);
    assertThat(escapeRanAfterInner).isTrue();
    assertThat(escapeSawOuterReturned).isFalse();
    assertThat(escaped.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(escaped.get().get()).isEqualTo("escaped");
    assertThat(inner.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // The scope tree (CancelScope javadoc): a task's root scope is below the group it was forked
  // into, not below the forking thread. Cancelling the forker's group leaves it alone; cancelling
  // the target group reaches it (closest: trio test_nursery_start_soon from another task).
  @RepeatedTest(20)
  void taskForkedIntoSiblingGroupFollowsThatGroupNotTheForkers() throws Exception {
    TaskGroup outer = TaskGroup.named("B");
    TaskGroup a = TaskGroup.named("A");
    TaskGroup c = TaskGroup.named("C");
    CountDownLatch cRunning = new CountDownLatch(1);
    CountDownLatch forkedStarted = new CountDownLatch(1);
    CountDownLatch aCancelled = new CountDownLatch(1);
    CountDownLatch forkedChecked = new CountDownLatch(1);
    AtomicInteger forkedInterrupts = new AtomicInteger();
    AtomicBoolean forkedInterruptedEarly = new AtomicBoolean();
    AtomicReference<Task<Void>> forked = new AtomicReference<>();
    outer.run(
        () -> {
          outer.fork(
              () -> {
                c.run(
                    () -> {
                      cRunning.countDown();
                      CancelScope.sleep(Duration.ofSeconds(WAIT_S * 3));
                    });
                return null;
              });
          outer.fork(
              () -> {
                a.run(
                    () -> {
                      await(cRunning);
                      a.fork(
                          () -> {
                            forked.set(
                                c.fork(
                                    () -> {
                                      forkedStarted.countDown();
                                      awaitUninterruptibly(aCancelled);
                                      forkedInterruptedEarly.set(
                                          Thread.currentThread().isInterrupted()
                                              || CancelScope.isCancelled());
                                      forkedChecked.countDown();
                                      sleepUntilInterrupted(forkedInterrupts);
                                    }));
                            CancelScope.sleep(Duration.ofSeconds(WAIT_S * 3));
                          });
                      await(forkedStarted);
                      a.cancel("A only");
                    });
                aCancelled.countDown();
                assertThat(a.cancelCaught()).isTrue();
                await(forkedChecked);
                c.cancel("C now");
                return null;
              });
        });
    assertThat(forkedInterruptedEarly).as("A's cancel reached a child of C").isFalse();
    assertThat(forkedInterrupts).hasValue(1);
    assertThat(forked.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(c.cancelCaught()).isTrue();
    assertThat(c.cancelScope().cancelReason()).contains("C now");
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // TaskGroup javadoc: fork after run finished throws IllegalStateException; every method may be
  // called from any thread. A fork racing the end of run either runs and is joined, or throws:
  // never lost, never running after run returned (closest: trio "nursery is closed" RuntimeError
  // from start_soon; Kotlin coroutineScope waits for every launched child).
  @RepeatedTest(40)
  void forkFromOutsideRacingEndOfRunIsJoinedOrRefused() throws Exception {
    TaskGroup group = TaskGroup.named("ending");
    AtomicBoolean runReturned = new AtomicBoolean();
    AtomicInteger ranAfterReturn = new AtomicInteger();
    AtomicInteger ran = new AtomicInteger();
    Queue<Task<Integer>> accepted = new ConcurrentLinkedQueue<>();
    AtomicReference<Throwable> refused = new AtomicReference<>();
    CountDownLatch running = new CountDownLatch(1);
    Thread forker =
        Thread.ofPlatform()
            .start(
                () -> {
                  awaitUninterruptibly(running);
                  for (int i = 0; ; i++) {
                    int n = i;
                    try {
                      accepted.add(
                          group.fork(
                              () -> {
                                if (runReturned.get()) {
                                  ranAfterReturn.incrementAndGet();
                                }
                                ran.incrementAndGet();
                                return n;
                              }));
                    } catch (Throwable t) {
                      refused.set(t);
                      return;
                    }
                  }
                });
    group.run(
        () -> {
          running.countDown();
          Thread.onSpinWait();
        });
    runReturned.set(true);
    forker.join(TimeUnit.SECONDS.toMillis(WAIT_S));
    assertThat(forker.isAlive()).isFalse();
    assertThat(refused.get()).isInstanceOf(IllegalStateException.class);
    assertThat(ranAfterReturn).hasValue(0);
    for (Task<Integer> t : accepted) {
      assertThat(t.state()).as("%s", t).isEqualTo(Future.State.SUCCESS);
    }
    assertThat(ran).hasValue(accepted.size());
    assertThat(group.cancelCalled()).isFalse();
  }

  // Same race, forking from a child of the group: a child forking into its own group while the
  // body has returned; the group is still joining, so the fork must be accepted and joined.
  @RepeatedTest(30)
  void childForksGrandchildrenAfterBodyReturnedAllJoined() throws Exception {
    TaskGroup group = TaskGroup.named("chain");
    AtomicBoolean runReturned = new AtomicBoolean();
    AtomicInteger ran = new AtomicInteger();
    AtomicInteger ranAfterReturn = new AtomicInteger();
    int depth = 25;
    class Chain {
      void link(int left) {
        group.fork(
            () -> {
              Thread.yield();
              if (left > 0) {
                link(left - 1);
                link(left / 3);
              }
              if (runReturned.get()) {
                ranAfterReturn.incrementAndGet();
              }
              ran.incrementAndGet();
            });
      }
    }
    int expected = count(depth);
    group.run(() -> new Chain().link(depth));
    runReturned.set(true);
    assertThat(ran).hasValue(expected);
    assertThat(ranAfterReturn).hasValue(0);
  }

  private static int count(int left) {
    return left > 0 ? 1 + count(left - 1) + count(left / 3) : 1;
  }

  // TaskGroup javadoc "Cancellation": a cancellation of an enclosing scope passes through each
  // nested group (its run throws InterruptedException) to the outermost cancelled scope, which
  // absorbs it (closest: trio test_cancel_scope_nesting, nested nurseries cancelled from outside).
  @RepeatedTest(20)
  void outerCancelReachesEveryLevelOfNestedGroups(org.junit.jupiter.api.RepetitionInfo info)
      throws Exception {
    int levels = 3 + info.getCurrentRepetition() % 8;
    int perLevel = 2;
    List<TaskGroup> groups = new ArrayList<>();
    for (int i = 0; i < levels; i++) {
      groups.add(TaskGroup.named("level-" + i));
    }
    int leaves = levels * perLevel;
    CountDownLatch allBlocked = new CountDownLatch(leaves);
    AtomicInteger interrupts = new AtomicInteger();
    AtomicInteger innerRunsThrewIe = new AtomicInteger();
    Queue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
    class Level {
      void run(int i) throws InterruptedException {
        TaskGroup g = groups.get(i);
        try {
          g.run(
              () -> {
                for (int k = 0; k < perLevel; k++) {
                  g.fork(
                      () -> {
                        allBlocked.countDown();
                        sleepUntilInterrupted(interrupts);
                        assertThat(Thread.interrupted()).isFalse();
                      });
                }
                if (i + 1 < levels) {
                  g.fork(() -> run(i + 1));
                }
              });
          if (i > 0) {
            unexpected.add(new AssertionError("inner level " + i + " run returned normally"));
          }
        } catch (InterruptedException e) {
          innerRunsThrewIe.incrementAndGet();
          throw e;
        }
      }
    }
    Thread canceller =
        Thread.ofVirtual()
            .start(
                () -> {
                  awaitUninterruptibly(allBlocked);
                  groups.get(0).cancel("top");
                });
    new Level().run(0);
    canceller.join();
    assertThat(unexpected).isEmpty();
    assertThat(interrupts).hasValue(leaves);
    assertThat(innerRunsThrewIe).hasValue(levels - 1);
    assertThat(groups.get(0).cancelCaught()).isTrue();
    for (int i = 1; i < levels; i++) {
      assertThat(groups.get(i).cancelCaught()).as("level %d", i).isFalse();
      assertThat(groups.get(i).cancelCalled()).as("level %d", i).isFalse();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // CancelScope "Catching": absorbed by this scope if it is cancelled and no cancelled scope above
  // it is visible. Inner and outer cancelled at once (deadline of the inner group against cancel()
  // of the outer): once both are cancelled before the inner body leaves, the outer absorbs and the
  // inner run throws (closest: trio test_cancel_scope_nesting "outer cancel wins").
  @RepeatedTest(30)
  void innerDeadlineFiringWithOuterCancelOuterAbsorbs() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    CyclicBarrier go = new CyclicBarrier(2);
    CountDownLatch innerReady = new CountDownLatch(2);
    AtomicBoolean innerThrew = new AtomicBoolean();
    AtomicInteger interrupts = new AtomicInteger();
    CountDownLatch both = new CountDownLatch(1);
    outer.run(
        () -> {
          outer.fork(
              () -> {
                try {
                  inner.run(
                      () -> {
                        inner.fork(
                            () -> {
                              innerReady.countDown();
                              sleepUntilInterrupted(interrupts);
                              awaitUninterruptibly(both);
                            });
                        innerReady.countDown();
                        sleepUntilInterrupted(interrupts);
                        awaitUninterruptibly(both);
                      });
                } catch (InterruptedException e) {
                  innerThrew.set(true);
                  throw e;
                }
                return null;
              });
          await(innerReady);
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      go.await(WAIT_S, TimeUnit.SECONDS);
                    } catch (Exception e) {
                      throw new AssertionError(e);
                    }
                    inner.cancelScope().setTimeout(Duration.ZERO); // the deadline fires now
                  });
          go.await(WAIT_S, TimeUnit.SECONDS);
          outer.cancel("outer");
          long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
          while (!inner.cancelCalled() && System.nanoTime() < end) {
            Thread.onSpinWait();
          }
          both.countDown();
        });
    assertThat(interrupts).hasValue(2);
    assertThat(innerThrew).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(inner.cancelCalled()).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(outer.cancelScope().cancelReason()).contains("outer");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // cancel() of the inner group racing cancel() of the outer group: each keeps its own first
  // reason; with both cancelled when the inner body leaves, the outermost absorbs.
  @RepeatedTest(30)
  void innerCancelRacingOuterCancelEachKeepsItsReasonOuterAbsorbs() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    CyclicBarrier go = new CyclicBarrier(3);
    CountDownLatch innerRunning = new CountDownLatch(2);
    CountDownLatch both = new CountDownLatch(2);
    AtomicBoolean innerThrew = new AtomicBoolean();
    AtomicInteger interrupts = new AtomicInteger();
    Runnable cancelInner =
        () -> {
          try {
            go.await(WAIT_S, TimeUnit.SECONDS);
          } catch (Exception e) {
            throw new AssertionError(e);
          }
          inner.cancel("inner");
          both.countDown();
        };
    outer.run(
        () -> {
          outer.fork(
              () -> {
                try {
                  inner.run(
                      () -> {
                        inner.fork(
                            () -> {
                              innerRunning.countDown();
                              sleepUntilInterrupted(interrupts);
                              awaitUninterruptibly(both);
                            });
                        innerRunning.countDown();
                        sleepUntilInterrupted(interrupts);
                        awaitUninterruptibly(both);
                      });
                } catch (InterruptedException e) {
                  innerThrew.set(true);
                  throw e;
                }
                return null;
              });
          await(innerRunning);
          Thread.ofVirtual().start(cancelInner);
          outer.fork(
              () -> {
                go.await(WAIT_S, TimeUnit.SECONDS);
                outer.cancel("outer");
                both.countDown();
              });
          go.await(WAIT_S, TimeUnit.SECONDS);
        });
    assertThat(interrupts).hasValue(2);
    assertThat(innerThrew).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(inner.cancelScope().cancelReason()).contains("inner");
    assertThat(outer.cancelScope().cancelReason()).contains("outer");
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // CancelScope "The scope tree" and setShielded: a group run inside a shield is not reached by a
  // cancellation outside the shield; turning the shield off delivers it at once, to the group's
  // children too (closest: trio test_cancel_shield_abort, shield toggled off while blocked).
  @RepeatedTest(20)
  void groupInsideShieldIsCancelledOnlyWhenShieldDrops() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup shieldedGroup = TaskGroup.named("shielded");
    CancelScope shield = CancelScope.shielded();
    CountDownLatch childrenWaiting = new CountDownLatch(3);
    CountDownLatch outerCancelled = new CountDownLatch(1);
    CountDownLatch checked = new CountDownLatch(1);
    CountDownLatch childChecked = new CountDownLatch(3);
    AtomicInteger interruptedEarly = new AtomicInteger();
    AtomicInteger interrupts = new AtomicInteger();
    AtomicBoolean groupThrew = new AtomicBoolean();
    outer.run(
        () -> {
          outer.fork(
              () ->
                  shield.run(
                      () -> {
                        try {
                          shieldedGroup.run(
                              () -> {
                                for (int i = 0; i < 3; i++) {
                                  shieldedGroup.fork(
                                      () -> {
                                        childrenWaiting.countDown();
                                        awaitUninterruptibly(outerCancelled);
                                        if (Thread.currentThread().isInterrupted()) {
                                          interruptedEarly.incrementAndGet();
                                        }
                                        try {
                                          CancelScope.checkpoint();
                                        } catch (InterruptedException e) {
                                          interruptedEarly.incrementAndGet();
                                        }
                                        childChecked.countDown();
                                        awaitUninterruptibly(checked);
                                        sleepUntilInterrupted(interrupts);
                                      });
                                }
                                CancelScope.sleep(Duration.ofSeconds(WAIT_S * 3));
                              });
                        } catch (InterruptedException e) {
                          groupThrew.set(true);
                          throw e;
                        }
                      }));
          await(childrenWaiting);
          outer.cancel("outer");
          outerCancelled.countDown();
          awaitUninterruptibly(childChecked);
          checked.countDown();
          shield.setShielded(false);
        });
    assertThat(interruptedEarly).hasValue(0);
    assertThat(interrupts).hasValue(3);
    assertThat(groupThrew).isTrue();
    assertThat(shieldedGroup.cancelCaught()).isFalse();
    assertThat(shield.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // TaskGroup.cancel javadoc: "the caller, if it is in the group, is cancelled too and its next
  // checkpoint throws". A child of an inner group cancelling the outer group: everything unwinds
  // and the outer group absorbs.
  @RepeatedTest(20)
  void childCancelsGrandparentGroupEverythingUnwindsOuterAbsorbs() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    AtomicInteger interrupts = new AtomicInteger();
    CountDownLatch siblingsBlocked = new CountDownLatch(2);
    AtomicBoolean callerCheckpointThrew = new AtomicBoolean();
    AtomicBoolean innerThrew = new AtomicBoolean();
    outer.run(
        () -> {
          outer.fork(
              () -> {
                siblingsBlocked.countDown();
                sleepUntilInterrupted(interrupts);
              });
          outer.fork(
              () -> {
                try {
                  inner.run(
                      () -> {
                        inner.fork(
                            () -> {
                              siblingsBlocked.countDown();
                              sleepUntilInterrupted(interrupts);
                            });
                        inner.fork(
                            () -> {
                              await(siblingsBlocked);
                              outer.cancel("from grandchild");
                              try {
                                CancelScope.checkpoint();
                              } catch (InterruptedException e) {
                                callerCheckpointThrew.set(true);
                                throw e;
                              }
                            });
                      });
                } catch (InterruptedException e) {
                  innerThrew.set(true);
                  throw e;
                }
              });
        });
    assertThat(interrupts).hasValue(2);
    assertThat(callerCheckpointThrew).isTrue();
    assertThat(innerThrew).isTrue();
    assertThat(inner.cancelCalled()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // A child of group A cancelling a sibling group C (run by another child of the same parent):
  // C's children are interrupted and C absorbs; the caller and A are not cancelled.
  @RepeatedTest(20)
  void childCancelsSiblingGroupOnlyThatGroupIsCancelled() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup a = TaskGroup.named("A");
    TaskGroup c = TaskGroup.named("C");
    CountDownLatch cBlocked = new CountDownLatch(2);
    AtomicInteger cInterrupts = new AtomicInteger();
    AtomicBoolean callerInterrupted = new AtomicBoolean();
    AtomicBoolean callerCancelled = new AtomicBoolean();
    outer.run(
        () -> {
          outer.fork(
              () ->
                  c.run(
                      () -> {
                        c.fork(
                            () -> {
                              cBlocked.countDown();
                              sleepUntilInterrupted(cInterrupts);
                            });
                        cBlocked.countDown();
                        sleepUntilInterrupted(cInterrupts);
                        CancelScope.checkpoint();
                      }));
          outer.fork(
              () ->
                  a.run(
                      () ->
                          a.fork(
                              () -> {
                                await(cBlocked);
                                c.cancel("by A's child");
                                CancelScope.checkpoint();
                                callerCancelled.set(CancelScope.isCancelled());
                                callerInterrupted.set(Thread.currentThread().isInterrupted());
                              })));
        });
    assertThat(cInterrupts).hasValue(2);
    assertThat(c.cancelCaught()).isTrue();
    assertThat(a.cancelCalled()).isFalse();
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(callerCancelled).isFalse();
    assertThat(callerInterrupted).isFalse();
  }

  // Task javadoc "Reading an outcome from a cancelled thread": a child of A waiting for a task of B
  // while A is cancelled gets the cancellation (InterruptedException), not B's failure; B reports
  // its child's failure exactly once.
  @RepeatedTest(20)
  void getAcrossGroupsWhileCancelledThrowsCancellationNotForeignFailure() throws Exception {
    TaskGroup b = TaskGroup.named("B");
    TaskGroup a = TaskGroup.named("A");
    IllegalStateException boom = new IllegalStateException("boom");
    CountDownLatch failNow = new CountDownLatch(1);
    AtomicReference<Throwable> firstGet = new AtomicReference<>();
    AtomicReference<Throwable> secondGet = new AtomicReference<>();
    AtomicReference<Thread> getterThread = new AtomicReference<>();
    CountDownLatch getterWaiting = new CountDownLatch(1);
    AtomicReference<Throwable> aOutcome = new AtomicReference<>();
    Body getter =
        () -> {
          try {
            a.run(
                () -> {
                  a.fork(
                      () -> {
                        getterThread.set(Thread.currentThread());
                        trace.add("child start");
                        getterWaiting.countDown();
                        Task<?> failing = failingTask.get();
                        try {
                          failing.get();
                        } catch (Throwable t) {
                          firstGet.set(t);
                          trace.add("first get threw " + t);
                          failNow.countDown();
                          while (!failing.isDone()) {
                            Thread.onSpinWait();
                          }
                          try {
                            Object v = failing.get(); // failed by now
                            secondGet.set(
                                new AssertionError("get returned " + v + ", " + failing.state()));
                          } catch (Throwable again) {
                            secondGet.set(again);
                          }
                          trace.add("child end");
                          throw t;
                        }
                        trace.add("child end normally");
                        return null;
                      });
                  await(getterWaiting);
                  Probes.awaitWaiting(getterThread.get(), Duration.ofSeconds(WAIT_S));
                  a.cancel("A");
                });
            trace.add("a.run returned");
          } catch (Throwable t) {
            aOutcome.set(t);
          } finally {
            failNow.countDown();
          }
        };
    TaskGroupException thrown =
        org.junit.jupiter.api.Assertions.assertThrows(
            TaskGroupException.class,
            () ->
                b.run(
                    () -> {
                      failingTask.set(
                          b.fork(
                              () -> {
                                awaitUninterruptibly(failNow);
                                throw boom;
                              }));
                      Thread user =
                          Thread.ofVirtual()
                              .start(
                                  () -> {
                                    try {
                                      getter.run();
                                    } catch (Exception e) {
                                      aOutcome.set(e);
                                    }
                                  });
                      // b's body is cancelled by the failure; the user thread is not b's child
                      CountDownLatch userDone = new CountDownLatch(1);
                      Thread.ofVirtual()
                          .start(
                              () -> {
                                try {
                                  user.join();
                                } catch (InterruptedException e) {
                                  throw new AssertionError(e);
                                }
                                userDone.countDown();
                              });
                      awaitUninterruptibly(userDone);
                    }));
    assertThat(thrown.failures()).containsExactly(boom);
    assertThat(firstGet.get()).isInstanceOf(InterruptedException.class);
    assertThat(secondGet.get()).as("%s", trace).isInstanceOf(InterruptedException.class);
    assertThat(aOutcome.get()).isNull();
    assertThat(a.cancelCaught()).isTrue();
  }

  private final Queue<String> trace = new ConcurrentLinkedQueue<>();

  private final AtomicReference<Task<?>> failingTask = new AtomicReference<>();

  // TaskGroup.start javadoc: "Until it signals, the child is cancelled with the caller's scope: if
  // the caller is cancelled ... the child is cancelled and waited for, then start throws
  // InterruptedException". Here the caller is a child of group A starting work in group B: A's
  // cancel reaches the work in B, B itself is not cancelled and reports no failure (closest: trio
  // test_nursery_start cancelled while waiting for task_status.started).
  @RepeatedTest(20)
  void startIntoOtherGroupCallerCancelledCancelsOnlyTheStartingChild() throws Exception {
    TaskGroup b = TaskGroup.named("B");
    TaskGroup a = TaskGroup.named("A");
    CountDownLatch workRunning = new CountDownLatch(1);
    CountDownLatch aDone = new CountDownLatch(1);
    AtomicInteger workInterrupts = new AtomicInteger();
    AtomicReference<Throwable> startOutcome = new AtomicReference<>();
    AtomicBoolean bBodyCancelled = new AtomicBoolean();
    b.run(
        () -> {
          b.fork(
              () -> {
                a.run(
                    () -> {
                      a.fork(
                          () -> {
                            try {
                              b.start(
                                  signal -> {
                                    workRunning.countDown();
                                    sleepUntilInterrupted(workInterrupts);
                                  });
                              startOutcome.set(new AssertionError("start returned"));
                            } catch (Throwable t) {
                              startOutcome.set(t);
                              throw t;
                            }
                          });
                      await(workRunning);
                      a.cancel("A");
                    });
                aDone.countDown();
              });
          awaitUninterruptibly(aDone);
          bBodyCancelled.set(CancelScope.isCancelled() || Thread.currentThread().isInterrupted());
        });
    assertThat(startOutcome.get()).isInstanceOf(InterruptedException.class);
    assertThat(workInterrupts).hasValue(1);
    assertThat(a.cancelCaught()).isTrue();
    assertThat(b.cancelCalled()).isFalse();
    assertThat(bBodyCancelled).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // TaskGroup.fork javadoc: "If the group is effectively cancelled the work is not started and the
  // returned task is already CANCELLED". A child of A forking into a cancelled (still running)
  // sibling group C gets a cancelled task; the forker is not cancelled or interrupted.
  @RepeatedTest(20)
  void forkIntoCancelledSiblingGroupGivesCancelledTaskForkerUnaffected() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup a = TaskGroup.named("A");
    TaskGroup c = TaskGroup.named("C");
    CountDownLatch cCancelled = new CountDownLatch(1);
    CountDownLatch forked = new CountDownLatch(1);
    AtomicBoolean workRan = new AtomicBoolean();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    AtomicBoolean forkerDisturbed = new AtomicBoolean();
    outer.run(
        () -> {
          outer.fork(
              () ->
                  c.run(
                      () -> {
                        c.cancel("C");
                        cCancelled.countDown();
                        awaitUninterruptibly(forked);
                      }));
          outer.fork(
              () ->
                  a.run(
                      () ->
                          a.fork(
                              () -> {
                                await(cCancelled);
                                task.set(c.fork(() -> workRan.set(true)));
                                forkerDisturbed.set(
                                    CancelScope.isCancelled()
                                        || Thread.currentThread().isInterrupted());
                                forked.countDown();
                                CancelScope.checkpoint();
                              })));
        });
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(workRan).isFalse();
    assertThat(forkerDisturbed).isFalse();
    assertThat(c.cancelCaught()).isTrue();
    assertThat(a.cancelCalled()).isFalse();
  }

  // Fork racing the end of run, the forker being a child of another group, and the target group
  // cancelled at a random point in half the runs: each accepted task ends SUCCESS or CANCELLED
  // before run returns, the rest are refused with IllegalStateException, and the target's cancel
  // does not reach the forker (seeded; the seed is printed).
  @RepeatedTest(40)
  void crossGroupForkRacingEndAndCancelOfTarget(org.junit.jupiter.api.RepetitionInfo info)
      throws Exception {
    long seed = System.nanoTime() ^ info.getCurrentRepetition();
    java.util.Random random = new java.util.Random(seed);
    System.out.println("crossGroupForkRacingEndAndCancelOfTarget seed " + seed);
    boolean cancelTarget = random.nextBoolean();
    int cancelAfter = random.nextInt(20);
    TaskGroup target = TaskGroup.named("target");
    TaskGroup a = TaskGroup.named("A");
    AtomicBoolean targetReturned = new AtomicBoolean();
    AtomicInteger ranAfterReturn = new AtomicInteger();
    Queue<Task<Integer>> accepted = new ConcurrentLinkedQueue<>();
    AtomicReference<Throwable> refused = new AtomicReference<>();
    AtomicBoolean forkerDisturbed = new AtomicBoolean();
    CountDownLatch targetRunning = new CountDownLatch(1);
    Thread aOwner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    a.run(
                        () ->
                            a.fork(
                                () -> {
                                  await(targetRunning);
                                  for (int i = 0; ; i++) {
                                    int n = i;
                                    if (cancelTarget && i == cancelAfter) {
                                      target.cancel("random");
                                    }
                                    try {
                                      accepted.add(
                                          target.fork(
                                              () -> {
                                                if (targetReturned.get()) {
                                                  ranAfterReturn.incrementAndGet();
                                                }
                                                return n;
                                              }));
                                    } catch (IllegalStateException e) {
                                      refused.set(e);
                                      break;
                                    }
                                  }
                                  forkerDisturbed.set(
                                      CancelScope.isCancelled()
                                          || Thread.currentThread().isInterrupted());
                                }));
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    target.run(
        () -> {
          targetRunning.countDown();
          target.fork(() -> Thread.yield());
        });
    targetReturned.set(true);
    aOwner.join(TimeUnit.SECONDS.toMillis(WAIT_S));
    assertThat(aOwner.isAlive()).isFalse();
    assertThat(refused.get()).as("seed %d", seed).isInstanceOf(IllegalStateException.class);
    assertThat(ranAfterReturn).as("seed %d", seed).hasValue(0);
    for (Task<Integer> t : accepted) {
      assertThat(t.state())
          .as("seed %d %s", seed, t)
          .isIn(Future.State.SUCCESS, Future.State.CANCELLED);
    }
    if (!cancelTarget) {
      assertThat(accepted).allMatch(t -> t.state() == Future.State.SUCCESS);
    }
    assertThat(forkerDisturbed).as("seed %d", seed).isFalse();
  }

  // TaskGroup.cancelScope: the group's own scope carries its shield. A nested group that shields
  // its own scope keeps an outer cancel from its children until the shield drops; then the
  // cancellation is delivered at once and passes through the group to the outer one (closest: trio
  // test_cancel_shield_abort applied to a nursery's cancel scope).
  @RepeatedTest(20)
  void nestedGroupShieldingItsOwnScopeDefersOuterCancel() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    CountDownLatch childrenReady = new CountDownLatch(2);
    CountDownLatch outerCancelled = new CountDownLatch(1);
    CountDownLatch childrenChecked = new CountDownLatch(2);
    CountDownLatch dropShield = new CountDownLatch(1);
    AtomicInteger disturbedEarly = new AtomicInteger();
    AtomicInteger interrupts = new AtomicInteger();
    AtomicBoolean innerThrew = new AtomicBoolean();
    outer.run(
        () -> {
          outer.fork(
              () -> {
                try {
                  inner.run(
                      () -> {
                        inner.cancelScope().setShielded(true);
                        for (int i = 0; i < 2; i++) {
                          inner.fork(
                              () -> {
                                childrenReady.countDown();
                                awaitUninterruptibly(outerCancelled);
                                if (CancelScope.isCancelled()
                                    || Thread.currentThread().isInterrupted()) {
                                  disturbedEarly.incrementAndGet();
                                }
                                childrenChecked.countDown();
                                sleepUntilInterrupted(interrupts);
                              });
                        }
                        awaitUninterruptibly(dropShield);
                        inner.cancelScope().setShielded(false);
                        CancelScope.checkpoint();
                      });
                } catch (InterruptedException e) {
                  innerThrew.set(true);
                  throw e;
                }
              });
          await(childrenReady);
          outer.cancel("outer");
          outerCancelled.countDown();
          awaitUninterruptibly(childrenChecked);
          dropShield.countDown();
        });
    assertThat(disturbedEarly).hasValue(0);
    assertThat(interrupts).hasValue(2);
    assertThat(innerThrew).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // TaskGroup.fork javadoc: work is refused only when the target group is effectively cancelled.
  // A forker that is itself cancelled (a child of cancelled group A, in its cleanup) forking into a
  // live group C: the work starts, runs under C, and succeeds; and a fork into a group run inside
  // a shield, after the group outside the shield was cancelled, starts too.
  @RepeatedTest(20)
  void cancelledForkerCanStillForkIntoLiveGroupAndIntoShieldedGroup() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup a = TaskGroup.named("A");
    TaskGroup c = TaskGroup.named("C");
    TaskGroup shieldedGroup = TaskGroup.named("shielded");
    CountDownLatch cRunning = new CountDownLatch(1);
    CountDownLatch forkedDone = new CountDownLatch(2);
    CountDownLatch intoCForked = new CountDownLatch(1);
    AtomicReference<Task<String>> intoC = new AtomicReference<>();
    AtomicReference<Task<String>> intoShielded = new AtomicReference<>();
    AtomicBoolean intoCDisturbed = new AtomicBoolean();
    outer.run(
        () -> {
          outer.fork(
              () ->
                  c.run(
                      () -> {
                        cRunning.countDown();
                        awaitUninterruptibly(forkedDone);
                      }));
          outer.fork(
              () ->
                  a.run(
                      () -> {
                        a.fork(
                            () -> {
                              await(cRunning);
                              a.cancel("A");
                              assertThat(CancelScope.isCancelled()).isTrue();
                              intoC.set(
                                  c.fork(
                                      () -> {
                                        intoCDisturbed.set(
                                            CancelScope.isCancelled()
                                                || Thread.currentThread().isInterrupted());
                                        forkedDone.countDown();
                                        intoCForked.countDown(); // the outer cancel comes after
                                        return "ran in C";
                                      }));
                              CancelScope.checkpoint();
                            });
                      }));
          outer.fork(
              () ->
                  CancelScope.shielded()
                      .run(
                          () ->
                              shieldedGroup.run(
                                  () -> {
                                    awaitUninterruptibly(intoCForked);
                                    outer.cancel("outer");
                                    intoShielded.set(
                                        shieldedGroup.fork(
                                            () -> {
                                              forkedDone.countDown();
                                              return "ran shielded";
                                            }));
                                  })));
        });
    assertThat(intoC.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(intoC.get().resultNow()).isEqualTo("ran in C");
    assertThat(intoCDisturbed).isFalse();
    assertThat(intoShielded.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(a.cancelCalled()).isTrue(); // A or outer absorbs, depending on A's exit
    assertThat(c.cancelCalled()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  // TaskGroup "Nulls, misuse": a group runs once; a second run throws IllegalStateException and
  // leaves the group as it was: the first run and its children are unaffected.
  @RepeatedTest(20)
  void sameGroupRunFromTwoThreadsSecondRefusedFirstUnaffected() throws Exception {
    TaskGroup group = TaskGroup.named("once");
    CountDownLatch firstRunning = new CountDownLatch(1);
    CountDownLatch secondDone = new CountDownLatch(1);
    AtomicReference<Throwable> second = new AtomicReference<>();
    AtomicBoolean secondBodyRan = new AtomicBoolean();
    AtomicBoolean secondThreadInterrupted = new AtomicBoolean();
    AtomicInteger childRuns = new AtomicInteger();
    Thread other =
        Thread.ofPlatform()
            .start(
                () -> {
                  awaitUninterruptibly(firstRunning);
                  try {
                    group.run(() -> secondBodyRan.set(true));
                  } catch (Throwable t) {
                    second.set(t);
                  }
                  secondThreadInterrupted.set(Thread.currentThread().isInterrupted());
                  secondDone.countDown();
                });
    group.run(
        () -> {
          group.fork(
              () -> {
                await(secondDone);
                childRuns.incrementAndGet();
              });
          firstRunning.countDown();
          await(secondDone);
          group.fork(() -> childRuns.incrementAndGet());
        });
    other.join();
    assertThat(second.get()).isInstanceOf(IllegalStateException.class);
    assertThat(secondBodyRan).isFalse();
    assertThat(secondThreadInterrupted).isFalse();
    assertThat(childRuns).hasValue(2);
    assertThat(group.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // A group owned by a platform thread with virtual children, and a group owned by a virtual
  // thread with platform children: cancel interrupts every child once and leaves no interrupt.
  @RepeatedTest(10)
  void mixedThreadKindsOwnerAndChildren() throws Exception {
    for (boolean platformOwner : new boolean[] {true, false}) {
      TaskGroup group =
          platformOwner
              ? TaskGroup.named("platform-owner")
              : TaskGroup.builder()
                  .name("virtual-owner")
                  .threadFactory(Thread.ofPlatform().factory())
                  .build();
      AtomicInteger interrupts = new AtomicInteger();
      AtomicInteger wrongKind = new AtomicInteger();
      AtomicBoolean ownerInterruptedAfter = new AtomicBoolean(true);
      Thread.Builder owner = platformOwner ? Thread.ofPlatform() : Thread.ofVirtual();
      Thread t =
          owner.start(
              () -> {
                try {
                  CountDownLatch blocked = new CountDownLatch(4);
                  group.run(
                      () -> {
                        for (int i = 0; i < 4; i++) {
                          group.fork(
                              () -> {
                                if (Thread.currentThread().isVirtual() != platformOwner) {
                                  wrongKind.incrementAndGet();
                                }
                                blocked.countDown();
                                sleepUntilInterrupted(interrupts);
                              });
                        }
                        await(blocked);
                        group.cancel();
                        CancelScope.checkpoint();
                      });
                  ownerInterruptedAfter.set(Thread.currentThread().isInterrupted());
                } catch (InterruptedException e) {
                  throw new AssertionError(e);
                }
              });
      t.join(TimeUnit.SECONDS.toMillis(WAIT_S));
      assertThat(t.isAlive()).isFalse();
      assertThat(wrongKind).hasValue(0);
      assertThat(interrupts).hasValue(4);
      assertThat(group.cancelCaught()).isTrue();
      assertThat(ownerInterruptedAfter).isFalse();
    }
  }

  // Task cancel vs. group: a task of B cancelled by a thread of A does not cancel B or A.
  @RepeatedTest(10)
  void cancellingForeignTaskCancelsOnlyThatTask() throws Exception {
    TaskGroup b = TaskGroup.named("B");
    TaskGroup a = TaskGroup.named("A");
    AtomicInteger interrupts = new AtomicInteger();
    CountDownLatch blocked = new CountDownLatch(1);
    b.run(
        () -> {
          Task<Void> victim =
              b.fork(
                  () -> {
                    blocked.countDown();
                    sleepUntilInterrupted(interrupts);
                  });
          a.run(
              () ->
                  a.fork(
                      () -> {
                        await(blocked);
                        assertThat(victim.cancel(true)).isTrue();
                        assertThatThrownBy(victim::get).isInstanceOf(CancellationException.class);
                        CancelScope.checkpoint();
                      }));
        });
    assertThat(interrupts).hasValue(1);
    assertThat(a.cancelCalled()).isFalse();
    assertThat(b.cancelCalled()).isFalse();
  }
}
