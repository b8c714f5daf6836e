package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.lang.ref.WeakReference;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A group that runs for a long time does not grow: once a child has finished, its result or failure
 * is unreachable from the group (and from other children's handles) unless somebody holds its
 * {@code Task}.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RetentionTest {
  private static final int BURST = 400;

  @RepeatedTest(3)
  void supervisorThatWaitsAfterABurstKeepsNoFailure() throws Exception {
    Queue<WeakReference<Throwable>> failures = new ConcurrentLinkedQueue<>();
    CountDownLatch handled = new CountDownLatch(BURST);
    TaskGroup g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> handled.countDown())
            .build();
    g.run(
        () -> {
          for (int i = 0; i < BURST; i++) {
            g.fork(
                () -> {
                  RuntimeException f = new RuntimeException("request failed");
                  failures.add(new WeakReference<>(f));
                  throw f;
                });
          }
          handled.await();
          // The group is still running (its body is here) and idle: nothing may be kept.
          assertThat(Probes.awaitCleared(List.copyOf(failures)))
              .as("failures still reachable from an idle group")
              .isZero();
        });
  }

  @RepeatedTest(3)
  void resultsOfDroppedTasksAreNotKept() throws Exception {
    Queue<WeakReference<Object>> results = new ConcurrentLinkedQueue<>();
    CountDownLatch produced = new CountDownLatch(BURST);
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < BURST; i++) {
            g.fork(
                () -> {
                  byte[] result = new byte[1024];
                  results.add(new WeakReference<>(result));
                  produced.countDown();
                  return result;
                });
          }
          produced.await();
          assertThat(Probes.awaitCleared(List.copyOf(results)))
              .as("results of dropped tasks still reachable")
              .isZero();
        });
  }

  @RepeatedTest(3)
  void aHeldTaskKeepsOnlyItsOwnResult() throws Exception {
    Queue<WeakReference<Object>> later = new ConcurrentLinkedQueue<>();
    CountDownLatch produced = new CountDownLatch(BURST);
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          Task<byte[]> first = g.fork(() -> new byte[16]);
          first.get(); // finished: it has left the list
          for (int i = 0; i < BURST; i++) {
            g.fork(
                () -> {
                  byte[] result = new byte[1024];
                  later.add(new WeakReference<>(result));
                  produced.countDown();
                  return result;
                });
          }
          produced.await();
          assertThat(Probes.awaitCleared(List.copyOf(later)))
              .as("results reachable through a held, finished task")
              .isZero();
          assertThat(first.resultNow()).hasSize(16);
        });
  }

  /**
   * A failed group that somebody keeps (in a field, a map of jobs) does not keep its failures once
   * the exception run threw is dropped: the exception holds them, the group lets go. Failures of
   * the body and of children, under both policies.
   */
  @ParameterizedTest
  @EnumSource(FailurePolicy.class)
  void aFailedGroupKeptAfterRunDoesNotKeepItsFailures(FailurePolicy policy) throws Exception {
    for (int round = 0; round < 20; round++) {
      TaskGroup g = TaskGroup.builder().failurePolicy(policy).build();
      Queue<WeakReference<Throwable>> failures = new ConcurrentLinkedQueue<>();
      TaskGroupException thrown =
          catchThrowableOfType(
              TaskGroupException.class,
              () ->
                  g.run(
                      () -> {
                        for (int i = 0; i < 5; i++) {
                          g.fork(
                              () -> {
                                RuntimeException f = new RuntimeException("child failed");
                                failures.add(new WeakReference<>(f));
                                throw f;
                              });
                        }
                        IllegalStateException f = new IllegalStateException("body failed");
                        failures.add(new WeakReference<>(f));
                        throw f;
                      }));
      assertThat(thrown.failures()).isNotEmpty().hasSizeLessThanOrEqualTo(6);
      assertThat(failures).isNotEmpty();
      thrown = null; // only the group is left
      assertThat(Probes.awaitCleared(List.copyOf(failures)))
          .as("failures reachable from a finished group (%s)", policy)
          .isZero();
    }
  }

  /**
   * A cancel-hook registration that somebody keeps (say, in a field of a long-lived object) does
   * not keep what its action captured once it is spent: closed before any cancel, or after its
   * action ran.
   */
  @RepeatedTest(3)
  void aSpentRegistrationDoesNotKeepItsAction() throws Exception {
    List<WeakReference<Object>> captured =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>()); // 10 children add
    List<CancelScope.Registration> kept = new java.util.ArrayList<>();
    CancelScope closedFirst = CancelScope.create();
    closedFirst.run(
        () -> {
          Object statement = new byte[1 << 16];
          captured.add(new WeakReference<>(statement));
          CancelScope.Registration r =
              CancelScope.onCancel(() -> assertThat(statement).isNotNull());
          r.close();
          kept.add(r);
        });
    CancelScope fired = CancelScope.create();
    fired.run(
        () -> {
          Object socket = new byte[1 << 16];
          captured.add(new WeakReference<>(socket));
          CancelScope.Registration r = CancelScope.onCancel(() -> assertThat(socket).isNotNull());
          kept.add(r);
          fired.cancel();
          r.close(); // waits for the action, which has run
          CancelScope.checkpoint();
        });
    assertThat(fired.cancelCaught()).isTrue();
    assertThat(Probes.awaitCleared(captured))
        .as("what spent registrations' actions captured is still reachable")
        .isZero();
    assertThat(kept).hasSize(2);
  }

  /**
   * Threads that gave up waiting for a task (a timed get that timed out) are not kept by the task
   * while it goes on running.
   */
  @RepeatedTest(3)
  void threadsThatStoppedWaitingAreNotKeptByARunningTask() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          Task<String> slow =
              g.fork(
                  () -> {
                    release.await();
                    return "done";
                  });
          List<WeakReference<Object>> waiters = new java.util.ArrayList<>();
          for (int i = 0; i < 20; i++) {
            Thread t =
                Thread.ofPlatform()
                    .start(
                        () -> {
                          try {
                            slow.get(1, TimeUnit.MILLISECONDS);
                            throw new AssertionError("the task finished early");
                          } catch (java.util.concurrent.TimeoutException expected) {
                            // gave up waiting
                          } catch (Exception e) {
                            throw new AssertionError(e);
                          }
                        });
            t.join();
            waiters.add(new WeakReference<>(t));
          }
          assertThat(Probes.awaitCleared(waiters))
              .as("threads that stopped waiting still reachable from the running task")
              .isZero();
          release.countDown();
          assertThat(slow.get()).isEqualTo("done");
        });
  }

  /**
   * A stage that outlives the awaits on it (each ended by an outside interrupt) keeps none of the
   * threads that awaited it.
   */
  @RepeatedTest(3)
  void aStageThatOutlivesItsAwaitsKeepsNoThread() throws Exception {
    java.util.concurrent.CompletableFuture<String> never =
        new java.util.concurrent.CompletableFuture<>();
    List<WeakReference<Object>> threads = new java.util.ArrayList<>();
    for (int i = 0; i < 10; i++) {
      Thread t =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      CancelScope.await(never);
                      throw new AssertionError("the stage never completes");
                    } catch (InterruptedException expected) {
                      // the outside interrupt below
                    } catch (java.util.concurrent.ExecutionException e) {
                      throw new AssertionError(e);
                    }
                  });
      while (t.getState() != Thread.State.WAITING) { // parked in await: the callback is in
        Thread.onSpinWait();
      }
      t.interrupt();
      t.join();
      threads.add(new WeakReference<>(t));
    }
    assertThat(Probes.awaitCleared(threads))
        .as("threads that awaited a stage still reachable from it")
        .isZero();
    assertThat(never).as("an outside interrupt leaves the stage alone").isNotDone();
  }

  /**
   * A future awaited in a cooperative scope (whose wait shares one completion callback per future,
   * kept in a map by identity), each wait ended by an outside interrupt, then dropped unfinished:
   * the map does not keep it, whether its class keeps Object's equals and hashCode or not.
   */
  @RepeatedTest(3)
  void aFutureAwaitedCooperativelyAndDroppedUnfinishedIsNotKept() throws Exception {
    List<WeakReference<Object>> futures = new java.util.ArrayList<>();
    for (int i = 0; i < 10; i++) {
      java.util.concurrent.CompletableFuture<String> never =
          i % 2 == 0
              ? new java.util.concurrent.CompletableFuture<>()
              : new AwaitTest.EqualToAll<>();
      Thread.currentThread().interrupt(); // someone else's interrupt: the wait throws at once
      assertThat(
              catchThrowable(() -> CancelScope.cooperative().run(() -> CancelScope.await(never))))
          .isInstanceOf(InterruptedException.class);
      futures.add(new WeakReference<>(never));
    }
    assertThat(Probes.awaitCleared(futures))
        .as("futures awaited cooperatively still reachable")
        .isZero();
  }

  /**
   * A child started with {@code start} runs on (a server, for days) after the thread that called
   * {@code start} has ended: it keeps neither that thread nor the value it signalled.
   */
  @RepeatedTest(3)
  void aStartedChildKeepsNeitherTheCallerNorTheValue() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    List<WeakReference<Object>> callers = new java.util.ArrayList<>();
    List<WeakReference<Object>> values = new java.util.ArrayList<>();
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < 10; i++) {
            Task<Void> caller =
                g.fork(
                    () -> {
                      Object value =
                          g.start(
                              signal -> {
                                signal.started(new byte[1024]);
                                release.await(); // serves until the test is done
                              });
                      values.add(new WeakReference<>(value));
                      callers.add(new WeakReference<>(Thread.currentThread()));
                    });
            caller.get();
          }
          assertThat(Probes.awaitCleared(callers))
              .as("threads that called start() still reachable from the started children")
              .isZero();
          assertThat(Probes.awaitCleared(values))
              .as("signalled values still reachable from the started children")
              .isZero();
          release.countDown();
        });
  }

  /**
   * A child that left a cancel hook open on its own root scope has finished: the hook can no longer
   * fire, and a {@code Task} held afterwards keeps its result, not the hook's action nor what the
   * action captured.
   */
  @RepeatedTest(3)
  void aHeldTaskKeepsNoHookItsWorkLeftOpen() throws Exception {
    List<WeakReference<Object>> captured =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>()); // 10 children add
    List<Task<String>> held = new java.util.ArrayList<>();
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < 10; i++) {
            held.add(
                g.fork(
                    () -> {
                      byte[] resource = new byte[1024];
                      captured.add(new WeakReference<>(resource));
                      CancelScope.onCancel(() -> java.util.Arrays.fill(resource, (byte) 1));
                      return "done"; // the registration is never closed
                    }));
          }
        });
    assertThat(Probes.awaitCleared(captured))
        .as("actions of open registrations still reachable from finished tasks")
        .isZero();
    assertThat(held).allSatisfy(t -> assertThat(t.resultNow()).isEqualTo("done"));
  }

  /**
   * A {@code Task} held after it finished (a list of results) keeps its outcome, not its dead
   * thread: with its continuation that is most of a finished child's weight (as {@code FutureTask}
   * drops its runner). Children on the library's threads and on a factory's, with context
   * propagators, and a {@code start()} child; each keeps its name, whether the fork gave it, the
   * factory set it on the thread, or the work renamed its thread.
   */
  @RepeatedTest(3)
  void aHeldTaskKeepsNoThreadButKeepsItsName() throws Exception {
    java.util.concurrent.atomic.AtomicInteger made =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.ThreadFactory named =
        r -> Thread.ofPlatform().name("worker-" + made.incrementAndGet()).unstarted(r);
    ContextPropagator nothing =
        new ContextPropagator() {
          @Override
          public Runnable wrap(Runnable child) {
            return child;
          }
        };
    List<TaskGroup.Builder> builders =
        List.of(
            TaskGroup.builder(),
            TaskGroup.builder().threadFactory(named),
            TaskGroup.builder().contextPropagator(nothing));
    for (TaskGroup.Builder b : builders) {
      List<WeakReference<Object>> threads =
          java.util.Collections.synchronizedList(new java.util.ArrayList<>());
      List<Task<String>> held = new java.util.ArrayList<>();
      List<String> names = new java.util.ArrayList<>();
      TaskGroup g = b.build();
      g.run(
          () -> {
            for (int i = 0; i < 10; i++) {
              int n = i;
              Callable<String> work =
                  () -> {
                    threads.add(new WeakReference<>(Thread.currentThread()));
                    if (n == 3) {
                      Thread.currentThread().setName("renamed-by-its-work");
                    }
                    return "done";
                  };
              Task<String> t = n == 5 ? g.fork("named-" + n, work) : g.fork(work);
              held.add(t);
            }
            g.start(
                signal -> {
                  threads.add(new WeakReference<>(Thread.currentThread()));
                  signal.started(null);
                });
          });
      for (Task<String> t : held) {
        names.add(t.name());
      }
      assertThat(Probes.awaitCleared(threads))
          .as("threads of finished children still reachable (%s)", b)
          .isZero();
      assertThat(held).allSatisfy(t -> assertThat(t.resultNow()).isEqualTo("done"));
      assertThat(names.get(3)).isEqualTo("renamed-by-its-work");
      assertThat(names.get(5)).isEqualTo("named-5");
      if (b == builders.get(1)) {
        assertThat(names.get(0)).startsWith("worker-");
      }
      assertThat(held.get(3).name()).isEqualTo("renamed-by-its-work");
    }
  }

  /**
   * A held finished {@code Task} keeps its result, not the work it ran (nor what the work
   * captured): its lambda is dropped as it ends. (A {@code StructuredTaskScope.Subtask} keeps its
   * {@code Callable}.) Succeeded, failed and cancelled children alike.
   */
  @RepeatedTest(3)
  void aHeldTaskKeepsNotTheWorkItRan() throws Exception {
    List<WeakReference<Object>> captured = new java.util.ArrayList<>();
    List<Task<Integer>> held = new java.util.ArrayList<>();
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    catchThrowableOfType(
        TaskGroupException.class,
        () ->
            g.run(
                () -> {
                  for (int i = 0; i < 30; i++) {
                    byte[] big = new byte[4096];
                    captured.add(new WeakReference<>(big));
                    int kind = i % 3;
                    Task<Integer> t =
                        g.fork(
                            () -> {
                              if (kind == 1) {
                                throw new IllegalStateException("failed " + big.length);
                              }
                              if (kind == 2) {
                                CancelScope.sleep(java.time.Duration.ofHours(1));
                              }
                              return big.length;
                            });
                    held.add(t);
                  }
                  for (int i = 2; i < 30; i += 3) {
                    held.get(i).cancel(true);
                  }
                }));
    assertThat(Probes.awaitCleared(captured))
        .as("work (and what it captured) still reachable from held, finished tasks")
        .isZero();
    assertThat(held.get(0).resultNow()).isEqualTo(4096);
    assertThat(held.get(1).state()).isEqualTo(java.util.concurrent.Future.State.FAILED);
    assertThat(held.get(2).state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
  }
}
