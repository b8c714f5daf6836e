package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * What a scope, a group, a task or an exception keeps once its run is over, held by the user
 * afterwards (a field, a map of jobs, an error log): not the thread it ran on, which may have ended
 * (a request's platform thread, the virtual thread of a child that ran a nested group), and not the
 * result or failure of the task it ran in, which nobody else may hold. A JDK peer keeps neither:
 * {@code FutureTask} drops its runner, an {@code ExecutionException} keeps only its cause.
 *
 * <p>Swept: plain, timed and cancelled scopes; groups that completed, failed, were cancelled or
 * timed out; run on short-lived platform threads and inside children; held as the scope, the group,
 * a {@code Task} of the group, its {@code CompletableFuture}, and the {@code ExecutionException}
 * its {@code get()} threw (which keeps nothing of the group either); a {@code StartSignal} the work
 * kept after {@code start} threw; and what a supervisor or a task used to know failures by while it
 * ran, measured as the heap that dropping them frees. Closest upstream: CPython test_taskgroups.py
 * test_exception_refcycles_parent_task and test_exception_refcycles_errors (a finished TaskGroup
 * keeps neither its parent task nor its errors), and Trio test_run.py
 * test_cancel_scope_exit_doesnt_create_cyclic_garbage (all from memory).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RetentionHuntTest {
  private static final int ROUNDS = 12;

  /** Runs {@code body} on a new platform thread, which ends; returns that thread. */
  private static Thread onShortThread(Body body) throws InterruptedException {
    Throwable[] failed = new Throwable[1];
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    body.run();
                  } catch (Throwable e) {
                    failed[0] = e;
                  }
                });
    t.join();
    if (failed[0] != null) {
      throw new AssertionError("the short thread's work failed", failed[0]);
    }
    return t;
  }

  /** A scope of each kind, the kind chosen by {@code i}; its body ends it as the kind says. */
  private static CancelScope runScope(int i) throws InterruptedException {
    CancelScope s =
        switch (i % 3) {
          case 0 -> CancelScope.create();
          case 1 -> CancelScope.withTimeout(Duration.ofHours(1));
          default -> CancelScope.create();
        };
    s.run(
        () -> {
          if (i % 3 == 2) {
            s.cancel("done with it");
            CancelScope.checkpoint(); // absorbed by s
          }
        });
    return s;
  }

  /**
   * A scope kept after its run keeps neither the platform thread it ran on (ended since) nor, run
   * inside a child, that child's result, which nobody holds.
   */
  @RepeatedTest(3)
  void aKeptScopeKeepsNeitherItsThreadNorTheTaskItRanIn() throws Exception {
    List<CancelScope> kept = Collections.synchronizedList(new ArrayList<>());
    List<WeakReference<Object>> gone = Collections.synchronizedList(new ArrayList<>());
    for (int i = 0; i < ROUNDS; i++) {
      int n = i;
      Thread t = onShortThread(() -> kept.add(runScope(n)));
      gone.add(new WeakReference<>(t));
    }
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < ROUNDS; i++) {
            int n = i;
            g.fork(
                    () -> {
                      kept.add(runScope(n));
                      byte[] result = new byte[1024];
                      gone.add(new WeakReference<>(result));
                      return result; // nobody holds the task
                    })
                .get();
          }
        });
    assertThat(Probes.awaitCleared(gone))
        .as("ended threads, or results of tasks nobody holds, reachable from kept scopes")
        .isZero();
    assertThat(kept).hasSize(2 * ROUNDS);
    for (int i = 0; i < kept.size(); i++) {
      CancelScope s = kept.get(i);
      assertThat(s.cancelCaught()).as("scope %d", i).isEqualTo(i % ROUNDS % 3 == 2);
      assertThat(s.toString()).contains("done");
    }
  }

  /**
   * A group kept after its run, completed, failed, cancelled or timed out, keeps neither the
   * platform thread that ran it (ended since), nor, run by a child, that child's virtual thread
   * (the group's owner) or its result; nor does a Task of the group, its CompletableFuture, or the
   * ExecutionException its get() threw.
   */
  @RepeatedTest(3)
  void aKeptGroupAndItsTasksKeepNeitherTheOwnerNorTheTaskItRanIn() throws Exception {
    List<Object> kept = Collections.synchronizedList(new ArrayList<>());
    List<WeakReference<Object>> gone = Collections.synchronizedList(new ArrayList<>());
    for (int i = 0; i < ROUNDS; i++) {
      int n = i;
      Thread t = onShortThread(() -> runGroup(n, kept));
      gone.add(new WeakReference<>(t));
    }
    TaskGroup outer = TaskGroup.create();
    outer.run(
        () -> {
          for (int i = 0; i < ROUNDS; i++) {
            int n = i;
            outer
                .fork(
                    () -> {
                      gone.add(new WeakReference<>(Thread.currentThread())); // the inner owner
                      runGroup(n, kept);
                      byte[] result = new byte[1024];
                      gone.add(new WeakReference<>(result));
                      return result; // nobody holds the task
                    })
                .get();
          }
        });
    assertThat(Probes.awaitCleared(gone))
        .as("owners, or results of tasks nobody holds, reachable from kept groups and tasks")
        .isZero();
    assertThat(kept).hasSize(2 * ROUNDS * 4);
    for (int i = 0; i < kept.size(); i += 4) {
      TaskGroup g = (TaskGroup) kept.get(i);
      Task<?> t = (Task<?>) kept.get(i + 1);
      assertThat(t.isDone()).isTrue();
      assertThat(t.toString()).contains("done");
      assertThat(((java.util.concurrent.CompletableFuture<?>) kept.get(i + 2)).isDone()).isTrue();
      assertThat(kept.get(i + 3)).isInstanceOf(ExecutionException.class);
      assertThat(g.toString()).contains("done");
    }
  }

  /**
   * The ExecutionException a failed task's get() threw, kept after the group ended and was dropped
   * (an error log, a list of outcomes), keeps its cause and nothing of the group: not what its
   * onFailure handler, thread factory or context propagator captured, as an ExecutionException from
   * FutureTask.get() keeps only its cause. With and without a handler, from the body and from a
   * sibling.
   */
  @RepeatedTest(3)
  void aKeptExecutionExceptionKeepsNothingOfTheGroup() throws Exception {
    List<ExecutionException> kept = Collections.synchronizedList(new ArrayList<>());
    List<WeakReference<Object>> gone = Collections.synchronizedList(new ArrayList<>());
    for (int i = 0; i < ROUNDS; i++) {
      byte[] handlerCapture = new byte[1024];
      byte[] factoryCapture = new byte[1024];
      byte[] propagatorCapture = new byte[1024];
      gone.add(new WeakReference<>(handlerCapture));
      gone.add(new WeakReference<>(factoryCapture));
      gone.add(new WeakReference<>(propagatorCapture));
      boolean handled = i % 2 == 0;
      TaskGroup.Builder b =
          TaskGroup.builder()
              .failurePolicy(
                  FailurePolicy.COLLECT) // CANCEL_ALL: get() would throw the cancellation
              .threadFactory(
                  r -> {
                    assertThat(factoryCapture).isNotNull();
                    return Thread.ofVirtual().unstarted(r);
                  })
              .contextPropagator(
                  work ->
                      () -> {
                        assertThat(propagatorCapture).isNotNull();
                        work.run();
                      });
      if (handled) {
        b.onFailure(f -> assertThat(handlerCapture).isNotNull());
      }
      TaskGroup g = b.build();
      boolean fromSibling = i % 4 < 2;
      Throwable thrown =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        Task<Void> failing =
                            g.fork(
                                () -> {
                                  throw new IllegalStateException("failed on purpose");
                                });
                        Callable<Void> read =
                            () -> {
                              try {
                                failing.get();
                              } catch (ExecutionException e) {
                                kept.add(e);
                              }
                              return null;
                            };
                        if (fromSibling) {
                          g.fork(read).get();
                        } else {
                          read.call();
                        }
                      }));
      if (handled) {
        assertThat(thrown).isNull();
      } else {
        assertThat(thrown).isInstanceOf(TaskGroupException.class);
      }
    }
    assertThat(Probes.awaitCleared(gone))
        .as("what a dropped group's handler, factory or propagator captured, kept by an exception")
        .isZero();
    assertThat(kept)
        .hasSize(ROUNDS)
        .allSatisfy(e -> assertThat(e).hasCauseInstanceOf(IllegalStateException.class));
  }

  /**
   * A supervisor kept after its run (a field of a long-lived service) that handled a burst of
   * failures just before it ended keeps nothing of the burst: the failures went to its handler and
   * are garbage, and so is what the group used to know them again while it ran (it weighed about 40
   * bytes per failure of the burst, for as long as the group was kept). Measured as the heap that
   * dropping the kept groups frees, after collections (only the groups differ between the two
   * readings). Closest upstream: none (asyncio's TaskGroup keeps no reported errors, Trio's nursery
   * none once closed).
   */
  @RepeatedTest(2)
  void aKeptSupervisorKeepsNothingOfABurstOfHandledFailures() throws Exception {
    int groups = 6;
    int burst = 8_000;
    List<TaskGroup> kept = new ArrayList<>();
    java.util.concurrent.atomic.AtomicInteger handled =
        new java.util.concurrent.atomic.AtomicInteger();
    for (int i = 0; i < groups; i++) {
      TaskGroup g =
          TaskGroup.builder()
              .failurePolicy(FailurePolicy.COLLECT)
              .onFailure(f -> handled.incrementAndGet())
              .build();
      g.run(
          () -> {
            for (int j = 0; j < burst; j++) {
              g.fork(
                  () -> {
                    throw new IllegalStateException("request failed");
                  });
            }
          });
      kept.add(g);
    }
    assertThat(handled).hasValue(groups * burst);
    long withGroups = usedAfterCollections();
    assertThat(kept).allSatisfy(g -> assertThat(g.toString()).contains("done"));
    kept.clear();
    long withoutGroups = usedAfterCollections();
    long perGroup = (withGroups - withoutGroups) / groups;
    System.out.println("a kept supervisor after a burst of " + burst + " failures: " + perGroup);
    assertThat(perGroup)
        .as("bytes a kept supervisor keeps after a burst of %d handled failures", burst)
        .isLessThan(64 * 1024);
  }

  /**
   * A Task kept after it finished (a list of results) keeps nothing of the failures its work let
   * out of its scopes on the way (a request loop whose requests failed through a scope each): the
   * table its thread knew them by served only that thread, which is done with the task (it weighed
   * up to about 100 bytes per failure, sized by the failures between two collections). Measured as
   * the heap that dropping the kept tasks frees. Closest upstream: none (FutureTask keeps its
   * outcome only).
   */
  @RepeatedTest(2)
  void aKeptTaskKeepsNothingOfTheFailuresItsWorkLetThrough() throws Exception {
    int tasks = 4;
    int failures = 20_000;
    List<Task<String>> kept = new ArrayList<>();
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < tasks; i++) {
            Task<String> t =
                g.fork(
                    () -> {
                      for (int j = 0; j < failures; j++) {
                        try {
                          CancelScope.create()
                              .run(
                                  () -> {
                                    throw new IllegalStateException("request failed");
                                  });
                        } catch (IllegalStateException expected) {
                          // the next request
                        }
                      }
                      return "served";
                    });
            assertThat(t.get()).isEqualTo("served");
            kept.add(t);
          }
        });
    long withTasks = usedAfterCollections();
    assertThat(kept).allSatisfy(t -> assertThat(t.resultNow()).isEqualTo("served"));
    kept.clear();
    long withoutTasks = usedAfterCollections();
    long perTask = (withTasks - withoutTasks) / tasks;
    System.out.println("a kept task after " + failures + " failures let through: " + perTask);
    assertThat(perTask)
        .as("bytes a kept finished task keeps after its work let %d failures through", failures)
        .isLessThan(16 * 1024);
  }

  /** The heap in use after collections (a few, until two readings agree within 64 KiB). */
  private static long usedAfterCollections() throws InterruptedException {
    java.lang.management.MemoryMXBean memory =
        java.lang.management.ManagementFactory.getMemoryMXBean();
    long last = Long.MAX_VALUE;
    for (int i = 0; i < 10; i++) {
      System.gc();
      Thread.sleep(20); // lets reference processing finish between collections; orders nothing
      long now = memory.getHeapMemoryUsage().getUsed();
      if (Math.abs(now - last) < 64 * 1024) {
        return Math.min(now, last);
      }
      last = now;
    }
    return last;
  }

  /**
   * A StartSignal the work kept (a readiness callback stored for later) keeps neither the thread
   * that called start, ended since, nor an outcome that start has already handed over or that
   * nobody will take: the failure the work threw before signalling (start threw it), or a value
   * signalled after the caller stopped waiting (start threw its cancellation). (RetentionTest
   * covers a signal that was signalled while the caller waited.) Closest upstream: none (Trio's
   * task_status.started keeps nothing once the nursery's start returned, from memory).
   */
  @RepeatedTest(3)
  void aKeptStartSignalKeepsNeitherTheCallerNorAnOutcome() throws Exception {
    List<StartSignal<Object>> kept = Collections.synchronizedList(new ArrayList<>());
    List<WeakReference<Object>> gone = Collections.synchronizedList(new ArrayList<>());
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < ROUNDS; i++) {
            // The work fails before it signals: start throws the failure to its caller.
            g.fork(
                    () -> {
                      gone.add(new WeakReference<>(Thread.currentThread()));
                      Throwable thrown =
                          catchThrowable(
                              () ->
                                  g.start(
                                      (StartSignal<Object> signal) -> {
                                        kept.add(signal);
                                        IllegalStateException f =
                                            new IllegalStateException("failed before started()");
                                        gone.add(new WeakReference<>(f));
                                        throw f;
                                      }));
                      assertThat(thrown).hasMessage("failed before started()");
                    })
                .get();
            // The caller stops waiting (cancelled); the work, cancelled by that, signals anyway.
            CountDownLatch waiting = new CountDownLatch(1);
            List<WeakReference<Thread>> callerThread = new ArrayList<>(1);
            Task<Object> caller =
                g.fork(
                    () -> {
                      WeakReference<Thread> me = new WeakReference<>(Thread.currentThread());
                      callerThread.add(me); // before the work starts: read after waiting
                      gone.add(new WeakReference<>(Thread.currentThread()));
                      return g.start(
                          (StartSignal<Object> signal) -> {
                            kept.add(signal);
                            waiting.countDown();
                            try {
                              new CountDownLatch(1).await(); // until start() gives up on it
                            } catch (InterruptedException cancelledByTheLeavingCaller) {
                              byte[] value = new byte[1024];
                              gone.add(new WeakReference<>(value));
                              signal.started(value); // nobody takes it: the caller has left
                            }
                          });
                    });
            waiting.await();
            caller.cancel(true);
            assertThat(catchThrowable(caller::get)).isInstanceOf(CancellationException.class);
            Probes.awaitTrue(
                "the caller of start() ended",
                Duration.ofSeconds(10),
                () -> {
                  Thread t = callerThread.get(0).get();
                  return t == null || !t.isAlive();
                });
          }
        });
    assertThat(Probes.awaitCleared(gone))
        .as("callers of start(), or outcomes already handed over, reachable from kept signals")
        .isZero();
    assertThat(kept).hasSize(2 * ROUNDS);
  }

  /**
   * Runs a group that ends as {@code i} says (completed, failed, cancelled, timed out) and keeps
   * it, a Task of it, that task's CompletableFuture, and the ExecutionException a failed sibling's
   * get() threw: four entries in {@code kept}.
   */
  private static void runGroup(int i, List<Object> kept) throws InterruptedException {
    int kind = i % 4;
    TaskGroup.Builder b = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT);
    if (kind == 3) {
      b.timeout(Duration.ofHours(1)); // brought in below, once the body kept what it keeps
    }
    if (kind != 1) {
      b.onFailure(f -> {}); // the failed sibling below is handled, not thrown by run
    }
    TaskGroup g = b.build();
    Object[] held = new Object[3];
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<String> t = g.fork(() -> "r");
                      held[0] = t;
                      held[1] = t.toCompletableFuture();
                      Task<String> failing =
                          g.fork(
                              () -> {
                                throw new IllegalStateException("failed on purpose");
                              });
                      try {
                        failing.get();
                      } catch (ExecutionException e) {
                        held[2] = e;
                      }
                      t.get();
                      if (kind == 2) {
                        g.cancel("done with it");
                      } else if (kind == 3) {
                        g.cancelScope().setTimeout(Duration.ofMillis(1));
                        CancelScope.sleep(Duration.ofHours(1)); // the group's timeout ends it
                      }
                    }));
    if (kind == 1) {
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
    } else {
      assertThat(thrown).isNull();
    }
    kept.add(g);
    kept.add(held[0]);
    kept.add(held[1]);
    kept.add(held[2]);
  }
}
