package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
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
 * Twins of CPython's asyncio timeout and task-cancellation tests: {@code
 * Lib/test/test_asyncio/test_waitfor.py} (all of it), the cancellation, shield and gather-cancel
 * tests of {@code Lib/test/test_asyncio/test_tasks.py}, and the {@code test_timeouts.py} tests that
 * {@link PortedCpythonTest} does not already hold. Translation: {@code asyncio.wait_for(aw, t)} on
 * a coroutine is {@link CancelScope#failAfter} running the work inline; on a task it is a {@link
 * TaskGroup} whose deadline is set (the group cancels and waits for the work, as {@code wait_for}
 * cancels and awaits the task), or {@link CancelScope#await} of the task's future inside {@code
 * failAfter} (which cancels the task, without waiting for its thread); {@code nursery.start} under
 * a timeout is {@link TaskGroup#start} inside a scope with a deadline; {@code task.cancel()} is
 * {@link Task#cancel(boolean)}; {@code asyncio.shield} is a shielded {@link CancelScope}; {@code
 * gather} is {@link TaskGroup#invokeAll}; {@code asyncio.sleep} is {@link CancelScope#sleep} (a
 * checkpoint) or {@link Thread#sleep} (an interruptible call that, like asyncio, sees a
 * cancellation once). {@code cancelling()} / {@code uncancel()} have no counterpart: what they
 * imply observably (a swallowed cancellation is delivered again; nested timeouts each catch only
 * their own; a caught timeout leaves nothing cancelled) is what is ported.
 *
 * <p>Where the semantics differ by design the twin asserts the documented behaviour and says so:
 * cancellation here is level-triggered (Trio), so a task that ignores one cancellation sees it
 * again at its next checkpoint; once {@link Task#cancel(boolean)} returned {@code true} the task is
 * {@code CANCELLED} whatever its work does next (the {@link Future} contract), where asyncio lets a
 * task that swallows the cancellation return a result; and a shield here blocks its caller until
 * the shielded work ends (structured), where {@code asyncio.shield} lets the caller leave at once.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedAsyncioWaitTest {

  /** test_waitfor's FooException. */
  static final class FooException extends RuntimeException {
    FooException(String m) {
      super(m);
    }
  }

  /** test_tasks' base_exc (SystemExit): an Error. */
  static final class ExitError extends Error {
    ExitError(String m) {
      super(m);
    }
  }

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  /** Polls until {@code t} is parked or sleeping, 10 s at most. */
  private static void awaitBlocked(Thread t) {
    Probes.awaitWaiting(t, Duration.ofSeconds(10));
  }

  /**
   * test_waitfor's SlowTask: runs for {@code millis}, swallowing every interrupt (as SlowTask
   * swallows every CancelledError), then sets {@code exited}.
   */
  private static void slowTask(long millis, AtomicBoolean exited) {
    long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    while (true) {
      long left = end - System.nanoTime();
      if (left <= 0) {
        break;
      }
      try {
        Thread.sleep(Duration.ofNanos(left));
      } catch (InterruptedException swallowed) {
        // ignores the cancellation, as SlowTask does
      }
    }
    exited.set(true);
  }

  private static long millisSince(long t0) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
  }

  // ============================================================ test_waitfor.py

  // test_asyncio_wait_for_cancelled: the task running wait_for(slow, 0.4) is cancelled while the
  // slow work ignores cancellation; the canceller's wait for that task ends only once the slow
  // work has exited (here: the group's run, which waits for every thread).
  @RepeatedTest(2)
  void cancellingTheWaiterStillWaitsForWorkThatHoldsUpTheCancellation() throws Exception {
    AtomicBoolean exited = new AtomicBoolean();
    CountDownLatch inside = new CountDownLatch(1);
    AtomicReference<Task<String>> waiter = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("wait_for_cancelled");
    g.run(
        () -> {
          waiter.set(
              g.fork(
                  () ->
                      CancelScope.failAfter(
                          Duration.ofMillis(400),
                          () -> {
                            inside.countDown();
                            slowTask(200, exited);
                            return "slow";
                          })));
          inside.await();
          assertThat(waiter.get().cancel(true)).isTrue();
        });
    assertThat(exited).isTrue();
    assertThat(waiter.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_asyncio_wait_for_timeout: wait_for(slow, 0.1) where the work ignores the cancellation and
  // runs 0.2 s. asyncio's timeout raises only when the cancellation came back out; here too
  // (failAfter javadoc): the body completed, so its result is returned and nothing is thrown, and
  // the interrupt the deadline delivered does not outlive the scope.
  @RepeatedTest(2)
  void aBodyThatIgnoresItsTimeoutRunsToItsEndAndItsResultIsReturned() throws Exception {
    AtomicBoolean exited = new AtomicBoolean();
    long t0 = System.nanoTime();
    String r =
        CancelScope.failAfter(
            Duration.ofMillis(100),
            () -> {
              slowTask(200, exited);
              return "slow";
            });
    assertThat(r).isEqualTo("slow");
    assertThat(exited).isTrue();
    assertThat(millisSince(t0)).isGreaterThanOrEqualTo(200);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_wait_for_timeout_less_then_0_or_0_future_done: wait_for(done_future, 0) returns the
  // result at once. Task.get javadoc: "A result that has arrived is returned all the same" by a
  // cancelled caller, so failAfter(0) around it completes normally.
  @Test
  void aZeroTimeoutAroundAFinishedTaskReturnsItsResult() throws Exception {
    TaskGroup g = TaskGroup.named("zero-done");
    AtomicReference<String> got = new AtomicReference<>();
    g.run(
        () -> {
          Task<String> fut = g.fork(() -> "done");
          fut.get();
          long t0 = System.nanoTime();
          got.set(CancelScope.failAfter(Duration.ZERO, fut::get));
          assertThat(millisSince(t0)).isLessThan(1_000);
          assertThat(fut.isDone()).isTrue();
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
          CancelScope.checkpoint(); // nothing cancelled is left on the body
        });
    assertThat(got.get()).isEqualTo("done");
    assertThat(g.cancelCaught()).isFalse();
  }

  // test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started. Differs by design: asyncio
  // never starts the coroutine; failAfter runs the body on the calling thread inside a scope that
  // starts cancelled, so its code runs but its first checkpoint throws, and the timeout is
  // reported. (A group with a zero timeout never starts a forked child: PortedScenariosTest.) A
  // negative timeout, which asyncio treats as zero, is rejected here, and the body does not run.
  @Test
  void aZeroTimeoutCancelsTheBodyAtItsFirstCheckpointAndANegativeOneIsRejected() throws Exception {
    AtomicBoolean started = new AtomicBoolean();
    AtomicBoolean pastCheckpoint = new AtomicBoolean();
    long t0 = System.nanoTime();
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      started.set(true);
                      CancelScope.checkpoint();
                      pastCheckpoint.set(true);
                      return "never";
                    }));
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(started).isTrue();
    assertThat(pastCheckpoint).isFalse();
    assertThat(millisSince(t0)).isLessThan(1_000);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    AtomicBoolean ran = new AtomicBoolean();
    Throwable negative =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofSeconds(-1),
                    () -> {
                      ran.set(true);
                      return null;
                    }));
    assertThat(negative).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
    assertThat(ran).isFalse();
  }

  // test_wait_for / test_wait_for_timeout_less_then_0_or_0: a running task (started, in a
  // try/finally around a 10 s sleep) is given a deadline of 0 or 0.1 s: the task is cancelled,
  // its finally has run by the time the wait ends, the wait ends early, and it is the timeout's
  // doing (cancelCaught).
  @RepeatedTest(3)
  void aDeadlineGivenToAGroupWithARunningTaskCancelsItAndWaitsForItsFinally() throws Exception {
    for (Duration timeout : List.of(Duration.ZERO, Duration.ofMillis(100))) {
      AtomicBoolean running = new AtomicBoolean();
      CountDownLatch started = new CountDownLatch(1);
      AtomicReference<Task<String>> foo = new AtomicReference<>();
      TaskGroup g = TaskGroup.named("wait_for-" + timeout);
      long t0 = System.nanoTime();
      g.run(
          () -> {
            foo.set(
                g.fork(
                    () -> {
                      running.set(true);
                      started.countDown();
                      try {
                        Thread.sleep(Duration.ofSeconds(10));
                      } finally {
                        running.set(false);
                      }
                      return "done";
                    }));
            started.await();
            g.cancelScope().setTimeout(timeout);
            foo.get().get(); // the wait: cut short by the deadline
          });
      assertThat(millisSince(t0)).as("timeout %s", timeout).isLessThan(5_000);
      assertThat(foo.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(running).isFalse();
      assertThat(g.cancelCalled()).isTrue();
      assertThat(g.cancelCaught()).isTrue();
      assertThat(g.cancelScope().cancelReason()).isPresent();
    }
  }

  // test_wait_for_blocking: wait_for(coro, timeout=None) just runs it. The longest timeout there
  // is (ChronoUnit.FOREVER) must neither overflow into an expired deadline nor be lost: the body
  // runs uncancelled, and the deadline shows Instant.MAX (CancelScope.deadline javadoc).
  @Test
  void anEndlessTimeoutRunsTheBodyUncancelled() throws Exception {
    assertThat(CancelScope.failAfter(ChronoUnit.FOREVER.getDuration(), () -> "done"))
        .isEqualTo("done");
    CancelScope forever = CancelScope.withTimeout(ChronoUnit.FOREVER.getDuration());
    String r =
        forever.call(
            () -> {
              CancelScope.sleep(Duration.ofMillis(1));
              assertThat(CancelScope.isCancelled()).isFalse();
              return "done";
            });
    assertThat(r).isEqualTo("done");
    assertThat(forever.deadline()).contains(Instant.MAX);
    assertThat(forever.cancelCalled()).isFalse();
  }

  // test_wait_for_race_condition: the awaited future completes (from another thread) well before
  // the timeout: its result is returned.
  @RepeatedTest(5)
  void aResultArrivingBeforeTheTimeoutIsReturned() throws Exception {
    CompletableFuture<String> fut = new CompletableFuture<>();
    Thread waiter = Thread.currentThread();
    Thread completer =
        Thread.ofVirtual()
            .start(
                () -> {
                  awaitBlocked(waiter);
                  fut.complete("ok");
                });
    String res = CancelScope.failAfter(Duration.ofSeconds(5), () -> CancelScope.await(fut));
    completer.join();
    assertThat(res).isEqualTo("ok");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_wait_for_cancellation_race_condition / test_wait_for_cancel_suppressed: the work catches
  // the cancellation of its sleep and returns a value: wait_for returns that value. Both with an
  // interruptible JDK call (which clears the interrupt status) and with a library checkpoint
  // (which leaves it set: the scope's exit must still take it away).
  @RepeatedTest(5)
  void workThatCatchesItsTimeoutAndReturnsAValueHasThatValueReturned() throws Exception {
    int viaJdk =
        CancelScope.failAfter(
            Duration.ofMillis(10),
            () -> {
              try {
                Thread.sleep(Duration.ofSeconds(10));
                throw new AssertionError("not cancelled");
              } catch (InterruptedException expected) {
                return 1;
              }
            });
    assertThat(viaJdk).isEqualTo(1);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    int viaCheckpoint =
        CancelScope.failAfter(
            Duration.ofMillis(10),
            () -> {
              try {
                CancelScope.sleep(Duration.ofSeconds(10));
                throw new AssertionError("not cancelled");
              } catch (InterruptedException expected) {
                assertThat(CancelScope.isCancelled()).isTrue();
                return 42;
              }
            });
    assertThat(viaCheckpoint).isEqualTo(42);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    Integer moved =
        CancelScope.moveOnAfter(
            Duration.ofMillis(10),
            () -> {
              try {
                CancelScope.sleep(Duration.ofSeconds(10));
                return 0;
              } catch (InterruptedException expected) {
                return 42;
              }
            });
    assertThat(moved).isEqualTo(42);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_wait_for_waits_for_task_cancellation / ..._w_timeout_0: the task's cancellation handler
  // waits (EPSILON) before re-raising; the wait ends only after the task's finally ran, and it is
  // the timeout (chained to the cancellation upstream; here the task ends CANCELLED and the group
  // caught its own deadline). The handler's wait runs in a shield, as cleanup that waits must.
  @RepeatedTest(5)
  void theTimeoutWaitsForTheTasksSlowCancellationHandler() throws Exception {
    for (Duration timeout : List.of(Duration.ZERO, Duration.ofMillis(1))) {
      AtomicBoolean taskDone = new AtomicBoolean();
      CountDownLatch started = new CountDownLatch(1);
      AtomicReference<Task<Void>> inner = new AtomicReference<>();
      TaskGroup g = TaskGroup.named("waits-for-cancellation");
      g.run(
          () -> {
            inner.set(
                g.fork(
                    () -> {
                      try {
                        started.countDown();
                        Thread.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException e) {
                        CancelScope.shielded().run(() -> Thread.sleep(1));
                        throw e;
                      } finally {
                        taskDone.set(true);
                      }
                    }));
            started.await();
            g.cancelScope().setTimeout(timeout);
          });
      assertThat(taskDone).isTrue();
      assertThat(inner.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(g.cancelCaught()).isTrue();
    }

    // The coroutine form: failAfter around the work itself.
    AtomicBoolean done = new AtomicBoolean();
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(1),
                    () -> {
                      try {
                        Thread.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException e) {
                        CancelScope.shielded().run(() -> Thread.sleep(1));
                        throw e;
                      } finally {
                        done.set(true);
                      }
                      return null;
                    }));
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(done).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_wait_for_reraises_exception_during_cancellation: the task's finally raises FooException
  // while the timeout cancels it: FooException comes out, not a timeout (failures first:
  // TaskGroup "When outcomes coincide"; failAfter passes the body's exception through).
  @RepeatedTest(5)
  void anExceptionRaisedWhileTheTimeoutCancelsTheWorkComesOutInsteadOfTheTimeout()
      throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    TaskGroup g = TaskGroup.named("reraises");
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try {
                              started.countDown();
                              Thread.sleep(Duration.ofSeconds(10));
                            } finally {
                              throw new FooException("in finally");
                            }
                          });
                      started.await();
                      g.cancelScope().setTimeout(Duration.ofMillis(1));
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .isInstanceOf(FooException.class);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isFalse();

    Throwable inline =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(1),
                    () -> {
                      try {
                        Thread.sleep(Duration.ofSeconds(10));
                      } finally {
                        throw new FooException("in finally");
                      }
                    }));
    assertThat(inline).isInstanceOf(FooException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_wait_for_self_cancellation: the task doing wait_for(inner, 0.1) is cancelled at once,
  // while inner holds up every cancellation and returns 42. The waiter ends cancelled, and only
  // after inner returned; inner's result is kept (it was never cancelled itself: it ignored the
  // cancellations reaching it from above and returned).
  @RepeatedTest(5)
  void aWaiterCancelledWhileTheAwaitedWorkHoldsUpItsCancellationEndsCancelledAfterIt()
      throws Exception {
    AtomicReference<Task<Integer>> inner = new AtomicReference<>();
    CountDownLatch innerStarted = new CountDownLatch(1);
    AtomicReference<Task<Void>> wait = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("self-cancellation");
    g.run(
        () -> {
          wait.set(
              g.fork(
                  () -> {
                    TaskGroup waitFor =
                        TaskGroup.builder()
                            .name("wait_for")
                            .timeout(Duration.ofMillis(100))
                            .build();
                    waitFor.run(
                        () ->
                            inner.set(
                                waitFor.fork(
                                    () -> {
                                      innerStarted.countDown();
                                      for (int i = 0; i < 3; i++) {
                                        try {
                                          Thread.sleep(300);
                                        } catch (InterruptedException ignored) {
                                          // holds up the cancellation
                                        }
                                      }
                                      return 42;
                                    })));
                  }));
          innerStarted.await();
          assertThat(wait.get().cancel(true)).isTrue();
        });
    assertThat(wait.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(inner.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(inner.get().resultNow()).isEqualTo(42);
  }

  // _test_cancel_wait_for (test_cancel_blocking_wait_for, timeout None; test_cancel_wait_for, 60):
  // cancelling the task that waits cancels the awaited task too (Python issue #23219).
  @RepeatedTest(5)
  void cancellingTheWaiterCancelsTheAwaitedTask() throws Exception {
    for (Duration timeout : new Duration[] {null, Duration.ofSeconds(60)}) {
      AtomicReference<Task<Void>> blocking = new AtomicReference<>();
      AtomicReference<Thread> blockingThread = new AtomicReference<>();
      CountDownLatch started = new CountDownLatch(1);
      AtomicReference<Task<Void>> wait = new AtomicReference<>();
      TaskGroup g = TaskGroup.named("cancel-wait_for");
      g.run(
          () -> {
            wait.set(
                g.fork(
                    () -> {
                      TaskGroup waitFor =
                          timeout == null
                              ? TaskGroup.create()
                              : TaskGroup.builder().timeout(timeout).build();
                      waitFor.run(
                          () ->
                              blocking.set(
                                  waitFor.fork(
                                      () -> {
                                        blockingThread.set(Thread.currentThread());
                                        started.countDown();
                                        new CountDownLatch(1).await(); // never set
                                      })));
                    }));
            started.await();
            awaitBlocked(blockingThread.get());
            assertThat(wait.get().cancel(true)).isTrue();
          });
      assertThat(wait.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(blocking.get().state())
          .as("timeout %s", timeout)
          .isEqualTo(Future.State.CANCELLED);
      assertThat(g.cancelCalled()).isFalse();
    }
  }

  // test_wait_for_issue86296: after wait_for(quick, 100) returned, the task is cancelled: the
  // cancellation must reach the sleep that follows (asyncio lost it when it landed as wait_for
  // completed). Here the cancel races the inner scope's exit: wherever it lands (before the
  // failAfter scope, inside it, as it exits, in the sleep), the task ends CANCELLED and never
  // reaches its end. Randomised; the seed is printed.
  @Test
  void aCancellationLandingAsAnInnerTimeoutScopeExitsIsNotLost() throws Exception {
    long seed = new Random().nextLong();
    System.out.println("aCancellationLandingAsAnInnerTimeoutScopeExitsIsNotLost seed=" + seed);
    Random rnd = new Random(seed);
    for (int i = 0; i < 100; i++) {
      int spins = rnd.nextInt(20_000);
      AtomicBoolean reachedEnd = new AtomicBoolean();
      AtomicReference<Task<Void>> task = new AtomicReference<>();
      CountDownLatch go = new CountDownLatch(1);
      TaskGroup g = TaskGroup.named("issue86296");
      long t0 = System.nanoTime();
      g.run(
          () -> {
            task.set(
                g.fork(
                    () -> {
                      go.countDown();
                      CancelScope.failAfter(Duration.ofSeconds(100), () -> "quick");
                      Thread.sleep(Duration.ofSeconds(5));
                      reachedEnd.set(true);
                    }));
            go.await();
            for (int s = 0; s < spins; s++) {
              Thread.onSpinWait();
            }
            assertThat(task.get().cancel(true)).isTrue();
          });
      assertThat(reachedEnd).as("iteration %d, seed %d", i, seed).isFalse();
      assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(millisSince(t0)).as("iteration %d, seed %d", i, seed).isLessThan(4_000);
    }
  }

  // Race twin (the result arriving at the same instant as the deadline), for wait_for's
  // result/timeout race: the body sleeps exactly as long as the timeout, then returns. Allowed:
  // the result (the sleep ended first, or the body returned normally despite the cancellation:
  // failAfter javadoc), or TimeoutException (the cancellation came back out of the body). Never
  // null, never another exception, never an interrupt left behind.
  @RepeatedTest(3)
  void aResultAndTheDeadlineAtTheSameInstantGiveTheResultOrATimeoutAndLeaveNothingBehind()
      throws Exception {
    int results = 0;
    int timeouts = 0;
    for (int i = 0; i < 100; i++) {
      boolean checkpoint = i % 2 == 0;
      Duration d = Duration.ofNanos(200_000 + (i % 7) * 150_000L);
      Object outcome;
      try {
        outcome =
            CancelScope.failAfter(
                d,
                () -> {
                  if (checkpoint) {
                    CancelScope.sleep(d);
                  } else {
                    Thread.sleep(d);
                  }
                  return "result";
                });
      } catch (TimeoutException e) {
        outcome = e;
      }
      if (outcome instanceof TimeoutException) {
        timeouts++;
      } else {
        assertThat(outcome).isEqualTo("result");
        results++;
      }
      assertThat(Thread.currentThread().isInterrupted()).as("iteration %d", i).isFalse();
    }
    System.out.println("same-instant race: " + results + " results, " + timeouts + " timeouts");
    // Busy work that never checks: the result always wins, even when the deadline fired.
    for (int i = 0; i < 20; i++) {
      long spinUntil = System.nanoTime() + 300_000;
      String r =
          CancelScope.failAfter(
              Duration.ofNanos(250_000),
              () -> {
                while (System.nanoTime() < spinUntil) {
                  Thread.onSpinWait();
                }
                return "result";
              });
      assertThat(r).isEqualTo("result");
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  // The same race for wait_for on a task: a group whose deadline equals the child's sleep. The
  // child ends SUCCESS with its result or CANCELLED; run returns normally either way; a cancelled
  // child implies the deadline fired; nothing is left on the owner.
  @RepeatedTest(3)
  void aChildsResultAndTheGroupsDeadlineAtTheSameInstantGiveOneOrTheOther() throws Exception {
    for (int i = 0; i < 40; i++) {
      Duration d = Duration.ofNanos(300_000 + (i % 5) * 200_000L);
      TaskGroup g = TaskGroup.builder().name("same-instant").timeout(d).build();
      AtomicReference<Task<String>> child = new AtomicReference<>();
      g.run(
          () ->
              child.set(
                  g.fork(
                      () -> {
                        CancelScope.sleep(d);
                        return "result";
                      })));
      Task<String> c = child.get();
      switch (c.state()) {
        case SUCCESS -> assertThat(c.resultNow()).isEqualTo("result");
        case CANCELLED -> assertThat(g.cancelCalled()).isTrue();
        default -> throw new AssertionError("iteration " + i + ": " + c.state());
      }
      if (g.cancelCaught()) {
        assertThat(g.cancelCalled()).isTrue();
      }
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  // ============================================================ test_timeouts.py (the rest)

  // test_waiter_cancelled: inside a timeout the work sees the cancellation (here a
  // CancelledException from the library's sleep, naming the deadline) and re-raises it; the
  // timeout is then reported.
  @RepeatedTest(3)
  void theWorkSeesTheTimeoutAsACancelledExceptionAndReRaisingItReportsTheTimeout()
      throws Exception {
    AtomicReference<InterruptedException> seen = new AtomicReference<>();
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(10));
    scope.run(
        () -> {
          try {
            CancelScope.sleep(Duration.ofSeconds(10));
          } catch (InterruptedException e) {
            seen.set(e);
            throw e;
          }
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(seen.get()).isInstanceOf(CancelledException.class);
    assertThat(seen.get().getMessage()).contains("deadline");
    assertThat(scope.cancelReason()).hasValueSatisfying(r -> assertThat(r).contains("deadline"));
  }

  // test_timeout_disabled / test_timeout_at_disabled / test_repr_disabled: a scope with no
  // deadline: none shown before, during or after, nothing cancelled.
  @Test
  void aScopeWithoutADeadlineShowsNoneAndIsNeverCancelled() throws Exception {
    CancelScope cm = CancelScope.create();
    assertThat(cm.deadline()).isEmpty();
    cm.run(
        () -> {
          CancelScope.sleep(Duration.ofMillis(10));
          assertThat(cm.deadline()).isEmpty();
          assertThat(cm.toString()).contains("running");
        });
    assertThat(cm.cancelCalled()).isFalse();
    assertThat(cm.cancelCaught()).isFalse();
    assertThat(cm.deadline()).isEmpty();
  }

  // test_timeout_zero: timeout(0) around a long sleep: expired, quickly, and its deadline lies
  // between the times taken before and after.
  @Test
  void aZeroTimeoutExpiresAtOnceWithADeadlineOfItsStart() throws Exception {
    Instant t0 = Instant.now();
    long n0 = System.nanoTime();
    CancelScope cm = CancelScope.withTimeout(Duration.ZERO);
    cm.run(() -> Thread.sleep(Duration.ofSeconds(10)));
    Instant t1 = Instant.now();
    assertThat(millisSince(n0)).isLessThan(5_000);
    assertThat(cm.cancelCaught()).isTrue();
    assertThat(cm.deadline()).isPresent();
    // the deadline is converted between clocks: allow for the conversion's rounding
    assertThat(cm.deadline().get()).isBetween(t0.minusMillis(50), t1.plusMillis(50));
  }

  // test_timeout_already_entered / test_timeout_double_enter (and the rejected-call rule): a scope
  // runs once. Entering it again from inside is rejected and leaves it running (its deadline still
  // fires); entering it after it finished is rejected and changes nothing.
  @Test
  void aScopeEnteredAgainWhileRunningOrAfterItFinishedIsRejectedAndLeftAsItWas() throws Exception {
    CancelScope cm = CancelScope.withTimeout(Duration.ofSeconds(30));
    AtomicBoolean innerRan = new AtomicBoolean();
    cm.run(
        () -> {
          Throwable again = catchThrowable(() -> cm.run(() -> innerRan.set(true)));
          assertThat(again).isInstanceOf(IllegalStateException.class).hasMessageContaining("once");
          assertThat(CancelScope.isCancelled()).isFalse();
          assertThat(cm.toString()).contains("running");
          cm.setTimeout(Duration.ofMillis(10));
          Thread.sleep(Duration.ofSeconds(10)); // its deadline still ends it
        });
    assertThat(innerRan).isFalse();
    assertThat(cm.cancelCaught()).isTrue();
    Throwable after = catchThrowable(() -> cm.call(() -> "x"));
    assertThat(after).isInstanceOf(IllegalStateException.class);
    assertThat(cm.cancelCaught()).isTrue();
    assertThat(cm.toString()).contains("done");
  }

  // test_timeout_finished. Differs by design: asyncio raises on reschedule() after exit; here
  // (setDeadline javadoc) a deadline set after the scope exited "cancels nothing": no interrupt on
  // the thread that ran it, and what it caught stays as it was.
  @Test
  void aDeadlineSetAfterTheScopeFinishedCancelsNothing() throws Exception {
    CancelScope cm = CancelScope.withTimeout(Duration.ofMillis(500));
    cm.run(() -> {});
    cm.setDeadline(Instant.now().minusSeconds(1));
    cm.setTimeout(Duration.ZERO);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(cm.cancelCaught()).isFalse();
    CancelScope.checkpoint(); // the thread is not cancelled
  }

  // test_timeout_not_entered. Differs by design: asyncio refuses reschedule() before entry; here
  // setTimeout before run counts from when run starts (setTimeout javadoc), so a scope that waits
  // before it runs starts uncancelled and expires that long after its start.
  @Test
  void aTimeoutSetBeforeRunCountsFromTheStartOfRun() throws Exception {
    CancelScope cm = CancelScope.withTimeout(Duration.ofSeconds(10));
    cm.setTimeout(Duration.ofMillis(500));
    assertThat(cm.deadline()).isEmpty();
    Thread.sleep(700); // time passes before run: it must not count
    AtomicBoolean cancelledAtStart = new AtomicBoolean(true);
    long t0 = System.nanoTime();
    cm.run(
        () -> {
          cancelledAtStart.set(CancelScope.isCancelled());
          Thread.sleep(Duration.ofSeconds(10));
        });
    assertThat(cancelledAtStart).isFalse();
    assertThat(cm.cancelCaught()).isTrue();
    assertThat(millisSince(t0)).isBetween(450L, 5_000L);
  }

  // test_uncancel_structured_blocks (test_tasks.py) / test_nested_timeouts_loop_busy's first half:
  // a timeout caught inside another one leaves nothing cancelled: the outer body goes on, its
  // checkpoints and sleeps pass, and the outer scope returns its result without a timeout.
  @RepeatedTest(3)
  void aTimeoutCaughtInsideAnotherLeavesTheOuterScopeUncancelled() throws Exception {
    AtomicBoolean innerTimedOut = new AtomicBoolean();
    String r =
        CancelScope.failAfter(
            Duration.ofSeconds(10),
            () -> {
              try {
                CancelScope.failAfter(
                    Duration.ofMillis(10),
                    () -> {
                      Thread.sleep(Duration.ofSeconds(10));
                      return null;
                    });
              } catch (TimeoutException e) {
                innerTimedOut.set(true);
              }
              assertThat(CancelScope.isCancelled()).isFalse();
              CancelScope.checkpoint();
              Thread.sleep(10);
              return "outer done";
            });
    assertThat(innerTimedOut).isTrue();
    assertThat(r).isEqualTo("outer done");
  }

  // test_uncancel_basic / test_cancel_task_ignoring's second wait, for a plain scope: the body
  // swallows the cancellation its JDK sleep raised; its next checkpoint throws again (delivered
  // again, level-triggered), and the scope absorbs it. For failAfter this is a timeout.
  @RepeatedTest(3)
  void aSwallowedTimeoutIsDeliveredAgainAtTheNextCheckpoint() throws Exception {
    AtomicInteger seen = new AtomicInteger();
    long t0 = System.nanoTime();
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(10),
                    () -> {
                      try {
                        Thread.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException swallowed) {
                        seen.incrementAndGet();
                      }
                      try {
                        CancelScope.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException again) {
                        seen.incrementAndGet();
                        throw again;
                      }
                      return null;
                    }));
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(seen).hasValue(2);
    assertThat(millisSince(t0)).isLessThan(5_000);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Exceptions raised during cancellation (test_foreign_exception_on_timeout with an I/O error):
  // the CancelScope javadoc counts a SocketException (the kind a socket closed by the interrupt
  // throws) leaving while the interrupt status is still set by the cancellation as the
  // cancellation, and any other exception as a failure. After the library's checkpoint (status
  // left set) the SocketException is the timeout; after a JDK sleep that cleared the status it is
  // the body's failure, thrown unchanged (unless the swallowed cancellation was re-delivered
  // first); a plain IOException and a RuntimeException are always failures.
  @RepeatedTest(3)
  void anIOExceptionRaisedDuringTheTimeoutIsTheTimeoutOnlyWhileTheInterruptIsSet()
      throws Exception {
    Throwable whileSet =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(5),
                    () -> {
                      try {
                        CancelScope.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException e) {
                        throw new java.net.SocketException("socket closed by the cancellation");
                      }
                      return null;
                    }));
    assertThat(whileSet).isInstanceOf(TimeoutException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    Throwable plainWhileSet =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(5),
                    () -> {
                      try {
                        CancelScope.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException e) {
                        throw new IOException("the disk is full");
                      }
                      return null;
                    }));
    assertThat(plainWhileSet).isInstanceOf(IOException.class).hasMessage("the disk is full");
    Thread.interrupted(); // (the status is not what this part is about)

    Throwable afterCleared =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(5),
                    () -> {
                      try {
                        Thread.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException e) {
                        throw new IOException("an I/O error of its own");
                      }
                      return null;
                    }));
    // A plain IOException is the body's failure whether or not the re-delivery watcher (which
    // interrupts a thread that swallowed a cancellation again within 20 ms) set the status again
    // before it was thrown.
    assertThat(afterCleared).isInstanceOf(IOException.class).hasMessage("an I/O error of its own");
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    Throwable runtime =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(5),
                    () -> {
                      try {
                        CancelScope.sleep(Duration.ofSeconds(10));
                      } catch (InterruptedException e) {
                        throw new FooException("during cancellation");
                      }
                      return null;
                    }));
    assertThat(runtime).isInstanceOf(FooException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // ============================================================ test_tasks.py: cancellation

  // test_cancel / test_cancelling / test_cancel_yield: cancel() of a sleeping task returns true;
  // the task is done and cancelled at once; a second cancel() returns false; get() throws
  // CancellationException from a thread that is not cancelled.
  @RepeatedTest(5)
  void cancellingASleepingTaskMakesItCancelledAndASecondCancelReturnsFalse() throws Exception {
    TaskGroup g = TaskGroup.named("cancel");
    AtomicReference<Thread> thread = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    g.run(
        () -> {
          Task<Integer> t =
              g.fork(
                  () -> {
                    thread.set(Thread.currentThread());
                    started.countDown();
                    Thread.sleep(Duration.ofSeconds(10));
                    return 12;
                  });
          started.await();
          awaitBlocked(thread.get());
          assertThat(t.cancel(true)).isTrue();
          assertThat(t.isDone()).isTrue();
          assertThat(t.isCancelled()).isTrue();
          assertThat(t.cancel(true)).isFalse();
          assertThat(catchThrowable(t::get)).isInstanceOf(CancellationException.class);
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_task_cancel_message_getter / test_cancel_with_message_then_future_result /
  // test_cancel_with_message_before_starting_task: the message given to cancel reaches the code
  // that sees the cancellation (here the CancelledException's message and cancelReason()), also
  // when the cancel came before anything ran.
  @RepeatedTest(3)
  void theCancelMessageReachesTheCancelledCode() throws Exception {
    CancelScope scope = CancelScope.create();
    Thread runner = Thread.currentThread();
    Thread canceller =
        Thread.ofVirtual()
            .start(
                () -> {
                  awaitBlocked(runner);
                  scope.cancel("my message");
                });
    AtomicReference<InterruptedException> seen = new AtomicReference<>();
    scope.run(
        () -> {
          try {
            CancelScope.sleep(Duration.ofSeconds(10));
          } catch (InterruptedException e) {
            seen.set(e);
            throw e;
          }
        });
    canceller.join();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(seen.get()).isInstanceOf(CancelledException.class);
    assertThat(seen.get().getMessage()).contains("my message");
    assertThat(scope.cancelReason()).contains("my message");

    TaskGroup g = TaskGroup.named("before-start");
    g.cancel("my message");
    AtomicReference<Throwable> inBody = new AtomicReference<>();
    AtomicBoolean childRan = new AtomicBoolean();
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    g.run(
        () -> {
          child.set(g.fork(() -> childRan.set(true)));
          try {
            CancelScope.checkpoint();
          } catch (InterruptedException e) {
            inBody.set(e);
            throw e;
          }
        });
    assertThat(childRan).isFalse();
    assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(inBody.get()).isInstanceOf(CancelledException.class);
    assertThat(inBody.get().getMessage()).contains("my message");
    assertThat(g.cancelCaught()).isTrue();
  }

  // test_cancellation_exception_context: code that awaits a task cancelled by someone else catches
  // the cancellation and raises ValueError from it. That code itself is not cancelled, so the
  // ValueError is a failure of the group although a CancellationException is its cause (the
  // cause-chain rule applies only to a thread that is effectively cancelled: CancelScope javadoc).
  @RepeatedTest(5)
  void anExceptionRaisedFromAnotherTasksCancellationIsAFailure() throws Exception {
    TaskGroup g = TaskGroup.named("exception-context");
    AtomicReference<Thread> thread = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    Throwable t =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Void> inner =
                          g.fork(
                              () -> {
                                thread.set(Thread.currentThread());
                                started.countDown();
                                Thread.sleep(Duration.ofSeconds(10));
                              });
                      started.await();
                      Thread canceller =
                          Thread.ofVirtual()
                              .start(
                                  () -> {
                                    awaitBlocked(thread.get());
                                    inner.cancel(true);
                                  });
                      try {
                        inner.get();
                      } catch (CancellationException ex) {
                        canceller.join();
                        throw new IllegalArgumentException("cancelled", ex);
                      }
                    }));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .isInstanceOf(IllegalArgumentException.class)
        .satisfies(f -> assertThat(f.getCause()).isInstanceOf(CancellationException.class));
  }

  // test_cancel_current_task: a task cancels itself, then sleeps: the sleep is cancelled at once;
  // the task ends CANCELLED and cancelling it again returns false.
  @RepeatedTest(5)
  void aTaskThatCancelsItselfIsCancelledAtItsNextSleep() throws Exception {
    TaskGroup g = TaskGroup.named("cancel-current");
    AtomicReference<Task<Integer>> self = new AtomicReference<>();
    CountDownLatch handed = new CountDownLatch(1);
    AtomicBoolean pastSleep = new AtomicBoolean();
    long t0 = System.nanoTime();
    g.run(
        () -> {
          self.set(
              g.fork(
                  () -> {
                    handed.await();
                    assertThat(self.get().cancel(true)).isTrue();
                    Thread.sleep(Duration.ofSeconds(100));
                    pastSleep.set(true);
                    return 12;
                  }));
          handed.countDown();
        });
    assertThat(pastSleep).isFalse();
    assertThat(millisSince(t0)).isLessThan(5_000);
    assertThat(self.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(self.get().cancel(true)).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_cancel_at_end: a task cancels itself and returns at once (no checkpoint between): it is
  // cancelled, its result dropped (Task: "Once cancel returns true the state is CANCELLED and a
  // result that arrives later is dropped"), and it is no failure.
  @RepeatedTest(10)
  void aTaskThatCancelsItselfAndReturnsIsCancelledAndItsResultDropped() throws Exception {
    TaskGroup g = TaskGroup.named("cancel-at-end");
    AtomicReference<Task<Integer>> self = new AtomicReference<>();
    CountDownLatch handed = new CountDownLatch(1);
    g.run(
        () -> {
          self.set(
              g.fork(
                  () -> {
                    handed.await();
                    self.get().cancel(true);
                    return 12;
                  }));
          handed.countDown();
        });
    assertThat(self.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(catchThrowable(() -> self.get().get())).isInstanceOf(CancellationException.class);
    assertThat(self.get().toCompletableFuture().isCancelled()).isTrue();
    assertThat(g.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_cancel_inner_future. Differs by design: asyncio marks the task cancelled when the future
  // it awaits is cancelled by someone else. Here the task itself was not cancelled, so the
  // CancellationException that await throws ("if someone else cancelled the stage") is the task's
  // failure (Task.toCompletableFuture javadoc: "thrown by the work while nothing cancelled it").
  @RepeatedTest(5)
  void aTaskWhoseAwaitedFutureIsCancelledBySomeoneElseFails() throws Exception {
    CompletableFuture<Integer> f = new CompletableFuture<>();
    TaskGroup g = TaskGroup.named("cancel-inner-future");
    AtomicReference<Task<Integer>> t = new AtomicReference<>();
    AtomicReference<Thread> thread = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      t.set(
                          g.fork(
                              () -> {
                                thread.set(Thread.currentThread());
                                started.countDown();
                                return CancelScope.await(f);
                              }));
                      started.await();
                      awaitBlocked(thread.get());
                      f.cancel(true);
                    }));
    assertThat(f.isCancelled()).isTrue();
    assertThat(t.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(t.get().exceptionNow()).isInstanceOf(CancellationException.class);
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(CancellationException.class);
  }

  // test_cancel_both_task_and_inner_future: the awaited future is cancelled, then the task. The
  // two race the task's own end: if cancel() returned true the task is CANCELLED; if it lost, the
  // task failed with the future's CancellationException. The group reports that failure at most
  // once, and only when the task is not cancelled or the failure was judged before the cancel.
  @RepeatedTest(10)
  void theAwaitedFutureAndTheTaskCancelledTogetherEndTheTaskOnceWithOneOutcome() throws Exception {
    CompletableFuture<Integer> f = new CompletableFuture<>();
    TaskGroup g = TaskGroup.named("cancel-both");
    AtomicReference<Task<Integer>> t = new AtomicReference<>();
    AtomicReference<Thread> thread = new AtomicReference<>();
    AtomicBoolean cancelled = new AtomicBoolean();
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      t.set(
                          g.fork(
                              () -> {
                                thread.set(Thread.currentThread());
                                started.countDown();
                                return CancelScope.await(f);
                              }));
                      started.await();
                      awaitBlocked(thread.get());
                      f.cancel(true);
                      cancelled.set(t.get().cancel(true));
                    }));
    assertThat(f.isCancelled()).isTrue();
    Task<Integer> task = t.get();
    if (cancelled.get()) {
      assertThat(task.state()).isEqualTo(Future.State.CANCELLED);
    } else {
      assertThat(task.state()).isEqualTo(Future.State.FAILED);
      assertThat(thrown).isNotNull();
    }
    if (thrown != null) {
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures())
          .singleElement()
          .isInstanceOf(CancellationException.class);
    }
  }

  // test_cancel_task_catching. Differs by design: asyncio lets a task that catches its
  // cancellation return 42 and not be cancelled. Here cancel(true) returned true, so the task is
  // CANCELLED and the 42 is dropped (Future contract); the catching code did run. The scope
  // counterpart keeps the value: a body that catches its scope's cancellation returns normally,
  // call returns 42 and cancelCaught is false.
  @RepeatedTest(5)
  void aTaskThatCatchesItsCancellationAndReturnsIsStillCancelled() throws Exception {
    CompletableFuture<Void> fut1 = new CompletableFuture<>();
    CompletableFuture<Void> fut2 = new CompletableFuture<>();
    AtomicBoolean caught = new AtomicBoolean();
    AtomicReference<Thread> thread = new AtomicReference<>();
    AtomicReference<Task<Integer>> t = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("cancel-catching");
    g.run(
        () -> {
          t.set(
              g.fork(
                  () -> {
                    thread.set(Thread.currentThread());
                    CancelScope.await(fut1);
                    try {
                      CancelScope.await(fut2);
                    } catch (InterruptedException e) {
                      caught.set(true);
                      return 42;
                    }
                    return 0;
                  }));
          fut1.complete(null);
          while (thread.get() == null) {
            Thread.onSpinWait();
          }
          Probes.awaitTrue(
              "waits for fut2", Duration.ofSeconds(10), () -> fut2.getNumberOfDependents() > 0);
          assertThat(t.get().cancel(true)).isTrue();
        });
    assertThat(caught).isTrue();
    assertThat(fut2.isCancelled()).isTrue();
    assertThat(t.get().state()).isEqualTo(Future.State.CANCELLED);

    CancelScope scope = CancelScope.create();
    Integer r =
        scope.call(
            () -> {
              scope.cancel();
              try {
                CancelScope.checkpoint();
                return 0;
              } catch (InterruptedException e) {
                return 42;
              }
            });
    assertThat(r).isEqualTo(42);
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // test_cancel_task_ignoring / test_task_cancel_waiter_future. Differs by design: asyncio lets a
  // task that ignored its cancellation wait on fut3 and return its result. Here the cancellation
  // is level-triggered: the next wait (CancelScope.await of fut3) throws at once, and cancels
  // fut3, as it cancelled fut2 (await javadoc); fut3 never completed.
  @RepeatedTest(5)
  void aTaskThatIgnoresItsCancellationIsCancelledAgainAtItsNextWait() throws Exception {
    CompletableFuture<Void> fut2 = new CompletableFuture<>();
    CompletableFuture<Integer> fut3 = new CompletableFuture<>();
    AtomicBoolean ignored = new AtomicBoolean();
    AtomicBoolean cancelledAgain = new AtomicBoolean();
    AtomicReference<Task<Integer>> t = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("cancel-ignoring");
    g.run(
        () -> {
          t.set(
              g.fork(
                  () -> {
                    try {
                      CancelScope.await(fut2);
                    } catch (InterruptedException e) {
                      ignored.set(true);
                    }
                    try {
                      return CancelScope.await(fut3);
                    } catch (InterruptedException e) {
                      cancelledAgain.set(true);
                      throw e;
                    }
                  }));
          Probes.awaitTrue(
              "waits for fut2", Duration.ofSeconds(10), () -> fut2.getNumberOfDependents() > 0);
          assertThat(t.get().cancel(true)).isTrue();
        });
    assertThat(ignored).isTrue();
    assertThat(cancelledAgain).isTrue();
    assertThat(fut2.isCancelled()).isTrue();
    assertThat(fut3.isCancelled()).isTrue();
    assertThat(t.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // test_cancel_awaited_task (bpo-34872): a task cancels itself, then waits for a sub-task it
  // started (in a group of its own): the wait throws at once, and the sub-task and the future it
  // awaits are cancelled too.
  @RepeatedTest(5)
  void aTaskThatCancelsItselfThenWaitsForItsSubTaskCancelsTheSubTaskAndItsFuture()
      throws Exception {
    CompletableFuture<Void> fut = new CompletableFuture<>();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    AtomicReference<Task<Void>> nested = new AtomicReference<>();
    CountDownLatch handed = new CountDownLatch(1);
    TaskGroup g = TaskGroup.named("cancel-awaited");
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    handed.await();
                    TaskGroup sub = TaskGroup.named("sub");
                    sub.run(
                        () -> {
                          nested.set(sub.fork(() -> CancelScope.await(fut)));
                          Probes.awaitTrue(
                              "nested waits",
                              Duration.ofSeconds(10),
                              () -> fut.getNumberOfDependents() > 0);
                          task.get().cancel(true);
                          nested.get().get();
                        });
                  }));
          handed.countDown();
        });
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(nested.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(fut.isCancelled()).isTrue();
  }

  // test_task_cancel_sleeping_task: the body waits for a sleeper that another thread cancels: the
  // body's wait throws CancellationException (the body is not cancelled), the body handles it,
  // and the group is neither cancelled nor failed.
  @RepeatedTest(5)
  void waitingForATaskThatSomeoneElseCancelsThrowsCancellationExceptionToTheWaiter()
      throws Exception {
    TaskGroup g = TaskGroup.named("cancel-sleeping");
    AtomicReference<Thread> thread = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    String r =
        g.call(
            () -> {
              Task<Void> sleeper =
                  g.fork(
                      () -> {
                        thread.set(Thread.currentThread());
                        started.countDown();
                        Thread.sleep(Duration.ofSeconds(5000));
                      });
              started.await();
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitBlocked(thread.get());
                        sleeper.cancel(true);
                      });
              try {
                sleeper.get();
                return "slept in";
              } catch (CancellationException e) {
                return "cancelled";
              }
            });
    assertThat(r).isEqualTo("cancelled");
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
  }

  // test_baseexception_during_cancel: the task answers its cancellation with SystemExit (an
  // Error). Differs by design in the task's state (cancel returned true, so it is CANCELLED), but
  // the Error is not lost: the group reports it (Task: "A failure that arrives later is still a
  // failure of the group").
  @RepeatedTest(5)
  void anErrorRaisedInAnswerToTheTasksCancellationIsReported() throws Exception {
    TaskGroup g = TaskGroup.named("baseexception-during-cancel");
    AtomicReference<Thread> thread = new AtomicReference<>();
    AtomicReference<Task<Void>> t = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    ExitError exit = new ExitError("exit");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      t.set(
                          g.fork(
                              () -> {
                                thread.set(Thread.currentThread());
                                started.countDown();
                                try {
                                  Thread.sleep(Duration.ofSeconds(10));
                                } catch (InterruptedException e) {
                                  throw exit;
                                }
                              }));
                      started.await();
                      awaitBlocked(thread.get());
                      assertThat(t.get().cancel(true)).isTrue();
                    }));
    assertThat(t.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(exit);
  }

  // test_yield_future_passes_cancel: cancelling the task reaches the innermost wait (inner sees
  // it, +1, and re-raises), then the outer frame catches it (+100) and returns normally: proof is
  // 101 and the awaited future is cancelled. (The task is CANCELLED all the same: cancel returned
  // true.)
  @RepeatedTest(5)
  void aCancellationPassesThroughEveryFrameToTheOneThatCatchesIt() throws Exception {
    CompletableFuture<Void> waiter = new CompletableFuture<>();
    AtomicInteger proof = new AtomicInteger();
    AtomicReference<Task<Void>> f = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("passes-cancel");
    g.run(
        () -> {
          f.set(
              g.fork(
                  () -> {
                    try {
                      try {
                        CancelScope.await(waiter);
                        throw new AssertionError("got past the wait in inner");
                      } catch (InterruptedException e) {
                        proof.addAndGet(1);
                        throw e;
                      }
                    } catch (InterruptedException e) {
                      proof.addAndGet(100);
                    }
                  }));
          Probes.awaitTrue(
              "waits", Duration.ofSeconds(10), () -> waiter.getNumberOfDependents() > 0);
          f.get().cancel(true);
        });
    assertThat(proof).hasValue(101);
    assertThat(waiter.isCancelled()).isTrue();
    assertThat(f.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // ============================================================ test_tasks.py: shield

  // test_shield_effect: cancelling the task does not affect the shielded work, which completes
  // (proof 1); the task ends cancelled and never gets past the shield (no +100). Differs by design
  // in when the task leaves: asyncio's shield lets it leave at once; a shielded scope keeps it
  // until the shielded work ends, then the cancellation is delivered again.
  @RepeatedTest(5)
  void aShieldedWaitCompletesDespiteTheTasksCancellationWhichThenStopsTheTask() throws Exception {
    CountDownLatch waiter = new CountDownLatch(1);
    AtomicInteger proof = new AtomicInteger();
    AtomicReference<Thread> thread = new AtomicReference<>();
    AtomicReference<Task<Void>> f = new AtomicReference<>();
    AtomicBoolean interruptedInShield = new AtomicBoolean();
    TaskGroup g = TaskGroup.named("shield-effect");
    g.run(
        () -> {
          f.set(
              g.fork(
                  () -> {
                    thread.set(Thread.currentThread());
                    CancelScope.shielded()
                        .run(
                            () -> {
                              waiter.await();
                              interruptedInShield.set(Thread.currentThread().isInterrupted());
                              proof.addAndGet(1);
                            });
                    CancelScope.checkpoint();
                    proof.addAndGet(100);
                  }));
          Probes.awaitTrue("started", Duration.ofSeconds(10), () -> thread.get() != null);
          awaitBlocked(thread.get());
          assertThat(f.get().cancel(true)).isTrue();
          waiter.countDown();
        });
    assertThat(proof).hasValue(1);
    assertThat(interruptedInShield).isFalse();
    assertThat(f.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // test_shield_result / test_shield_exception / test_shield_shortcut / test_shield_cancel_inner:
  // inside a cancelled group, a shield returns its body's result, lets its body's exception out
  // unchanged (and it is a failure, though the group around is cancelled: judged in the shield),
  // and a shield cancelled from inside absorbs its own cancellation.
  @RepeatedTest(5)
  void aShieldInACancelledGroupReturnsItsResultPassesItsExceptionAndAbsorbsItsOwnCancel()
      throws Exception {
    TaskGroup g = TaskGroup.named("shield-outcomes");
    AtomicReference<Integer> result = new AtomicReference<>();
    AtomicBoolean innerCaught = new AtomicBoolean();
    IOException expected = new IOException("expected");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.cancel();
                      result.set(
                          CancelScope.shielded()
                              .call(
                                  () -> {
                                    Thread.sleep(1);
                                    return 42;
                                  }));
                      CancelScope inner = CancelScope.shielded();
                      inner.run(
                          () -> {
                            inner.cancel();
                            Thread.sleep(Duration.ofSeconds(10));
                          });
                      innerCaught.set(inner.cancelCaught());
                      CancelScope.shielded()
                          .run(
                              () -> {
                                throw expected;
                              });
                    }));
    assertThat(result.get()).isEqualTo(42);
    assertThat(innerCaught).isTrue();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(expected);
  }

  // test_shield_gather: a shielded gather (invokeAll) completes with every result though the task
  // around it is cancelled; the cancellation is delivered when the shield ends. test_gather_shield
  // (each child shielded, the gather cancelled) differs by design: the shielded children would be
  // orphans of the cancelled gather, which structured lifetimes do not allow.
  @RepeatedTest(5)
  void aShieldedInvokeAllCompletesWithEveryResultInsideACancelledGroup() throws Exception {
    TaskGroup g = TaskGroup.named("shield-gather");
    AtomicReference<List<Integer>> results = new AtomicReference<>();
    AtomicBoolean cancelledAfter = new AtomicBoolean();
    g.run(
        () -> {
          g.cancel();
          results.set(
              CancelScope.shielded()
                  .call(
                      () ->
                          TaskGroup.invokeAll(
                              List.of(
                                  () -> {
                                    Thread.sleep(5);
                                    return 1;
                                  },
                                  () -> {
                                    Thread.sleep(5);
                                    return 2;
                                  }))));
          cancelledAfter.set(CancelScope.isCancelled());
        });
    assertThat(results.get()).containsExactly(1, 2);
    assertThat(cancelledAfter).isTrue();
    assertThat(g.cancelCaught()).isTrue();
  }

  // ============================================================ test_tasks.py: gather

  // test_cancel_gather_1 (issue #26923, a gather refuses cancellation once its children are
  // done): the caller's scope is cancelled from another thread as invokeAll's last task ends.
  // Allowed: every result (the cancel came too late to matter) or the scope absorbed the
  // cancellation (call returns null); never a partial list, a failure or an interrupt left behind.
  @RepeatedTest(3)
  void aCancelRacingTheLastResultOfInvokeAllGivesAllResultsOrACaughtCancellation()
      throws Exception {
    long seed = new Random().nextLong();
    System.out.println("aCancelRacingTheLastResultOfInvokeAll seed=" + seed);
    Random rnd = new Random(seed);
    int whole = 0;
    int caught = 0;
    for (int i = 0; i < 40; i++) {
      CancelScope scope = CancelScope.create();
      CountDownLatch last = new CountDownLatch(1);
      int spins = rnd.nextInt(5_000);
      Thread canceller =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      last.await();
                    } catch (InterruptedException e) {
                      return;
                    }
                    for (int s = 0; s < spins; s++) {
                      Thread.onSpinWait();
                    }
                    scope.cancel();
                  });
      List<Integer> r =
          scope.call(
              () ->
                  TaskGroup.invokeAll(
                      List.of(
                          () -> 1,
                          () -> {
                            last.countDown();
                            return 42;
                          })));
      canceller.join();
      if (r == null) {
        assertThat(scope.cancelCaught()).as("seed %d", seed).isTrue();
        caught++;
      } else {
        assertThat(r).as("seed %d", seed).containsExactly(1, 42);
        assertThat(scope.cancelCaught()).isFalse();
        whole++;
      }
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
    System.out.println("invokeAll vs cancel: " + whole + " whole, " + caught + " caught");
  }

  // test_cancel_gather_2: a task looping over gather(sleep) is cancelled: the cancellation comes
  // out of the gather (invokeAll's InterruptedException) and the task ends CANCELLED, not failed;
  // the one awaiting the task gets the cancellation (CancellationException).
  @RepeatedTest(3)
  void aTaskLoopingOverInvokeAllIsCancelledNotFailed() throws Exception {
    TaskGroup g = TaskGroup.named("cancel-gather-2");
    AtomicInteger rounds = new AtomicInteger();
    AtomicReference<Throwable> awaited = new AtomicReference<>();
    g.run(
        () -> {
          Task<Void> qwe =
              g.fork(
                  () -> {
                    for (int i = 0; i < 200; i++) {
                      TaskGroup.invokeAll(
                          List.of(
                              () -> {
                                Thread.sleep(5);
                                return null;
                              }));
                      rounds.incrementAndGet();
                    }
                  });
          Probes.awaitTrue("a few rounds", Duration.ofSeconds(10), () -> rounds.get() >= 3);
          qwe.cancel(true);
          awaited.set(catchThrowable(qwe::get));
          assertThat(qwe.state()).isEqualTo(Future.State.CANCELLED);
        });
    assertThat(rounds.get()).isLessThan(200);
    assertThat(awaited.get()).isInstanceOf(CancellationException.class);
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_cancellation_broadcast (gather): cancelling the task that gathers cancels every gathered
  // child; none gets past its wait (proof 0).
  @RepeatedTest(5)
  void cancellingTheTaskThatRunsInvokeAllCancelsEveryTask() throws Exception {
    TaskGroup g = TaskGroup.named("broadcast");
    CountDownLatch never = new CountDownLatch(1);
    CountDownLatch bothWaiting = new CountDownLatch(2);
    AtomicInteger proof = new AtomicInteger();
    AtomicInteger cancelledChildren = new AtomicInteger();
    AtomicReference<Task<Void>> f = new AtomicReference<>();
    g.run(
        () -> {
          Callable inner =
              () -> {
                bothWaiting.countDown();
                try {
                  never.await();
                } catch (InterruptedException e) {
                  cancelledChildren.incrementAndGet();
                  throw e;
                }
                proof.incrementAndGet();
                return null;
              };
          f.set(
              g.fork(
                  () -> {
                    TaskGroup.invokeAll(List.of(inner::call, inner::call));
                    proof.addAndGet(100);
                  }));
          bothWaiting.await();
          assertThat(f.get().cancel(true)).isTrue();
        });
    assertThat(proof).hasValue(0);
    assertThat(cancelledChildren).hasValue(2);
    assertThat(f.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  /** A Callable without the generic noise, for the two children above. */
  @FunctionalInterface
  private interface Callable {
    Object call() throws Exception;
  }

  // test_one_cancellation (gather): one gathered child ends with CancellationException of its
  // own (nothing cancelled it): asyncio gives that CancelledError as the gather's exception;
  // here it is a failure of invokeAll, which cancels the rest (invokeAll javadoc).
  @RepeatedTest(5)
  void aCancellationExceptionOfOneTaskInInvokeAllIsItsFailureAndCancelsTheRest() throws Exception {
    AtomicBoolean otherCancelled = new AtomicBoolean();
    CountDownLatch otherWaiting = new CountDownLatch(1);
    Throwable t =
        catchThrowable(
            () ->
                TaskGroup.invokeAll(
                    List.<java.util.concurrent.Callable<Integer>>of(
                        () -> 1,
                        () -> {
                          otherWaiting.await();
                          throw new CancellationException("of its own");
                        },
                        () -> {
                          otherWaiting.countDown();
                          try {
                            Thread.sleep(Duration.ofSeconds(10));
                          } catch (InterruptedException e) {
                            otherCancelled.set(true);
                            throw e;
                          }
                          return 3;
                        })));
    assertThat(t).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) t).failures())
        .singleElement()
        .isInstanceOf(CancellationException.class);
    assertThat(otherCancelled).isTrue();
  }

  // ============================================================ wait_for(task) as await
  // CancelScope.await(task.toCompletableFuture()) inside failAfter is asyncio's wait_for(task, t)
  // most closely: on the timeout await cancels the stage, and cancelling a task's future cancels
  // the task (Task.toCompletableFuture javadoc).

  // test_wait_for (on a task): the timeout cancels the awaited task, which is CANCELLED when
  // failAfter throws; its finally has run once the group's run returns. Differs by design in
  // when the finally has run: asyncio's wait_for waits for the task to finish cancelling; await
  // does not wait for the task's thread (the group does).
  @RepeatedTest(5)
  void aTimedOutAwaitOfATasksFutureCancelsTheTask() throws Exception {
    AtomicBoolean running = new AtomicBoolean();
    CountDownLatch started = new CountDownLatch(1);
    AtomicReference<Task<String>> foo = new AtomicReference<>();
    AtomicReference<Throwable> waited = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("await-wait_for");
    g.run(
        () -> {
          foo.set(
              g.fork(
                  () -> {
                    running.set(true);
                    started.countDown();
                    try {
                      Thread.sleep(Duration.ofSeconds(10));
                    } finally {
                      running.set(false);
                    }
                    return "done";
                  }));
          started.await();
          waited.set(
              catchThrowable(
                  () ->
                      CancelScope.failAfter(
                          Duration.ofMillis(50),
                          () -> CancelScope.await(foo.get().toCompletableFuture()))));
          assertThat(foo.get().state()).isEqualTo(Future.State.CANCELLED);
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
        });
    assertThat(waited.get()).isInstanceOf(TimeoutException.class);
    assertThat(running).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // _test_cancel_wait_for through await: cancelling the waiter, which awaits the blocking task's
  // future inside a 60 s timeout, cancels the blocking task too (issue #23219), and is no timeout.
  @RepeatedTest(5)
  void cancellingTheWaiterOfATasksFutureCancelsTheTask() throws Exception {
    AtomicReference<Thread> blockingThread = new AtomicReference<>();
    AtomicReference<Thread> waiterThread = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    AtomicReference<Throwable> waiterSaw = new AtomicReference<>();
    TaskGroup g = TaskGroup.named("cancel-await-wait_for");
    AtomicReference<Task<Void>> blocking = new AtomicReference<>();
    AtomicReference<Task<Void>> wait = new AtomicReference<>();
    g.run(
        () -> {
          blocking.set(
              g.fork(
                  () -> {
                    blockingThread.set(Thread.currentThread());
                    started.countDown();
                    new CountDownLatch(1).await();
                  }));
          started.await();
          awaitBlocked(blockingThread.get());
          wait.set(
              g.fork(
                  () -> {
                    waiterThread.set(Thread.currentThread());
                    try {
                      CancelScope.failAfter(
                          Duration.ofSeconds(60),
                          () -> CancelScope.await(blocking.get().toCompletableFuture()));
                    } catch (Throwable t) {
                      waiterSaw.set(t);
                      throw t;
                    }
                  }));
          Probes.awaitTrue(
              "waiter started", Duration.ofSeconds(10), () -> waiterThread.get() != null);
          awaitBlocked(waiterThread.get());
          assertThat(wait.get().cancel(true)).isTrue();
        });
    assertThat(waiterSaw.get()).isInstanceOf(InterruptedException.class);
    assertThat(wait.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(blocking.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isFalse();
  }

  // The result/deadline race for wait_for(task) through await: the task returns at about the
  // instant the timeout fires. Allowed: the result with the task SUCCESS; or TimeoutException
  // with the task CANCELLED (the timeout's cancel won) or SUCCESS (the result came in as await
  // was being cancelled: "A stage already complete may be returned"). Never the result of a
  // CANCELLED task, never a task still running after run, never an interrupt left behind.
  @RepeatedTest(3)
  void aTasksResultRacingTheTimeoutOfItsAwaitGivesOneConsistentOutcome() throws Exception {
    int[] seen = new int[3];
    for (int i = 0; i < 40; i++) {
      Duration d = Duration.ofNanos(300_000 + (i % 5) * 200_000L);
      TaskGroup g = TaskGroup.named("await-race");
      AtomicReference<Task<String>> child = new AtomicReference<>();
      AtomicReference<Object> outcome = new AtomicReference<>();
      g.run(
          () -> {
            child.set(
                g.fork(
                    () -> {
                      Thread.sleep(d);
                      return "result";
                    }));
            try {
              outcome.set(
                  CancelScope.failAfter(
                      d, () -> CancelScope.await(child.get().toCompletableFuture())));
            } catch (TimeoutException e) {
              outcome.set(e);
            }
            assertThat(Thread.currentThread().isInterrupted()).isFalse();
          });
      Task<String> c = child.get();
      if (outcome.get() instanceof TimeoutException) {
        assertThat(c.state()).isIn(Future.State.CANCELLED, Future.State.SUCCESS);
        seen[c.state() == Future.State.CANCELLED ? 1 : 2]++;
      } else {
        assertThat(outcome.get()).isEqualTo("result");
        assertThat(c.state()).isEqualTo(Future.State.SUCCESS);
        seen[0]++;
      }
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
    System.out.println(
        "await race: "
            + seen[0]
            + " results, "
            + seen[1]
            + " timeouts (cancelled), "
            + seen[2]
            + " timeouts (succeeded)");
  }

  // ============================================================ wait_for(nursery.start(...))

  // wait_for around start (Trio test_nursery_start with a deadline): work that never signals is
  // cancelled by the caller's timeout and waited for (its finally ran before start gave up); the
  // group itself is not cancelled and keeps working. The deadline is moved into the past by the
  // work once it runs: a deadline that fired before the child's thread began would cancel work
  // that never ran (Task javadoc), which is another scenario.
  @RepeatedTest(5)
  void aTimeoutAroundStartCancelsWorkThatNeverSignalsAndLeavesTheGroupRunning() throws Exception {
    AtomicBoolean finallyRan = new AtomicBoolean();
    AtomicBoolean finallyRanBeforeStartGaveUp = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    CancelScope timeout = CancelScope.withTimeout(Duration.ofSeconds(30));
    TaskGroup g = TaskGroup.named("start-timeout");
    g.run(
        () -> {
          thrown.set(
              catchThrowable(
                  () ->
                      timeout.run(
                          () ->
                              g.start(
                                  s -> {
                                    try {
                                      timeout.setDeadline(Instant.now().minusMillis(1));
                                      Thread.sleep(Duration.ofSeconds(10));
                                    } finally {
                                      finallyRan.set(true);
                                    }
                                    s.started("never");
                                  }))));
          finallyRanBeforeStartGaveUp.set(finallyRan.get());
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
          assertThat(g.fork(() -> "after").get()).isEqualTo("after");
        });
    assertThat(thrown.get()).isNull();
    assertThat(timeout.cancelCaught()).isTrue(); // failAfter's TimeoutException
    assertThat(finallyRanBeforeStartGaveUp).isTrue();
    assertThat(g.cancelCalled()).isFalse();
  }

  // test_wait_for_reraises_exception_during_cancellation around start: the work fails in its
  // cleanup while the caller's timeout cancels it, before it signalled. start throws that failure
  // (StartSignal/start javadoc: never lost), so the timeout scope lets it through, not absorbing
  // anything (no TimeoutException from failAfter): unchanged if unchecked, inside a
  // TaskGroupException if checked. It is no failure of the group, and no interrupt is left on the
  // caller once the timeout scope is left. (The work moves the deadline into the past once it
  // runs, as above.)
  @RepeatedTest(3)
  void aFailureInTheCleanupOfStartedWorkCancelledByTheCallersTimeoutComesOutOfStart()
      throws Exception {
    for (boolean checked : new boolean[] {false, true}) {
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicBoolean interruptedAfter = new AtomicBoolean();
      CancelScope timeout = CancelScope.withTimeout(Duration.ofSeconds(30));
      TaskGroup g = TaskGroup.named("start-cleanup-failure");
      g.run(
          () -> {
            thrown.set(
                catchThrowable(
                    () ->
                        timeout.run(
                            () ->
                                g.start(
                                    s -> {
                                      try {
                                        timeout.setDeadline(Instant.now().minusMillis(1));
                                        Thread.sleep(Duration.ofSeconds(10));
                                      } finally {
                                        if (checked) {
                                          throw new IOException("cleanup");
                                        }
                                        throw new FooException("cleanup");
                                      }
                                    }))));
            interruptedAfter.set(Thread.currentThread().isInterrupted());
            CancelScope.checkpoint(); // the body is not cancelled
          });
      if (checked) {
        assertThat(thrown.get()).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) thrown.get()).failures())
            .singleElement()
            .isInstanceOf(IOException.class);
      } else {
        assertThat(thrown.get()).isInstanceOf(FooException.class);
      }
      assertThat(timeout.cancelCaught()).isFalse();
      assertThat(interruptedAfter).as("checked %s", checked).isFalse();
      assertThat(g.cancelCalled()).isFalse();
    }
  }

  // ============================================================ timeouts and shields

  // test_shield_effect with a timeout inside (asyncio.shield(wait_for(...))): inside a shield, a
  // timeout of its own still fires and is a timeout, though the group around is cancelled; the
  // group's cancellation comes back after the shield.
  @RepeatedTest(5)
  void aTimeoutInsideAShieldInACancelledGroupIsATimeout() throws Exception {
    TaskGroup g = TaskGroup.named("shielded-timeout");
    AtomicReference<Throwable> inShield = new AtomicReference<>();
    AtomicBoolean cancelledAfterShield = new AtomicBoolean();
    g.run(
        () -> {
          g.cancel();
          CancelScope.shielded()
              .run(
                  () ->
                      inShield.set(
                          catchThrowable(
                              () ->
                                  CancelScope.failAfter(
                                      Duration.ofMillis(10),
                                      () -> {
                                        Thread.sleep(Duration.ofSeconds(10));
                                        return null;
                                      }))));
          cancelledAfterShield.set(CancelScope.isCancelled());
          CancelScope.checkpoint();
        });
    assertThat(inShield.get()).isInstanceOf(TimeoutException.class);
    assertThat(cancelledAfterShield).isTrue();
    assertThat(g.cancelCaught()).isTrue();
  }

  // test_timeout_in_cancelled_task for move_on_after: inside a cancelled group, moveOnAfter must
  // not return null as if its own timeout had fired: the group's cancellation goes through it.
  @RepeatedTest(5)
  void moveOnAfterInsideACancelledGroupLetsTheGroupsCancellationThrough() throws Exception {
    TaskGroup g = TaskGroup.named("move_on-in-cancelled");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean returned = new AtomicBoolean();
    g.run(
        () -> {
          g.cancel();
          try {
            CancelScope.moveOnAfter(
                Duration.ZERO,
                () -> {
                  Thread.sleep(Duration.ofSeconds(10));
                  return "x";
                });
            returned.set(true);
          } catch (InterruptedException e) {
            thrown.set(e);
            throw e;
          }
        });
    assertThat(returned).isFalse();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(g.cancelCaught()).isTrue();
  }

  // ============================================================ a cancel landing inside, kept

  /** A region the thread enters and leaves normally; {@code wait} runs inside it. */
  @FunctionalInterface
  private interface Region {
    void enter(Runnable wait) throws Exception;
  }

  private static List<Region> regions() {
    return List.of(
        w ->
            CancelScope.failAfter(
                Duration.ofSeconds(100),
                () -> {
                  w.run();
                  return "quick";
                }),
        w ->
            CancelScope.moveOnAfter(
                Duration.ofSeconds(100),
                () -> {
                  w.run();
                  return "quick";
                }),
        w -> CancelScope.create().run(w::run),
        w -> CancelScope.shielded().run(w::run),
        w -> CancelScope.cooperative().run(w::run),
        w ->
            CancelScope.create()
                .run(
                    () -> {
                      w.run();
                      Thread.interrupted(); // swallows whatever arrived
                    }),
        w -> {
          CancelScope shield = CancelScope.shielded();
          shield.run(
              () -> {
                w.run();
                shield.setShielded(false);
                shield.setShielded(true);
              });
        },
        w -> {
          try (var hook = CancelScope.onCancel(() -> {})) {
            w.run();
          }
        });
  }

  // test_wait_for_issue86296, made deterministic: the outer cancellation (a scope's cancel, a
  // group's cancel, a task's cancel) lands while the thread is inside an inner region that then
  // ends normally (wait_for returning its result, a shield, a cooperative scope, a body that
  // swallowed the interrupt, a cancel hook). On leaving the region the cancellation is still
  // there: the interrupt status is set again ("interrupted again when it enters or leaves a
  // scope": CancelScope javadoc), so the next interruptible call throws at once, and the sleep
  // that follows is never slept.
  @RepeatedTest(2)
  void aCancellationThatLandedInsideARegionThatEndsNormallyIsPendingAfterIt() throws Exception {
    List<Region> regions = regions();
    for (int r = 0; r < regions.size(); r++) {
      for (int kind = 0; kind < 3; kind++) {
        Region region = regions.get(r);
        AtomicBoolean inside = new AtomicBoolean();
        AtomicBoolean cancelled = new AtomicBoolean();
        AtomicBoolean statusAfter = new AtomicBoolean();
        AtomicBoolean sleptThrough = new AtomicBoolean();
        AtomicReference<Runnable> cancel = new AtomicReference<>();
        Runnable wait =
            () -> {
              inside.set(true);
              while (!cancelled.get()) {
                Thread.onSpinWait(); // no interruptible call: the interrupt stays pending
              }
            };
        Body afterRegion =
            () -> {
              region.enter(wait);
              statusAfter.set(Thread.currentThread().isInterrupted());
              Thread.sleep(Duration.ofSeconds(10));
              sleptThrough.set(true);
            };
        Thread canceller =
            Thread.ofPlatform()
                .start(
                    () -> {
                      while (!inside.get() || cancel.get() == null) {
                        Thread.onSpinWait();
                      }
                      cancel.get().run();
                      cancelled.set(true);
                    });
        long t0 = System.nanoTime();
        if (kind == 0) {
          CancelScope outer = CancelScope.create();
          cancel.set(outer::cancel);
          outer.run(afterRegion::run);
          assertThat(outer.cancelCaught()).isTrue();
        } else if (kind == 1) {
          TaskGroup g = TaskGroup.named("outer");
          cancel.set(g::cancel);
          g.run(afterRegion);
          assertThat(g.cancelCaught()).isTrue();
        } else {
          TaskGroup g = TaskGroup.named("holder");
          AtomicReference<Task<Void>> task = new AtomicReference<>();
          g.run(
              () -> {
                task.set(g.fork(afterRegion));
                cancel.set(() -> task.get().cancel(true));
              });
          assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
        }
        canceller.join();
        String what =
            "region " + r + ", cancelled as " + List.of("scope", "group", "task").get(kind);
        assertThat(statusAfter).as(what).isTrue();
        assertThat(sleptThrough).as(what).isFalse();
        assertThat(millisSince(t0)).as(what).isLessThan(5_000);
        assertThat(Thread.currentThread().isInterrupted()).as(what).isFalse();
      }
    }
  }

  // test_timeout_at_basic / test_timeout_in_the_past_sleep_zero: a scope made with a deadline
  // shows exactly that deadline (CancelScope.deadline: "as set"), before, during and after its run;
  // one in the past has expired at once and a zero sleep (a checkpoint) sees it.
  @Test
  void aDeadlineIsShownAsSetAndOneInThePastHasExpiredAtOnce() throws Exception {
    Instant deadline = Instant.now().plusMillis(20).plusNanos(123);
    CancelScope cm = CancelScope.withDeadline(deadline);
    assertThat(cm.deadline()).contains(deadline);
    cm.run(
        () -> {
          assertThat(cm.deadline()).contains(deadline);
          Thread.sleep(Duration.ofSeconds(10));
        });
    assertThat(cm.cancelCaught()).isTrue();
    assertThat(cm.deadline()).contains(deadline);

    Instant past = Instant.now().minusSeconds(11);
    CancelScope expired = CancelScope.withDeadline(past);
    assertThat(expired.cancelCalled()).isTrue();
    expired.run(() -> CancelScope.sleep(Duration.ZERO));
    assertThat(expired.cancelCaught()).isTrue();
    assertThat(expired.deadline()).contains(past);
  }

  // test_wait_for_reraises_exception_during_cancellation with a resource: the timeout cancels the
  // work, and closing the work's resource fails on the way out (suppressed on the cancellation by
  // try-with-resources). The close failure comes out of failAfter, not a timeout (CancelScope: "A
  // failure suppressed by the cancellation ... is still a failure").
  @RepeatedTest(3)
  void aCloseFailureOnTheWayOutOfATimedOutBodyComesOutInsteadOfTheTimeout() throws Exception {
    FooException closeFailed = new FooException("close");
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(5),
                    () -> {
                      try (AutoCloseable resource =
                          () -> {
                            throw closeFailed;
                          }) {
                        Thread.sleep(Duration.ofSeconds(10));
                      }
                      return null;
                    }));
    assertThat(t).isSameAs(closeFailed);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // wait_for around a wait an interrupt cannot end (asyncio cancels any await; a thread's
  // CompletableFuture.join is deaf to interrupts): the timeout's cancel hook ends it, the
  // exception it then raises counts as the cancellation (onCancel javadoc), and failAfter reports
  // the timeout. The same in a group with a deadline: the group caught its own cancellation.
  @RepeatedTest(3)
  void aTimeoutEndsAnUninterruptibleWaitThroughItsCancelHook() throws Exception {
    Throwable t =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(10),
                    () -> {
                      CompletableFuture<String> reply = new CompletableFuture<>();
                      try (var hook =
                          CancelScope.onCancel(
                              () -> reply.completeExceptionally(new IOException("aborted")))) {
                        return reply.join();
                      }
                    }));
    assertThat(t).isInstanceOf(TimeoutException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();

    TaskGroup g = TaskGroup.named("hooked");
    CountDownLatch started = new CountDownLatch(1);
    AtomicReference<Task<String>> child = new AtomicReference<>();
    g.run(
        () -> {
          child.set(
              g.fork(
                  () -> {
                    CompletableFuture<String> reply = new CompletableFuture<>();
                    try (var hook =
                        CancelScope.onCancel(
                            () -> reply.completeExceptionally(new IOException("aborted")))) {
                      started.countDown();
                      return reply.join();
                    }
                  }));
          started.await();
          g.cancelScope().setTimeout(Duration.ofMillis(5));
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // test_uncancel_structured_blocks, both halves. Timed out: the structured block is cut short,
  // the TimeoutException is handled, and the code after it runs uncancelled to the end. Not timed
  // out: the block finishes, and the timeout, unscheduled with its scope, never fires later
  // (asyncio
  // cancels its timer handle: "to avoid re-cancelling the task later").
  @Test
  void aTimeoutAffectsOnlyItsStructuredBlockAndNeverFiresAfterIt() throws Exception {
    for (boolean timesOut : new boolean[] {true, false}) {
      AtomicBoolean timedOut = new AtomicBoolean();
      AtomicBoolean blockFinished = new AtomicBoolean();
      AtomicBoolean outerCodeReached = new AtomicBoolean();
      TaskGroup g = TaskGroup.named("structured-blocks");
      Task<String> t;
      AtomicReference<Task<String>> ref = new AtomicReference<>();
      g.run(
          () ->
              ref.set(
                  g.fork(
                      () -> {
                        try {
                          CancelScope.failAfter(
                              timesOut ? Duration.ofMillis(20) : Duration.ofMillis(200),
                              () -> {
                                Thread.sleep(timesOut ? Duration.ofSeconds(10) : Duration.ZERO);
                                blockFinished.set(true);
                                return null;
                              });
                        } catch (TimeoutException e) {
                          timedOut.set(true);
                        }
                        // outer code, not affected by the timeout: it sleeps past the deadline the
                        // timeout had (time passes: that is the point)
                        Thread.sleep(400);
                        CancelScope.checkpoint();
                        outerCodeReached.set(true);
                        return "done";
                      })));
      t = ref.get();
      assertThat(timedOut.get()).as("times out %s", timesOut).isEqualTo(timesOut);
      assertThat(blockFinished.get()).as("times out %s", timesOut).isEqualTo(!timesOut);
      assertThat(outerCodeReached).as("times out %s", timesOut).isTrue();
      assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
      assertThat(g.cancelCalled()).isFalse();
    }
  }

  // Race twin: the canceller racing the task's end (wait_for's cancel of the awaited task as it
  // returns). Task javadoc: cancel returned true exactly when the task is CANCELLED (get throws
  // CancellationException, its future is cancelled); false exactly when it already SUCCEEDED with
  // its value. Never both, never a failure of the group, nothing left on the canceller.
  @RepeatedTest(2)
  void aCancelRacingTheTasksReturnGivesExactlyOneOutcome() throws Exception {
    long seed = new Random().nextLong();
    System.out.println("aCancelRacingTheTasksReturnGivesExactlyOneOutcome seed=" + seed);
    Random rnd = new Random(seed);
    int[] seen = new int[2];
    for (int i = 0; i < 100; i++) {
      int childSpins = rnd.nextInt(4_000);
      int cancelSpins = rnd.nextInt(4_000);
      TaskGroup g = TaskGroup.named("cancel-vs-return");
      AtomicReference<Task<String>> child = new AtomicReference<>();
      AtomicBoolean cancelled = new AtomicBoolean();
      CountDownLatch go = new CountDownLatch(1);
      g.run(
          () -> {
            child.set(
                g.fork(
                    () -> {
                      go.await();
                      for (int k = 0; k < childSpins; k++) {
                        Thread.onSpinWait();
                      }
                      return "value";
                    }));
            go.countDown();
            for (int k = 0; k < cancelSpins; k++) {
              Thread.onSpinWait();
            }
            cancelled.set(child.get().cancel(true));
            assertThat(Thread.currentThread().isInterrupted()).isFalse();
          });
      Task<String> c = child.get();
      if (cancelled.get()) {
        assertThat(c.state())
            .as("seed %d, iteration %d", seed, i)
            .isEqualTo(Future.State.CANCELLED);
        assertThat(catchThrowable(c::get)).isInstanceOf(CancellationException.class);
        assertThat(c.toCompletableFuture().isCancelled()).isTrue();
        seen[0]++;
      } else {
        assertThat(c.state()).as("seed %d, iteration %d", seed, i).isEqualTo(Future.State.SUCCESS);
        assertThat(c.get()).isEqualTo("value");
        seen[1]++;
      }
      assertThat(g.cancelCalled()).isFalse();
    }
    System.out.println("cancel vs return: " + seen[0] + " cancelled, " + seen[1] + " returned");
  }

  // Race twin: a failure arriving at the same instant as the group's deadline
  // (test_wait_for_reraises_exception_during_cancellation, racing). The child sleeps as long as
  // the deadline, then fails. Allowed (TaskGroup "When outcomes coincide"): the failure won the
  // race, or came in while cancelled, and run throws it, cancelCaught false; or the deadline's
  // interrupt ended the sleep first, the child ended by the cancellation before it could fail,
  // and run returns normally with cancelCaught true. Never a lost failure (a failed child with a
  // normal run), never both.
  @RepeatedTest(3)
  void aFailureAndTheDeadlineAtTheSameInstantGiveTheFailureOrTheCaughtTimeout() throws Exception {
    int[] seen = new int[2];
    for (int i = 0; i < 40; i++) {
      Duration d = Duration.ofNanos(300_000 + (i % 5) * 200_000L);
      TaskGroup g = TaskGroup.builder().name("fail-vs-deadline").timeout(d).build();
      AtomicReference<Task<Void>> child = new AtomicReference<>();
      Throwable t =
          catchThrowable(
              () ->
                  g.run(
                      () ->
                          child.set(
                              g.fork(
                                  () -> {
                                    Thread.sleep(d);
                                    throw new FooException("at the deadline");
                                  }))));
      if (t != null) {
        assertThat(t).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) t).failures())
            .singleElement()
            .isInstanceOf(FooException.class);
        assertThat(child.get().state()).isEqualTo(Future.State.FAILED);
        assertThat(g.cancelCaught()).isFalse();
        seen[0]++;
      } else {
        assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
        assertThat(g.cancelCaught()).isTrue();
        seen[1]++;
      }
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
    System.out.println("failure vs deadline: " + seen[0] + " failures, " + seen[1] + " caught");
  }
}
