package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The {@link Task} handle as a {@link Future} and through {@link Task#toCompletableFuture()}, and
 * {@link TaskGroup#invokeAll} / {@link TaskGroup#invokeAny}, held to the OpenJDK contracts: a
 * failure the future unwraps, the order in which a completion wakes {@code get()} waiters, runs the
 * future's dependent stages and delivers a cancellation, {@code cancel} racing the task's own end
 * (Future.cancel: "After this method returns, subsequent calls to isDone will always return true"),
 * a result or failure dropped by a cancel and still kept by the Task, completing the future (or
 * futures derived from it) from outside, the future's toString, what a thread polling the state
 * sees while the outcome changes, and invokeAll/invokeAny with nesting, many tasks, null results, a
 * task that ignores its cancellation, a deadline and an interrupted caller.
 *
 * <p>Closest upstream tests: OpenJDK tck {@code FutureTaskTest} (testCancelInterrupt_taskFails,
 * testGet_Cancelled, done() running after waiters are released), {@code CompletableFutureTest}
 * (testCancel, testCompleteExceptionally, testExceptionNow, testGet with a CompletionException,
 * testOrTimeout, testCompleteOnTimeout, testMinimalCompletionStage, testToString), {@code
 * test/jdk/java/util/concurrent/Future/DefaultMethods} (state(), resultNow(), exceptionNow()), and
 * the tck {@code AbstractExecutorServiceTest} / {@code ExecutorCompletionServiceTest}
 * invokeAll/invokeAny tests (testInvokeAll5, testInvokeAny4, testInvokeAny5).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FutureSweepTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static TaskGroup collect() {
    return TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
  }

  /** Waits (with a deadline) until {@code t} is parked. */
  private static void awaitParked(Thread t) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (t.getState() != Thread.State.WAITING && t.getState() != Thread.State.TIMED_WAITING) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(t + " did not park: " + t.getState());
      }
      Thread.sleep(1);
    }
  }

  // ---- a failure the future would unwrap --------------------------------------------------

  // CompletableFuture takes a CompletionException for its own wrapper: completed with the task's
  // CompletionException as it is, get() would throw an ExecutionException with the failure's
  // cause, and the body that rethrows it (Task: "if the body or a sibling rethrows that exception,
  // the group knows it as the child's failure and does not report it a second time. The same holds
  // for the ExecutionException or CompletionException of the task's future") reported the failure
  // twice. OpenJDK CompletableFutureTest: get() of a future completed exceptionally with ex throws
  // an ExecutionException whose cause is ex.
  @Test
  void aCompletionExceptionFailureReadThroughTheFutureIsTheFailureAndCountsOnce() throws Exception {
    IOException inner = new IOException("inner");
    CompletionException failure = new CompletionException("the work's own", inner);
    TaskGroup g = collect();
    AtomicReference<Task<Object>> task = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      task.set(
                          g.fork(
                              () -> {
                                throw failure;
                              }));
                      task.get().toCompletableFuture().get(); // rethrows its ExecutionException
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .as("the failure rethrown from the future's get() was reported a second time")
        .containsExactly(failure);

    CompletableFuture<Object> f = task.get().toCompletableFuture();
    assertThat(f.state()).isEqualTo(Future.State.FAILED);
    assertThat(f.isCancelled()).isFalse();
    assertThat(f.exceptionNow()).isSameAs(failure).isSameAs(task.get().exceptionNow());
    assertThat(catchThrowable(f::get))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isSameAs(failure);
    assertThat(catchThrowable(f::join)).isInstanceOf(CompletionException.class).hasCause(failure);
    assertThat(catchThrowable(() -> task.get().get()))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isSameAs(failure);

    // The same through a dependent stage's join(), rethrown by a sibling.
    TaskGroup g2 = collect();
    Throwable thrown2 =
        catchThrowable(
            () ->
                g2.run(
                    () -> {
                      Task<Object> t =
                          g2.fork(
                              () -> {
                                throw failure;
                              });
                      g2.fork(() -> t.toCompletableFuture().thenApply(x -> x).join());
                    }));
    assertThat(((TaskGroupException) thrown2).failures()).containsExactly(failure);
  }

  // ---- who runs first when the outcome is set ---------------------------------------------

  // A thread parked in get() is released before the future's dependent stages run on the
  // completing thread: a stage that waits for that thread must not hold it parked for ever
  // (OpenJDK FutureTask releases its waiters before done() runs).
  @RepeatedTest(3)
  void aWaiterParkedInGetIsReleasedBeforeTheFuturesDependentStagesRun() throws Exception {
    for (boolean byCancel : new boolean[] {false, true}) {
      TaskGroup g = TaskGroup.create();
      CountDownLatch waiterReturned = new CountDownLatch(1);
      CountDownLatch go = new CountDownLatch(1);
      AtomicBoolean stageSawTheWaiterReturn = new AtomicBoolean();
      g.run(
          () -> {
            Task<String> t =
                g.fork(
                    () -> {
                      go.await();
                      return "x";
                    });
            t.toCompletableFuture()
                .whenComplete(
                    (r, e) -> {
                      try {
                        stageSawTheWaiterReturn.set(waiterReturned.await(5, TimeUnit.SECONDS));
                      } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                      }
                    });
            Thread waiter =
                Thread.ofVirtual()
                    .start(
                        () -> {
                          try {
                            t.get();
                          } catch (Exception expected) {
                            // the outcome does not matter here, only that get() returned
                          }
                          waiterReturned.countDown();
                        });
            awaitParked(waiter);
            if (byCancel) {
              t.cancel(false);
            } else {
              go.countDown();
            }
            waiter.join();
          });
      assertThat(stageSawTheWaiterReturn)
          .as("get() waiter released before the dependent stages ran (by cancel: %s)", byCancel)
          .isTrue();
    }
  }

  // Task.cancel and the future's cancel deliver the cancellation before the future's dependent
  // stages run on the cancelling thread: a stage that waits for the task to stop must not hold
  // back the interrupt that stops it (FutureTask.cancel(true) interrupts before done() runs).
  @RepeatedTest(3)
  void cancelInterruptsTheTaskBeforeTheFuturesDependentStagesRun() throws Exception {
    for (boolean viaFuture : new boolean[] {false, true}) {
      TaskGroup g = TaskGroup.create();
      CountDownLatch started = new CountDownLatch(1);
      CountDownLatch workEnded = new CountDownLatch(1);
      AtomicBoolean stageSawTheWorkEnd = new AtomicBoolean();
      AtomicReference<Task<String>> task = new AtomicReference<>();
      g.run(
          () -> {
            Task<String> t =
                g.fork(
                    () -> {
                      try {
                        started.countDown();
                        Thread.sleep(60_000);
                        return "x";
                      } finally {
                        workEnded.countDown();
                      }
                    });
            task.set(t);
            CompletableFuture<String> f = t.toCompletableFuture();
            f.whenComplete(
                (r, e) -> {
                  try {
                    stageSawTheWorkEnd.set(workEnded.await(5, TimeUnit.SECONDS));
                  } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                  }
                });
            started.await();
            assertThat(viaFuture ? f.cancel(true) : t.cancel(true)).isTrue();
            assertThat(f.isCancelled()).isTrue();
          });
      assertThat(stageSawTheWorkEnd)
          .as("the task was interrupted before the stages ran (via the future: %s)", viaFuture)
          .isTrue();
      assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    }
  }

  // ---- cancel racing the task's own end ---------------------------------------------------

  // Future.cancel: "After this method returns, subsequent calls to isDone will always return
  // true", for the future's cancel too, even when the task's own end won the race and its thread
  // has not completed the future yet (Task.cancel promises it of the task, not of its future).
  // And once the group's run has returned, every task's future is complete, even when Task.cancel
  // set the outcome and the task ended on its own meanwhile.
  @RepeatedTest(3)
  void cancelRacingTheTasksOwnEndLeavesTheFutureDoneWhenEitherReturns() throws Exception {
    int rounds = 300;
    AtomicInteger notDoneAfterCancel = new AtomicInteger();
    AtomicInteger notDoneAfterRun = new AtomicInteger();
    AtomicInteger cancelsWon = new AtomicInteger();
    for (int i = 0; i < rounds; i++) {
      boolean viaFuture = (i & 1) == 0;
      TaskGroup g = TaskGroup.create();
      CyclicBarrier both = new CyclicBarrier(2);
      AtomicReference<Task<String>> task = new AtomicReference<>();
      AtomicReference<Thread> canceller = new AtomicReference<>();
      g.run(
          () -> {
            Task<String> t =
                g.fork(
                    () -> {
                      both.await();
                      return "x";
                    });
            task.set(t);
            CompletableFuture<String> f = t.toCompletableFuture();
            canceller.set(
                Thread.ofPlatform()
                    .start(
                        () -> {
                          try {
                            both.await();
                          } catch (Exception e) {
                            throw new AssertionError(e);
                          }
                          boolean won = viaFuture ? f.cancel(false) : t.cancel(false);
                          if (won) {
                            cancelsWon.incrementAndGet();
                          }
                          // Each cancel's contract is about its own Future: the task's may
                          // return false while its future is still being completed.
                          if (!(viaFuture ? f.isDone() : t.isDone())) {
                            notDoneAfterCancel.incrementAndGet();
                          }
                        }));
          });
      if (!task.get().toCompletableFuture().isDone()) {
        notDoneAfterRun.incrementAndGet();
      }
      canceller.get().join();
      CompletableFuture<String> f = task.get().toCompletableFuture();
      assertThat(f.state()).isEqualTo(task.get().state()); // the future follows the task
    }
    System.out.println(
        "cancel won "
            + cancelsWon
            + " of "
            + rounds
            + "; future not done after cancel: "
            + notDoneAfterCancel
            + ", after run: "
            + notDoneAfterRun);
    assertThat(notDoneAfterCancel).as("not done after cancel returned").hasValue(0);
    assertThat(notDoneAfterRun).as("future not done after the group's run returned").hasValue(0);
  }

  // Task: "Once cancel returns true the state is CANCELLED and a result that arrives later is
  // dropped. A failure that arrives later is still a failure of the group". Dropped means not kept
  // either: a Task held after its group finished (CPython test_taskgroups' "finished children
  // kept alive" family) must not keep a late result, nor a late failure the group has reported.
  @RepeatedTest(2)
  void aResultOrFailureArrivingAfterCancelIsNotKeptByTheTask() throws Exception {
    for (boolean fails : new boolean[] {false, true}) {
      TaskGroup g = collect();
      CountDownLatch started = new CountDownLatch(1);
      AtomicReference<java.lang.ref.WeakReference<Object>> late = new AtomicReference<>();
      AtomicReference<Task<Object>> task = new AtomicReference<>();
      Throwable thrown =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        task.set(
                            g.fork(
                                () -> {
                                  started.countDown();
                                  try {
                                    Thread.sleep(60_000);
                                  } catch (InterruptedException swallowed) {
                                    // ends on its own, late, after the cancel
                                  }
                                  if (fails) {
                                    // Not an IOException: thrown while the cancellation's
                                    // interrupt is delivered again (the interrupt was swallowed),
                                    // that would be the cancellation, by contract.
                                    IllegalStateException failure =
                                        new IllegalStateException("late");
                                    late.set(new java.lang.ref.WeakReference<>(failure));
                                    throw failure;
                                  }
                                  Object result = new byte[1 << 16];
                                  late.set(new java.lang.ref.WeakReference<>(result));
                                  return result;
                                }));
                        started.await();
                        assertThat(task.get().cancel(true)).isTrue();
                      }));
      if (fails) {
        assertThat(((TaskGroupException) thrown).failures())
            .singleElement()
            .isInstanceOf(IllegalStateException.class);
      } else {
        assertThat(thrown).isNull();
      }
      thrown = null; // what run threw holds the failure: let it go
      Task<Object> kept = task.get();
      assertThat(kept.state()).isEqualTo(Future.State.CANCELLED);
      assertThat(Probes.awaitCleared(List.of(late.get())))
          .as("the late %s is still reachable from the held task", fails ? "failure" : "result")
          .isZero();
      assertThat(kept.isCancelled()).isTrue(); // held until here
    }
  }

  // Task.toCompletableFuture: "completing it from outside does not affect the task". The JDK's
  // own ways of completing a future from outside (orTimeout, completeOnTimeout from the JDK's
  // delayer thread, obtrudeException with a CancellationException while the task runs) and
  // cancelling what is not the task's future (a minimalCompletionStage's or a copy's future)
  // leave the task running to its own success, the group without a failure, and the task's own
  // future cancel a no-op once it is done (OpenJDK CompletableFutureTest testOrTimeout,
  // testCompleteOnTimeout, testMinimalCompletionStage_toCompletableFuture, testObtrudeException).
  @RepeatedTest(3)
  void completingOrCancellingWhatIsNotTheTaskFromOutsideLeavesTheTaskAndTheGroupAlone()
      throws Exception {
    TaskGroup g = TaskGroup.create();
    CountDownLatch go = new CountDownLatch(1);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    AtomicReference<Throwable> timedOut = new AtomicReference<>();
    g.run(
        () -> {
          Task<String> t =
              g.fork(
                  () -> {
                    go.await();
                    return "x";
                  });
          task.set(t);
          CompletableFuture<String> f = t.toCompletableFuture();
          CompletableFuture<String> minimal = f.minimalCompletionStage().toCompletableFuture();
          assertThat(minimal.cancel(true)).isTrue();
          assertThat(f.copy().cancel(true)).isTrue();
          assertThat(f.isDone()).isFalse();
          f.orTimeout(1, TimeUnit.MILLISECONDS);
          timedOut.set(catchThrowable(f::join)); // completed by the JDK's delayer thread
          f.completeOnTimeout("late", 1, TimeUnit.MILLISECONDS); // already done: no effect
          f.obtrudeException(new CancellationException("from outside"));
          assertThat(f.isCancelled()).isTrue();
          assertThat(f.cancel(true)).isTrue(); // the future is cancelled; the task is not touched
          assertThat(t.isDone()).as("the task was affected from outside").isFalse();
          go.countDown();
        });
    assertThat(timedOut.get())
        .isInstanceOf(CompletionException.class)
        .hasCauseInstanceOf(java.util.concurrent.TimeoutException.class);
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(task.get().get()).isEqualTo("x");
    assertThat(task.get().toCompletableFuture().isCancelled()).isTrue(); // as obtruded
  }

  // CompletableFuture.toString: "The state, in brackets, contains the String "Completed
  // Normally" or the String "Completed Exceptionally", or the String "Not completed"" (OpenJDK
  // CompletableFutureTest testToString_incomplete / _normal / _exception / _cancelled): the
  // task's future says its own state so (it may differ from the task's: the future can be
  // completed from outside), then which task it is.
  @Test
  void theFuturesToStringGivesItsCompletionStateAsCompletableFutureDoes() throws Exception {
    TaskGroup g = collect();
    CountDownLatch go = new CountDownLatch(1);
    List<Task<String>> tasks = new ArrayList<>();
    Throwable bodyThrew =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<String> running =
                          g.fork(
                              "waits",
                              () -> {
                                go.await();
                                return "x";
                              });
                      tasks.add(running);
                      assertThat(running.toCompletableFuture().toString())
                          .matches(".*\\[(Not completed|Incomplete).*\\].*")
                          .contains("waits");
                      tasks.add(
                          g.fork(
                              "fails",
                              () -> {
                                throw new IOException("boom");
                              }));
                      Task<String> cancelled =
                          g.fork(
                              "cancelled",
                              () -> {
                                Thread.sleep(60_000);
                                return "never";
                              });
                      cancelled.cancel(true);
                      tasks.add(cancelled);
                      go.countDown();
                    }));
    assertThat(((TaskGroupException) bodyThrew).failures())
        .singleElement()
        .isInstanceOf(IOException.class);
    assertThat(tasks.get(0).toCompletableFuture().toString())
        .matches(".*\\[.*Completed normally.*\\].*")
        .contains("waits");
    assertThat(tasks.get(1).toCompletableFuture().toString())
        .matches(".*\\[.*Completed exceptionally.*\\].*")
        .contains("fails");
    assertThat(tasks.get(2).toCompletableFuture().toString())
        .matches(".*\\[.*Completed exceptionally.*CancellationException.*\\].*")
        .contains("cancelled");
  }

  // ---- what a poller sees -----------------------------------------------------------------

  // A thread polling state(), isDone(), isCancelled(), resultNow(), exceptionNow() and the
  // future while cancels race the task's success or failure never sees an impossible
  // combination: the state moves once, out of RUNNING, and each reading agrees with the one
  // before (OpenJDK Future DefaultMethods: resultNow/exceptionNow throw IllegalStateException
  // exactly in the states where they must).
  @RepeatedTest(3)
  void aPollerNeverSeesTheOutcomeGoBackOrContradictItself() throws Exception {
    long seed = System.nanoTime();
    System.out.println("aPollerNeverSeesTheOutcomeGoBackOrContradictItself seed " + seed);
    Random random = new Random(seed);
    IllegalStateException boom = new IllegalStateException("boom");
    List<String> violations = Collections.synchronizedList(new ArrayList<>());
    for (int round = 0; round < 100; round++) {
      boolean fails = random.nextBoolean();
      int cancellers = random.nextInt(3);
      TaskGroup g = collect();
      CountDownLatch go = new CountDownLatch(1);
      AtomicBoolean stop = new AtomicBoolean();
      catchThrowable(
          () ->
              g.run(
                  () -> {
                    Task<String> t =
                        g.fork(
                            () -> {
                              go.await();
                              if (fails) {
                                throw boom;
                              }
                              return "x";
                            });
                    CompletableFuture<String> f = t.toCompletableFuture();
                    Thread poller =
                        Thread.ofPlatform().start(() -> poll(t, f, boom, stop, violations));
                    AtomicInteger wins = new AtomicInteger();
                    List<Thread> cs = new ArrayList<>();
                    for (int c = 0; c < cancellers; c++) {
                      cs.add(
                          Thread.ofPlatform()
                              .start(
                                  () -> {
                                    if (t.cancel(random.nextBoolean())) {
                                      wins.incrementAndGet();
                                    }
                                  }));
                    }
                    go.countDown();
                    for (Thread c : cs) {
                      c.join();
                    }
                    if (wins.get() > 1) {
                      violations.add(wins + " cancels returned true");
                    }
                    if (wins.get() == 1 != (t.state() == Future.State.CANCELLED)) {
                      violations.add(wins + " cancels won, state " + t.state());
                    }
                    stop.set(true);
                    poller.join();
                  }));
    }
    assertThat(violations).as("seed %d", seed).isEmpty();
  }

  private static void poll(
      Task<String> t,
      CompletableFuture<String> f,
      Throwable boom,
      AtomicBoolean stop,
      List<String> violations) {
    Future.State seen = Future.State.RUNNING;
    do {
      // Read in an order where what an earlier reading saw must still hold for a later one.
      boolean cancelled = t.isCancelled();
      boolean done = t.isDone();
      Future.State s = t.state();
      if (seen != Future.State.RUNNING && s != seen) {
        violations.add("state went from " + seen + " to " + s);
      }
      seen = s;
      if (cancelled && (!done || s != Future.State.CANCELLED)) {
        violations.add("cancelled, then done " + done + " and state " + s);
      }
      if (done && s == Future.State.RUNNING) {
        violations.add("done, then running");
      }
      if (s != Future.State.RUNNING && (t.isCancelled() != (s == Future.State.CANCELLED))) {
        violations.add("state " + s + " but isCancelled " + t.isCancelled());
      }
      switch (s) {
        case SUCCESS -> {
          if (!"x".equals(t.resultNow())) {
            violations.add("resultNow " + t.resultNow());
          }
          if (catchThrowable(t::exceptionNow) == null) {
            violations.add("exceptionNow of a success did not throw");
          }
        }
        case FAILED -> {
          if (t.exceptionNow() != boom) {
            violations.add("exceptionNow " + t.exceptionNow());
          }
          if (catchThrowable(t::resultNow) == null) {
            violations.add("resultNow of a failure did not throw");
          }
        }
        case CANCELLED -> {
          if (catchThrowable(t::resultNow) == null || catchThrowable(t::exceptionNow) == null) {
            violations.add("resultNow/exceptionNow of a cancelled task did not throw");
          }
        }
        case RUNNING -> {
          // may have moved on since
        }
      }
      Future.State fs = f.state();
      if (fs != Future.State.RUNNING && fs != t.state()) {
        violations.add("future " + fs + ", task " + t.state());
      }
    } while (!stop.get());
  }

  // ---- invokeAll / invokeAny ---------------------------------------------------------------

  // OpenJDK tck testInvokeAll5 / testInvokeAny4-style: results in order, duplicates run twice,
  // null results kept; a Callable may itself call invokeAll / invokeAny (nested groups under
  // its task), and very many tasks all run and end before the call returns.
  @Test
  void invokeAllWithDuplicatesNullsNestingAndManyTasks() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    Callable<String> counted =
        () -> {
          calls.incrementAndGet();
          return "c";
        };
    Callable<String> nested =
        () -> String.join("+", TaskGroup.invokeAll(List.of(() -> "n1", () -> "n2")));
    Callable<String> nestedAny = () -> TaskGroup.invokeAny(List.of(() -> "any"));
    List<String> results =
        TaskGroup.invokeAll(List.of(counted, counted, () -> null, nested, nestedAny, counted));
    assertThat(results).containsExactly("c", "c", null, "n1+n2", "any", "c");
    assertThat(calls).hasValue(3);

    int many = 2_000;
    AtomicInteger running = new AtomicInteger();
    List<Callable<Integer>> work = new ArrayList<>();
    for (int i = 0; i < many; i++) {
      int n = i;
      work.add(
          () -> {
            running.incrementAndGet();
            try {
              return n;
            } finally {
              running.decrementAndGet();
            }
          });
    }
    List<Integer> got = TaskGroup.invokeAll(work);
    assertThat(running).as("a task outlived invokeAll").hasValue(0);
    for (int i = 0; i < many; i++) {
      assertThat(got.get(i)).isEqualTo(i);
    }
  }

  // A task that ignores its cancellation (spins, swallowing interrupts, until released) is
  // waited for: invokeAny does not return, and invokeAll does not throw, while it runs (no task
  // outlives the call; OpenJDK ExecutorService.invokeAny cancels "tasks that have not completed"
  // but cannot wait; here the group does).
  @RepeatedTest(3)
  void aTaskThatIgnoresItsCancellationIsWaitedForByInvokeAnyAndInvokeAll() throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicBoolean release = new AtomicBoolean();
      AtomicBoolean stubbornEnded = new AtomicBoolean();
      CountDownLatch stubbornStarted = new CountDownLatch(1);
      CountDownLatch stubbornInterrupted = new CountDownLatch(1);
      Callable<String> stubborn =
          () -> {
            stubbornStarted.countDown();
            while (!release.get()) {
              if (Thread.interrupted()) {
                stubbornInterrupted.countDown(); // the cancellation arrived: swallowed
              }
              Thread.onSpinWait();
            }
            stubbornEnded.set(true);
            return "late";
          };
      Callable<String> other =
          () -> {
            stubbornStarted.await();
            if (any) {
              return "fast";
            }
            throw new IOException("failed");
          };
      AtomicReference<Object> outcome = new AtomicReference<>();
      Thread caller =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      outcome.set(
                          any
                              ? TaskGroup.invokeAny(List.of(stubborn, other))
                              : TaskGroup.invokeAll(List.of(stubborn, other)));
                    } catch (Throwable e) {
                      outcome.set(e);
                    }
                  });
      assertThat(stubbornInterrupted.await(10, TimeUnit.SECONDS)).isTrue();
      assertThat(caller.join(java.time.Duration.ofMillis(50)))
          .as("invoke%s returned while a task still ran", any ? "Any" : "All")
          .isFalse();
      assertThat(outcome.get()).isNull();
      release.set(true);
      caller.join();
      assertThat(stubbornEnded).isTrue();
      if (any) {
        assertThat(outcome.get()).isEqualTo("fast");
      } else {
        assertThat(outcome.get()).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) outcome.get()).failures())
            .singleElement()
            .isInstanceOf(IOException.class);
      }
    }
  }

  // The caller's deadline ends invokeAll and invokeAny: InterruptedException once every task
  // has stopped, the deadline's scope absorbs it, and no interrupt is left on the caller.
  @RepeatedTest(3)
  void aDeadlineAroundInvokeAllAndInvokeAnyThrowsInterruptedAfterEveryTaskStopped()
      throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicInteger running = new AtomicInteger();
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      Callable<String> hang =
          () -> {
            running.incrementAndGet();
            try {
              Thread.sleep(60_000);
              return "never";
            } finally {
              running.decrementAndGet();
            }
          };
      CancelScope scope = CancelScope.withTimeout(java.time.Duration.ofMillis(50));
      scope.run(
          () -> {
            try {
              if (any) {
                TaskGroup.invokeAny(List.of(hang, hang, hang));
              } else {
                TaskGroup.invokeAll(List.of(hang, hang, hang));
              }
            } catch (Throwable t) {
              thrown.set(t);
              assertThat(running).as("a task outlived the call").hasValue(0);
              throw t;
            }
          });
      assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  // An interrupted caller: invokeAll / invokeAny throw InterruptedException and start no work
  // that outlives them (the tasks are cancelled and waited for); the status is clear after, as
  // JDK methods that throw InterruptedException leave it.
  @RepeatedTest(3)
  void anInterruptedCallerGetsInterruptedExceptionAndNoTaskOutlivesTheCall() throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicInteger running = new AtomicInteger();
      Callable<String> hang =
          () -> {
            running.incrementAndGet();
            try {
              Thread.sleep(60_000);
              return "never";
            } finally {
              running.decrementAndGet();
            }
          };
      Thread.currentThread().interrupt();
      Throwable thrown =
          catchThrowable(
              () -> {
                if (any) {
                  TaskGroup.invokeAny(List.of(hang, hang));
                } else {
                  TaskGroup.invokeAll(List.of(hang, hang));
                }
              });
      assertThat(thrown).isInstanceOf(InterruptedException.class);
      assertThat(running).hasValue(0);
      assertThat(Thread.interrupted()).isFalse();
    }
  }

  // Reading a task from inside its own work: resultNow/exceptionNow/state say RUNNING at once,
  // and a timed get() is refused at once (it could not complete while the thread waits for itself).
  @Test
  void aTaskReadingItselfSeesItRunningAndATimedGetIsRefused() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Task<String>> self = new AtomicReference<>();
    CountDownLatch published = new CountDownLatch(1);
    AtomicReference<Throwable> timedGet = new AtomicReference<>();
    g.run(
        () -> {
          self.set(
              g.fork(
                  () -> {
                    published.await();
                    Task<String> me = self.get();
                    assertThat(me.state()).isEqualTo(Future.State.RUNNING);
                    assertThat(me.isDone()).isFalse();
                    assertThat(catchThrowable(me::resultNow))
                        .isInstanceOf(IllegalStateException.class);
                    timedGet.set(catchThrowable(() -> me.get(10, TimeUnit.MILLISECONDS)));
                    return "x";
                  }));
          published.countDown();
        });
    assertThat(timedGet.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("from its own thread");
    assertThat(self.get().resultNow()).isEqualTo("x");
  }
}
