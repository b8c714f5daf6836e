package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * An adversarial sweep of supervisors: {@link FailurePolicy#COLLECT}, the {@link
 * TaskGroup.Builder#onFailure} handler, and the failure accounting of {@link
 * FailurePolicy#CANCEL_ALL}. Handlers that fork, restart, block, enter scopes and throw; failures
 * raised while the group is cancelled, by a deadline, a shield's exit or an outer group's failure;
 * thousands of failures at once; shared and odd throwables. Each test checks a promise of the
 * javadoc of {@code TaskGroup}, {@code FailurePolicy} or {@code TaskGroupException}: every failure
 * exactly once (handler or exception), in order, never after {@code run} returned, and {@code
 * run}'s outcome by the precedence of "When outcomes coincide". Closest upstream: CPython {@code
 * test_taskgroups.py}, Trio {@code test_nursery} / AnyIO {@code test_taskgroups.py} (exception
 * groups), Kotlin {@code SupervisorJob} with a {@code CoroutineExceptionHandler} (from memory:
 * closest).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class SupervisorSweepTest {

  // ---- the handler forks: a supervisor restarting failed work -------------------------------

  /**
   * The supervisor pattern (Erlang/Kotlin: restart what failed): the handler forks the failed job
   * again, under maxConcurrency. The handler runs on the failing child's thread, which holds its
   * place until the handler returns; maxConcurrency's javadoc: "A fork from inside one of the
   * group's own children never waits". A fork from the handler that waited for a place would wait
   * for its own thread's, for ever. Here one place, three jobs that each fail twice before they
   * succeed; some restarts are forked from a scope the handler entered. Every job ends succeeded,
   * one at a time.
   */
  @RepeatedTest(10)
  @Timeout(value = 10, unit = TimeUnit.SECONDS)
  void handlerRestartingFailedWorkUnderMaxConcurrencyDoesNotDeadlock() throws Exception {
    int jobs = 3;
    int failuresPerJob = 2;
    Map<Integer, AtomicInteger> attempts = new ConcurrentHashMap<>();
    Map<Integer, Boolean> succeeded = new ConcurrentHashMap<>();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxRunning = new AtomicInteger();
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    AtomicReference<TaskGroup> self = new AtomicReference<>();
    AtomicReference<java.util.function.IntFunction<Body>> job = new AtomicReference<>();
    job.set(
        id ->
            () -> {
              maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
              try {
                Thread.yield();
                if (attempts.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet()
                    <= failuresPerJob) {
                  throw new JobFailed(id);
                }
                succeeded.put(id, true);
              } finally {
                running.decrementAndGet();
              }
            });
    TaskGroup group =
        TaskGroup.builder()
            .name("restarting")
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  int id = ((JobFailed) f).id;
                  Body again = job.get().apply(id);
                  if (id % 2 == 0) {
                    self.get().fork(again);
                  } else {
                    try {
                      CancelScope.create().run(() -> self.get().fork(again)); // from a scope
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  }
                })
            .build();
    self.set(group);
    group.run(
        () -> {
          for (int i = 0; i < jobs; i++) {
            group.fork(job.get().apply(i));
          }
        });
    assertThat(succeeded).hasSize(jobs);
    assertThat(handled).hasSize(jobs * failuresPerJob);
    assertThat(maxRunning.get()).isEqualTo(1);
  }

  // ---- where and when the handler runs -------------------------------------------------------

  /**
   * onFailure: "The handler runs on the failing thread", so calls are not serialised: a handler
   * that blocks for one failure does not hold back the others, which reach it meanwhile, each on
   * its own failing child's thread, while the body and the remaining siblings run on (COLLECT
   * cancels nobody). Every failure is handed over before run returns, none after. Kotlin {@code
   * CoroutineExceptionHandler} on a {@code SupervisorJob} (closest).
   */
  @RepeatedTest(5)
  void aBlockedHandlerDoesNotHoldBackTheOtherFailures() throws Exception {
    int others = 50;
    CountDownLatch othersHandled = new CountDownLatch(others);
    Map<Throwable, String> handledOn = new ConcurrentHashMap<>();
    Map<Throwable, String> failedOn = new ConcurrentHashMap<>();
    java.util.concurrent.atomic.AtomicBoolean runReturned =
        new java.util.concurrent.atomic.AtomicBoolean();
    AtomicInteger late = new AtomicInteger();
    IllegalStateException first = new IllegalStateException("first");
    TaskGroup group =
        TaskGroup.builder()
            .name("overlapping")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  if (runReturned.get()) {
                    late.incrementAndGet();
                  }
                  handledOn.put(f, Thread.currentThread().getName());
                  if (f == first) {
                    try {
                      othersHandled.await(); // released only by the handler's other calls
                    } catch (InterruptedException e) {
                      throw new AssertionError("nobody is cancelled", e);
                    }
                  } else {
                    othersHandled.countDown();
                  }
                })
            .build();
    AtomicReference<Boolean> bodyUndisturbed = new AtomicReference<>();
    group.run(
        () -> {
          group.fork(
              "failing-first",
              () -> {
                failedOn.put(first, Thread.currentThread().getName());
                throw first;
              });
          for (int i = 0; i < others; i++) {
            String name = "failing-" + i;
            group.fork(
                name,
                () -> {
                  IllegalStateException f = new IllegalStateException(name);
                  failedOn.put(f, Thread.currentThread().getName());
                  throw f;
                });
          }
          othersHandled.await();
          bodyUndisturbed.set(!CancelScope.isCancelled());
        });
    runReturned.set(true);
    assertThat(handledOn).hasSize(others + 1);
    assertThat(handledOn).isEqualTo(failedOn);
    assertThat(bodyUndisturbed.get()).isTrue();
    assertThat(late.get()).isZero();
  }

  // ---- what the handler throws -----------------------------------------------------------------

  /**
   * onFailure: "an exception it throws is a failure of the group": kept as it is, whatever it is,
   * and the rest is cancelled. A nested group's TaskGroupException from a group the handler ran
   * itself (kept whole, not flattened), a checked exception thrown sneakily, an Error, and the very
   * failure it was given with a note added as suppressed (kept once, with the note). A sibling
   * blocked until cancelled shows the rest was cancelled.
   */
  @RepeatedTest(3)
  void whatTheHandlerThrowsIsKeptAsItIsAndCancelsTheRest() throws Exception {
    for (int how = 0; how < 4; how++) {
      int kind = how;
      AtomicReference<Throwable> fromHandler = new AtomicReference<>();
      IllegalStateException crash = new IllegalStateException("crash");
      TaskGroup group =
          TaskGroup.builder()
              .name("throwing-handler")
              .failurePolicy(FailurePolicy.COLLECT)
              .onFailure(
                  f -> {
                    switch (kind) {
                      case 0 -> {
                        TaskGroup nested = TaskGroup.named("run-by-the-handler");
                        try {
                          nested.run(
                              () ->
                                  nested.fork(
                                      () -> {
                                        throw new IllegalStateException("nested child");
                                      }));
                        } catch (TaskGroupException e) {
                          fromHandler.set(e);
                          throw e;
                        } catch (InterruptedException e) {
                          throw new AssertionError(e);
                        }
                      }
                      case 1 -> {
                        java.io.IOException checked = new java.io.IOException("sneaky");
                        fromHandler.set(checked);
                        throw SupervisorSweepTest.<RuntimeException>sneaky(checked);
                      }
                      case 2 -> {
                        AssertionError error = new AssertionError("handler bug");
                        fromHandler.set(error);
                        throw error;
                      }
                      default -> {
                        f.addSuppressed(new IllegalStateException("note"));
                        fromHandler.set(f);
                        throw (RuntimeException) f;
                      }
                    }
                  })
              .build();
      AtomicReference<Boolean> siblingCancelled = new AtomicReference<>(false);
      Throwable thrown =
          catchThrowable(
              () ->
                  group.run(
                      () -> {
                        CountDownLatch blocked = new CountDownLatch(1);
                        group.fork(
                            () -> {
                              blocked.countDown();
                              try {
                                Thread.sleep(60_000);
                              } catch (InterruptedException e) {
                                siblingCancelled.set(true);
                                throw e;
                              }
                            });
                        blocked.await();
                        group.fork(
                            () -> {
                              throw crash;
                            });
                      }));
      assertThat(thrown)
          .as("kind " + kind)
          .isInstanceOfSatisfying(
              TaskGroupException.class,
              e -> assertThat(e.failures()).containsExactly(fromHandler.get()));
      assertThat(siblingCancelled.get()).as("kind " + kind).isTrue();
      if (kind == 3) {
        assertThat(crash.getSuppressed()).hasSize(1);
      }
    }
  }

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> X sneaky(Throwable t) throws X {
    throw (X) t;
  }

  /**
   * TaskGroup: "Any exception or error a child ... throws that is not the cancellation itself is a
   * failure"; TaskGroupException: a CancellationException "that work threw on its own account ...
   * is a failure like any other". A child that is not cancelled throwing a CancelledException it
   * made, a plain InterruptedException, or a CancellationException: each is a failure, handed to
   * the handler or kept, and cancels nobody under COLLECT.
   */
  @RepeatedTest(3)
  void cancellationTypesThrownByAChildThatIsNotCancelledAreFailures() throws Exception {
    for (boolean withHandler : new boolean[] {false, true}) {
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      TaskGroup.Builder b = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT);
      if (withHandler) {
        b.onFailure(handled::add);
      }
      TaskGroup group = b.build();
      List<Throwable> thrownByChildren =
          List.of(
              new CancelledException("made by the work"),
              new InterruptedException("made by the work"),
              new java.util.concurrent.CancellationException("made by the work"));
      AtomicReference<Boolean> bodyCancelled = new AtomicReference<>();
      Throwable thrown =
          catchThrowable(
              () ->
                  group.run(
                      () -> {
                        List<Task<Void>> tasks = new java.util.ArrayList<>();
                        for (Throwable t : thrownByChildren) {
                          tasks.add(
                              group.fork(
                                  () -> {
                                    throw SupervisorSweepTest.<Exception>sneaky(t);
                                  }));
                        }
                        Probes.awaitTrue(
                            "all failed",
                            Duration.ofSeconds(10),
                            () -> tasks.stream().allMatch(Task::isDone));
                        bodyCancelled.set(CancelScope.isCancelled());
                      }));
      assertThat(bodyCancelled.get()).isFalse();
      if (withHandler) {
        assertThat(thrown).isNull();
        assertThat(handled).containsExactlyInAnyOrderElementsOf(thrownByChildren);
      } else {
        assertThat(thrown)
            .isInstanceOfSatisfying(
                TaskGroupException.class,
                e ->
                    assertThat(e.failures()).containsExactlyInAnyOrderElementsOf(thrownByChildren));
      }
    }
  }

  // ---- what the handler throws while its thread is being cancelled ---------------------------

  /**
   * A body that fails in its cleanup after the group's cancel(): its failure goes to the handler,
   * on the owner's thread, still inside the cancelled group, where a blocking call (here a
   * checkpoint) is interrupted. The handler turns that into the common {@code new
   * RuntimeException(e)}. TaskGroupException: "The cancellations of the group, its scopes and its
   * tasks are never among them"; had the body thrown that same exception it would be the
   * cancellation (CancelScope, "What counts as a cancellation"). So run returns normally, by the
   * group's own cancel, and the body's failure was handed over once.
   */
  @RepeatedTest(10)
  void handlerInterruptedByTheBodysCancellationIsNotAFailure() throws Exception {
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    TaskGroup group =
        TaskGroup.builder()
            .name("body-handler")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  try {
                    CancelScope.checkpoint();
                  } catch (InterruptedException e) {
                    throw new RuntimeException("handler stopped", e);
                  }
                })
            .build();
    IllegalStateException cleanup = new IllegalStateException("body cleanup");
    group.run(
        () -> {
          group.cancel();
          try {
            CancelScope.checkpoint();
          } catch (InterruptedException e) {
            throw cleanup;
          }
        });
    assertThat(handled).containsExactly(cleanup);
    assertThat(group.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * A handler that blocks (a full queue, a slow sink) on a failing child's thread while the group
   * is cancelled: by cancel() from the body, or by the builder's deadline. The handler runs on the
   * failing thread and its child is not done until it returns; TaskGroup: cancel() interrupts "the
   * body and every child not yet done ... until they finish", and a deadline cancels "as by
   * cancel()". So the handler's wait is interrupted, the interrupt it lets out (wrapped) is the
   * cancellation, not a failure, and run returns normally with the cancellation caught, instead of
   * waiting for the handler for ever.
   */
  @RepeatedTest(5)
  void blockedHandlerOfAFailedChildIsReachedByTheGroupsCancellation() throws Exception {
    for (boolean byDeadline : new boolean[] {false, true}) {
      CountDownLatch handlerBlocked = new CountDownLatch(1);
      CountDownLatch never = new CountDownLatch(1);
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      TaskGroup.Builder b =
          TaskGroup.builder()
              .name("blocked-handler")
              .failurePolicy(FailurePolicy.COLLECT)
              .onFailure(
                  f -> {
                    handled.add(f);
                    handlerBlocked.countDown();
                    try {
                      never.await();
                    } catch (InterruptedException e) {
                      throw new IllegalStateException("handler stopped", e);
                    }
                  });
      if (byDeadline) {
        b.timeout(Duration.ofMillis(100));
      }
      TaskGroup group = b.build();
      IllegalStateException crash = new IllegalStateException("crash");
      AtomicReference<Boolean> doneWhileHandling = new AtomicReference<>();
      group.run(
          () -> {
            Task<Void> failing =
                group.fork(
                    () -> {
                      throw crash;
                    });
            handlerBlocked.await();
            doneWhileHandling.set(failing.isDone());
            if (!byDeadline) {
              group.cancel();
            }
          });
      assertThat(handled).containsExactly(crash);
      assertThat(doneWhileHandling.get())
          .as("a child is not done while its handler runs")
          .isFalse();
      assertThat(group.cancelCaught()).isTrue();
    }
  }

  /**
   * A child of a cancelled supervisor that fails while the cancellation's interrupt is still set on
   * its thread (it noticed the cancellation by polling and threw): its handler, on that thread,
   * finds a blocking call interrupted, and lets the interrupt out wrapped, from a
   * try-with-resources whose close() fails too. The wrapped interrupt is the child's cancellation,
   * not a failure; the close() failure riding on it is one (never lost), reported by run.
   */
  @RepeatedTest(10)
  void handlerOfACancelledChildInterruptedIsNotAFailureButWhatRidesOnItIs() throws Exception {
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    IllegalStateException closeFailed = new IllegalStateException("close failed");
    TaskGroup group =
        TaskGroup.builder()
            .name("child-handler")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  try (AutoCloseable r =
                      () -> {
                        throw closeFailed;
                      }) {
                    Thread.sleep(60_000);
                  } catch (Exception e) {
                    throw new RuntimeException("handler stopped", e);
                  }
                })
            .build();
    IllegalStateException noticed = new IllegalStateException("noticed the cancellation");
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            while (!Thread.currentThread().isInterrupted()) {
                              Thread.onSpinWait();
                            }
                            throw noticed;
                          });
                      started.await();
                      group.cancel();
                    }));
    assertThat(handled).containsExactly(noticed);
    assertThat(thrown)
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(closeFailed));
  }

  /**
   * The handler rethrows the very failure it was given, while the failing child is being cancelled:
   * "an exception it throws is a failure of the group"; the failure was judged one already, and is
   * not taken for the cancellation now.
   */
  @RepeatedTest(10)
  void handlerRethrowingItsFailureWhileCancelledKeepsIt() throws Exception {
    TaskGroup group =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  throw (RuntimeException) f;
                })
            .build();
    IllegalStateException noticed = new IllegalStateException("noticed the cancellation");
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            while (!Thread.currentThread().isInterrupted()) {
                              Thread.onSpinWait();
                            }
                            throw noticed;
                          });
                      started.await();
                      group.cancel();
                    }));
    assertThat(thrown)
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(noticed));
  }

  // ---- thousands of failures at once ---------------------------------------------------------

  /**
   * Two thousand children fail at once, some at once and some in their cleanup once cancelled, the
   * body fails too (or not), and a cancel() from another thread races them; policy CANCEL_ALL,
   * COLLECT, or COLLECT with a handler. FailurePolicy: "no failure is ever lost: each one is either
   * reported by run in a TaskGroupException or handed to the failure handler"; TaskGroupException:
   * every failure, listed once. So the failures reported (exception plus handler) are exactly those
   * thrown, each once; none reaches the handler after run returned; run throws TaskGroupException
   * whenever a failure was kept ("When outcomes coincide" (1) before (4)), else returns normally.
   * CPython test_taskgroups {@code test_taskgroup_07}/{@code _08} (many children failing at once,
   * all in the ExceptionGroup), Trio {@code test_nursery_multiple_errors} (closest).
   */
  @RepeatedTest(6)
  void everyFailureOfAMassFailureIsReportedExactlyOnce() throws Exception {
    long seed = System.nanoTime();
    System.out.println("everyFailureOfAMassFailureIsReportedExactlyOnce seed " + seed);
    java.util.Random rnd = new java.util.Random(seed);
    int children = 2_000;
    int mode = rnd.nextInt(3); // 0 CANCEL_ALL, 1 COLLECT, 2 COLLECT with a handler
    boolean bodyFails = rnd.nextBoolean();
    java.util.Set<Throwable> thrown = java.util.concurrent.ConcurrentHashMap.newKeySet();
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    java.util.concurrent.atomic.AtomicBoolean runEnded =
        new java.util.concurrent.atomic.AtomicBoolean();
    AtomicInteger lateHandlerCalls = new AtomicInteger();
    TaskGroup.Builder b =
        TaskGroup.builder()
            .name("mass")
            .failurePolicy(mode == 0 ? FailurePolicy.CANCEL_ALL : FailurePolicy.COLLECT);
    if (mode == 2) {
      b.onFailure(
          f -> {
            if (runEnded.get()) {
              lateHandlerCalls.incrementAndGet();
            }
            handled.add(f);
          });
    }
    TaskGroup group = b.build();
    CountDownLatch go = new CountDownLatch(1);
    int[] kinds = new int[children];
    for (int i = 0; i < children; i++) {
      kinds[i] = rnd.nextInt(4); // 0 fails at once, 1 an Error, 2 fails in cleanup, 3 succeeds
    }
    int cancelAfter = rnd.nextInt(children);
    Throwable result =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      for (int i = 0; i < children; i++) {
                        int id = i;
                        int kind = kinds[i];
                        group.fork(
                            () -> {
                              go.await();
                              switch (kind) {
                                case 0 -> {
                                  Throwable f =
                                      new Exception("child " + id); // not an IOException, which a
                                  // pending interrupt would make the cancellation
                                  thrown.add(f);
                                  throw (Exception) f;
                                }
                                case 1 -> {
                                  Throwable f = new AssertionError("child " + id);
                                  thrown.add(f);
                                  throw (AssertionError) f;
                                }
                                case 2 -> {
                                  try {
                                    Thread.sleep(60_000);
                                  } finally {
                                    Throwable f = new IllegalStateException("cleanup " + id);
                                    thrown.add(f);
                                    throw (IllegalStateException) f;
                                  }
                                }
                                default -> {}
                              }
                              return null;
                            });
                        if (i == cancelAfter) {
                          Thread.ofVirtual().start(group::cancel);
                        }
                      }
                      go.countDown();
                      if (bodyFails) {
                        Throwable f = new IllegalArgumentException("body");
                        thrown.add(f);
                        throw (IllegalArgumentException) f;
                      }
                    }));
    runEnded.set(true);
    List<Throwable> reported = new java.util.ArrayList<>(handled);
    if (result instanceof TaskGroupException e) {
      reported.addAll(e.failures());
    } else {
      assertThat(result).as("run's outcome, seed " + seed).isNull();
    }
    java.util.Set<Throwable> distinct =
        java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    distinct.addAll(reported);
    assertThat(distinct).as("reported once each, seed " + seed).hasSameSizeAs(reported);
    assertThat(distinct).as("exactly those thrown, seed " + seed).isEqualTo(thrown);
    assertThat(result instanceof TaskGroupException)
        .as("run throws exactly when failures were kept, seed " + seed)
        .isEqualTo(mode != 2 && !thrown.isEmpty());
    assertThat(lateHandlerCalls.get()).isZero();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---- nesting, deadlines, outside interrupts --------------------------------------------------

  /**
   * A COLLECT group inside a child of a CANCEL_ALL group, and the other way round: the outer
   * group's failure cancels the inner one, whose child then fails in its cleanup. The inner run
   * throws its TaskGroupException, which the outer group keeps as one failure after its own first
   * ("a nested group's TaskGroupException is kept as one failure, not flattened"), in the order
   * they happened. CPython test_taskgroups {@code test_taskgroup_21} / Trio {@code
   * test_nursery_nested_exception} (closest).
   */
  @RepeatedTest(10)
  void innerSupervisorCancelledByTheOuterGroupsFailureReportsItsCleanupFailure() throws Exception {
    for (FailurePolicy[] policies :
        new FailurePolicy[][] {
          {FailurePolicy.CANCEL_ALL, FailurePolicy.COLLECT},
          {FailurePolicy.COLLECT, FailurePolicy.CANCEL_ALL}
        }) {
      TaskGroup outer = TaskGroup.builder().name("outer").failurePolicy(policies[0]).build();
      IllegalStateException first = new IllegalStateException("outer child");
      IllegalStateException cleanup = new IllegalStateException("inner cleanup");
      CountDownLatch innerRunning = new CountDownLatch(1);
      Throwable thrown =
          catchThrowable(
              () ->
                  outer.run(
                      () -> {
                        outer.fork(
                            () -> {
                              TaskGroup inner =
                                  TaskGroup.builder()
                                      .name("inner")
                                      .failurePolicy(policies[1])
                                      .build();
                              inner.run(
                                  () ->
                                      inner.fork(
                                          () -> {
                                            innerRunning.countDown();
                                            try {
                                              Thread.sleep(60_000);
                                            } finally {
                                              throw cleanup;
                                            }
                                          }));
                            });
                        innerRunning.await();
                        if (policies[0] == FailurePolicy.COLLECT) {
                          throw first; // the body's failure cancels the children whatever the
                          // policy
                        }
                        outer.fork(
                            () -> {
                              throw first;
                            });
                      }));
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      List<Throwable> failures = ((TaskGroupException) thrown).failures();
      assertThat(failures).as(policies[0] + " outer").hasSize(2);
      assertThat(failures.get(0)).isSameAs(first);
      assertThat(failures.get(1))
          .isInstanceOfSatisfying(
              TaskGroupException.class,
              inner -> assertThat(inner.failures()).containsExactly(cleanup));
    }
  }

  /**
   * A supervisor whose builder deadline expires while a child is blocked; the child fails in its
   * cleanup. Without a handler: run throws TaskGroupException with that failure ((1) before (4)),
   * cancelCalled true, cancelCaught false. With a handler: the failure goes to it and run returns
   * normally, the deadline's cancellation caught. Trio {@code test_cancel_scope_deadline} with a
   * failing cleanup (closest).
   */
  @RepeatedTest(5)
  void deadlineOfASupervisorWithAFailingCleanup() throws Exception {
    for (boolean withHandler : new boolean[] {false, true}) {
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      TaskGroup.Builder b =
          TaskGroup.builder()
              .name("deadline")
              .failurePolicy(FailurePolicy.COLLECT)
              .timeout(Duration.ofMillis(50));
      if (withHandler) {
        b.onFailure(handled::add);
      }
      TaskGroup group = b.build();
      IllegalStateException cleanup = new IllegalStateException("cleanup after the deadline");
      AtomicInteger siblingsDone = new AtomicInteger();
      Throwable thrown =
          catchThrowable(
              () ->
                  group.run(
                      () -> {
                        group.fork(siblingsDone::incrementAndGet);
                        group.fork(
                            () -> {
                              try {
                                Thread.sleep(60_000);
                              } finally {
                                throw cleanup;
                              }
                            });
                      }));
      assertThat(group.cancelCalled()).isTrue();
      assertThat(siblingsDone.get()).isEqualTo(1);
      if (withHandler) {
        assertThat(thrown).isNull();
        assertThat(handled).containsExactly(cleanup);
        assertThat(group.cancelCaught()).isTrue();
      } else {
        assertThat(thrown)
            .isInstanceOfSatisfying(
                TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(cleanup));
        assertThat(group.cancelCaught()).isFalse();
      }
    }
  }

  /**
   * A supervisor whose own scope shields it from an enclosing scope that is cancelled; the shield
   * is lowered while its children run, so the outer cancellation reaches them, and one fails in its
   * cleanup. Without a handler the failure wins over the cancellation above ("When outcomes
   * coincide", (1) before (3)) and passes through the outer scope (a failure is never absorbed);
   * with a handler the failure goes to it and run throws the InterruptedException of (3), which the
   * outer scope absorbs. Trio {@code test_cancel_shield_abort} (closest).
   */
  @RepeatedTest(5)
  void loweringTheShieldOfASupervisorLetsTheOuterCancellationInAndTheCleanupFailureOut()
      throws Exception {
    for (boolean withHandler : new boolean[] {false, true}) {
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      TaskGroup.Builder b =
          TaskGroup.builder().name("shielded-supervisor").failurePolicy(FailurePolicy.COLLECT);
      if (withHandler) {
        b.onFailure(handled::add);
      }
      TaskGroup group = b.build();
      IllegalStateException cleanup = new IllegalStateException("cleanup");
      CancelScope outer = CancelScope.create();
      AtomicReference<Throwable> fromRun = new AtomicReference<>();
      Throwable fromOuter =
          catchThrowable(
              () ->
                  outer.run(
                      () -> {
                        group.cancelScope().setShielded(true);
                        try {
                          group.run(
                              () -> {
                                CountDownLatch blocked = new CountDownLatch(1);
                                group.fork(
                                    () -> {
                                      blocked.countDown();
                                      try {
                                        Thread.sleep(60_000);
                                      } finally {
                                        throw cleanup;
                                      }
                                    });
                                blocked.await();
                                outer.cancel();
                                assertThat(CancelScope.isCancelled()).isFalse(); // shielded
                                group.cancelScope().setShielded(false);
                              });
                        } catch (Throwable t) {
                          fromRun.set(t);
                          throw t;
                        }
                      }));
      if (withHandler) {
        assertThat(handled).containsExactly(cleanup);
        assertThat(fromRun.get()).isInstanceOf(InterruptedException.class);
        assertThat(fromOuter).isNull();
        assertThat(outer.cancelCaught()).isTrue();
      } else {
        assertThat(fromRun.get())
            .isInstanceOfSatisfying(
                TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(cleanup));
        assertThat(fromOuter).isSameAs(fromRun.get());
      }
      assertThat(group.cancelCalled()).isFalse();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  /**
   * The owner interrupted from outside while it waits for its children, one of which then fails in
   * its cleanup. Without a handler the failure wins ((1)) and the interrupt stays set on the owner;
   * with a handler nothing is kept, and run throws InterruptedException ((2)) after the failure
   * went to the handler.
   */
  @RepeatedTest(5)
  void outsideInterruptOfTheOwnerAndACleanupFailure() throws Exception {
    for (boolean withHandler : new boolean[] {false, true}) {
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      TaskGroup.Builder b = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT);
      if (withHandler) {
        b.onFailure(handled::add);
      }
      TaskGroup group = b.build();
      IllegalStateException cleanup = new IllegalStateException("cleanup");
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicReference<Boolean> interruptAfter = new AtomicReference<>();
      CountDownLatch childBlocked = new CountDownLatch(1);
      Thread owner =
          Thread.ofVirtual()
              .start(
                  () -> {
                    thrown.set(
                        catchThrowable(
                            () ->
                                group.run(
                                    () -> {
                                      group.fork(
                                          () -> {
                                            childBlocked.countDown();
                                            try {
                                              Thread.sleep(60_000);
                                            } finally {
                                              throw cleanup;
                                            }
                                          });
                                    })));
                    interruptAfter.set(Thread.currentThread().isInterrupted());
                  });
      childBlocked.await();
      Probes.awaitWaiting(owner, Duration.ofSeconds(10));
      owner.interrupt();
      owner.join();
      if (withHandler) {
        assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
        assertThat(handled).containsExactly(cleanup);
      } else {
        assertThat(thrown.get())
            .isInstanceOfSatisfying(
                TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(cleanup));
        assertThat(interruptAfter.get()).as("the outside interrupt stays set").isTrue();
      }
    }
  }

  /**
   * invokeAny when every task fails, two of them with the same throwable: TaskGroupException lists
   * "the same throwable thrown by two children (a shared exception object) ... once", and invokeAny
   * throws one "with every failure in order".
   */
  @RepeatedTest(5)
  void invokeAnyListsASharedFailureOnce() throws Exception {
    IllegalStateException shared = new IllegalStateException("shared");
    IllegalStateException own = new IllegalStateException("own");
    List<Callable<String>> tasks =
        List.of(
            () -> {
              throw shared;
            },
            () -> {
              throw own;
            },
            () -> {
              throw shared;
            });
    Throwable thrown = catchThrowable(() -> TaskGroup.invokeAny(tasks));
    assertThat(thrown)
        .isInstanceOfSatisfying(
            TaskGroupException.class,
            e -> assertThat(e.failures()).containsExactlyInAnyOrder(shared, own));
  }

  // ---- randomised: handlers that restart, block and checkpoint, racing a cancel -------------

  /**
   * Randomised: a supervisor with or without maxConcurrency whose children fail at once, fail in
   * their cleanup once cancelled, or succeed; its handler records each failure and then restarts
   * the work, blocks until the group is cancelled (letting the interrupt out wrapped), calls a
   * checkpoint, or does nothing more; a cancel() from another thread, or a deadline, races all of
   * it. Every failure is handed to the handler exactly once and before run returns, run returns
   * normally (the handlers' interrupts are the cancellation, not failures), and no interrupt is
   * left on the owner.
   */
  @RepeatedTest(4)
  void randomisedHandlersRacingACancel() throws Exception {
    long seed = System.nanoTime();
    System.out.println("randomisedHandlersRacingACancel seed " + seed);
    java.util.Random rnd = new java.util.Random(seed);
    for (int round = 0; round < 15; round++) {
      int children = 10 + rnd.nextInt(150);
      int places = rnd.nextBoolean() ? 0 : 1 + rnd.nextInt(4);
      boolean byDeadline = rnd.nextBoolean();
      long cancelAfterMicros = rnd.nextInt(5_000);
      long handlerSeed = rnd.nextLong();
      java.util.Set<Throwable> thrown = ConcurrentHashMap.newKeySet();
      List<Throwable> handled = new CopyOnWriteArrayList<>();
      java.util.concurrent.atomic.AtomicBoolean runReturned =
          new java.util.concurrent.atomic.AtomicBoolean();
      AtomicInteger late = new AtomicInteger();
      AtomicReference<TaskGroup> self = new AtomicReference<>();
      TaskGroup.Builder b =
          TaskGroup.builder()
              .name("chaos-supervisor")
              .failurePolicy(FailurePolicy.COLLECT)
              .onFailure(
                  f -> {
                    if (runReturned.get()) {
                      late.incrementAndGet();
                    }
                    handled.add(f);
                    int what = (int) ((handlerSeed ^ System.identityHashCode(f)) & 3);
                    switch (what) {
                      case 0 -> self.get().fork(() -> "restarted");
                      case 1 -> {
                        try {
                          new CountDownLatch(1).await(); // until the group's cancellation
                        } catch (InterruptedException e) {
                          throw new IllegalStateException("handler stopped", e);
                        }
                      }
                      case 2 -> {
                        try {
                          CancelScope.checkpoint();
                        } catch (InterruptedException e) {
                          Thread.currentThread().interrupt(); // kept, as a polite handler does
                        }
                      }
                      default -> {}
                    }
                  });
      if (places > 0) {
        b.maxConcurrency(places);
      }
      if (byDeadline) {
        b.timeout(Duration.ofNanos(cancelAfterMicros * 1_000));
      }
      TaskGroup group = b.build();
      self.set(group);
      int[] kinds = new int[children];
      for (int i = 0; i < children; i++) {
        kinds[i] = rnd.nextInt(3);
      }
      String what =
          "seed " + seed + " round " + round + " places " + places + " deadline " + byDeadline;
      Throwable result =
          catchThrowable(
              () ->
                  group.run(
                      () -> {
                        if (!byDeadline) {
                          Thread.ofVirtual()
                              .start(
                                  () -> {
                                    java.util.concurrent.locks.LockSupport.parkNanos(
                                        cancelAfterMicros * 1_000);
                                    group.cancel();
                                  });
                        }
                        for (int i = 0; i < children; i++) {
                          int id = i;
                          int kind = kinds[i];
                          group.fork(
                              () -> {
                                if (kind == 0) {
                                  IllegalStateException f = new IllegalStateException("c" + id);
                                  thrown.add(f);
                                  throw f;
                                }
                                if (kind == 1) {
                                  try {
                                    new CountDownLatch(1).await();
                                  } finally {
                                    IllegalStateException f =
                                        new IllegalStateException("cleanup " + id);
                                    thrown.add(f);
                                    throw f;
                                  }
                                }
                                return id;
                              });
                        }
                      }));
      runReturned.set(true);
      assertThat(result).as(what).isNull();
      assertThat(late.get()).as(what).isZero();
      java.util.Set<Throwable> distinct =
          java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
      distinct.addAll(handled);
      assertThat(distinct).as(what).hasSameSizeAs(handled);
      assertThat(distinct).as(what).isEqualTo(thrown);
      assertThat(Thread.interrupted()).as(what).isFalse();
    }
  }

  /** A job's failure, naming the job. */
  private static final class JobFailed extends RuntimeException {
    final int id;

    JobFailed(int id) {
      super("job " + id + " failed", null, false, false);
      this.id = id;
    }
  }
}
