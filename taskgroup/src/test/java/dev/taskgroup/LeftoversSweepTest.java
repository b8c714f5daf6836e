package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.lang.ref.WeakReference;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * What stays behind after a group or a scope ends: the library promises (guide.md, "Threads and
 * thread factories"; TaskGroup's javadoc) that after {@code run} returns none of the children's
 * code and none of its bookkeeping runs, no interrupt the group set is left on the caller, the
 * group keeps no finished child, and a finished group keeps no failure once thrown. These scenarios
 * look for leftovers in the long-lived parts: a pooled platform thread reused after every kind of
 * end (the next task must find a clean thread), the re-delivery watcher and the deadline timer
 * after a cancelled group, the state of a thread that used a scope and ended, and objects a user
 * keeps after the end (a CancelScope, a Task, a TaskGroupException, a TaskTree). The retention
 * cases RetentionTest already covers (failures of an idle or finished group, results of dropped
 * tasks, waiters, spent registrations, stage callbacks) are not repeated here.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LeftoversSweepTest {
  /** The re-delivery bound (Redelivery.BOUND_NANOS, default 20 ms), with room for a slow box. */
  private static final Duration WELL_PAST_REDELIVERY = Duration.ofMillis(150);

  private ExecutorService pool;
  private Thread pooled;

  @BeforeEach
  void onePooledThread() throws Exception {
    AtomicReference<Thread> made = new AtomicReference<>();
    pool =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = Thread.ofPlatform().name("leftovers-pool").unstarted(r);
              made.set(t);
              return t;
            });
    pool.submit(() -> {}).get(10, TimeUnit.SECONDS);
    pooled = made.get();
  }

  @AfterEach
  void shutDown() throws Exception {
    pool.shutdownNow();
    assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    Thread.interrupted();
  }

  /** Runs {@code work} on the one pooled thread and returns what it returned, or rethrows. */
  private <T> T onPool(Callable<T> work) throws Exception {
    try {
      return pool.submit(work).get(30, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof Exception ex) {
        throw ex;
      }
      throw (Error) e.getCause();
    }
  }

  private void onPoolRun(Probes.Action work) throws Exception {
    onPool(
        () -> {
          work.run();
          return null;
        });
  }

  /**
   * What the next task on a reused thread must find: no interrupt status, not cancelled, a
   * checkpoint that passes, no scope of this thread left in the task tree (no leftover innermost
   * scope), a fresh scope and a fresh group that behave as fresh, and no re-delivery arriving later
   * (the watcher has let the thread go).
   */
  private static void assertCleanThread(String after) throws Exception {
    Thread me = Thread.currentThread();
    assertThat(me.isInterrupted()).as("interrupt status left by %s", after).isFalse();
    assertThat(CancelScope.isCancelled()).as("still cancelled after %s", after).isFalse();
    CancelScope.checkpoint(); // throws if anything of the old region is still in force
    String tree = TaskTree.capture().format();
    assertThat(tree)
        .as("a scope of this thread still in the task tree after %s", after)
        .doesNotContain("#" + me.threadId() + " \"" + me.getName() + "\"");
    CancelScope fresh = CancelScope.create();
    String inside = fresh.call(() -> CancelScope.isCancelled() ? "cancelled" : "clean");
    assertThat(inside).as("a fresh scope after %s", after).isEqualTo("clean");
    assertThat(fresh.cancelCaught()).isFalse();
    TaskGroup g = TaskGroup.create();
    String r = g.call(() -> g.fork(() -> "child ran").get());
    assertThat(r).as("a fresh group after %s", after).isEqualTo("child ran");
    assertThat(g.cancelCalled()).isFalse();
    // A re-delivery still watching this thread would interrupt this sleep (it ends by time only).
    try {
      Thread.sleep(WELL_PAST_REDELIVERY); // measures absence of interrupts; orders nothing
    } catch (InterruptedException e) {
      throw new AssertionError("interrupted on a clean thread after " + after, e);
    }
    assertThat(me.isInterrupted()).isFalse();
  }

  // ---- a pooled thread after every kind of end ------------------------------------------------

  /** The ways a task on a pooled thread leaves a group or a scope. */
  private enum Ending {
    GROUP_CANCELLED_BY_BODY,
    GROUP_CANCELLED_FROM_OUTSIDE,
    GROUP_FAILED,
    GROUP_TIMED_OUT_WITH_SWALLOWING_CHILDREN,
    SCOPE_CANCELLED_BODY_SWALLOWS,
    SCOPE_TIMED_OUT,
    ERROR_OUT_OF_A_CANCELLED_SCOPE,
    EXCEPTION_INSIDE_A_SHIELD_UNDER_A_CANCELLED_SCOPE,
    CANCELLED_SCOPE_LEFT_BY_AN_UNRELATED_EXCEPTION,
    COOPERATIVE_SCOPE_CANCELLED,
    OUTSIDE_INTERRUPT_DURING_A_GROUP,
    NESTED_GROUPS_INNER_FAILS_OUTER_CANCELLED,
    HOOK_THAT_FIRED_AND_THREW
  }

  /**
   * A pooled platform thread (Executors.newSingleThreadExecutor, so every task runs on the same
   * thread) runs each kind of ending, and the next task on that thread checks that nothing is left:
   * the contract of CancelScope ("An interrupt the library delivered for a scope never survives
   * that scope's exit") and TaskGroup ("no interrupt the group delivered is left on the caller"),
   * applied to a thread that outlives many groups. Closest upstream: Trio's test_cancel_scope_exit
   * leaves no pending cancel (trio/_core/_tests/test_run.py, "test_cancel_scope_multi_use" /
   * "test_cancel_edge_cases"), and CPython's test_taskgroup "test_taskgroup_cancel_..._uncancel"
   * cases that check the task's cancel count is back to 0 afterwards.
   */
  @RepeatedTest(5)
  void aPooledThreadIsCleanAfterEveryKindOfEnding() throws Exception {
    for (Ending ending : Ending.values()) {
      Object outcome = onPool(() -> endIn(ending));
      assertThat(outcome).as("%s ran", ending).isNotNull();
      onPoolRun(() -> assertCleanThread(ending.name()));
    }
  }

  /** Plays one ending on the calling (pooled) thread; returns a token of how it ended. */
  private static Object endIn(Ending ending) throws Exception {
    switch (ending) {
      case GROUP_CANCELLED_BY_BODY -> {
        TaskGroup g = TaskGroup.create();
        g.run(
            () -> {
              CountDownLatch started = new CountDownLatch(1);
              g.fork(
                  () -> {
                    started.countDown();
                    Thread.sleep(60_000);
                    return null;
                  });
              started.await();
              g.cancel();
              Thread.sleep(60_000); // the body is interrupted too
            });
        assertThat(g.cancelCaught()).isTrue();
        return "cancelled";
      }
      case GROUP_CANCELLED_FROM_OUTSIDE -> {
        TaskGroup g = TaskGroup.create();
        CountDownLatch started = new CountDownLatch(1);
        Thread canceller =
            Thread.ofPlatform()
                .start(
                    () -> {
                      try {
                        started.await();
                      } catch (InterruptedException e) {
                        return;
                      }
                      g.cancel();
                    });
        g.run(
            () -> {
              g.fork(Fixtures::parkUntilInterrupted);
              started.countDown();
              Fixtures.parkUntilInterrupted(); // the body swallows nothing, returns when hit
            });
        canceller.join();
        return "cancelled";
      }
      case GROUP_FAILED -> {
        TaskGroup g = TaskGroup.create();
        Throwable t =
            catchThrowable(
                () ->
                    g.run(
                        () -> {
                          g.fork(
                              () -> {
                                throw new IllegalStateException("child failed");
                              });
                          Thread.sleep(60_000);
                        }));
        assertThat(t).isInstanceOf(TaskGroupException.class);
        return t.getClass();
      }
      case GROUP_TIMED_OUT_WITH_SWALLOWING_CHILDREN -> {
        TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(20)).build();
        AtomicInteger swallowed = new AtomicInteger();
        g.run(
            () -> {
              for (int i = 0; i < 3; i++) {
                g.fork(
                    () -> {
                      for (int round = 0; round < 3; round++) {
                        try {
                          Thread.sleep(60_000);
                        } catch (InterruptedException e) {
                          swallowed.incrementAndGet(); // re-delivered by the watcher
                        }
                      }
                    });
              }
              Thread.sleep(60_000);
            });
        assertThat(g.cancelCaught()).isTrue();
        assertThat(swallowed.get()).isEqualTo(9);
        return "timed out";
      }
      case SCOPE_CANCELLED_BODY_SWALLOWS -> {
        CancelScope s = CancelScope.create();
        s.run(
            () -> {
              s.cancel();
              for (int i = 0; i < 3; i++) {
                try {
                  Thread.sleep(60_000);
                } catch (InterruptedException swallowedOnPurpose) {
                  // swallowed: the library must re-deliver, then drop it on exit
                }
              }
              // ends normally despite the cancel: the body returns, nothing is absorbed
            });
        assertThat(s.cancelCaught()).isFalse();
        return "swallowed";
      }
      case SCOPE_TIMED_OUT -> {
        String r = CancelScope.moveOnAfter(Duration.ofMillis(5), () -> sleepLong());
        assertThat(r).isNull();
        return "timed out";
      }
      case ERROR_OUT_OF_A_CANCELLED_SCOPE -> {
        CancelScope s = CancelScope.create();
        Throwable t =
            catchThrowable(
                () ->
                    s.run(
                        () -> {
                          s.cancel();
                          throw new OutOfMemoryError("simulated, while cancelled");
                        }));
        assertThat(t).isInstanceOf(OutOfMemoryError.class);
        return t.getClass();
      }
      case EXCEPTION_INSIDE_A_SHIELD_UNDER_A_CANCELLED_SCOPE -> {
        CancelScope outer = CancelScope.create();
        Throwable t =
            catchThrowable(
                () ->
                    outer.run(
                        () -> {
                          outer.cancel();
                          CancelScope.shielded()
                              .run(
                                  () -> {
                                    throw new java.io.IOException("cleanup failed in a shield");
                                  });
                        }));
        assertThat(t).isInstanceOf(java.io.IOException.class);
        return t.getClass();
      }
      case CANCELLED_SCOPE_LEFT_BY_AN_UNRELATED_EXCEPTION -> {
        CancelScope s = CancelScope.withTimeout(Duration.ZERO);
        Throwable t =
            catchThrowable(
                () ->
                    s.run(
                        () -> {
                          throw new IllegalArgumentException("not a cancellation");
                        }));
        assertThat(t).isInstanceOf(IllegalArgumentException.class);
        return t.getClass();
      }
      case COOPERATIVE_SCOPE_CANCELLED -> {
        CancelScope outer = CancelScope.create();
        outer.run(
            () -> {
              CancelScope.cooperative()
                  .run(
                      () -> {
                        outer.cancel();
                        assertThat(Thread.currentThread().isInterrupted()).isFalse();
                        CancelScope.checkpoint();
                      });
            });
        assertThat(outer.cancelCaught()).isTrue();
        return "cooperative";
      }
      case OUTSIDE_INTERRUPT_DURING_A_GROUP -> {
        TaskGroup g = TaskGroup.create();
        Thread owner = Thread.currentThread();
        CountDownLatch started = new CountDownLatch(1);
        Thread interrupter =
            Thread.ofPlatform()
                .start(
                    () -> {
                      try {
                        started.await();
                      } catch (InterruptedException e) {
                        return;
                      }
                      owner.interrupt();
                    });
        Throwable t =
            catchThrowable(
                () ->
                    g.run(
                        () -> {
                          g.fork(() -> sleepLong());
                          started.countDown();
                          sleepLong();
                        }));
        interrupter.join();
        assertThat(t).isInstanceOf(InterruptedException.class);
        // Someone else's interrupt, thrown: the JDK convention is that it is then cleared.
        return t.getClass();
      }
      case NESTED_GROUPS_INNER_FAILS_OUTER_CANCELLED -> {
        TaskGroup outer = TaskGroup.create();
        Throwable t =
            catchThrowable(
                () ->
                    outer.run(
                        () -> {
                          outer.fork(() -> sleepLong());
                          TaskGroup inner = TaskGroup.create();
                          inner.run(
                              () -> {
                                inner.fork(
                                    () -> {
                                      throw new IllegalStateException("inner child failed");
                                    });
                                sleepLong();
                              });
                        }));
        assertThat(t).isInstanceOf(TaskGroupException.class);
        return t.getClass();
      }
      case HOOK_THAT_FIRED_AND_THREW -> {
        CancelScope s = CancelScope.create();
        Throwable t =
            catchThrowable(
                () ->
                    s.run(
                        () -> {
                          CancelScope.Registration r =
                              CancelScope.onCancel(
                                  () -> {
                                    throw new IllegalStateException("hook failed");
                                  });
                          s.cancel();
                          r.close(); // no group around: close throws what the action threw
                        }));
        assertThat(t).isInstanceOf(IllegalStateException.class).hasMessage("hook failed");
        return t.getClass();
      }
      default -> throw new AssertionError(ending);
    }
  }

  // ---- what a thread keeps -------------------------------------------------------------------

  /**
   * A pooled thread does not keep the last failure that left a nested scope on it: once the
   * exception is dropped, nothing of the library holds it. The failure went through a group that
   * threw it in a TaskGroupException, which the caller dropped: "a finished group keeps no failures
   * once thrown" (RetentionTest's contract), applied to the thread the group ran on. Closest
   * upstream: CPython test_taskgroup "test_exception_refcycles_*" (no reference cycles keep the
   * raised exceptions alive after the group).
   */
  @RepeatedTest(3)
  void aPooledThreadKeepsNoFailureThatLeftANestedScope() throws Exception {
    List<WeakReference<Object>> failures = new ArrayList<>();
    // Inside a group body: a scope nested in the group lets the failure through (it is judged
    // there), the group reports it, run throws, the caller drops the exception.
    onPoolRun(
        () -> {
          TaskGroup g = TaskGroup.create();
          Throwable t =
              catchThrowable(
                  () ->
                      g.run(
                          () ->
                              CancelScope.create()
                                  .run(
                                      () -> {
                                        RuntimeException f = new RuntimeException("body failed");
                                        synchronized (failures) {
                                          failures.add(new WeakReference<>(f));
                                        }
                                        throw f;
                                      })));
          assertThat(t).isInstanceOf(TaskGroupException.class);
        });
    // Plain scopes, two deep: the inner one judges, the outer one lets it through.
    onPoolRun(
        () -> {
          Throwable t =
              catchThrowable(
                  () ->
                      CancelScope.create()
                          .run(
                              () ->
                                  CancelScope.create()
                                      .run(
                                          () -> {
                                            IllegalStateException f =
                                                new IllegalStateException("request failed");
                                            synchronized (failures) {
                                              failures.add(new WeakReference<>(f));
                                            }
                                            throw f;
                                          })));
          assertThat(t).isInstanceOf(IllegalStateException.class);
        });
    // The pooled thread is idle now, alive, and has nothing of ours to keep.
    assertThat(Probes.awaitCleared(failures))
        .as("failures still reachable from the pooled thread that ran them")
        .isZero();
    assertThat(pooled.isAlive()).isTrue();
  }

  /**
   * A Task held after its group ended keeps its own outcome (Task's javadoc) but not an exception
   * that its work caught and handled: a failure that left a scope inside the child and was then
   * caught there is not the task's outcome.
   */
  @RepeatedTest(3)
  void aHeldTaskKeepsNoExceptionItsWorkHandled() throws Exception {
    List<WeakReference<Object>> handled = new ArrayList<>();
    TaskGroup g = TaskGroup.create();
    Task<String> kept =
        g.call(
            () -> {
              Task<String> t =
                  g.fork(
                      () -> {
                        try {
                          CancelScope.create()
                              .run(
                                  () -> {
                                    RuntimeException f = new RuntimeException("retried later");
                                    handled.add(new WeakReference<>(f));
                                    throw f;
                                  });
                        } catch (RuntimeException expected) {
                          // handled: the task goes on and succeeds
                        }
                        return "ok";
                      });
              t.get();
              return t;
            });
    assertThat(kept.resultNow()).isEqualTo("ok");
    assertThat(Probes.awaitCleared(handled))
        .as("an exception the task handled is still reachable from the held task")
        .isZero();
    assertThat(kept.state()).isEqualTo(Task.State.SUCCESS);
  }

  /**
   * A platform thread that entered a scope once and then ended is collectable, with what its
   * Runnable captured: the library keeps no live-thread registry entry for a dead thread (TaskTree
   * shows live threads only).
   */
  @RepeatedTest(3)
  void aThreadThatUsedAScopeAndEndedIsCollectable() throws Exception {
    List<WeakReference<Object>> refs = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      byte[] captured = new byte[1 << 20];
      Thread t =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      CancelScope.create().run(() -> assertThat(captured).hasSize(1 << 20));
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  });
      t.join();
      refs.add(new WeakReference<>(t));
      refs.add(new WeakReference<>(captured));
    }
    assertThat(Probes.awaitCleared(refs))
        .as("threads that used a scope and ended (or what they captured) still reachable")
        .isZero();
  }

  /**
   * An onCancel registration made outside any scope, on a pooled thread, and never closed: the
   * thread's root is never cancelled, so the action can never run ("soon after the calling thread's
   * innermost scope becomes effectively cancelled"; "Scopes entered later do not trigger it"), and
   * nothing it captured may stay reachable from the thread. (A registration left open inside a
   * scope goes with the scope.) Closest upstream: none; the JDK's own registrations of this kind
   * (Cleaner, Thread.onSpinWait-free shutdown hooks) are explicit.
   */
  @RepeatedTest(3)
  void anUnclosedRegistrationOutsideAnyScopeIsNotKeptByAPooledThread() throws Exception {
    Queue<WeakReference<Object>> captured = new ConcurrentLinkedQueue<>();
    onPoolRun(
        () -> {
          for (int i = 0; i < 100; i++) {
            Object socket = new byte[1 << 14];
            captured.add(new WeakReference<>(socket));
            CancelScope.onCancel(() -> assertThat(socket).isNotNull()); // left open
          }
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(Probes.awaitCleared(List.copyOf(captured)))
        .as("actions of never-fireable registrations still reachable from the pooled thread")
        .isZero();
  }

  // ---- the watcher and the timer after a cancelled group --------------------------------------

  /**
   * Children that swallow the cancellation's interrupt several times (so the re-delivery watcher
   * takes them up) and then end: once run has returned and the caller dropped everything, no task,
   * child thread, result, failure or group is reachable; the watcher keeps nothing of a thread that
   * ended. A group timeout (the deadline timer) starts the cancellation. Closest upstream: CPython
   * test_taskgroup "test_taskgroup_no_create_task_after_failure" / refcycle tests, Kotlin's
   * "JobTest.testCancelledParent" leak checks.
   */
  @RepeatedTest(5)
  void aTimedOutGroupOfSwallowersLeavesNothingInTheWatcherOrTheTimer() throws Exception {
    Queue<WeakReference<Object>> refs = new ConcurrentLinkedQueue<>();
    Tracking threads = new Tracking(ThreadKind.VIRTUAL);
    runTimedOutSwallowers(refs, threads);
    threads.assertAllDone();
    for (Thread t : threads.threads) {
      refs.add(new WeakReference<>(t));
    }
    threads.threads.clear();
    assertThat(Probes.awaitCleared(List.copyOf(refs)))
        .as("tasks, threads, results, failures or the group of a finished cancelled group")
        .isZero();
  }

  /** The group of the test above; keeps nothing on the caller's stack once it returns. */
  private static void runTimedOutSwallowers(Queue<WeakReference<Object>> refs, Tracking threads)
      throws Exception {
    AtomicInteger swallowed = new AtomicInteger();
    TaskGroup g =
        TaskGroup.builder()
            .timeout(Duration.ofMillis(10))
            .threadFactory(threads)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> {})
            .build();
    g.run(
        () -> {
          for (int i = 0; i < 20; i++) {
            int n = i;
            refs.add(
                new WeakReference<>(
                    g.fork(
                        () -> {
                          for (int round = 0; round < 3; round++) {
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException e) {
                              swallowed.incrementAndGet();
                            }
                          }
                          if (n % 2 == 0) {
                            RuntimeException f = new RuntimeException("late failure " + n);
                            refs.add(new WeakReference<>(f));
                            throw f;
                          }
                          byte[] result = new byte[1 << 16];
                          refs.add(new WeakReference<>(result));
                          return result;
                        })));
          }
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(swallowed.get()).isEqualTo(60);
    refs.add(new WeakReference<>(g));
  }

  /**
   * A platform thread (not a task) swallows the cancellation of a scope several times, then the
   * scope ends: the watcher stops re-delivering to that thread (it lives on, in a pool), which sees
   * no interrupt afterwards.
   */
  @RepeatedTest(5)
  void theWatcherStopsReDeliveringToAPooledThreadThatLeftItsCancelledScope() throws Exception {
    onPoolRun(
        () -> {
          CancelScope s = CancelScope.create();
          AtomicInteger swallowed = new AtomicInteger();
          s.run(
              () -> {
                s.cancel();
                while (swallowed.get() < 3) {
                  try {
                    Thread.sleep(60_000); // each re-delivery ends it
                  } catch (InterruptedException e) {
                    swallowed.incrementAndGet();
                  }
                }
              });
          assertThat(swallowed.get()).isEqualTo(3);
        });
    onPoolRun(() -> assertCleanThread("a scope whose cancellation was swallowed three times"));
  }

  // ---- what the user keeps after run ----------------------------------------------------------

  /**
   * A TaskGroupException and a TaskTree kept after run keep no thread: the exception holds the
   * failures (TaskGroupException's javadoc), the tree is a picture (TaskTree's javadoc); neither
   * needs a child thread, and the threads of the children are collectable.
   */
  @RepeatedTest(3)
  void aTaskGroupExceptionAndATaskTreeKeptAfterRunKeepNoThread() throws Exception {
    Tracking threads = new Tracking(ThreadKind.PLATFORM);
    TaskGroup g = TaskGroup.builder().threadFactory(threads).build();
    AtomicReference<TaskTree> tree = new AtomicReference<>();
    CountDownLatch bothRunning = new CountDownLatch(2);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Object> waiting =
                          g.fork(
                              () -> {
                                bothRunning.countDown();
                                return sleepLong();
                              });
                      g.fork(
                          () -> {
                            bothRunning.countDown();
                            bothRunning.await();
                            tree.set(TaskTree.capture());
                            throw new IllegalStateException("child failed");
                          });
                      waiting.get();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    TaskGroupException kept = (TaskGroupException) thrown;
    assertThat(kept.failures()).hasSize(1);
    assertThat(tree.get().format()).contains("task");
    threads.assertAllDone();
    List<WeakReference<Object>> refs = new ArrayList<>();
    for (Thread t : threads.threads) {
      refs.add(new WeakReference<>(t));
    }
    threads.threads.clear();
    assertThat(Probes.awaitCleared(refs))
        .as("child threads reachable from a kept TaskGroupException or TaskTree")
        .isZero();
    assertThat(kept.getCause()).hasMessage("child failed");
    assertThat(tree.get()).isNotNull();
  }

  // ---- the deadline heap -----------------------------------------------------------------------

  /**
   * Scopes with a far deadline (1 hour) that end every way (normally, by an exception, by their own
   * cancel, with the deadline moved while running, and with a deadline set again after they exited,
   * from another thread, racing the exit) leave nothing in the deadline heap: each is collectable.
   * (DeadlineTest covers the plain moveOnAfter loop by heap size; this checks the scopes
   * themselves, by reachability.) Closest upstream: Trio's test_cancel_scope_deadline ("deadline
   * changes after exit are ignored") in trio/_core/_tests/test_run.py.
   */
  @RepeatedTest(3)
  void farDeadlineScopesEndedEveryWayAreNotKeptByTheTimer() throws Exception {
    List<WeakReference<Object>> refs = new ArrayList<>();
    Queue<CancelScope> toReset = new ConcurrentLinkedQueue<>();
    Thread resetter =
        Thread.ofPlatform()
            .start(
                () -> {
                  Instant far = Instant.now().plus(Duration.ofHours(2));
                  int done = 0;
                  while (done < 2_000) {
                    CancelScope s = toReset.poll();
                    if (s == null) {
                      Thread.onSpinWait();
                      continue;
                    }
                    s.setDeadline(far); // racing the exit, or after it
                    s.setTimeout(Duration.ofHours(3));
                    done++;
                  }
                });
    Duration hour = Duration.ofHours(1);
    for (int i = 0; i < 2_000; i++) {
      CancelScope s = CancelScope.withTimeout(hour);
      int way = i % 4;
      Throwable t =
          catchThrowable(
              () ->
                  s.run(
                      () -> {
                        toReset.add(s);
                        switch (way) {
                          case 0 -> {}
                          case 1 -> throw new IllegalStateException("ended by a failure");
                          case 2 -> {
                            s.cancel();
                            CancelScope.checkpoint();
                          }
                          default -> s.setTimeout(Duration.ofHours(2));
                        }
                      }));
      if (way == 1) {
        assertThat(t).isInstanceOf(IllegalStateException.class);
      } else {
        assertThat(t).isNull();
      }
      if (i % 20 == 0) {
        refs.add(new WeakReference<>(s));
      }
    }
    resetter.join(Duration.ofSeconds(30));
    assertThat(resetter.isAlive()).isFalse();
    assertThat(toReset).isEmpty();
    assertThat(Probes.awaitCleared(refs))
        .as("exited scopes with a far deadline still reachable (from the deadline heap?)")
        .isZero();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---- a cancel racing the end -----------------------------------------------------------------

  /**
   * A cancel from another thread racing the end of the group's run (or of a Task, or of the group's
   * deadline): whatever wins, no interrupt set by the group is left on the pooled owner after run
   * returns (TaskGroup's javadoc: "no interrupt the group delivered is left on the caller"), and
   * the next group on that thread runs clean. Repeated many rounds with a random pause. Closest
   * upstream: CPython test_taskgroup "test_cancel_before_exit" / Trio
   * test_cancel_scope_exit_doesnt_leak (the cancel count goes back to 0).
   */
  @RepeatedTest(20)
  void aCancelRacingTheEndOfRunLeavesNoInterruptOnThePooledOwner() throws Exception {
    long seed = Probes.seed("leftovers.race.seed", "cancel racing the end of run");
    java.util.Random random = new java.util.Random(seed);
    int rounds = 100;
    long[] pauses = new long[rounds];
    for (int i = 0; i < rounds; i++) {
      pauses[i] = random.nextInt(40_000);
    }
    int leaked =
        onPool(
            () -> {
              int leaks = 0;
              for (int i = 0; i < rounds; i++) {
                TaskGroup g =
                    i % 3 == 2
                        ? TaskGroup.builder().timeout(Duration.ofNanos(pauses[i])).build()
                        : TaskGroup.create();
                CountDownLatch go = new CountDownLatch(1);
                long pause = pauses[i];
                int kind = i % 3;
                AtomicReference<Task<?>> child = new AtomicReference<>();
                Thread canceller =
                    Thread.ofPlatform()
                        .start(
                            () -> {
                              try {
                                go.await();
                              } catch (InterruptedException e) {
                                return;
                              }
                              InterruptRaces.spin(pause);
                              if (kind == 0) {
                                g.cancel();
                              } else if (kind == 1) {
                                child.get().cancel(true);
                              }
                            });
                g.run(
                    () -> {
                      child.set(g.fork(() -> InterruptRaces.spin(20_000)));
                      go.countDown();
                      InterruptRaces.spin(20_000);
                    });
                if (Thread.interrupted()) {
                  leaks++;
                }
                canceller.join();
                if (Thread.interrupted()) {
                  leaks++; // landed after run returned
                }
              }
              return leaks;
            });
    assertThat(leaked).as("rounds that left an interrupt on the owner (seed %d)", seed).isZero();
    onPoolRun(() -> assertCleanThread("cancels racing the end of run"));
  }

  /**
   * A StackOverflowError thrown deep inside nested scopes, whose exits then run with little stack
   * left: once it has unwound, the pooled thread is clean (no leftover innermost scope, no
   * interrupt, a fresh group works). Closest upstream: CPython test_taskgroup
   * "test_taskgroup_recursion" (RecursionError inside a task group).
   */
  @RepeatedTest(5)
  void aStackOverflowThroughNestedScopesLeavesAPooledThreadClean() throws Exception {
    Throwable t =
        onPool(
            () -> {
              try {
                nest(CancelScope.create());
                return null;
              } catch (StackOverflowError e) {
                return e;
              }
            });
    assertThat(t).isInstanceOf(StackOverflowError.class);
    onPoolRun(() -> assertCleanThread("a StackOverflowError through nested scopes"));
  }

  private static void nest(CancelScope s) throws InterruptedException {
    s.run(() -> nest(CancelScope.create()));
  }

  private static String sleepLong() throws InterruptedException {
    Thread.sleep(60_000);
    return "slept";
  }
}
