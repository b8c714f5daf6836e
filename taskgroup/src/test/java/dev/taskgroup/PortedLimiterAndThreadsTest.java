package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
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
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Twins of the upstream tests about limiting and about threads, translated to this library:
 *
 * <ul>
 *   <li>Trio {@code src/trio/_tests/test_sync.py} and AnyIO {@code tests/test_synchronization.py},
 *       the {@code CapacityLimiter} / {@code Semaphore} / {@code Lock} tests, on a group's places
 *       ({@link TaskGroup.Builder#maxConcurrency}): a borrower is a child holding a place, {@code
 *       acquire} is a {@code fork} that waits, FIFO fairness, a cancelled waiter leaving the queue;
 *   <li>Trio {@code src/trio/_tests/test_threads.py} and AnyIO {@code tests/test_to_thread.py}, on
 *       {@link CancelScope#await} of work running on another executor: {@code
 *       abandon_on_cancel=True} is a plain {@code await} (the stage is cancelled and the waiter
 *       leaves; the other thread runs on), {@code abandon_on_cancel=False} is an {@code await} in a
 *       shielded scope (the cancellation lands once the other thread is done), {@code
 *       from_thread.check_cancelled} is the other thread looking at the stage; the thread limiter
 *       is a bounded group;
 *   <li>Trio {@code src/trio/_tests/test_highlevel_open_tcp_stream.py}: happy eyeballs built here
 *       from the public API ({@link TaskGroup#start}, {@link TaskGroup#cancel()}, {@link
 *       CancelScope#closeOnCancel}, {@link CancelScope#moveOnAfter}) over real loopback sockets on
 *       platform threads (where only {@code closeOnCancel} ends a blocked socket read; some twins
 *       also on virtual threads, where the interrupt closes the socket too): servers that greet
 *       after a delay, that accept and stall, that accept and hang up, and refused ports stand for
 *       Trio's fake sockets; every socket is checked closed at the end.
 * </ul>
 *
 * Upstream tests with no translation, by design: a limit changed while running ({@code
 * total_tokens}, test_increase_tokens), statistics, {@code acquire_nowait} / {@code WouldBlock}
 * (there is no non-blocking fork), {@code acquire_on_behalf_of} and custom limiters, Trio tokens
 * and {@code from_thread} re-entry into an event loop, thread names, contextvars (a child inherits
 * inheritable thread locals, ported elsewhere), portals. Where the semantics differ (a fork whose
 * caller is cancelled while it waits returns a CANCELLED task instead of raising; an await that is
 * cancelled cancels the stage, which is Trio's abandon_on_cancel=True), the twin asserts the
 * documented behaviour. Each test names the upstream test it follows.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedLimiterAndThreadsTest {

  private static final Duration MAX = Duration.ofSeconds(10);

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  // ---------------------------------------------------------------- helpers

  /** Waits (never sleeping) until {@code condition} holds, or fails after 10 s. */
  private static void awaitTrue(String what, BooleanSupplier condition) {
    long until = System.nanoTime() + MAX.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - until > 0L) {
        throw new AssertionError("timed out waiting for: " + what);
      }
      Thread.yield();
    }
  }

  /** Waits until {@code t} is parked (Trio's wait_all_tasks_blocked, for one thread). */
  private static void awaitParked(Thread t) {
    awaitTrue(
        t + " parked",
        () -> t.getState() == Thread.State.WAITING || t.getState() == Thread.State.TIMED_WAITING);
  }

  /** A thread factory that keeps the threads it made, in order. */
  private static final class Threads implements ThreadFactory {
    final List<Thread> made = new CopyOnWriteArrayList<>();

    @Override
    public Thread newThread(Runnable r) {
      Thread t = Thread.ofVirtual().unstarted(r);
      made.add(t);
      return t;
    }

    Thread get(int i) {
      awaitTrue("thread " + i + " made", () -> made.size() > i);
      return made.get(i);
    }
  }

  private interface Action {
    void run() throws Exception;
  }

  /** Starts a platform thread running {@code action}; what it throws is kept in {@code thrown}. */
  private static Thread startThread(AtomicReference<Throwable> thrown, Action action) {
    return Thread.ofPlatform()
        .start(
            () -> {
              try {
                action.run();
              } catch (Throwable t) {
                thrown.set(t);
              }
            });
  }

  private static Thread startThread(Action action) {
    return startThread(new AtomicReference<>(), action);
  }

  /** An ordered trail of events from any thread. */
  private static final class Trail {
    private final Queue<String> events = new ConcurrentLinkedQueue<>();

    void add(String event) {
      events.add(event);
    }

    List<String> events() {
      return List.copyOf(events);
    }
  }

  // ================================================================ limiting: test_sync.py,
  // test_synchronization.py, on maxConcurrency

  /**
   * Trio test_CapacityLimiter and test_Semaphore ("Fairness"), AnyIO TestSemaphore
   * test_acquire_race: a place given back goes to the fork already waiting, never to one that asks
   * after it; the later one waits for the next place.
   */
  @RepeatedTest(10)
  void aFreedPlaceGoesToTheForkAlreadyWaitingNotToALaterOne() throws Exception {
    TaskGroup g = TaskGroup.builder().name("fair").maxConcurrency(2).build();
    Trail trail = new Trail();
    CountDownLatch releaseA = new CountDownLatch(1);
    CountDownLatch releaseB = new CountDownLatch(1);
    CountDownLatch releaseC = new CountDownLatch(1);
    CountDownLatch bothHeld = new CountDownLatch(2);
    AtomicReference<Throwable> lateFailed = new AtomicReference<>();
    AtomicReference<Throwable> earlyFailed = new AtomicReference<>();
    g.run(
        () -> {
          g.fork(
              () -> {
                bothHeld.countDown();
                releaseA.await();
              });
          g.fork(
              () -> {
                bothHeld.countDown();
                releaseB.await();
                trail.add("B done");
              });
          bothHeld.await();
          Thread early =
              startThread(
                  earlyFailed,
                  () ->
                      g.fork(
                          () -> {
                            trail.add("C runs");
                            releaseC.await();
                          }));
          awaitParked(early); // C's fork waits for a place
          releaseA.countDown(); // A ends: its place is C's
          Thread late = startThread(lateFailed, () -> g.fork(() -> trail.add("D runs")));
          awaitTrue("C running", () -> trail.events().contains("C runs"));
          awaitParked(late); // D's fork waits: C took the place, B holds the other
          assertThat(trail.events()).doesNotContain("D runs");
          releaseB.countDown(); // now D's turn
          late.join();
          early.join();
          releaseC.countDown();
        });
    assertThat(earlyFailed.get()).isNull();
    assertThat(lateFailed.get()).isNull();
    assertThat(trail.events()).containsExactly("C runs", "B done", "D runs");
  }

  /**
   * Trio test_CapacityLimiter_memleak_548, AnyIO TestSemaphore / TestLock test_acquire_cancel: a
   * fork whose caller is cancelled while it waits for a place leaves the queue: its work never
   * runs, its caller keeps no interrupt after the scope, and the place freed later goes to the next
   * fork (a dead waiter left in the queue would take it, and that fork would wait for ever).
   */
  @RepeatedTest(10)
  void aForkWhoseCallerIsCancelledWhileWaitingLeavesTheQueue() throws Exception {
    TaskGroup g = TaskGroup.builder().name("limiter").maxConcurrency(1).build();
    CountDownLatch holding = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean cancelledWorkRan = new AtomicBoolean();
    AtomicReference<Task<?>> cancelledFork = new AtomicReference<>();
    AtomicBoolean waiterInterruptedAfter = new AtomicBoolean();
    AtomicReference<Throwable> waiterFailed = new AtomicReference<>();
    AtomicReference<String> next = new AtomicReference<>();
    g.run(
        () -> {
          g.fork(
              () -> {
                holding.countDown();
                release.await();
              });
          holding.await();
          CancelScope scope = CancelScope.create();
          Thread waiter =
              startThread(
                  waiterFailed,
                  () -> {
                    scope.run(() -> cancelledFork.set(g.fork(() -> cancelledWorkRan.set(true))));
                    waiterInterruptedAfter.set(Thread.currentThread().isInterrupted());
                  });
          awaitParked(waiter);
          scope.cancel();
          waiter.join();
          Thread nextFork = startThread(() -> next.set(g.fork("after", () -> "ran").get()));
          awaitParked(nextFork); // waits for the place the holder frees
          release.countDown();
          nextFork.join();
        });
    assertThat(waiterFailed.get()).isNull();
    assertThat(cancelledWorkRan).isFalse();
    assertThat(cancelledFork.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(waiterInterruptedAfter).as("interrupt left after the scope").isFalse();
    assertThat(next.get()).isEqualTo("ran");
  }

  /**
   * Trio test_generic_lock_exclusion, AnyIO TestCapacityLimiter test_limit: with one place, five
   * workers each fork ten sections from inside (such forks never wait: each section takes the place
   * on its own thread); no two of the 55 children ever run at once, and all run.
   */
  @RepeatedTest(3)
  void withOnePlaceNoTwoChildrenEverOverlap() throws Exception {
    TaskGroup g = TaskGroup.builder().name("exclusion").maxConcurrency(1).build();
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger overlaps = new AtomicInteger();
    AtomicInteger ran = new AtomicInteger();
    Body section =
        () -> {
          if (inside.incrementAndGet() != 1) {
            overlaps.incrementAndGet();
          }
          ran.incrementAndGet();
          Thread.yield();
          CancelScope.checkpoint();
          Thread.yield();
          inside.decrementAndGet();
        };
    g.run(
        () -> {
          for (int w = 0; w < 5; w++) {
            g.fork(
                () -> {
                  section.run();
                  for (int i = 0; i < 10; i++) {
                    g.fork(section);
                  }
                });
          }
        });
    assertThat(overlaps.get()).isZero();
    assertThat(ran.get()).isEqualTo(55);
  }

  /**
   * Trio test_generic_lock_fifo_fairness, AnyIO TestCapacityLimiter test_ordered_queue: three
   * loopers queued in order, each forking its next round from inside before it ends, take their
   * turns in the same order every round: a fork from a child queues at the tail, behind the forks
   * already waiting.
   */
  @RepeatedTest(5)
  void loopersForkingTheirNextRoundTakeTurnsInFifoOrder() throws Exception {
    TaskGroup g = TaskGroup.builder().name("fifo").maxConcurrency(1).build();
    List<Integer> record = Collections.synchronizedList(new ArrayList<>());
    int rounds = 5;
    class Looper {
      void round(int name, int left) {
        record.add(name);
        if (left > 1) {
          g.fork(() -> round(name, left - 1));
        }
      }
    }
    Looper looper = new Looper();
    g.run(
        () ->
            g.fork(
                () -> { // holds the place while it queues the three in order
                  for (int name = 1; name <= 3; name++) {
                    int n = name;
                    g.fork(() -> looper.round(n, rounds));
                  }
                }));
    List<Integer> expected = new ArrayList<>();
    for (int i = 0; i < rounds; i++) {
      expected.addAll(List.of(1, 2, 3));
    }
    assertThat(record).containsExactlyElementsOf(expected);
  }

  /**
   * Trio test_generic_lock_fifo_fairness and StrictFIFOLock, for forks from inside a child: a child
   * that forks 100 children in a row under one place (each fork returns at once, the new child
   * waiting for its place on its own thread) sees them run in the order it forked them. The turn is
   * the fork's: threads started one after the other reach the queue in any order, and a queue
   * ordered by their arrival let a later fork overtake an earlier one.
   */
  @RepeatedTest(10)
  void forksFromOneChildRunInTheOrderTheyWereMade() throws Exception {
    TaskGroup g = TaskGroup.builder().name("fork-order").maxConcurrency(1).build();
    List<Integer> order = Collections.synchronizedList(new ArrayList<>());
    int n = 100;
    g.run(
        () ->
            g.fork(
                () -> {
                  for (int i = 0; i < n; i++) {
                    int id = i;
                    g.fork(() -> order.add(id));
                  }
                }));
    List<Integer> expected = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      expected.add(i);
    }
    assertThat(order).containsExactlyElementsOf(expected);
  }

  /**
   * As above, made deterministic with threads that are slow to get going (as a loaded machine makes
   * them): of each pair of children forked one after the other, the first one's thread starts its
   * run only once the second one's waits for its place. The first still runs first: its turn was
   * taken by its fork, not by its thread.
   */
  @RepeatedTest(5)
  void aChildWhoseThreadStartsLateKeepsTheTurnOfItsFork() throws Exception {
    int n = 20;
    List<Thread> made = new CopyOnWriteArrayList<>();
    ThreadFactory lateOddThreads =
        r -> {
          int k = made.size(); // 0: the forking child; k: the child forked k-th
          Thread t =
              Thread.ofVirtual()
                  .unstarted(
                      () -> {
                        try {
                          if (k % 2 == 1 && k < n) {
                            awaitTrue("thread " + (k + 1) + " made", () -> made.size() > k + 1);
                            Thread next = made.get(k + 1);
                            awaitTrue( // the next fork's child waits first (or, out of turn, ran)
                                "thread " + (k + 1) + " waiting",
                                () ->
                                    next.getState() == Thread.State.WAITING
                                        || next.getState() == Thread.State.TERMINATED);
                          }
                        } finally {
                          r.run();
                        }
                      });
          made.add(t);
          return t;
        };
    TaskGroup g =
        TaskGroup.builder()
            .name("late-threads")
            .maxConcurrency(1)
            .threadFactory(lateOddThreads)
            .build();
    List<Integer> order = Collections.synchronizedList(new ArrayList<>());
    g.run(
        () ->
            g.fork(
                () -> {
                  for (int i = 1; i <= n; i++) {
                    int id = i;
                    g.fork(() -> order.add(id));
                  }
                }));
    List<Integer> expected = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      expected.add(i);
    }
    assertThat(order).containsExactlyElementsOf(expected);
  }

  /**
   * Trio test_Lock_and_StrictFIFOLock (nursery cancelled with a holder and a waiter), AnyIO
   * TestLock test_cancel: cancelling the group ends the holder, the child waiting for the place on
   * its own thread and the outsider's fork waiting for it; no waiting work runs and run returns
   * normally.
   */
  @RepeatedTest(5)
  void cancellingTheGroupEndsTheHolderAndEveryWaiter() throws Exception {
    Threads threads = new Threads();
    TaskGroup g =
        TaskGroup.builder().name("holder").maxConcurrency(1).threadFactory(threads).build();
    AtomicBoolean waitingWorkRan = new AtomicBoolean();
    AtomicReference<Task<?>> queuedChild = new AtomicReference<>();
    AtomicReference<Task<?>> outsiderFork = new AtomicReference<>();
    AtomicReference<Throwable> outsiderFailed = new AtomicReference<>();
    CountDownLatch forked = new CountDownLatch(1);
    g.run(
        () -> {
          g.fork(
              () -> {
                queuedChild.set(g.fork(() -> waitingWorkRan.set(true)));
                forked.countDown();
                Thread.sleep(60_000); // holds the place until cancelled
              });
          forked.await();
          awaitParked(threads.get(1)); // the child waits for its place on its own thread
          Thread outsider =
              startThread(
                  outsiderFailed, () -> outsiderFork.set(g.fork(() -> waitingWorkRan.set(true))));
          awaitParked(outsider);
          g.cancel();
          CancelScope.shielded().run(outsider::join);
        });
    assertThat(outsiderFailed.get()).isNull();
    assertThat(waitingWorkRan).isFalse();
    assertThat(queuedChild.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(outsiderFork.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
  }

  /**
   * AnyIO TestLock / TestSemaphore test_cancel_during_acquire[releasefirst / releaselast]: the
   * group is cancelled while a child waits for its place; the holder gives the place back (from a
   * shield) before or after the waiter saw the cancellation. Either way the waiter's work never
   * runs and the group ends with nothing held.
   */
  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void aChildCancelledWhileWaitingForItsPlaceNeverRunsWhicheverComesFirst(boolean releaseFirst)
      throws Exception {
    for (int round = 0; round < 5; round++) {
      Threads threads = new Threads();
      TaskGroup g =
          TaskGroup.builder().name("acquire").maxConcurrency(1).threadFactory(threads).build();
      AtomicBoolean acquired = new AtomicBoolean();
      CountDownLatch release = new CountDownLatch(1);
      CountDownLatch forked = new CountDownLatch(1);
      AtomicReference<Task<?>> waiting = new AtomicReference<>();
      g.run(
          () -> {
            g.fork(
                () -> {
                  waiting.set(g.fork(() -> acquired.set(true)));
                  forked.countDown();
                  CancelScope.shielded().run(release::await);
                });
            forked.await();
            awaitParked(threads.get(1));
            g.cancel();
            CancelScope.shielded()
                .run(
                    () -> {
                      if (releaseFirst) {
                        release.countDown();
                        awaitTrue("waiter done", waiting.get()::isDone);
                      } else {
                        awaitTrue("waiter done", waiting.get()::isDone);
                        release.countDown();
                      }
                    });
          });
      assertThat(acquired).as("round %d", round).isFalse();
      assertThat(waiting.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(g.cancelCaught()).isTrue();
    }
  }

  /**
   * AnyIO test_asyncio_deadlock (#398), for Semaphore, Lock and CapacityLimiter: of two children
   * waiting for the only place, the first is cancelled just as the holder gives the place back; the
   * second still gets it and runs (a place handed to a waiter that is leaving must not be lost).
   */
  @RepeatedTest(30)
  void theFirstWaiterCancelledAsThePlaceFreesNeverStrandsTheSecond() throws Exception {
    Threads threads = new Threads();
    TaskGroup g =
        TaskGroup.builder().name("deadlock-398").maxConcurrency(1).threadFactory(threads).build();
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch forked = new CountDownLatch(1);
    AtomicReference<Task<String>> first = new AtomicReference<>();
    AtomicReference<Task<String>> second = new AtomicReference<>();
    g.run(
        () -> {
          g.fork(
              () -> {
                first.set(g.fork(() -> "first"));
                second.set(g.fork(() -> "second"));
                forked.countDown();
                release.await();
              });
          forked.await();
          awaitParked(threads.get(1));
          awaitParked(threads.get(2));
          Thread canceller = startThread(() -> first.get().cancel(true));
          release.countDown();
          canceller.join();
          assertThat(second.get().get(10, TimeUnit.SECONDS)).isEqualTo("second");
        });
    assertThat(first.get().state()).isIn(Future.State.CANCELLED, Future.State.SUCCESS);
    assertThat(g.cancelCalled()).isFalse();
  }

  /**
   * AnyIO TestCapacityLimiter test_ordered_queue with {@code tg.start}, and
   * test_run_in_custom_limiter (three of four borrow, the fourth waits): a {@code start} from
   * outside waits for a place, and its work runs only once a place is free.
   */
  @RepeatedTest(5)
  void aStartFromOutsideWaitsForAPlaceBeforeItsWorkRuns() throws Exception {
    TaskGroup g = TaskGroup.builder().name("start-waits").maxConcurrency(3).build();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger highWater = new AtomicInteger();
    CountDownLatch threeIn = new CountDownLatch(3);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean startedWorkRan = new AtomicBoolean();
    AtomicReference<Object> started = new AtomicReference<>();
    AtomicReference<Throwable> starterFailed = new AtomicReference<>();
    g.run(
        () -> {
          for (int i = 0; i < 3; i++) {
            g.fork(
                () -> {
                  highWater.accumulateAndGet(running.incrementAndGet(), Math::max);
                  threeIn.countDown();
                  release.await();
                  running.decrementAndGet();
                });
          }
          threeIn.await();
          Thread starter =
              startThread(
                  starterFailed,
                  () ->
                      started.set(
                          g.start(
                              signal -> {
                                startedWorkRan.set(true);
                                highWater.accumulateAndGet(running.incrementAndGet(), Math::max);
                                signal.started("fourth");
                                running.decrementAndGet();
                              })));
          awaitParked(starter);
          assertThat(startedWorkRan).as("the start's work ran without a place").isFalse();
          release.countDown();
          starter.join();
        });
    assertThat(starterFailed.get()).isNull();
    assertThat(started.get()).isEqualTo("fourth");
    assertThat(highWater.get()).isEqualTo(3);
  }

  /**
   * Trio test_CapacityLimiter ("can't re-acquire when we already have it" becomes: a borrower never
   * waits for a second token): a fork from anywhere inside a child, even from a grandchild in a
   * group the child opened, never waits for a place, so a child that waits for its own nested group
   * cannot deadlock the bounded group.
   */
  @Test
  void aForkFromAGrandchildInsideTheHolderNeverWaits() throws Exception {
    TaskGroup g = TaskGroup.builder().name("outer").maxConcurrency(1).build();
    Trail trail = new Trail();
    g.run(
        () ->
            g.fork(
                () -> {
                  TaskGroup inner = TaskGroup.named("inner");
                  inner.run(
                      () ->
                          inner.fork(
                              () -> {
                                g.fork(() -> trail.add("forked from the grandchild ran"));
                                trail.add("grandchild's fork returned");
                              }));
                  trail.add("holder done");
                }));
    assertThat(trail.events())
        .containsExactly(
            "grandchild's fork returned", "holder done", "forked from the grandchild ran");
  }

  /**
   * The place given back after the failure is reported (Trio test_run_in_worker_thread_limiter
   * holds the token until the thread's outcome is in): with policy COLLECT and an onFailure
   * handler, a failing child keeps its place until its handler returns, so a fork waiting for the
   * only place starts after the handler, never beside it.
   */
  @RepeatedTest(5)
  void aFailingChildKeepsItsPlaceUntilItsFailureHandlerReturns() throws Exception {
    Trail trail = new Trail();
    AtomicReference<Thread> owner = new AtomicReference<>();
    AtomicBoolean forkReturned = new AtomicBoolean();
    TaskGroup g =
        TaskGroup.builder()
            .name("handler-holds")
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                failure -> {
                  trail.add("handler: " + failure.getMessage());
                  // The owner's fork waits for the place this child still holds.
                  awaitTrue(
                      "owner waiting in fork, or its fork returned",
                      () -> forkReturned.get() || owner.get().getState() == Thread.State.WAITING);
                  trail.add("handler returns");
                })
            .build();
    g.run(
        () -> {
          owner.set(Thread.currentThread());
          g.fork(
              () -> {
                throw new IllegalStateException("boom");
              });
          g.fork(() -> trail.add("next child runs"));
          forkReturned.set(true);
        });
    assertThat(trail.events())
        .containsExactly("handler: boom", "handler returns", "next child runs");
  }

  /**
   * Trio test_run_in_worker_thread_fail_to_spawn: a fork the thread factory refuses throws {@link
   * RejectedExecutionException} and gives back the place it took, so the next fork runs.
   */
  @Test
  void aForkTheThreadFactoryRefusesGivesItsPlaceBack() throws Exception {
    AtomicBoolean refuse = new AtomicBoolean(true);
    TaskGroup g =
        TaskGroup.builder()
            .name("refusing")
            .maxConcurrency(1)
            .threadFactory(
                r -> {
                  if (refuse.getAndSet(false)) {
                    throw new IllegalStateException("the engines canna take it");
                  }
                  return Thread.ofVirtual().unstarted(r);
                })
            .build();
    AtomicReference<String> next = new AtomicReference<>();
    g.run(
        () -> {
          assertThatThrownBy(() -> g.fork(() -> "refused"))
              .isInstanceOf(RejectedExecutionException.class)
              .hasRootCauseMessage("the engines canna take it");
          next.set(g.fork(() -> "ran").get(10, TimeUnit.SECONDS));
        });
    assertThat(next.get()).isEqualTo("ran");
  }

  /**
   * Trio test_run_in_worker_thread_limiter[MAX, cancel]: with 2 * MAX children under
   * maxConcurrency(MAX), exactly MAX run at once; with {@code cancel}, each child cancels a scope
   * of its own first and carries on in a shield (Trio's abandoned thread, still holding its token),
   * and still holds its place until it ends: the high-water mark is MAX and every child ran.
   */
  @ParameterizedTest
  @CsvSource({"3,false", "3,true", "5,false", "5,true"})
  void threadLimiterLetsExactlyMaxRunEvenWhenTheyAreCancelled(int max, boolean cancel)
      throws Exception {
    int count = 2 * max;
    TaskGroup g = TaskGroup.builder().name("limiter-" + max).maxConcurrency(max).build();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger highWater = new AtomicInteger();
    AtomicInteger ran = new AtomicInteger();
    AtomicInteger parked = new AtomicInteger();
    CountDownLatch gate = new CountDownLatch(1);
    Body threadFn =
        () -> {
          ran.incrementAndGet();
          highWater.accumulateAndGet(running.incrementAndGet(), Math::max);
          parked.incrementAndGet();
          gate.await();
          parked.decrementAndGet();
          running.decrementAndGet();
        };
    g.run(
        () -> {
          g.fork(
              () -> {
                for (int i = 0; i < count; i++) {
                  g.fork(
                      () -> {
                        if (cancel) {
                          CancelScope own = CancelScope.create();
                          own.run(
                              () -> {
                                own.cancel();
                                CancelScope.shielded().run(threadFn::run);
                              });
                        } else {
                          threadFn.run();
                        }
                      });
                }
              });
          awaitTrue("MAX parked", () -> parked.get() == max);
          gate.countDown();
        });
    assertThat(highWater.get()).isEqualTo(max);
    assertThat(ran.get()).isEqualTo(count);
    assertThat(running.get()).isZero();
  }

  /**
   * AnyIO test_cancel_during_acquire with a failure in the holder's cleanup: the holder of the only
   * place is cancelled with Task.cancel and its finally throws; under CANCEL_ALL that failure
   * cancels the group before the place is given back, so the fork waiting for it never runs its
   * work, and the one failure is reported.
   */
  @RepeatedTest(10)
  void aHolderWhoseCleanupFailsCancelsTheGroupBeforeTheWaiterGetsThePlace() throws Exception {
    TaskGroup g = TaskGroup.builder().name("cleanup-fails").maxConcurrency(1).build();
    AtomicBoolean waiterRan = new AtomicBoolean();
    AtomicReference<Task<?>> waiter = new AtomicReference<>();
    CountDownLatch holding = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      Task<Void> holder =
                          g.fork(
                              () -> {
                                try {
                                  holding.countDown();
                                  Thread.sleep(60_000);
                                } finally {
                                  throw new IllegalStateException("cleanup failed");
                                }
                              });
                      holding.await();
                      Thread owner = Thread.currentThread();
                      Thread canceller =
                          startThread(
                              () -> {
                                awaitParked(owner); // the owner waits in fork below
                                holder.cancel(true);
                              });
                      waiter.set(g.fork(() -> waiterRan.set(true)));
                      CancelScope.shielded().run(canceller::join);
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .satisfies(f -> assertThat(f).hasMessage("cleanup failed"));
    assertThat(waiterRan).isFalse();
    assertThat(waiter.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  /**
   * The guide's onFailure restart under maxConcurrency (no direct upstream; closest Trio
   * test_CapacityLimiter: a borrower never waits for a second token of its own): a failing child's
   * handler forks the work again; that fork does not wait for the place the failing child still
   * holds, and the retry runs once the handler has returned.
   */
  @RepeatedTest(5)
  void aFailureHandlerRestartingTheWorkUnderOnePlaceNeverDeadlocks() throws Exception {
    AtomicInteger attempts = new AtomicInteger();
    AtomicReference<TaskGroup> self = new AtomicReference<>();
    Trail trail = new Trail();
    Body work =
        () -> {
          int n = attempts.incrementAndGet();
          trail.add("attempt " + n);
          if (n < 3) {
            throw new IllegalStateException("fail " + n);
          }
        };
    TaskGroup g =
        TaskGroup.builder()
            .name("restart")
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  trail.add("handler " + f.getMessage());
                  self.get().fork(work);
                  trail.add("handler returns");
                })
            .build();
    self.set(g);
    g.run(() -> g.fork(work));
    assertThat(trail.events())
        .containsExactly(
            "attempt 1",
            "handler fail 1",
            "handler returns",
            "attempt 2",
            "handler fail 2",
            "handler returns",
            "attempt 3");
  }

  // ================================================================ threads: test_threads.py,
  // test_to_thread.py, on CancelScope.await

  /**
   * Trio test_run_in_worker_thread, AnyIO test_run_in_thread_exception: await returns what the
   * other thread computed, and reports what it threw as the cause of an ExecutionException, the
   * same object.
   */
  @Test
  void awaitGivesTheOtherThreadsResultOrItsFailureUnchanged() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      Thread me = Thread.currentThread();
      Thread other = CancelScope.await(CompletableFuture.supplyAsync(Thread::currentThread, pool));
      assertThat(other).isNotSameAs(me);
      IllegalArgumentException boom = new IllegalArgumentException("foo");
      Throwable thrown =
          catchThrowable(
              () ->
                  CancelScope.await(
                      CompletableFuture.supplyAsync(
                          () -> {
                            throw boom;
                          },
                          pool)));
      assertThat(thrown).isInstanceOf(ExecutionException.class);
      assertThat(thrown.getCause()).isSameAs(boom);
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_run_in_worker_thread_cancellation (abandon_on_cancel=True), AnyIO
   * test_cancel_worker_thread[abandon] and test_cancel_wait_on_thread: the child waiting for the
   * other thread is cancelled with its group and leaves at once; the other thread is not
   * interrupted, finishes its own work later, and its late result goes nowhere.
   */
  @RepeatedTest(5)
  void aCancelledAwaitLeavesTheOtherThreadRunningUndisturbed() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      BlockingQueue<String> q = new ArrayBlockingQueue<>(1);
      Trail trail = new Trail();
      AtomicBoolean workerInterrupted = new AtomicBoolean();
      CountDownLatch blocking = new CountDownLatch(1);
      CompletableFuture<String> stage =
          CompletableFuture.supplyAsync(
              () -> {
                blocking.countDown();
                try {
                  String got = q.take();
                  trail.add("thread finished");
                  return got;
                } catch (InterruptedException e) {
                  workerInterrupted.set(true);
                  return "interrupted";
                }
              },
              pool);
      TaskGroup g = TaskGroup.named("abandon");
      g.run(
          () -> {
            Task<String> child =
                g.fork(
                    () -> {
                      trail.add("start");
                      try {
                        return CancelScope.await(stage);
                      } finally {
                        trail.add("exit");
                      }
                    });
            blocking.await();
            awaitTrue("child waiting", () -> trail.events().contains("start"));
            g.cancel();
            awaitTrue("child left", child::isDone);
            assertThat(child.state()).isEqualTo(Future.State.CANCELLED);
          });
      assertThat(stage).isCancelled();
      assertThat(trail.events()).containsExactly("start", "exit");
      q.put("late");
      pool.shutdown();
      assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
      assertThat(workerInterrupted).as("the other thread was interrupted").isFalse();
      assertThat(trail.events()).containsExactly("start", "exit", "thread finished");
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_run_in_worker_thread_cancellation ("this one can't be cancelled":
   * abandon_on_cancel=False), AnyIO test_cancel_worker_thread[noabandon]: the await in a shielded
   * scope keeps waiting through the group's cancellation; once the other thread is done the child
   * gets its result, and its next checkpoint ends it as cancelled, after the thread.
   */
  @RepeatedTest(5)
  void aShieldedAwaitWaitsForTheOtherThreadThenTheCancellationLands() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      CountDownLatch go = new CountDownLatch(1);
      Trail trail = new Trail();
      CompletableFuture<String> stage =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  go.await();
                } catch (InterruptedException e) {
                  return "interrupted";
                }
                trail.add("thread");
                return "value";
              },
              pool);
      AtomicReference<String> got = new AtomicReference<>();
      Threads threads = new Threads();
      TaskGroup tg = TaskGroup.builder().name("no-abandon").threadFactory(threads).build();
      tg.run(
          () -> {
            Task<Void> child =
                tg.fork(
                    () -> {
                      try {
                        got.set(CancelScope.shielded().call(() -> CancelScope.await(stage)));
                        CancelScope.checkpoint();
                        trail.add("not cancelled");
                      } finally {
                        trail.add("task exit");
                      }
                    });
            awaitParked(threads.get(0));
            tg.cancel();
            CancelScope.shielded()
                .run(
                    () -> {
                      // Still waiting: the shield keeps the cancellation out of the await.
                      awaitParked(threads.get(0));
                      assertThat(child.isDone()).isFalse();
                      go.countDown();
                    });
          });
      assertThat(got.get()).isEqualTo("value");
      assertThat(stage).isCompletedWithValue("value");
      assertThat(trail.events()).containsExactly("thread", "task exit");
      assertThat(tg.cancelCaught()).isTrue();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_run_in_worker_thread_cancellation (cancelled before entry: "the entry is itself a
   * cancellation point"), AnyIO test_run_in_thread_cancelled: an await in a scope already cancelled
   * cancels the stage before the other thread took it up, so that work never runs, and the scope
   * catches the cancellation.
   */
  @RepeatedTest(5)
  void anAwaitInACancelledScopeCancelsWorkTheOtherThreadHasNotBegun() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      CountDownLatch busy = new CountDownLatch(1);
      pool.execute(
          () -> {
            try {
              busy.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          });
      AtomicBoolean workRan = new AtomicBoolean();
      CompletableFuture<String> stage =
          CompletableFuture.supplyAsync(
              () -> {
                workRan.set(true);
                return "ran";
              },
              pool);
      CancelScope scope = CancelScope.create();
      AtomicBoolean after = new AtomicBoolean();
      scope.run(
          () -> {
            scope.cancel();
            CancelScope.await(stage);
            after.set(true);
          });
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(after).isFalse();
      assertThat(stage).isCancelled();
      busy.countDown();
      pool.submit(() -> null).get(10, TimeUnit.SECONDS); // the queued work has had its turn
      assertThat(workRan).as("work of a cancelled await ran on the other thread").isFalse();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_from_thread_host_cancelled: the other thread cancels the waiter's scope and then
   * returns a value. Whichever the waiter sees first, exactly one holds: it got the value and its
   * scope caught nothing, or its scope caught the cancellation and the value was not returned; no
   * interrupt is left after the scope, and the stage is done.
   */
  @RepeatedTest(30)
  void theOtherThreadCancellingTheWaitersScopeRacesItsOwnResult() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      CancelScope scope = CancelScope.create();
      AtomicReference<String> got = new AtomicReference<>();
      scope.run(
          () ->
              got.set(
                  CancelScope.await(
                      CompletableFuture.supplyAsync(
                          () -> {
                            scope.cancel();
                            return "value";
                          },
                          pool))));
      assertThat(got.get() != null)
          .as("got %s, cancelCaught %s", got.get(), scope.cancelCaught())
          .isNotEqualTo(scope.cancelCaught());
      assertThat(scope.cancelCalled()).isTrue();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_from_thread_host_cancelled (the async_check case: a checkpoint after the thread is
   * back): once the other thread cancelled the scope, a checkpoint after the await always ends the
   * scope as cancelled, whether the await returned the value or threw.
   */
  @RepeatedTest(10)
  void aCheckpointAfterTheAwaitAlwaysSeesTheOtherThreadsCancel() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      CancelScope scope = CancelScope.create();
      AtomicBoolean after = new AtomicBoolean();
      scope.run(
          () -> {
            CancelScope.await(
                CompletableFuture.supplyAsync(
                    () -> {
                      scope.cancel();
                      return "value";
                    },
                    pool));
            CancelScope.checkpoint();
            after.set(true);
          });
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(after).isFalse();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_from_thread_check_cancelled, its three cases. Nothing cancelled: the other thread
   * sees no cancellation and the waiter gets its value. abandon_on_cancel=True (a plain await):
   * after the waiter's scope is cancelled, the other thread soon sees its stage cancelled, and the
   * scope catches the cancellation. abandon_on_cancel=False (a shielded await): the other thread
   * sees nothing, returns, and the cancellation pops out after the shield.
   */
  @ParameterizedTest
  @ValueSource(strings = {"not cancelled", "abandon", "no abandon"})
  void theOtherThreadSeesTheWaitersCancellationThroughTheStage(String mode) throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      CountDownLatch ev = new CountDownLatch(1);
      BlockingQueue<String> q = new ArrayBlockingQueue<>(1);
      AtomicReference<CompletableFuture<String>> self = new AtomicReference<>();
      CountDownLatch published = new CountDownLatch(1);
      // A stage cancelled before its supplier began never runs it (CompletableFuture.AsyncSupply
      // skips it): the other thread must be running before the waiter can be cancelled.
      CountDownLatch running = new CountDownLatch(1);
      CompletableFuture<String> stage =
          CompletableFuture.supplyAsync(
              () -> {
                running.countDown();
                try {
                  published.await();
                  ev.await();
                  CompletableFuture<String> me = self.get();
                  if (mode.equals("abandon")) {
                    long until = System.nanoTime() + MAX.toNanos();
                    while (!me.isCancelled() && System.nanoTime() - until < 0L) {
                      Thread.yield(); // "soon" after the waiter gave up
                    }
                  }
                  q.put(me.isCancelled() ? "Cancelled" : "Not Cancelled");
                } catch (InterruptedException e) {
                  q.add("interrupted");
                }
                return "value";
              },
              pool);
      self.set(stage);
      published.countDown();
      running.await();
      Trail record = new Trail();
      CancelScope scope = CancelScope.create();
      Thread host = Thread.currentThread();
      Thread helper =
          startThread(
              () -> {
                awaitTrue("host waiting", () -> record.events().contains("start"));
                awaitParked(host);
                if (!mode.equals("not cancelled")) {
                  scope.cancel();
                }
                ev.countDown();
              });
      AtomicReference<String> got = new AtomicReference<>();
      scope.run(
          () -> {
            record.add("start");
            try {
              if (mode.equals("no abandon")) {
                got.set(CancelScope.shielded().call(() -> CancelScope.await(stage)));
                CancelScope.checkpoint();
              } else {
                got.set(CancelScope.await(stage));
              }
            } catch (InterruptedException e) {
              record.add("cancel");
              throw e;
            } finally {
              record.add("exit");
            }
          });
      helper.join();
      String seen = q.poll(10, TimeUnit.SECONDS);
      switch (mode) {
        case "not cancelled" -> {
          assertThat(seen).isEqualTo("Not Cancelled");
          assertThat(got.get()).isEqualTo("value");
          assertThat(scope.cancelCaught()).isFalse();
          assertThat(record.events()).containsExactly("start", "exit");
        }
        case "abandon" -> {
          assertThat(seen).isEqualTo("Cancelled");
          assertThat(got.get()).isNull();
          assertThat(scope.cancelCaught()).isTrue();
          assertThat(record.events()).containsExactly("start", "cancel", "exit");
        }
        default -> {
          assertThat(seen).isEqualTo("Not Cancelled");
          assertThat(got.get()).isEqualTo("value");
          assertThat(scope.cancelCaught()).isTrue();
          assertThat(record.events()).containsExactly("start", "cancel", "exit");
        }
      }
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_reentry_doesnt_deadlock: four children loop on awaits of short work on a shared pool
   * under a timeout; the timeout lands wherever each one is (waiting, or between two awaits) and
   * everything ends: no hang, no failure, no interrupt left.
   */
  @RepeatedTest(2)
  void childrenLoopingOnAwaitEndCleanlyWhenTheirTimeoutFires() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      AtomicInteger rounds = new AtomicInteger();
      TaskGroup g = TaskGroup.named("reentry");
      Object result =
          CancelScope.moveOnAfter(
              Duration.ofMillis(300),
              () -> {
                g.run(
                    () -> {
                      for (int i = 0; i < 4; i++) {
                        g.fork(
                            () -> {
                              while (true) {
                                CancelScope.await(
                                    CompletableFuture.supplyAsync(
                                        () -> rounds.incrementAndGet(), pool));
                              }
                            });
                      }
                    });
                return "not cancelled";
              });
      assertThat(result).isNull();
      assertThat(rounds.get()).isPositive();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * AnyIO test_asyncio_cancel_native_task and the await contract ("an interrupt from someone else
   * throws and leaves the stage alone"), in a cooperative scope: the waiter is interrupted by
   * another thread; await throws InterruptedException and the stage is not cancelled; and a
   * cancellation of the cooperative scope cancels the stage without setting the interrupt status.
   */
  @Test
  void inACooperativeScopeAnOutsideInterruptLeavesTheStageAloneAndACancelDoesNot()
      throws Exception {
    CompletableFuture<String> never = new CompletableFuture<>();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread waiter =
        startThread(thrown, () -> CancelScope.cooperative().run(() -> CancelScope.await(never)));
    awaitParked(waiter);
    waiter.interrupt();
    waiter.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(never).isNotDone();

    CancelScope coop = CancelScope.cooperative();
    AtomicBoolean statusInside = new AtomicBoolean();
    Thread me = Thread.currentThread();
    Thread canceller =
        startThread(
            () -> {
              awaitParked(me);
              coop.cancel();
            });
    coop.run(
        () -> {
          try {
            CancelScope.await(never);
          } finally {
            statusInside.set(Thread.currentThread().isInterrupted());
          }
        });
    canceller.join();
    assertThat(coop.cancelCaught()).isTrue();
    assertThat(never).isCancelled();
    assertThat(statusInside).as("interrupt status set in a cooperative scope").isFalse();
  }

  /**
   * AnyIO test_run_in_thread_exception inside a group, with Trio's "failures never lost": the other
   * thread's failure, thrown by await in a child as ExecutionException, is the group's failure and
   * cancels the siblings; a sibling waiting on the same kind of stage leaves its stage cancelled.
   */
  @RepeatedTest(5)
  void theOtherThreadsFailureThroughAwaitIsTheGroupsFailure() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      IllegalStateException boom = new IllegalStateException("foo");
      CompletableFuture<String> never = new CompletableFuture<>();
      TaskGroup g = TaskGroup.named("await-failure");
      Throwable thrown =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        g.fork(() -> CancelScope.await(never));
                        g.fork(
                            () ->
                                CancelScope.await(
                                    CompletableFuture.supplyAsync(
                                        () -> {
                                          throw boom;
                                        },
                                        pool)));
                      }));
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      List<Throwable> failures = ((TaskGroupException) thrown).failures();
      assertThat(failures).hasSize(1);
      assertThat(failures.get(0)).isInstanceOf(ExecutionException.class).hasCause(boom);
      assertThat(never).isCancelled();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_run_in_worker_thread_limiter_error (a release that raises chains with the function's
   * own error), translated to a hook left open: with no group around, the scope's exit throws what
   * the action threw, suppressed on the body's own failure when there is one (an {@link Error},
   * which stays a failure after the hook started); when the body ends by the cancellation, the
   * action's failure is thrown as it is.
   */
  @Test
  void aHookThatFailsIsSuppressedOnTheBodysOwnFailureOrThrownAlone() throws Exception {
    IOException releaseFailed = new IOException("release failed");
    CancelScope failing = CancelScope.create();
    Throwable thrown =
        catchThrowable(
            () ->
                failing.run(
                    () -> {
                      CancelScope.onCancel(
                          () -> {
                            throw releaseFailed;
                          });
                      failing.cancel();
                      try {
                        Thread.sleep(10_000);
                      } catch (InterruptedException e) {
                        throw new AssertionError("the function's own error");
                      }
                    }));
    assertThat(thrown).isInstanceOf(AssertionError.class).hasMessage("the function's own error");
    assertThat(thrown.getSuppressed()).containsExactly(releaseFailed);

    CancelScope cancelled = CancelScope.create();
    Throwable alone =
        catchThrowable(
            () ->
                cancelled.run(
                    () -> {
                      CancelScope.onCancel(
                          () -> {
                            throw releaseFailed;
                          });
                      cancelled.cancel();
                      Thread.sleep(10_000);
                    }));
    assertThat(alone).isSameAs(releaseFailed);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * Trio test_from_thread_host_cancelled (sync_check, abandon_on_cancel=False): the other thread
   * cancels the waiter's scope and returns; the waiter, in a shielded await, gets the value, and
   * with no checkpoint after it its scope catches nothing and leaves no interrupt.
   */
  @RepeatedTest(5)
  void aShieldedAwaitReturnsTheValueOfAThreadThatCancelledTheWaitersScope() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      CancelScope scope = CancelScope.create();
      AtomicReference<String> got = new AtomicReference<>();
      scope.run(
          () ->
              got.set(
                  CancelScope.shielded()
                      .call(
                          () ->
                              CancelScope.await(
                                  CompletableFuture.supplyAsync(
                                      () -> {
                                        scope.cancel();
                                        return "value";
                                      },
                                      pool)))));
      assertThat(got.get()).isEqualTo("value");
      assertThat(scope.cancelCalled()).isTrue();
      assertThat(scope.cancelCaught()).isFalse();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Trio test_await_in_trio_thread_while_main_exits: a thread outside the group waits on a child's
   * outcome (await of the child's future) when the group is cancelled and ends; the outsider's wait
   * ends with the child's cancellation (CancellationException), and the outsider, which was not in
   * the group, is not interrupted.
   */
  @RepeatedTest(5)
  void anOutsiderAwaitingAChildWhenTheGroupEndsSeesItCancelled() throws Exception {
    TaskGroup g = TaskGroup.named("main-exits");
    AtomicReference<Throwable> outsiderGot = new AtomicReference<>();
    AtomicBoolean outsiderInterrupted = new AtomicBoolean();
    CountDownLatch sleeping = new CountDownLatch(1);
    AtomicReference<Thread> outsider = new AtomicReference<>();
    g.run(
        () -> {
          Task<String> child =
              g.fork(
                  () -> {
                    sleeping.countDown();
                    Thread.sleep(60_000);
                    return "never";
                  });
          sleeping.await();
          outsider.set(
              startThread(
                  () -> {
                    try {
                      CancelScope.await(child.toCompletableFuture());
                    } catch (Throwable t) {
                      outsiderGot.set(t);
                    }
                    outsiderInterrupted.set(Thread.currentThread().isInterrupted());
                  }));
          awaitParked(outsider.get());
          g.cancel();
        });
    outsider.get().join();
    assertThat(outsiderGot.get()).isInstanceOf(java.util.concurrent.CancellationException.class);
    assertThat(outsiderInterrupted).isFalse();
  }

  /**
   * Trio test_do_in_trio_thread (from_thread.run_sync from a foreign thread, returning a value or
   * raising): a worker thread outside the group forks into it and reads the outcome with get(); it
   * gets the value, or the failure as an ExecutionException, and the group reports that failure
   * once.
   */
  @RepeatedTest(5)
  void aForeignThreadForkingIntoTheGroupGetsTheOutcomeAndTheFailureIsReportedOnce()
      throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      TaskGroup g = TaskGroup.named("from-thread");
      IllegalArgumentException boom = new IllegalArgumentException("value error");
      AtomicReference<Object> value = new AtomicReference<>();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      Throwable thrown =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        Future<?> worker =
                            pool.submit(
                                () -> {
                                  try {
                                    value.set(g.fork(() -> 2).get());
                                    g.fork(
                                            () -> {
                                              throw boom;
                                            })
                                        .get();
                                  } catch (ExecutionException e) {
                                    failure.set(e.getCause());
                                  }
                                  return null;
                                });
                        CancelScope.shielded().run(worker::get);
                      }));
      assertThat(value.get()).isEqualTo(2);
      assertThat(failure.get()).isSameAs(boom);
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    } finally {
      pool.shutdownNow();
    }
  }

  // ================================================================ happy eyeballs:
  // test_highlevel_open_tcp_stream.py over loopback sockets

  private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

  /** What a test server does with each connection it accepts. */
  private enum Behaviour {
    /** Sends the greeting 'Y' after the delay (or once the gate opens): the attempt succeeds. */
    GREET,
    /** Accepts and never sends anything: the attempt blocks in its read until cancelled. */
    STALL,
    /** Hangs up after the delay: the attempt fails with an IOException. */
    HANG_UP,
    /** Sends 'N' after the delay: the attempt fails with a non-I/O error (postconnect_fail). */
    BAD_GREETING
  }

  /** A loopback server whose accepted connections behave as told. */
  private static final class Server implements AutoCloseable {
    final ServerSocket listener;
    final List<Socket> accepted = new CopyOnWriteArrayList<>();
    final List<Thread> handlers = new CopyOnWriteArrayList<>();
    final Thread acceptor;

    Server(Behaviour behaviour, long delayMillis, CountDownLatch gate) throws IOException {
      listener = new ServerSocket(0, 50, LOOPBACK);
      acceptor =
          Thread.ofVirtual()
              .start(
                  () -> {
                    while (true) {
                      Socket s;
                      try {
                        s = listener.accept();
                      } catch (IOException closed) {
                        return;
                      }
                      accepted.add(s);
                      handlers.add(
                          Thread.ofVirtual().start(() -> handle(s, behaviour, delayMillis, gate)));
                    }
                  });
    }

    private static void handle(
        Socket s, Behaviour behaviour, long delayMillis, CountDownLatch gate) {
      try {
        if (gate != null) {
          gate.await();
        } else if (delayMillis > 0) {
          Thread.sleep(delayMillis); // stands for the network's delay
        }
        switch (behaviour) {
          case GREET -> s.getOutputStream().write('Y');
          case BAD_GREETING -> s.getOutputStream().write('N');
          case HANG_UP -> s.close();
          case STALL -> {}
        }
      } catch (InterruptedException | IOException e) {
        // the server is closing, or the client hung up first
      }
    }

    InetSocketAddress address() {
      return new InetSocketAddress(LOOPBACK, listener.getLocalPort());
    }

    @Override
    public void close() throws Exception {
      listener.close();
      acceptor.join();
      for (Thread h : handlers) {
        h.interrupt();
        h.join();
      }
      for (Socket s : accepted) {
        s.close();
      }
    }
  }

  /** A loopback port nobody listens on: a connection is refused at once. */
  private static InetSocketAddress refused() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, LOOPBACK)) {
      return new InetSocketAddress(LOOPBACK, s.getLocalPort());
    }
  }

  /**
   * Trio's open_tcp_stream, from the public API: attempt i is started (its socket made and
   * registered before start returns), then the body waits {@code delay} or until that attempt
   * failed, and goes on to the next. The first attempt that connects and reads the greeting wins
   * and cancels the group; a loser's socket is closed by closeOnCancel (the attempts run on
   * platform threads, where an interrupt does not end a socket read) or by the loser itself.
   */
  private static final class Eyeballs {
    final List<Socket> sockets = new CopyOnWriteArrayList<>();
    final List<Integer> attempted = new CopyOnWriteArrayList<>();
    final List<Long> startedAt = new CopyOnWriteArrayList<>();
    final List<IOException> failures = new CopyOnWriteArrayList<>();
    final AtomicReference<Socket> winner = new AtomicReference<>();
    final AtomicInteger winnerIndex = new AtomicInteger(-1);
    final TaskGroup group;
    final long t0 = System.nanoTime();
    final SocketMaker maker;

    interface SocketMaker {
      Socket make(int index) throws IOException;
    }

    Eyeballs() {
      this(i -> new Socket());
    }

    Eyeballs(SocketMaker maker) {
      this(maker, false);
    }

    /** Attempts on virtual threads, where the interrupt closes a socket too, racing the hook. */
    Eyeballs(boolean virtual) {
      this(i -> new Socket(), virtual);
    }

    Eyeballs(SocketMaker maker, boolean virtual) {
      this.maker = maker;
      this.group =
          TaskGroup.builder()
              .name("happy-eyeballs")
              .threadFactory(virtual ? Thread.ofVirtual().factory() : Thread.ofPlatform().factory())
              .build();
    }

    Socket open(List<InetSocketAddress> targets, Duration delay) throws Exception {
      try {
        group.run(
            () -> {
              for (int i = 0; i < targets.size(); i++) {
                int index = i;
                CountDownLatch failed = new CountDownLatch(1);
                try {
                  group.<Void>start(signal -> attempt(index, targets.get(index), failed, signal));
                } catch (TaskGroupException notStarted) {
                  // The socket could not even be made (Trio: an unsupported family): start throws
                  // that failure, which is not the group's, and the next attempt starts at once.
                  notStarted.failures().forEach(f -> failures.add((IOException) f));
                  failed.countDown();
                }
                CancelScope.moveOnAfter(
                    delay,
                    () -> {
                      failed.await();
                      return null;
                    });
              }
            });
      } catch (Throwable t) {
        Socket w = winner.get();
        if (w != null) {
          w.close();
        }
        throw t;
      }
      Socket w = winner.get();
      if (w == null) {
        IOException all = new IOException("all attempts to connect failed");
        failures.forEach(all::addSuppressed);
        throw all;
      }
      return w;
    }

    private void attempt(
        int index, InetSocketAddress target, CountDownLatch failed, StartSignal<Void> signal)
        throws Exception {
      Socket s = maker.make(index);
      sockets.add(s);
      attempted.add(index);
      startedAt.add(System.nanoTime() - t0);
      signal.started();
      try {
        try (var hook = CancelScope.closeOnCancel(s)) {
          s.connect(target, 10_000);
          int b = s.getInputStream().read();
          if (b == 'N') {
            throw new IllegalStateException("bad greeting from " + target);
          }
          if (b != 'Y') {
            throw new IOException("sorry: " + target + " hung up");
          }
        }
      } catch (IOException e) {
        s.close();
        if (CancelScope.isCancelled()) {
          CancelScope.checkpoint(); // the cancellation's effect (the hook closed it): cancelled
        }
        failures.add(e);
        failed.countDown();
        return;
      } catch (Throwable t) {
        s.close();
        throw t;
      }
      if (winner.compareAndSet(null, s)) {
        winnerIndex.set(index);
        group.cancel("attempt " + index + " connected");
      } else {
        s.close(); // connected too, but lost
      }
    }

    long millisBetween(int i, int j) {
      return TimeUnit.NANOSECONDS.toMillis(startedAt.get(j) - startedAt.get(i));
    }

    void assertEveryLoserClosed() {
      for (Socket s : sockets) {
        if (s != winner.get()) {
          assertThat(s.isClosed()).as("loser socket %s closed", s).isTrue();
        }
      }
    }
  }

  /** Trio test_open_tcp_stream_real_socket_smoketest: one server, one connection, data flows. */
  @Test
  void oneServerConnectsAndTheWinnerIsOpen() throws Exception {
    try (Server server = new Server(Behaviour.GREET, 0, null)) {
      Eyeballs e = new Eyeballs();
      try (Socket s = e.open(List.of(server.address()), Duration.ofMillis(250))) {
        assertThat(s.isConnected()).isTrue();
        assertThat(s.isClosed()).isFalse();
        assertThat(s.getPort()).isEqualTo(server.address().getPort());
        s.getOutputStream().write('x'); // the connection is usable
        awaitTrue("accepted", () -> server.accepted.size() == 1);
        assertThat(server.accepted.get(0).getInputStream().read()).isEqualTo('x');
      }
      assertThat(e.group.cancelCaught()).isTrue();
      assertThat(e.sockets).hasSize(1);
    }
  }

  /** Trio test_one_host_quick_fail, test_one_host_slow_fail: one target that fails is an error. */
  @ParameterizedTest
  @ValueSource(strings = {"refused", "hang up after 200 ms"})
  void oneFailingTargetIsAnErrorWithItsFailure(String how) throws Exception {
    try (Server server = new Server(Behaviour.HANG_UP, 200, null)) {
      InetSocketAddress target = how.equals("refused") ? refused() : server.address();
      Eyeballs e = new Eyeballs();
      long t0 = System.nanoTime();
      Throwable thrown = catchThrowable(() -> e.open(List.of(target), Duration.ofMillis(250)));
      long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertThat(thrown).isInstanceOf(IOException.class).hasMessageContaining("all attempts");
      assertThat(thrown.getSuppressed()).hasSize(1);
      assertThat(thrown.getSuppressed()[0]).isInstanceOf(IOException.class);
      if (!how.equals("refused")) {
        assertThat(took).isGreaterThanOrEqualTo(180);
      }
      e.assertEveryLoserClosed();
      assertThat(e.group.cancelCalled()).isFalse();
    }
  }

  /**
   * Trio test_one_host_failed_after_connect: an attempt that connects and then fails with an error
   * that is not an I/O failure is not caught by the algorithm: it is the group's failure, thrown by
   * run in a TaskGroupException, and the socket is closed.
   */
  @Test
  void aFailureAfterConnectingThatIsNoIoErrorIsTheGroupsFailure() throws Exception {
    try (Server server = new Server(Behaviour.BAD_GREETING, 0, null)) {
      Eyeballs e = new Eyeballs();
      Throwable thrown =
          catchThrowable(() -> e.open(List.of(server.address()), Duration.ofMillis(250)));
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures())
          .singleElement()
          .isInstanceOf(IllegalStateException.class);
      assertThat(e.sockets).singleElement().satisfies(s -> assertThat(s.isClosed()).isTrue());
    }
  }

  /**
   * Trio test_basic_fallthrough (and test_none_default): two slow targets then a quick one,
   * attempts started one delay apart; the third wins, and the two still blocked in their reads are
   * cancelled and their sockets closed.
   */
  @RepeatedTest(2)
  void attemptsStartOneDelayApartAndTheThirdWins() throws Exception {
    try (Server a = new Server(Behaviour.STALL, 0, null);
        Server b = new Server(Behaviour.STALL, 0, null);
        Server c = new Server(Behaviour.GREET, 100, null)) {
      Eyeballs e = new Eyeballs();
      try (Socket s =
          e.open(List.of(a.address(), b.address(), c.address()), Duration.ofMillis(200))) {
        assertThat(e.winnerIndex.get()).isEqualTo(2);
        assertThat(s.getPort()).isEqualTo(c.address().getPort());
        assertThat(e.attempted).containsExactly(0, 1, 2);
        assertThat(e.millisBetween(0, 1)).isGreaterThanOrEqualTo(180);
        assertThat(e.millisBetween(1, 2)).isGreaterThanOrEqualTo(180);
        e.assertEveryLoserClosed();
        assertThat(e.failures).isEmpty();
      }
    }
  }

  /**
   * Trio test_early_success and test_custom_delay: the second attempt wins before the third is due,
   * so the third target is never tried; with a delay longer than the first attempt takes, only the
   * first is tried.
   */
  @ParameterizedTest
  @CsvSource({"500,5000,1", "2000,100,0"})
  void anEarlySuccessLeavesTheLaterTargetsUntried(
      long delayMillis, long firstAnswersAfter, int expectedWinner) throws Exception {
    try (Server a = new Server(Behaviour.GREET, firstAnswersAfter, null);
        Server b = new Server(Behaviour.GREET, 50, null);
        Server c = new Server(Behaviour.GREET, 0, null)) {
      Eyeballs e = new Eyeballs();
      try (Socket s =
          e.open(List.of(a.address(), b.address(), c.address()), Duration.ofMillis(delayMillis))) {
        assertThat(e.winnerIndex.get()).isEqualTo(expectedWinner);
        assertThat(e.attempted).hasSize(expectedWinner + 1);
        assertThat(c.accepted).as("third target never tried").isEmpty();
        e.assertEveryLoserClosed();
      }
    }
  }

  /**
   * Trio test_custom_errors_expedite: a failed attempt starts the next one at once instead of after
   * the delay; the fourth target wins.
   */
  @Test
  void aFailedAttemptStartsTheNextOneAtOnce() throws Exception {
    try (Server b = new Server(Behaviour.HANG_UP, 100, null);
        Server c = new Server(Behaviour.STALL, 0, null);
        Server d = new Server(Behaviour.GREET, 50, null)) {
      Eyeballs e = new Eyeballs();
      List<InetSocketAddress> targets = List.of(refused(), b.address(), c.address(), d.address());
      try (Socket s = e.open(targets, Duration.ofMillis(800))) {
        assertThat(e.winnerIndex.get()).isEqualTo(3);
        assertThat(e.millisBetween(0, 1)).as("after a refusal").isLessThan(700);
        assertThat(e.millisBetween(1, 2)).as("after a hang-up at 100 ms").isBetween(80L, 700L);
        assertThat(e.millisBetween(2, 3)).as("after the full delay").isGreaterThanOrEqualTo(780);
        assertThat(e.failures).hasSize(2);
        e.assertEveryLoserClosed();
      }
    }
  }

  /**
   * Trio test_all_fail: every attempt fails; the error carries all four failures, and every socket
   * is closed.
   */
  @RepeatedTest(2)
  void everyAttemptFailingReportsEveryFailure() throws Exception {
    try (Server b = new Server(Behaviour.HANG_UP, 100, null);
        Server c = new Server(Behaviour.HANG_UP, 300, null)) {
      Eyeballs e = new Eyeballs();
      List<InetSocketAddress> targets = List.of(refused(), b.address(), c.address(), refused());
      Throwable thrown = catchThrowable(() -> e.open(targets, Duration.ofMillis(200)));
      assertThat(thrown).isInstanceOf(IOException.class).hasMessageContaining("all attempts");
      assertThat(thrown.getSuppressed()).hasSize(4);
      assertThat(e.attempted).containsExactly(0, 1, 2, 3);
      assertThat(e.winner.get()).isNull();
      e.assertEveryLoserClosed();
    }
  }

  /**
   * Trio test_multi_success: three attempts connect at the same moment; exactly one wins, the
   * others close their sockets, and no failure is reported for the losers.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void severalConnectingAtOnceGiveExactlyOneWinner(boolean virtual) throws Exception {
    for (int round = 0; round < 4; round++) {
      severalConnectingAtOnce(virtual);
    }
  }

  private static void severalConnectingAtOnce(boolean virtual) throws Exception {
    CountDownLatch gate = new CountDownLatch(1);
    try (Server a = new Server(Behaviour.HANG_UP, 100, null);
        Server b = new Server(Behaviour.GREET, 0, gate);
        Server c = new Server(Behaviour.GREET, 0, gate);
        Server d = new Server(Behaviour.GREET, 0, gate);
        Server f = new Server(Behaviour.HANG_UP, 100, null)) {
      Eyeballs e = new Eyeballs(virtual);
      Thread opener =
          Thread.ofPlatform()
              .start(
                  () -> {
                    awaitTrue("five attempts", () -> e.attempted.size() == 5);
                    awaitTrue("d accepted", () -> d.accepted.size() == 1);
                    gate.countDown();
                  });
      List<InetSocketAddress> targets =
          List.of(a.address(), b.address(), c.address(), d.address(), f.address());
      try (Socket s = e.open(targets, Duration.ofMillis(30))) {
        opener.join();
        assertThat(e.winnerIndex.get()).isIn(1, 2, 3);
        assertThat(s.isClosed()).isFalse();
        e.assertEveryLoserClosed();
        assertThat(e.failures).allSatisfy(x -> assertThat(x).hasMessageContaining("hung up"));
      }
    }
  }

  /**
   * Trio test_cancel: a timeout around the whole thing, with every target stalling, cancels every
   * attempt; the scope catches it, no failure is reported, and every socket is closed.
   */
  @RepeatedTest(3)
  void aTimeoutAroundTheAttemptsClosesEverySocket() throws Exception {
    try (Server a = new Server(Behaviour.STALL, 0, null);
        Server b = new Server(Behaviour.STALL, 0, null);
        Server c = new Server(Behaviour.STALL, 0, null);
        Server d = new Server(Behaviour.STALL, 0, null)) {
      Eyeballs e = new Eyeballs();
      CancelScope timeout = CancelScope.withTimeout(Duration.ofMillis(300));
      AtomicReference<Socket> got = new AtomicReference<>();
      long t0 = System.nanoTime();
      timeout.run(
          () ->
              got.set(
                  e.open(
                      List.of(a.address(), b.address(), c.address(), d.address()),
                      Duration.ofMillis(50))));
      long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertThat(timeout.cancelCaught()).isTrue();
      assertThat(got.get()).isNull();
      assertThat(took).isGreaterThanOrEqualTo(280);
      assertThat(e.attempted).isNotEmpty(); // how many were due by then depends on the load
      assertThat(e.sockets).allSatisfy(s -> assertThat(s.isClosed()).isTrue());
      assertThat(e.failures).isEmpty();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  /**
   * Trio test_cancel, cancelled by another thread while the attempts are at every stage (being
   * started, connecting, reading): whatever the moment, nothing is reported as a failure and every
   * socket is closed.
   */
  @ParameterizedTest
  @CsvSource({"0,false", "1,false", "2,false", "0,true", "1,true", "2,true"})
  void aCancelFromAnotherThreadAtAnyMomentClosesEverySocket(int when, boolean virtual)
      throws Exception {
    for (int round = 0; round < 3; round++) {
      cancelFromAnotherThreadOnce(when, virtual);
    }
  }

  private static void cancelFromAnotherThreadOnce(int when, boolean virtual) throws Exception {
    try (Server a = new Server(Behaviour.STALL, 0, null);
        Server b = new Server(Behaviour.STALL, 0, null);
        Server c = new Server(Behaviour.STALL, 0, null)) {
      Eyeballs e = new Eyeballs(virtual);
      CancelScope scope = CancelScope.create();
      Thread canceller =
          Thread.ofPlatform()
              .start(
                  () -> {
                    awaitTrue("attempt " + when + " started", () -> e.attempted.size() > when);
                    scope.cancel();
                  });
      scope.run(
          () -> e.open(List.of(a.address(), b.address(), c.address()), Duration.ofMillis(20)));
      canceller.join();
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(e.sockets).allSatisfy(s -> assertThat(s.isClosed()).isTrue());
      assertThat(e.failures).isEmpty();
    }
  }

  /**
   * Trio test_close_all (a close that raises): a loser whose socket's close throws; the winner's
   * cancellation closes every other loser all the same, and the failed close is the group's
   * failure, reported as it is; the winner is then closed too.
   */
  @Test
  void aLoserWhoseCloseThrowsIsReportedAndTheOthersAreStillClosed() throws Exception {
    IOException closeFailed = new IOException("os error text");
    AtomicBoolean thrownOnce = new AtomicBoolean();
    try (Server a = new Server(Behaviour.STALL, 0, null);
        Server b = new Server(Behaviour.STALL, 0, null);
        Server c = new Server(Behaviour.GREET, 100, null)) {
      Eyeballs e =
          new Eyeballs(
              i ->
                  i != 0
                      ? new Socket()
                      : new Socket() {
                        @Override
                        public synchronized void close() throws IOException {
                          super.close();
                          if (!thrownOnce.getAndSet(true)) {
                            throw closeFailed;
                          }
                        }
                      });
      Throwable thrown =
          catchThrowable(
              () -> e.open(List.of(a.address(), b.address(), c.address()), Duration.ofMillis(50)));
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
      assertThat(e.winnerIndex.get()).isEqualTo(2);
      assertThat(e.sockets).allSatisfy(s -> assertThat(s.isClosed()).isTrue());
    }
  }

  /**
   * Trio test_nursery_start's cancel-scope move, as open_tcp_stream relies on it (an attempt makes
   * and registers its socket, then signals): a closeOnCancel registered by start work before its
   * signal follows the work into the group. After the signal, cancelling the caller's scope no
   * longer closes the socket; cancelling the group does.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void aHookRegisteredBeforeTheSignalFollowsTheWorkIntoTheGroup(boolean virtual) throws Exception {
    try (Server server = new Server(Behaviour.STALL, 0, null)) {
      TaskGroup g =
          TaskGroup.builder()
              .name("moved")
              .threadFactory(virtual ? Thread.ofVirtual().factory() : Thread.ofPlatform().factory())
              .build();
      AtomicReference<Socket> socket = new AtomicReference<>();
      AtomicReference<Thread> worker = new AtomicReference<>();
      CancelScope caller = CancelScope.create();
      g.run(
          () -> {
            caller.run(
                () ->
                    g.<Void>start(
                        signal -> {
                          Socket s = new Socket();
                          socket.set(s);
                          worker.set(Thread.currentThread());
                          try (var hook = CancelScope.closeOnCancel(s)) {
                            s.connect(server.address());
                            signal.started();
                            s.getInputStream().read();
                          }
                        }));
            awaitTrue("accepted", () -> server.accepted.size() == 1);
            caller.cancel(); // after the signal: not the work's scope any more
            assertThat(caller.cancelCaught()).isFalse();
            assertThat(socket.get().isClosed()).isFalse();
            assertThat(worker.get().isInterrupted()).isFalse();
            g.cancel();
          });
      assertThat(socket.get().isClosed()).isTrue();
      assertThat(g.cancelCaught()).isTrue();
    }
  }

  /**
   * Trio test_handles_no_ipv4 / test_handles_no_ipv6: some sockets cannot even be made (the family
   * is not supported); that attempt fails before its start signal, start throws the failure (not a
   * failure of the group), and the next attempt starts at once; a later target wins.
   */
  @Test
  void anAttemptWhoseSocketCannotBeMadeFailsBeforeItsSignalAndTheNextStartsAtOnce()
      throws Exception {
    try (Server b = new Server(Behaviour.STALL, 0, null);
        Server d = new Server(Behaviour.GREET, 100, null)) {
      Eyeballs e =
          new Eyeballs(
              i -> {
                if (i % 2 == 0) {
                  throw new IOException("pretending not to support this family");
                }
                return new Socket();
              });
      List<InetSocketAddress> targets = List.of(refused(), b.address(), refused(), d.address());
      long t0 = System.nanoTime();
      try (Socket s = e.open(targets, Duration.ofMillis(300))) {
        assertThat(e.winnerIndex.get()).isEqualTo(3);
        assertThat(e.attempted).containsExactly(1, 3);
        assertThat(e.millisBetween(0, 1))
            .as("the stalled attempt's full delay")
            .isGreaterThanOrEqualTo(280);
        assertThat(TimeUnit.NANOSECONDS.toMillis(e.startedAt.get(0) - (t0 - e.t0)))
            .as("after the first socket could not be made")
            .isLessThan(280);
        assertThat(e.failures)
            .hasSize(2)
            .allSatisfy(f -> assertThat(f).hasMessageContaining("pretending"));
        assertThat(e.group.cancelCaught()).isTrue();
        e.assertEveryLoserClosed();
      }
    }
  }
}
