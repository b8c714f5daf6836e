package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.internal.clock.LibraryClock;
import dev.taskgroup.internal.clock.TimeSource;
import java.lang.ref.WeakReference;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Long-lived groups under churn: a supervisor or a server's request group runs for hours while
 * short children come and go by the tens of thousands. Whatever a finished child, a finished nested
 * scope, a spent registration, an expired deadline, a failure handed to the handler, or a waiter
 * that stopped waiting leaves behind must become garbage, and every internal table sized by them
 * must come back to small: the library grows with what is alive, never with what ever ran.
 *
 * <p>Each scenario runs one long-lived group (or one pooled thread) through 10 000-100 000 short
 * children and then checks, while the group is still running, that samples of what the children
 * made are collectable (WeakReference and GC polled with a deadline, {@link Probes#awaitCleared})
 * and, where no public view exists, that the internal table's size is small again (read through
 * reflection: these tests run inside the library's module). Earlier sweeps: {@link RetentionTest},
 * {@link RetentionSweepTest} (one object kept after its end); this class is about volume. Closest
 * upstream: Trio's test_nursery_does_not_leak / CPython's test_taskgroup_*_refcycle family (from
 * memory: a nursery or TaskGroup leaves no reference cycles to its finished tasks and their
 * exceptions), scaled to a long-lived group.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ChurnRetentionTest {

  /** A cheap failure (no stack trace): more of them between two collections. */
  static final class RequestFailed extends RuntimeException {
    RequestFailed(String message) {
      super(message, null, false, false);
    }
  }

  // ---- failures handed to the handler -------------------------------------------------------

  /**
   * A COLLECT supervisor whose children fail 100 000 times, each failure handed to the onFailure
   * handler (FailurePolicy.COLLECT: "the failure is handed to the handler and not kept"): the group
   * keeps none of them, and its weak table of reported failures (GroupFailures.reported, a
   * JudgedFailures) has come back to small once they are garbage and the next failure is reported:
   * it is sized by the failures alive, not by those that ever were. Closest upstream: Erlang/OTP
   * supervisor and Kotlin's SupervisorJob (a supervisor keeps no record of its children's crashes).
   */
  @RepeatedTest(2)
  void aSupervisorFailing100kTimesKeepsNoFailureNorAGrownTable() throws Exception {
    int n = 100_000;
    AtomicInteger handled = new AtomicInteger();
    List<WeakReference<Throwable>> sample = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger stillReachable = new AtomicInteger(-1);
    AtomicInteger capacity = new AtomicInteger(-1);
    AtomicInteger extra = new AtomicInteger();
    TaskGroup g =
        TaskGroup.builder()
            .name("supervisor")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> handled.incrementAndGet())
            .build();
    g.run(
        () -> {
          for (int i = 0; i < n; i++) {
            int id = i;
            g.fork(
                () -> {
                  RequestFailed f = new RequestFailed("request " + id);
                  if (id % 1000 == 0) {
                    sample.add(new WeakReference<>(f));
                  }
                  throw f;
                });
          }
          Probes.awaitTrue(
              "every failure handled", Duration.ofSeconds(30), () -> handled.get() == n);
          // Measured here, asserted after run: a failed assertion in the body would be handed to
          // the handler too (COLLECT), not thrown by run.
          stillReachable.set(Probes.awaitCleared(sample));
          // The table is touched only when a failure is reported: a collection, then one more
          // failure, until it is small again or 10 s have passed (the collector's notice that the
          // dropped ones were cleared may come a moment after the collection, and the new failures
          // are alive until the next one).
          long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
          do {
            System.gc();
            g.fork(
                    () -> {
                      throw new RequestFailed("after the churn");
                    })
                .toCompletableFuture()
                .exceptionally(x -> null)
                .join();
            extra.incrementAndGet();
            capacity.set(Internals.reportedCapacity(g));
          } while (capacity.get() > 64 && System.nanoTime() - until < 0L);
        });
    System.out.printf(
        "supervisor: reported-failures table capacity %d after %d more failures%n",
        capacity.get(), extra.get());
    assertThat(handled).as("failures handed to the handler").hasValue(n + extra.get());
    assertThat(stillReachable).as("failures handed to the handler still reachable").hasValue(0);
    assertThat(capacity.get())
        .as("capacity of the group's table of reported failures after %d were dropped", n)
        .isLessThanOrEqualTo(64);
  }

  /**
   * The owner side: one pooled platform thread runs 100 000 groups in sequence, each with a failure
   * judged at a cancelled scope's exit on the owner's thread and reported by the group (run throws
   * TaskGroupException). The thread's own state (ThreadState: its judged failures, the hooks of its
   * root scope) keeps none of those failures and does not grow with the groups it ran. Closest
   * upstream: none (asyncio and Trio have no per-thread state that outlives a run).
   */
  @Test // one thread, in sequence: nothing to race
  void aPooledThreadRunning100kGroupsAccumulatesNothing() throws Exception {
    int n = 100_000;
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      List<WeakReference<Throwable>> sample = new ArrayList<>();
      pool.submit(
              () -> {
                for (int i = 0; i < n; i++) {
                  RequestFailed f = new RequestFailed("group " + i);
                  if (i % 1000 == 0) {
                    sample.add(new WeakReference<>(f));
                  }
                  TaskGroup g = TaskGroup.create();
                  try {
                    g.run(
                        () -> {
                          CancelScope.onCancel(() -> {}); // on the group's scope, left open
                          CancelScope inner = CancelScope.create();
                          inner.run(
                              () -> {
                                inner.cancel("judged here");
                                throw f; // judged a failure at inner's exit, on this thread
                              });
                        });
                    throw new AssertionError("the group did not fail");
                  } catch (TaskGroupException expected) {
                    assertThat(expected.failures()).containsExactly(f);
                  }
                }
                return null;
              })
          .get(30, TimeUnit.SECONDS);
      assertThat(Probes.awaitCleared(sample)).as("failures kept by the pooled thread").isZero();
      int[] state =
          pool.submit(() -> new int[] {Internals.ownJudgedCapacity(), Internals.ownRootHookCount()})
              .get(10, TimeUnit.SECONDS);
      System.out.println(
          "pooled owner: judged-failures capacity " + state[0] + ", root hooks " + state[1]);
      assertThat(state[1]).as("hooks on the pooled thread's root scope").isZero();
      // The table is touched only when a failure is judged: more groups after the churn, until it
      // is small again or 10 s have passed (as in the supervisor's test above).
      int capacity =
          pool.submit(
                  () -> {
                    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    int c;
                    do {
                      System.gc();
                      try {
                        TaskGroup.create()
                            .run(
                                () -> {
                                  CancelScope s = CancelScope.create();
                                  s.run(
                                      () -> {
                                        s.cancel();
                                        throw new RequestFailed("after the churn");
                                      });
                                });
                        throw new AssertionError("the group did not fail");
                      } catch (TaskGroupException expected) {
                        // reported
                      }
                      c = Internals.ownJudgedCapacity();
                    } while (c > 64 && System.nanoTime() - until < 0L);
                    return c;
                  })
              .get(20, TimeUnit.SECONDS);
      System.out.println("pooled owner: judged-failures capacity after more groups " + capacity);
      assertThat(capacity)
          .as("capacity of the pooled thread's judged failures after %d groups", n)
          .isLessThanOrEqualTo(64);
    } finally {
      pool.shutdownNow();
      assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  // ---- cancelled children, swallowed interrupts -----------------------------------------------

  /**
   * Task.cancel() on 20 000 running children of one group, half of which swallow the first
   * interrupt and block again (the re-delivery watcher interrupts them again, Task's javadoc:
   * "keeps being interrupted if it swallows the interrupt, until the work ends"): the cancelled
   * tasks, what their work held, and the watcher's watches of them are all garbage once they have
   * ended. Closest upstream: Trio's test_cancel_scope_... level-triggered cancellation (from
   * memory); Kotlin's JobSupport leaves no node for a cancelled, completed child.
   */
  @RepeatedTest(2)
  void cancelledAndSwallowingChildrenLeaveNothingBehind() throws Exception {
    int n = 20_000;
    int batch = 500;
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger swallowed = new AtomicInteger();
    AtomicInteger ended = new AtomicInteger();
    TaskGroup g = TaskGroup.named("cancelled-churn");
    g.run(
        () -> {
          for (int b = 0; b < n / batch; b++) {
            CountDownLatch started = new CountDownLatch(batch);
            List<Task<byte[]>> tasks = new ArrayList<>(batch);
            for (int i = 0; i < batch; i++) {
              boolean swallow = (i & 1) == 0;
              byte[] held = new byte[256];
              if (i % 50 == 0) {
                sample.add(new WeakReference<>(held));
              }
              Task<byte[]> t =
                  g.fork(
                      () -> {
                        try {
                          started.countDown();
                          try {
                            new CountDownLatch(1).await();
                          } catch (InterruptedException first) {
                            if (!swallow) {
                              throw first;
                            }
                            swallowed.incrementAndGet();
                            new CountDownLatch(1).await(); // blocks again: re-delivered
                          }
                          return held;
                        } finally {
                          ended.incrementAndGet();
                        }
                      });
              if (i % 50 == 0) {
                sample.add(new WeakReference<>(t));
              }
              tasks.add(t);
            }
            started.await();
            for (Task<byte[]> t : tasks) {
              assertThat(t.cancel(true)).isTrue();
            }
            for (Task<byte[]> t : tasks) {
              assertThatThrownBy(t::get).isInstanceOf(CancellationException.class);
            }
          }
          Probes.awaitTrue("every child ended", Duration.ofSeconds(30), () -> ended.get() == n);
          assertThat(swallowed.get()).isEqualTo(n / 2);
          assertThat(Probes.awaitCleared(sample))
              .as("cancelled children (tasks, held data) still reachable from a running group")
              .isZero();
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---- nested deadlines ---------------------------------------------------------------------

  /**
   * 20 000 children each run a nested CancelScope.withTimeout: half expire (1 ms, the child waits),
   * half exit long before (1 h). Every scope is garbage afterwards, and the deadline heap
   * (internal/Deadlines.java) has shrunk back to its small size. Closest upstream: Trio's
   * test_timekeeping / CPython's test_timeouts (asyncio.timeout in many tasks), from memory.
   */
  @RepeatedTest(2)
  void nestedTimeoutsInChurningChildrenLeaveASmallDeadlineHeap() throws Exception {
    int n = 20_000;
    int batch = 2_000;
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger expired = new AtomicInteger();
    TaskGroup g = TaskGroup.named("deadline-churn");
    g.run(
        () -> {
          int peak = 0;
          for (int b = 0; b < n / batch; b++) {
            CountDownLatch done = new CountDownLatch(batch);
            CountDownLatch farEntered = new CountDownLatch(batch / 2);
            CountDownLatch release = new CountDownLatch(1);
            for (int i = 0; i < batch; i++) {
              boolean expire = (i & 1) == 0;
              boolean sampled = i % 100 == 0;
              g.fork(
                  () -> {
                    try {
                      CancelScope s =
                          CancelScope.withTimeout(
                              expire ? Duration.ofMillis(1) : Duration.ofHours(1));
                      if (sampled) {
                        sample.add(new WeakReference<>(s));
                      }
                      s.run(
                          () -> {
                            if (expire) {
                              new CountDownLatch(1).await(); // until the deadline
                            } else {
                              farEntered.countDown();
                              release.await();
                            }
                          });
                      if (expire) {
                        assertThat(s.cancelCaught()).isTrue();
                        expired.incrementAndGet();
                      }
                    } finally {
                      done.countDown();
                    }
                  });
            }
            farEntered.await();
            peak = Math.max(peak, Internals.deadlineHeapCapacity());
            release.countDown();
            done.await();
          }
          assertThat(expired).hasValue(n / 2);
          assertThat(peak).as("the heap grew during the bursts").isGreaterThanOrEqualTo(batch / 2);
          assertThat(Internals.deadlineHeapCapacity())
              .as("deadline heap after the churn")
              .isLessThanOrEqualTo(256);
          assertThat(Probes.awaitCleared(sample)).as("ended nested scopes reachable").isZero();
        });
  }

  // ---- registrations ------------------------------------------------------------------------

  /**
   * Cancel hooks in churn: 20 000 children open onCancel and closeOnCancel registrations on their
   * own scope, closing half and leaving half open; and the long-lived group's body opens and closes
   * 100 000 registrations on the group's own scope (try-with-resources around each request, the
   * javadoc's pattern). What the actions captured is garbage, and the group scope's stack of hooks
   * has not grown (spent ones are unlinked). Closest upstream: Trio's test_cancel_scope_... / AnyIO
   * CancelScope callbacks (none exactly; from memory).
   */
  @RepeatedTest(2)
  void registrationsOpenedAndClosedInChurnLeaveNothingBehind() throws Exception {
    int children = 20_000;
    int bodyHooks = 100_000;
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    TaskGroup g = TaskGroup.named("hook-churn");
    g.run(
        () -> {
          CountDownLatch done = new CountDownLatch(children);
          for (int i = 0; i < children; i++) {
            boolean close = (i & 1) == 0;
            boolean sampled = i % 200 == 0;
            g.fork(
                () -> {
                  try {
                    byte[] statement = new byte[128];
                    java.io.ByteArrayInputStream socket =
                        new java.io.ByteArrayInputStream(statement);
                    if (sampled) {
                      sample.add(new WeakReference<>(statement));
                      sample.add(new WeakReference<>(socket));
                    }
                    CancelScope.Registration a =
                        CancelScope.onCancel(() -> java.util.Arrays.fill(statement, (byte) 1));
                    CancelScope.Registration b = CancelScope.closeOnCancel(socket);
                    if (close) {
                      b.close();
                      a.close();
                    }
                  } finally {
                    done.countDown();
                  }
                });
          }
          for (int i = 0; i < bodyHooks; i++) {
            byte[] request = new byte[64];
            if (i % 1000 == 0) {
              sample.add(new WeakReference<>(request));
            }
            try (CancelScope.Registration r =
                CancelScope.onCancel(() -> java.util.Arrays.fill(request, (byte) 2))) {
              assertThat(r).isNotNull();
            }
          }
          done.await();
          assertThat(Internals.hookCount(g))
              .as("hooks on the long-lived group's scope")
              .isLessThanOrEqualTo(1);
          assertThat(Probes.awaitCleared(sample))
              .as("what spent or orphaned registrations captured is still reachable")
              .isZero();
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---- waiters that stopped waiting ----------------------------------------------------------

  /**
   * 10 000 timed gets that time out on one long-running task (a health check polling a job), from
   * as many threads: none of the waiters is kept by the task while it runs on. Then 10 000
   * toCompletableFuture() dependents on short tasks: once the tasks and the dependents' results are
   * dropped, nothing is kept. Closest upstream: OpenJDK's FutureTask removeWaiter tests
   * (test/jdk/java/util/concurrent/FutureTask), and CompletableFuture's cleanStack.
   */
  @RepeatedTest(2)
  void waitersThatStoppedWaitingAreNotKept() throws Exception {
    int waiters = 10_000;
    CountDownLatch release = new CountDownLatch(1);
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    TaskGroup g = TaskGroup.named("waiter-churn");
    g.run(
        () -> {
          Task<String> job =
              g.fork(
                  () -> {
                    release.await();
                    return "done";
                  });
          AtomicInteger timedOut = new AtomicInteger();
          try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < waiters; i++) {
              boolean sampled = i % 100 == 0;
              threads.submit(
                  () -> {
                    if (sampled) {
                      sample.add(new WeakReference<>(Thread.currentThread()));
                    }
                    try {
                      job.get(1, TimeUnit.MICROSECONDS);
                    } catch (TimeoutException expected) {
                      timedOut.incrementAndGet();
                    }
                    return null;
                  });
            }
          }
          assertThat(timedOut).hasValue(waiters);
          assertThat(Probes.awaitCleared(sample))
              .as("threads whose timed get timed out, kept by the running task")
              .isZero();
          // Dependents on short tasks.
          List<WeakReference<Object>> results = Collections.synchronizedList(new ArrayList<>());
          List<CompletableFuture<Integer>> dependents = new ArrayList<>();
          for (int i = 0; i < waiters; i++) {
            int id = i;
            Task<byte[]> t =
                g.fork(
                    () -> {
                      byte[] r = new byte[128];
                      if (id % 100 == 0) {
                        results.add(new WeakReference<>(r));
                      }
                      return r;
                    });
            dependents.add(t.toCompletableFuture().thenApply(r -> r.length));
            if (id % 100 == 0) {
              results.add(new WeakReference<>(t));
            }
          }
          for (CompletableFuture<Integer> d : dependents) {
            assertThat(d.get(10, TimeUnit.SECONDS)).isEqualTo(128);
          }
          assertThat(Probes.awaitCleared(results))
              .as("tasks and results reachable while only their dependents are held")
              .isZero();
          assertThat(dependents).hasSize(waiters);
          assertThat(job.isDone()).isFalse();
          release.countDown();
          assertThat(job.get()).isEqualTo("done");
        });
  }

  /**
   * CancelScope.await on a long-lived stage, ended 2 000 times by an interrupt from someone else
   * ("leaves the stage alone"): the stage does not keep a dependent per await that ended. The JDK's
   * own CompletableFuture.get(), interrupted the same way, leaves the stage with no dependent
   * (CompletableFuture.waitingGet/cleanStack); await is "like Future.get()". Closest upstream:
   * OpenJDK's CompletableFuture tests of getNumberOfDependents after interrupted waits (closest,
   * from memory).
   */
  @Test // one waiter at a time: nothing to race
  void awaitsEndedByAnInterruptLeaveNoDependentOnTheStage() throws Exception {
    int n = 2_000;
    CompletableFuture<String> longLived = new CompletableFuture<>();
    CompletableFuture<String> jdkBaseline = new CompletableFuture<>();
    for (int i = 0; i < n; i++) {
      interruptWhileWaiting(() -> CancelScope.await(longLived));
      if (i < 50) {
        interruptWhileWaiting(jdkBaseline::get);
      }
    }
    System.out.println(
        "await: dependents left on the stage "
            + longLived.getNumberOfDependents()
            + " (JDK get(): "
            + jdkBaseline.getNumberOfDependents()
            + ")");
    assertThat(jdkBaseline.getNumberOfDependents()).as("JDK get() baseline").isZero();
    assertThat(longLived.getNumberOfDependents())
        .as("dependents left on a stage by %d awaits that ended by an interrupt", n)
        .isLessThanOrEqualTo(1);
    assertThat(longLived).isNotDone();
  }

  private static void interruptWhileWaiting(Probes.Action wait) throws Exception {
    AtomicInteger interrupted = new AtomicInteger();
    Thread t =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    wait.run();
                  } catch (InterruptedException expected) {
                    interrupted.incrementAndGet();
                  } catch (Exception e) {
                    throw new AssertionError(e);
                  }
                });
    Probes.awaitTrue("parked", Duration.ofSeconds(10), () -> t.getState() == Thread.State.WAITING);
    t.interrupt();
    t.join();
    assertThat(interrupted).hasValue(1);
  }

  // ---- start() children ---------------------------------------------------------------------

  /**
   * 10 000 children started with start() one after another in a COLLECT supervisor with a handler:
   * half signal a value and end, half fail before signalling (TaskGroup.start: "start throws that
   * failure ... and it is not a failure of the group"). The values, the signals and the failures
   * are garbage once the children ended, the handler saw none of the failures, and the caller's own
   * table of failures judged on its thread (Forks.start records each one there) is small again
   * after a collection and one more start. Closest upstream: Trio's test_nursery_start
   * (task_status.started, an exception before started() raised by start), AnyIO's TaskGroup.start.
   */
  @RepeatedTest(2)
  void startedChildrenLeaveNothingBehind() throws Exception {
    int n = 10_000;
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger ended = new AtomicInteger();
    AtomicInteger handled = new AtomicInteger();
    AtomicInteger capacity = new AtomicInteger(-1);
    AtomicInteger stillReachable = new AtomicInteger(-1);
    TaskGroup g =
        TaskGroup.builder()
            .name("start-churn")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> handled.incrementAndGet())
            .build();
    g.run(
        () -> {
          for (int i = 0; i < n; i++) {
            boolean sampled = i % 100 < 2;
            boolean fail = (i & 1) == 1;
            RequestFailed failure = new RequestFailed("start " + i);
            if (sampled) {
              sample.add(new WeakReference<>(failure));
            }
            try {
              Object value =
                  g.start(
                      signal -> {
                        if (sampled) {
                          sample.add(new WeakReference<>(signal));
                        }
                        try {
                          if (fail) {
                            throw failure;
                          }
                          signal.started(new byte[128]);
                        } finally {
                          ended.incrementAndGet();
                        }
                      });
              assertThat(fail).as("start returned for a child that failed").isFalse();
              if (sampled) {
                sample.add(new WeakReference<>(value));
              }
            } catch (RequestFailed thrown) {
              assertThat(thrown).isSameAs(failure);
            }
          }
          Probes.awaitTrue(
              "every started child ended", Duration.ofSeconds(20), () -> ended.get() == n);
          stillReachable.set(Probes.awaitCleared(sample));
          long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
          do {
            System.gc();
            try {
              g.start(
                  signal -> {
                    throw new RequestFailed("after the churn");
                  });
            } catch (RequestFailed expected) {
              // start throws it
            }
            capacity.set(Internals.ownJudgedCapacity());
          } while (capacity.get() > 64 && System.nanoTime() - until < 0L);
        });
    System.out.println("start: caller's judged-failures capacity " + capacity.get());
    assertThat(handled).as("start failures handed to the handler").hasValue(0);
    assertThat(stillReachable)
        .as("signals, values and failures of ended started children still reachable")
        .hasValue(0);
    assertThat(capacity.get())
        .as("capacity of the caller's judged failures after %d failed starts", n / 2)
        .isLessThanOrEqualTo(64);
  }

  // ---- maxConcurrency ------------------------------------------------------------------------

  /**
   * A maxConcurrency(1) group whose one place is held: 10 000 forks, from children of the group (so
   * each child waits for the place on its own thread, Forks' overview), are cancelled with
   * Task.cancel() while waiting. None of them stays in the places' queue, none is kept, and the
   * holder's release then admits nobody cancelled. Closest upstream: AnyIO's CapacityLimiter /
   * Trio's test_CapacityLimiter (a cancelled acquire leaves the queue), and OpenJDK's Semaphore
   * cancellation tests.
   */
  @RepeatedTest(2)
  void forksCancelledWhileWaitingForAPlaceLeaveNothingBehind() throws Exception {
    int n = 10_000;
    int batch = 1_000;
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger ran = new AtomicInteger();
    CountDownLatch holderIn = new CountDownLatch(1);
    CountDownLatch releaseHolder = new CountDownLatch(1);
    CountDownLatch allCancelled = new CountDownLatch(1);
    TaskGroup g = TaskGroup.builder().name("bounded-churn").maxConcurrency(1).build();
    g.run(
        () -> {
          Task<Void> spawner =
              g.fork(
                  () -> {
                    // Holds the one place while it forks: the forks wait in their own threads.
                    holderIn.countDown();
                    for (int b = 0; b < n / batch; b++) {
                      List<Task<Void>> waiting = new ArrayList<>(batch);
                      for (int i = 0; i < batch; i++) {
                        byte[] held = new byte[128];
                        Task<Void> t =
                            g.fork(
                                () -> {
                                  ran.incrementAndGet();
                                  assertThat(held).isNotNull();
                                });
                        if (i % 100 == 0) {
                          sample.add(new WeakReference<>(t));
                          sample.add(new WeakReference<>(held));
                        }
                        waiting.add(t);
                      }
                      for (Task<Void> t : waiting) {
                        t.cancel(true);
                      }
                      for (Task<Void> t : waiting) {
                        assertThat(t.state())
                            .isEqualTo(java.util.concurrent.Future.State.CANCELLED);
                      }
                    }
                    allCancelled.countDown();
                    releaseHolder.await();
                  });
          holderIn.await();
          // Every batch first: between two batches the queue of waiting forks is empty too, and
          // the sample is still growing.
          allCancelled.await();
          Probes.awaitTrue(
              "every cancelled fork left the group",
              Duration.ofSeconds(20),
              () -> Internals.placesQueueLength(g) == 0 && Internals.liveChildren(g) == 1);
          assertThat(Probes.awaitCleared(sample))
              .as("forks cancelled while waiting for a place still reachable")
              .isZero();
          releaseHolder.countDown();
          spawner.get();
          assertThat(ran).as("a fork cancelled while waiting ran its work").hasValue(0);
          // The holder gives its place back just after its outcome is set (TaskImpl.report):
          // get() may return first.
          Probes.awaitTrue(
              "the holder's place is back",
              Duration.ofSeconds(10),
              () -> Internals.availablePlaces(g) == 1);
        });
  }

  // ---- context propagators ------------------------------------------------------------------

  /**
   * 20 000 children under a context propagator that captures a context per fork (a request's MDC
   * map, a span): every captured context is garbage once its child ended, while the group runs on.
   * Closest upstream: OpenTelemetry's Context.wrap and Kotlin's ThreadContextElement (a restored
   * context is not kept by the dispatcher).
   */
  @RepeatedTest(2)
  void contextsCapturedForChildrenAreNotKept() throws Exception {
    int n = 20_000;
    List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
    AtomicLong forks = new AtomicLong();
    ThreadLocal<byte[]> current = new ThreadLocal<>();
    TaskGroup g =
        TaskGroup.builder()
            .name("propagated-churn")
            .contextPropagator(
                work -> {
                  byte[] context = new byte[256];
                  if (forks.getAndIncrement() % 200 == 0) {
                    sample.add(new WeakReference<>(context));
                  }
                  return () -> {
                    current.set(context);
                    try {
                      work.run();
                    } finally {
                      current.remove();
                    }
                  };
                })
            .build();
    g.run(
        () -> {
          CountDownLatch done = new CountDownLatch(n);
          for (int i = 0; i < n; i++) {
            g.fork(
                () -> {
                  try {
                    assertThat(current.get()).hasSize(256);
                  } finally {
                    done.countDown();
                  }
                });
          }
          done.await();
          assertThat(Probes.awaitCleared(sample))
              .as("contexts captured for ended children still reachable")
              .isZero();
        });
  }

  // ---- diagnostics taken during the churn ---------------------------------------------------

  /**
   * TaskTree.capture(), the JMX bean's format operation and the stuck warning's text, taken every
   * 500 children of a 6 000-child churn, never show a child whose get() returned before the capture
   * began (TaskTree: "a capture leaves finished nodes out"); and 2 000 short-lived platform threads
   * that entered a scope and ended are not kept by the tree's registry (internal/TreeRoots.java).
   * Closest upstream: CPython's asyncio pstree tests (test_asyncio/test_tools, from memory).
   */
  @RepeatedTest(2)
  void diagnosticsTakenDuringChurnShowNoFinishedChild() throws Exception {
    int n = 6_000;
    int every = 500;
    javax.management.MBeanServer server =
        java.lang.management.ManagementFactory.getPlatformMBeanServer();
    javax.management.ObjectName bean =
        new javax.management.ObjectName("dev.taskgroup:type=TaskTree");
    Probes.awaitTrue(
        "the tree bean registered", Duration.ofSeconds(10), () -> server.isRegistered(bean));
    String tag = "churn" + System.nanoTime() + "-";
    TaskGroup g = TaskGroup.named(tag + "group");
    g.run(
        () -> {
          CountDownLatch hold = new CountDownLatch(1);
          Task<Void> alive = g.fork(tag + "alive", () -> hold.await());
          List<String> finished = new ArrayList<>();
          for (int i = 0; i < n; i++) {
            String name = tag + "c" + i + ".";
            Task<Integer> t = g.fork(name, () -> 1);
            assertThat(t.get()).isEqualTo(1);
            finished.add(name);
            if (i % every == every - 1) {
              String tree = TaskTree.capture().format();
              String json = TaskTree.capture().toJson();
              String jmx = (String) server.invoke(bean, "format", null, null);
              String stuck = Internals.stuckWarningText(g);
              for (String f : finished) {
                assertThat(tree).as("capture").doesNotContain("'" + f + "'");
                assertThat(json).as("capture json").doesNotContain(f);
                assertThat(jmx).as("JMX format").doesNotContain("'" + f + "'");
                assertThat(stuck).as("stuck warning").doesNotContain("'" + f + "'");
              }
              assertThat(tree).contains("'" + tag + "alive'");
              assertThat(stuck).contains("'" + tag + "alive'");
              finished.clear();
            }
          }
          hold.countDown();
          alive.get();
        });
    // Short-lived platform threads that entered a scope: the registry keeps none once they ended.
    int threads = 2_000;
    TaskTree.capture(); // sweeps the registry: what other tests left is counted before
    int before = Internals.treeRootsSize();
    List<WeakReference<Object>> ended = new ArrayList<>();
    for (int i = 0; i < threads; i++) {
      Thread t =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      CancelScope.create().run(() -> {});
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  });
      t.join();
      if (i % 20 == 0) {
        ended.add(new WeakReference<>(t));
      }
    }
    assertThat(Probes.awaitCleared(ended)).as("ended threads kept").isZero();
    TaskTree.capture(); // sweeps the registry
    int registered = Internals.treeRootsSize();
    System.out.println("tree registry after " + threads + " ended threads: " + registered);
    assertThat(registered)
        .as("tree registry entries after %d scope-entering threads ended", threads)
        .isLessThanOrEqualTo(before + 64);
  }

  // ---- the test clock -----------------------------------------------------------------------

  /**
   * Under a test clock (the kit's VirtualClock installs one through LibraryClock.install; stood in
   * here by a clock that moves only when told), 10 000 children run nested timeouts that exit
   * before, are cancelled, or are forked into an already cancelled group; and 1 000 platform
   * threads enter and leave a scope: the set of clocked threads (internal/ClockedThreads.java) is
   * back to the threads still inside, with no snapshot ever taken, and keeps no finished task.
   * Closest upstream: Trio's MockClock with autojump_threshold (from memory).
   */
  @RepeatedTest(2)
  void clockedThreadsKeepNoFinishedChildUnderATestClock() throws Exception {
    int n = 10_000;
    SteppedClock clock = new SteppedClock();
    LibraryClock.install(clock);
    try {
      List<WeakReference<Object>> sample = Collections.synchronizedList(new ArrayList<>());
      TaskGroup g = TaskGroup.named("clocked-churn");
      g.run(
          () -> {
            for (int i = 0; i < n; i++) {
              int kind = i % 3;
              Task<byte[]> t =
                  g.fork(
                      () -> {
                        byte[] r = new byte[128];
                        CancelScope.withTimeout(Duration.ofHours(1))
                            .run(
                                () -> {
                                  if (kind == 1) {
                                    CancelScope.create().run(() -> new CountDownLatch(1).await());
                                  }
                                });
                        return r;
                      });
              if (kind == 1) {
                t.cancel(true);
              }
              if (i % 100 == 0) {
                sample.add(new WeakReference<>(t));
              }
            }
            // A child cancelled before its thread began runs none of its code (Task's javadoc):
            // wait for the group's list of children, not for the children's own signal.
            Probes.awaitTrue(
                "every child left the group",
                Duration.ofSeconds(20),
                () -> Internals.liveChildren(g) == 0);
            // Children forked into a cancelled nested group never run.
            TaskGroup cancelled = TaskGroup.named("clocked-cancelled");
            cancelled.run(
                () -> {
                  cancelled.cancel();
                  for (int i = 0; i < 1_000; i++) {
                    Task<Void> t = cancelled.fork(() -> {});
                    if (i % 100 == 0) {
                      sample.add(new WeakReference<>(t));
                    }
                  }
                });
            for (int i = 0; i < 1_000; i++) {
              Thread t =
                  Thread.ofPlatform()
                      .start(
                          () -> {
                            try {
                              CancelScope.withTimeout(Duration.ofHours(1)).run(() -> {});
                            } catch (InterruptedException e) {
                              throw new AssertionError(e);
                            }
                          });
              t.join();
              if (i % 100 == 0) {
                sample.add(new WeakReference<>(t));
              }
            }
            Probes.awaitTrue(
                "finished children untracked",
                Duration.ofSeconds(10),
                () -> Internals.clockedSize() <= 2);
            assertThat(Probes.awaitCleared(sample))
                .as("finished children or ended threads kept under a test clock")
                .isZero();
          });
    } finally {
      LibraryClock.uninstall(clock);
    }
  }

  /** A test clock that moves only when told (the kit's VirtualClock seam, LibraryClock.install). */
  private static final class SteppedClock implements TimeSource {
    private final long baseNanos = LibraryClock.nanoTime();
    private final Instant baseInstant = LibraryClock.instant();
    private final AtomicLong now = new AtomicLong(baseNanos);

    @Override
    public long nanoTime() {
      return now.get();
    }

    @Override
    public Instant instant() {
      return baseInstant.plusNanos(now.get() - baseNanos);
    }

    @Override
    public void parkUntil(long deadlineNanos) {
      LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(1)); // callers re-check
    }
  }

  // ---- internal sizes (no public view exists) ---------------------------------------------

  /** Reads internal sizes by reflection: the tests run inside the library's module. */
  static final class Internals {
    private Internals() {}

    static Object field(Object o, String name) throws ReflectiveOperationException {
      Class<?> c = o.getClass();
      while (c != null) {
        try {
          Field f = c.getDeclaredField(name);
          f.setAccessible(true);
          return f.get(o);
        } catch (NoSuchFieldException next) {
          c = c.getSuperclass();
        }
      }
      throw new NoSuchFieldException(name);
    }

    static Object staticField(String cls, String name) throws ReflectiveOperationException {
      Field f = Class.forName(cls).getDeclaredField(name);
      f.setAccessible(true);
      return f.get(null);
    }

    static Object call(Object o, String cls, String method) throws ReflectiveOperationException {
      Method m = Class.forName(cls).getDeclaredMethod(method);
      m.setAccessible(true);
      return m.invoke(o);
    }

    static Object group(TaskGroup g) throws ReflectiveOperationException {
      return field(g, "group");
    }

    /** The capacity of a JudgedFailures table, 0 when none was made. */
    static int tableCapacity(Object judged) throws ReflectiveOperationException {
      return judged == null ? 0 : ((Object[]) field(judged, "table")).length;
    }

    static int reportedCapacity(TaskGroup g) throws ReflectiveOperationException {
      Object grp = group(g);
      synchronized (grp) {
        Object failures = field(grp, "failures"); // GroupFailures, made on the first failure
        return failures == null ? 0 : tableCapacity(field(failures, "reported"));
      }
    }

    static Object ownState() throws ReflectiveOperationException {
      return call(null, "dev.taskgroup.internal.ThreadState", "current");
    }

    static int ownJudgedCapacity() throws ReflectiveOperationException {
      return tableCapacity(
          call(ownState(), "dev.taskgroup.internal.ThreadState", "judgedFailures"));
    }

    static int countHooks(Object first) throws ReflectiveOperationException {
      int n = 0;
      for (Object h = first; h != null; h = field(h, "next")) {
        n++;
      }
      return n;
    }

    static int ownRootHookCount() throws ReflectiveOperationException {
      return countHooks(call(ownState(), "dev.taskgroup.internal.OwnThread", "hooks"));
    }

    static int hookCount(TaskGroup g) throws ReflectiveOperationException {
      return countHooks(call(group(g), "dev.taskgroup.internal.EnteredScope", "hooks"));
    }

    static int deadlineHeapCapacity() throws ReflectiveOperationException {
      return (int) call(null, "dev.taskgroup.internal.Deadlines", "heapCapacity");
    }

    static int placesQueueLength(TaskGroup g) {
      try {
        return (int)
            call(field(group(g), "places"), "dev.taskgroup.internal.Places", "getQueueLength");
      } catch (ReflectiveOperationException e) {
        throw new AssertionError(e);
      }
    }

    static int availablePlaces(TaskGroup g) {
      try {
        return (int)
            call(field(group(g), "places"), "dev.taskgroup.internal.Places", "availablePermits");
      } catch (ReflectiveOperationException e) {
        throw new IllegalStateException(e);
      }
    }

    static int liveChildren(TaskGroup g) {
      try {
        Object list = field(group(g), "children");
        int[] n = {0};
        Method m =
            Class.forName("dev.taskgroup.internal.ChildList")
                .getDeclaredMethod("forEachLive", java.util.function.Consumer.class);
        m.setAccessible(true);
        m.invoke(list, (java.util.function.Consumer<Object>) t -> n[0]++);
        return n[0];
      } catch (ReflectiveOperationException e) {
        throw new AssertionError(e);
      }
    }

    static String stuckWarningText(TaskGroup g) throws ReflectiveOperationException {
      Method m =
          Class.forName("dev.taskgroup.internal.StuckWarning")
              .getDeclaredMethod("message", Class.forName("dev.taskgroup.internal.Group"));
      m.setAccessible(true);
      return (String) m.invoke(null, group(g));
    }

    static int treeRootsSize() throws ReflectiveOperationException {
      return ((Set<?>) staticField("dev.taskgroup.internal.TreeRoots", "STATES")).size();
    }

    static int clockedSize() {
      try {
        return ((Set<?>) staticField("dev.taskgroup.internal.ClockedThreads", "TRACKED")).size();
      } catch (ReflectiveOperationException e) {
        throw new AssertionError(e);
      }
    }
  }
}
