package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Twins of Trio's {@code src/trio/_core/_tests/test_run.py} (cancel scopes, nurseries, {@code
 * nursery.start}, shields, deadlines) and {@code src/trio/_tests/test_timeouts.py} ({@code
 * move_on_after}, {@code fail_after}, deadlines on entry), one upstream test at a time, translated
 * to threads: a nursery is a {@link TaskGroup}, {@code start_soon} is {@code fork}, a task's
 * cancellation is its thread's interrupt, {@code checkpoint()} is {@link CancelScope#checkpoint()},
 * an ExceptionGroup is a {@link TaskGroupException}. Each test names the upstream test it follows;
 * where this library differs from Trio by design (its javadoc says so), the twin asserts the
 * documented behaviour and says where it differs. Scenarios already ported in {@link
 * PortedScenariosTest} are not repeated here.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedTrioTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  // ------------------------------------------------------------------------- helpers

  /** Trio's sleep_forever: blocks until interrupted. */
  private static void sleepForever() throws InterruptedException {
    new CountDownLatch(1).await();
  }

  /** Spins (ignoring interrupts) until {@code condition} holds, failing after 10 s. */
  private static void spinUntil(BooleanSupplier condition) {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - end > 0) {
        throw new AssertionError("condition not reached within 10 s");
      }
      Thread.onSpinWait();
    }
  }

  /** Waits until {@code t} is blocked (Trio's wait_all_tasks_blocked, for one thread). */
  private static void awaitBlocked(Thread t) {
    Probes.awaitWaiting(t, Duration.ofSeconds(10));
  }

  private static boolean checkpointThrows() {
    try {
      CancelScope.checkpoint();
      return false;
    } catch (InterruptedException e) {
      return true;
    }
  }

  private static List<Throwable> failuresOf(Throwable t) {
    assertThat(t).isInstanceOf(TaskGroupException.class);
    return ((TaskGroupException) t).failures();
  }

  // ---------------------------------------------------------------- failures of body and children

  /** Trio test_nursery_main_block_error_basic, test_nursery_explicit_exception. */
  @Test
  void aFailureOfTheBodyIsTheGroupsOnlyFailureAndTheSameObject() {
    IllegalStateException whoops = new IllegalStateException("whoops");
    TaskGroup g = TaskGroup.create();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      throw whoops;
                    }));
    assertThat(failuresOf(t)).containsExactly(whoops);
    assertThat(t.getCause()).isSameAs(whoops);
  }

  /** Trio test_child_crash_basic. */
  @Test
  void aChildsFailureComesOutOfRunAsTheSameObject() {
    IllegalStateException uhOh = new IllegalStateException("uh oh");
    TaskGroup g = TaskGroup.create();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              throw uhOh;
                            })));
    assertThat(failuresOf(t)).containsExactly(uhOh);
  }

  /**
   * Trio test_task_crash_propagation: a sibling looping on checkpoints is cancelled by the crash,
   * sees the cancellation once, and the group reports only the crash.
   */
  @RepeatedTest(5)
  void aCrashCancelsASiblingLoopingOnCheckpoints() {
    Queue<String> looperRecord = new ConcurrentLinkedQueue<>();
    CountDownLatch looping = new CountDownLatch(1);
    TaskGroup g = TaskGroup.create();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try {
                              while (true) {
                                looping.countDown();
                                CancelScope.checkpoint();
                              }
                            } catch (InterruptedException e) {
                              looperRecord.add("cancelled");
                            }
                          });
                      looping.await();
                      g.fork(
                          () -> {
                            throw new IllegalArgumentException("argh");
                          });
                    }));
    assertThat(failuresOf(t)).singleElement().extracting(Throwable::getMessage).isEqualTo("argh");
    assertThat(looperRecord).containsExactly("cancelled");
  }

  /**
   * Trio test_main_and_task_both_crash, test_nursery_exception_chaining_doesnt_make_context_loops:
   * the body and a child fail at about the same moment; both are reported, and the library chains
   * neither to the other (no cause, nothing suppressed).
   */
  @RepeatedTest(10)
  void theBodyAndAChildFailingTogetherAreBothReportedAndNotChained() {
    IllegalArgumentException childFailure = new IllegalArgumentException("child");
    NoSuchElementException bodyFailure = new NoSuchElementException("body");
    CountDownLatch childStarted = new CountDownLatch(1);
    AtomicBoolean go = new AtomicBoolean();
    TaskGroup g = TaskGroup.create();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            childStarted.countDown();
                            spinUntil(go::get);
                            throw childFailure;
                          });
                      childStarted.await();
                      go.set(true);
                      throw bodyFailure;
                    }));
    assertThat(failuresOf(t)).containsExactlyInAnyOrder(childFailure, bodyFailure);
    for (Throwable f : List.of(childFailure, bodyFailure)) {
      assertThat(f.getCause()).isNull();
      assertThat(f.getSuppressed()).isEmpty();
    }
  }

  /** Trio test_two_child_crashes: two children failing together are both reported. */
  @RepeatedTest(10)
  void twoChildrenFailingTogetherAreBothReported() {
    CountDownLatch bothStarted = new CountDownLatch(2);
    IllegalArgumentException a = new IllegalArgumentException("a");
    IllegalStateException b = new IllegalStateException("b");
    TaskGroup g = TaskGroup.create();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      for (RuntimeException e : List.of(a, b)) {
                        g.fork(
                            () -> {
                              bothStarted.countDown();
                              spinUntil(() -> bothStarted.getCount() == 0);
                              throw e;
                            });
                      }
                    }));
    assertThat(failuresOf(t)).containsExactlyInAnyOrder(a, b);
  }

  /** Trio test_child_crash_wakes_parent: a body blocked forever is woken by a child's crash. */
  @RepeatedTest(5)
  void aChildsCrashWakesTheBodyBlockedForever() {
    TaskGroup g = TaskGroup.create();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            throw new IllegalStateException("this is a crash");
                          });
                      sleepForever();
                    }));
    assertThat(failuresOf(t))
        .singleElement()
        .extracting(Throwable::getMessage)
        .isEqualTo("this is a crash");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_nursery_stop_iteration: an exception with a special meaning elsewhere (here {@code
   * NoSuchElementException}, as StopIteration) thrown by the body is an ordinary failure, reported
   * with the child's.
   */
  @Test
  void anIteratorEndingExceptionOfTheBodyIsAnOrdinaryFailure() {
    CountDownLatch childFailed = new CountDownLatch(1);
    IllegalArgumentException childFailure = new IllegalArgumentException();
    NoSuchElementException stop = new NoSuchElementException();
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Void> child =
                          g.fork(
                              () -> {
                                throw childFailure;
                              });
                      while (!child.isDone()) {
                        Thread.onSpinWait();
                      }
                      childFailed.countDown();
                      throw stop;
                    }));
    assertThat(failuresOf(t)).containsExactly(childFailure, stop);
  }

  /**
   * Trio test_nursery_collapse: an inner group's failures reach the outer group as one {@link
   * TaskGroupException}, kept whole, beside the outer child's own failure; the cancelled sleepers
   * are not failures.
   */
  @RepeatedTest(5)
  void aNestedGroupsFailureIsKeptWholeBesideTheOuterChildsFailure() {
    IllegalStateException outerChildFailure = new IllegalStateException("outer test error");
    IllegalStateException innerChildFailure = new IllegalStateException("inner test error");
    CountDownLatch outerFailed = new CountDownLatch(1);
    TaskGroup outer = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    Throwable t =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      outer.fork(PortedTrioTest::sleepForever);
                      outer.fork(
                          () -> {
                            outerFailed.countDown();
                            throw outerChildFailure;
                          });
                      outerFailed.await();
                      TaskGroup inner =
                          TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
                      inner.run(
                          () -> {
                            inner.fork(PortedTrioTest::sleepForever);
                            Task<Void> failing =
                                inner.fork(
                                    () -> {
                                      throw innerChildFailure;
                                    });
                            while (!failing.isDone()) {
                              Thread.onSpinWait();
                            }
                            outer.cancel();
                          });
                    }));
    List<Throwable> failures = failuresOf(t);
    assertThat(failures).hasSize(2);
    assertThat(failures.get(0)).isSameAs(outerChildFailure);
    assertThat(failuresOf(failures.get(1))).containsExactly(innerChildFailure);
  }

  // ---------------------------------------------------------------- checkpoints and level
  // triggering

  /** Trio test_cancel_points: a checkpoint throws only once the scope is cancelled. */
  @Test
  void aCheckpointThrowsOnlyAfterCancelAndTheSwallowedCancellationLeavesNoInterrupt()
      throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicBoolean before = new AtomicBoolean();
    AtomicReference<Throwable> after = new AtomicReference<>();
    scope.run(
        () -> {
          before.set(checkpointThrows());
          scope.cancel();
          after.set(catchThrowable(CancelScope::checkpoint));
        });
    assertThat(before).isFalse();
    assertThat(after.get()).isInstanceOf(CancelledException.class);
    // The body swallowed the cancellation and returned: not caught by the scope, no interrupt left.
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_points (main4): a checkpoint inside a shielded scope (Trio's
   * cancel_shielded_checkpoint) does not throw in a cancelled scope; the next plain one does.
   */
  @Test
  void shieldedCheckpointsDoNotThrowInACancelledScopeButThePlainOneDoes() throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicInteger shieldedThrew = new AtomicInteger();
    scope.run(
        () -> {
          scope.cancel();
          for (int i = 0; i < 2; i++) {
            CancelScope.shielded()
                .run(
                    () -> {
                      if (checkpointThrows()) {
                        shieldedThrew.incrementAndGet();
                      }
                    });
          }
          CancelScope.checkpoint();
        });
    assertThat(shieldedThrew).hasValue(0);
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_edge_cases: cancelling twice is idempotent, and delivery is level-triggered: a
   * blocking call that swallowed the cancellation is cancelled again when it blocks again, both for
   * the library's sleep and for a plain JDK {@code Thread.sleep} (which clears the status).
   */
  @RepeatedTest(3)
  void cancelTwiceIsIdempotentAndDeliveryIsLevelTriggered() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          scope.cancel();
          CancelScope.checkpoint();
        });
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();

    CancelScope level = CancelScope.create();
    AtomicInteger thrown = new AtomicInteger();
    level.run(
        () -> {
          level.cancel();
          for (int i = 0; i < 2; i++) {
            try {
              CancelScope.sleep(Duration.ofSeconds(20));
            } catch (InterruptedException e) {
              thrown.incrementAndGet();
            }
          }
          for (int i = 0; i < 2; i++) {
            try {
              Thread.sleep(20_000);
            } catch (InterruptedException e) {
              thrown.incrementAndGet();
            }
          }
        });
    assertThat(thrown).hasValue(4);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_yield_briefly_checks_for_timeout: a deadline that passes while the thread runs
   * without blocking is seen at its next checkpoint.
   */
  @Test
  void aDeadlinePassedWhileBusyIsSeenAtTheNextCheckpoint() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(100));
    AtomicBoolean first = new AtomicBoolean();
    AtomicReference<Throwable> second = new AtomicReference<>();
    scope.run(
        () -> {
          first.set(checkpointThrows());
          Instant deadline = scope.deadline().orElseThrow();
          spinUntil(() -> Instant.now().isAfter(deadline.plusMillis(50)));
          second.set(catchThrowable(CancelScope::checkpoint));
        });
    assertThat(first).isFalse();
    assertThat(second.get()).isInstanceOf(CancelledException.class);
  }

  // ---------------------------------------------------------------- shields

  /**
   * Trio test_cancel_shielding: a shield raised while running keeps an outer cancellation out, but
   * not the cancellation of a scope inside it or of the shielded scope itself; lowered again, the
   * outer cancellation is back.
   */
  @Test
  void aShieldKeepsOuterCancellationOutButNotItsOwnOrAnInnerOne() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    List<Boolean> throwsAt = new java.util.ArrayList<>();
    CancelScope innerest = CancelScope.create();
    outer.run(
        () ->
            inner.run(
                () -> {
                  CancelScope.checkpoint();
                  outer.cancel();
                  throwsAt.add(checkpointThrows()); // true
                  assertThat(inner.isShielded()).isFalse();
                  inner.setShielded(true);
                  assertThat(inner.isShielded()).isTrue();
                  throwsAt.add(checkpointThrows()); // false: shielded from outer
                  innerest.run(
                      () -> {
                        innerest.cancel();
                        throwsAt.add(checkpointThrows()); // true
                      });
                  throwsAt.add(checkpointThrows()); // false
                  inner.setShielded(false);
                  throwsAt.add(checkpointThrows()); // true
                  inner.setShielded(true);
                  throwsAt.add(checkpointThrows()); // false
                  inner.cancel();
                  CancelScope.checkpoint(); // throws, absorbed by inner
                  throwsAt.add(null); // never reached
                }));
    assertThat(throwsAt).containsExactly(true, false, true, false, true, false);
    assertThat(inner.cancelCaught()).isTrue();
    assertThat(innerest.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_shield_abort: the group's scope, shielded while an outer scope is cancelled,
   * lets a child block; lowering the shield cancels the blocked child at once (checked inside a
   * shield before the group's own exit could cancel it).
   */
  @RepeatedTest(5)
  void unshieldingAGroupCancelsItsBlockedChildAtOnce() throws Exception {
    CancelScope outer = CancelScope.create();
    Queue<String> record = new ConcurrentLinkedQueue<>();
    AtomicReference<Thread> sleeperThread = new AtomicReference<>();
    CountDownLatch sleeping = new CountDownLatch(1);
    CountDownLatch cancelled = new CountDownLatch(1);
    AtomicReference<List<String>> seenBeforeUnshield = new AtomicReference<>();
    AtomicBoolean sawCancelInShield = new AtomicBoolean();
    outer.run(
        () -> {
          TaskGroup g = TaskGroup.create();
          g.run(
              () -> {
                outer.cancel();
                g.cancelScope().setShielded(true);
                g.fork(
                    () -> {
                      sleeperThread.set(Thread.currentThread());
                      record.add("sleeping");
                      sleeping.countDown();
                      try {
                        sleepForever();
                      } catch (InterruptedException e) {
                        record.add("cancelled");
                        cancelled.countDown();
                      }
                    });
                sleeping.await();
                awaitBlocked(sleeperThread.get());
                seenBeforeUnshield.set(List.copyOf(record));
                g.cancelScope().setShielded(false);
                CancelScope.shielded()
                    .run(() -> sawCancelInShield.set(cancelled.await(10, TimeUnit.SECONDS)));
              });
        });
    assertThat(seenBeforeUnshield.get()).containsExactly("sleeping");
    assertThat(sawCancelInShield).isTrue();
    assertThat(record).containsExactly("sleeping", "cancelled");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_scope_nesting: with two nested scopes cancelled at once, the outer one
   * catches; a scope shielded while running can still be cancelled itself; and a cancellation only
   * seen inside a shield, never reaching the scope's end, is not caught by it.
   */
  @Test
  void nestedCancellationsAreCaughtByTheOutermostCancelledScope() throws Exception {
    CancelScope scope1 = CancelScope.create();
    CancelScope scope2 = CancelScope.create();
    CancelScope scope3 = CancelScope.create();
    scope1.run(
        () ->
            scope2.run(
                () ->
                    scope3.run(
                        () -> {
                          scope3.cancel();
                          scope2.cancel();
                          sleepForever();
                        })));
    assertThat(scope3.cancelCalled()).isTrue();
    assertThat(scope3.cancelCaught()).isFalse();
    assertThat(scope2.cancelCalled()).isTrue();
    assertThat(scope2.cancelCaught()).isTrue();
    assertThat(scope1.cancelCalled()).isFalse();
    assertThat(scope1.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    CancelScope a = CancelScope.create();
    CancelScope b = CancelScope.create();
    List<Boolean> throwsAt = new java.util.ArrayList<>();
    a.run(
        () ->
            b.run(
                () -> {
                  a.cancel();
                  throwsAt.add(checkpointThrows());
                  throwsAt.add(checkpointThrows());
                  b.setShielded(true);
                  throwsAt.add(checkpointThrows());
                  b.cancel();
                  throwsAt.add(checkpointThrows());
                }));
    assertThat(throwsAt).containsExactly(true, true, false, true);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    CancelScope popped = CancelScope.create();
    popped.run(
        () -> {
          popped.cancel();
          CancelScope.shielded().run(CancelScope::checkpoint);
        });
    CancelScope.checkpoint();
    assertThat(popped.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_unshield_while_cancel_propagating (issue 1175): a shield raised in a finally block
   * while the outer scope's cancellation is on its way out does not swallow it: the outer scope
   * catches it, the now shielded inner one does not.
   */
  @Test
  void aShieldRaisedWhileTheCancellationPropagatesDoesNotStopIt() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    outer.run(
        () ->
            inner.run(
                () -> {
                  outer.cancel();
                  try {
                    CancelScope.checkpoint();
                  } finally {
                    inner.setShielded(true);
                  }
                }));
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_unbound (shield before entry), test_timeouts.py
   * test_context_shields_from_outer: a scope shielded before it runs keeps out a cancelled outer
   * scope from the start, a timeout scope too; unshielded, it lets it in.
   */
  @Test
  void aScopeShieldedBeforeEntryKeepsOutACancelledOuterScope() throws Exception {
    for (CancelScope shield :
        List.of(CancelScope.create(), CancelScope.withTimeout(Duration.ofSeconds(20)))) {
      shield.setShielded(true);
      CancelScope outer = CancelScope.create();
      List<Boolean> throwsAt = new java.util.ArrayList<>();
      outer.run(
          () -> {
            outer.cancel();
            shield.run(
                () -> {
                  throwsAt.add(checkpointThrows());
                  shield.setShielded(false);
                  throwsAt.add(checkpointThrows());
                });
          });
      assertThat(throwsAt).containsExactly(false, true);
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  /**
   * Trio test_slow_abort_edge_cases, translated to {@link CancelScope#onCancel}: a thread blocked
   * where an interrupt cannot reach it has its hook run once, however many enclosing scopes are
   * cancelled; once its group is shielded, it goes on blocking undisturbed and finishes.
   */
  @RepeatedTest(5)
  void aCancelHookRunsOnceWhenTwoEnclosingScopesAreCancelled() throws Exception {
    CancelScope outer1 = CancelScope.create();
    CancelScope outer2 = CancelScope.create();
    AtomicInteger hookRuns = new AtomicInteger();
    Semaphore uninterruptible = new Semaphore(0);
    Queue<String> record = new ConcurrentLinkedQueue<>();
    CountDownLatch registered = new CountDownLatch(1);
    AtomicReference<Thread> aborter = new AtomicReference<>();
    outer1.run(
        () ->
            outer2.run(
                () -> {
                  TaskGroup g = TaskGroup.create();
                  g.run(
                      () -> {
                        g.fork(
                            () -> {
                              aborter.set(Thread.currentThread());
                              try (var hook =
                                  CancelScope.onCancel(
                                      () -> {
                                        hookRuns.incrementAndGet();
                                        uninterruptible.release();
                                      })) {
                                record.add("sleeping");
                                registered.countDown();
                                uninterruptible.acquireUninterruptibly();
                                record.add("woke");
                              }
                              // blocking again is fine: the group is shielded by now
                              CancelScope.shielded().run(() -> record.add("done"));
                            });
                        registered.await();
                        awaitBlocked(aborter.get());
                        outer1.cancel();
                        spinUntil(() -> hookRuns.get() == 1);
                        outer2.cancel();
                        g.cancelScope().setShielded(true);
                      });
                }));
    assertThat(hookRuns).hasValue(1);
    assertThat(record).containsExactly("sleeping", "woke", "done");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- group cancellation

  /** Trio test_cancel_inheritance: cancelling a group reaches every grandchild at once. */
  @RepeatedTest(5)
  void cancellingAGroupReachesTheChildrenOfNestedGroupsInItsChildren() throws Exception {
    Set<String> record = ConcurrentHashMap.newKeySet();
    CountDownLatch leavesBlocked = new CountDownLatch(4);
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (String w : List.of("w1", "w2")) {
            g.fork(
                () -> {
                  TaskGroup inner = TaskGroup.create();
                  inner.run(
                      () -> {
                        for (String l : List.of("-l1", "-l2")) {
                          inner.fork(
                              () -> {
                                try {
                                  leavesBlocked.countDown();
                                  sleepForever();
                                } catch (InterruptedException e) {
                                  record.add(w + l);
                                }
                              });
                        }
                      });
                });
          }
          leavesBlocked.await();
          g.cancel();
        });
    assertThat(record).containsExactlyInAnyOrder("w1-l1", "w1-l2", "w2-l1", "w2-l2");
    assertThat(g.cancelCaught()).isTrue();
  }

  /**
   * Trio test_cancel_scope_exceptiongroup_filtering: children cancelled by the group, by an outer
   * scope, and one that fails: the outer scope lets only the failure through, and does not count it
   * as a caught cancellation.
   */
  @RepeatedTest(5)
  void onlyTheFailureLeavesAnOuterScopeWhoseCancellationEndedTheOthers() {
    CancelScope outer = CancelScope.create();
    IllegalStateException keyError = new IllegalStateException("key");
    AtomicBoolean crash = new AtomicBoolean();
    CountDownLatch started = new CountDownLatch(3);
    AtomicReference<List<Task<Void>>> sleepers = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      TaskGroup g = TaskGroup.create();
                      g.run(
                          () -> {
                            Task<Void> t1 =
                                g.fork(
                                    () -> {
                                      started.countDown();
                                      sleepForever();
                                    });
                            Task<Void> t2 =
                                g.fork(
                                    () -> {
                                      started.countDown();
                                      sleepForever();
                                    });
                            g.fork(
                                () -> {
                                  started.countDown();
                                  spinUntil(crash::get);
                                  throw keyError;
                                });
                            sleepers.set(List.of(t1, t2));
                            CancelScope.shielded().run(started::await);
                            g.cancel();
                            outer.cancel();
                            crash.set(true);
                          });
                    }));
    assertThat(failuresOf(t)).containsExactly(keyError);
    assertThat(outer.cancelCaught()).isFalse();
    for (Task<Void> s : sleepers.get()) {
      assertThat(s.state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_precancelled_task, a deliberate difference: Trio starts a task spawned into a
   * cancelled nursery (it fails at its first checkpoint); here, per {@link Task}'s javadoc, work
   * forked into a cancelled group never starts and its task is already CANCELLED.
   */
  @Test
  void workForkedIntoACancelledGroupNeverStarts() throws Exception {
    Queue<String> record = new ConcurrentLinkedQueue<>();
    TaskGroup g = TaskGroup.create();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    g.run(
        () -> {
          g.cancel();
          task.set(
              g.fork(
                  () -> {
                    record.add("started");
                  }));
        });
    assertThat(record).isEmpty();
    assertThat(task.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
  }

  /**
   * Trio test_failed_abort: a thread that the interrupt cannot reach (here: waiting for a lock)
   * stays blocked after its scope is cancelled; woken by hand, it sees the cancellation at its next
   * checkpoint.
   */
  @RepeatedTest(3)
  void aThreadTheInterruptCannotReachSeesTheCancellationOnceWokenByHand() throws Exception {
    ReentrantLock lock = new ReentrantLock();
    Queue<String> record = new ConcurrentLinkedQueue<>();
    AtomicReference<Thread> stubborn = new AtomicReference<>();
    AtomicReference<CancelScope> stubbornScope = new AtomicReference<>();
    CountDownLatch entered = new CountDownLatch(1);
    lock.lock();
    try {
      TaskGroup g = TaskGroup.create();
      g.run(
          () -> {
            g.fork(
                () -> {
                  stubborn.set(Thread.currentThread());
                  CancelScope scope = CancelScope.create();
                  stubbornScope.set(scope);
                  scope.run(
                      () -> {
                        record.add("sleep");
                        entered.countDown();
                        lock.lock();
                        lock.unlock();
                        record.add("woke");
                        try {
                          CancelScope.checkpoint();
                        } catch (InterruptedException e) {
                          record.add("cancelled");
                        }
                      });
                });
            entered.await();
            awaitBlocked(stubborn.get());
            stubbornScope.get().cancel();
            // the cancellation did not wake it: it is still waiting for the lock
            awaitBlocked(stubborn.get());
            assertThat(record).containsExactly("sleep");
            lock.unlock();
          });
    } finally {
      if (lock.isHeldByCurrentThread()) {
        lock.unlock();
      }
    }
    assertThat(record).containsExactly("sleep", "woke", "cancelled");
  }

  /**
   * Trio test_trivial_yields (last case), test_cancel_scope_no_cancellederror: in a cancelled
   * scope, a failure of the group's body is still a failure (the scope does not absorb it and does
   * not count it as caught), and so is a nested group's TaskGroupException thrown by a body.
   */
  @Test
  void aFailureInsideACancelledScopeIsNotACaughtCancellation() {
    CancelScope scope = CancelScope.create();
    IllegalStateException keyError = new IllegalStateException("key");
    Throwable t =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      TaskGroup.create()
                          .run(
                              () -> {
                                throw keyError;
                              });
                    }));
    assertThat(failuresOf(t)).containsExactly(keyError);
    assertThat(scope.cancelCaught()).isFalse();

    CancelScope scope2 = CancelScope.create();
    AtomicReference<TaskGroupException> nested = new AtomicReference<>();
    Throwable t2 =
        catchThrowable(
            () ->
                scope2.run(
                    () -> {
                      try {
                        TaskGroup.builder()
                            .failurePolicy(FailurePolicy.COLLECT)
                            .build()
                            .run(
                                () -> {
                                  throw new IllegalStateException("test");
                                });
                      } catch (TaskGroupException e) {
                        nested.set(e);
                        scope2.cancel();
                        throw e;
                      }
                    }));
    assertThat(t2).isSameAs(nested.get());
    assertThat(scope2.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_trivial_yields: a group with nothing to wait for inside a cancelled scope, and one
   * whose only child ends without a checkpoint, end without a failure and leave no interrupt. (Trio
   * does not check for cancellation there, so its scope catches nothing; here the group's wait is a
   * checkpoint, so either outcome is allowed, but nothing may escape the scope.)
   */
  @Test
  void aGroupWithNothingToDoInsideACancelledScopeEndsQuietly() throws Exception {
    CancelScope cs = CancelScope.create();
    cs.run(
        () -> {
          cs.cancel();
          TaskGroup.create().run(() -> {});
        });
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    CancelScope cs2 = CancelScope.create();
    cs2.run(
        () -> {
          cs2.cancel();
          TaskGroup g = TaskGroup.create();
          g.run(() -> g.fork(() -> {}));
        });
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- scope life cycle and misuse

  /**
   * Trio test_cancel_unbound: a scope cancelled before it runs runs cancelled (and catches its own
   * cancellation, not the inner timeout's); one cancelled from another thread after entry too.
   */
  @RepeatedTest(3)
  void aScopeCancelledBeforeOrAfterEntryCatchesItsCancellation() throws Exception {
    CancelScope before = CancelScope.create();
    before.cancel();
    AtomicReference<Throwable> inner = new AtomicReference<>();
    TaskGroup g = TaskGroup.create();
    g.run(
        () ->
            g.fork(
                () ->
                    before.run(
                        () ->
                            inner.set(
                                catchThrowable(
                                    () ->
                                        CancelScope.failAfter(
                                            Duration.ofSeconds(10),
                                            () -> {
                                              sleepForever();
                                              return null;
                                            }))))));
    assertThat(inner.get()).isInstanceOf(InterruptedException.class);
    assertThat(before.cancelCaught()).isFalse(); // the body swallowed it in catchThrowable

    CancelScope after = CancelScope.create();
    CountDownLatch entered = new CountDownLatch(1);
    AtomicReference<Thread> sleeper = new AtomicReference<>();
    TaskGroup g2 = TaskGroup.create();
    g2.run(
        () -> {
          g2.fork(
              () ->
                  after.run(
                      () -> {
                        sleeper.set(Thread.currentThread());
                        entered.countDown();
                        CancelScope.failAfter(
                            Duration.ofSeconds(10),
                            () -> {
                              sleepForever();
                              return null;
                            });
                      }));
          entered.await();
          awaitBlocked(sleeper.get());
          after.cancel();
        });
    assertThat(after.cancelCaught()).isTrue();
  }

  /**
   * Trio test_cancel_unbound: a scope runs once: not again after it exited (where cancel only sets
   * cancelCalled), not re-entered from inside itself, not entered from a second thread while it
   * runs; each rejected run leaves the scope as it was.
   */
  @Test
  void aScopeRunsOnceAndRejectsReuseReentryAndASecondThread() throws Exception {
    CancelScope used = CancelScope.create();
    used.run(CancelScope::checkpoint);
    used.cancel();
    CancelScope.checkpoint();
    assertThat(used.cancelCalled()).isTrue();
    assertThat(used.cancelCaught()).isFalse();
    AtomicBoolean ran = new AtomicBoolean();
    assertThatThrownBy(() -> used.run(() -> ran.set(true)))
        .isInstanceOf(IllegalStateException.class);
    assertThat(ran).isFalse();

    CancelScope reentered = CancelScope.create();
    AtomicReference<Throwable> reentry = new AtomicReference<>();
    reentered.run(() -> reentry.set(catchThrowable(() -> reentered.run(() -> ran.set(true)))));
    assertThat(reentry.get()).isInstanceOf(IllegalStateException.class);
    assertThat(ran).isFalse();
    assertThat(reentered.cancelCalled()).isFalse();

    CancelScope shared = CancelScope.create();
    CountDownLatch entered = new CountDownLatch(1);
    AtomicReference<Throwable> second = new AtomicReference<>();
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          g.fork(
              () ->
                  shared.run(
                      () -> {
                        entered.countDown();
                        sleepForever();
                      }));
          entered.await();
          second.set(catchThrowable(() -> shared.run(() -> ran.set(true))));
          assertThat(shared.cancelCalled()).isFalse();
          g.cancel();
        });
    assertThat(second.get()).isInstanceOf(IllegalStateException.class);
    assertThat(ran).isFalse();
    assertThat(shared.cancelCaught()).isFalse(); // the group's cancellation, absorbed by the group
    assertThat(g.cancelCaught()).isTrue();
  }

  /**
   * Trio test_cancel_unbound (last case): before the scope runs, a deadline moved into the past
   * makes it cancelled at once, and moving it later again does not un-cancel it.
   */
  @Test
  void aDeadlineMovedIntoThePastBeforeEntryCancelsForGood() throws Exception {
    CancelScope scope = CancelScope.withDeadline(Instant.now().plusSeconds(60));
    assertThat(scope.cancelCalled()).isFalse();
    scope.setDeadline(Instant.now().minusSeconds(1));
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelReason()).isPresent();
    assertThat(scope.toString()).contains("new"); // toString javadoc: "new before it runs"
    scope.setDeadline(Instant.now().plusSeconds(60));
    assertThat(scope.cancelCalled()).isTrue();
    AtomicBoolean threw = new AtomicBoolean();
    scope.run(() -> threw.set(checkpointThrows()));
    assertThat(threw).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    // the same for a group's scope: it starts cancelled, and forks start nothing
    TaskGroup g = TaskGroup.create();
    g.cancelScope().setDeadline(Instant.now().minusSeconds(1));
    assertThat(g.cancelCalled()).isTrue();
    g.cancelScope().setDeadline(Instant.now().plusSeconds(60));
    AtomicBoolean forkRan = new AtomicBoolean();
    g.run(() -> g.fork(() -> forkRan.set(true)));
    assertThat(forkRan).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /** Trio test_cancel_scope_repr: the description tells new, running, cancelled and done apart. */
  @Test
  void theScopesDescriptionFollowsItsLife() throws Exception {
    CancelScope scope = CancelScope.create();
    assertThat(scope.toString()).contains("new");
    AtomicReference<String> running = new AtomicReference<>();
    AtomicReference<String> cancelled = new AtomicReference<>();
    scope.run(
        () -> {
          running.set(scope.toString());
          scope.cancel();
          cancelled.set(scope.toString());
        });
    assertThat(running.get()).contains("running");
    assertThat(cancelled.get()).contains("cancelled");
    assertThat(scope.toString()).contains("done");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_scope_validation, test_timeouts.py test_timeouts_raise_value_error: negative
   * timeouts are rejected by every factory and setter, before the body runs, leaving the scope as
   * it was; deadlines in the past are allowed.
   */
  @Test
  void negativeTimeoutsAreRejectedEverywhereAndPastDeadlinesAreNot() throws Exception {
    Duration minus = Duration.ofSeconds(-1);
    AtomicBoolean ran = new AtomicBoolean();
    assertThatThrownBy(() -> CancelScope.withTimeout(minus))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.sleep(minus)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(
            () ->
                CancelScope.moveOnAfter(
                    minus,
                    () -> {
                      ran.set(true);
                      return 1;
                    }))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    minus,
                    () -> {
                      ran.set(true);
                      return 1;
                    }))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> TaskGroup.builder().timeout(minus))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(ran).isFalse();
    CancelScope scope = CancelScope.withDeadline(Instant.now().plusSeconds(60));
    Instant set = scope.deadline().orElseThrow();
    assertThatThrownBy(() -> scope.setTimeout(minus)).isInstanceOf(IllegalArgumentException.class);
    assertThat(scope.deadline()).contains(set);
    assertThat(scope.cancelCalled()).isFalse();
    CancelScope past = CancelScope.withDeadline(Instant.now().minusSeconds(3600));
    past.run(CancelScope::checkpoint);
    assertThat(past.cancelCaught()).isTrue();
  }

  /**
   * Trio test_very_deep_cancel_scope_nesting (a RecursionError once): cancelling the outermost of
   * 5000 nested scopes reaches the innermost, and the outermost catches it.
   */
  @Test
  void cancellingTheOutermostOfFiveThousandNestedScopes() throws Exception {
    CancelScope outermost = CancelScope.create();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    AtomicBoolean innermostThrew = new AtomicBoolean();
    Thread t =
        Thread.ofPlatform()
            .stackSize(512L << 20)
            .start(
                () -> {
                  try {
                    outermost.run(() -> nest(5000, outermost, innermostThrew));
                  } catch (Throwable e) {
                    failure.set(e);
                  }
                });
    t.join();
    assertThat(failure.get()).isNull();
    assertThat(innermostThrew).isTrue();
    assertThat(outermost.cancelCaught()).isTrue();
  }

  private static void nest(int depth, CancelScope outermost, AtomicBoolean innermostThrew)
      throws InterruptedException {
    if (depth == 0) {
      outermost.cancel();
      innermostThrew.set(true);
      CancelScope.checkpoint();
      innermostThrew.set(false);
      return;
    }
    CancelScope.create().run(() -> nest(depth - 1, outermost, innermostThrew));
  }

  // ---------------------------------------------------------------- deadlines

  /**
   * Trio test_basic_timeout: a deadline that passes after the scope exited does not cancel it; one
   * that passes while it runs cancels and is caught; one moved earlier while running, into the
   * past, cancels at once and stays level-triggered.
   */
  @Test
  void deadlinesCancelOnlyWhileRunningAndCanBeMoved() throws Exception {
    CancelScope exited = CancelScope.create();
    assertThat(exited.deadline()).isEmpty();
    Instant soon = Instant.now().plusMillis(100);
    exited.run(() -> exited.setDeadline(soon));
    assertThat(exited.deadline()).contains(soon);
    Thread.sleep(200); // time passes beyond the deadline
    assertThat(CancelScope.isCancelled()).isFalse();
    assertThat(exited.cancelCalled()).isFalse();

    CancelScope expiring = CancelScope.withDeadline(Instant.now().plusMillis(50));
    expiring.run(PortedTrioTest::sleepForever);
    assertThat(expiring.cancelCalled()).isTrue();
    assertThat(expiring.cancelCaught()).isTrue();

    CancelScope moved = CancelScope.create();
    List<Boolean> throwsAt = new java.util.ArrayList<>();
    moved.run(
        () -> {
          throwsAt.add(checkpointThrows());
          moved.setDeadline(Instant.now().plusSeconds(10));
          throwsAt.add(checkpointThrows());
          moved.setDeadline(Instant.now().minusSeconds(1));
          throwsAt.add(checkpointThrows());
          throwsAt.add(checkpointThrows());
        });
    assertThat(throwsAt).containsExactly(false, false, true, true);
    assertThat(moved.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_scope_deadline_duplicates: a deadline set back and forth thousands of times
   * still fires once, at the last value.
   */
  @Test
  void aDeadlineMovedBackAndForthManyTimesStillFires() throws Exception {
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          Instant now = Instant.now();
          for (int i = 0; i < 2000; i++) {
            scope.setDeadline(now.plusSeconds(9998));
            scope.setDeadline(now.plusSeconds(9999));
          }
          CancelScope.sleep(Duration.ofMillis(10));
          assertThat(scope.cancelCalled()).isFalse();
          scope.setTimeout(Duration.ofMillis(20));
          sleepForever();
        });
    assertThat(scope.cancelCaught()).isTrue();
  }

  /**
   * test_timeouts.py test_sleep (its trivial move_on_at case): a sleep of zero is a checkpoint, so
   * in a scope whose deadline is now it throws.
   */
  @Test
  void aZeroSleepIsACheckpointAndThrowsInAScopeWhoseDeadlineIsNow() throws Exception {
    CancelScope.sleep(Duration.ZERO);
    CancelScope scope = CancelScope.withDeadline(Instant.now());
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    scope.run(() -> thrown.set(catchThrowable(() -> CancelScope.sleep(Duration.ZERO))));
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    long start = System.nanoTime();
    CancelScope.sleep(Duration.ofMillis(100));
    assertThat(System.nanoTime() - start)
        .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(100));
  }

  /**
   * test_timeouts.py test_move_on_after and test_fail: moveOnAfter returns null after about the
   * timeout; failAfter throws TimeoutException; a body that finishes first returns its value.
   */
  @Test
  void moveOnAfterAndFailAfterEndABlockedBodyAtTheirTimeout() throws Exception {
    long start = System.nanoTime();
    Object moved =
        CancelScope.moveOnAfter(
            Duration.ofMillis(100),
            () -> {
              Thread.sleep(100_000);
              return "slept";
            });
    long tookMs = (System.nanoTime() - start) / 1_000_000;
    assertThat(moved).isNull();
    assertThat(tookMs).isBetween(100L, 10_000L);

    start = System.nanoTime();
    assertThatThrownBy(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(100),
                    () -> {
                      Thread.sleep(100_000);
                      return "slept";
                    }))
        .isInstanceOf(TimeoutException.class);
    assertThat((System.nanoTime() - start) / 1_000_000).isGreaterThanOrEqualTo(100L);
    assertThat(
            CancelScope.failAfter(
                Duration.ofSeconds(100),
                () -> {
                  CancelScope.sleep(Duration.ZERO);
                  return "ok";
                }))
        .isEqualTo("ok");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * test_timeouts.py test_timeout_deadline_on_entry: a relative timeout counts from when the scope
   * runs, not from when it was made; before that it has no deadline.
   */
  @Test
  void aRelativeTimeoutCountsFromEntry() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(5));
    assertThat(scope.deadline()).isEmpty();
    Thread.sleep(150); // time passes between making the scope and running it
    AtomicReference<Instant> entry = new AtomicReference<>();
    AtomicReference<Instant> deadline = new AtomicReference<>();
    scope.run(
        () -> {
          entry.set(Instant.now());
          deadline.set(scope.deadline().orElseThrow());
        });
    assertThat(deadline.get()).isAfter(entry.get().plusMillis(4_900));
    assertThat(deadline.get()).isBeforeOrEqualTo(entry.get().plusMillis(5_100));
  }

  /**
   * test_timeouts.py test_move_on_after_moves_on_even_if_shielded,
   * test_fail_after_fails_even_if_shielded: a shielded timeout inside a cancelled scope sleeps
   * until its own deadline, then moves on (or, as failAfter, fails).
   */
  @Test
  void aShieldedTimeoutInsideACancelledScopeStillEndsAtItsDeadline() throws Exception {
    CancelScope outer = CancelScope.create();
    AtomicLong tookMs = new AtomicLong();
    outer.run(
        () -> {
          outer.cancel();
          CancelScope shielded = CancelScope.withTimeout(Duration.ofMillis(100));
          shielded.setShielded(true);
          long start = System.nanoTime();
          shielded.run(PortedTrioTest::sleepForever);
          tookMs.set((System.nanoTime() - start) / 1_000_000);
          assertThat(shielded.cancelCaught()).isTrue();
        });
    assertThat(tookMs.get()).isGreaterThanOrEqualTo(100L);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    CancelScope outer2 = CancelScope.create();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    outer2.run(
        () -> {
          outer2.cancel();
          thrown.set(
              catchThrowable(
                  () ->
                      CancelScope.shielded()
                          .run(
                              () ->
                                  CancelScope.failAfter(
                                      Duration.ofMillis(100),
                                      () -> {
                                        sleepForever();
                                        return null;
                                      }))));
        });
    assertThat(thrown.get()).isInstanceOf(TimeoutException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---------------------------------------------------------------- nursery closure and start

  /**
   * Trio test_nursery_closure: a child may fork into its group while the group waits for its
   * children (the body has returned); once run has returned, fork is rejected.
   */
  @RepeatedTest(3)
  void aChildMayForkWhileTheGroupJoinsButNotAfterRunReturned() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicBoolean lateChildRan = new AtomicBoolean();
    g.run(
        () ->
            g.fork(
                () -> {
                  spinUntil(() -> g.toString().contains("joining"));
                  g.fork(() -> lateChildRan.set(true));
                }));
    assertThat(lateChildRan).isTrue();
    AtomicBoolean ran = new AtomicBoolean();
    assertThatThrownBy(() -> g.fork(() -> ran.set(true))).isInstanceOf(IllegalStateException.class);
    assertThat(ran).isFalse();
  }

  /**
   * Trio test_nursery_start (happy path): start returns the signalled value after the work got
   * ready, and the group then waits for the rest of the work.
   */
  @Test
  void startReturnsTheSignalledValueAndTheGroupWaitsForTheRest() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicBoolean restDone = new AtomicBoolean();
    AtomicLong startTook = new AtomicLong();
    long t0 = System.nanoTime();
    g.run(
        () -> {
          int v =
              g.start(
                  (StartSignal<Integer> signal) -> {
                    Thread.sleep(100);
                    signal.started(7);
                    Thread.sleep(100);
                    restDone.set(true);
                  });
          startTook.set(System.nanoTime() - t0);
          assertThat(v).isEqualTo(7);
          assertThat(restDone).isFalse();
        });
    assertThat(restDone).isTrue();
    assertThat(startTook.get()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(100));
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(200));
  }

  /**
   * Trio test_nursery_start, test_trio_run_strict_before_started: the work failing before it
   * signals makes start throw that failure, the same object (a checked one in a
   * TaskGroupException), and the group is not failed; failing after it signalled is a failure of
   * the group.
   */
  @Test
  void aFailureBeforeTheSignalComesOutOfStartAndOneAfterItOutOfRun() throws Exception {
    IllegalStateException oops = new IllegalStateException("oops");
    IOException checked = new IOException("checked");
    TaskGroup g = TaskGroup.create();
    AtomicReference<Throwable> unchecked = new AtomicReference<>();
    AtomicReference<Throwable> wrapped = new AtomicReference<>();
    g.run(
        () -> {
          unchecked.set(
              catchThrowable(
                  () ->
                      g.start(
                          signal -> {
                            throw oops;
                          })));
          wrapped.set(
              catchThrowable(
                  () ->
                      g.start(
                          signal -> {
                            throw checked;
                          })));
        });
    assertThat(unchecked.get()).isSameAs(oops);
    assertThat(failuresOf(wrapped.get())).containsExactly(checked);

    IllegalStateException whoopsie = new IllegalStateException("whoopsiedaisy");
    TaskGroup g2 = TaskGroup.create();
    AtomicReference<Object> value = new AtomicReference<>();
    Throwable t =
        catchThrowable(
            () ->
                g2.run(
                    () ->
                        value.set(
                            g2.start(
                                (StartSignal<String> signal) -> {
                                  signal.started("hi");
                                  throw whoopsie;
                                }))));
    assertThat(value.get()).isEqualTo("hi");
    assertThat(failuresOf(t)).containsExactly(whoopsie);
  }

  /**
   * Trio test_nursery_start (cancelled caller cases), a deliberate difference: Trio runs the work
   * under the cancelled caller and start raises Cancelled only if the work reaches a checkpoint;
   * here start in a cancelled caller throws InterruptedException (its javadoc: "if the caller is
   * cancelled ... first"), the caller's scope catches it, and no failure of the work is lost.
   */
  @Test
  void startFromACancelledCallerThrowsInterruptedAndLosesNoFailure() throws Exception {
    TaskGroup g = TaskGroup.create();
    CancelScope cs = CancelScope.create();
    AtomicInteger ran = new AtomicInteger();
    g.run(
        () ->
            cs.run(
                () -> {
                  cs.cancel();
                  g.start(
                      (StartSignal<String> signal) -> {
                        ran.incrementAndGet();
                        signal.started("hi");
                        CancelScope.checkpoint();
                      });
                }));
    assertThat(cs.cancelCaught()).isTrue();
    assertThat(ran.get()).isLessThanOrEqualTo(1);

    TaskGroup g2 = TaskGroup.create();
    CancelScope cs2 = CancelScope.create();
    AtomicBoolean workRan = new AtomicBoolean();
    IllegalStateException keyError = new IllegalStateException("whoopsiedaisy");
    Throwable t =
        catchThrowable(
            () ->
                g2.run(
                    () ->
                        cs2.run(
                            () -> {
                              cs2.cancel();
                              g2.start(
                                  signal -> {
                                    workRan.set(true);
                                    signal.started();
                                    throw keyError;
                                  });
                            })));
    if (workRan.get()) {
      // the failure is never lost: out of start (then through the scope) or out of run
      assertThat(t).isNotNull();
    } else {
      assertThat(t).isNull();
      assertThat(cs2.cancelCaught()).isTrue();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_nursery_start: start on a group that has finished is rejected at once, without
   * running the work.
   */
  @Test
  void startOnAFinishedGroupIsRejectedAtOnce() throws Exception {
    TaskGroup closed = TaskGroup.create();
    closed.run(() -> {});
    AtomicBoolean ran = new AtomicBoolean();
    long t0 = System.nanoTime();
    assertThatThrownBy(
            () ->
                closed.start(
                    signal -> {
                      ran.set(true);
                      signal.started();
                    }))
        .isInstanceOf(IllegalStateException.class);
    assertThat(System.nanoTime() - t0).isLessThan(TimeUnit.SECONDS.toNanos(1));
    assertThat(ran).isFalse();
  }

  /**
   * Trio test_nursery_start_with_cancelled_nursery: work started into a target group that is
   * cancelled just before (or just after) the work signals, while the work's own group has blocked
   * children: the work and its children are cancelled, and everything ends.
   */
  @RepeatedTest(5)
  void workWhoseTargetGroupIsCancelledAroundItsSignalIsCancelledWithItsChildren() throws Exception {
    for (boolean cancelBeforeSignal : new boolean[] {true, false}) {
      AtomicInteger cancelledSleepers = new AtomicInteger();
      TaskGroup outer = TaskGroup.create();
      outer.run(
          () -> {
            TaskGroup target =
                outer.start(
                    (StartSignal<TaskGroup> signal) -> {
                      TaskGroup setup = TaskGroup.create();
                      setup.run(
                          () -> {
                            signal.started(setup);
                            sleepForever();
                          });
                    });
            target.start(
                signal -> {
                  TaskGroup inner = TaskGroup.create();
                  CountDownLatch asleep = new CountDownLatch(2);
                  inner.run(
                      () -> {
                        for (int i = 0; i < 2; i++) {
                          inner.fork(
                              () -> {
                                asleep.countDown();
                                try {
                                  sleepForever();
                                } catch (InterruptedException e) {
                                  cancelledSleepers.incrementAndGet();
                                  throw e;
                                }
                              });
                        }
                        asleep.await();
                        if (cancelBeforeSignal) {
                          target.cancel();
                        }
                        signal.started();
                      });
                });
            if (!cancelBeforeSignal) {
              target.cancel();
            }
          });
      assertThat(cancelledSleepers).hasValue(2);
    }
  }

  /**
   * Trio test_nursery_start_keeps_nursery_open: starts pending from outside keep a group whose body
   * has returned open until the started work is done; a start whose work crashes before signalling
   * throws that crash to its caller and is not a failure of the group.
   */
  @RepeatedTest(3)
  void pendingStartsFromOutsideKeepAGroupOpenAfterItsBodyReturned() throws Exception {
    Queue<String> done = new ConcurrentLinkedQueue<>();
    AtomicReference<Throwable> crash = new AtomicReference<>();
    TaskGroup nursery1 = TaskGroup.create();
    nursery1.run(
        () -> {
          TaskGroup nursery2 = TaskGroup.create();
          CountDownLatch starting = new CountDownLatch(3);
          nursery2.run(
              () -> {
                for (int i = 0; i < 2; i++) {
                  String name = "work" + i;
                  nursery1.fork(
                      () ->
                          nursery2.start(
                              signal -> {
                                starting.countDown();
                                Thread.sleep(100);
                                signal.started();
                                Thread.sleep(100);
                                done.add(name);
                              }));
                }
                nursery1.fork(
                    () ->
                        crash.set(
                            catchThrowable(
                                () ->
                                    nursery2.start(
                                        signal -> {
                                          starting.countDown();
                                          Thread.sleep(200);
                                          throw new IllegalStateException("key");
                                        }))));
                starting.await(); // every start has begun; the body now returns
              });
          // nursery2's run returned: everything started into it has ended
          assertThat(done).containsExactlyInAnyOrder("work0", "work1");
        });
    assertThat(crash.get()).isInstanceOf(IllegalStateException.class).hasMessage("key");
  }

  /**
   * Trio test_internal_error_old_nursery_multiple_tasks, translated: work started with start that
   * forks two failing children into the group and returns without signalling: start throws
   * IllegalStateException (it never signalled) and both children's failures are the group's.
   */
  @RepeatedTest(3)
  void startWorkThatForksFailingChildrenAndNeverSignalsLosesNoFailure() {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    IllegalArgumentException e1 = new IllegalArgumentException("1");
    IllegalArgumentException e2 = new IllegalArgumentException("2");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        fromStart.set(
                            catchThrowable(
                                () ->
                                    g.start(
                                        signal -> {
                                          CountDownLatch both = new CountDownLatch(2);
                                          for (RuntimeException e : List.of(e1, e2)) {
                                            g.fork(
                                                () -> {
                                                  both.countDown();
                                                  spinUntil(() -> both.getCount() == 0);
                                                  throw e;
                                                });
                                          }
                                        })))));
    assertThat(failuresOf(t)).containsExactlyInAnyOrder(e1, e2);
    assertThat(fromStart.get())
        .isInstanceOfAny(IllegalStateException.class, InterruptedException.class);
  }

  // ---------------------------------------------------------------- names and context

  /** Trio test_spawn_name: a named fork names its task and thread. */
  @Test
  void aForkedTasksNameIsTheNameGiven() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<String> threadName = new AtomicReference<>();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    g.run(() -> task.set(g.fork("func3", () -> threadName.set(Thread.currentThread().getName()))));
    assertThat(task.get().name()).isEqualTo("func3");
    assertThat(threadName.get()).isEqualTo("func3");
  }

  /**
   * Trio test_contextvar_multitask: a child sees the inheritable context as it was when it was
   * forked; its own changes do not reach the parent.
   */
  @Test
  void aChildSeesInheritableContextAsAtItsForkAndDoesNotChangeTheParents() throws Exception {
    InheritableThreadLocal<String> var = new InheritableThreadLocal<>();
    var.set("hmmm");
    AtomicReference<String> t1Saw = new AtomicReference<>();
    AtomicReference<String> t2Saw = new AtomicReference<>();
    try {
      TaskGroup g = TaskGroup.create();
      g.run(
          () -> {
            g.fork(
                    () -> {
                      t1Saw.set(var.get());
                      var.set("changed by t1");
                    })
                .get();
            assertThat(var.get()).isEqualTo("hmmm");
            var.set("hmmmm");
            g.fork(() -> t2Saw.set(var.get()));
          });
    } finally {
      var.remove();
    }
    assertThat(t1Saw.get()).isEqualTo("hmmm");
    assertThat(t2Saw.get()).isEqualTo("hmmmm");
  }

  // ---------------------------------------------------------------- variations on the upstream
  // tests

  /**
   * Trio test_unshield_while_cancel_propagating, for a group: the body's finally shields the
   * group's scope while the outer scope's cancellation is on its way out. The cancellation still
   * reaches the outer scope (TaskGroup.run javadoc: passed on unchanged), and the blocked child is
   * cancelled and joined first.
   */
  @RepeatedTest(5)
  void aGroupShieldedWhileTheOuterCancellationLeavesItsBodyStillPassesItOn() throws Exception {
    CancelScope outer = CancelScope.create();
    AtomicBoolean childCancelled = new AtomicBoolean();
    CountDownLatch childBlocked = new CountDownLatch(1);
    TaskGroup g = TaskGroup.create();
    outer.run(
        () ->
            g.run(
                () -> {
                  g.fork(
                      () -> {
                        try {
                          childBlocked.countDown();
                          sleepForever();
                        } catch (InterruptedException e) {
                          childCancelled.set(true);
                          throw e;
                        }
                      });
                  childBlocked.await();
                  outer.cancel();
                  try {
                    CancelScope.checkpoint();
                  } finally {
                    g.cancelScope().setShielded(true);
                  }
                }));
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(childCancelled).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_unshield_while_cancel_propagating, on a child's thread, made deterministic: a child
   * interrupted by the outer scope's cancellation rethrows that InterruptedException only after the
   * body has shielded the group. It is still the cancellation (TaskGroupException: "the
   * cancellations of the group, its scopes and its tasks are never among" the failures; Trio: the
   * Cancelled propagates to the outer scope), so the child ends CANCELLED and nothing fails.
   */
  @RepeatedTest(5)
  void aChildsCancellationRethrownAfterItsGroupWasShieldedIsNotAFailure() throws Exception {
    CancelScope outer = CancelScope.create();
    CountDownLatch blocked = new CountDownLatch(1);
    CountDownLatch caught = new CountDownLatch(1);
    AtomicBoolean rethrow = new AtomicBoolean();
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    TaskGroup g = TaskGroup.create();
    outer.run(
        () ->
            g.run(
                () -> {
                  child.set(
                      g.fork(
                          () -> {
                            try {
                              blocked.countDown();
                              sleepForever();
                            } catch (InterruptedException e) {
                              caught.countDown();
                              spinUntil(rethrow::get);
                              throw e;
                            }
                          }));
                  blocked.await();
                  outer.cancel();
                  CancelScope.shielded().run(caught::await);
                  g.cancelScope().setShielded(true);
                  rethrow.set(true);
                  spinUntil(() -> child.get().isDone());
                }));
    assertThat(child.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * The limit of the rule above: a child forked inside a shielded cleanup region, under an outer
   * scope already cancelled, was never interrupted by the library. An {@link InterruptedException}
   * or {@link java.io.InterruptedIOException} it throws (someone else's interrupt, or one it made)
   * is a failure of its group, as anywhere the thread is not cancelled, not a cancellation to drop.
   * (Trio: no Cancelled can arise inside a shield, so what escapes it is an error.)
   */
  /**
   * The same for a group's body: a group run inside a shielded cleanup region, under an outer scope
   * already cancelled, whose body throws an {@link java.io.InterruptedIOException} of its own,
   * fails with it; it is not passed on as the outer scope's cancellation (which would absorb it).
   */
  @RepeatedTest(3)
  void aBodyInShieldedCleanupThatThrowsAnInterruptedIoFails() throws Exception {
    CancelScope outer = CancelScope.create();
    java.io.InterruptedIOException own = new java.io.InterruptedIOException("the body's own");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    outer.run(
        () -> {
          outer.cancel();
          CancelScope.shielded()
              .run(
                  () ->
                      thrown.set(
                          catchThrowable(
                              () ->
                                  TaskGroup.create()
                                      .run(
                                          () -> {
                                            throw own;
                                          }))));
        });
    assertThat(thrown.get()).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown.get()).failures()).containsExactly(own);
  }

  /**
   * The same for a group shielded before its run ({@code cancelScope().setShielded(true)}), run in
   * a scope already cancelled, whether by the owner itself or before the owner entered it: the
   * cancellation never reached the body, so an {@link java.io.InterruptedIOException} of its own is
   * a failure, not that cancellation.
   */
  @RepeatedTest(3)
  void aBodyOfAGroupShieldedBeforeItsRunThatThrowsAnInterruptedIoFails() throws Exception {
    for (boolean cancelledInside : new boolean[] {true, false}) {
      CancelScope outer = CancelScope.create();
      java.io.InterruptedIOException own = new java.io.InterruptedIOException("the body's own");
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      if (!cancelledInside) {
        outer.cancel();
      }
      outer.run(
          () -> {
            if (cancelledInside) {
              outer.cancel();
            }
            TaskGroup g = TaskGroup.create();
            g.cancelScope().setShielded(true);
            thrown.set(
                catchThrowable(
                    () ->
                        g.run(
                            () -> {
                              throw own;
                            })));
          });
      assertThat(thrown.get())
          .as("cancelled inside: %s", cancelledInside)
          .isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown.get()).failures()).containsExactly(own);
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  @RepeatedTest(5)
  void aChildForkedInShieldedCleanupThatThrowsAnInterruptTypeFails() throws Exception {
    for (Exception own :
        List.of(
            new InterruptedException("the child's own"),
            new java.io.InterruptedIOException("the child's own"))) {
      CancelScope outer = CancelScope.create();
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      outer.run(
          () -> {
            outer.cancel();
            CancelScope.shielded()
                .run(
                    () -> {
                      TaskGroup cleanup = TaskGroup.create();
                      thrown.set(
                          catchThrowable(
                              () ->
                                  cleanup.run(
                                      () -> {
                                        cleanup.fork(
                                            () -> {
                                              throw own;
                                            });
                                      })));
                    });
          });
      assertThat(thrown.get()).as("%s", own).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown.get()).failures()).containsExactly(own);
    }
  }

  /**
   * Trio test_cancel_scope_nesting (two scopes triggering at once), with deadlines: nested scopes
   * given the same deadline expire together and the outer one catches.
   */
  @RepeatedTest(10)
  void nestedScopesWithTheSameDeadlineAreCaughtByTheOuterOne() throws Exception {
    Instant at = Instant.now().plusMillis(50);
    CancelScope scope2 = CancelScope.withDeadline(at);
    CancelScope scope3 = CancelScope.withDeadline(at);
    scope2.run(() -> scope3.run(PortedTrioTest::sleepForever));
    assertThat(scope2.cancelCaught()).isTrue();
    assertThat(scope3.cancelCaught()).isFalse();
    assertThat(scope3.cancelCalled()).isTrue();
  }

  /**
   * test_timeouts.py (nested move_on_after): an inner timeout longer than the outer one lets the
   * outer's cancellation through to the outer scope; a shorter inner one is caught inside and the
   * outer body goes on.
   */
  @Test
  void nestedTimeoutsEachCatchOnlyTheirOwnExpiry() throws Exception {
    AtomicReference<String> after = new AtomicReference<>();
    Object outerResult =
        CancelScope.moveOnAfter(
            Duration.ofMillis(100),
            () -> {
              CancelScope.moveOnAfter(
                  Duration.ofSeconds(20),
                  () -> {
                    sleepForever();
                    return null;
                  });
              after.set("inner returned");
              return "outer";
            });
    assertThat(outerResult).isNull();
    assertThat(after.get()).isNull();

    Object outer2 =
        CancelScope.moveOnAfter(
            Duration.ofSeconds(20),
            () -> {
              Object inner =
                  CancelScope.moveOnAfter(
                      Duration.ofMillis(50),
                      () -> {
                        sleepForever();
                        return "inner";
                      });
              assertThat(inner).isNull();
              CancelScope.checkpoint();
              return "outer";
            });
    assertThat(outer2).isEqualTo("outer");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * test_timeouts.py test_fail (fail_after whose body swallows the cancellation): a body that
   * catches the deadline's interrupt and returns a value returns it; nothing is thrown and no
   * interrupt is left behind.
   */
  @Test
  void failAfterWhoseBodySwallowsTheCancellationReturnsItsValue() throws Exception {
    String r =
        CancelScope.failAfter(
            Duration.ofMillis(50),
            () -> {
              try {
                sleepForever();
              } catch (InterruptedException e) {
                return "swallowed";
              }
              return "never";
            });
    assertThat(r).isEqualTo("swallowed");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_basic_timeout (deadline passing after exit), with setters: after a scope exited,
   * neither a past deadline nor a zero timeout cancels it.
   */
  @Test
  void deadlineChangesAfterExitCancelNothing() throws Exception {
    CancelScope plain = CancelScope.create();
    plain.run(() -> {});
    plain.setDeadline(Instant.now().minusSeconds(1));
    plain.setTimeout(Duration.ZERO);
    assertThat(plain.cancelCalled()).isFalse();

    CancelScope timed = CancelScope.withTimeout(Duration.ofSeconds(30));
    timed.run(() -> {});
    timed.setTimeout(Duration.ZERO);
    timed.setDeadline(Instant.now().minusSeconds(1));
    assertThat(timed.cancelCalled()).isFalse();
    assertThat(CancelScope.isCancelled()).isFalse();
  }

  /**
   * Trio test_cancel_shielding, across threads: a deadline moved into the past from another thread
   * while the scope's thread is inside a shield nested in it leaves the shielded work alone; the
   * cancellation is delivered when the shield exits, and the scope catches it.
   */
  @RepeatedTest(5)
  void aDeadlineExpiringWhileInsideANestedShieldWaitsForTheShieldToExit() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(30));
    CountDownLatch inShield = new CountDownLatch(1);
    CountDownLatch expired = new CountDownLatch(1);
    AtomicBoolean shieldedWorkThrew = new AtomicBoolean();
    AtomicBoolean afterShield = new AtomicBoolean();
    Thread mover =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    inShield.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  scope.setDeadline(Instant.now().minusSeconds(1));
                  expired.countDown();
                });
    scope.run(
        () -> {
          CancelScope.shielded()
              .run(
                  () -> {
                    inShield.countDown();
                    try {
                      expired.await();
                      Thread.sleep(20);
                      CancelScope.checkpoint();
                    } catch (InterruptedException e) {
                      shieldedWorkThrew.set(true);
                    }
                  });
          afterShield.set(true);
          CancelScope.checkpoint();
          afterShield.set(false);
        });
    mover.join();
    assertThat(shieldedWorkThrew).isFalse();
    assertThat(afterShield).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_scope_exceptiongroup_filtering (the children's side): children cancelled by an
   * outer scope that fail in their cleanup are failures; the outer scope lets them out and catches
   * nothing.
   */
  @RepeatedTest(5)
  void childrenFailingInCleanupAfterAnOuterCancelAreAllReported() {
    CancelScope outer = CancelScope.create();
    CountDownLatch blocked = new CountDownLatch(2);
    IllegalStateException c1 = new IllegalStateException("cleanup 1");
    IllegalStateException c2 = new IllegalStateException("cleanup 2");
    Throwable t =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      TaskGroup g = TaskGroup.create();
                      g.run(
                          () -> {
                            for (IllegalStateException c : List.of(c1, c2)) {
                              g.fork(
                                  () -> {
                                    try {
                                      blocked.countDown();
                                      sleepForever();
                                    } finally {
                                      throw c;
                                    }
                                  });
                            }
                            blocked.await();
                            outer.cancel();
                            sleepForever();
                          });
                    }));
    assertThat(failuresOf(t)).containsExactlyInAnyOrder(c1, c2);
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_inheritance, with the canceller elsewhere: a scope around a group cancelled by
   * one of the group's children stops the body and every child; the scope catches, the group's
   * cancelCalled stays false.
   */
  @RepeatedTest(5)
  void aChildCancellingTheScopeAroundItsGroupStopsEverything() throws Exception {
    CancelScope outer = CancelScope.create();
    TaskGroup g = TaskGroup.create();
    AtomicInteger stopped = new AtomicInteger();
    CountDownLatch blocked = new CountDownLatch(2);
    outer.run(
        () ->
            g.run(
                () -> {
                  for (int i = 0; i < 2; i++) {
                    g.fork(
                        () -> {
                          try {
                            blocked.countDown();
                            sleepForever();
                          } catch (InterruptedException e) {
                            stopped.incrementAndGet();
                            throw e;
                          }
                        });
                  }
                  g.fork(
                      () -> {
                        blocked.await();
                        outer.cancel();
                      });
                  try {
                    sleepForever();
                  } catch (InterruptedException e) {
                    stopped.incrementAndGet();
                    throw e;
                  }
                }));
    assertThat(stopped).hasValue(3);
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_very_deep_cancel_scope_nesting, across threads: a chain of 300 nested groups, each in
   * a child of the one above, is cancelled from the top by an outside thread, and every level ends.
   */
  @Test
  void cancellingTheTopOfAChainOfThreeHundredNestedGroups() throws Exception {
    TaskGroup top = TaskGroup.create();
    CountDownLatch bottomReached = new CountDownLatch(1);
    AtomicInteger ended = new AtomicInteger();
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    bottomReached.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  top.cancel();
                });
    top.run(() -> top.fork(() -> chain(300, bottomReached, ended)));
    canceller.join();
    assertThat(ended).hasValue(300);
    assertThat(top.cancelCaught()).isTrue();
  }

  private static void chain(int depth, CountDownLatch bottom, AtomicInteger ended)
      throws InterruptedException {
    try {
      if (depth == 1) {
        bottom.countDown();
        sleepForever();
        return;
      }
      TaskGroup g = TaskGroup.create();
      g.run(() -> g.fork(() -> chain(depth - 1, bottom, ended)));
    } finally {
      ended.incrementAndGet();
    }
  }

  /**
   * Trio test_nursery_start_keeps_nursery_open and test_nursery_closure, raced: an outside thread
   * forks and starts into a group while it finishes. Each call either is rejected without running
   * the work or runs work that ended before run returned: nothing runs after the group is done.
   */
  @RepeatedTest(15)
  void forksAndStartsRacingTheGroupsEndNeverOutliveIt() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicInteger running = new AtomicInteger();
    AtomicBoolean ranAfterEnd = new AtomicBoolean();
    AtomicBoolean groupDone = new AtomicBoolean();
    AtomicBoolean stop = new AtomicBoolean();
    CountDownLatch racing = new CountDownLatch(1);
    Thread racer =
        Thread.ofPlatform()
            .start(
                () -> {
                  racing.countDown();
                  int i = 0;
                  while (!stop.get()) {
                    Body work =
                        () -> {
                          running.incrementAndGet();
                          if (groupDone.get()) {
                            ranAfterEnd.set(true);
                          }
                          running.decrementAndGet();
                        };
                    try {
                      if (i++ % 2 == 0) {
                        g.fork(work);
                      } else {
                        g.start(
                            signal -> {
                              signal.started();
                              work.run();
                            });
                      }
                    } catch (IllegalStateException rejected) {
                      if (groupDone.get()) {
                        return;
                      }
                    } catch (Exception e) {
                      throw new AssertionError(e);
                    }
                  }
                });
    g.run(
        () -> {
          racing.await();
          g.fork(() -> Thread.sleep(1));
        });
    groupDone.set(true);
    assertThat(running).hasValue(0);
    racer.join(Duration.ofSeconds(10));
    stop.set(true);
    racer.join();
    assertThat(ranAfterEnd).isFalse();
  }

  /**
   * TaskGroup.Builder.timeout, after Trio test_cancel_shield_abort: a group's deadline that passes
   * while the body is in a shielded scope is delivered when the shield exits; run returns normally
   * and the group caught its cancellation.
   */
  @RepeatedTest(3)
  void aGroupDeadlinePassingInsideTheBodysShieldIsDeliveredAfterIt() throws Exception {
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(50)).build();
    AtomicBoolean shieldedSleepDone = new AtomicBoolean();
    AtomicBoolean reachedEnd = new AtomicBoolean();
    g.run(
        () -> {
          CancelScope.shielded()
              .run(
                  () -> {
                    Thread.sleep(100);
                    shieldedSleepDone.set(true);
                  });
          CancelScope.checkpoint();
          reachedEnd.set(true);
        });
    assertThat(shieldedSleepDone).isTrue();
    assertThat(reachedEnd).isFalse();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_slow_abort_basic, translated to {@link CancelScope#onCancel}: a hook registered in an
   * already cancelled scope is started at once, and the exception its effect causes in the thread
   * counts as the cancellation: the scope catches it.
   */
  @RepeatedTest(3)
  void aHookRegisteredInACancelledScopeStartsAtOnceAndItsEffectIsTheCancellation()
      throws Exception {
    CancelScope scope = CancelScope.create();
    CountDownLatch aborted = new CountDownLatch(1);
    AtomicBoolean startedBeforeReturn = new AtomicBoolean();
    scope.run(
        () -> {
          scope.cancel();
          try (var hook = CancelScope.onCancel(aborted::countDown)) {
            // (not aborted.await(): the thread is cancelled, so that would throw at once)
            spinUntil(() -> aborted.getCount() == 0);
            startedBeforeReturn.set(true);
            throw new IOException("operation aborted by the hook");
          }
        });
    assertThat(startedBeforeReturn).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * test_timeouts.py test_timeout_deadline_on_entry, for a group: a group's timeout counts from its
   * run, and its scope shows no deadline before.
   */
  @Test
  void aGroupsTimeoutCountsFromItsRun() throws Exception {
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofSeconds(5)).build();
    assertThat(g.cancelScope().deadline()).isEmpty();
    Thread.sleep(150); // time passes between build and run
    AtomicReference<Instant> entry = new AtomicReference<>();
    AtomicReference<Instant> deadline = new AtomicReference<>();
    g.run(
        () -> {
          entry.set(Instant.now());
          deadline.set(g.cancelScope().deadline().orElseThrow());
        });
    assertThat(deadline.get()).isAfter(entry.get().plusMillis(4_900));
    assertThat(deadline.get()).isBeforeOrEqualTo(entry.get().plusMillis(5_100));
    assertThat(g.cancelCalled()).isFalse();
  }

  /**
   * Trio test_cancel_scope_validation (relative_deadline set while running): a timeout set while
   * the scope runs counts from now, and fires.
   */
  @Test
  void aTimeoutSetWhileRunningCountsFromNow() throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicReference<Instant> set = new AtomicReference<>();
    AtomicReference<Instant> deadline = new AtomicReference<>();
    scope.run(
        () -> {
          Thread.sleep(50);
          set.set(Instant.now());
          scope.setTimeout(Duration.ofMillis(300));
          deadline.set(scope.deadline().orElseThrow());
          sleepForever();
        });
    assertThat(deadline.get()).isAfterOrEqualTo(set.get().plusMillis(250));
    assertThat(deadline.get()).isBeforeOrEqualTo(set.get().plusMillis(350));
    assertThat(scope.cancelCaught()).isTrue();
  }

  /**
   * Trio test_cancel_shield_abort, with the shield lowered from another thread: children blocked
   * under a shielded group inside a cancelled scope are cancelled when an outside thread lowers the
   * shield.
   */
  @RepeatedTest(5)
  void aShieldLoweredFromAnotherThreadCancelsTheBlockedChildren() throws Exception {
    CancelScope outer = CancelScope.create();
    TaskGroup g = TaskGroup.create();
    CountDownLatch blocked = new CountDownLatch(2);
    AtomicInteger cancelled = new AtomicInteger();
    Thread lowerer =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    blocked.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  g.cancelScope().setShielded(false);
                });
    outer.run(
        () ->
            g.run(
                () -> {
                  g.cancelScope().setShielded(true);
                  outer.cancel();
                  for (int i = 0; i < 2; i++) {
                    g.fork(
                        () -> {
                          try {
                            blocked.countDown();
                            sleepForever();
                          } catch (InterruptedException e) {
                            cancelled.incrementAndGet();
                            throw e;
                          }
                        });
                  }
                }));
    lowerer.join();
    assertThat(cancelled).hasValue(2);
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_basic_timeout (deadline == inf) and test_timeouts_raise_value_error (deadlines may be
   * far in the past): the extreme instants are accepted; Instant.MAX never fires, Instant.MIN
   * cancels at once, before and during run.
   */
  @Test
  void theExtremeDeadlinesAreAcceptedAndBehave() throws Exception {
    CancelScope never = CancelScope.withDeadline(Instant.MAX);
    AtomicBoolean threw = new AtomicBoolean();
    never.run(() -> threw.set(checkpointThrows()));
    assertThat(threw).isFalse();
    assertThat(never.cancelCalled()).isFalse();
    assertThat(never.deadline()).contains(Instant.MAX);

    CancelScope forever =
        CancelScope.withTimeout(java.time.temporal.ChronoUnit.FOREVER.getDuration());
    forever.run(() -> threw.set(checkpointThrows()));
    assertThat(threw).isFalse();
    assertThat(forever.deadline()).contains(Instant.MAX);

    CancelScope min = CancelScope.withDeadline(Instant.MIN);
    assertThat(min.cancelCalled()).isTrue();
    min.run(() -> threw.set(checkpointThrows()));
    assertThat(threw).isTrue();

    CancelScope moved = CancelScope.create();
    moved.run(
        () -> {
          moved.setDeadline(Instant.MAX);
          threw.set(checkpointThrows());
          assertThat(threw).isFalse();
          moved.setDeadline(Instant.MIN);
          sleepForever();
        });
    assertThat(moved.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_task_nursery_stack: the groups a thread has open are in the task tree, innermost
   * below outermost, and each leaves it when it ends, failing or not.
   */
  @Test
  void theTaskTreeShowsTheThreadsOpenGroupsAndForgetsThemWhenTheyEnd() throws Exception {
    String n1Name = "trio-stack-n1-" + System.nanoTime();
    String n2Name = "trio-stack-n2-" + System.nanoTime();
    TaskGroup n1 = TaskGroup.named(n1Name);
    AtomicReference<String> inBoth = new AtomicReference<>();
    AtomicReference<String> afterN2 = new AtomicReference<>();
    AtomicReference<Throwable> n2Failure = new AtomicReference<>();
    n1.run(
        () -> {
          TaskGroup n2 = TaskGroup.named(n2Name);
          n2Failure.set(
              catchThrowable(
                  () ->
                      n2.run(
                          () -> {
                            inBoth.set(TaskTree.capture().format());
                            throw new IllegalStateException("key");
                          })));
          afterN2.set(TaskTree.capture().format());
        });
    String after = TaskTree.capture().format();
    assertThat(inBoth.get()).contains(n1Name, n2Name);
    assertThat(inBoth.get().indexOf(n1Name)).isLessThan(inBoth.get().indexOf(n2Name));
    assertThat(failuresOf(n2Failure.get()))
        .singleElement()
        .isInstanceOf(IllegalStateException.class);
    assertThat(afterN2.get()).contains(n1Name).doesNotContain(n2Name);
    assertThat(after).doesNotContain(n1Name).doesNotContain(n2Name);
  }

  /**
   * Trio test_nursery_start (start cancelled, then started() is a no-op and the work crashes): the
   * caller of start is cancelled while it waits; the work, cancelled with it, signals (which does
   * nothing now) and then fails. The failure is never lost: it comes out of start (Trio) or out of
   * the group's run.
   */
  @RepeatedTest(5)
  void workThatFailsAfterANoOpSignalToACancelledCallerLosesNoFailure() {
    TaskGroup g = TaskGroup.create();
    CancelScope cs = CancelScope.create();
    IllegalStateException keyError = new IllegalStateException("whoopsiedaisy");
    CountDownLatch waiting = new CountDownLatch(1);
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    AtomicBoolean signalThrew = new AtomicBoolean();
    Throwable fromRun =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            waiting.await();
                            cs.cancel();
                          });
                      fromStart.set(
                          catchThrowable(
                              () ->
                                  cs.run(
                                      () ->
                                          g.start(
                                              (StartSignal<String> signal) -> {
                                                try {
                                                  waiting.countDown();
                                                  sleepForever();
                                                } catch (InterruptedException e) {
                                                  try {
                                                    signal.started("late");
                                                  } catch (IllegalStateException x) {
                                                    signalThrew.set(true);
                                                  }
                                                  throw keyError;
                                                }
                                              }))));
                    }));
    assertThat(signalThrew).isFalse();
    boolean outOfStart = fromStart.get() == keyError;
    boolean outOfRun =
        fromRun instanceof TaskGroupException tge && tge.failures().contains(keyError);
    assertThat(outOfStart || outOfRun)
        .as("the failure came out of start (%s) or run (%s)", fromStart.get(), fromRun)
        .isTrue();
    assertThat(outOfStart && outOfRun).as("reported once").isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * test_timeouts.py test_move_on_after, with a body that never blocks: the deadline fires while
   * the body runs without a checkpoint; it returns its value, the scope caught nothing, and the
   * deadline's interrupt does not outlive the scope.
   */
  @RepeatedTest(3)
  void aBodyThatIgnoresItsTimeoutReturnsItsValueAndLeavesNoInterrupt() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(20));
    String r =
        scope.call(
            () -> {
              Instant deadline = scope.deadline().orElseThrow();
              spinUntil(() -> scope.cancelCalled() && Instant.now().isAfter(deadline));
              return "done";
            });
    assertThat(r).isEqualTo("done");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_shield_abort, for a plain scope on a child's thread lowered by another thread:
   * a child blocked in its own shielded scope inside a cancelled group is cancelled when the body
   * lowers that scope's shield, and the group catches its cancellation.
   */
  @RepeatedTest(5)
  void aChildsShieldLoweredByTheBodyCancelsItsBlockedWorkAtOnce() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<CancelScope> childShield = new AtomicReference<>();
    AtomicReference<Thread> childThread = new AtomicReference<>();
    CountDownLatch inShield = new CountDownLatch(1);
    AtomicBoolean cancelledInShield = new AtomicBoolean();
    g.run(
        () -> {
          g.fork(
              () -> {
                CancelScope shield = CancelScope.shielded();
                childShield.set(shield);
                childThread.set(Thread.currentThread());
                shield.run(
                    () -> {
                      inShield.countDown();
                      try {
                        sleepForever();
                      } catch (InterruptedException e) {
                        cancelledInShield.set(true);
                        throw e;
                      }
                    });
              });
          inShield.await();
          g.cancel();
          awaitBlocked(childThread.get());
          CancelScope.shielded()
              .run(
                  () -> {
                    Thread.sleep(20); // the cancellation has had time to (wrongly) land
                    assertThat(cancelledInShield).isFalse();
                    childShield.get().setShielded(false);
                  });
        });
    assertThat(cancelledInShield).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * As {@link #aChildsCancellationRethrownAfterItsGroupWasShieldedIsNotAFailure}, with the
   * cancellation arriving as an {@link java.io.InterruptedIOException} (a piped stream's read,
   * interrupted): a cancellation by type (CancelScope javadoc), rethrown after the group was
   * shielded, is still not a failure.
   */
  @RepeatedTest(3)
  void aChildsInterruptedIoRethrownAfterItsGroupWasShieldedIsNotAFailure() throws Exception {
    CancelScope outer = CancelScope.create();
    CountDownLatch caught = new CountDownLatch(1);
    AtomicBoolean rethrow = new AtomicBoolean();
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    AtomicReference<Thread> reader = new AtomicReference<>();
    java.io.PipedOutputStream out = new java.io.PipedOutputStream();
    java.io.PipedInputStream in = new java.io.PipedInputStream(out);
    TaskGroup g = TaskGroup.create();
    outer.run(
        () ->
            g.run(
                () -> {
                  child.set(
                      g.fork(
                          () -> {
                            reader.set(Thread.currentThread());
                            try {
                              in.read();
                            } catch (java.io.InterruptedIOException e) {
                              caught.countDown();
                              spinUntil(rethrow::get);
                              throw e;
                            }
                          }));
                  spinUntil(() -> reader.get() != null);
                  awaitBlocked(reader.get());
                  outer.cancel();
                  CancelScope.shielded().run(caught::await);
                  g.cancelScope().setShielded(true);
                  rethrow.set(true);
                  spinUntil(() -> child.get().isDone());
                }));
    assertThat(child.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_unshield_while_cancel_propagating, for a group's body whose cancellation arrives as
   * an {@link java.io.InterruptedIOException}: the body shields the group in a finally block while
   * that exception leaves. It is still the outer scope's cancellation (TaskGroup.run javadoc: the
   * body's cancellation that a shield it raised now hides passes on), caught by the outer scope,
   * not a failure.
   */
  @RepeatedTest(3)
  void aBodysInterruptedIoLeavingAfterItShieldedTheGroupReachesTheOuterScope() throws Exception {
    CancelScope outer = CancelScope.create();
    java.io.PipedOutputStream out = new java.io.PipedOutputStream();
    java.io.PipedInputStream in = new java.io.PipedInputStream(out);
    Thread body = Thread.currentThread();
    TaskGroup g = TaskGroup.create();
    outer.run(
        () ->
            g.run(
                () -> {
                  g.fork(
                      () -> {
                        awaitBlocked(body);
                        outer.cancel();
                      });
                  try {
                    in.read();
                  } finally {
                    g.cancelScope().setShielded(true);
                  }
                }));
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_unbound (deadline before entry), raced: another thread moves the deadline into
   * the past while the scope starts running. Whichever comes first, the scope ends cancelled and
   * catches it; the body never spins on.
   */
  @RepeatedTest(20)
  void aPastDeadlineSetWhileTheScopeStartsCancelsItWhicheverComesFirst() throws Exception {
    CancelScope scope = CancelScope.create();
    CountDownLatch go = new CountDownLatch(1);
    Thread setter =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    go.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  scope.setDeadline(Instant.now().minusMillis(1));
                });
    go.countDown();
    scope.run(
        () -> {
          while (true) {
            CancelScope.checkpoint();
            Thread.onSpinWait();
          }
        });
    setter.join();
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_Cancelled_str and test_CancelScope_subclass / test_Nursery_subclass: the library's
   * cancellation names the cancelled scope's reason; the scope and group classes cannot be
   * subclassed. (Trio's Cancelled cannot be constructed; here CancelledException can, by design:
   * its javadoc allows it for tests.)
   */
  @Test
  void theCancellationNamesItsReasonAndTheScopeClassesAreFinal() throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    scope.run(
        () -> {
          scope.cancel("client went away");
          thrown.set(catchThrowable(CancelScope::checkpoint));
        });
    assertThat(thrown.get()).isInstanceOf(CancelledException.class);
    assertThat(thrown.get().getMessage()).contains("client went away");
    assertThat(scope.cancelReason()).contains("client went away");
    assertThat(java.lang.reflect.Modifier.isFinal(CancelScope.class.getModifiers())).isTrue();
    assertThat(java.lang.reflect.Modifier.isFinal(TaskGroup.class.getModifiers())).isTrue();
  }

  /**
   * Trio test_out_of_context, a deliberate difference: Trio's primitives need a running loop; here
   * a checkpoint works on any thread, in no scope: it passes when nothing is pending, and throws a
   * plain InterruptedException (clearing the status) for an interrupt from someone else.
   */
  @Test
  void aCheckpointOutsideAnyScopeOnlyReportsAForeignInterrupt() throws Exception {
    CancelScope.checkpoint();
    assertThat(CancelScope.isCancelled()).isFalse();
    Thread.currentThread().interrupt();
    Throwable t = catchThrowable(CancelScope::checkpoint);
    assertThat(t)
        .isInstanceOf(InterruptedException.class)
        .isNotInstanceOf(CancelledException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_cancel_scope_nesting (two triggering at once), for nested groups: the inner group and
   * then the outer one are cancelled while a grandchild blocks; the outer group catches, the inner
   * one passes the cancellation on.
   */
  @RepeatedTest(5)
  void nestedGroupsCancelledTogetherAreCaughtByTheOuterGroup() throws Exception {
    TaskGroup g1 = TaskGroup.create();
    TaskGroup g2 = TaskGroup.create();
    CountDownLatch blocked = new CountDownLatch(1);
    AtomicReference<Throwable> innerRun = new AtomicReference<>();
    g1.run(
        () -> {
          innerRun.set(
              catchThrowable(
                  () ->
                      g2.run(
                          () -> {
                            g2.fork(
                                () -> {
                                  blocked.countDown();
                                  sleepForever();
                                });
                            blocked.await();
                            g2.cancel();
                            g1.cancel();
                            sleepForever();
                          })));
          if (innerRun.get() != null) {
            throw (Exception) innerRun.get();
          }
        });
    assertThat(innerRun.get()).isInstanceOf(InterruptedException.class);
    assertThat(g2.cancelCalled()).isTrue();
    assertThat(g2.cancelCaught()).isFalse();
    assertThat(g1.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }
}
