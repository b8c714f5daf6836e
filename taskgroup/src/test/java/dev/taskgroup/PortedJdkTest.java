package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
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
 * Java twins of OpenJDK's tests, one upstream file at a time: {@code
 * test/jdk/java/util/concurrent/StructuredTaskScope/StructuredTaskScopeTest.java} (JDK 21 and 25:
 * fork, join, cancellation from other threads, interrupts of the owner, timeouts, subtask states,
 * thread factories, toString), {@code StressShutdown.java}, {@code WithScopedValue.java} (through a
 * {@link ContextPropagator}), {@code ExecutorService/InvokeTest.java} (for {@link
 * TaskGroup#invokeAll} and {@link TaskGroup#invokeAny}) and the JSR166 TCK {@code FutureTaskTest}
 * (the {@link Future} contract of {@link Task}). Each test names its upstream test. Where the
 * library differs by design (any thread may fork; {@code run} is not retried after an interrupt;
 * scopes nest by construction, so no structure violation can be made) the twin asserts the
 * documented behaviour. Scenarios already covered by {@link PortedScenariosTest}, {@link
 * FutureContractTest}, {@link MisuseSweepTest} and {@link InvokeTest} are not repeated.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedJdkTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
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
      Thread.onSpinWait();
      Thread.sleep(1); // polling interval only: the loop condition is the synchronisation
    }
  }

  /** A factory that counts and keeps the threads it made. */
  private static final class Recording implements ThreadFactory {
    final ThreadFactory delegate;
    final Set<Thread> threads = ConcurrentHashMap.newKeySet();

    Recording(ThreadFactory delegate) {
      this.delegate = delegate;
    }

    @Override
    public Thread newThread(Runnable r) {
      Thread t = delegate.newThread(r);
      threads.add(t);
      return t;
    }
  }

  // =============================================== StructuredTaskScopeTest: fork

  // StructuredTaskScopeTest testForkCreatesVirtualThread: with no factory configured, every child
  // runs on its own unnamed virtual thread, for Body and Callable forks alike.
  @Test
  void forkWithTheDefaultFactoryRunsEachChildOnItsOwnUnnamedVirtualThread() throws Exception {
    Set<Thread> threads = ConcurrentHashMap.newKeySet();
    List<Task<?>> tasks = new ArrayList<>();
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          for (int i = 0; i < 50; i++) {
            tasks.add(g.fork(() -> threads.add(Thread.currentThread())));
            tasks.add(
                g.fork(
                    () -> {
                      threads.add(Thread.currentThread());
                    }));
          }
        });
    assertThat(threads).hasSize(100);
    assertThat(threads).allMatch(Thread::isVirtual).allMatch(t -> t.getName().isEmpty());
    assertThat(tasks).allMatch(t -> t.state() == Future.State.SUCCESS && t.name().isEmpty());
  }

  // StructuredTaskScopeTest testForkUsesThreadFactory: every child thread is one the configured
  // factory made, platform or virtual.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void forkMakesEveryChildThreadWithTheConfiguredFactory(ThreadKind kind) throws Exception {
    Recording factory = new Recording(kind.factory());
    Set<Thread> threads = ConcurrentHashMap.newKeySet();
    TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
    g.run(
        () -> {
          for (int i = 0; i < 50; i++) {
            g.fork(() -> threads.add(Thread.currentThread()));
            g.fork(
                () -> {
                  threads.add(Thread.currentThread());
                });
          }
        });
    assertThat(threads).hasSize(100).isEqualTo(factory.threads);
    assertThat(threads).allMatch(t -> t.isVirtual() == (kind == ThreadKind.VIRTUAL));
  }

  // StructuredTaskScopeTest testForkAfterJoinCompleted1/2, testForkAfterJoinInterrupted,
  // testForkAfterJoinTimeout, testJoinAfterJoin1/2, testJoinAfterJoinTimeout: whatever way run
  // ended (normally, failed, interrupted, timed out), a later fork, start or run is rejected with
  // IllegalStateException, every time, and runs nothing. (By design a run cannot be retried after
  // an interrupt, unlike join: upstream testJoinAfterJoinInterrupted does not translate.)
  @ParameterizedTest
  @EnumSource(Ending.class)
  void afterRunEndedEveryWayForkStartAndRunAreRejectedEveryTime(Ending ending) throws Exception {
    TaskGroup g =
        ending == Ending.TIMED_OUT
            ? TaskGroup.builder().timeout(Duration.ofMillis(20)).build()
            : TaskGroup.create();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      switch (ending) {
                        case NORMALLY -> g.fork(() -> "foo");
                        case EMPTY -> {}
                        case FAILED ->
                            g.fork(
                                () -> {
                                  throw new FooException();
                                });
                        case INTERRUPTED -> {
                          g.fork(() -> Thread.sleep(Duration.ofDays(1)));
                          Thread.currentThread().interrupt(); // as upstream, before join
                        }
                        case TIMED_OUT -> {
                          g.fork(() -> Thread.sleep(Duration.ofDays(1)));
                          Thread.sleep(Duration.ofDays(1));
                        }
                      }
                    }));
    Thread.interrupted();
    switch (ending) {
      case FAILED -> assertThat(thrown).isInstanceOf(TaskGroupException.class);
      case INTERRUPTED -> assertThat(thrown).isInstanceOf(InterruptedException.class);
      default -> assertThat(thrown).isNull();
    }
    AtomicBoolean ran = new AtomicBoolean();
    for (int i = 0; i < 3; i++) {
      assertThatThrownBy(() -> g.fork(() -> ran.getAndSet(true)))
          .isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> g.start(s -> ran.set(true)))
          .isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> g.run(() -> ran.set(true)))
          .isInstanceOf(IllegalStateException.class);
    }
    assertThat(ran).isFalse();
    assertThat(g.toString()).contains("done");
  }

  enum Ending {
    EMPTY,
    NORMALLY,
    FAILED,
    INTERRUPTED,
    TIMED_OUT
  }

  static final class FooException extends RuntimeException {
    FooException() {
      super("foo");
    }
  }

  // StructuredTaskScopeTest testForkAfterCancel2 / testJoinWhenCancelled /
  // testSubtaskWhenCancelled:
  // once a child cancelled the group, a fork makes no thread (the factory is not called), runs
  // nothing and gives a CANCELLED task; the first child's result stays readable.
  @RepeatedTest(10)
  void forkAfterAChildCancelledTheGroupCallsNoFactoryAndGivesACancelledTask() throws Exception {
    Recording factory = new Recording(Thread.ofVirtual().factory());
    TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Task<String>> first = new AtomicReference<>();
    AtomicReference<Task<String>> second = new AtomicReference<>();
    AtomicReference<Throwable> readFromOutside = new AtomicReference<>();
    g.run(
        () -> {
          first.set(
              g.fork(
                  () -> {
                    g.cancel("cancel after one");
                    return "foo";
                  }));
          try {
            Thread.sleep(Duration.ofDays(1)); // until the child's cancel reaches the body
          } catch (InterruptedException expected) {
            // the group's own cancellation: swallowed so that the body can fork after it
          }
          second.set(
              g.fork(
                  () -> {
                    secondRan.set(true);
                    Thread.sleep(Duration.ofDays(1));
                    return "bar";
                  }));
          assertThat(factory.threads).hasSize(1);
        });
    // after run, from a thread outside the group: cancelled (upstream "after join, another
    // thread"; the body itself is still cancelled, so a blocking read there is a checkpoint)
    Thread reader =
        Thread.ofPlatform()
            .start(() -> readFromOutside.set(catchThrowable(() -> second.get().get())));
    reader.join();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(factory.threads).hasSize(1);
    assertThat(secondRan).isFalse();
    assertThat(first.get().resultNow()).isEqualTo("foo");
    assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(second.get().isCancelled()).isTrue();
    assertThatThrownBy(second.get()::resultNow).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(second.get()::exceptionNow).isInstanceOf(IllegalStateException.class);
    assertThat(readFromOutside.get()).isInstanceOf(CancellationException.class);
  }

  // StructuredTaskScopeTest testForkAfterJoinTimeout / testJoinWithTimeout3: once the group's
  // deadline expired a fork makes no thread and its task is cancelled; run returns normally.
  @Test
  void forkAfterTheGroupsDeadlineExpiredCallsNoFactory() throws Exception {
    Recording factory = new Recording(Thread.ofVirtual().factory());
    TaskGroup g = TaskGroup.builder().threadFactory(factory).timeout(Duration.ofMillis(50)).build();
    AtomicReference<Task<String>> late = new AtomicReference<>();
    g.run(
        () -> {
          try {
            CancelScope.sleep(Duration.ofDays(1));
          } catch (InterruptedException byTheDeadline) {
            // swallowed: fork again below
          }
          late.set(g.fork(() -> "bar"));
        });
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(factory.threads).isEmpty();
    assertThat(late.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // StructuredTaskScopeTest testForkRejectedExecutionException, plus the brief's thread factory
  // cases: a factory that throws an Error (as one that cannot make a thread might) is rejected with
  // the Error as cause; the group, including its only place, is as it was.
  @Test
  void aFactoryThrowingAnErrorIsRejectedAndGivesItsPlaceBack() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    OutOfMemoryError noThread = new OutOfMemoryError("unable to create native thread (test)");
    TaskGroup g =
        TaskGroup.builder()
            .name("erring")
            .maxConcurrency(1)
            .threadFactory(
                r -> {
                  if (calls.incrementAndGet() == 1) {
                    throw noThread;
                  }
                  return Thread.ofVirtual().unstarted(r);
                })
            .build();
    String result =
        g.call(
            () -> {
              assertThatThrownBy(() -> g.fork(() -> "never"))
                  .isInstanceOf(RejectedExecutionException.class)
                  .hasMessageContaining("erring")
                  .hasCause(noThread);
              return g.fork(() -> "after").get();
            });
    assertThat(result).isEqualTo("after");
    assertThat(g.cancelCalled()).isFalse();
  }

  // Brief: a factory returning a thread that already ran and ended is refused like a live one:
  // RejectedExecutionException, the thread untouched (its name), and the group goes on.
  @Test
  void aFactoryReturningATerminatedThreadIsRejectedAndLeavesTheThreadAsItWas() throws Exception {
    Thread used = Thread.ofPlatform().name("used").start(() -> {});
    used.join();
    AtomicInteger calls = new AtomicInteger();
    TaskGroup g =
        TaskGroup.builder()
            .name("stale")
            .threadFactory(
                r -> calls.incrementAndGet() == 1 ? used : Thread.ofVirtual().unstarted(r))
            .build();
    String result =
        g.call(
            () -> {
              assertThatThrownBy(() -> g.fork("renamed", () -> "never"))
                  .isInstanceOf(RejectedExecutionException.class)
                  .hasMessageContaining("stale")
                  .hasMessageContaining("already started");
              return g.fork(() -> "next").get();
            });
    assertThat(result).isEqualTo("next");
    assertThat(used.getName()).isEqualTo("used");
  }

  // Brief: a Thread whose start() throws before the thread started (a scheduler refusing it) is
  // a RejectedExecutionException from fork, the child leaves the group (run does not wait for
  // it) and its place is given back.
  @Test
  void aThreadWhoseStartThrowsBeforeStartingIsRejectedAndTheGroupIsAsItWas() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    RuntimeException refused = new IllegalStateException("start refused (test)");
    TaskGroup g =
        TaskGroup.builder()
            .name("refusing")
            .maxConcurrency(1)
            .threadFactory(
                r ->
                    calls.incrementAndGet() == 1
                        ? new Thread(r) {
                          @Override
                          public void start() {
                            throw refused;
                          }
                        }
                        : Thread.ofPlatform().unstarted(r))
            .build();
    AtomicBoolean ran = new AtomicBoolean();
    String result =
        g.call(
            () -> {
              assertThatThrownBy(() -> g.fork(() -> ran.getAndSet(true)))
                  .isInstanceOf(RejectedExecutionException.class)
                  .hasMessageContaining("refusing")
                  .hasCause(refused);
              return g.fork(() -> "next").get();
            });
    assertThat(result).isEqualTo("next");
    assertThat(ran).isFalse();
  }

  // =============================================== StructuredTaskScopeTest: join

  // StructuredTaskScopeTest testJoinWithNoSubtasks / testJoinWithRemainingSubtasks: run returns
  // at once with nothing forked, and otherwise waits for the last child without the body reading
  // it.
  @Test
  void runWaitsForARemainingChildThatTheBodyNeverRead() throws Exception {
    TaskGroup empty = TaskGroup.create();
    empty.run(() -> {});
    assertThat(empty.cancelCalled()).isFalse();

    TaskGroup g = TaskGroup.create();
    Task<String> child =
        g.call(
            () ->
                g.fork(
                    () -> {
                      Thread.sleep(100);
                      return "foo";
                    }));
    assertThat(child.state()).isEqualTo(Future.State.SUCCESS);
    assertThat(child.resultNow()).isEqualTo("foo");
  }

  // StructuredTaskScopeTest testInterruptJoin1 (JDK 21: testJoinWithInterruptStatusSet): an
  // interrupt from outside, pending when the body ends, cancels the sleeping child; run throws
  // InterruptedException with the status cleared, as a blocking method does, and the child's
  // thread is done.
  @RepeatedTest(10)
  void anOutsideInterruptPendingAtTheEndOfTheBodyCancelsTheChildAndClearsTheStatus()
      throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Thread> childThread = new AtomicReference<>();
    AtomicReference<Task<String>> child = new AtomicReference<>();
    Thread owner = Thread.currentThread();
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      child.set(
                          g.fork(
                              () -> {
                                childThread.set(Thread.currentThread());
                                started.countDown();
                                Thread.sleep(Duration.ofDays(1));
                                return "foo";
                              }));
                      started.await();
                      Thread outsider = Thread.ofPlatform().start(owner::interrupt);
                      outsider.join();
                    }));
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(Thread.interrupted()).as("status cleared by the throw").isFalse();
    assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(childThread.get().join(Duration.ofSeconds(5))).isTrue();
    assertThat(g.cancelCalled()).isFalse();
  }

  // StructuredTaskScopeTest testInterruptJoin2: the owner interrupted while it waits in run for
  // a child (the body has ended): the child is cancelled and waited for, run throws
  // InterruptedException and the status is clear.
  @RepeatedTest(10)
  void theOwnerInterruptedWhileJoiningCancelsAndWaitsThenThrowsWithTheStatusClear()
      throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean statusAfter = new AtomicBoolean(true);
    AtomicReference<Task<String>> child = new AtomicReference<>();
    AtomicBoolean childEnded = new AtomicBoolean();
    AtomicBoolean childEndedBeforeRunReturned = new AtomicBoolean();
    CountDownLatch bodyEnded = new CountDownLatch(1);
    CountDownLatch childStarted = new CountDownLatch(1);
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    g.run(
                        () -> {
                          child.set(
                              g.fork(
                                  () -> {
                                    childStarted.countDown();
                                    try {
                                      Thread.sleep(Duration.ofDays(1));
                                    } finally {
                                      childEnded.set(true);
                                    }
                                    return "foo";
                                  }));
                          childStarted.await(); // a child cancelled before it began runs nothing
                          bodyEnded.countDown();
                        });
                  } catch (Throwable e) {
                    thrown.set(e);
                  }
                  childEndedBeforeRunReturned.set(childEnded.get());
                  statusAfter.set(Thread.currentThread().isInterrupted());
                });
    bodyEnded.await();
    awaitBlocked(owner);
    assertThat(g.toString()).contains("joining");
    owner.interrupt();
    owner.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(statusAfter).isFalse();
    assertThat(childEndedBeforeRunReturned).isTrue();
    assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // StructuredTaskScopeTest testJoinWithTimeout1: a timeout that does not expire changes nothing.
  @Test
  void aTimeoutThatDoesNotExpireLeavesTheGroupUncancelled() throws Exception {
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofDays(1)).build();
    Task<String> child =
        g.call(
            () ->
                g.fork(
                    () -> {
                      Thread.sleep(50);
                      return "foo";
                    }));
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(g.cancelScope().cancelReason()).isEmpty();
    assertThat(child.resultNow()).isEqualTo("foo");
  }

  // StructuredTaskScopeTest testJoinWithTimeout2 / testTimeoutInterruptsThreads: the deadline
  // expires while the owner joins; the sleeping child is interrupted, the group absorbs its own
  // cancellation (run returns normally, no earlier than the deadline) and the child is CANCELLED.
  @RepeatedTest(5)
  void aTimeoutExpiringWhileJoiningInterruptsTheChildAndRunReturnsNormally() throws Exception {
    Duration timeout = Duration.ofMillis(200);
    TaskGroup g = TaskGroup.builder().timeout(timeout).build();
    AtomicBoolean interrupted = new AtomicBoolean();
    long start = System.nanoTime();
    Task<Void> child =
        g.call(
            () ->
                g.fork(
                    () -> {
                      try {
                        Thread.sleep(Duration.ofDays(1));
                      } catch (InterruptedException e) {
                        interrupted.set(true);
                        throw e;
                      }
                    }));
    long elapsed = System.nanoTime() - start;
    assertThat(elapsed)
        .isGreaterThanOrEqualTo(timeout.toNanos() - TimeUnit.MILLISECONDS.toNanos(5));
    assertThat(interrupted).isTrue();
    assertThat(g.cancelCalled()).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(g.cancelScope().cancelReason()).isPresent();
    assertThat(child.state()).isEqualTo(Future.State.CANCELLED);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // StructuredTaskScopeTest testCancelInterruptsThreads2: a child that cancels the group
  // interrupts its running sibling. The sibling here swallows the interrupt and returns: per the
  // Task javadoc a work that returned is SUCCESS (upstream's subtask is UNAVAILABLE because its
  // scope was cancelled first; here the outcome is the work's own).
  @RepeatedTest(10)
  void aChildsCancelInterruptsARunningSibling() throws Exception {
    TaskGroup g = TaskGroup.create();
    CountDownLatch started = new CountDownLatch(1);
    AtomicBoolean interrupted = new AtomicBoolean();
    AtomicReference<Task<String>> sleeper = new AtomicReference<>();
    AtomicReference<Task<String>> canceller = new AtomicReference<>();
    g.run(
        () -> {
          sleeper.set(
              g.fork(
                  () -> {
                    started.countDown();
                    try {
                      Thread.sleep(Duration.ofDays(1));
                    } catch (InterruptedException e) {
                      interrupted.set(true);
                    }
                    return "swallowed";
                  }));
          started.await();
          canceller.set(
              g.fork(
                  () -> {
                    g.cancel();
                    return "bar";
                  }));
        });
    assertThat(interrupted).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(canceller.get().resultNow()).isEqualTo("bar");
    assertThat(sleeper.get().state()).isIn(Future.State.SUCCESS, Future.State.CANCELLED);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // StructuredTaskScopeTest testInterruptClose1: the owner's body ends with the interrupt status
  // set (by itself, not after any cancellation: an interrupt of the owner), while a child is in a
  // shielded stretch of work that the resulting cancellation cannot cut short. run waits for that
  // child and reports the interrupt (outcome 2 of TaskGroup): InterruptedException, status clear.
  // (Restoring the status after catching the group's own cancellation is not this case: that
  // interrupt is the cancellation, which the group absorbs.)
  @RepeatedTest(10)
  void aShieldedChildIsWaitedForWhenTheBodyEndsWithTheInterruptStatusSet() throws Exception {
    TaskGroup g = TaskGroup.create();
    CountDownLatch shielded = new CountDownLatch(1);
    AtomicBoolean done = new AtomicBoolean();
    AtomicBoolean interruptedAfterShield = new AtomicBoolean();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            CancelScope.shielded()
                                .run(
                                    () -> {
                                      shielded.countDown();
                                      Thread.sleep(100); // not cut short by the cancellation
                                      done.set(true);
                                    });
                            try {
                              Thread.sleep(Duration.ofDays(1));
                            } catch (InterruptedException e) {
                              interruptedAfterShield.set(true);
                              throw e;
                            }
                          });
                      shielded.await();
                      Thread.currentThread().interrupt(); // ends with the status set
                    }));
    assertThat(Thread.interrupted()).as("status cleared by the throw").isFalse();
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(done).as("shielded work finished before run returned").isTrue();
    assertThat(interruptedAfterShield).isTrue();
  }

  // StructuredTaskScopeTest testInterruptClose2: the owner interrupted from outside while it
  // waits for a straggler in its shielded cleanup, after the group cancelled itself. run waits for
  // the straggler all the same and the outside interrupt is reported (outcome 2 of TaskGroup).
  @RepeatedTest(10)
  void anOwnerInterruptedWhileWaitingForAStragglerStillWaitsForIt() throws Exception {
    TaskGroup g = TaskGroup.create();
    CountDownLatch inCleanup = new CountDownLatch(1);
    CountDownLatch childStarted = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean done = new AtomicBoolean();
    AtomicBoolean doneWhenRunEnded = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    g.run(
                        () -> {
                          g.fork(
                              () -> {
                                try {
                                  childStarted.countDown();
                                  Thread.sleep(Duration.ofDays(1));
                                } catch (InterruptedException e) {
                                  CancelScope.shielded()
                                      .run(
                                          () -> {
                                            inCleanup.countDown();
                                            release.await();
                                          });
                                  done.set(true);
                                  throw e;
                                }
                              });
                          childStarted.await(); // else it is cancelled before it runs anything
                          g.cancel("cancel after one");
                        });
                  } catch (Throwable e) {
                    thrown.set(e);
                  }
                  doneWhenRunEnded.set(done.get());
                });
    inCleanup.await();
    awaitBlocked(owner);
    owner.interrupt();
    awaitBlocked(owner); // still waiting for the straggler
    assertThat(owner.isAlive()).isTrue();
    release.countDown();
    owner.join();
    assertThat(doneWhenRunEnded).isTrue();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
  }

  // =============================================== StructuredTaskScopeTest: toString, subtasks

  // StructuredTaskScopeTest testToString / testSubtaskToString: the name shows in every state, and
  // the state follows the group's and the task's life.
  @Test
  void toStringShowsTheNameAndStateThroughoutTheGroupsLife() throws Exception {
    TaskGroup g = TaskGroup.named("duke");
    assertThat(g.toString()).contains("duke").contains("new");
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<String> whileRunning = new AtomicReference<>();
    AtomicReference<String> taskWhileRunning = new AtomicReference<>();
    AtomicReference<Task<String>> slow = new AtomicReference<>();
    AtomicReference<Task<String>> failed = new AtomicReference<>();
    TaskGroup collect =
        TaskGroup.builder().name("duke").failurePolicy(FailurePolicy.COLLECT).build();
    Throwable collectThrew =
        catchThrowable(
            () ->
                collect.run(
                    () -> {
                      whileRunning.set(collect.toString());
                      slow.set(
                          collect.fork(
                              "slow",
                              () -> {
                                release.await();
                                return "foo";
                              }));
                      failed.set(
                          collect.fork(
                              "failing",
                              () -> {
                                throw new FooException();
                              }));
                      taskWhileRunning.set(slow.get().toString());
                      release.countDown();
                    }));
    assertThat(collectThrew).isInstanceOf(TaskGroupException.class);
    g.run(() -> {});
    assertThat(whileRunning.get()).contains("duke").contains("running");
    assertThat(taskWhileRunning.get()).contains("slow").contains("running");
    assertThat(collect.toString()).contains("duke").contains("done");
    assertThat(g.toString()).contains("duke").contains("done");
    assertThat(slow.get().toString()).contains("slow").contains("done");
    assertThat(failed.get().toString()).contains("failing");
  }

  // StructuredTaskScopeTest testSubtaskWhenSuccess / testSubtaskWhenFailed /
  // testSubtaskWhenNotCompleted, with the Future contract in place of Subtask's: before the
  // outcome, resultNow and exceptionNow throw IllegalStateException on the owner and on another
  // thread; after it, they give the outcome on both. (get() before join is a Future's wait here,
  // not an IllegalStateException.)
  @Test
  void resultNowAndExceptionNowBeforeAndAfterTheOutcomeOnEveryThread() throws Exception {
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Task<String>> ok = new AtomicReference<>();
    AtomicReference<Task<String>> bad = new AtomicReference<>();
    FooException foo = new FooException();
    Throwable threw =
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
                        assertThat(t.state()).isEqualTo(Future.State.RUNNING);
                        assertThat(t.isDone()).isFalse();
                        assertThatThrownBy(t::resultNow).isInstanceOf(IllegalStateException.class);
                        assertThatThrownBy(t::exceptionNow)
                            .isInstanceOf(IllegalStateException.class);
                        assertThat(onOtherThread(() -> catchThrowable(t::resultNow)))
                            .isInstanceOf(IllegalStateException.class);
                        assertThat(onOtherThread(() -> catchThrowable(t::exceptionNow)))
                            .isInstanceOf(IllegalStateException.class);
                        assertThat(
                                onOtherThread(
                                    () -> catchThrowable(() -> t.get(0, TimeUnit.SECONDS))))
                            .isInstanceOf(java.util.concurrent.TimeoutException.class);
                      }
                      release.countDown();
                    }));
    assertThat(threw)
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(foo));
    assertThat(ok.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(ok.get().resultNow()).isEqualTo("foo");
    assertThat(onOtherThread(() -> ok.get().resultNow())).isEqualTo("foo");
    assertThat(onOtherThread(() -> ok.get().get())).isEqualTo("foo");
    assertThatThrownBy(ok.get()::exceptionNow).isInstanceOf(IllegalStateException.class);
    assertThat(bad.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(bad.get().exceptionNow()).isSameAs(foo);
    assertThat(onOtherThread(() -> bad.get().exceptionNow())).isSameAs(foo);
    assertThat(onOtherThread(() -> catchThrowable(() -> bad.get().get())))
        .isInstanceOf(ExecutionException.class)
        .hasCause(foo);
    assertThatThrownBy(bad.get()::resultNow).isInstanceOf(IllegalStateException.class);
  }

  private static <T> T onOtherThread(Callable<T> c) throws Exception {
    FutureTask<T> f = new FutureTask<>(c);
    Thread.ofPlatform().start(f);
    return f.get();
  }

  // =============================================== Joiner twins: invokeAll, invokeAny, COLLECT

  // StructuredTaskScopeTest testAllSuccessfulOrThrow1/2/3 and testAwaitSuccessfulOrThrow1-3:
  // invokeAll of nothing, of successes (in order), and of a success and a failure (the failure,
  // unwrapped, in a TaskGroupException).
  @Test
  void invokeAllOfNothingOfSuccessesAndOfAFailure() throws Exception {
    assertThat(TaskGroup.invokeAll(List.<Callable<String>>of())).isEmpty();
    assertThat(TaskGroup.invokeAll(List.<Callable<String>>of(() -> "foo", () -> "bar")))
        .containsExactly("foo", "bar");
    FooException foo = new FooException();
    assertThatThrownBy(
            () ->
                TaskGroup.invokeAll(
                    List.<Callable<String>>of(
                        () -> "foo",
                        () -> {
                          throw foo;
                        })))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(foo));
  }

  // StructuredTaskScopeTest testAnySuccessfulOrThrow2/3/4/5: invokeAny of one success, of a null
  // result, of a failure only, and of a slow success and a quick failure (the success wins).
  @Test
  void invokeAnyOfASuccessANullAFailureAndASlowSuccessBesideAFailure() throws Exception {
    assertThat(TaskGroup.invokeAny(List.<Callable<String>>of(() -> "foo"))).isEqualTo("foo");
    assertThat(TaskGroup.invokeAny(List.<Callable<String>>of(() -> null))).isNull();
    FooException foo = new FooException();
    assertThatThrownBy(
            () ->
                TaskGroup.invokeAny(
                    List.<Callable<String>>of(
                        () -> {
                          throw foo;
                        })))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(foo));
    CountDownLatch failed = new CountDownLatch(1);
    assertThat(
            TaskGroup.invokeAny(
                List.<Callable<String>>of(
                    () -> {
                      failed.await();
                      return "foo";
                    },
                    () -> {
                      failed.countDown();
                      throw new FooException();
                    })))
        .isEqualTo("foo");
  }

  // StructuredTaskScopeTest testAnySuccessfulOrThrow6 / testAllSuccessfulOrThrow4: a deadline
  // around invokeAny cancels the tasks; the caller's scope absorbs the cancellation and the failure
  // of the other task is dropped, as invokeAny drops failures once it gives up.
  @Test
  void aDeadlineAroundInvokeAnyWithAFailureAndASleeperEndsInTheScope() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(100));
    AtomicBoolean returned = new AtomicBoolean();
    scope.run(
        () -> {
          TaskGroup.invokeAny(
              List.<Callable<String>>of(
                  () -> {
                    throw new FooException();
                  },
                  () -> {
                    Thread.sleep(Duration.ofDays(1));
                    return "bar";
                  }));
          returned.set(true);
        });
    assertThat(returned).isFalse();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // StructuredTaskScopeTest testAllUntil4: a COLLECT group whose failure handler cancels the group
  // after the second failure; the body forks pairs until it sees the cancellation. Every fork has a
  // task, at least two failed, and forks after the cancel are cancelled without running.
  @RepeatedTest(5)
  void aCollectGroupCancelledByItsHandlerAfterTwoFailures() throws Exception {
    AtomicInteger failures = new AtomicInteger();
    AtomicReference<TaskGroup> self = new AtomicReference<>();
    TaskGroup g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  if (failures.incrementAndGet() >= 2) {
                    self.get().cancel("two failures");
                  }
                })
            .build();
    self.set(g);
    List<Task<String>> tasks = new ArrayList<>();
    AtomicInteger ran = new AtomicInteger();
    g.run(
        () -> {
          while (!CancelScope.isCancelled()) {
            tasks.add(
                g.fork(
                    () -> {
                      ran.incrementAndGet();
                      return "foo";
                    }));
            tasks.add(
                g.fork(
                    () -> {
                      ran.incrementAndGet();
                      throw new FooException();
                    }));
            try {
              Thread.sleep(20);
            } catch (InterruptedException cancelled) {
              break;
            }
          }
        });
    assertThat(g.cancelCaught()).isTrue();
    long failed = tasks.stream().filter(t -> t.state() == Future.State.FAILED).count();
    long notCancelled = tasks.stream().filter(t -> t.state() != Future.State.CANCELLED).count();
    assertThat(failed).isGreaterThanOrEqualTo(2).isEqualTo(failures.get());
    assertThat(notCancelled).isLessThanOrEqualTo(ran.get());
    assertThat(tasks).allMatch(Task::isDone);
  }

  // StructuredTaskScopeTest testAllUntil6: a COLLECT group with a timeout: run does not throw,
  // the finished child keeps its result, the sleeping one is CANCELLED.
  @Test
  void aCollectGroupWithATimeoutReturnsNormallyWithEachChildsOutcome() throws Exception {
    TaskGroup g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .timeout(Duration.ofMillis(100))
            .build();
    AtomicReference<Task<String>> quick = new AtomicReference<>();
    AtomicReference<Task<String>> sleeper = new AtomicReference<>();
    g.run(
        () -> {
          quick.set(g.fork(() -> "foo"));
          sleeper.set(
              g.fork(
                  () -> {
                    Thread.sleep(Duration.ofDays(1));
                    return "bar";
                  }));
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(quick.get().state()).isIn(Future.State.SUCCESS, Future.State.CANCELLED);
    assertThat(sleeper.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  // =============================================== StressShutdown

  // StressShutdown.java: many children, some blocked, some busy, some forked after, racing a
  // cancel from another thread at a random moment. Every run returns normally, every child thread
  // is done and every task is done; none still runs.
  @RepeatedTest(10)
  void stressShutdownRacingForksAndChildren() throws Exception {
    long seed = System.nanoTime();
    System.out.println("stressShutdownRacingForksAndChildren seed " + seed);
    Random random = new Random(seed);
    Recording factory = new Recording(Thread.ofVirtual().factory());
    TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
    List<Task<?>> tasks = new ArrayList<>();
    int before = random.nextInt(20);
    int after = random.nextInt(20);
    int spinBeforeCancel = random.nextInt(2000);
    g.run(
        () -> {
          for (int i = 0; i < before; i++) {
            tasks.add(g.fork(() -> Thread.sleep(Duration.ofDays(1))));
            tasks.add(
                g.fork(
                    () -> {
                      while (!Thread.currentThread().isInterrupted()) {
                        Thread.onSpinWait();
                      }
                      return null;
                    }));
          }
          Thread canceller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        for (int i = 0; i < spinBeforeCancel; i++) {
                          Thread.onSpinWait();
                        }
                        g.cancel();
                      });
          for (int i = 0; i < after; i++) {
            tasks.add(g.fork(() -> Thread.sleep(Duration.ofDays(1))));
          }
          canceller.join();
        });
    assertThat(g.cancelCaught()).as("seed %s", seed).isTrue();
    assertThat(tasks).allMatch(Task::isDone);
    for (Thread t : factory.threads) {
      assertThat(t.join(Duration.ofSeconds(5))).as("seed %s: %s", seed, t).isTrue();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // =============================================== WithScopedValue (JDK 25, through a propagator)

  /** ScopedValue by reflection: the library builds for Java 21, where it is a preview API. */
  private static final class Scoped {
    final Object key;
    final java.lang.reflect.Method where;
    final java.lang.reflect.Method isBound;
    final java.lang.reflect.Method get;
    final java.lang.reflect.Method run;

    Scoped() throws ReflectiveOperationException {
      Class<?> sv = Class.forName("java.lang.ScopedValue");
      key = sv.getMethod("newInstance").invoke(null);
      where = sv.getMethod("where", sv, Object.class);
      isBound = sv.getMethod("isBound");
      get = sv.getMethod("get");
      run = Class.forName("java.lang.ScopedValue$Carrier").getMethod("run", Runnable.class);
    }

    Object valueOrNull() {
      try {
        return (boolean) isBound.invoke(key) ? get.invoke(key) : null;
      } catch (ReflectiveOperationException e) {
        throw new AssertionError(e);
      }
    }

    void runWhere(Object value, Runnable r) {
      try {
        run.invoke(where.invoke(null, key, value), r);
      } catch (java.lang.reflect.InvocationTargetException e) {
        if (e.getCause() instanceof RuntimeException re) {
          throw re;
        }
        if (e.getCause() instanceof Error err) {
          throw err;
        }
        throw new AssertionError(e.getCause());
      } catch (ReflectiveOperationException e) {
        throw new AssertionError(e);
      }
    }

    /** Captures the binding on the forking thread, rebinds it around the child's work. */
    ContextPropagator propagator() {
      return work -> {
        Object captured = valueOrNull();
        return captured == null ? work : () -> runWhere(captured, work);
      };
    }
  }

  // WithScopedValue testForkInheritsScopedValue, by design reversed: a ScopedValue binding is not
  // inherited by a child without a propagator (TaskGroup javadoc, "Context"); with one that
  // rebinds it, the child, a child of a nested group the child opens, and a child forked under a
  // rebinding in the child each see the binding of the thread that forked them.
  @Test
  void aScopedValueReachesChildrenOnlyThroughAPropagatorAndNestsAsBound() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Runtime.version().feature() >= 25, "ScopedValue is final from JDK 25");
    Scoped sv = new Scoped();
    AtomicReference<Object> plain = new AtomicReference<>("unset");
    AtomicReference<Object> child = new AtomicReference<>();
    AtomicReference<Object> grandchild = new AtomicReference<>();
    AtomicReference<Object> rebound = new AtomicReference<>();
    AtomicReference<Object> bodyAfter = new AtomicReference<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    sv.runWhere(
        "duke",
        () -> {
          try {
            TaskGroup bare = TaskGroup.create();
            bare.run(() -> bare.fork(() -> plain.set(sv.valueOrNull())));
            TaskGroup g = TaskGroup.builder().contextPropagator(sv.propagator()).build();
            g.run(
                () -> {
                  g.fork(
                      () -> {
                        child.set(sv.valueOrNull());
                        TaskGroup inner =
                            TaskGroup.builder().contextPropagator(sv.propagator()).build();
                        inner.run(() -> inner.fork(() -> grandchild.set(sv.valueOrNull())));
                        sv.runWhere(
                            "rebound",
                            () -> {
                              try {
                                g.fork(() -> rebound.set(sv.valueOrNull())).get();
                              } catch (Exception e) {
                                throw new IllegalStateException(e);
                              }
                            });
                      });
                });
            bodyAfter.set(sv.valueOrNull());
          } catch (Throwable e) {
            failure.set(e);
          }
        });
    assertThat(failure.get()).isNull();
    assertThat(plain.get()).isNull();
    assertThat(child.get()).isEqualTo("duke");
    assertThat(grandchild.get()).isEqualTo("duke");
    assertThat(rebound.get()).isEqualTo("rebound");
    assertThat(bodyAfter.get()).isEqualTo("duke");
    assertThat(sv.valueOrNull()).isNull();
  }

  // =============================================== ExecutorService/InvokeTest

  // InvokeTest testInterruptInvokeAny (and the same for invokeAll): the caller interrupted while
  // it waits; the call throws InterruptedException with the status clear, and every task that
  // started was interrupted and has ended.
  @RepeatedTest(5)
  void aCallerInterruptedWhileWaitingInInvokeAnyOrInvokeAllStopsEveryTask() throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicInteger started = new AtomicInteger();
      AtomicInteger interrupted = new AtomicInteger();
      AtomicInteger running = new AtomicInteger();
      CountDownLatch bothStarted = new CountDownLatch(2);
      Callable<String> sleeper =
          () -> {
            running.incrementAndGet();
            started.incrementAndGet();
            bothStarted.countDown();
            try {
              Thread.sleep(Duration.ofDays(1));
            } catch (InterruptedException e) {
              interrupted.incrementAndGet();
            } finally {
              running.decrementAndGet();
            }
            return null;
          };
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicBoolean statusAfter = new AtomicBoolean(true);
      Thread caller =
          Thread.ofPlatform()
              .start(
                  () -> {
                    thrown.set(
                        catchThrowable(
                            () -> {
                              if (any) {
                                TaskGroup.invokeAny(List.of(sleeper, sleeper));
                              } else {
                                TaskGroup.invokeAll(List.of(sleeper, sleeper));
                              }
                            }));
                    statusAfter.set(Thread.currentThread().isInterrupted());
                  });
      bothStarted.await();
      awaitBlocked(caller);
      caller.interrupt();
      caller.join();
      assertThat(thrown.get()).as("any=%s", any).isInstanceOf(InterruptedException.class);
      assertThat(statusAfter).isFalse();
      assertThat(started).hasValue(2);
      assertThat(interrupted).hasValue(2);
      assertThat(running).hasValue(0);
    }
  }

  // InvokeTest testInvokeAny2 / testInvokeAnyWithTimeout2: the first result wins; a task that
  // swallows its cancellation and returns null afterwards is not a second winner.
  @RepeatedTest(5)
  void invokeAnyKeepsTheFirstResultWhenTheLoserSwallowsItsCancellationAndReturns()
      throws Exception {
    CountDownLatch loserStarted = new CountDownLatch(1);
    AtomicBoolean loserInterrupted = new AtomicBoolean();
    String result =
        TaskGroup.invokeAny(
            List.<Callable<String>>of(
                () -> {
                  loserStarted.await();
                  return "foo";
                },
                () -> {
                  loserStarted.countDown();
                  try {
                    Thread.sleep(Duration.ofDays(1));
                  } catch (InterruptedException e) {
                    loserInterrupted.set(true);
                  }
                  return null;
                }));
    assertThat(result).isEqualTo("foo");
    assertThat(loserInterrupted).isTrue();
  }

  // InvokeTest testInvokeAny4: every task fails, the last one late: both failures are reported.
  @Test
  void invokeAnyWhereEveryTaskFailsOneLateReportsBoth() throws Exception {
    Exception first = new Exception("first");
    Exception late = new Exception("late");
    assertThatThrownBy(
            () ->
                TaskGroup.invokeAny(
                    List.<Callable<String>>of(
                        () -> {
                          throw first;
                        },
                        () -> {
                          Thread.sleep(50);
                          throw late;
                        })))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(first, late));
  }

  // =============================================== JSR166 TCK FutureTaskTest

  // FutureTaskTest testCancelInterrupt: cancel(true) of a running task interrupts its work; the
  // task is CANCELLED at once, get() from outside throws CancellationException, and the group
  // carries on uncancelled (a task's own cancellation is not the group's).
  @RepeatedTest(10)
  void cancelOfARunningTaskInterruptsItAndLeavesTheGroupAlone() throws Exception {
    TaskGroup g = TaskGroup.create();
    CountDownLatch started = new CountDownLatch(1);
    AtomicBoolean interrupted = new AtomicBoolean();
    AtomicReference<Throwable> fromOutside = new AtomicReference<>();
    String sibling =
        g.call(
            () -> {
              Task<String> t =
                  g.fork(
                      () -> {
                        started.countDown();
                        try {
                          Thread.sleep(Duration.ofDays(1));
                        } catch (InterruptedException e) {
                          interrupted.set(true);
                          throw e;
                        }
                        return "never";
                      });
              started.await();
              assertThat(t.cancel(true)).isTrue();
              assertThat(t.state()).isEqualTo(Future.State.CANCELLED);
              assertThat(t.isCancelled()).isTrue();
              assertThat(t.isDone()).isTrue();
              assertThat(t.cancel(true)).isFalse();
              fromOutside.set(onOtherThread(() -> catchThrowable(t::get)));
              return g.fork(() -> "bar").get();
            });
    assertThat(sibling).isEqualTo("bar");
    assertThat(interrupted).isTrue();
    assertThat(fromOutside.get()).isInstanceOf(CancellationException.class);
    assertThat(g.cancelCalled()).isFalse();
  }

  // FutureTaskTest testCancelBeforeRun / testCancelBeforeRun2: a child forked from a child of a
  // group with maxConcurrency(1) waits for its place on its own thread; cancelled while it waits,
  // none of its code runs, it is CANCELLED, and the place it would have taken is not lost.
  @RepeatedTest(10)
  void aChildCancelledWhileWaitingForAPlaceNeverRunsAndTheGroupGoesOn() throws Exception {
    TaskGroup g = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean waiterRan = new AtomicBoolean();
    AtomicReference<Task<String>> waiter = new AtomicReference<>();
    CountDownLatch forked = new CountDownLatch(1);
    CountDownLatch cancelled = new CountDownLatch(1);
    String after =
        g.call(
            () -> {
              Task<Void> holder =
                  g.fork(
                      () -> {
                        waiter.set(
                            g.fork(
                                () -> {
                                  waiterRan.set(true);
                                  return "never";
                                }));
                        forked.countDown();
                        cancelled.await(); // holds the only place until the waiter is cancelled
                      });
              forked.await();
              assertThat(waiter.get().cancel(true)).isTrue();
              cancelled.countDown();
              holder.get();
              return g.fork(() -> "next").get(5, TimeUnit.SECONDS);
            });
    assertThat(after).isEqualTo("next");
    assertThat(waiterRan).isFalse();
    assertThat(waiter.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThatThrownBy(() -> waiter.get().get()).isInstanceOf(CancellationException.class);
  }

  // StressShutdown.java with maxConcurrency: forks from the owner that wait for a place and forks
  // from children that wait for theirs on their own threads, racing a cancel from another thread.
  // run returns normally, every task is done, no thread outlives the group, no code of a task that
  // never got its place ran after the cancel.
  @RepeatedTest(10)
  void stressShutdownWithForksWaitingForPlaces() throws Exception {
    long seed = System.nanoTime();
    System.out.println("stressShutdownWithForksWaitingForPlaces seed " + seed);
    Random random = new Random(seed);
    Recording factory = new Recording(Thread.ofVirtual().factory());
    TaskGroup g =
        TaskGroup.builder().threadFactory(factory).maxConcurrency(1 + random.nextInt(3)).build();
    List<Task<?>> tasks = new java.util.concurrent.CopyOnWriteArrayList<>();
    int forks = 5 + random.nextInt(20);
    int spinBeforeCancel = random.nextInt(5000);
    AtomicInteger running = new AtomicInteger();
    Callable<Void> sleeper =
        () -> {
          running.incrementAndGet();
          try {
            Thread.sleep(Duration.ofDays(1));
          } finally {
            running.decrementAndGet();
          }
          return null;
        };
    g.run(
        () -> {
          Thread canceller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        for (int i = 0; i < spinBeforeCancel; i++) {
                          Thread.onSpinWait();
                        }
                        g.cancel();
                      });
          try {
            for (int i = 0; i < forks; i++) {
              tasks.add(
                  g.fork(
                      () -> {
                        tasks.add(g.fork(sleeper)); // from a child: waits on its own thread
                        return sleeper.call();
                      }));
            }
          } finally {
            CancelScope.shielded().run(canceller::join);
          }
        });
    assertThat(g.cancelCaught()).as("seed %s", seed).isTrue();
    assertThat(running).as("seed %s", seed).hasValue(0);
    assertThat(tasks).allMatch(Task::isDone);
    for (Thread t : factory.threads) {
      assertThat(t.join(Duration.ofSeconds(5))).as("seed %s: %s", seed, t).isTrue();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // StructuredTaskScopeTest (JDK 21) testInterruptShutdown1: cancelling with the caller's own
  // interrupt status set; the cancel takes effect and the status is left as it was, for a thread
  // outside the group and for a child of it.
  @RepeatedTest(5)
  void cancelCalledWithTheInterruptStatusSetKeepsTheStatus() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicBoolean outsiderStatus = new AtomicBoolean();
    CountDownLatch started = new CountDownLatch(1);
    g.run(
        () -> {
          g.fork(
              () -> {
                started.countDown();
                Thread.sleep(Duration.ofDays(1));
              });
          started.await();
          Thread outsider =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        Thread.currentThread().interrupt();
                        g.cancel("from an interrupted outsider");
                        outsiderStatus.set(Thread.currentThread().isInterrupted());
                      });
          CancelScope.shielded().run(outsider::join);
          Thread.sleep(Duration.ofDays(1)); // ended by the cancellation
        });
    assertThat(outsiderStatus).isTrue();
    assertThat(g.cancelCaught()).isTrue();
    assertThat(g.cancelScope().cancelReason()).contains("from an interrupted outsider");
  }

  // StructuredTaskScopeTest testInterruptJoin2 with the owner on a virtual thread and children on
  // platform threads (and the reverse): the outcome does not depend on the kinds of thread.
  @ParameterizedTest
  @EnumSource(ThreadKind.class)
  void anOwnerOfEitherKindInterruptedWhileJoiningThrowsAndLeavesNoChild(ThreadKind ownerKind)
      throws Exception {
    ThreadKind childKind =
        ownerKind == ThreadKind.VIRTUAL ? ThreadKind.PLATFORM : ThreadKind.VIRTUAL;
    for (int round = 0; round < 5; round++) {
      Recording factory = new Recording(childKind.factory());
      TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
      CountDownLatch started = new CountDownLatch(1);
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicBoolean status = new AtomicBoolean(true);
      Thread owner =
          ownerKind.start(
              () -> {
                thrown.set(
                    catchThrowable(
                        () ->
                            g.run(
                                () -> {
                                  g.fork(
                                      () -> {
                                        started.countDown();
                                        Thread.sleep(Duration.ofDays(1));
                                      });
                                  started.await();
                                })));
                status.set(Thread.currentThread().isInterrupted());
              });
      started.await();
      awaitBlocked(owner);
      owner.interrupt();
      owner.join();
      assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
      assertThat(status).isFalse();
      for (Thread t : factory.threads) {
        assertThat(t.join(Duration.ofSeconds(5))).isTrue();
      }
    }
  }

  // InvokeTest testInterruptInvokeAny, at the worst moment: the caller is interrupted by someone
  // else after the call was decided (a result arrived; for invokeAll, a task failed) while the
  // caller was still forking. The caller's interrupt must not be absorbed with the cancellation
  // of the other tasks: invokeAny throws InterruptedException (or, had it returned, the
  // status would be set); invokeAll throws the failure with the status still set (TaskGroup,
  // outcome 1). The moment is made with a context propagator of an enclosing group, whose wrap()
  // runs on the caller's thread for each fork: for the second fork it waits until the first task
  // has ended (and so decided the call), then has another thread interrupt the caller. Before
  // the fix the caller, interrupted by that cancellation while forking, had the two interrupts
  // merged and absorbed: invokeAny returned its result, invokeAll threw, with the status clear.
  @RepeatedTest(10)
  void anOutsideInterruptWhileTheInvokingGroupCancelsItselfDuringTheForksIsNotLost()
      throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicReference<Thread> firstTask = new AtomicReference<>();
      AtomicInteger wraps = new AtomicInteger();
      CountDownLatch secondForkWrapping = new CountDownLatch(1);
      FooException foo = new FooException();
      ContextPropagator interruptOnSecondFork =
          work -> {
            if (wraps.incrementAndGet() == 2) {
              secondForkWrapping.countDown(); // past fork's check: the group is not cancelled yet
              Thread caller = Thread.currentThread();
              while (firstTask.get() == null || firstTask.get().isAlive()) {
                Thread.onSpinWait(); // not interruptible: consumes nothing
              }
              Thread outsider = Thread.ofPlatform().start(caller::interrupt);
              while (outsider.isAlive()) {
                Thread.onSpinWait();
              }
            }
            return work;
          };
      TaskGroup enclosing = TaskGroup.builder().contextPropagator(interruptOnSecondFork).build();
      AtomicReference<Object> outcome = new AtomicReference<>();
      AtomicBoolean statusAfter = new AtomicBoolean();
      Callable<String> first =
          () -> {
            firstTask.set(Thread.currentThread());
            secondForkWrapping.await();
            if (any) {
              return "foo";
            }
            throw foo;
          };
      Callable<String> second = () -> "bar";
      Throwable enclosingThrew =
          catchThrowable(
              () ->
                  enclosing.run(
                      () -> {
                        try {
                          outcome.set(
                              any
                                  ? TaskGroup.invokeAny(List.of(first, second))
                                  : TaskGroup.invokeAll(List.of(first, second)));
                        } catch (Throwable e) {
                          outcome.set(e);
                        }
                        statusAfter.set(Thread.currentThread().isInterrupted());
                      }));
      Thread.interrupted();
      if (any) {
        assertThat(
                outcome.get() instanceof InterruptedException
                    || (outcome.get() instanceof String && statusAfter.get()))
            .as("invokeAny: %s, status after %s", outcome.get(), statusAfter.get())
            .isTrue();
      } else {
        assertThat(outcome.get()).isInstanceOf(TaskGroupException.class);
        assertThat(statusAfter).as("invokeAll: the outside interrupt stays set").isTrue();
      }
      assertThat(wraps).as("both forks wrapped: the interrupt was sent").hasValue(2);
      // the interrupt, if still set after the call, is reported by the enclosing group's run
      assertThat(enclosingThrew == null ? !statusAfter.get() : statusAfter.get()).isTrue();
    }
  }

  static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> cancelStress() {
    int[] counts = {0, 1, 3, 15};
    List<org.junit.jupiter.params.provider.Arguments> cases = new ArrayList<>();
    for (ThreadKind kind : ThreadKind.values()) {
      for (int before : counts) {
        for (int after : counts) {
          cases.add(org.junit.jupiter.params.provider.Arguments.of(kind, before, after));
        }
      }
    }
    return cases.stream();
  }

  // StressCancellation.java: children forked before and after a child that cancels the group, on
  // platform and virtual threads: the cancellation interrupts every running child, the forks after
  // it start nothing or are interrupted at once, run returns normally and nothing outlives it.
  @ParameterizedTest
  @org.junit.jupiter.params.provider.MethodSource("cancelStress")
  void aChildCancellingTheGroupAmongRunningAndStartingChildren(
      ThreadKind kind, int before, int after) throws Exception {
    Recording factory = new Recording(kind.factory());
    TaskGroup g = TaskGroup.builder().threadFactory(factory).build();
    List<Task<Boolean>> tasks = new ArrayList<>();
    Callable<Boolean> sleeper =
        () -> {
          Thread.sleep(Duration.ofDays(1));
          return false;
        };
    g.run(
        () -> {
          for (int i = 0; i < before; i++) {
            tasks.add(g.fork(sleeper));
          }
          tasks.add(
              g.fork(
                  () -> {
                    g.cancel();
                    return true;
                  }));
          for (int i = 0; i < after; i++) {
            tasks.add(g.fork(sleeper));
          }
        });
    assertThat(g.cancelCaught()).isTrue();
    assertThat(tasks).hasSize(before + 1 + after).allMatch(Task::isDone);
    assertThat(tasks.get(before).state()).isIn(Future.State.SUCCESS, Future.State.CANCELLED);
    assertThat(tasks.stream().filter(t -> t.state() == Future.State.SUCCESS).count())
        .isLessThanOrEqualTo(1);
    for (Thread t : factory.threads) {
      assertThat(t.join(Duration.ofSeconds(5))).as("%s", t).isTrue();
    }
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  // StructuredTaskScopeTest testForkRejectedExecutionException, for start() and for a fork from a
  // child of a bounded group (which takes its place on the child's own thread): a factory that
  // returns null, then one that returns a started thread, is refused with
  // RejectedExecutionException; the work never runs, the start signal is not left waiting, no
  // place is lost, and the same group starts and forks normally afterwards.
  @Test
  void startAndAForkFromAChildRefusedByTheFactoryLeaveTheGroupAsItWas() throws Exception {
    Thread live = Thread.ofPlatform().unstarted(() -> {});
    AtomicInteger calls = new AtomicInteger();
    ThreadFactory flaky =
        r ->
            switch (calls.incrementAndGet()) {
              case 1, 5 -> null;
              case 2, 6 -> live;
              default -> Thread.ofVirtual().unstarted(r);
            };
    live.start();
    live.join();
    TaskGroup g = TaskGroup.builder().name("flaky").maxConcurrency(1).threadFactory(flaky).build();
    AtomicBoolean ran = new AtomicBoolean();
    String result =
        g.call(
            () -> {
              for (int i = 0; i < 2; i++) {
                assertThatThrownBy(() -> g.start(s -> ran.set(true)))
                    .isInstanceOf(RejectedExecutionException.class)
                    .hasMessageContaining("flaky");
              }
              String started = g.start(s -> s.started("started")); // call 3
              String fromChild =
                  g.fork(
                          () -> {
                            for (int i = 0; i < 2; i++) { // calls 5 and 6 (the child was 4)
                              assertThatThrownBy(() -> g.fork(() -> ran.getAndSet(true)))
                                  .isInstanceOf(RejectedExecutionException.class);
                            }
                            return "child";
                          })
                      .get();
              return started + "," + fromChild + "," + g.fork(() -> "last").get();
            });
    assertThat(result).isEqualTo("started,child,last");
    assertThat(ran).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  // InvokeTest testInvokeAnyWithInterruptSet, with a cancellation in place of the interrupt:
  // invokeAny and invokeAll called inside a scope that is already cancelled run no task and throw
  // InterruptedException, which that scope absorbs; nothing is left on the thread.
  @Test
  void invokeInsideAnAlreadyCancelledScopeRunsNothing() throws Exception {
    for (boolean any : new boolean[] {true, false}) {
      AtomicBoolean ran = new AtomicBoolean();
      Callable<String> task =
          () -> {
            ran.set(true);
            return "foo";
          };
      CancelScope scope = CancelScope.create();
      scope.cancel("before");
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      scope.run(
          () -> {
            try {
              if (any) {
                TaskGroup.invokeAny(List.of(task, task));
              } else {
                TaskGroup.invokeAll(List.of(task, task));
              }
            } catch (InterruptedException e) {
              thrown.set(e);
              throw e;
            }
          });
      assertThat(thrown.get()).as("any=%s", any).isInstanceOf(InterruptedException.class);
      assertThat(ran).isFalse();
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }
}
