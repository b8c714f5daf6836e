package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Java twins of the JDK 25 (and later) {@code
 * test/jdk/java/util/concurrent/StructuredTaskScope/StructuredTaskScopeTest.java} tests that {@link
 * PortedJdkTest} does not twin, with the races around them repeated, and of {@code
 * StructuredThreadDumpTest.java} (through {@link TaskTree}). The map: {@code open()} is a default
 * group (the first failure cancels), {@code Joiner.allUntil} / {@code awaitAll} is {@link
 * FailurePolicy#COLLECT} (a predicate or {@code onComplete} returning true is a child calling
 * {@link TaskGroup#cancel()}; {@code onComplete} throwing is an {@code onFailure} handler
 * throwing), {@code withTimeout} is the builder's {@code timeout}, {@code join} and {@code close}
 * are the end of {@code run}, {@code Subtask.get/exception/state} are {@link Task#resultNow()},
 * {@link Task#exceptionNow()} and {@link Task#state()} (UNAVAILABLE after a cancellation is {@code
 * CANCELLED}). Where the library differs by design the twin asserts the documented behaviour: any
 * thread may fork while the run is open (testForkConfined), a second run is refused from any thread
 * (testJoinConfined), the group's own timeout is absorbed ({@code run} returns normally, where
 * {@code join} throws {@code TimeoutException}), a negative timeout is refused by the builder. Not
 * translated: the Joiner objects themselves (testJoinerDefaultMethods,
 * testJoinersWithUnavailableResult, the exception-supplying functions), {@code Configuration}
 * equality, {@code Joiner.timeout()} hooks, and the structure violations (scopes nest by
 * construction here). Each test names its upstream test.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedJdkStsTest {

  /** Forks an outside thread makes at most while racing the end of a run. */
  private static final int FORK_CAP = 300;

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static final class FooException extends RuntimeException {
    FooException(String message) {
      super(message);
    }
  }

  /** Polls until {@code t} is parked or blocked (no sleep as synchronisation), 10 s at most. */
  private static void awaitBlocked(Thread t) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      Thread.State s = t.getState();
      if (s == Thread.State.WAITING
          || s == Thread.State.TIMED_WAITING
          || s == Thread.State.BLOCKED) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(t + " never blocked, state " + s);
      }
      Thread.sleep(1); // polling interval only: the loop condition is the synchronisation
    }
  }

  /** Runs {@code c} on another thread and returns what it returned or throws what it threw. */
  private static <V> V onOtherThread(java.util.concurrent.Callable<V> c) throws Exception {
    AtomicReference<V> result = new AtomicReference<>();
    AtomicReference<Exception> failure = new AtomicReference<>();
    Thread t =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    result.set(c.call());
                  } catch (Exception e) {
                    failure.set(e);
                  }
                });
    t.join();
    if (failure.get() != null) {
      throw failure.get();
    }
    return result.get();
  }

  // =============================================== fork

  // testForkConfined, reversed by design (TaskGroup javadoc: every method may be called from any
  // thread): a thread outside the group and a child of it both fork while the run is open; their
  // children run in the group and run waits for them although nobody reads them.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aThreadOutsideAndAChildMayForkWhileTheRunIsOpen(ThreadKind kind) throws Exception {
    Tracking tracking = new Tracking(kind);
    TaskGroup g = Fixtures.group("sts-confined", tracking);
    CountDownLatch release = new CountDownLatch(1);
    AtomicInteger done = new AtomicInteger();
    ConcurrentLinkedQueue<Task<?>> forked = new ConcurrentLinkedQueue<>();
    try (ExecutorService pool = Executors.newSingleThreadExecutor()) {
      g.run(
          () -> {
            Future<?> outside =
                pool.submit(
                    () ->
                        forked.add(
                            g.fork(
                                () -> {
                                  release.await();
                                  done.incrementAndGet();
                                })));
            outside.get();
            forked.add(
                g.fork(
                    () -> {
                      forked.add(
                          g.fork(
                              () -> {
                                release.await();
                                done.incrementAndGet();
                              }));
                      return "outer";
                    }));
            release.countDown();
          });
    }
    assertThat(done).hasValue(2);
    assertThat(forked).hasSize(3).allMatch(t -> t.state() == Future.State.SUCCESS);
    tracking.assertAllDone();
  }

  // testJoinConfined, by design: a second run of the group from a child or from an outside thread
  // is refused with IllegalStateException while the first is open, and the open run goes on
  // untouched (no cancellation, no failure, later forks still run).
  @Test
  void aSecondRunFromAChildOrAnOutsideThreadIsRefusedAndTheRunGoesOn() throws Exception {
    TaskGroup g = TaskGroup.named("sts-join-confined");
    AtomicBoolean ranInner = new AtomicBoolean();
    AtomicReference<Task<String>> late = new AtomicReference<>();
    g.run(
        () -> {
          Task<Throwable> fromChild =
              g.fork(() -> catchThrowable(() -> g.run(() -> ranInner.set(true))));
          Throwable fromOutside = onOtherThread(() -> catchThrowable(() -> g.call(() -> "x")));
          assertThat(fromChild.get()).isInstanceOf(IllegalStateException.class);
          assertThat(fromOutside).isInstanceOf(IllegalStateException.class);
          assertThat(CancelScope.isCancelled()).isFalse();
          late.set(g.fork(() -> "late"));
        });
    assertThat(ranInner).isFalse();
    assertThat(late.get().resultNow()).isEqualTo("late");
    assertThat(g.cancelCalled()).isFalse();
  }

  // testForkAfterClose / testForkAfterJoinCompleted, for a fork from a thread outside the group
  // racing the end of run: each fork either gives a task that run waited for (it is done, and its
  // code never runs after run returned) or throws IllegalStateException once the run is over.
  @RepeatedTest(20)
  void aForkFromOutsideRacingTheEndOfRunIsEitherWaitedForOrRefused() throws Exception {
    TaskGroup g = TaskGroup.named("sts-fork-race");
    AtomicBoolean runReturned = new AtomicBoolean();
    AtomicInteger codeAfterReturn = new AtomicInteger();
    ConcurrentLinkedQueue<Task<?>> forked = new ConcurrentLinkedQueue<>();
    CountDownLatch forking = new CountDownLatch(1);
    AtomicReference<Throwable> refusal = new AtomicReference<>();
    Thread outside =
        Thread.ofPlatform()
            .unstarted(
                () -> {
                  for (int i = 0; ; i++) {
                    if (i == FORK_CAP) {
                      // a run stays open while forks keep coming: stop, let it end
                      refusal.set(new IllegalStateException("cap"));
                      return;
                    }
                    try {
                      forked.add(
                          g.fork(
                              () -> {
                                forking.countDown(); // the body ends once a child runs
                                Thread.onSpinWait();
                                if (runReturned.get()) {
                                  codeAfterReturn.incrementAndGet();
                                }
                              }));
                    } catch (Throwable t) {
                      refusal.set(t);
                      return;
                    }
                  }
                });
    g.run(
        () -> {
          outside.start(); // from the body: a fork before run is refused for another reason
          forking.await();
        });
    runReturned.set(true);
    outside.join();
    assertThat(refusal.get()).isInstanceOf(IllegalStateException.class);
    assertThat(forked).isNotEmpty().allMatch(Future::isDone);
    assertThat(codeAfterReturn).hasValue(0);
  }

  // testForkRejectedExecutionException, with the refusal left to leave the body: a factory that
  // starts refusing part way makes fork throw RejectedExecutionException; the body not catching
  // it is a failure of the group, which cancels the children already running; run reports the
  // refusal alone.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aRefusedForkLeavingTheBodyFailsTheGroupAndCancelsTheRunningChildren(ThreadKind kind)
      throws Exception {
    AtomicInteger calls = new AtomicInteger();
    ThreadFactory base = kind.factory();
    ThreadFactory factory = r -> calls.incrementAndGet() > 3 ? null : base.newThread(r);
    TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
    List<Task<?>> tasks = new ArrayList<>();
    CountDownLatch started = new CountDownLatch(3);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      for (int i = 0; i < 5; i++) {
                        tasks.add(
                            g.fork(
                                () -> {
                                  started.countDown();
                                  Thread.sleep(Duration.ofDays(1));
                                }));
                        if (i == 2) {
                          started.await();
                        }
                      }
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(RejectedExecutionException.class);
    assertThat(tasks).hasSize(3).allMatch(t -> t.state() == Future.State.CANCELLED);
    assertThat(calls).hasValue(4);
  }

  // testOnForkCancelsExecution: the body forks, then cancels the group at once; the child is
  // either cancelled before it began (none of its code runs) or interrupted; run returns
  // normally, the group caught its own cancellation.
  @RepeatedTest(10)
  void theBodyCancellingRightAfterAForkEndsTheRunNormally() throws Exception {
    TaskGroup g = TaskGroup.named("sts-onfork");
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    AtomicBoolean began = new AtomicBoolean();
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    began.set(true);
                    Thread.sleep(Duration.ofDays(1));
                  }));
          assertThat(g.cancelCalled()).isFalse();
          g.cancel();
          assertThat(g.cancelCalled()).isTrue();
        });
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // =============================================== join

  // testJoinWithTimeout1/2 racing: a child returning about when the group's timeout expires. run
  // always returns normally; the child is SUCCESS with its value or CANCELLED (and then the
  // deadline expired: cancelCalled), never FAILED.
  @RepeatedTest(30)
  void aTimeoutRacingTheChildsResult() throws Exception {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    int millis = random.nextInt(4);
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(millis)).build();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    g.run(
        () ->
            task.set(
                g.fork(
                    () -> {
                      long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
                      while (System.nanoTime() < end) {
                        Thread.onSpinWait();
                      }
                      return "foo";
                    })));
    Task<String> t = task.get();
    assertThat(t.state()).as("seed %d", seed).isIn(Future.State.SUCCESS, Future.State.CANCELLED);
    if (t.state() == Future.State.SUCCESS) {
      assertThat(t.resultNow()).isEqualTo("foo");
    } else {
      assertThat(g.cancelCalled()).as("seed %d", seed).isTrue();
    }
    if (g.cancelCaught()) {
      assertThat(g.cancelCalled()).isTrue();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testJoinWithTimeout3: a timeout of zero cancels at once: the body's first checkpoint throws,
  // a fork calls no factory and gives a CANCELLED task, run returns normally. A negative timeout,
  // which upstream accepts as already expired, is refused by the builder, which stays usable.
  @Test
  void aZeroTimeoutCancelsAtOnceAndANegativeOneIsRefused() throws Exception {
    AtomicInteger made = new AtomicInteger();
    TaskGroup.Builder b =
        TaskGroup.builder()
            .threadFactory(
                r -> {
                  made.incrementAndGet();
                  return Thread.ofVirtual().unstarted(r);
                });
    assertThatThrownBy(() -> b.timeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    TaskGroup g = b.timeout(Duration.ZERO).build();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    AtomicReference<Throwable> checkpoint = new AtomicReference<>();
    g.run(
        () -> {
          task.set(g.fork(() -> "never"));
          checkpoint.set(catchThrowable(CancelScope::checkpoint));
        });
    assertThat(checkpoint.get()).isInstanceOf(InterruptedException.class);
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(made).hasValue(0);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testInterruptJoin2 racing the child's end: the owner, waiting in run, is interrupted by
  // another thread just as its only child returns. The interrupt is never lost: run throws
  // InterruptedException with the status clear, or (the interrupt came as run was returning)
  // returns with the status still set.
  @RepeatedTest(30)
  void anInterruptOfTheOwnerRacingTheLastChildsEndIsNeverLost() throws Exception {
    TaskGroup g = TaskGroup.named("sts-interrupt-race");
    Thread owner = Thread.currentThread();
    CountDownLatch release = new CountDownLatch(1);
    Thread interrupter =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    awaitBlocked(owner);
                  } catch (InterruptedException e) {
                    return;
                  }
                  release.countDown();
                  owner.interrupt();
                });
    AtomicReference<Task<String>> task = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        task.set(
                            g.fork(
                                () -> {
                                  release.await();
                                  return "foo";
                                }))));
    boolean status = false;
    while (true) {
      try {
        interrupter.join(); // throws at once if run returned with the interrupt set
        break;
      } catch (InterruptedException e) {
        status = true;
      }
    }
    status |= Thread.interrupted();
    if (thrown == null) {
      assertThat(status).as("run returned normally, the interrupt must stay set").isTrue();
    } else {
      assertThat(thrown).isInstanceOf(InterruptedException.class);
      assertThat(status).as("status after run threw InterruptedException").isFalse();
    }
    assertThat(task.get().isDone()).isTrue();
    assertThat(task.get().state()).isIn(Future.State.SUCCESS, Future.State.CANCELLED);
  }

  // testCancelInterruptsThreads2 / testOnCompleteCancelsExecution / testAllUntil3: a child that
  // cancels the group and then returns its value keeps it (its work returned: SUCCESS), its
  // sleeping sibling is interrupted and CANCELLED, run returns normally.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aChildThatCancelsTheGroupThenReturnsKeepsItsResult(ThreadKind kind) throws Exception {
    Tracking tracking = new Tracking(kind);
    TaskGroup g = Fixtures.group("sts-oncomplete", tracking);
    CountDownLatch started = new CountDownLatch(1);
    AtomicReference<Task<String>> sleeper = new AtomicReference<>();
    AtomicReference<Task<String>> canceller = new AtomicReference<>();
    g.run(
        () -> {
          sleeper.set(
              g.fork(
                  () -> {
                    started.countDown();
                    Thread.sleep(Duration.ofDays(1));
                    return "foo";
                  }));
          started.await();
          canceller.set(
              g.fork(
                  () -> {
                    g.cancel();
                    return "bar";
                  }));
        });
    assertThat(canceller.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(canceller.get().resultNow()).isEqualTo("bar");
    assertThat(sleeper.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
    tracking.assertAllDone();
  }

  // testTimeoutInterruptsThreads, with a child that ignores interrupts: the deadline's
  // cancellation keeps interrupting it while it swallows them; run waits until it returns, and as
  // its work returned it is SUCCESS. run returns normally.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aChildThatIgnoresTheDeadlinesInterruptsIsWaitedFor(ThreadKind kind) throws Exception {
    Tracking tracking = new Tracking(kind);
    TaskGroup g =
        TaskGroup.builder().threadFactory(tracking).timeout(Duration.ofMillis(50)).build();
    AtomicInteger swallowed = new AtomicInteger();
    AtomicReference<Task<Integer>> task = new AtomicReference<>();
    g.run(
        () ->
            task.set(
                g.fork(
                    () -> {
                      while (swallowed.get() < 3) {
                        try {
                          Thread.sleep(Duration.ofDays(1));
                        } catch (InterruptedException e) {
                          swallowed.incrementAndGet();
                        }
                      }
                      return swallowed.get();
                    })));
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(task.get().resultNow()).isEqualTo(3);
    assertThat(g.cancelCaught()).isTrue();
    tracking.assertAllDone();
  }

  // testJoinWithTimeout2 / testTimeoutInterruptsThreads, with a failure during the deadline's
  // cancellation: a child's cleanup throws after the deadline interrupted it, plainly or from a
  // shielded stretch of cleanup that outlasts the interrupt. The failure is not absorbed with the
  // deadline: run throws TaskGroupException holding it.
  @ParameterizedTest
  @EnumSource(names = {"PLAIN", "SHIELDED"})
  void aFailureInCleanupAfterTheDeadlineIsReported(Cleanup cleanup) throws Exception {
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(20)).build();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
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
                                  Thread.sleep(Duration.ofDays(1));
                                } finally {
                                  cleanup.fail();
                                }
                              }));
                      started.await();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(FooException.class);
    assertThat(task.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  enum Cleanup {
    PLAIN,
    SHIELDED;

    void fail() throws InterruptedException {
      if (this == PLAIN) {
        throw new FooException("cleanup");
      }
      CancelScope.shielded()
          .run(
              () -> {
                Thread.sleep(10); // shielded: the deadline's interrupt does not cut it short
                throw new FooException("shielded cleanup");
              });
    }
  }

  // =============================================== close

  // testCloseWithoutJoin2: the body leaves by a failure while a child sleeps: the child is
  // interrupted and CANCELLED, run reports the body's failure alone, and the child has neither
  // result nor exception (IllegalStateException, on the owner and on another thread).
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aBodyLeavingByAFailureCancelsItsChildAndReportsOnlyItsOwnFailure(ThreadKind kind)
      throws Exception {
    Tracking tracking = new Tracking(kind);
    TaskGroup g = Fixtures.group("sts-close-without-join", tracking);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    FooException foo = new FooException("body");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      task.set(
                          g.fork(
                              () -> {
                                started.countDown();
                                Thread.sleep(Duration.ofDays(1));
                                return null;
                              }));
                      started.await();
                      throw foo;
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
    Task<String> t = task.get();
    assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
    assertThatThrownBy(t::resultNow).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(t::exceptionNow).isInstanceOf(IllegalStateException.class);
    assertThat(onOtherThread(() -> catchThrowable(t::resultNow)))
        .isInstanceOf(IllegalStateException.class);
    assertThat(onOtherThread(() -> catchThrowable(t::get)))
        .isInstanceOf(CancellationException.class);
    assertThat(g.cancelCalled()).isFalse();
    tracking.assertAllDone();
  }

  // testCloseConfined, by design: cancel() is not confined: from a thread outside the group, from
  // a child, or from the body it cancels the group, the sleeping body or child is interrupted and
  // run returns normally.
  @ParameterizedTest
  @EnumSource(Canceller.class)
  void cancelFromAnyThreadCancelsTheGroup(Canceller who) throws Exception {
    TaskGroup g = TaskGroup.named("sts-close-confined");
    CountDownLatch sleeping = new CountDownLatch(1);
    AtomicReference<Task<Void>> sleeper = new AtomicReference<>();
    AtomicBoolean bodyInterrupted = new AtomicBoolean();
    Thread owner = Thread.currentThread();
    Thread outside =
        who == Canceller.OUTSIDE
            ? Thread.ofPlatform()
                .start(
                    () -> {
                      try {
                        sleeping.await();
                        awaitBlocked(owner);
                      } catch (InterruptedException e) {
                        return;
                      }
                      g.cancel();
                    })
            : null;
    g.run(
        () -> {
          sleeper.set(
              g.fork(
                  () -> {
                    sleeping.countDown();
                    Thread.sleep(Duration.ofDays(1));
                  }));
          try {
            sleeping.await();
            if (who == Canceller.CHILD) {
              g.fork(() -> g.cancel());
            } else if (who == Canceller.BODY) {
              g.cancel();
            }
            Thread.sleep(Duration.ofDays(1));
          } catch (InterruptedException e) {
            bodyInterrupted.set(true);
            throw e;
          }
        });
    if (outside != null) {
      outside.join();
    }
    assertThat(bodyInterrupted).isTrue();
    assertThat(sleeper.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
  }

  enum Canceller {
    OUTSIDE,
    CHILD,
    BODY
  }

  // testIsCancelledAfterClose, by design: the end of run cancels nobody, so a group that ran to
  // its end is not cancelled; a cancel after the end only sets cancelCalled (nothing was caught),
  // and neither a task's cancel after the end changes its outcome.
  @Test
  void afterTheEndOfRunTheGroupIsNotCancelledAndLateCancelsChangeNoOutcome() throws Exception {
    TaskGroup g = TaskGroup.named("sts-after-close");
    assertThat(g.toString()).contains("sts-after-close").contains("new");
    AtomicReference<Task<String>> task = new AtomicReference<>();
    g.run(() -> task.set(g.fork(() -> "foo")));
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelScope().cancelCalled()).isFalse();
    assertThat(g.toString()).contains("sts-after-close").contains("done");
    assertThat(task.get().cancel(true)).isFalse();
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
    g.cancel("late");
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(task.get().resultNow()).isEqualTo("foo");
    assertThat(task.get().isCancelled()).isFalse();
    assertThatThrownBy(() -> g.fork(() -> "after")).isInstanceOf(IllegalStateException.class);
  }

  // testInterruptClose1 / testCloseAfterJoinThrows: the owner's interrupt status set at the end
  // of the body while a child sleeps: the child is cancelled and has no result, run throws
  // InterruptedException with the status clear; the task reads as CANCELLED from every thread.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void anInterruptPendingAtTheEndOfTheBodyLeavesTheChildWithoutAResult(ThreadKind kind)
      throws Exception {
    Tracking tracking = new Tracking(kind);
    TaskGroup g = Fixtures.group("sts-close-after-join", tracking);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      task.set(
                          g.fork(
                              () -> {
                                started.countDown();
                                Thread.sleep(Duration.ofDays(1));
                                return "foo";
                              }));
                      started.await();
                      Thread.currentThread().interrupt();
                    }));
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThatThrownBy(task.get()::resultNow).isInstanceOf(IllegalStateException.class);
    assertThat(onOtherThread(() -> task.get().state())).isEqualTo(Future.State.CANCELLED);
    tracking.assertAllDone();
  }

  // =============================================== handlers (Joiner.onComplete / allUntil)

  // testOnCompleteThrows / testAllUntil5: a failure handler that throws is a failure of the group
  // (upstream the exception goes to the thread's uncaught handler and nothing is cancelled; here,
  // by design (guide, "Supervisors"), it also cancels the rest): run reports what the handler
  // threw; the handled failure itself is not kept; a sibling that finished first keeps its result.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aFailureHandlerThatThrowsIsAFailureOfTheGroup(ThreadKind kind) throws Exception {
    ConcurrentLinkedQueue<Throwable> handled = new ConcurrentLinkedQueue<>();
    FooException fromHandler = new FooException("handler");
    TaskGroup g =
        TaskGroup.builder()
            .threadFactory(kind.factory())
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  throw fromHandler;
                })
            .build();
    FooException fromChild = new FooException("child");
    AtomicReference<Task<String>> ok = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      ok.set(g.fork(() -> "foo"));
                      ok.get().get(); // done first: the handler's failure cancels the rest
                      g.fork(
                          () -> {
                            throw fromChild;
                          });
                    }));
    assertThat(handled).containsExactly(fromChild);
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(fromHandler);
    assertThat(ok.get().resultNow()).isEqualTo("foo");
  }

  // testAllUntil2 / testSubtaskWhenFailed: COLLECT without a handler: a success and a failure,
  // neither cancelling the other; before the outcome neither task has a result or an exception
  // (IllegalStateException), after it each has its own on every thread, and run reports the
  // failure.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aCollectGroupKeepsEachChildsOutcome(ThreadKind kind) throws Exception {
    TaskGroup g =
        TaskGroup.builder()
            .threadFactory(kind.factory())
            .failurePolicy(FailurePolicy.COLLECT)
            .build();
    FooException foo = new FooException("child");
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Task<String>> ok = new AtomicReference<>();
    AtomicReference<Task<String>> bad = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      ok.set(
                          g.fork(
                              () -> {
                                release.await();
                                return "foo";
                              }));
                      bad.set(
                          g.fork(
                              () -> {
                                release.await();
                                throw foo;
                              }));
                      for (Task<String> t : List.of(ok.get(), bad.get())) {
                        assertThatThrownBy(t::resultNow).isInstanceOf(IllegalStateException.class);
                        assertThatThrownBy(t::exceptionNow)
                            .isInstanceOf(IllegalStateException.class);
                        assertThat(onOtherThread(() -> catchThrowable(t::exceptionNow)))
                            .isInstanceOf(IllegalStateException.class);
                      }
                      release.countDown();
                      assertThat(ok.get().get()).isEqualTo("foo");
                      Throwable e = catchThrowable(bad.get()::get);
                      assertThat(e).isInstanceOf(ExecutionException.class).hasCause(foo);
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
    assertThat(ok.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(bad.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(onOtherThread(bad.get()::exceptionNow)).isSameAs(foo);
    assertThat(onOtherThread(() -> catchThrowable(bad.get()::resultNow)))
        .isInstanceOf(IllegalStateException.class);
    assertThat(g.cancelCalled()).isFalse();
  }

  // testAllUntil3, racing: a COLLECT group whose handler cancels it on the first failure, with
  // siblings that succeed at about the same moment: every task ends SUCCESS, FAILED or CANCELLED,
  // every failure reaches the handler exactly once, run returns normally.
  @RepeatedTest(20)
  void aHandlerCancellingTheCollectGroupRacingSuccesses() throws Exception {
    AtomicReference<TaskGroup> ref = new AtomicReference<>();
    ConcurrentLinkedQueue<Throwable> handled = new ConcurrentLinkedQueue<>();
    TaskGroup g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  ref.get().cancel();
                })
            .build();
    ref.set(g);
    CountDownLatch go = new CountDownLatch(1);
    List<Task<String>> tasks = new ArrayList<>();
    g.run(
        () -> {
          for (int i = 0; i < 8; i++) {
            int n = i;
            tasks.add(
                g.fork(
                    () -> {
                      go.await();
                      if (n % 2 == 0) {
                        throw new FooException("f" + n);
                      }
                      return "s" + n;
                    }));
          }
          go.countDown();
        });
    long failed = tasks.stream().filter(t -> t.state() == Future.State.FAILED).count();
    assertThat(failed).isGreaterThanOrEqualTo(1);
    assertThat(handled).hasSize((int) failed).doesNotHaveDuplicates();
    assertThat(tasks).noneMatch(t -> t.state() == Future.State.RUNNING);
    assertThat(g.cancelCaught()).isTrue();
  }

  // =============================================== invokeAll / invokeAny (Joiners)

  // testAnySuccessfulOrThrow1: invokeAny of nothing is refused (IllegalArgumentException, where
  // upstream's join fails with NoSuchElementException); invokeAll of nothing is an empty list.
  @Test
  void invokeAnyOfNothingIsRefusedAndInvokeAllOfNothingIsEmpty() throws Exception {
    assertThatThrownBy(() -> TaskGroup.invokeAny(List.of()))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(TaskGroup.<String>invokeAll(List.of())).isEmpty();
  }

  // testAnySuccessfulOrThrow6 / testAllSuccessfulOrThrow4 / testAwaitSuccessfulOrThrow4: a
  // timeout (a group's, around the call) with a quick task (a success for invokeAll, a failure for
  // invokeAny, as upstream) and one that would sleep for a day: the caller is cancelled, the call
  // throws InterruptedException (no partial result, the failure dropped as invokeAny drops
  // failures once it gives up) and the group's own deadline absorbs it.
  @ParameterizedTest
  @EnumSource(Invoke.class)
  void aTimeoutAroundAnInvocationStopsItWithoutAResult(Invoke how) throws Exception {
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(50)).build();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean slept = new AtomicBoolean();
    java.util.concurrent.Callable<String> quick =
        how == Invoke.ALL
            ? () -> "foo"
            : () -> {
              throw new FooException("quick failure");
            };
    g.run(
        () ->
            thrown.set(
                catchThrowable(
                    () ->
                        how.invoke(
                            List.of(
                                quick,
                                () -> {
                                  Thread.sleep(Duration.ofDays(1));
                                  slept.set(true);
                                  return "bar";
                                })))));
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(g.cancelCaught()).isTrue();
    assertThat(slept).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  enum Invoke {
    ALL,
    ANY;

    Object invoke(List<java.util.concurrent.Callable<String>> tasks) throws InterruptedException {
      return this == ALL ? TaskGroup.invokeAll(tasks) : TaskGroup.invokeAny(tasks);
    }
  }

  // testAnySuccessfulOrThrow5 racing: invokeAny of tasks that all succeed or fail at the same
  // moment returns one of the successes, or throws every failure when none succeeded.
  @RepeatedTest(20)
  void invokeAnyOfSimultaneousSuccessesAndFailures() throws Exception {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    int n = 2 + random.nextInt(5);
    List<Boolean> succeeds = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      succeeds.add(random.nextBoolean());
    }
    CountDownLatch go = new CountDownLatch(n);
    List<java.util.concurrent.Callable<String>> tasks = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int k = i;
      tasks.add(
          () -> {
            go.countDown();
            go.await();
            if (succeeds.get(k)) {
              return "s" + k;
            }
            throw new FooException("f" + k);
          });
    }
    if (succeeds.contains(true)) {
      String r = TaskGroup.invokeAny(tasks);
      assertThat(succeeds.get(Integer.parseInt(r.substring(1)))).as("seed %d", seed).isTrue();
    } else {
      Throwable thrown = catchThrowable(() -> TaskGroup.invokeAny(tasks));
      assertThat(thrown).as("seed %d", seed).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures()).hasSize(n);
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // =============================================== nesting (StructuredThreadDumpTest)

  // StructuredThreadDumpTest testTree: a group whose two children each open a group of their own:
  // the tree shows the outer group on the owner's thread and each inner group under the task of
  // the thread that runs it.
  @Test
  void theTreeShowsAGroupPerChildUnderItsTask() throws Exception {
    TaskGroup scope = TaskGroup.named("sts-scope");
    CountDownLatch ready = new CountDownLatch(2);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<String> text = new AtomicReference<>();
    scope.run(
        () -> {
          for (String name : List.of("sts-child-A", "sts-child-B")) {
            scope.fork(
                "task-" + name,
                () ->
                    TaskGroup.named(name)
                        .run(
                            () -> {
                              ready.countDown();
                              release.await();
                            }));
          }
          ready.await();
          text.set(TaskTree.capture().format());
          release.countDown();
        });
    String tree = text.get();
    long me = Thread.currentThread().threadId();
    assertThat(tree).contains("group 'sts-scope' running #" + me);
    for (String name : List.of("sts-child-A", "sts-child-B")) {
      assertThat(tree)
          .containsPattern("task 'task-" + name + "' running #\\d+ \"task-" + name + "\"")
          .containsPattern("group '" + name + "' running #\\d+ \"task-" + name + "\"");
      int taskLine = tree.indexOf("task 'task-" + name + "'");
      int groupLine = tree.indexOf("group '" + name + "'");
      assertThat(groupLine).isGreaterThan(taskLine).isGreaterThan(tree.indexOf("'sts-scope'"));
    }
    assertThat(TaskTree.capture().format()).doesNotContain("sts-scope");
  }

  // StructuredThreadDumpTest testNested: a group opened in the body of another, on the same
  // thread: both on the owner's thread, the inner one nested in the outer, each with its child.
  @Test
  void theTreeShowsANestedGroupOnTheSameThreadInsideTheOuter() throws Exception {
    TaskGroup outer = TaskGroup.named("sts-scope-A");
    TaskGroup inner = TaskGroup.named("sts-scope-B");
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch ready = new CountDownLatch(2);
    AtomicReference<String> text = new AtomicReference<>();
    outer.run(
        () -> {
          outer.fork(
              "sts-a1",
              () -> {
                ready.countDown();
                release.await();
              });
          inner.run(
              () -> {
                inner.fork(
                    "sts-b1",
                    () -> {
                      ready.countDown();
                      release.await();
                    });
                ready.await();
                text.set(TaskTree.capture().format());
                release.countDown();
              });
        });
    String tree = text.get();
    long me = Thread.currentThread().threadId();
    assertThat(tree)
        .contains("group 'sts-scope-A' running #" + me)
        .contains("group 'sts-scope-B' running #" + me)
        .contains("task 'sts-b1' running")
        .contains("task 'sts-a1' running");
    assertThat(tree.indexOf("'sts-scope-B'")).isGreaterThan(tree.indexOf("'sts-scope-A'"));
    // the inner group's child is listed inside the inner group, before the outer's own child
    assertThat(tree.indexOf("'sts-b1'")).isGreaterThan(tree.indexOf("'sts-scope-B'"));
    assertThat(tree.indexOf("'sts-a1'")).isGreaterThan(tree.indexOf("'sts-b1'"));
  }

  // testCloseThrowsStructureViolation, by construction: an outer group cancelled from outside
  // while its body is in a nested group on the same thread: the inner group's child is
  // interrupted, the inner run throws InterruptedException (a cancelled scope above it), the
  // outer group absorbs it and returns normally; no thread outlives either.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void anOuterCancelReachesANestedGroupsChildrenAndIsAbsorbedByTheOuter(ThreadKind kind)
      throws Exception {
    Tracking tracking = new Tracking(kind);
    TaskGroup outer = Fixtures.group("sts-outer", tracking);
    TaskGroup inner = Fixtures.group("sts-inner", tracking);
    CountDownLatch started = new CountDownLatch(1);
    AtomicReference<Task<Void>> innerChild = new AtomicReference<>();
    AtomicReference<Throwable> innerThrew = new AtomicReference<>();
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    started.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  outer.cancel();
                });
    outer.run(
        () -> {
          try {
            inner.run(
                () -> {
                  innerChild.set(
                      inner.fork(
                          () -> {
                            started.countDown();
                            Thread.sleep(Duration.ofDays(1));
                          }));
                  Thread.sleep(Duration.ofDays(1));
                });
          } catch (InterruptedException e) {
            innerThrew.set(e);
            throw e;
          }
        });
    canceller.join();
    assertThat(innerThrew.get()).isInstanceOf(InterruptedException.class);
    assertThat(innerChild.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(inner.cancelCalled()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    tracking.assertAllDone();
  }

  // StressCancellation, with nested groups: children that each open a group of sleepers, and a
  // child that cancels the outer group, forked in a random order. Every sleeper at every level is
  // cancelled, run returns normally, nothing outlives it.
  @RepeatedTest(10)
  void aCancelReachesEveryLevelOfNestedGroups() throws Exception {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    Tracking tracking =
        new Tracking(random.nextBoolean() ? ThreadKind.VIRTUAL : ThreadKind.PLATFORM);
    TaskGroup outer = Fixtures.group("sts-stress-outer", tracking);
    ConcurrentLinkedQueue<Task<?>> sleepers = new ConcurrentLinkedQueue<>();
    int before = random.nextInt(4);
    int after = random.nextInt(4);
    outer.run(
        () -> {
          for (int i = 0; i < before + after + 1; i++) {
            if (i == before) {
              outer.fork(() -> outer.cancel());
              continue;
            }
            outer.fork(
                () -> {
                  TaskGroup inner = Fixtures.group("sts-stress-inner", tracking);
                  inner.run(
                      () -> {
                        for (int k = 0; k < 2; k++) {
                          sleepers.add(inner.fork(() -> Thread.sleep(Duration.ofDays(1))));
                        }
                      });
                });
          }
        });
    assertThat(sleepers).as("seed %d", seed).allMatch(t -> t.state() == Future.State.CANCELLED);
    assertThat(outer.cancelCaught()).isTrue();
    tracking.assertAllDone();
  }

  // =============================================== more races (fork, cancel, failures)

  // testForkAfterJoinCompleted racing, in a bounded group: a thread outside forks into a group
  // with maxConcurrency(1) while its run ends, so the fork waits for the place the last child
  // gives back. Each fork either gives a task that run waited for, or is refused with
  // IllegalStateException; no work runs after run returned and no waiting fork is left hanging.
  @RepeatedTest(20)
  void anOutsideForkWaitingForAPlaceAsTheRunEndsIsWaitedForOrRefused() throws Exception {
    TaskGroup g = TaskGroup.builder().name("sts-bounded-race").maxConcurrency(1).build();
    AtomicBoolean runReturned = new AtomicBoolean();
    AtomicInteger codeAfterReturn = new AtomicInteger();
    ConcurrentLinkedQueue<Task<?>> forked = new ConcurrentLinkedQueue<>();
    CountDownLatch forking = new CountDownLatch(1);
    AtomicReference<Throwable> refusal = new AtomicReference<>();
    Thread outside =
        Thread.ofPlatform()
            .unstarted(
                () -> {
                  for (int i = 0; ; i++) {
                    if (i == FORK_CAP) {
                      // a run stays open while forks keep coming: stop, let it end
                      refusal.set(new IllegalStateException("cap"));
                      return;
                    }
                    try {
                      forked.add(
                          g.fork(
                              () -> {
                                forking.countDown();
                                long end = System.nanoTime() + 100_000;
                                while (System.nanoTime() < end) {
                                  Thread.onSpinWait();
                                }
                                if (runReturned.get()) {
                                  codeAfterReturn.incrementAndGet();
                                }
                              }));
                    } catch (Throwable t) {
                      refusal.set(t);
                      return;
                    }
                  }
                });
    g.run(
        () -> {
          outside.start(); // from the body: a fork before run is refused for another reason
          forking.await();
        });
    runReturned.set(true);
    outside.join(Duration.ofSeconds(10));
    assertThat(outside.isAlive()).as("a fork left waiting after run returned").isFalse();
    assertThat(refusal.get()).isInstanceOf(IllegalStateException.class);
    assertThat(forked).isNotEmpty().allMatch(Future::isDone);
    assertThat(codeAfterReturn).hasValue(0);
  }

  // StressShutdown with a bounded group: the owner's own fork waits for a place while the group
  // is cancelled from outside: the fork returns a CANCELLED task that ran nothing, the child
  // holding the place is interrupted, run returns normally.
  @RepeatedTest(5)
  void aForkWaitingForAPlaceWhenTheGroupIsCancelledGivesACancelledTask() throws Exception {
    TaskGroup g = TaskGroup.builder().maxConcurrency(1).build();
    Thread owner = Thread.currentThread();
    CountDownLatch holding = new CountDownLatch(1);
    CountDownLatch forkingSecond = new CountDownLatch(1);
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Task<Void>> second = new AtomicReference<>();
    AtomicReference<Task<Void>> first = new AtomicReference<>();
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    forkingSecond.await();
                    awaitBlocked(owner);
                  } catch (InterruptedException e) {
                    return;
                  }
                  g.cancel();
                });
    g.run(
        () -> {
          first.set(
              g.fork(
                  () -> {
                    holding.countDown();
                    Thread.sleep(Duration.ofDays(1));
                  }));
          holding.await();
          forkingSecond.countDown();
          second.set(g.fork(() -> secondRan.set(true)));
        });
    canceller.join();
    assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(secondRan).isFalse();
    assertThat(first.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
  }

  // testInterruptJoin2 at the fork: the owner interrupted from outside while its fork waits for a
  // place in a bounded group: the fork gives a CANCELLED task, run cancels the child holding the
  // place and throws InterruptedException with the status clear.
  @RepeatedTest(5)
  void theOwnerInterruptedWhileItsForkWaitsForAPlace() throws Exception {
    TaskGroup g = TaskGroup.builder().maxConcurrency(1).build();
    Thread owner = Thread.currentThread();
    CountDownLatch holding = new CountDownLatch(1);
    CountDownLatch forkingSecond = new CountDownLatch(1);
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Task<Void>> second = new AtomicReference<>();
    AtomicReference<Task<Void>> first = new AtomicReference<>();
    Thread interrupter =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    forkingSecond.await();
                    awaitBlocked(owner);
                  } catch (InterruptedException e) {
                    return;
                  }
                  owner.interrupt();
                });
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      first.set(
                          g.fork(
                              () -> {
                                holding.countDown();
                                Thread.sleep(Duration.ofDays(1));
                              }));
                      holding.await();
                      forkingSecond.countDown();
                      second.set(g.fork(() -> secondRan.set(true)));
                    }));
    interrupter.join();
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
    assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(secondRan).isFalse();
    assertThat(first.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCalled()).isFalse();
  }

  // testCancelInterruptsThreads2 racing a failure: a child fails while another thread cancels
  // the group. The failure is never absorbed with the cancellation: run throws it, whichever came
  // first.
  @RepeatedTest(30)
  void aCancelRacingAChildsFailureNeverHidesTheFailure() throws Exception {
    TaskGroup g = TaskGroup.named("sts-cancel-vs-failure");
    CountDownLatch go = new CountDownLatch(2);
    FooException foo = new FooException("child");
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  go.countDown();
                  try {
                    go.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  g.cancel();
                });
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              go.countDown();
                              try {
                                go.await();
                              } finally {
                                throw foo; // whether or not the cancel came first
                              }
                            })));
    canceller.join();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testInterruptJoin1/2 racing a failure: the owner interrupted from outside as its child
  // fails. Outcome 1 of TaskGroup: the failure is reported and the outside interrupt stays set;
  // or the interrupt came first and cancelled the child before it failed: InterruptedException,
  // status clear. Never a normal return, never the interrupt lost.
  @RepeatedTest(30)
  void anOwnerInterruptRacingAChildsFailure() throws Exception {
    TaskGroup g = TaskGroup.named("sts-interrupt-vs-failure");
    Thread owner = Thread.currentThread();
    CountDownLatch release = new CountDownLatch(1);
    FooException foo = new FooException("child");
    Thread interrupter =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    awaitBlocked(owner);
                  } catch (InterruptedException e) {
                    return;
                  }
                  release.countDown();
                  owner.interrupt();
                });
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              release.await();
                              throw foo;
                            })));
    boolean status = false;
    while (true) {
      try {
        interrupter.join();
        break;
      } catch (InterruptedException e) {
        status = true;
      }
    }
    status |= Thread.interrupted();
    if (thrown instanceof TaskGroupException tge) {
      assertThat(tge.failures()).containsExactly(foo);
      assertThat(status).as("the outside interrupt stays set with a failure").isTrue();
    } else {
      assertThat(thrown).isInstanceOf(InterruptedException.class);
      assertThat(status).isFalse();
    }
  }

  // testJoinWithTimeout2 racing a failure: the group's deadline expires as a child fails; the
  // failure is reported whichever came first (a cancellation caught by the child before it failed
  // changes nothing: what it throws in its cleanup is a failure).
  @RepeatedTest(30)
  void aDeadlineRacingAChildsFailureNeverHidesTheFailure() throws Exception {
    long seed = System.nanoTime();
    int millis = new Random(seed).nextInt(3);
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(millis)).build();
    FooException foo = new FooException("child");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              try {
                                Thread.sleep(millis);
                              } finally {
                                throw foo;
                              }
                            })));
    // A child cancelled before its thread began runs none of its code: then nothing failed.
    if (thrown != null) {
      assertThat(thrown).as("seed %d", seed).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
    } else {
      assertThat(g.cancelCaught()).as("seed %d", seed).isTrue();
    }
  }

  // testSubtaskWhenCancelled / FutureTask: Task.cancel racing the work's own end: cancel
  // returning true means CANCELLED for good (get throws CancellationException, the future agrees);
  // false means the work's outcome stands. The group is not cancelled either way.
  @RepeatedTest(30)
  void aTaskCancelRacingItsResult() throws Exception {
    TaskGroup g = TaskGroup.named("sts-task-cancel-race");
    CountDownLatch go = new CountDownLatch(2);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    AtomicBoolean cancelled = new AtomicBoolean();
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    go.countDown();
                    go.await();
                    return "foo";
                  }));
          go.countDown();
          go.await();
          cancelled.set(task.get().cancel(true));
        });
    Task<String> t = task.get();
    if (cancelled.get()) {
      assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
      assertThatThrownBy(t::get).isInstanceOf(CancellationException.class);
      assertThat(t.toCompletableFuture().isCancelled()).isTrue();
    } else {
      assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
      assertThat(t.get()).isEqualTo("foo");
      assertThat(t.toCompletableFuture().join()).isEqualTo("foo");
    }
    assertThat(g.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testForkConfined "from a thread in a nested scope": a child of an outer group opens a group
  // of its own and, from that inner body, forks into the outer group. That child belongs to the
  // outer group: the inner group's cancel does not reach it, and the outer run waits for it.
  @Test
  void aForkIntoTheOuterGroupFromANestedBodyBelongsToTheOuter() throws Exception {
    TaskGroup outer = TaskGroup.named("sts-nest-outer");
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Task<String>> escaped = new AtomicReference<>();
    AtomicBoolean innerCaught = new AtomicBoolean();
    outer.run(
        () ->
            outer.fork(
                () -> {
                  TaskGroup inner = TaskGroup.named("sts-nest-inner");
                  inner.run(
                      () -> {
                        escaped.set(
                            outer.fork(
                                () -> {
                                  release.await();
                                  return "outer child";
                                }));
                        inner.cancel();
                      });
                  innerCaught.set(inner.cancelCaught());
                  release.countDown();
                }));
    assertThat(innerCaught).isTrue();
    assertThat(escaped.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(escaped.get().resultNow()).isEqualTo("outer child");
  }

  // testTimeoutInterruptsThreads with nested deadlines: an inner group's timeout shorter than its
  // outer group's is absorbed by the inner group (the outer body goes on); the outer's shorter
  // one cancels the inner group too, whose run throws InterruptedException, absorbed by the outer.
  @ParameterizedTest
  @EnumSource(names = {"INNER_FIRST", "OUTER_FIRST"})
  void nestedGroupTimeoutsEachAbsorbedByTheirOwnGroup(Shorter shorter) throws Exception {
    Duration shortT = Duration.ofMillis(30);
    Duration longT = Duration.ofSeconds(20);
    TaskGroup outer =
        TaskGroup.builder().timeout(shorter == Shorter.OUTER_FIRST ? shortT : longT).build();
    TaskGroup inner =
        TaskGroup.builder().timeout(shorter == Shorter.INNER_FIRST ? shortT : longT).build();
    AtomicReference<Throwable> innerThrew = new AtomicReference<>();
    AtomicBoolean outerBodyWentOn = new AtomicBoolean();
    outer.run(
        () -> {
          innerThrew.set(
              catchThrowable(
                  () -> inner.run(() -> inner.fork(() -> Thread.sleep(Duration.ofDays(1))))));
          outerBodyWentOn.set(!CancelScope.isCancelled());
        });
    if (shorter == Shorter.INNER_FIRST) {
      assertThat(innerThrew.get()).isNull();
      assertThat(inner.cancelCaught()).isTrue();
      assertThat(outerBodyWentOn).isTrue();
      assertThat(outer.cancelCalled()).isFalse();
    } else {
      assertThat(innerThrew.get()).isInstanceOf(InterruptedException.class);
      assertThat(inner.cancelCaught()).isFalse();
      assertThat(outer.cancelCaught()).isTrue();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  enum Shorter {
    INNER_FIRST,
    OUTER_FIRST
  }

  // testOnCompleteThrows, the uncaught-exception handler side: a factory that sets its own
  // uncaught-exception handler; a child's failure goes to the group (run reports it), not to that
  // handler, which sees nothing.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aChildsFailureGoesToTheGroupNotToTheFactorysUncaughtHandler(ThreadKind kind)
      throws Exception {
    ConcurrentLinkedQueue<Throwable> uncaught = new ConcurrentLinkedQueue<>();
    Thread.UncaughtExceptionHandler ueh = (t, e) -> uncaught.add(e);
    ThreadFactory factory =
        kind == ThreadKind.VIRTUAL
            ? Thread.ofVirtual().uncaughtExceptionHandler(ueh).factory()
            : Thread.ofPlatform().uncaughtExceptionHandler(ueh).factory();
    TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
    FooException foo = new FooException("child");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        g.fork(
                            () -> {
                              throw foo;
                            })));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
    assertThat(uncaught).isEmpty();
  }

  // testForkAfterCancel2 racing: start() racing a cancel of the group from another thread: start
  // returns the signalled value (the child then runs in the group and is cancelled with it), or
  // throws InterruptedException once the work, if it began, was cancelled and has ended; run
  // returns normally.
  @RepeatedTest(20)
  void startRacingACancelOfTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("sts-start-race");
    CountDownLatch go = new CountDownLatch(2);
    AtomicReference<Object> outcome = new AtomicReference<>();
    AtomicBoolean afterSignalEnded = new AtomicBoolean();
    AtomicBoolean endedWhenStartThrew = new AtomicBoolean();
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  go.countDown();
                  try {
                    go.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  g.cancel();
                });
    g.run(
        () -> {
          go.countDown();
          go.await();
          try {
            outcome.set(
                g.start(
                    signal -> {
                      signal.started(42);
                      try {
                        Thread.sleep(Duration.ofDays(1));
                      } finally {
                        afterSignalEnded.set(true);
                      }
                    }));
          } catch (InterruptedException e) {
            outcome.set(e);
            endedWhenStartThrew.set(afterSignalEnded.get());
            throw e;
          }
          Thread.sleep(Duration.ofDays(1)); // until the cancel
        });
    canceller.join();
    Object o = outcome.get();
    if (o == null) {
      // the cancel reached the body before it called start (in go.await())
      assertThat(afterSignalEnded).isFalse();
    } else if (o instanceof InterruptedException) {
      // The caller saw the cancel before the signal: the work was cancelled and waited for before
      // start threw, even if it signalled meanwhile (its value then is nobody's, by design).
      assertThat(afterSignalEnded.get()).isEqualTo(endedWhenStartThrew.get());
    } else {
      assertThat(o).isEqualTo(42);
      assertThat(afterSignalEnded).isTrue();
    }
    assertThat(g.cancelCaught()).isTrue();
  }

  // =============================================== subtask outcomes (Subtask.State / Future)

  // testSubtaskWhenFailed, for exceptions that look like cancellations: a child that throws a
  // CancellationException or an InterruptedException of its own while nothing cancelled it has
  // failed (upstream: Subtask.State.FAILED): run reports it, the task is FAILED and get() throws
  // ExecutionException with it as the cause.
  @ParameterizedTest
  @EnumSource(OwnThrow.class)
  void aChildThrowingACancellationLookalikeUncancelledHasFailed(OwnThrow what) throws Exception {
    TaskGroup g = TaskGroup.named("sts-lookalike");
    Exception thrownByChild = what.make();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () ->
                        task.set(
                            g.fork(
                                () -> {
                                  throw thrownByChild;
                                }))));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(thrownByChild);
    Task<String> t = task.get();
    assertThat(t.state()).isEqualTo(Future.State.FAILED);
    assertThat(t.exceptionNow()).isSameAs(thrownByChild);
    assertThat(catchThrowable(t::get))
        .isInstanceOf(ExecutionException.class)
        .hasCause(thrownByChild);
    assertThat(t.isCancelled()).isFalse();
  }

  enum OwnThrow {
    CANCELLATION,
    INTERRUPTED;

    Exception make() {
      return this == CANCELLATION
          ? new CancellationException("the work's own")
          : new InterruptedException("the work's own");
    }
  }

  // testSubtaskWhenNotCompleted, from every thread: get with a timeout on a task still running
  // throws TimeoutException, from the body and from a thread outside; the group is not disturbed.
  @Test
  void aTimedGetOfARunningTaskTimesOutOnEveryThread() throws Exception {
    TaskGroup g = TaskGroup.named("sts-timed-get");
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    release.await();
                    return "foo";
                  }));
          assertThat(catchThrowable(() -> task.get().get(10, TimeUnit.MILLISECONDS)))
              .isInstanceOf(java.util.concurrent.TimeoutException.class);
          assertThat(
                  onOtherThread(
                      () -> catchThrowable(() -> task.get().get(10, TimeUnit.MILLISECONDS))))
              .isInstanceOf(java.util.concurrent.TimeoutException.class);
          assertThat(task.get().state()).isEqualTo(Future.State.RUNNING);
          release.countDown();
          assertThat(task.get().get(10, TimeUnit.SECONDS)).isEqualTo("foo");
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  // testCancelInterruptsThreads2 for one subtask: a task cancelled by its own work (through its
  // Task), or through its CompletableFuture with either flag, is CANCELLED, its thread is
  // interrupted, and neither the group nor a sibling is cancelled.
  @ParameterizedTest
  @EnumSource(OneCancel.class)
  void cancellingOneTaskLeavesTheGroupAndItsSiblingsAlone(OneCancel how) throws Exception {
    TaskGroup g = TaskGroup.named("sts-one-cancel");
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch taskSet = new CountDownLatch(1);
    AtomicReference<Task<String>> task = new AtomicReference<>();
    AtomicBoolean interrupted = new AtomicBoolean();
    AtomicReference<Thread> childThread = new AtomicReference<>();
    AtomicReference<Task<String>> sibling = new AtomicReference<>();
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    childThread.set(Thread.currentThread());
                    started.countDown();
                    try {
                      if (how == OneCancel.SELF) {
                        taskSet.await();
                        assertThat(task.get().cancel(false)).isTrue();
                      }
                      Thread.sleep(Duration.ofDays(1));
                      return "never";
                    } catch (InterruptedException e) {
                      interrupted.set(true);
                      throw e;
                    }
                  }));
          taskSet.countDown();
          sibling.set(
              g.fork(
                  () -> {
                    started.await();
                    return "sibling";
                  }));
          started.await();
          if (how != OneCancel.SELF) {
            awaitBlocked(childThread.get()); // asleep in its try
            assertThat(task.get().toCompletableFuture().cancel(how == OneCancel.FUTURE_TRUE))
                .isTrue();
          }
          assertThat(catchThrowable(task.get()::get)).isInstanceOf(CancellationException.class);
          assertThat(CancelScope.isCancelled()).isFalse();
        });
    assertThat(interrupted).isTrue();
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(sibling.get().resultNow()).isEqualTo("sibling");
    assertThat(g.cancelCalled()).isFalse();
  }

  enum OneCancel {
    SELF,
    FUTURE_FALSE,
    FUTURE_TRUE
  }

  // =============================================== bodies and handlers

  // testJoinWhenCancelled for call(): a body cut short by its group's cancellation gives null
  // and the group caught it; a body that swallows the cancellation and returns gives its value.
  @Test
  void callGivesNullWhenTheBodyIsCutShortAndTheValueWhenItReturns() throws Exception {
    TaskGroup cut = TaskGroup.named("sts-call-cut");
    String r1 =
        cut.call(
            () -> {
              cut.cancel();
              CancelScope.checkpoint();
              return "unreached";
            });
    assertThat(r1).isNull();
    assertThat(cut.cancelCaught()).isTrue();
    TaskGroup swallowed = TaskGroup.named("sts-call-swallow");
    String r2 =
        swallowed.call(
            () -> {
              swallowed.cancel();
              try {
                CancelScope.checkpoint();
              } catch (InterruptedException e) {
                // swallowed: the body returns its value
              }
              return "value";
            });
    assertThat(r2).isEqualTo("value");
    assertThat(swallowed.cancelCalled()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testCloseWithoutJoin2 / testAllUntil5 with a supervisor: in a COLLECT group with a handler,
  // the body's failure goes to the handler too; it still cancels the sleeping child, and run
  // returns normally (nothing kept).
  @Test
  void aBodyFailureInACollectGroupWithAHandlerGoesToTheHandlerAndCancelsTheChildren()
      throws Exception {
    ConcurrentLinkedQueue<Throwable> handled = new ConcurrentLinkedQueue<>();
    TaskGroup g =
        TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).onFailure(handled::add).build();
    FooException foo = new FooException("body");
    CountDownLatch started = new CountDownLatch(1);
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    g.run(
        () -> {
          child.set(
              g.fork(
                  () -> {
                    started.countDown();
                    Thread.sleep(Duration.ofDays(1));
                  }));
          started.await();
          throw foo;
        });
    assertThat(handled).containsExactly(foo);
    assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testCancelInterruptsThreads2 with a failure in the body's cleanup: the body catches its own
  // group's cancellation and then fails in its finally; the failure is reported, not absorbed.
  @Test
  void aFailureInTheBodysCleanupAfterItsGroupsCancelIsReported() throws Exception {
    TaskGroup g = TaskGroup.named("sts-body-cleanup");
    FooException foo = new FooException("cleanup");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(() -> g.cancel());
                      try {
                        Thread.sleep(Duration.ofDays(1));
                      } finally {
                        throw foo;
                      }
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // =============================================== late interrupts

  // testJoinWithTimeout1/2 and testCloseConfined at the last moment: the group's cancel (from
  // another thread) or its deadline racing the end of run. However they fall, run returns
  // normally, cancelCaught implies cancelCalled, and no interrupt of the group is left on the
  // owner, not even one landing later (TaskGroup: no interrupt the group delivered is left on the
  // caller).
  @ParameterizedTest
  @EnumSource(LateCancel.class)
  void aCancelRacingTheEndOfRunLeavesNoInterruptOnTheOwner(LateCancel how) throws Exception {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    for (int round = 0; round < 40; round++) {
      int spinMicros = random.nextInt(200);
      TaskGroup g =
          how == LateCancel.DEADLINE
              ? TaskGroup.builder().timeout(Duration.ofNanos(random.nextInt(200_000))).build()
              : TaskGroup.named("sts-late");
      CountDownLatch go = new CountDownLatch(1);
      Thread canceller =
          how == LateCancel.OUTSIDE
              ? Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          go.await();
                        } catch (InterruptedException e) {
                          return;
                        }
                        g.cancel();
                      })
              : null;
      g.run(
          () -> {
            go.countDown();
            g.fork(() -> spin(spinMicros / 2));
            spin(spinMicros);
          });
      if (canceller != null) {
        canceller.join();
      }
      assertThat(Thread.currentThread().isInterrupted())
          .as("seed %d round %d: interrupt left on the owner", seed, round)
          .isFalse();
      if (g.cancelCaught()) {
        assertThat(g.cancelCalled()).isTrue();
      }
      // time passes: an interrupt still on its way would land now
      assertThat(catchThrowable(() -> Thread.sleep(2)))
          .as("seed %d round %d: an interrupt landed after run returned", seed, round)
          .isNull();
    }
  }

  enum LateCancel {
    OUTSIDE,
    DEADLINE
  }

  private static void spin(int micros) {
    long end = System.nanoTime() + micros * 1_000L;
    while (System.nanoTime() < end) {
      Thread.onSpinWait();
    }
  }

  // testInterruptJoin1 on a child's thread: someone other than the library interrupts a child's
  // thread; the child's blocking call throws InterruptedException while nothing cancelled it,
  // which is that child's failure (upstream: the subtask FAILED), and the first failure cancels the
  // sibling.
  @Test
  void anInterruptOfAChildsThreadFromOutsideIsThatChildsFailure() throws Exception {
    TaskGroup g = TaskGroup.named("sts-outside-child-interrupt");
    AtomicReference<Thread> victim = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(2);
    AtomicReference<Task<Void>> hit = new AtomicReference<>();
    AtomicReference<Task<Void>> sibling = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      hit.set(
                          g.fork(
                              () -> {
                                victim.set(Thread.currentThread());
                                started.countDown();
                                Thread.sleep(Duration.ofDays(1));
                              }));
                      sibling.set(
                          g.fork(
                              () -> {
                                started.countDown();
                                Thread.sleep(Duration.ofDays(1));
                              }));
                      started.await();
                      awaitBlocked(victim.get());
                      victim.get().interrupt();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).hasSize(1);
    Throwable failure = ((TaskGroupException) thrown).failures().get(0);
    assertThat(failure).isInstanceOf(InterruptedException.class);
    assertThat(hit.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(sibling.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // =============================================== start (nursery.start)

  // testForkAfterCancel2 / testTimeoutInterruptsThreads with a bounded group: the owner's fork
  // waits for the only place when the group's deadline expires: the fork gives a CANCELLED task
  // that ran nothing, the child holding the place is interrupted, run returns normally.
  @RepeatedTest(5)
  void aForkWaitingForAPlaceWhenTheDeadlineExpiresGivesACancelledTask() throws Exception {
    TaskGroup g = TaskGroup.builder().maxConcurrency(1).timeout(Duration.ofMillis(50)).build();
    CountDownLatch holding = new CountDownLatch(1);
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Task<Void>> second = new AtomicReference<>();
    AtomicReference<Task<Void>> first = new AtomicReference<>();
    g.run(
        () -> {
          first.set(
              g.fork(
                  () -> {
                    holding.countDown();
                    Thread.sleep(Duration.ofDays(1));
                  }));
          holding.await();
          second.set(g.fork(() -> secondRan.set(true)));
        });
    assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(secondRan).isFalse();
    assertThat(first.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
  }

  // Trio test_nursery start, JDK testInterruptJoin2 at start(): the owner interrupted from
  // outside while start() waits for the signal: the work is cancelled and waited for, start
  // throws InterruptedException; the body passing it on, run throws InterruptedException with the
  // status clear, and the work ran its cleanup.
  @RepeatedTest(5)
  void theOwnerInterruptedWhileStartWaitsForTheSignal() throws Exception {
    TaskGroup g = TaskGroup.named("sts-start-interrupt");
    Thread owner = Thread.currentThread();
    CountDownLatch inWork = new CountDownLatch(1);
    AtomicBoolean cleanedUp = new AtomicBoolean();
    AtomicReference<Throwable> startThrew = new AtomicReference<>();
    Thread interrupter =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    inWork.await();
                    awaitBlocked(owner);
                  } catch (InterruptedException e) {
                    return;
                  }
                  owner.interrupt();
                });
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      try {
                        g.start(
                            signal -> {
                              inWork.countDown();
                              try {
                                Thread.sleep(Duration.ofDays(1));
                              } finally {
                                cleanedUp.set(true);
                              }
                              signal.started();
                            });
                      } catch (InterruptedException e) {
                        startThrew.set(e);
                        throw e;
                      }
                    }));
    interrupter.join();
    assertThat(startThrew.get()).isInstanceOf(InterruptedException.class);
    assertThat(cleanedUp).isTrue();
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // Trio test_nursery start, a failure right after the signal: start returns the value, the
  // failure is the group's (not start's), it cancels the body, and run reports it.
  @RepeatedTest(10)
  void aFailureRightAfterTheSignalIsTheGroupsFailure() throws Exception {
    TaskGroup g = TaskGroup.named("sts-start-fail-after");
    FooException foo = new FooException("after the signal");
    AtomicReference<Object> started = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      started.set(
                          g.start(
                              signal -> {
                                signal.started("ready");
                                throw foo;
                              }));
                      Thread.sleep(Duration.ofDays(1)); // until the failure cancels the body
                    }));
    assertThat(started.get()).isEqualTo("ready");
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(foo);
  }

  // =============================================== handlers, continued

  // testTimeoutInvoked / testAllUntil6 with a handler that blocks: the group's deadline reaches a
  // failure handler blocked on the failing child's thread as it reaches the work; the handler's
  // InterruptedException is that thread's cancellation, not a failure; run returns normally.
  @Test
  void theDeadlineReachesABlockedFailureHandler() throws Exception {
    ConcurrentLinkedQueue<Throwable> handled = new ConcurrentLinkedQueue<>();
    AtomicBoolean handlerInterrupted = new AtomicBoolean();
    TaskGroup g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .timeout(Duration.ofMillis(50))
            .onFailure(
                f -> {
                  handled.add(f);
                  try {
                    Thread.sleep(Duration.ofDays(1));
                  } catch (InterruptedException e) {
                    handlerInterrupted.set(true);
                    throw new IllegalStateException("handler cut short", e);
                  }
                })
            .build();
    FooException foo = new FooException("child");
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    g.run(
        () ->
            child.set(
                g.fork(
                    () -> {
                      throw foo;
                    })));
    assertThat(handled).containsExactly(foo);
    assertThat(handlerInterrupted).isTrue();
    assertThat(child.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // testAllUntil4 with retries: in a COLLECT group bounded to one place, a failure handler forks
  // a retry of the failed work (a fork from the failing child, which never waits for a place):
  // no deadlock, every retry runs in turn, and the last attempt succeeds.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void aHandlerForkingARetryInABoundedGroupNeverDeadlocks(ThreadKind kind) throws Exception {
    AtomicReference<TaskGroup> ref = new AtomicReference<>();
    AtomicInteger attempts = new AtomicInteger();
    ConcurrentLinkedQueue<Task<String>> tasks = new ConcurrentLinkedQueue<>();
    java.util.concurrent.Callable<String>[] work = new java.util.concurrent.Callable[1];
    work[0] =
        () -> {
          if (attempts.incrementAndGet() < 4) {
            throw new FooException("attempt " + attempts.get());
          }
          return "done";
        };
    TaskGroup g =
        TaskGroup.builder()
            .threadFactory(kind.factory())
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> tasks.add(ref.get().fork(work[0])))
            .build();
    ref.set(g);
    g.run(() -> tasks.add(g.fork(work[0])));
    assertThat(attempts).hasValue(4);
    assertThat(tasks).hasSize(4);
    assertThat(tasks.stream().filter(t -> t.state() == Future.State.FAILED).count()).isEqualTo(3);
    assertThat(tasks)
        .anyMatch(t -> t.state() == Future.State.SUCCESS && "done".equals(t.resultNow()));
  }

  // =============================================== deadlines moved (withTimeout)

  // testJoinWithTimeout1/2 with the group's deadline moved while it runs: pushed out from the
  // body, the original timeout never fires (the group is not cancelled and the child succeeds);
  // pulled in from a child, it fires at once and the sleeping sibling is cancelled.
  @Test
  void theGroupsDeadlineMovedWhileRunningTakesEffectAtOnce() throws Exception {
    TaskGroup pushed = TaskGroup.builder().timeout(Duration.ofMillis(30)).build();
    AtomicReference<Task<String>> slow = new AtomicReference<>();
    pushed.run(
        () -> {
          pushed.cancelScope().setTimeout(Duration.ofDays(1));
          slow.set(
              pushed.fork(
                  () -> {
                    Thread.sleep(100); // time passes beyond the first deadline
                    return "foo";
                  }));
        });
    assertThat(pushed.cancelCalled()).isFalse();
    assertThat(slow.get().resultNow()).isEqualTo("foo");

    TaskGroup pulled = TaskGroup.builder().timeout(Duration.ofDays(1)).build();
    AtomicReference<Task<Void>> sleeper = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    pulled.run(
        () -> {
          sleeper.set(
              pulled.fork(
                  () -> {
                    started.countDown();
                    Thread.sleep(Duration.ofDays(1));
                  }));
          started.await();
          pulled.fork(() -> pulled.cancelScope().setDeadline(java.time.Instant.now()));
        });
    assertThat(pulled.cancelCalled()).isTrue();
    assertThat(pulled.cancelCaught()).isTrue();
    assertThat(sleeper.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // testJoinWithTimeout2 racing: the deadline pushed out from another thread just as it expires.
  // Either it fired (cancelCalled, the child cancelled) or it did not (the child succeeds and the
  // group was never cancelled); never a cancelled child in a group that says it was not.
  @RepeatedTest(30)
  void aDeadlinePushedOutAsItExpires() throws Exception {
    long seed = System.nanoTime();
    int millis = new Random(seed).nextInt(3);
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(millis)).build();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    CountDownLatch pushed = new CountDownLatch(1);
    g.run(
        () -> {
          task.set(
              g.fork(
                  () -> {
                    pushed.await();
                    return "foo";
                  }));
          Thread.ofPlatform()
              .start(
                  () -> {
                    spin(millis * 1000);
                    g.cancelScope().setTimeout(Duration.ofDays(1));
                    pushed.countDown();
                  });
          pushed.await();
        });
    Task<String> t = task.get();
    if (g.cancelCalled()) {
      assertThat(g.cancelCaught()).as("seed %d", seed).isTrue();
    } else {
      assertThat(t.state()).as("seed %d", seed).isEqualTo(Future.State.SUCCESS);
      assertThat(t.resultNow()).isEqualTo("foo");
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }
}
