package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.Trail;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** maxConcurrency: at most n children at once, FIFO, and what a cancelled wait does. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MaxConcurrencyTest {

  @ParameterizedTest
  @ValueSource(ints = {1, 3, 8})
  void atMostNChildrenRunAtOnce(int n) throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(n).build();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxSeen = new AtomicInteger();
    int children = Stress.scaled(200, 20_000);
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            group.fork(
                () -> {
                  int now = running.incrementAndGet();
                  maxSeen.accumulateAndGet(now, Math::max);
                  Thread.sleep(1); // the work: holds its place so that others queue
                  running.decrementAndGet();
                });
          }
        });
    System.out.printf("maxConcurrency(%d): at most %d ran at once%n", n, maxSeen.get());
    assertThat(maxSeen.get()).isLessThanOrEqualTo(n).isPositive();
    if (n > 1) {
      assertThat(maxSeen.get()).as("the limit is actually used").isGreaterThan(1);
    }
  }

  @Test
  void waitingForksAreServedInFifoOrder() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    List<Integer> order = java.util.Collections.synchronizedList(new ArrayList<>());
    group.run(
        () -> {
          for (int i = 0; i < 20; i++) {
            int id = i;
            group.fork(() -> order.add(id));
          }
        });
    assertThat(order)
        .containsExactlyElementsOf(java.util.stream.IntStream.range(0, 20).boxed().toList());
  }

  @RepeatedTest(5)
  void forkWaitingWhenTheGroupIsCancelledReturnsACancelledTask() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean secondRan = new AtomicBoolean();
    AtomicReference<Task<?>> second = new AtomicReference<>();
    AtomicBoolean statusSetAfterFork = new AtomicBoolean();
    CountDownLatch firstRunning = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              () -> {
                firstRunning.countDown();
                Fixtures.parkUntilInterrupted();
              });
          firstRunning.await();
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        Thread owner = null;
                        group.cancel();
                      });
          second.set(group.fork(() -> secondRan.set(true))); // waits for the place
          statusSetAfterFork.set(Thread.currentThread().isInterrupted());
          canceller.join();
        });
    assertThat(secondRan).isFalse();
    assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(statusSetAfterFork).isTrue();
  }

  /** How a thread outside the group asks for a place in it. */
  enum OutsiderCall {
    /** {@code fork}, on a plain thread: it returns a task already cancelled. */
    FORK,
    /** {@code fork} inside a cooperative scope (its wait is not interrupted, only woken). */
    FORK_COOPERATIVE,
    /** {@code start}: it throws the cancellation ({@link CancelledException}). */
    START
  }

  /**
   * A thread outside the group, waiting for a place, is not interrupted by the group's
   * cancellation, and a fork into a cancelled group starts nothing: the wait ends with the
   * cancellation, before the holder (which keeps its place through the cancellation, in a shield)
   * gives its place back. Without the group's walk waking it, the outsider waited for the holder.
   */
  @ParameterizedTest
  @org.junit.jupiter.params.provider.EnumSource(OutsiderCall.class)
  void aWaitForAPlaceFromOutsideEndsWhenTheGroupIsCancelled(OutsiderCall call) throws Exception {
    for (int round = 0; round < 5; round++) {
      TaskGroup group = TaskGroup.builder().name("bounded").maxConcurrency(1).build();
      CountDownLatch holding = new CountDownLatch(1);
      CountDownLatch letGo = new CountDownLatch(1);
      AtomicBoolean waitingWorkRan = new AtomicBoolean();
      AtomicReference<Object> outsiderGot = new AtomicReference<>();
      AtomicBoolean endedBeforeTheHolder = new AtomicBoolean();
      AtomicBoolean outsiderInterrupted = new AtomicBoolean();
      Thread outsider =
          Thread.ofPlatform()
              .unstarted(
                  () -> {
                    try {
                      outsiderGot.set(ask(group, call, waitingWorkRan));
                    } catch (Throwable t) {
                      outsiderGot.set(t);
                    }
                    outsiderInterrupted.set(Thread.currentThread().isInterrupted());
                  });
      group.run(
          () -> {
            group.fork(
                () -> {
                  holding.countDown();
                  // Keeps its place through the group's cancellation, until let go.
                  CancelScope.shielded().run(letGo::await);
                });
            holding.await();
            outsider.start();
            Probes.awaitWaiting(outsider, java.time.Duration.ofSeconds(10));
            group.cancel();
            CancelScope.shielded()
                .run(
                    () ->
                        endedBeforeTheHolder.set(outsider.join(java.time.Duration.ofSeconds(20))));
            letGo.countDown();
          });
      outsider.join();
      assertThat(endedBeforeTheHolder)
          .as("round %d: the wait ended with the cancellation", round)
          .isTrue();
      assertThat(waitingWorkRan).isFalse();
      assertThat(outsiderInterrupted).as("the outsider's interrupt status").isFalse();
      Object got = outsiderGot.get();
      if (call == OutsiderCall.START) {
        assertThat(got).isInstanceOf(CancelledException.class);
      } else {
        assertThat(got).isInstanceOf(Task.class);
        assertThat(((Task<?>) got).state()).isEqualTo(Future.State.CANCELLED);
      }
    }
  }

  private static Object ask(TaskGroup group, OutsiderCall call, AtomicBoolean ran)
      throws Exception {
    return switch (call) {
      case FORK -> group.fork(() -> ran.set(true));
      case FORK_COOPERATIVE ->
          CancelScope.cooperative().call(() -> group.fork(() -> ran.set(true)));
      case START ->
          group.start(
              signal -> {
                ran.set(true);
                signal.started(null);
              });
    };
  }

  @Test
  void childForkingIntoItsOwnGroupWithOnePlaceDoesNotDeadlock() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    Trail trail = new Trail();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxSeen = new AtomicInteger();
    group.run(
        () ->
            group.fork(
                () -> {
                  maxSeen.accumulateAndGet(running.incrementAndGet(), Math::max);
                  group.fork(
                      () -> {
                        maxSeen.accumulateAndGet(running.incrementAndGet(), Math::max);
                        trail.add("grandchild ran");
                        running.decrementAndGet();
                      });
                  trail.add("child forked and goes on");
                  running.decrementAndGet();
                }));
    assertThat(trail.events()).containsExactly("child forked and goes on", "grandchild ran");
    assertThat(maxSeen.get()).isEqualTo(1);
  }

  @Test
  void forkFromAnUnrelatedThreadAlsoWaitsForAPlace() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    Trail trail = new Trail();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          group.fork(
              () -> {
                release.await();
                trail.add("first done");
              });
          Thread outsider =
              Thread.ofPlatform().start(() -> group.fork(() -> trail.add("outsider's child ran")));
          while (outsider.getState() != Thread.State.WAITING) {
            Thread.onSpinWait(); // the outsider's fork is waiting for the place
          }
          trail.add("outsider waiting");
          release.countDown();
          outsider.join();
        });
    assertThat(trail.events())
        .containsExactly("outsider waiting", "first done", "outsider's child ran");
  }

  @RepeatedTest(3)
  void aForkRefusedWithAnErrorAfterTakingThePlaceGivesItBack() throws Exception {
    AtomicInteger made = new AtomicInteger();
    AssertionError refusal = new AssertionError("the thread refuses its handler (an Error)");
    ThreadFactory factory =
        r ->
            made.incrementAndGet() > 1
                ? new Thread(r)
                : new Thread(r) {
                  @Override
                  public void setUncaughtExceptionHandler(UncaughtExceptionHandler h) {
                    throw refusal;
                  }
                };
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).threadFactory(factory).build();
    AtomicReference<Throwable> first = new AtomicReference<>();
    AtomicReference<String> second = new AtomicReference<>();
    group.run(
        () -> {
          first.set(catchThrowable(() -> group.fork(() -> {})));
          // With the place leaked, this fork would wait for it for ever.
          second.set(group.fork(() -> "second").get());
        });
    assertThat(first.get()).isSameAs(refusal); // an Error is not wrapped
    assertThat(second.get()).isEqualTo("second");
  }

  @RepeatedTest(5)
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void aForkFromTheHandlerOfTheBodysFailureDoesNotWaitForThePlaceAChildHolds() throws Exception {
    AtomicReference<TaskGroup> self = new AtomicReference<>();
    AtomicReference<Task<String>> retry = new AtomicReference<>();
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> retry.set(self.get().fork(() -> "retry of " + f.getMessage())))
            .build();
    self.set(group);
    CountDownLatch holding = new CountDownLatch(1);
    AtomicReference<Task<Object>> holder = new AtomicReference<>();
    group.run(
        () -> {
          holder.set(
              group.fork(
                  () -> {
                    holding.countDown();
                    new CountDownLatch(1).await(); // holds the only place until cancelled
                    return null;
                  }));
          holding.await();
          // The handler runs on this thread before the body's failure cancels the holder: a fork
          // from it that waited for the place would wait for ever.
          throw new IllegalStateException("body");
        });
    assertThat(retry.get()).as("the handler's fork returned").isNotNull();
    assertThat(holder.get().state()).isEqualTo(Future.State.CANCELLED);
    // Forked before the body's failure cancelled the group: cancelled with the others, never run.
    assertThat(retry.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  @RepeatedTest(5)
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void aForkFromTheHandlerOfAFailedCancelHookDoesNotWaitForThePlaceAChildHolds() throws Exception {
    AtomicReference<TaskGroup> self = new AtomicReference<>();
    CountDownLatch forkReturned = new CountDownLatch(1);
    List<String> handled = java.util.Collections.synchronizedList(new ArrayList<>());
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f.getMessage());
                  self.get().fork(() -> "retry");
                  forkReturned.countDown();
                })
            .build();
    self.set(group);
    AtomicBoolean returnedWhileHeld = new AtomicBoolean();
    group.run(
        () ->
            group.fork(
                () -> {
                  CancelScope inner = CancelScope.create();
                  inner.run(
                      () -> {
                        CancelScope.onCancel(
                            () -> {
                              throw new IllegalStateException("hook failed");
                            });
                        inner.cancel(); // fires the action, on its own thread
                      });
                  // Still holding the only place: the handler's fork must return meanwhile.
                  returnedWhileHeld.set(forkReturned.await(10, TimeUnit.SECONDS));
                  return null;
                }));
    assertThat(handled).containsExactly("hook failed");
    assertThat(returnedWhileHeld)
        .as("the handler's fork returned while the place was held")
        .isTrue();
  }

  /**
   * Hedging on a timeout: the only child (maxConcurrency 1) registers, in try-with-resources, an
   * onCancel action that forks a fallback into the group. The action, on its own thread, waited for
   * the place the child held, while the child, leaving the try, waited in close() for the action:
   * run never returned (3 of 3). The action's fork returns at once; the fallback runs once the
   * child has freed its place.
   */
  @RepeatedTest(5)
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void aForkFromACancelHookActionDoesNotWaitForThePlaceItsRegistrantHolds() throws Exception {
    TaskGroup g = TaskGroup.builder().name("hedge").maxConcurrency(1).build();
    AtomicReference<Task<String>> fallback = new AtomicReference<>();
    g.run(
        () ->
            g.fork(
                "primary",
                () -> {
                  CancelScope.withTimeout(java.time.Duration.ofMillis(50))
                      .run(
                          () -> {
                            try (var hedge =
                                CancelScope.onCancel(
                                    () -> fallback.set(g.fork(() -> "fallback")))) {
                              Thread.sleep(60_000);
                            }
                          });
                  return null;
                }));
    assertThat(fallback.get()).as("the action's fork returned").isNotNull();
    assertThat(fallback.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(fallback.get().resultNow()).isEqualTo("fallback");
  }

  /**
   * A start() from a child of a full bounded group: its new child waits for a place on its own
   * thread, and until its work signals it is cancelled with the caller's scope, not with the group.
   * With the caller in a shield, the group's cancellation reaches neither; the wait must still end
   * with it and start nothing (start throws CancelledException). The work ran, in the cancelled
   * group, and start returned its value.
   */
  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void aStartWaitingForAPlaceStartsNothingOnceTheGroupIsCancelled(boolean shielded)
      throws Exception {
    for (int round = 0; round < 10; round++) {
      TaskGroup g = TaskGroup.builder().maxConcurrency(2).build();
      CountDownLatch bothRunning = new CountDownLatch(2);
      CountDownLatch fail = new CountDownLatch(1);
      AtomicReference<Thread> starter = new AtomicReference<>();
      AtomicReference<Throwable> startThrew = new AtomicReference<>();
      AtomicBoolean workRan = new AtomicBoolean();
      RuntimeException boom = new RuntimeException("boom");
      CancelScope.Block<Exception> startOne =
          () -> startThrew.set(catchThrowable(() -> g.start(signal -> workRan.set(true))));
      Throwable thrown =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        g.fork(
                            () -> {
                              bothRunning.countDown();
                              bothRunning.await();
                              starter.set(Thread.currentThread());
                              if (shielded) {
                                CancelScope.shielded().run(startOne);
                              } else {
                                startOne.run();
                              }
                            });
                        g.fork(
                            () -> {
                              bothRunning.countDown();
                              fail.await(); // holds the second place until the start waits
                              throw boom;
                            });
                        Probes.awaitTrue(
                            "the start waiting for its child's place",
                            java.time.Duration.ofSeconds(20),
                            () ->
                                starter.get() != null
                                    && starter.get().getState() == Thread.State.WAITING);
                        fail.countDown();
                      }));
      assertThat(workRan).as("round %d: the work ran in a cancelled group", round).isFalse();
      assertThat(startThrew.get()).isInstanceOf(CancelledException.class);
      assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    }
  }
}
