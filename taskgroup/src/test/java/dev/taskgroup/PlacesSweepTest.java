package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.taskgroup.ChurnRetentionTest.Internals;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * maxConcurrency (places) under failures, cancellation and misbehaving code: never more than n
 * children run at once (a high-water mark over the work, and over the context propagators' code
 * around it), a place is never leaked or given twice (the group's FIFO of places, read through
 * reflection, has all n permits back and nobody queued once the group ends), waiting forks are
 * served FIFO, and every failure surfaces exactly once without a hang: children whose work, context
 * propagator or thread factory fails, forks whose group or caller is cancelled while they wait (own
 * scope, deadline, outside interrupt, cooperative scope), Task.cancel() of a child waiting for its
 * place on its own thread or holding it, start() children, 10 000 forks through one place, and
 * random mixes.
 *
 * <p>The model is asyncio's {@code Semaphore}-bounded gather and Trio's {@code CapacityLimiter}
 * (closest: trio/_tests/test_sync.py {@code test_CapacityLimiter}, {@code
 * test_CapacityLimiter_change_total_tokens}'s FIFO wake-up order; and CPython
 * Lib/test/test_asyncio/test_locks.py {@code SemaphoreTests.test_acquire_cancel}, {@code
 * test_acquire_fifo_order}: a cancelled waiter leaves the queue and does not consume a permit).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PlacesSweepTest {

  private static final Duration MAX = Duration.ofSeconds(10);

  /** Counts work running at once and keeps the high-water mark. */
  static final class Gauge {
    final AtomicInteger now = new AtomicInteger();
    final AtomicInteger max = new AtomicInteger();

    void enter() {
      max.accumulateAndGet(now.incrementAndGet(), Math::max);
    }

    void exit() {
      now.decrementAndGet();
    }
  }

  /** After the group ended: all n places free, nobody queued. */
  private static void assertAllPlacesBack(TaskGroup g, int n) {
    assertThat(Internals.availablePlaces(g)).as("free places after the group ended").isEqualTo(n);
    assertThat(Internals.placesQueueLength(g)).as("forks still queued").isZero();
  }

  private static void awaitQueued(TaskGroup g, int waiting) {
    Probes.awaitTrue(
        waiting + " waiting for a place", MAX, () -> Internals.placesQueueLength(g) == waiting);
  }

  private static List<String> messages(TaskGroupException e) {
    return e.failures().stream().map(Throwable::getMessage).sorted().toList();
  }

  // ---- failures of the work ---------------------------------------------------------------------

  /**
   * COLLECT: children whose work throws give their place back; at most n run at once; each failure
   * is reported once. Closest: Trio test_CapacityLimiter (borrowers released on error).
   */
  @RepeatedTest(5)
  void failingChildrenGiveTheirPlaceBackAndEachFailureSurfacesOnce() throws Exception {
    int n = 3;
    TaskGroup group =
        TaskGroup.builder().maxConcurrency(n).failurePolicy(FailurePolicy.COLLECT).build();
    Gauge gauge = new Gauge();
    List<String> thrown = new CopyOnWriteArrayList<>();
    TaskGroupException e =
        (TaskGroupException)
            catchThrowable(
                () ->
                    group.run(
                        () -> {
                          for (int i = 0; i < 300; i++) {
                            int id = i;
                            group.fork(
                                () -> {
                                  gauge.enter();
                                  try {
                                    Thread.yield();
                                    if (id % 3 == 0) {
                                      String m = "boom " + id;
                                      thrown.add(m);
                                      throw new IllegalStateException(m);
                                    }
                                  } finally {
                                    gauge.exit();
                                  }
                                });
                          }
                        }));
    assertThat(gauge.max.get()).isBetween(1, n);
    assertThat(messages(e)).containsExactlyElementsOf(thrown.stream().sorted().toList());
    assertThat(thrown).hasSize(100);
    assertAllPlacesBack(group, n);
  }

  /**
   * CANCEL_ALL: a failing child cancels the forks waiting for a place (they return CANCELLED tasks
   * and never run), the holders are cancelled, and the one failure is reported once. Closest:
   * asyncio TaskGroup test_children_cancel_on_error with a Semaphore around each child.
   */
  @RepeatedTest(10)
  void aFailureUnderCancelAllCancelsTheWaitingForks() throws Exception {
    int n = 2;
    TaskGroup group = TaskGroup.builder().maxConcurrency(n).build();
    AtomicInteger laterRan = new AtomicInteger();
    List<Task<?>> later = new CopyOnWriteArrayList<>();
    CountDownLatch holding = new CountDownLatch(1);
    CountDownLatch fail = new CountDownLatch(1);
    TaskGroupException e =
        (TaskGroupException)
            catchThrowable(
                () ->
                    group.run(
                        () -> {
                          group.fork(
                              () -> {
                                holding.countDown();
                                Fixtures.parkUntilInterrupted();
                              });
                          group.fork(
                              () -> {
                                fail.await();
                                throw new IllegalStateException("the one failure");
                              });
                          holding.await();
                          Thread failer =
                              Thread.ofVirtual()
                                  .start(
                                      () -> {
                                        awaitQueued(group, 1); // the body waits in fork
                                        fail.countDown();
                                      });
                          for (int i = 0; i < 5; i++) {
                            later.add(group.fork(laterRan::incrementAndGet));
                          }
                          failer.join();
                        }));
    assertThat(messages(e)).containsExactly("the one failure");
    assertThat(laterRan).hasValue(0);
    assertThat(later).allSatisfy(t -> assertThat(t.state()).isEqualTo(Future.State.CANCELLED));
    assertAllPlacesBack(group, n);
  }

  // ---- context propagators
  // ------------------------------------------------------------------------

  /** A propagator that throws in wrap() on every other call. */
  static final class FlakyWrap implements ContextPropagator {
    final AtomicInteger calls = new AtomicInteger();

    @Override
    public Runnable wrap(Runnable work) {
      if (calls.getAndIncrement() % 2 == 1) {
        throw new IllegalStateException("wrap refused");
      }
      return work;
    }
  }

  /**
   * A propagator that throws in wrap(): fork throws RejectedExecutionException and the place the
   * fork waited for goes back (the group "is as it was"); from the body and from a child.
   */
  @RepeatedTest(5)
  void aPropagatorThrowingInWrapGivesThePlaceBack() throws Exception {
    TaskGroup group =
        TaskGroup.builder().maxConcurrency(1).contextPropagator(new FlakyWrap()).build();
    Gauge gauge = new Gauge();
    AtomicInteger ran = new AtomicInteger();
    AtomicInteger rejected = new AtomicInteger();
    Body work =
        () -> {
          gauge.enter();
          Thread.yield();
          ran.incrementAndGet();
          gauge.exit();
        };
    group.run(
        () -> {
          for (int i = 0; i < 20; i++) {
            try {
              group.fork(work);
            } catch (RejectedExecutionException expected) {
              rejected.incrementAndGet();
            }
          }
          group
              .fork(
                  () -> {
                    for (int i = 0; i < 20; i++) {
                      try {
                        group.fork(work);
                      } catch (RejectedExecutionException expected) {
                        rejected.incrementAndGet();
                      }
                    }
                  })
              .get();
        });
    assertThat(rejected.get()).isEqualTo(20);
    assertThat(ran.get()).isEqualTo(20);
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  enum Misbehaviour {
    THROWS_BEFORE_WORK,
    THROWS_AFTER_WORK,
    SKIPS_WORK
  }

  /**
   * The Runnable a propagator returns throws before the work, after it, or never runs it: each such
   * child is a failure reported exactly once (ContextPropagator's rules), its place goes back, and
   * the forks behind it (waiting on the body or on their own thread) all run.
   */
  @ParameterizedTest
  @EnumSource(Misbehaviour.class)
  void aPropagatorFailingAroundTheWorkGivesThePlaceBackAndFailsOnce(Misbehaviour how)
      throws Exception {
    AtomicInteger seq = new AtomicInteger();
    ContextPropagator p =
        work ->
            () -> {
              String m = how + " " + seq.getAndIncrement();
              switch (how) {
                case THROWS_BEFORE_WORK -> throw new IllegalStateException(m);
                case THROWS_AFTER_WORK -> {
                  work.run();
                  throw new IllegalStateException(m);
                }
                case SKIPS_WORK -> {}
              }
            };
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .contextPropagator(p)
            .build();
    AtomicInteger ran = new AtomicInteger();
    TaskGroupException e =
        (TaskGroupException)
            catchThrowable(
                () ->
                    group.run(
                        () -> {
                          for (int i = 0; i < 10; i++) {
                            group.fork(ran::incrementAndGet);
                          }
                        }));
    assertThat(e.failures()).hasSize(10);
    Set<Throwable> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
    distinct.addAll(e.failures());
    assertThat(distinct).as("ten distinct failures, none twice").hasSize(10);
    assertThat(ran.get()).isEqualTo(how == Misbehaviour.THROWS_AFTER_WORK ? 10 : 0);
    assertAllPlacesBack(group, 1);
  }

  /**
   * The propagators' code is part of the child's run (report() gives the place back only once it
   * has ended): with one place, a child forked from a sibling must not run its propagator's code
   * beside the sibling that holds the place, as a child forked from the body does not.
   */
  @RepeatedTest(5)
  void aPropagatorOfAChildForkedFromASiblingRunsOnlyOnceItHasItsPlace() throws Exception {
    Gauge gauge = new Gauge();
    ContextPropagator p =
        work ->
            () -> {
              gauge.enter();
              try {
                work.run();
              } finally {
                gauge.exit();
              }
            };
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).contextPropagator(p).build();
    group.run(
        () ->
            group.fork(
                () -> {
                  group.fork(() -> {});
                  awaitQueued(group, 1); // the sibling waits for the place
                  assertThat(gauge.now.get())
                      .as("propagator code running while one child holds the only place")
                      .isEqualTo(1);
                }));
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  // ---- thread factories -------------------------------------------------------------------------

  enum BadFactory {
    THROWS,
    RETURNS_NULL,
    RETURNS_STARTED,
    START_THROWS
  }

  /** A factory that misbehaves on every other call, the other calls making virtual threads. */
  static ThreadFactory everyOther(BadFactory how, List<Thread> started) {
    AtomicInteger calls = new AtomicInteger();
    ThreadFactory good = Thread.ofVirtual().factory();
    return r -> {
      if (calls.getAndIncrement() % 2 == 0) {
        return good.newThread(r);
      }
      return switch (how) {
        case THROWS -> throw new IllegalStateException("factory refused");
        case RETURNS_NULL -> null;
        case RETURNS_STARTED -> {
          Thread t = Thread.ofVirtual().start(() -> {});
          started.add(t);
          yield t;
        }
        case START_THROWS ->
            new Thread(r) {
              @Override
              public void start() {
                throw new IllegalStateException("start refused");
              }
            };
      };
    };
  }

  /**
   * A thread factory that throws, returns null, returns a started thread, or whose thread fails to
   * start: fork throws RejectedExecutionException (TaskGroup.Builder#threadFactory), the place goes
   * back, and no later fork is kept waiting; from the body and from a child.
   */
  @ParameterizedTest
  @EnumSource(BadFactory.class)
  void aMisbehavingThreadFactoryGivesThePlaceBack(BadFactory how) throws Exception {
    List<Thread> started = new CopyOnWriteArrayList<>();
    TaskGroup group =
        TaskGroup.builder().maxConcurrency(1).threadFactory(everyOther(how, started)).build();
    Gauge gauge = new Gauge();
    AtomicInteger ran = new AtomicInteger();
    AtomicInteger rejected = new AtomicInteger();
    Body work =
        () -> {
          gauge.enter();
          Thread.yield();
          ran.incrementAndGet();
          gauge.exit();
        };
    group.run(
        () -> {
          Body forks =
              () -> {
                for (int i = 0; i < 20; i++) {
                  try {
                    group.fork(work);
                  } catch (RejectedExecutionException expected) {
                    rejected.incrementAndGet();
                  }
                }
              };
          forks.run(); // call 0 good ... call 19 bad
          group.fork(forks).get(); // call 20 good: this child; then 21 bad, 22 good ...
        });
    assertThat(rejected.get()).isEqualTo(20);
    assertThat(ran.get()).isEqualTo(20);
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  /**
   * A thread whose start() starts it and then throws (a Thread subclass doing more after {@code
   * super.start()}): the child runs, once, in its place; it must not also be abandoned (it would
   * leave the group twice, and give its place back while running: seen as an AssertionError "a
   * child is unlinked once" and a run() that never returned). What start() threw is a failure.
   */
  @RepeatedTest(10)
  void aThreadWhoseStartThrowsAfterStartingRunsItsChildOnceInItsPlace() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    ThreadFactory factory =
        r ->
            new Thread(r) {
              @Override
              public void start() {
                super.start();
                if (calls.getAndIncrement() == 0) {
                  throw new IllegalStateException("started, then threw");
                }
              }
            };
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .threadFactory(factory)
            .build();
    Gauge gauge = new Gauge();
    AtomicInteger ran = new AtomicInteger();
    TaskGroupException e =
        (TaskGroupException)
            catchThrowable(
                () ->
                    group.run(
                        () -> {
                          for (int i = 0; i < 5; i++) {
                            group.fork(
                                () -> {
                                  gauge.enter();
                                  Thread.yield();
                                  ran.incrementAndGet();
                                  gauge.exit();
                                });
                          }
                        }));
    assertThat(e.failures())
        .singleElement()
        .satisfies(f -> assertThat(f).hasMessage("started, then threw"));
    assertThat(ran).hasValue(5);
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  /**
   * The other side of the same misuse: a thread whose start() throws after its run() ended without
   * running the child (as a virtual thread that its scheduler refused ends at once): fork throws
   * RejectedExecutionException and the child leaves the group, as when start() throws before the
   * thread started, instead of the group waiting for a child that will never run.
   */
  @RepeatedTest(5)
  void aThreadThatEndedWithoutRunningItsChildBeforeStartThrewIsAbandoned() throws Exception {
    ThreadFactory factory =
        r ->
            new Thread() { // run() does not run r
              @Override
              public void start() {
                super.start();
                try {
                  join();
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
                throw new IllegalStateException("ended without running its task, then threw");
              }
            };
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).threadFactory(factory).build();
    AtomicReference<Throwable> forkThrew = new AtomicReference<>();
    assertTimeoutPreemptively(
        Duration.ofSeconds(10),
        () -> group.run(() -> forkThrew.set(catchThrowable(() -> group.fork(() -> {})))));
    assertThat(forkThrew.get())
        .isInstanceOf(RejectedExecutionException.class)
        .hasCauseInstanceOf(IllegalStateException.class);
    assertAllPlacesBack(group, 1);
  }

  /**
   * A factory's Thread subclass whose setUncaughtExceptionHandler throws (the library sets the
   * child's task there): fork throws RejectedExecutionException naming it, the place comes back,
   * and the group goes on.
   */
  @RepeatedTest(3)
  void aThreadWhoseHandlerCannotBeSetIsRefusedAndItsPlaceComesBack() throws Exception {
    ThreadFactory factory =
        r ->
            new Thread(r) {
              @Override
              public void setUncaughtExceptionHandler(UncaughtExceptionHandler h) {
                throw new UnsupportedOperationException("this thread keeps its own handler");
              }
            };
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).threadFactory(factory).build();
    AtomicReference<Throwable> forkThrew = new AtomicReference<>();
    group.run(() -> forkThrew.set(catchThrowable(() -> group.fork(() -> {}))));
    assertThat(forkThrew.get())
        .isInstanceOf(RejectedExecutionException.class)
        .hasMessageContaining("uncaught-exception handler")
        .hasCauseInstanceOf(UnsupportedOperationException.class);
    assertAllPlacesBack(group, 1);
  }

  /**
   * A factory's Thread subclass whose setUncaughtExceptionHandler silently keeps its own handler,
   * or whose getUncaughtExceptionHandler answers another one: the child could not find its task,
   * and would run detached from the group's cancellation (and, in a bounded group, a fork from it
   * would wait for the place it holds itself). Refused as a handler that cannot be set is.
   */
  @RepeatedTest(3)
  void aThreadThatIgnoresOrHidesTheHandlerSetIsRefusedAndItsPlaceComesBack() throws Exception {
    List<ThreadFactory> factories =
        List.of(
            r ->
                new Thread(r) {
                  @Override
                  public void setUncaughtExceptionHandler(UncaughtExceptionHandler h) {
                    // ignored: this thread keeps its own handler
                  }
                },
            r ->
                new Thread(r) {
                  @Override
                  public UncaughtExceptionHandler getUncaughtExceptionHandler() {
                    return (t, e) -> {};
                  }
                });
    for (ThreadFactory factory : factories) {
      TaskGroup group = TaskGroup.builder().maxConcurrency(1).threadFactory(factory).build();
      AtomicReference<Throwable> forkThrew = new AtomicReference<>();
      group.run(() -> forkThrew.set(catchThrowable(() -> group.fork(() -> {}))));
      assertThat(forkThrew.get())
          .isInstanceOf(RejectedExecutionException.class)
          .hasMessageContaining("uncaught-exception handler");
      assertAllPlacesBack(group, 1);
    }
  }

  // ---- the waiting fork's caller is cancelled
  // ----------------------------------------------------

  enum CallerStop {
    OWN_SCOPE_CANCELLED,
    DEADLINE,
    OUTSIDE_INTERRUPT
  }

  /**
   * The body waits in fork for a place and its own scope is cancelled, its deadline passes, or it
   * is interrupted from outside: fork returns (no hang), the work never runs, the interrupt status
   * is left set, nothing stays queued, and the group goes on (the holder finishes, a later fork
   * runs). Closest: CPython test_locks.py SemaphoreTests.test_acquire_cancel.
   */
  @ParameterizedTest
  @EnumSource(CallerStop.class)
  void aForkWhoseCallerStopsWaitingLeavesTheQueueAndTakesNoPlace(CallerStop how) throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean waiterRan = new AtomicBoolean();
    AtomicBoolean laterRan = new AtomicBoolean();
    AtomicReference<Task<Boolean>> waiter = new AtomicReference<>();
    AtomicBoolean statusSet = new AtomicBoolean();
    CountDownLatch release = new CountDownLatch(1);
    Thread owner = Thread.currentThread();
    Body run =
        () -> {
          group.fork((Body) release::await);
          CancelScope scope =
              how == CallerStop.DEADLINE
                  ? CancelScope.withTimeout(Duration.ofMillis(20))
                  : CancelScope.create();
          Thread stopper =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        if (how != CallerStop.DEADLINE) { // the deadline needs no one
                          awaitQueued(group, 1);
                        }
                        switch (how) {
                          case OWN_SCOPE_CANCELLED -> scope.cancel();
                          case OUTSIDE_INTERRUPT -> owner.interrupt();
                          case DEADLINE -> {}
                        }
                      });
          try {
            scope.run(
                () -> {
                  waiter.set(group.fork(() -> waiterRan.getAndSet(true)));
                  statusSet.set(Thread.currentThread().isInterrupted());
                });
          } catch (InterruptedException e) {
            assertThat(how).isEqualTo(CallerStop.OUTSIDE_INTERRUPT); // the scope saw it too
          } finally {
            Thread.interrupted(); // an outside interrupt is the test's, not the group's
            stopper.join();
          }
          awaitQueued(group, 0);
          release.countDown();
          group.fork(() -> laterRan.getAndSet(true)).get();
        };
    try {
      group.run(run);
    } catch (InterruptedException e) {
      // run's javadoc: "if the calling thread was interrupted by someone else"; whether it noticed
      // the interrupt the body consumed varies (see the report), the places must not.
      assertThat(how).isEqualTo(CallerStop.OUTSIDE_INTERRUPT);
      Thread.interrupted();
    }
    assertThat(statusSet).as("interrupt status after the fork gave up").isTrue();
    assertThat(waiter.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(waiterRan).isFalse();
    assertThat(laterRan).isTrue();
    assertAllPlacesBack(group, 1);
  }

  /**
   * An outsider thread waits in fork for a place and is interrupted: fork returns a CANCELLED task
   * with the interrupt status set, and the place is neither taken nor lost.
   */
  @RepeatedTest(10)
  void anOutsiderInterruptedWhileWaitingForAPlaceLeavesNothingBehind() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<?>> got = new AtomicReference<>();
    AtomicBoolean statusSet = new AtomicBoolean();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          group.fork((Body) release::await);
          Thread outsider = forkFromOutside(group, ran, got, statusSet);
          awaitQueued(group, 1);
          outsider.interrupt();
          outsider.join();
          assertThat(Internals.placesQueueLength(group)).isZero();
          release.countDown();
        });
    assertThat(got.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(ran).isFalse();
    assertThat(statusSet).isTrue();
    assertAllPlacesBack(group, 1);
  }

  /**
   * Starts a platform thread outside {@code group} that forks work setting {@code ran} into it, and
   * then keeps the task it got and whether its interrupt status was set.
   */
  private static Thread forkFromOutside(
      TaskGroup group, AtomicBoolean ran, AtomicReference<Task<?>> got, AtomicBoolean statusSet) {
    return Thread.ofPlatform()
        .start(
            () -> {
              got.set(group.fork(() -> ran.set(true)));
              statusSet.set(Thread.currentThread().isInterrupted());
            });
  }

  /** How the group comes to be cancelled while a fork from outside waits for a place. */
  enum GroupCancelledBy {
    /** {@code cancel()} of the group, from its body. */
    CANCEL,
    /** The group's own timeout ({@code Builder.timeout}), fired by the library's timer. */
    TIMEOUT,
    /** {@code cancel()} of a cancel scope around the group's run. */
    ENCLOSING_SCOPE
  }

  /**
   * An outsider waiting in fork for a place, while the holder keeps its place through the
   * cancellation (in a shield): however the group comes to be cancelled, the wait ends at once with
   * a CANCELLED task, the outsider's interrupt status untouched, and the place neither taken nor
   * lost.
   */
  @ParameterizedTest
  @EnumSource(GroupCancelledBy.class)
  void anOutsiderWaitingForAPlaceStopsWhenTheGroupIsCancelledHoweverItComes(GroupCancelledBy how)
      throws Exception {
    for (int round = 0; round < 5; round++) {
      TaskGroup.Builder b = TaskGroup.builder().maxConcurrency(1);
      if (how == GroupCancelledBy.TIMEOUT) {
        b.timeout(Duration.ofMillis(300));
      }
      TaskGroup group = b.build();
      CancelScope around = CancelScope.create();
      AtomicBoolean ran = new AtomicBoolean();
      AtomicReference<Task<?>> got = new AtomicReference<>();
      AtomicBoolean statusSet = new AtomicBoolean();
      AtomicBoolean queuedBeforeTheCancel = new AtomicBoolean();
      AtomicBoolean endedWhileHeld = new AtomicBoolean();
      around.run(
          () ->
              group.run(
                  () -> {
                    CountDownLatch release = new CountDownLatch(1);
                    group.fork(() -> CancelScope.shielded().run(release::await));
                    Thread outsider = forkFromOutside(group, ran, got, statusSet);
                    awaitQueued(group, 1);
                    queuedBeforeTheCancel.set(!group.cancelScope().cancelCalled());
                    switch (how) {
                      case CANCEL -> group.cancel();
                      case ENCLOSING_SCOPE -> around.cancel();
                      case TIMEOUT -> {} // fires by itself
                    }
                    CancelScope.shielded()
                        .run(
                            () -> {
                              endedWhileHeld.set(outsider.join(MAX));
                              release.countDown();
                              outsider.join();
                            });
                  }));
      assertThat(queuedBeforeTheCancel)
          .as("round %d: queued before the cancellation", round)
          .isTrue();
      assertThat(endedWhileHeld)
          .as("round %d: the wait ended while the place was held", round)
          .isTrue();
      assertThat(got.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(ran).isFalse();
      assertThat(statusSet).as("the outsider's interrupt status").isFalse();
      assertAllPlacesBack(group, 1);
    }
  }

  /**
   * The same wait, for a group whose scope is shielded and a cancellation that comes from around
   * it: the group is not cancelled, so the outsider keeps waiting, and its child runs once the
   * holder gives the place back.
   */
  @RepeatedTest(5)
  void anOutsiderWaitingForAPlaceInAShieldedGroupKeepsWaitingThroughACancelAroundIt()
      throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    CancelScope around = CancelScope.create();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<?>> got = new AtomicReference<>();
    AtomicBoolean stillWaitingAfterTheCancel = new AtomicBoolean();
    around.run(
        () ->
            group.run(
                () -> {
                  group.cancelScope().setShielded(true);
                  CountDownLatch release = new CountDownLatch(1);
                  group.fork((Body) release::await);
                  Thread outsider =
                      Thread.ofPlatform().start(() -> got.set(group.fork(() -> ran.set(true))));
                  awaitQueued(group, 1);
                  around.cancel();
                  // Bounded look for what must not happen: the fork giving up on a group that is
                  // not cancelled.
                  stillWaitingAfterTheCancel.set(!outsider.join(Duration.ofMillis(200)));
                  release.countDown();
                  outsider.join();
                }));
    assertThat(stillWaitingAfterTheCancel).isTrue();
    assertThat(got.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(ran).isTrue();
    assertAllPlacesBack(group, 1);
  }

  // ---- Task.cancel()
  // -------------------------------------------------------------------------------

  /**
   * Task.cancel() of a child forked from a sibling, which waits for its place on its own thread: it
   * ends CANCELLED without running, leaves the queue, consumes no place (a later fork runs once the
   * holder ends). Closest: CPython test_locks.py test_acquire_cancel_before_awoken.
   */
  @RepeatedTest(20)
  void cancellingAChildWaitingForItsPlaceOnItsOwnThreadConsumesNoPlace() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean waiterRan = new AtomicBoolean();
    AtomicReference<Task<?>> waiter = new AtomicReference<>();
    AtomicBoolean laterRan = new AtomicBoolean();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          CountDownLatch forked = new CountDownLatch(1);
          group.fork(
              () -> {
                waiter.set(group.fork(() -> waiterRan.set(true)));
                forked.countDown();
                release.await();
              });
          forked.await();
          awaitQueued(group, 1);
          assertThat(waiter.get().cancel(true)).isTrue();
          assertThat(waiter.get().state()).isEqualTo(Future.State.CANCELLED);
          awaitQueued(group, 0);
          release.countDown();
          group.fork(() -> laterRan.set(true)).get();
        });
    assertThat(waiterRan).isFalse();
    assertThat(laterRan).isTrue();
    assertAllPlacesBack(group, 1);
  }

  /** Task.cancel() of the child holding the only place: the fork waiting behind it runs. */
  @RepeatedTest(20)
  void cancellingTheChildHoldingThePlaceLetsTheNextOneRun() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    Gauge gauge = new Gauge();
    AtomicReference<Task<?>> holder = new AtomicReference<>();
    group.run(
        () -> {
          CountDownLatch holding = new CountDownLatch(1);
          holder.set(
              group.fork(
                  () -> {
                    gauge.enter();
                    holding.countDown();
                    try {
                      Fixtures.parkUntilInterrupted();
                    } finally {
                      gauge.exit();
                    }
                  }));
          holding.await();
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitQueued(group, 1);
                        holder.get().cancel(true);
                      });
          Task<String> next =
              group.fork(
                  () -> {
                    gauge.enter();
                    gauge.exit();
                    return "next ran";
                  });
          assertThat(next.get()).isEqualTo("next ran");
          canceller.join();
        });
    assertThat(holder.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  // ---- start()
  // -------------------------------------------------------------------------------------

  /**
   * A start() child holds its place from the start (before it signals) and after it signalled,
   * until its work ends: a fork waits meanwhile, then runs.
   */
  @RepeatedTest(10)
  void aStartChildHoldsItsPlaceFromTheStartUntilItsWorkEnds() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicInteger freeBeforeSignal = new AtomicInteger(-1);
    Gauge gauge = new Gauge();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          String v =
              group.start(
                  signal -> {
                    gauge.enter();
                    freeBeforeSignal.set(Internals.availablePlaces(group));
                    signal.started("up");
                    release.await();
                    gauge.exit();
                  });
          assertThat(v).isEqualTo("up");
          Thread releaser =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitQueued(group, 1);
                        release.countDown();
                      });
          group
              .fork(
                  () -> {
                    gauge.enter();
                    gauge.exit();
                  })
              .get();
          releaser.join();
        });
    assertThat(freeBeforeSignal).hasValue(0);
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  /**
   * start() work that fails before started(): start throws that failure (not the group's), and the
   * place comes back, so the forks after it run.
   */
  @RepeatedTest(10)
  void aStartWorkFailingBeforeStartedGivesThePlaceBack() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicInteger ran = new AtomicInteger();
    group.run(
        () -> {
          for (int i = 0; i < 5; i++) {
            assertThatThrownBy(
                    () ->
                        group.start(
                            signal -> {
                              throw new IllegalStateException("not ready");
                            }))
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("not ready");
            group.fork(ran::incrementAndGet).get();
          }
        });
    assertThat(ran).hasValue(5);
    assertAllPlacesBack(group, 1);
  }

  /**
   * The caller of start() gives up (its scope is cancelled) before the work signals: the child is
   * cancelled and waited for, start throws InterruptedException, and the place comes back.
   */
  @RepeatedTest(10)
  void aStartWhoseCallerGivesUpGivesThePlaceBack() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean laterRan = new AtomicBoolean();
    group.run(
        () -> {
          CancelScope scope = CancelScope.create();
          CountDownLatch inWork = new CountDownLatch(1);
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        try {
                          inWork.await();
                        } catch (InterruptedException e) {
                          return;
                        }
                        scope.cancel();
                      });
          scope.run(
              () ->
                  assertThatThrownBy(
                          () ->
                              group.start(
                                  signal -> {
                                    inWork.countDown();
                                    Fixtures.parkUntilInterrupted();
                                  }))
                      .isInstanceOf(InterruptedException.class));
          canceller.join();
          group.fork(() -> laterRan.set(true)).get();
        });
    assertThat(laterRan).isTrue();
    assertAllPlacesBack(group, 1);
  }

  /**
   * start() from a child of a group with two places: the start child takes the second place on its
   * own thread; the caller (holding the first) gets the signal.
   */
  @RepeatedTest(10)
  void startFromAChildTakesTheOtherPlace() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(2).build();
    Gauge gauge = new Gauge();
    group.run(
        () ->
            group
                .fork(
                    () -> {
                      gauge.enter();
                      int v =
                          group.start(
                              signal -> {
                                gauge.enter();
                                signal.started(42);
                                gauge.exit();
                              });
                      assertThat(v).isEqualTo(42);
                      gauge.exit();
                    })
                .get());
    assertThat(gauge.max.get()).isEqualTo(2);
    assertAllPlacesBack(group, 2);
  }

  /**
   * The documented deadlock (maxConcurrency's javadoc: start from a child of a group with one place
   * waits for a signal from a child that waits for that place), broken by a deadline around the
   * start: start throws InterruptedException, the start child never runs, the place is back.
   */
  @RepeatedTest(5)
  void theDocumentedStartDeadlockEndsWithTheCallersDeadline() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean startWorkRan = new AtomicBoolean();
    AtomicBoolean threw = new AtomicBoolean();
    group.run(
        () ->
            group
                .fork(
                    () -> {
                      CancelScope.withTimeout(Duration.ofMillis(30))
                          .run(
                              () -> {
                                try {
                                  group.start(
                                      signal -> {
                                        startWorkRan.set(true);
                                        signal.started(null);
                                      });
                                } catch (InterruptedException e) {
                                  threw.set(true);
                                  throw e;
                                }
                              });
                    })
                .get());
    assertThat(threw).isTrue();
    assertThat(startWorkRan).isFalse();
    assertAllPlacesBack(group, 1);
  }

  /**
   * CANCEL_ALL with the waiting forks on their own threads (forked from the child that then fails):
   * they end CANCELLED without running, and the one failure is reported once.
   */
  @RepeatedTest(10)
  void aFailureUnderCancelAllCancelsChildrenWaitingOnTheirOwnThreads() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicInteger ran = new AtomicInteger();
    List<Task<?>> waiting = new CopyOnWriteArrayList<>();
    TaskGroupException e =
        (TaskGroupException)
            catchThrowable(
                () ->
                    group.run(
                        () ->
                            group.fork(
                                () -> {
                                  for (int i = 0; i < 5; i++) {
                                    waiting.add(group.fork(ran::incrementAndGet));
                                  }
                                  awaitQueued(group, 5);
                                  throw new IllegalStateException("the one failure");
                                })));
    assertThat(messages(e)).containsExactly("the one failure");
    assertThat(ran).hasValue(0);
    assertThat(waiting).allSatisfy(t -> assertThat(t.state()).isEqualTo(Future.State.CANCELLED));
    assertAllPlacesBack(group, 1);
  }

  // ---- cooperative scopes
  // ------------------------------------------------------------------------

  /**
   * A fork waiting for a place inside a cooperative scope (which the library never interrupts)
   * gives up when that scope is cancelled: a CANCELLED task, no interrupt status, nothing queued.
   */
  @RepeatedTest(5)
  void aCooperativeForkWaitingForAPlaceGivesUpWhenCancelled() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<?>> got = new AtomicReference<>();
    AtomicBoolean statusSet = new AtomicBoolean(true);
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          group.fork((Body) release::await);
          CancelScope coop = CancelScope.cooperative();
          Thread canceller =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        awaitQueued(group, 1);
                        coop.cancel();
                      });
          coop.run(
              () -> {
                got.set(group.fork(() -> ran.set(true)));
                statusSet.set(Thread.currentThread().isInterrupted());
              });
          canceller.join();
          awaitQueued(group, 0);
          release.countDown();
        });
    assertThat(got.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(ran).isFalse();
    assertThat(statusSet).as("a cooperative scope is never interrupted").isFalse();
    assertAllPlacesBack(group, 1);
  }

  /**
   * FIFO holds for a fork waiting inside a cooperative scope too ("in FIFO order", and Forks says a
   * timed tryAcquire keeps it): queued first, it runs first, even once later forks queued behind it
   * and it has waited longer than its 5 ms slice. Closest: CPython test_locks.py
   * test_acquire_fifo_order.
   */
  @RepeatedTest(3)
  void aCooperativeForkKeepsItsFifoPlace() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    List<String> order = Collections.synchronizedList(new ArrayList<>());
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          group.fork((Body) release::await);
          Thread coop =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          CancelScope.cooperative()
                              .run(() -> group.fork(() -> order.add("cooperative, queued first")));
                        } catch (InterruptedException e) {
                          throw new AssertionError(e);
                        }
                      });
          awaitQueued(group, 1);
          Thread plain =
              Thread.ofPlatform().start(() -> group.fork(() -> order.add("plain, queued second")));
          awaitQueued(group, 2);
          // The scenario, not a synchronisation: the first waiter's 5 ms slices run out meanwhile.
          Thread.sleep(30);
          release.countDown();
          coop.join();
          plain.join();
        });
    assertThat(order).containsExactly("cooperative, queued first", "plain, queued second");
    assertAllPlacesBack(group, 1);
  }

  /**
   * An outsider in a cooperative scope, waiting in fork for a place, is interrupted from outside:
   * fork returns a CANCELLED task with the interrupt status set, nothing queued, no place taken.
   */
  @RepeatedTest(5)
  void aCooperativeForkInterruptedFromOutsideLeavesNothingBehind() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<?>> got = new AtomicReference<>();
    AtomicBoolean statusSet = new AtomicBoolean();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          group.fork((Body) release::await);
          Thread outsider =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          CancelScope.cooperative()
                              .run(
                                  () -> {
                                    got.set(group.fork(() -> ran.set(true)));
                                    statusSet.set(Thread.currentThread().isInterrupted());
                                  });
                        } catch (InterruptedException expected) {
                          statusSet.set(true); // the scope threw it on leaving: seen all the same
                        }
                      });
          awaitQueued(group, 1);
          outsider.interrupt();
          outsider.join();
          awaitQueued(group, 0);
          release.countDown();
        });
    assertThat(got.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(ran).isFalse();
    assertThat(statusSet).isTrue();
    assertAllPlacesBack(group, 1);
  }

  /**
   * Cooperative forks cancelled just as the place comes free: whoever gets the place either runs or
   * gives it back; none is leaked (all places back once the cancelled waits have ended).
   */
  @RepeatedTest(20)
  void cooperativeForksCancelledAsThePlaceFreesLeakNoPlace() throws Exception {
    int n = 2;
    TaskGroup group = TaskGroup.builder().maxConcurrency(n).build();
    Gauge gauge = new Gauge();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          for (int i = 0; i < n; i++) {
            group.fork((Body) release::await);
          }
          List<CancelScope> scopes = new ArrayList<>();
          List<Thread> waiters = new ArrayList<>();
          for (int i = 0; i < 6; i++) {
            CancelScope sc = CancelScope.cooperative();
            scopes.add(sc);
            waiters.add(
                Thread.ofVirtual()
                    .start(
                        () -> {
                          try {
                            sc.run(
                                () ->
                                    group.fork(
                                        () -> {
                                          gauge.enter();
                                          gauge.exit();
                                        }));
                          } catch (InterruptedException e) {
                            throw new AssertionError(e);
                          }
                        }));
          }
          awaitQueued(group, 6);
          release.countDown();
          scopes.forEach(CancelScope::cancel);
          for (Thread w : waiters) {
            w.join();
          }
        });
    assertThat(gauge.max.get()).isLessThanOrEqualTo(n);
    Probes.awaitTrue(
        "every place back", MAX, () -> Internals.availablePlaces(group) == n); // helpers hand back
    assertAllPlacesBack(group, n);
  }

  // ---- volume
  // ------------------------------------------------------------------------------------

  /**
   * maxConcurrency(1), 10 000 forks at once: half from the body (each waits for the place), half
   * from a child (each child waits on its own thread): no deadlock, one at a time, all run.
   */
  @Test
  void tenThousandForksThroughOnePlaceFromTheBodyAndFromAChild() throws Exception {
    TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
    Gauge gauge = new Gauge();
    AtomicInteger ran = new AtomicInteger();
    Body work =
        () -> {
          gauge.enter();
          ran.incrementAndGet();
          gauge.exit();
        };
    group.run(
        () -> {
          group.fork(
              () -> {
                for (int i = 0; i < 5_000; i++) {
                  group.fork(work);
                }
              });
          for (int i = 0; i < 5_000; i++) {
            group.fork(work);
          }
        });
    assertThat(ran).hasValue(10_000);
    assertThat(gauge.max.get()).isEqualTo(1);
    assertAllPlacesBack(group, 1);
  }

  // ---- random mixes
  // ------------------------------------------------------------------------------

  /**
   * Random mixes of forks from the body, from children and from an outsider, failing work,
   * Task.cancel() of random children, start() children and scopes cancelled around forks: never
   * more than n at once, every failure thrown by a work reported exactly once, all places back.
   */
  @RepeatedTest(20)
  void randomMixesKeepThePlacesAndEveryFailure() throws Exception {
    long seed = Probes.seed("places.seed", "PlacesSweepTest random mix");
    Random rnd = new Random(seed);
    int n = 1 + rnd.nextInt(4);
    FailurePolicy policy = rnd.nextBoolean() ? FailurePolicy.COLLECT : FailurePolicy.CANCEL_ALL;
    TaskGroup group = TaskGroup.builder().maxConcurrency(n).failurePolicy(policy).build();
    Gauge gauge = new Gauge();
    Set<String> thrown = ConcurrentHashMap.newKeySet();
    List<Task<?>> tasks = new CopyOnWriteArrayList<>();
    AtomicInteger ids = new AtomicInteger();
    int ops = 60;
    long[] plan = new long[ops];
    for (int i = 0; i < ops; i++) {
      plan[i] = rnd.nextLong();
    }
    Throwable t =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      for (int i = 0; i < ops; i++) {
                        Random r = new Random(plan[i]);
                        int op = r.nextInt(10);
                        boolean fails = r.nextInt(8) == 0;
                        Body work =
                            () -> {
                              gauge.enter();
                              try {
                                if (r.nextBoolean()) {
                                  Thread.sleep(0, 1_000);
                                }
                                if (fails) {
                                  String m = "failure " + ids.getAndIncrement();
                                  thrown.add(m);
                                  throw new IllegalStateException(m);
                                }
                              } finally {
                                gauge.exit();
                              }
                            };
                        switch (op) {
                          case 0, 1, 2, 3 -> tasks.add(group.fork(work));
                          case 4, 5 ->
                              tasks.add(
                                  group.fork(
                                      () -> {
                                        tasks.add(group.fork(work));
                                        tasks.add(group.fork(work));
                                      }));
                          case 6 -> {
                            if (!tasks.isEmpty()) {
                              tasks.get(r.nextInt(tasks.size())).cancel(true);
                            }
                            tasks.add(group.fork(work));
                          }
                          case 7 -> {
                            try {
                              group.start(
                                  s -> {
                                    s.started(null);
                                    work.run();
                                  });
                            } catch (InterruptedException e) {
                              return; // the group was cancelled
                            }
                          }
                          case 8 -> {
                            CancelScope sc =
                                CancelScope.withTimeout(Duration.ofNanos(r.nextInt(200_000)));
                            sc.run(() -> tasks.add(group.fork(work)));
                          }
                          default -> {
                            Thread o = Thread.ofVirtual().start(() -> tasks.add(group.fork(work)));
                            o.join();
                          }
                        }
                        if (Thread.currentThread().isInterrupted()) {
                          return; // cancelled by a failure (CANCEL_ALL)
                        }
                      }
                    }));
    assertThat(gauge.max.get()).as("seed " + seed).isBetween(0, n);
    List<String> reported = t == null ? List.of() : messages((TaskGroupException) t);
    assertThat(reported).as("seed " + seed).doesNotHaveDuplicates();
    assertThat(Set.copyOf(reported)).as("seed " + seed).isEqualTo(thrown);
    assertAllPlacesBack(group, n);
  }

  private static Throwable catchThrowable(Probes.Action a) {
    try {
      a.run();
      return null;
    } catch (Throwable t) {
      return t;
    }
  }
}
