package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code Task} as a {@link Future}, {@code Task.toCompletableFuture()}, {@code CancelScope.await},
 * {@code onCancel}/{@code closeOnCancel} and {@code cooperative()}: edges the other classes miss,
 * with scenarios learnt from OpenJDK's FutureTask / CompletableFuture / Future.state() tests and
 * CPython's asyncio Task/Future tests.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FutureContractTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static TaskGroup collect() {
    return TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
  }

  // ---- Task as a Future --------------------------------------------------------------------

  @Test
  void stateAndNowMethodsInEveryPhase() throws Exception {
    // JDK Future.state()/resultNow()/exceptionNow() tests (FutureTask): ISE in the wrong state.
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = collect();
    CountDownLatch go = new CountDownLatch(1);
    AtomicReference<Task<String>> running = new AtomicReference<>();
    AtomicReference<Task<String>> ok = new AtomicReference<>();
    AtomicReference<Task<String>> failed = new AtomicReference<>();
    AtomicReference<Task<String>> cancelled = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      running.set(
                          group.fork(
                              () -> {
                                go.await();
                                return "late";
                              }));
                      Task<String> r = running.get();
                      assertThat(r.state()).isEqualTo(Future.State.RUNNING);
                      assertThat(r.isDone()).isFalse();
                      assertThat(r.isCancelled()).isFalse();
                      assertThat(catchThrowable(r::resultNow))
                          .isInstanceOf(IllegalStateException.class);
                      assertThat(catchThrowable(r::exceptionNow))
                          .isInstanceOf(IllegalStateException.class);
                      ok.set(group.fork(() -> "v"));
                      failed.set(
                          group.fork(
                              () -> {
                                throw boom;
                              }));
                      cancelled.set(
                          group.fork(
                              () -> {
                                Thread.sleep(30_000);
                                return "never";
                              }));
                      assertThat(cancelled.get().cancel(true)).isTrue();
                      assertThat(ok.get().get()).isEqualTo("v");
                      assertThat(catchThrowable(() -> failed.get().get()))
                          .isInstanceOf(ExecutionException.class)
                          .hasCause(boom);
                      go.countDown();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);

    assertThat(running.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(ok.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(ok.get().resultNow()).isEqualTo("v");
    assertThat(catchThrowable(() -> ok.get().exceptionNow()))
        .isInstanceOf(IllegalStateException.class);

    Task<String> f = failed.get();
    assertThat(f.state()).isEqualTo(Future.State.FAILED);
    assertThat(f.isDone()).isTrue();
    assertThat(f.isCancelled()).isFalse();
    assertThat(f.exceptionNow()).isSameAs(boom);
    assertThat(catchThrowable(f::resultNow)).isInstanceOf(IllegalStateException.class);

    Task<String> c = cancelled.get();
    assertThat(c.state()).isEqualTo(Future.State.CANCELLED);
    assertThat(c.isDone()).isTrue();
    assertThat(c.isCancelled()).isTrue();
    assertThat(catchThrowable(c::resultNow)).isInstanceOf(IllegalStateException.class);
    assertThat(catchThrowable(c::exceptionNow)).isInstanceOf(IllegalStateException.class);
    assertThat(catchThrowable(c::get)).isInstanceOf(CancellationException.class);
  }

  @Test
  void aNullResultIsASuccess() throws Exception {
    // JDK FutureTask tests: a callable returning null; resultNow() returns null, state SUCCESS.
    TaskGroup group = TaskGroup.create();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(() -> task.set(group.fork(() -> (String) null)));
    Task<String> t = task.get();
    assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
    assertThat(t.get()).isNull();
    assertThat(t.get(0, TimeUnit.SECONDS)).isNull();
    assertThat(t.resultNow()).isNull();
    assertThat(t.toCompletableFuture()).isCompletedWithValue(null);
  }

  @Test
  void zeroAndNegativeTimeoutsOnARunningTaskThrowTimeoutException() throws Exception {
    // FutureTask timed get with nanos <= 0: returns promptly with TimeoutException if not done.
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    group.run(
        () -> {
          Task<String> t =
              group.fork(
                  () -> {
                    go.await();
                    return "r";
                  });
          for (long timeout : new long[] {0L, -1L}) {
            assertThat(catchThrowable(() -> t.get(timeout, TimeUnit.NANOSECONDS)))
                .as("timeout %d", timeout)
                .isInstanceOf(TimeoutException.class);
          }
          assertThat(t.state()).isEqualTo(Future.State.RUNNING);
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
          go.countDown();
          assertThat(t.get(Long.MAX_VALUE, TimeUnit.DAYS)).isEqualTo("r");
        });
  }

  @Test
  void zeroAndNegativeTimeoutsOnADoneTaskReportTheOutcome() throws Exception {
    // FutureTask: timed get of a completed task with a non-positive timeout reports the outcome.
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = collect();
    AtomicReference<Task<String>> ok = new AtomicReference<>();
    AtomicReference<Task<String>> bad = new AtomicReference<>();
    catchThrowable(
        () ->
            group.run(
                () -> {
                  ok.set(group.fork(() -> "r"));
                  bad.set(
                      group.fork(
                          () -> {
                            throw boom;
                          }));
                }));
    assertThat(ok.get().get(0, TimeUnit.SECONDS)).isEqualTo("r");
    assertThat(ok.get().get(-5, TimeUnit.SECONDS)).isEqualTo("r");
    assertThat(catchThrowable(() -> bad.get().get(-5, TimeUnit.SECONDS)))
        .isInstanceOf(ExecutionException.class)
        .hasCause(boom);
  }

  @RepeatedTest(10)
  void cancelFalseStillInterruptsAndKeepsInterruptingAWorkThatSwallows() throws Exception {
    // Task javadoc: "cancels this task's own cancel scope, whatever the flag ... keeps being
    // interrupted if it swallows the interrupt, until the work ends" and "a result that arrives
    // later is dropped" (asyncio: a task that swallows CancelledError).
    TaskGroup group = TaskGroup.create();
    CountDownLatch running = new CountDownLatch(1);
    AtomicInteger interrupts = new AtomicInteger();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    running.countDown();
                    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                    while (interrupts.get() < 3 && System.nanoTime() < end) {
                      try {
                        Thread.sleep(30_000); // stands for a blocking call
                      } catch (InterruptedException swallowed) {
                        interrupts.incrementAndGet();
                      }
                    }
                    return "late";
                  }));
          running.await();
          assertThat(task.get().cancel(false)).isTrue();
          assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
          assertThat(catchThrowable(() -> task.get().get()))
              .isInstanceOf(CancellationException.class);
        });
    assertThat(interrupts.get()).as("interrupted again after swallowing").isEqualTo(3);
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(group.cancelCalled()).as("only the task was cancelled").isFalse();
  }

  @Test
  void cancelAfterCompletionReturnsFalseAndChangesNothing() throws Exception {
    // Future.cancel: "returns false if the task could not be cancelled, typically because it has
    // already completed"; JDK FutureTask cancel-after-set tests; asyncio test_cancel_done_future.
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = collect();
    AtomicReference<Task<String>> ok = new AtomicReference<>();
    AtomicReference<Task<String>> bad = new AtomicReference<>();
    catchThrowable(
        () ->
            group.run(
                () -> {
                  ok.set(group.fork(() -> "r"));
                  bad.set(
                      group.fork(
                          () -> {
                            throw boom;
                          }));
                  ok.get().get();
                  catchThrowable(() -> bad.get().get());
                  for (boolean flag : new boolean[] {false, true}) {
                    assertThat(ok.get().cancel(flag)).isFalse();
                    assertThat(bad.get().cancel(flag)).isFalse();
                    assertThat(ok.get().toCompletableFuture().cancel(flag)).isFalse();
                  }
                }));
    assertThat(ok.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(ok.get().isCancelled()).isFalse();
    assertThat(ok.get().get()).isEqualTo("r");
    assertThat(ok.get().toCompletableFuture()).isCompletedWithValue("r");
    assertThat(bad.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(bad.get().exceptionNow()).isSameAs(boom);
  }

  @Test
  void aSecondCancelReturnsFalse() throws Exception {
    // JDK FutureTask: cancel twice, the second returns false (asyncio: cancel() on a cancelled
    // task returns False once done).
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          Task<Void> t = group.fork(() -> Thread.sleep(30_000));
          assertThat(t.cancel(true)).isTrue();
          assertThat(t.cancel(true)).isFalse();
          assertThat(t.cancel(false)).isFalse();
          assertThat(t.toCompletableFuture().cancel(true)).as("the future is cancelled").isTrue();
          assertThat(t.isCancelled()).isTrue();
        });
  }

  @Test
  void aTaskForkedIntoACancelledGroupIsCancelledAndReadFromOutsideThrowsCancellation()
      throws Exception {
    // Task javadoc: CANCELLED "when it was forked into a group that was already cancelled and
    // never started"; get() throws CancellationException (caller not cancelled).
    TaskGroup group = TaskGroup.create();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(
        () -> {
          group.cancel();
          task.set(
              group.fork(
                  () -> {
                    ran.set(true);
                    return "x";
                  }));
        });
    Task<String> t = task.get();
    assertThat(ran).isFalse();
    assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
    assertThat(t.isDone()).isTrue();
    assertThat(t.cancel(true)).isFalse();
    assertThat(catchThrowable(t::get)).isInstanceOf(CancellationException.class);
    assertThat(catchThrowable(() -> t.get(1, TimeUnit.SECONDS)))
        .isInstanceOf(CancellationException.class);
    assertThat(t.toCompletableFuture()).isCancelled();
  }

  @Test
  void getOfATaskCancelledBeforeStartFromTheCancelledBodyIsACheckpoint() throws Exception {
    // Task javadoc: "when the calling thread is effectively cancelled ... and the task ... was
    // cancelled ... they throw InterruptedException (leaving the interrupt status set)".
    TaskGroup group = TaskGroup.create();
    AtomicReference<Throwable> untimed = new AtomicReference<>();
    AtomicReference<Throwable> timed = new AtomicReference<>();
    AtomicBoolean statusAfter = new AtomicBoolean();
    group.run(
        () -> {
          group.cancel();
          Task<String> t = group.fork(() -> "x");
          untimed.set(catchThrowable(t::get));
          timed.set(catchThrowable(() -> t.get(0, TimeUnit.SECONDS)));
          statusAfter.set(Thread.currentThread().isInterrupted());
        });
    assertThat(untimed.get()).isInstanceOf(InterruptedException.class);
    assertThat(timed.get()).isInstanceOf(InterruptedException.class);
    assertThat(statusAfter).as("interrupt status left set").isTrue();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void workThrowingCancellationExceptionWhileNotCancelledIsAFailure() throws Exception {
    // CancelScope javadoc: CancellationException counts as a cancellation only "for a thread that
    // is effectively cancelled"; Task: FAILED "when it threw anything that is not a cancellation".
    CancellationException own = new CancellationException("my own");
    TaskGroup group = collect();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () ->
                        task.set(
                            group.fork(
                                () -> {
                                  throw own;
                                }))));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(own);
    Task<String> t = task.get();
    assertThat(t.state()).isEqualTo(Future.State.FAILED);
    assertThat(t.isCancelled()).isFalse();
    assertThat(t.exceptionNow()).isSameAs(own);
    assertThat(catchThrowable(t::get)).isInstanceOf(ExecutionException.class).hasCause(own);
    CompletableFuture<String> f = t.toCompletableFuture();
    Throwable seen = f.handle((r, e) -> e).join();
    assertThat(seen)
        .as("completed exceptionally with it, wrapped so that the future does not look cancelled")
        .isInstanceOf(CompletionException.class)
        .hasCause(own);
  }

  @Test
  void futureOfATaskThatFailedWithCancellationExceptionDoesNotLookCancelled() throws Exception {
    // Task.toCompletableFuture javadoc: "completed when the task is (normally with its result,
    // exceptionally with its failure, or cancelled)": a FAILED task's future is not CANCELLED.
    CancellationException own = new CancellationException("my own");
    TaskGroup group = collect();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    catchThrowable(
        () ->
            group.run(
                () ->
                    task.set(
                        group.fork(
                            () -> {
                              throw own;
                            }))));
    CompletableFuture<String> f = task.get().toCompletableFuture();
    assertThat(task.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(f.state()).as("future of a FAILED task").isEqualTo(Future.State.FAILED);
    assertThat(f.isCancelled()).isFalse();
    assertThat(catchThrowable(f::get)).isInstanceOf(ExecutionException.class).hasCause(own);
  }

  @Test
  void workThrowingInterruptedExceptionWhileNotCancelledIsAFailure() throws Exception {
    // asyncio: a task raising an exception of its own; Task: FAILED for anything not a
    // cancellation, an InterruptedException included when nothing is cancelled.
    InterruptedException own = new InterruptedException("my own");
    TaskGroup group = collect();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () ->
                        task.set(
                            group.fork(
                                () -> {
                                  throw own;
                                }))));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(own);
    assertThat(task.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(catchThrowable(() -> task.get().get()))
        .isInstanceOf(ExecutionException.class)
        .hasCause(own);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @RepeatedTest(10)
  void timedGetOfAFailedTaskFromTheCancelledBodyThrowsInterruptedAndTheFailureCountsOnce()
      throws Exception {
    // Task javadoc: "the group reports the child's failure once, whatever the order of the
    // failure, the cancellation and the get()" -- here the timed get.
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = TaskGroup.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      Task<Void> t =
                          group.fork(
                              () -> {
                                throw boom;
                              });
                      seen.set(catchThrowable(() -> t.get(20, TimeUnit.SECONDS)));
                      status.set(Thread.currentThread().isInterrupted());
                      if (seen.get() instanceof ExecutionException e) {
                        throw e; // as a body that rethrows would
                      }
                    }));
    assertThat(seen.get()).isInstanceOf(InterruptedException.class);
    assertThat(status).as("status left set").isTrue();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @RepeatedTest(10)
  void zeroTimeoutGetFromACancelledCallerOnARunningTaskLeavesTheStatusSet() throws Exception {
    // Task javadoc: a checkpoint "throw[s] InterruptedException (leaving the interrupt status
    // set)"; a zero timeout does not wait, so TimeoutException is also acceptable.
    TaskGroup group = TaskGroup.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean();
    group.run(
        () -> {
          Task<Void> t = group.fork(() -> Thread.sleep(30_000));
          group.cancel();
          seen.set(catchThrowable(() -> t.get(0, TimeUnit.SECONDS)));
          status.set(Thread.currentThread().isInterrupted());
        });
    assertThat(seen.get()).isInstanceOfAny(InterruptedException.class, TimeoutException.class);
    assertThat(status).as("the cancellation's interrupt stays set").isTrue();
    assertThat(group.cancelCaught()).isTrue();
  }

  @RepeatedTest(10)
  void timedGetNoticesACancellationThatArrivesWhileWaiting() throws Exception {
    // Task javadoc: get(timeout) is a checkpoint "when the calling thread is, or becomes"
    // cancelled; JDK FutureTask timed get interrupted while waiting.
    TaskGroup group = TaskGroup.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean();
    group.run(
        () -> {
          Task<Void> t = group.fork(() -> Thread.sleep(30_000));
          Thread me = Thread.currentThread();
          Thread.ofVirtual()
              .start(
                  () -> {
                    Probes.awaitWaiting(me, Duration.ofSeconds(10));
                    group.cancel();
                  });
          seen.set(catchThrowable(() -> t.get(30, TimeUnit.SECONDS)));
          status.set(Thread.currentThread().isInterrupted());
        });
    assertThat(seen.get()).isInstanceOf(InterruptedException.class);
    assertThat(status).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @RepeatedTest(10)
  void anOutsideThreadsTimedGetInterruptedThrowsClearsTheStatusAndLeavesTheTask() throws Exception {
    // JDK FutureTask: get interrupted -> InterruptedException, status cleared, task unaffected.
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean(true);
    group.run(
        () -> {
          Task<String> t =
              group.fork(
                  () -> {
                    go.await();
                    return "r";
                  });
          Thread outside =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        seen.set(catchThrowable(() -> t.get(30, TimeUnit.SECONDS)));
                        status.set(Thread.currentThread().isInterrupted());
                      });
          Probes.awaitWaiting(outside, Duration.ofSeconds(10));
          outside.interrupt();
          outside.join();
          assertThat(t.state()).isEqualTo(Future.State.RUNNING);
          go.countDown();
          assertThat(t.get()).isEqualTo("r");
        });
    assertThat(seen.get()).isInstanceOf(InterruptedException.class);
    assertThat(status).as("status cleared, as JDK waits do").isFalse();
  }

  @Test
  void anInterruptedOutsideThreadStillReadsACompletedTask() throws Exception {
    // JDK FutureTask: get() of a done task returns even with the interrupt status set, and leaves
    // the status alone.
    TaskGroup group = TaskGroup.create();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(() -> task.set(group.fork(() -> "r")));
    Probes.onThread(
        Fixtures.ThreadKind.PLATFORM,
        () -> {
          Thread.currentThread().interrupt();
          assertThat(task.get().get()).isEqualTo("r");
          assertThat(task.get().get(1, TimeUnit.SECONDS)).isEqualTo("r");
          assertThat(Thread.currentThread().isInterrupted()).isTrue();
        });
  }

  @Test
  void aResultThatArrivedIsReturnedToACancelledCaller() throws Exception {
    // Task javadoc: "A result that has arrived is returned all the same."
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          Task<String> t = group.fork(() -> "r");
          while (!t.isDone()) {
            Thread.onSpinWait();
          }
          group.cancel();
          assertThat(t.get()).isEqualTo("r");
          assertThat(t.get(0, TimeUnit.SECONDS)).isEqualTo("r");
          assertThat(t.get(-1, TimeUnit.SECONDS)).isEqualTo("r");
        });
    assertThat(group.cancelCaught()).isTrue();
  }

  @RepeatedTest(10)
  void aLateFailureAfterCancelIsAGroupFailureButTheTaskStaysCancelled() throws Exception {
    // Task javadoc: "Once cancel returns true the state is CANCELLED ... A failure that arrives
    // later is still a failure of the group: failures are never lost."
    IllegalStateException late = new IllegalStateException("late");
    TaskGroup group = TaskGroup.create();
    CountDownLatch running = new CountDownLatch(1);
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      task.set(
                          group.fork(
                              () -> {
                                running.countDown();
                                try {
                                  Thread.sleep(30_000);
                                } finally {
                                  throw late;
                                }
                              }));
                      running.await();
                      CompletableFuture<Void> f = task.get().toCompletableFuture();
                      assertThat(task.get().cancel(true)).isTrue();
                      assertThat(f).isCancelled();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(late);
    Task<Void> t = task.get();
    assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
    assertThat(catchThrowable(t::exceptionNow)).isInstanceOf(IllegalStateException.class);
    assertThat(t.toCompletableFuture()).isCancelled();
  }

  @RepeatedTest(10)
  void getWaitersAreReleasedByCancel() throws Exception {
    // JDK FutureTask: cancel releases threads blocked in get() with CancellationException.
    TaskGroup group = TaskGroup.create();
    List<Throwable> seen = java.util.Collections.synchronizedList(new ArrayList<>());
    group.run(
        () -> {
          Task<Void> t = group.fork(() -> Thread.sleep(30_000));
          List<Thread> waiters = new ArrayList<>();
          for (int i = 0; i < 3; i++) {
            waiters.add(Thread.ofVirtual().start(() -> seen.add(catchThrowable(t::get))));
            waiters.add(
                Thread.ofPlatform()
                    .start(() -> seen.add(catchThrowable(() -> t.get(30, TimeUnit.SECONDS)))));
          }
          for (Thread w : waiters) {
            Probes.awaitWaiting(w, Duration.ofSeconds(10));
          }
          assertThat(t.cancel(false)).isTrue();
          for (Thread w : waiters) {
            assertThat(w.join(Duration.ofSeconds(10))).as("%s released", w).isTrue();
          }
        });
    assertThat(seen).hasSize(6).allMatch(e -> e instanceof CancellationException);
  }

  @Test
  void aWaiterThatTimedOutIsNotKeptReachableByTheRunningTask() throws Exception {
    // JDK FutureTask removeWaiter: a get() that timed out or was interrupted unlinks its node, so
    // a finished waiter thread is not kept reachable by a task that runs on.
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    group.run(
        () -> {
          Task<Void> t = group.fork(() -> go.await());
          List<WeakReference<Thread>> refs = new ArrayList<>();
          for (int i = 0; i < 20; i++) {
            Thread w =
                Thread.ofPlatform()
                    .start(() -> catchThrowable(() -> t.get(1, TimeUnit.MILLISECONDS)));
            w.join();
            refs.add(new WeakReference<>(w));
          }
          int alive = Probes.awaitCleared(refs);
          go.countDown();
          t.get();
          assertThat(Probes.awaitCleared(refs))
              .as("control: collectable once the task is done")
              .isZero();
          assertThat(alive).as("finished waiter threads still reachable from the task").isZero();
        });
  }

  @Test
  void aHugeNegativeTimeoutOnARunningTaskThrowsTimeoutExceptionAtOnce() throws Exception {
    // Future.get(timeout): "Waits if necessary for at most the given time"; JDK
    // FutureTask.awaitDone:
    // "if nanos == Long.MIN_VALUE, don't underflow". TimeUnit.toNanos saturates large negatives.
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    group.run(
        () -> {
          Task<String> t =
              group.fork(
                  () -> {
                    go.await();
                    return "r";
                  });
          try {
            for (long[] timeout :
                new long[][] {{Long.MIN_VALUE, 0}, {-Long.MAX_VALUE, 0}, {-1_000_000L, 1}}) {
              TimeUnit unit = timeout[1] == 0 ? TimeUnit.NANOSECONDS : TimeUnit.DAYS;
              Probes.onThread(
                  Fixtures.ThreadKind.PLATFORM,
                  Duration.ofSeconds(5),
                  () ->
                      assertThat(catchThrowable(() -> t.get(timeout[0], unit)))
                          .as("get(%d, %s)", timeout[0], unit)
                          .isInstanceOf(TimeoutException.class));
            }
          } finally {
            go.countDown();
          }
        });
  }

  // ---- toCompletableFuture -----------------------------------------------------------------

  @RepeatedTest(20)
  void theFutureMadeWhileTheTaskCompletesIsCompletedAndTheSameEverywhere() throws Exception {
    // Task javadoc: "the same future on every call, completed when the task is".
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    List<CompletableFuture<Integer>> seen =
        java.util.Collections.synchronizedList(new ArrayList<>());
    AtomicReference<Task<Integer>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    go.await();
                    return 42;
                  }));
          List<Thread> makers = new ArrayList<>();
          for (int i = 0; i < 4; i++) {
            makers.add(Thread.ofPlatform().start(() -> seen.add(task.get().toCompletableFuture())));
          }
          go.countDown();
          for (Thread m : makers) {
            m.join();
          }
        });
    assertThat(seen).hasSize(4);
    CompletableFuture<Integer> first = seen.get(0);
    assertThat(seen).allMatch(f -> f == first);
    assertThat(task.get().toCompletableFuture()).isSameAs(first);
    assertThat(first).isCompletedWithValue(42);
  }

  @Test
  void obtrudingTheFutureAfterCompletionDoesNotAffectTheTask() throws Exception {
    // Task javadoc: "completing it from outside does not affect the task"; OpenJDK
    // CompletableFutureTest obtrudeValue/obtrudeException.
    TaskGroup group = TaskGroup.create();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(() -> task.set(group.fork(() -> "real")));
    Task<String> t = task.get();
    CompletableFuture<String> f = t.toCompletableFuture();
    f.obtrudeValue("fake");
    assertThat(f.join()).isEqualTo("fake");
    f.obtrudeException(new IllegalStateException("fake"));
    assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
    assertThat(t.get()).isEqualTo("real");
    assertThat(t.resultNow()).isEqualTo("real");
    assertThat(t.toCompletableFuture()).isSameAs(f);
  }

  @Test
  void completingTheFutureExceptionallyFromOutsideDoesNotAffectTheTaskOrTheGroup()
      throws Exception {
    // Task javadoc: "completing it from outside does not affect the task".
    TaskGroup group = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    go.await();
                    return "real";
                  }));
          CompletableFuture<String> f = task.get().toCompletableFuture();
          assertThat(f.completeExceptionally(new IllegalStateException("outside"))).isTrue();
          assertThat(f.cancel(true)).as("the future is already done").isFalse();
          assertThat(task.get().state()).isEqualTo(Future.State.RUNNING);
          go.countDown();
        });
    assertThat(task.get().get()).isEqualTo("real");
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(group.cancelCalled()).isFalse();
  }

  @Test
  void dependentStagesRunForEveryOutcomeAndTheirFailuresStayOutOfTheGroup() throws Exception {
    // Task javadoc snippet: price.toCompletableFuture().thenApply(...); CompletableFutureTest
    // dependent stages after normal/exceptional/cancelled completion.
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = collect();
    AtomicReference<CompletableFuture<String>> okDep = new AtomicReference<>();
    AtomicReference<CompletableFuture<Throwable>> badDep = new AtomicReference<>();
    AtomicReference<CompletableFuture<Boolean>> cancelledDep = new AtomicReference<>();
    AtomicReference<CompletableFuture<String>> throwingDep = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      Task<Integer> ok = group.fork(() -> 7);
                      okDep.set(ok.toCompletableFuture().thenApply(i -> "v" + i));
                      throwingDep.set(
                          ok.toCompletableFuture()
                              .thenApply(
                                  i -> {
                                    throw new IllegalArgumentException("in a dependent");
                                  }));
                      Task<Integer> bad =
                          group.fork(
                              () -> {
                                throw boom;
                              });
                      badDep.set(bad.toCompletableFuture().handle((r, e) -> e));
                      Task<Void> c = group.fork(() -> Thread.sleep(30_000));
                      cancelledDep.set(
                          c.toCompletableFuture()
                              .handle((r, e) -> e instanceof CancellationException));
                      c.cancel(true);
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    assertThat(okDep.get().get(10, TimeUnit.SECONDS)).isEqualTo("v7");
    Throwable e = badDep.get().get(10, TimeUnit.SECONDS);
    assertThat(e instanceof java.util.concurrent.CompletionException ? e.getCause() : e)
        .isSameAs(boom);
    assertThat(cancelledDep.get().get(10, TimeUnit.SECONDS)).isTrue();
    assertThat(throwingDep.get()).isCompletedExceptionally();
  }

  @RepeatedTest(5)
  void futuresOfAGroupThatFailsFollowEachTasksOwnOutcome() throws Exception {
    // Task.toCompletableFuture javadoc, for a CANCEL_ALL group whose child fails: the failing
    // child's future fails with the failure, a sibling cut short is cancelled, a finished one
    // keeps its value.
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = TaskGroup.create();
    AtomicReference<CompletableFuture<Void>> failing = new AtomicReference<>();
    AtomicReference<CompletableFuture<Void>> sibling = new AtomicReference<>();
    AtomicReference<CompletableFuture<String>> done = new AtomicReference<>();
    CountDownLatch siblingRunning = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      Task<String> d = group.fork(() -> "done");
                      done.set(d.toCompletableFuture());
                      d.get();
                      sibling.set(
                          group
                              .fork(
                                  () -> {
                                    siblingRunning.countDown();
                                    Thread.sleep(30_000);
                                  })
                              .toCompletableFuture());
                      siblingRunning.await();
                      failing.set(
                          group
                              .fork(
                                  (Body)
                                      () -> {
                                        throw boom;
                                      })
                              .toCompletableFuture());
                      CancelScope.sleep(Duration.ofSeconds(30)); // ended by the failure
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    assertThat(done.get()).isCompletedWithValue("done");
    assertThat(sibling.get()).isCancelled();
    assertThat(failing.get()).isCompletedExceptionally().isNotCancelled();
    assertThat(catchThrowable(() -> failing.get().get()))
        .isInstanceOf(ExecutionException.class)
        .hasCause(boom);
  }

  // ---- CancelScope.await -------------------------------------------------------------------

  @Test
  void awaitOfAStageCancelledBySomeoneElseThrowsCancellationException() throws Exception {
    // CancelScope.await javadoc: "@throws CancellationException if someone else cancelled the
    // stage" (CompletableFuture.get after cancel).
    CompletableFuture<String> stage = new CompletableFuture<>();
    Thread me = Thread.currentThread();
    Thread other =
        Thread.ofVirtual()
            .start(
                () -> {
                  Probes.awaitWaiting(me, Duration.ofSeconds(10));
                  stage.cancel(false);
                });
    assertThat(catchThrowable(() -> CancelScope.await(stage)))
        .isInstanceOf(CancellationException.class);
    other.join();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void awaitOfACompletedStageWithAFailureIsExecutionExceptionEvenInsideAScope() throws Exception {
    // CancelScope.await javadoc: "@throws ExecutionException if the stage completed exceptionally
    // (its exception is the cause)"; a minimal stage is read through toCompletableFuture().
    IllegalStateException boom = new IllegalStateException("boom");
    CompletableFuture<String> failed = CompletableFuture.failedFuture(boom);
    CancelScope.create()
        .run(
            () -> {
              assertThat(catchThrowable(() -> CancelScope.await(failed)))
                  .isInstanceOf(ExecutionException.class)
                  .hasCause(boom);
              assertThat(CancelScope.await(CompletableFuture.completedStage("m"))).isEqualTo("m");
              assertThat(catchThrowable(() -> CancelScope.await(failed.minimalCompletionStage())))
                  .isInstanceOf(ExecutionException.class)
                  .hasCause(boom);
            });
  }

  @RepeatedTest(10)
  void awaitCancelledWhileWaitingCancelsTheStageAndLeavesTheStatusSet() throws Exception {
    // CancelScope.await javadoc: "when the calling thread is, or becomes, effectively cancelled
    // before the stage completes, the stage is cancelled ... and InterruptedException is thrown"
    // (checkpoint: status left set).
    CompletableFuture<String> stage = new CompletableFuture<>();
    CancelScope scope = CancelScope.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean();
    Thread me = Thread.currentThread();
    Thread.ofVirtual()
        .start(
            () -> {
              Probes.awaitWaiting(me, Duration.ofSeconds(10));
              scope.cancel();
            });
    scope.run(
        () -> {
          seen.set(catchThrowable(() -> CancelScope.await(stage)));
          status.set(Thread.currentThread().isInterrupted());
        });
    assertThat(seen.get()).isInstanceOf(CancelledException.class);
    assertThat(status).isTrue();
    assertThat(stage).isCancelled();
    assertThat(scope.cancelCalled()).isTrue(); // the body swallowed it: cancelCaught stays false
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @RepeatedTest(10)
  void awaitInACooperativeScopeCancelsTheStageWithoutAnInterrupt() throws Exception {
    // CancelScope.cooperative javadoc: the cancellation "is still seen by ... await"; no
    // interrupt inside.
    CompletableFuture<String> stage = new CompletableFuture<>();
    CancelScope outer = CancelScope.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean(true);
    AtomicBoolean statusAfterLeaving = new AtomicBoolean();
    Thread me = Thread.currentThread();
    Thread.ofVirtual()
        .start(
            () -> {
              Probes.awaitWaiting(me, Duration.ofSeconds(10));
              outer.cancel();
            });
    outer.run(
        () -> {
          catchThrowable(
              () ->
                  CancelScope.cooperative()
                      .run(
                          () -> {
                            seen.set(catchThrowable(() -> CancelScope.await(stage)));
                            status.set(Thread.currentThread().isInterrupted());
                          }));
          statusAfterLeaving.set(Thread.currentThread().isInterrupted());
        });
    assertThat(seen.get()).isInstanceOf(InterruptedException.class);
    assertThat(status).as("no interrupt inside a cooperative scope").isFalse();
    assertThat(statusAfterLeaving).as("delivery resumes on leaving").isTrue();
    assertThat(stage).isCancelled();
    assertThat(outer.cancelCalled()).isTrue(); // the body swallowed it: cancelCaught stays false
  }

  @RepeatedTest(20)
  void awaitRacingACompletionAndACancellationLosesNothing() throws Exception {
    // CancelScope.await javadoc: "A stage already complete may be returned"; otherwise the stage
    // is cancelled and InterruptedException thrown. Never a hang, never both.
    CompletableFuture<String> stage = new CompletableFuture<>();
    CancelScope scope = CancelScope.create();
    AtomicReference<Object> outcome = new AtomicReference<>();
    CountDownLatch ready = new CountDownLatch(1);
    Thread racer =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    ready.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  stage.complete("v");
                  scope.cancel();
                });
    scope.run(
        () -> {
          ready.countDown();
          try {
            outcome.set(CancelScope.await(stage));
          } catch (InterruptedException e) {
            outcome.set(e);
            throw e;
          }
        });
    racer.join();
    Object o = outcome.get();
    if (o instanceof InterruptedException) {
      assertThat(stage.isDone()).isTrue();
    } else {
      assertThat(o).isEqualTo("v");
      assertThat(stage).isCompletedWithValue("v");
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ---- onCancel / closeOnCancel ------------------------------------------------------------

  @Test
  void closingARegistrationAfterItsActionRanIsQuietAndCanBeRepeated() throws Exception {
    // Registration.close javadoc: it throws only "if the action ran and threw".
    CancelScope scope = CancelScope.create();
    AtomicInteger runs = new AtomicInteger();
    scope.run(
        () -> {
          CancelScope.Registration r = CancelScope.onCancel(runs::incrementAndGet);
          scope.cancel();
          Probes.awaitTrue("action ran", Duration.ofSeconds(10), () -> runs.get() == 1);
          r.close();
          r.close();
          CancelScope.checkpoint();
        });
    assertThat(runs.get()).isEqualTo(1);
    assertThat(scope.cancelCaught()).isTrue();
  }

  @Test
  void aRegistrationClosedTwiceBeforeCancelNeverRuns() throws Exception {
    // Registration.close javadoc: "after close returns, the action will not start".
    CancelScope scope = CancelScope.create();
    AtomicInteger runs = new AtomicInteger();
    scope.run(
        () -> {
          CancelScope.Registration r = CancelScope.onCancel(runs::incrementAndGet);
          r.close();
          r.close();
          CancelScope.Registration other = CancelScope.onCancel(() -> {});
          scope.cancel();
          other.close();
        });
    assertThat(runs.get()).isZero();
  }

  @Test
  void anExceptionAfterTheActionStartedEndsTheScopeAsCancelled() throws Exception {
    // onCancel javadoc: "Once the action has started, any Exception ... the calling thread throws
    // while it stays cancelled counts as the cancellation ... cancelCaught() is true".
    CancelScope scope = CancelScope.create();
    CountDownLatch acted = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      try (var hook = CancelScope.onCancel(acted::countDown)) {
                        scope.cancel();
                        acted.await(10, TimeUnit.SECONDS);
                        Thread.interrupted(); // the work does not look at the status
                        throw new IllegalStateException("the action's effect");
                      }
                    }));
    assertThat(thrown).isNull();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void closeOnCancelErrorInAnAlreadyCancelledScopeIsThrownAsItIsByClose() throws Exception {
    // closeOnCancel javadoc: "An exception thrown by close() is handled as the action's, as it is,
    // never wrapped"; onCancel: runs "at once ... if it already is" cancelled.
    StackOverflowError err = new StackOverflowError("from close");
    AtomicInteger closes = new AtomicInteger();
    AutoCloseable resource =
        () -> {
          closes.incrementAndGet();
          throw err;
        };
    CancelScope scope = CancelScope.create();
    scope.cancel();
    AtomicReference<Throwable> fromClose = new AtomicReference<>();
    catchThrowable(
        () ->
            scope.run(
                () -> {
                  CancelScope.Registration r = CancelScope.closeOnCancel(resource);
                  assertThat(closes.get()).as("ran before closeOnCancel returned").isEqualTo(1);
                  fromClose.set(catchThrowable(r::close));
                }));
    assertThat(fromClose.get()).isSameAs(err);
    assertThat(closes.get()).isEqualTo(1);
  }

  @Test
  void closeOnCancelCheckedExceptionInAGroupChildIsAGroupFailureUnwrapped() throws Exception {
    // closeOnCancel javadoc: "handled as the action's, as it is, never wrapped"; onCancel: "a
    // failure of the innermost enclosing group".
    java.io.IOException io = new java.io.IOException("close failed");
    TaskGroup group = TaskGroup.create();
    CountDownLatch registered = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            try (var r =
                                CancelScope.closeOnCancel(
                                    () -> {
                                      throw io;
                                    })) {
                              registered.countDown();
                              Thread.sleep(30_000);
                            }
                          });
                      registered.await();
                      group.cancel();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(io);
  }

  // ---- cooperative -------------------------------------------------------------------------

  @RepeatedTest(10)
  void sleepInACooperativeScopeNoticesTheCancellationWithoutAnInterrupt() throws Exception {
    // CancelScope.cooperative javadoc: no interrupt inside; CancelScope.sleep is a checkpoint "at
    // its start and all the while it waits".
    CancelScope outer = CancelScope.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean(true);
    Thread me = Thread.currentThread();
    Thread.ofVirtual()
        .start(
            () -> {
              Probes.awaitWaiting(me, Duration.ofSeconds(10));
              outer.cancel();
            });
    outer.run(
        () ->
            CancelScope.cooperative()
                .run(
                    () -> {
                      seen.set(catchThrowable(() -> CancelScope.sleep(Duration.ofSeconds(30))));
                      status.set(Thread.currentThread().isInterrupted());
                    }));
    assertThat(seen.get()).isInstanceOf(CancelledException.class);
    assertThat(status).isFalse();
    assertThat(outer.cancelCalled()).isTrue(); // the body swallowed it: cancelCaught stays false
  }

  @RepeatedTest(10)
  void aCancellationArrivingInsideACooperativeScopeIsDeliveredAtOnceOnLeaving() throws Exception {
    // CancelScope.cooperative javadoc: "On leaving it into a region that is still cancelled,
    // delivery resumes at once."
    CancelScope outer = CancelScope.create();
    AtomicBoolean inside = new AtomicBoolean(true);
    AtomicBoolean after = new AtomicBoolean();
    outer.run(
        () -> {
          CancelScope.cooperative()
              .run(
                  () -> {
                    outer.cancel();
                    inside.set(Thread.currentThread().isInterrupted());
                  });
          after.set(Thread.currentThread().isInterrupted());
        });
    assertThat(inside).isFalse();
    assertThat(after).isTrue();
    assertThat(outer.cancelCalled()).isTrue(); // the body returned normally: not caught
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @RepeatedTest(10)
  void aGroupsJoinInsideACooperativeScopeNoticesTheCancellationWithoutAnInterrupt()
      throws Exception {
    // CancelScope.cooperative javadoc: seen by "a group's wait for its children"; "threads forked
    // inside it are interrupted as usual".
    CancelScope outer = CancelScope.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean(true);
    AtomicReference<Throwable> childSaw = new AtomicReference<>();
    outer.run(
        () ->
            CancelScope.cooperative()
                .run(
                    () -> {
                      TaskGroup inner = TaskGroup.create();
                      CountDownLatch running = new CountDownLatch(1);
                      seen.set(
                          catchThrowable(
                              () ->
                                  inner.run(
                                      () -> {
                                        inner.fork(
                                            () -> {
                                              running.countDown();
                                              childSaw.set(
                                                  catchThrowable(() -> Thread.sleep(30_000)));
                                            });
                                        running.await();
                                        outer.cancel();
                                      })));
                      status.set(Thread.currentThread().isInterrupted());
                    }));
    assertThat(childSaw.get()).isInstanceOf(InterruptedException.class);
    assertThat(seen.get()).isInstanceOf(InterruptedException.class);
    assertThat(status).as("no interrupt inside the cooperative scope").isFalse();
    assertThat(outer.cancelCalled()).isTrue(); // the body swallowed it: cancelCaught stays false
  }

  @RepeatedTest(10)
  void getOfAFailedTaskFromACooperativeCancelledCallerLeavesNoInterrupt() throws Exception {
    // Task javadoc: get() is a checkpoint for a cancelled caller; cooperative javadoc: checkpoints
    // throw "without setting the interrupt status".
    IllegalStateException boom = new IllegalStateException("boom");
    TaskGroup group = TaskGroup.create();
    AtomicReference<Throwable> seen = new AtomicReference<>();
    AtomicBoolean status = new AtomicBoolean(true);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () ->
                        CancelScope.cooperative()
                            .run(
                                () -> {
                                  Task<Void> t =
                                      group.fork(
                                          () -> {
                                            throw boom;
                                          });
                                  seen.set(catchThrowable(t::get));
                                  status.set(Thread.currentThread().isInterrupted());
                                })));
    assertThat(seen.get()).isInstanceOf(InterruptedException.class);
    assertThat(status).isFalse();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
  }

  /**
   * Waiters that give up (timed gets expiring at random moments, unlinking themselves) never take a
   * waiter that still waits with them: every untimed get is woken by the completion. The seed of
   * the timeouts is printed.
   */
  @RepeatedTest(20)
  void waitersGivingUpNeverUnlinkOneThatStillWaits() throws Exception {
    long seed = System.nanoTime();
    System.out.println("waitersGivingUpNeverUnlinkOneThatStillWaits seed " + seed);
    java.util.Random random = new java.util.Random(seed);
    CountDownLatch release = new CountDownLatch(1);
    TaskGroup group = TaskGroup.create();
    AtomicInteger woken = new AtomicInteger();
    int patient = 8;
    group.run(
        () -> {
          Task<String> task =
              group.fork(
                  () -> {
                    release.await();
                    return "done";
                  });
          List<Thread> threads = new ArrayList<>();
          for (int i = 0; i < 24; i++) {
            long timeoutMicros = random.nextInt(300);
            boolean timed = i % 3 != 0;
            threads.add(
                Thread.ofPlatform()
                    .start(
                        () -> {
                          try {
                            if (timed) {
                              for (int k = 0; k < 20; k++) {
                                try {
                                  task.get(timeoutMicros, TimeUnit.MICROSECONDS);
                                  return; // completed meanwhile
                                } catch (TimeoutException expected) {
                                  // gave up: unlinks itself beside the others
                                }
                              }
                            } else if ("done".equals(task.get())) {
                              woken.incrementAndGet();
                            }
                          } catch (Exception e) {
                            throw new AssertionError(e);
                          }
                        }));
          }
          while (threads.stream().filter(t -> t.getState() == Thread.State.TERMINATED).count()
              < threads.size() - patient) { // the timed ones have given up for good
            Thread.onSpinWait();
          }
          release.countDown();
          for (Thread t : threads) {
            t.join();
          }
        });
    assertThat(woken.get()).as("untimed waiters woken (seed %d)", seed).isEqualTo(patient);
  }
}
