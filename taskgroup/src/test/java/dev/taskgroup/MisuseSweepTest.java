package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A sweep of bad input and misuse across the public API, beyond {@code MisuseTest} and {@code
 * BadInputTest}: the null parameters those do not cover, extreme numbers, durations and instants,
 * calls in the wrong state or from the wrong thread, two {@code run}s racing, a {@link StartSignal}
 * used after its work ended, a {@link CancelScope.Registration} closed twice or from elsewhere. The
 * rule checked everywhere ({@link TaskGroup}'s and {@link CancelScope}'s class javadoc, "Nulls,
 * misuse and thread safety"): a rejected call throws the documented type with a message that names
 * what was wrong and the way out, and leaves every group and scope as it was; extreme but valid
 * values work (no {@link ArithmeticException} from the inside).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MisuseSweepTest {

  // ---- nulls not covered by MisuseTest ------------------------------------------------------

  static Stream<Arguments> moreNulls() {
    List<Callable<Integer>> withNull = Arrays.asList(() -> 1, null);
    return Stream.of(
        nulls(
            "Builder.contextPropagator",
            "propagator",
            () -> TaskGroup.builder().contextPropagator(null)),
        nulls("closeOnCancel", "resource", () -> CancelScope.closeOnCancel(null)),
        nulls("await", "stage", () -> CancelScope.await(null)),
        nulls("sleep", "duration", () -> CancelScope.sleep(null)),
        nulls("invokeAll(null)", "tasks", () -> TaskGroup.invokeAll(null)),
        nulls("invokeAny(null)", "tasks", () -> TaskGroup.invokeAny(null)),
        nulls("invokeAll element", "tasks", () -> TaskGroup.invokeAll(withNull)),
        nulls("invokeAny element", "tasks", () -> TaskGroup.invokeAny(withNull)),
        nulls(
            "a group's scope: setDeadline",
            "deadline",
            () -> TaskGroup.create().cancelScope().setDeadline(null)),
        nulls(
            "a group's scope: setTimeout",
            "timeout",
            () -> TaskGroup.create().cancelScope().setTimeout(null)),
        nulls(
            "a group's scope: cancel(reason)",
            "reason",
            () -> TaskGroup.create().cancelScope().cancel(null)),
        // a group's scope cannot run, but a null body is still reported as the null it is
        nulls(
            "a group's scope: run(null)",
            "body",
            () -> TaskGroup.create().cancelScope().run(null)));
  }

  private static Arguments nulls(String call, String parameter, ThrowingCallable action) {
    return Arguments.of(call, parameter, action);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("moreNulls")
  void nullArgumentIsRejectedAtTheEntryNamingTheParameter(
      String call, String parameter, ThrowingCallable action) {
    Throwable thrown = catchThrowable(action);
    assertThat(thrown).as(call).isInstanceOf(NullPointerException.class);
    assertThat(thrown.getMessage()).as(call).contains(parameter);
    // thrown at the entry (a public type of the API), not from deep inside
    assertThat(thrown.getStackTrace()[0].getClassName())
        .as(call + ": thrown by " + thrown.getStackTrace()[0])
        .isIn("java.util.Objects", "dev.taskgroup.CancelScope", "dev.taskgroup.Invocations");
  }

  @Test
  void rejectedNullPropagatorLeavesTheBuildersPropagatorsAsTheyWere() throws Exception {
    Queue<String> trail = new ConcurrentLinkedQueue<>();
    TaskGroup.Builder b =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      trail.add("A");
                      work.run();
                    });
    assertThatThrownBy(() -> b.contextPropagator(null)).isInstanceOf(NullPointerException.class);
    TaskGroup g = b.build();
    g.run(() -> g.fork(() -> trail.add("work")));
    assertThat(trail).containsExactly("A", "work");
  }

  @Test
  void invokeAnyOfNothingSaysItNeedsATask() {
    assertThatThrownBy(() -> TaskGroup.invokeAny(List.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("at least one task");
    // invokeAll of nothing is valid: no results
    assertThat(catchThrowable(() -> assertThat(TaskGroup.invokeAll(List.of())).isEmpty())).isNull();
  }

  // ---- extreme numbers, durations and instants ---------------------------------------------

  static Stream<Duration> hugeDurations() {
    return Stream.of(
        Duration.ofSeconds(Long.MAX_VALUE, 999_999_999),
        Duration.ofSeconds(Long.MAX_VALUE / 1000),
        Duration.ofNanos(Long.MAX_VALUE),
        Duration.ofDays(365L * 1000));
  }

  static Stream<Duration> hugeNegativeDurations() {
    return Stream.of(
        Duration.ofSeconds(Long.MIN_VALUE),
        Duration.ofNanos(Long.MIN_VALUE),
        Duration.ofSeconds(0, -1),
        Duration.ofSeconds(Long.MIN_VALUE / 1000));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hugeDurations")
  void aHugeTimeoutIsNoTimeoutAnywhere(Duration huge) throws Exception {
    // Trio: move_on_after(math.inf) is a valid, never-firing scope (closest:
    // trio/_tests/test_timeouts.py, the infinite-deadline cases).
    CancelScope s = CancelScope.withTimeout(huge);
    assertThat(s.call(() -> "ran")).isEqualTo("ran");
    assertThat(s.cancelCalled()).isFalse();

    assertThat(CancelScope.moveOnAfter(huge, () -> "moved")).isEqualTo("moved");
    assertThat(CancelScope.failAfter(huge, () -> "failed-not")).isEqualTo("failed-not");

    TaskGroup g = TaskGroup.builder().timeout(huge).build();
    assertThat(g.call(() -> g.fork(() -> "child").get())).isEqualTo("child");
    assertThat(g.cancelCalled()).isFalse();

    CancelScope running = CancelScope.create();
    running.run(
        () -> {
          running.setTimeout(huge);
          CancelScope.checkpoint(); // not cancelled
          assertThat(running.deadline()).isPresent();
          assertThat(running.deadline().get()).isAfter(Instant.now().plus(Duration.ofDays(365)));
        });
    assertThat(running.cancelCalled()).isFalse();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hugeNegativeDurations")
  void aHugeNegativeTimeoutIsRejectedWithItsValueNotAnOverflow(Duration negative) {
    List<ThrowingCallable> uses =
        List.of(
            () -> CancelScope.withTimeout(negative),
            () -> TaskGroup.builder().timeout(negative),
            () -> CancelScope.create().setTimeout(negative),
            () -> TaskGroup.create().cancelScope().setTimeout(negative),
            () -> CancelScope.sleep(negative),
            () -> CancelScope.moveOnAfter(negative, () -> 1),
            () -> CancelScope.failAfter(negative, () -> 1));
    for (ThrowingCallable use : uses) {
      assertThat(catchThrowable(use))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("negative")
          .hasMessageContaining(negative.toString());
    }
  }

  @Test
  void aRejectedSetTimeoutLeavesTheOldDeadline() throws Exception {
    CancelScope s = CancelScope.create();
    Instant set = Instant.now().plus(Duration.ofHours(1));
    s.setDeadline(set);
    assertThatThrownBy(() -> s.setTimeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(s.deadline()).contains(set);
    s.run(
        () -> {
          assertThatThrownBy(() -> s.setTimeout(Duration.ofNanos(-1)))
              .isInstanceOf(IllegalArgumentException.class);
          assertThat(s.deadline()).contains(set);
          CancelScope.checkpoint();
        });
    assertThat(s.cancelCalled()).isFalse();

    TaskGroup g = TaskGroup.builder().timeout(Duration.ofHours(2)).build();
    g.run(
        () -> {
          Instant before = g.cancelScope().deadline().orElseThrow();
          assertThatThrownBy(() -> g.cancelScope().setTimeout(Duration.ofDays(-1)))
              .isInstanceOf(IllegalArgumentException.class);
          assertThat(g.cancelScope().deadline()).contains(before);
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  @Test
  void instantMaxIsADeadlineThatNeverFires() throws Exception {
    CancelScope s = CancelScope.withDeadline(Instant.MAX);
    assertThat(s.deadline()).contains(Instant.MAX);
    assertThat(s.call(() -> "ran")).isEqualTo("ran");
    assertThat(s.cancelCalled()).isFalse();

    TaskGroup g = TaskGroup.create();
    g.cancelScope().setDeadline(Instant.MAX);
    g.run(
        () -> {
          g.cancelScope().setDeadline(Instant.MAX);
          assertThat(g.fork(() -> "child").get()).isEqualTo("child");
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  @Test
  void instantMinIsADeadlineInThePast() throws Exception {
    // "One in the past cancels at once when run starts" (withDeadline) / "cancels at once"
    CancelScope s = CancelScope.withDeadline(Instant.MIN);
    assertThat(s.deadline()).contains(Instant.MIN);
    s.run(CancelScope::checkpoint);
    assertThat(s.cancelCaught()).isTrue();

    CancelScope running = CancelScope.create();
    running.run(
        () -> {
          running.setDeadline(Instant.MIN);
          CancelScope.checkpoint();
        });
    assertThat(running.cancelCaught()).isTrue();

    TaskGroup g = TaskGroup.create();
    g.cancelScope().setDeadline(Instant.MIN);
    Task<?>[] child = new Task<?>[1];
    g.run(() -> child[0] = g.fork(() -> "never"));
    assertThat(child[0].state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
  }

  @Test
  void aHugeSleepEndsByTheCancellationNotByAnOverflow() throws Exception {
    CancelScope s = CancelScope.create();
    s.run(
        () -> {
          Thread.ofVirtual()
              .start(
                  () -> {
                    // cancel from another thread once the owner sleeps
                    s.cancel("wake up");
                  });
          CancelScope.sleep(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999));
        });
    assertThat(s.cancelCaught()).isTrue();
    assertThat(s.cancelReason()).contains("wake up");
  }

  @Test
  void extremeTimedGetsOfATaskBehaveAsFutureGetDoes() throws Exception {
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          Task<String> t =
              g.fork(
                  () -> {
                    release.await();
                    return "done";
                  });
          // a non-positive timeout on a running task: TimeoutException at once (FutureTask does)
          for (long timeout : new long[] {0L, -1L, Long.MIN_VALUE}) {
            assertThatThrownBy(() -> t.get(timeout, TimeUnit.SECONDS))
                .isInstanceOf(TimeoutException.class);
          }
          assertThatThrownBy(() -> t.get(Long.MIN_VALUE, TimeUnit.DAYS))
              .isInstanceOf(TimeoutException.class);
          // a huge one waits for the result, with no overflow
          Task<String> waiter = g.fork(() -> t.get(Long.MAX_VALUE, TimeUnit.DAYS));
          Task<String> waiter2 = g.fork(() -> t.get(Long.MAX_VALUE, TimeUnit.NANOSECONDS));
          release.countDown();
          assertThat(waiter.get()).isEqualTo("done");
          assertThat(waiter2.get()).isEqualTo("done");
          assertThat(t.get(Long.MIN_VALUE, TimeUnit.NANOSECONDS)).isEqualTo("done");
        });
  }

  @Test
  void aTimedGetWithANullUnitThrowsNullPointerException() throws Exception {
    // Future.get(long, TimeUnit): FutureTask throws NullPointerException for a null unit.
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          Task<String> done = g.fork(() -> "x");
          done.get();
          assertThatThrownBy(() -> done.get(1, null)).isInstanceOf(NullPointerException.class);
        });
  }

  @Test
  void maxConcurrencyOfIntegerMaxValueIsUnboundedInPractice() throws Exception {
    TaskGroup g = TaskGroup.builder().maxConcurrency(Integer.MAX_VALUE).build();
    CountDownLatch all = new CountDownLatch(3);
    g.run(
        () -> {
          for (int i = 0; i < 3; i++) {
            g.fork(
                () -> {
                  all.countDown();
                  all.await(); // all three at once
                  return null;
                });
          }
        });
    assertThat(all.getCount()).isZero();
  }

  // ---- the wrong state -----------------------------------------------------------------------

  @Test
  void aForkBeforeRunIsRejectedAndTheGroupRunsAsNew() throws Exception {
    TaskGroup g = TaskGroup.named("early");
    for (ThrowingCallable early :
        List.<ThrowingCallable>of(
            () -> g.fork(() -> 1),
            () -> g.fork((Body) () -> {}),
            () -> g.fork("n", () -> 1),
            () -> g.fork("n", (Body) () -> {}),
            () -> g.start(StartSignal::started))) {
      assertThat(catchThrowable(early))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("early")
          .hasMessageContaining("before it runs")
          .hasMessageContaining("from its body");
    }
    assertThat(g.toString()).contains("new");
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.call(() -> g.fork(() -> "later").get())).isEqualTo("later");
    assertThat(g.cancelCaught()).isFalse();
  }

  @Test
  void aStartAfterTheGroupFinishedIsRejectedNamingTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("over");
    g.run(() -> {});
    AtomicInteger ran = new AtomicInteger();
    assertThatThrownBy(
            () ->
                g.start(
                    signal -> {
                      ran.incrementAndGet();
                      signal.started();
                    }))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("over")
        .hasMessageContaining("use a new TaskGroup");
    assertThat(ran).hasValue(0);
  }

  @Test
  void aRejectedNestedRunDoesNotDisturbTheRunningGroup() throws Exception {
    TaskGroup g = TaskGroup.named("undisturbed");
    CountDownLatch childStarted = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    String result =
        g.call(
            () -> {
              Task<String> child =
                  g.fork(
                      () -> {
                        childStarted.countDown();
                        release.await();
                        return "child";
                      });
              childStarted.await();
              assertThatThrownBy(() -> g.run(() -> {})).isInstanceOf(IllegalStateException.class);
              assertThatThrownBy(() -> g.call(() -> 1)).isInstanceOf(IllegalStateException.class);
              // from a child too
              Task<Throwable> fromChild = g.fork(() -> catchThrowable(() -> g.run(() -> {})));
              assertThat(fromChild.get())
                  .isInstanceOf(IllegalStateException.class)
                  .hasMessageContaining("already running in another thread");
              assertThat(CancelScope.isCancelled()).isFalse();
              assertThat(g.toString()).contains("running");
              release.countDown();
              return child.get() + "+" + g.fork(() -> "later").get();
            });
    assertThat(result).isEqualTo("child+later");
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
  }

  @RepeatedTest(30)
  void twoRunsRacingRunTheBodyOnceAndTheLoserCorruptsNothing() throws Exception {
    TaskGroup g = TaskGroup.named("raced");
    CyclicBarrier go = new CyclicBarrier(2);
    AtomicInteger bodies = new AtomicInteger();
    AtomicInteger childResults = new AtomicInteger();
    List<Throwable> outcomes = java.util.Collections.synchronizedList(new ArrayList<>());
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      threads.add(
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      go.await();
                      g.run(
                          () -> {
                            bodies.incrementAndGet();
                            for (int k = 0; k < 3; k++) {
                              g.fork(
                                  () -> {
                                    CancelScope.checkpoint(); // not cancelled by the loser
                                    return childResults.incrementAndGet();
                                  });
                            }
                          });
                      outcomes.add(null);
                    } catch (Throwable e) {
                      outcomes.add(e);
                    }
                  }));
    }
    for (Thread t : threads) {
      assertThat(t.join(Duration.ofSeconds(20))).isTrue();
    }
    assertThat(bodies).hasValue(1);
    assertThat(childResults).hasValue(3);
    assertThat(outcomes).hasSize(2).containsOnlyOnce((Throwable) null);
    Throwable loser = outcomes.stream().filter(e -> e != null).findFirst().orElseThrow();
    assertThat(loser)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("raced")
        .satisfiesAnyOf(
            e -> assertThat(e).hasMessageContaining("already running in another thread"),
            e -> assertThat(e).hasMessageContaining("has already run and finished"));
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
    assertThat(g.toString()).contains("done");
  }

  @RepeatedTest(30)
  void twoRunsOfOneScopeRacingRunOneBodyAndTheLoserCancelsNothing() throws Exception {
    CancelScope s = CancelScope.create();
    CyclicBarrier go = new CyclicBarrier(2);
    AtomicInteger bodies = new AtomicInteger();
    List<Throwable> outcomes = java.util.Collections.synchronizedList(new ArrayList<>());
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      threads.add(
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      go.await();
                      s.run(
                          () -> {
                            bodies.incrementAndGet();
                            CancelScope.checkpoint();
                          });
                      outcomes.add(null);
                    } catch (Throwable e) {
                      outcomes.add(e);
                    }
                  }));
    }
    for (Thread t : threads) {
      assertThat(t.join(Duration.ofSeconds(20))).isTrue();
    }
    assertThat(bodies).hasValue(1);
    assertThat(outcomes).hasSize(2).containsOnlyOnce((Throwable) null);
    assertThat(outcomes.stream().filter(e -> e != null).findFirst().orElseThrow())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("create a new CancelScope");
    assertThat(s.cancelCalled()).isFalse();
    assertThat(s.cancelCaught()).isFalse();
  }

  @Test
  void aScopeRunAgainFromInsideItselfIsRejectedAndTheOuterRunGoesOn() throws Exception {
    CancelScope s = CancelScope.create();
    String r =
        s.call(
            () -> {
              assertThatThrownBy(() -> s.run(() -> {}))
                  .isInstanceOf(IllegalStateException.class)
                  .hasMessageContaining("running");
              CancelScope.checkpoint();
              return "outer";
            });
    assertThat(r).isEqualTo("outer");
    assertThat(s.cancelCalled()).isFalse();
    assertThat(s.toString()).contains("done");
  }

  @Test
  void aForkFromAChildWhileTheOwnerJoinsIsAccepted() throws Exception {
    // Trio: a nursery stays open while its children run (closest: test_nursery_... children
    // spawning siblings after the body ended).
    TaskGroup g = TaskGroup.create();
    CountDownLatch bodyEnded = new CountDownLatch(1);
    AtomicReference<Task<String>> late = new AtomicReference<>();
    g.run(
        () -> {
          g.fork(
              () -> {
                bodyEnded.await();
                Probes.awaitTrue(
                    "owner joining",
                    Duration.ofSeconds(10),
                    () -> g.toString().contains("joining"));
                late.set(g.fork(() -> "late"));
                return null;
              });
          bodyEnded.countDown();
        });
    assertThat(late.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(late.get().resultNow()).isEqualTo("late");
  }

  @Test
  void aForkFromAThreadOutsideTheGroupIsAChildLikeAnyOther() throws Exception {
    TaskGroup g = TaskGroup.create();
    CountDownLatch running = new CountDownLatch(1);
    CountDownLatch forked = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Task<String>> outside = new AtomicReference<>();
    Thread stranger =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    running.await();
                    outside.set(
                        g.fork(
                            () -> {
                              release.await();
                              return "outside";
                            }));
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  } finally {
                    forked.countDown();
                  }
                });
    g.run(
        () -> {
          running.countDown();
          forked.await();
          release.countDown();
        });
    stranger.join();
    // run waited for it: done by the time run returned
    assertThat(outside.get().state()).isEqualTo(Future.State.SUCCESS);
  }

  @Test
  void aForkFromACancelHookOfACancelledGroupGivesACancelledTask() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Object> fromHook = new AtomicReference<>();
    g.run(
        () -> {
          try (var hook =
              CancelScope.onCancel(
                  () -> {
                    try {
                      fromHook.set(g.fork(() -> "never"));
                    } catch (Throwable e) {
                      fromHook.set(e);
                    }
                  })) {
            g.cancel("stop");
            CancelScope.checkpoint();
          }
        });
    assertThat(fromHook.get()).isInstanceOf(Task.class);
    assertThat(((Task<?>) fromHook.get()).state()).isEqualTo(Future.State.CANCELLED);
    assertThat(g.cancelCaught()).isTrue();
  }

  // ---- StartSignal misuse --------------------------------------------------------------------

  @Test
  void aSignalUsedAfterItsWorkEndedWithoutSignallingIsRejectedAndChangesNothing() throws Exception {
    TaskGroup g = TaskGroup.named("leaky");
    AtomicReference<StartSignal<String>> leaked = new AtomicReference<>();
    AtomicReference<Throwable> startThrew = new AtomicReference<>();
    AtomicReference<Throwable> late = new AtomicReference<>();
    g.run(
        () -> {
          startThrew.set(catchThrowable(() -> g.start(leaked::set)));
          late.set(catchThrowable(() -> leaked.get().started("too late")));
          assertThat(g.fork(() -> "still open").get()).isEqualTo("still open");
        });
    assertThat(startThrew.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("returned without calling started()");
    assertThat(late.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("after the started work ended");
    assertThat(g.cancelCalled()).isFalse();
    // and after the group finished
    assertThatThrownBy(() -> leaked.get().started())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("ended");
  }

  @Test
  void aSignalGivenFromAnotherThreadIsAccepted() throws Exception {
    // "A signal may be used from any thread, exactly once."
    TaskGroup g = TaskGroup.create();
    String got =
        g.call(
            () ->
                g.start(
                    signal -> {
                      Thread helper = Thread.ofPlatform().start(() -> signal.started("helper"));
                      helper.join();
                      CountDownLatch forever = new CountDownLatch(1);
                      g.fork(
                          () -> {
                            // keep the group open a little, then end the started work
                            g.cancel("done");
                            return null;
                          });
                      forever.await();
                    }));
    assertThat(got).isEqualTo("helper");
    assertThat(g.cancelCaught()).isTrue();
  }

  @RepeatedTest(30)
  void twoThreadsRacingToSignalOneWinsOneIsToldItWasAlreadyCalled() throws Exception {
    TaskGroup g = TaskGroup.create();
    List<Throwable> rejected = java.util.Collections.synchronizedList(new ArrayList<>());
    String got =
        g.call(
            () ->
                g.start(
                    signal -> {
                      CyclicBarrier go = new CyclicBarrier(2);
                      List<Thread> ts = new ArrayList<>();
                      for (String v : List.of("a", "b")) {
                        ts.add(
                            Thread.ofVirtual()
                                .start(
                                    () -> {
                                      try {
                                        go.await();
                                        signal.started(v);
                                      } catch (IllegalStateException e) {
                                        rejected.add(e);
                                      } catch (Exception e) {
                                        rejected.add(new AssertionError(e));
                                      }
                                    }));
                      }
                      for (Thread t : ts) {
                        t.join();
                      }
                    }));
    assertThat(got).isIn("a", "b");
    assertThat(rejected).hasSize(1);
    assertThat(rejected.get(0))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("already called");
    assertThat(g.cancelCalled()).isFalse();
  }

  // ---- Registration misuse ------------------------------------------------------------------

  @Test
  void aRegistrationClosedTwiceOrFromAnotherThreadStaysClosed() throws Exception {
    CancelScope s = CancelScope.create();
    AtomicInteger ran = new AtomicInteger();
    s.run(
        () -> {
          CancelScope.Registration r = CancelScope.onCancel(ran::incrementAndGet);
          r.close();
          r.close(); // idempotent
          CancelScope.Registration other = CancelScope.onCancel(ran::incrementAndGet);
          Thread closer = Thread.ofPlatform().start(other::close);
          closer.join();
          other.close();
          s.cancel();
          CancelScope.checkpoint();
        });
    assertThat(s.cancelCaught()).isTrue();
    assertThat(ran).hasValue(0);
  }

  @Test
  void aRegistrationWhoseActionThrewWithNoGroupThrowsOnCloseAndTheScopeIsIntact() throws Exception {
    IllegalStateException boom = new IllegalStateException("boom");
    CancelScope s = CancelScope.create();
    AtomicReference<Throwable> first = new AtomicReference<>();
    AtomicReference<Throwable> second = new AtomicReference<>();
    s.run(
        () -> {
          CancelScope.Registration r =
              CancelScope.onCancel(
                  () -> {
                    throw boom;
                  });
          s.cancel();
          first.set(catchThrowable(r::close));
          second.set(catchThrowable(r::close));
          CancelScope.checkpoint();
        });
    assertThat(first.get()).isSameAs(boom);
    System.out.println("second close threw: " + second.get());
    assertThat(s.cancelCaught()).isTrue();
  }

  @Test
  void aRegistrationOutsideAnyScopeNeverRunsAndClosesQuietly() throws Exception {
    AtomicInteger ran = new AtomicInteger();
    Thread t =
        Thread.ofPlatform()
            .start(
                () -> {
                  CancelScope.Registration r = CancelScope.onCancel(ran::incrementAndGet);
                  r.close();
                  r.close();
                });
    t.join();
    assertThat(ran).hasValue(0);
  }

  // ---- Task misuse ---------------------------------------------------------------------------

  @Test
  void resultNowAndExceptionNowOnTheWrongOutcomeSayWhatTheOutcomeIs() throws Exception {
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    IllegalStateException cause = new IllegalStateException("child failed");
    Task<?>[] t = new Task<?>[3];
    CountDownLatch release = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      t[0] = g.fork("ok", () -> "v");
                      t[1] =
                          g.fork(
                              "bad",
                              () -> {
                                throw cause;
                              });
                      t[2] =
                          g.fork(
                              "slow",
                              () -> {
                                release.await();
                                return "s";
                              });
                      assertThatThrownBy(t[2]::resultNow)
                          .isInstanceOf(IllegalStateException.class)
                          .hasMessageContaining("slow")
                          .hasMessageContaining("not completed");
                      assertThatThrownBy(t[2]::exceptionNow)
                          .isInstanceOf(IllegalStateException.class)
                          .hasMessageContaining("not completed");
                      release.countDown();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThatThrownBy(t[0]::exceptionNow)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("ok")
        .hasMessageContaining("result");
    assertThatThrownBy(t[1]::resultNow)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("bad")
        .hasMessageContaining("failed");
    assertThat(t[1].exceptionNow()).isSameAs(cause);
    // a rejected call changed nothing
    assertThat(t[0].resultNow()).isEqualTo("v");
    assertThat(t[1].state()).isEqualTo(Future.State.FAILED);
  }

  @Test
  void cancellingATaskOfAFinishedGroupReturnsFalseAndChangesNothing() throws Exception {
    TaskGroup g = TaskGroup.create();
    Task<String> t = g.call(() -> g.fork(() -> "v"));
    assertThat(t.cancel(true)).isFalse();
    assertThat(t.toCompletableFuture().cancel(true)).isFalse();
    assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
    assertThat(t.get()).isEqualTo("v");
    CompletableFuture<String> f = t.toCompletableFuture();
    assertThat(f.complete("other")).isFalse();
    assertThat(t.resultNow()).isEqualTo("v");
  }

  // ---- the group's scope view -----------------------------------------------------------------

  @Test
  void aGroupsScopeRejectsRunAndCallNamingTheGroupAndChangesNothing() throws Exception {
    TaskGroup g = TaskGroup.named("viewed");
    CancelScope view = g.cancelScope();
    assertThatThrownBy(() -> view.call(() -> 1))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("viewed")
        .hasMessageContaining("run()");
    assertThat(view.toString()).contains("new");
    g.run(
        () ->
            assertThatThrownBy(() -> view.run(() -> {}))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("viewed"));
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
  }

  @RepeatedTest(5)
  void aThreadFactoryReturningALiveThreadAgainIsRejectedAndTheRunningChildIsUntouched()
      throws Exception {
    // Builder.threadFactory: a broken factory makes fork throw RejectedExecutionException, and
    // the group is as it was. Here the factory hands back the thread it made first, still running
    // the first child: the rejection must not take that thread away from its task.
    AtomicReference<Thread> first = new AtomicReference<>();
    TaskGroup g =
        TaskGroup.builder()
            .name("recycling")
            .threadFactory(
                r -> {
                  Thread t = first.get();
                  if (t == null) {
                    t = Thread.ofVirtual().unstarted(r);
                    first.set(t);
                  }
                  return t;
                })
            .build();
    CountDownLatch running = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Throwable> rejected = new AtomicReference<>();
    AtomicReference<String> seenByChild = new AtomicReference<>();
    AtomicReference<Task<String>> childTask = new AtomicReference<>();
    AtomicReference<Throwable> runThrew = new AtomicReference<>();
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    Task<String> r =
                        g.call(
                            () -> {
                              Task<String> child =
                                  g.fork(
                                      "first",
                                      () -> {
                                        running.countDown();
                                        release.await();
                                        String name = Thread.currentThread().getName();
                                        g.cancel("stop");
                                        Thread.interrupted(); // swallowed: the level stays
                                        seenByChild.set(name + ":" + CancelScope.isCancelled());
                                        return name;
                                      });
                              running.await();
                              rejected.set(catchThrowable(() -> g.fork("second", () -> "x")));
                              release.countDown();
                              return child;
                            });
                    childTask.set(r);
                  } catch (Throwable e) {
                    runThrew.set(e);
                  }
                });
    boolean ended = owner.join(Duration.ofSeconds(10));
    if (!ended) {
      System.out.println(TaskTree.capture().format());
      owner.interrupt();
    }
    assertThat(ended).as("run returned").isTrue();
    assertThat(rejected.get())
        .isInstanceOf(RejectedExecutionException.class)
        .hasMessageContaining("recycling")
        .hasMessageContaining("new, unstarted thread");
    // the child's result arrived before anything cancelled its task, and the thread is still
    // its own: named "first", and effectively cancelled once the group is
    assertThat(runThrew.get()).isNull();
    assertThat(seenByChild.get()).isEqualTo("first:true");
    assertThat(g.cancelCaught()).isTrue();
  }

  @RepeatedTest(30)
  void forksFromOutsideRacingTheEndOfRunAreEitherWaitedForOrRejected() throws Exception {
    // The class javadoc: fork after run finished throws IllegalStateException; run returns only
    // when every child has finished. A stranger forking while run ends must see one or the other,
    // never a task the group did not wait for.
    TaskGroup g = TaskGroup.named("closing");
    CountDownLatch strangerForking = new CountDownLatch(1);
    List<Task<Integer>> accepted = java.util.Collections.synchronizedList(new ArrayList<>());
    AtomicReference<Throwable> rejection = new AtomicReference<>();
    AtomicReference<Throwable> unexpected = new AtomicReference<>();
    Thread stranger =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    strangerForking.await(); // the group runs
                    for (int i = 0; ; i++) {
                      int n = i;
                      accepted.add(g.fork(() -> n));
                    }
                  } catch (IllegalStateException e) {
                    rejection.set(e);
                  } catch (Throwable e) {
                    unexpected.set(e);
                  }
                });
    g.run(
        () -> {
          strangerForking.countDown();
          Probes.awaitTrue(
              "some forks accepted", Duration.ofSeconds(10), () -> accepted.size() > 2);
        });
    List<Future.State> statesWhenRunReturned =
        List.copyOf(accepted).stream().map(Future::state).toList();
    stranger.join();
    assertThat(unexpected.get()).isNull();
    assertThat(statesWhenRunReturned).isNotEmpty().allMatch(st -> st == Future.State.SUCCESS);
    assertThat(rejection.get())
        .hasMessageContaining("closing")
        .hasMessageContaining("has finished");
    // every accepted task (also any the stranger added after the copy) ended: none was forked
    // into the finished group
    for (Task<Integer> t : accepted) {
      assertThat(t.state()).as(t.toString()).isEqualTo(Future.State.SUCCESS);
    }
  }

  @Test
  void aTaskWaitingForItselfIsRefusedNotADeadlock() throws Exception {
    // Future.get() from the task's own thread could never return with the outcome (FutureTask
    // hangs); asyncio refuses a task awaiting itself. Here it throws at once, and the misuse,
    // rethrown by the work, is the group's failure.
    TaskGroup g = TaskGroup.create();
    AtomicReference<Task<String>> self = new AtomicReference<>();
    CountDownLatch published = new CountDownLatch(1);
    AtomicReference<Throwable> selfGet = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      self.set(
                          g.fork(
                              () -> {
                                published.await();
                                try {
                                  return self.get().get();
                                } catch (Throwable e) {
                                  selfGet.set(e);
                                  throw e;
                                }
                              }));
                      published.countDown();
                    }));
    assertThat(selfGet.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("from its own thread");
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(selfGet.get());
    assertThat(self.get().exceptionNow()).isSameAs(selfGet.get());
  }

  @Test
  void deadlineSettersAfterTheScopeExitedChangeNothingRunning() throws Exception {
    CancelScope s = CancelScope.create();
    s.run(() -> {});
    s.setDeadline(Instant.MIN); // past: would cancel a running scope at once
    s.setTimeout(Duration.ZERO);
    s.setShielded(true);
    assertThat(s.cancelCaught()).isFalse();
    assertThat(s.toString()).contains("done");
    // nothing of the exited scope is left in the live tree
    assertThat(TaskTree.capture().toJson()).doesNotContain(s.toString());

    TaskGroup g = TaskGroup.create();
    g.run(() -> {});
    g.cancelScope().setDeadline(Instant.MIN);
    g.cancelScope().setTimeout(Duration.ZERO);
    assertThat(g.cancelCaught()).isFalse();
    assertThat(g.toString()).contains("done");
    assertThatThrownBy(() -> g.fork(() -> 1)).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void startFromAThreadOutsideTheGroupIsAccepted() throws Exception {
    // "Every method may be called from any thread."
    TaskGroup g = TaskGroup.create();
    AtomicReference<Object> got = new AtomicReference<>();
    CountDownLatch release = new CountDownLatch(1);
    g.run(
        () -> {
          Thread outside =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          got.set(
                              g.start(
                                  signal -> {
                                    signal.started("ready");
                                    release.await();
                                  }));
                        } catch (Throwable e) {
                          got.set(e);
                        }
                      });
          outside.join();
          release.countDown();
        });
    assertThat(got.get()).isEqualTo("ready");
  }

  @Test
  void completingATasksFutureFromOutsideDoesNotChangeTheTask() throws Exception {
    // Task.toCompletableFuture: "completing it from outside does not affect the task".
    TaskGroup g = TaskGroup.create();
    CountDownLatch release = new CountDownLatch(1);
    g.run(
        () -> {
          Task<String> t =
              g.fork(
                  () -> {
                    release.await();
                    return "real";
                  });
          CompletableFuture<String> f = t.toCompletableFuture();
          f.obtrudeValue("fake");
          f.completeExceptionally(new IllegalStateException("fake"));
          assertThat(t.state()).isEqualTo(Future.State.RUNNING);
          release.countDown();
          assertThat(t.get()).isEqualTo("real");
          assertThat(t.toCompletableFuture()).isSameAs(f);
        });
    assertThat(g.cancelCalled()).isFalse();
  }

  @Test
  void aPropagatorRunningTheWorkOnAnotherThreadIsToldSoAndTheWorkDoesNotRun() throws Exception {
    // ContextPropagator: "must call work.run() once, on that thread (a second call, or one from
    // another thread, throws IllegalStateException)"; returning without running it is a failure.
    AtomicReference<Throwable> onOtherThread = new AtomicReference<>();
    AtomicInteger ran = new AtomicInteger();
    TaskGroup g =
        TaskGroup.builder()
            .name("hopping")
            .contextPropagator(
                work ->
                    () -> {
                      Thread other =
                          Thread.ofPlatform()
                              .start(() -> onOtherThread.set(catchThrowable(work::run)));
                      try {
                        other.join();
                      } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                      }
                    })
            .build();
    Throwable thrown = catchThrowable(() -> g.run(() -> g.fork(ran::incrementAndGet)));
    assertThat(ran).hasValue(0);
    assertThat(onOtherThread.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("on another thread")
        .hasMessageContaining("run it on the thread");
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(IllegalStateException.class)
        .extracting(Throwable::getMessage)
        .asString()
        .contains("hopping")
        .contains("without running the work");
  }

  @Test
  void theMostNegativeMaxConcurrencyIsRejectedWithItsValue() {
    TaskGroup.Builder b = TaskGroup.builder().maxConcurrency(2);
    assertThatThrownBy(() -> b.maxConcurrency(Integer.MIN_VALUE))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("at least 1")
        .hasMessageContaining(String.valueOf(Integer.MIN_VALUE));
  }

  @RepeatedTest(10)
  void aThreadFactoryWhoseThreadRunsTheRunnableTwiceDoesNotRunTheWorkTwice() throws Exception {
    runnableRunTwice(false);
    runnableRunTwice(true); // under a context propagator
  }

  private static void runnableRunTwice(boolean propagator) throws Exception {
    // ContextPropagator's rule for its Runnable ("a second call ... throws
    // IllegalStateException") is the closest documented contract; a factory's thread that runs
    // the group's Runnable again must not run the work again, nor count the child twice.
    List<Throwable> secondRun = java.util.Collections.synchronizedList(new ArrayList<>());
    Queue<Thread> made = new ConcurrentLinkedQueue<>();
    TaskGroup.Builder builder = TaskGroup.builder();
    if (propagator) {
      builder.contextPropagator(work -> work);
    }
    TaskGroup g =
        builder
            .name("twice")
            .threadFactory(
                r -> {
                  Thread t =
                      Thread.ofVirtual()
                          .unstarted(
                              () -> {
                                r.run();
                                try {
                                  r.run();
                                } catch (Throwable e) {
                                  secondRun.add(e);
                                }
                              });
                  made.add(t);
                  return t;
                })
            .build();
    AtomicInteger ran = new AtomicInteger();
    CountDownLatch firstDone = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    g.run(
                        () -> {
                          g.fork(
                              () -> {
                                ran.incrementAndGet();
                                firstDone.countDown();
                              });
                          g.fork(
                              () -> {
                                release.await(); // keeps the group open meanwhile
                                return null;
                              });
                          firstDone.await();
                          release.countDown();
                        });
                  } catch (Throwable e) {
                    secondRun.add(new AssertionError("run threw", e));
                  }
                });
    boolean ended = owner.join(Duration.ofSeconds(10));
    if (!ended) {
      System.out.println(TaskTree.capture().format());
      owner.interrupt();
    }
    assertThat(ended).as("run returned").isTrue();
    assertThat(ran).hasValue(1);
    for (Thread t : made) { // the second runs come after the group let go of its children
      assertThat(t.join(Duration.ofSeconds(10))).isTrue();
    }
    // each second run was refused on the factory's thread, saying what was wrong
    assertThat(secondRun)
        .hasSize(2)
        .allSatisfy(
            e ->
                assertThat(e)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("has already run")
                    .hasMessageContaining("exactly once"));
    assertThat(g.cancelCalled()).isFalse();
  }

  @RepeatedTest(5)
  void aThreadFactoryRunningTheRunnableOnAnotherThreadIsNotAHang() throws Exception {
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newSingleThreadExecutor();
    try {
      TaskGroup g =
          TaskGroup.builder()
              .name("elsewhere")
              .threadFactory(r -> Thread.ofVirtual().unstarted(() -> pool.execute(r)))
              .build();
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      Thread owner =
          Thread.ofPlatform()
              .start(() -> thrown.set(catchThrowable(() -> g.run(() -> g.fork(() -> 1)))));
      boolean ended = owner.join(Duration.ofSeconds(5));
      if (!ended) {
        System.out.println(TaskTree.capture().format());
        owner.interrupt();
      }
      assertThat(ended).as("run returned").isTrue();
      assertThat(thrown.get()).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown.get()).failures())
          .singleElement()
          .isInstanceOf(IllegalStateException.class)
          .extracting(Throwable::getMessage, org.assertj.core.api.InstanceOfAssertFactories.STRING)
          .contains("elsewhere", "must run the Runnable it was given itself");
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * A factory whose Runnable runs before the factory returns (on an executor it waits for, or on
   * the forking thread itself), so before the fork has admitted the child: the run used to make the
   * child leave a group it had not joined, wiping the group's list (a live sibling vanished) and
   * taking its count below zero, and run() never returned (2 of 2 modes, every run). The child
   * fails with the documented IllegalStateException; the sibling is still cancelled; run returns.
   */
  @ParameterizedTest(name = "run early on {0}")
  @org.junit.jupiter.params.provider.ValueSource(strings = {"an executor", "the forking thread"})
  void aThreadFactoryRunningTheRunnableBeforeItReturnsLeavesTheGroupWhole(String where)
      throws Exception {
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newSingleThreadExecutor();
    try {
      for (int round = 0; round < 5; round++) {
        java.util.concurrent.atomic.AtomicBoolean misuse =
            new java.util.concurrent.atomic.AtomicBoolean();
        AtomicReference<Throwable> earlyRun = new AtomicReference<>();
        TaskGroup g =
            TaskGroup.builder()
                .name("early")
                .threadFactory(
                    r -> {
                      if (!misuse.getAndSet(false)) {
                        return Thread.ofVirtual().unstarted(r);
                      }
                      Runnable run = () -> earlyRun.set(catchThrowable(r::run));
                      if (where.equals("an executor")) {
                        try {
                          pool.submit(run).get();
                        } catch (Exception e) {
                          throw new AssertionError(e);
                        }
                      } else {
                        run.run();
                      }
                      return Thread.ofVirtual().unstarted(() -> {}); // never runs the child
                    })
                .build();
        CountDownLatch siblingIn = new CountDownLatch(1);
        AtomicReference<Task<String>> misused = new AtomicReference<>();
        Task<?>[] sibling = new Task<?>[1];
        Thread.State[] laterFork = new Thread.State[1];
        Throwable thrown =
            runWithin(
                Duration.ofSeconds(10),
                () ->
                    g.run(
                        () -> {
                          sibling[0] =
                              g.fork(
                                  () -> {
                                    siblingIn.countDown();
                                    Thread.sleep(60_000);
                                    return null;
                                  });
                          siblingIn.await();
                          misuse.set(true);
                          misused.set(g.fork(() -> "never"));
                          assertThat(g.fork(() -> 7).get()).isEqualTo(7); // the group still forks
                          g.cancel();
                        }));
        assertThat(earlyRun.get())
            .isInstanceOf(IllegalStateException.class)
            .hasMessageContaining("must run the Runnable it was given itself");
        assertThat(misused.get().state()).isEqualTo(Future.State.FAILED);
        assertThat(misused.get().exceptionNow()).isInstanceOf(IllegalStateException.class);
        assertThat(sibling[0].state())
            .as("the sibling was cancelled")
            .isEqualTo(Future.State.CANCELLED);
        assertThat(thrown).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) thrown).failures())
            .singleElement()
            .isInstanceOf(IllegalStateException.class);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * A factory that starts the thread it returns ({@code start} for {@code unstarted}): the fork is
   * rejected as documented, and the stray thread's run of the Runnable, before or after the
   * rejection, must leave the group as it was (it took the count below zero: 20 of 20 hung on
   * platform threads).
   */
  @RepeatedTest(20)
  void aThreadFactoryStartingItsThreadIsRejectedAndItsStrayRunLeavesTheGroupWhole()
      throws Exception {
    java.util.concurrent.atomic.AtomicBoolean misuse =
        new java.util.concurrent.atomic.AtomicBoolean();
    CountDownLatch strayRan = new CountDownLatch(1);
    TaskGroup g =
        TaskGroup.builder()
            .name("started-too-soon")
            .threadFactory(
                r ->
                    misuse.getAndSet(false)
                        ? Thread.ofPlatform()
                            .uncaughtExceptionHandler((t, e) -> {})
                            .start(
                                () -> {
                                  try {
                                    r.run();
                                  } finally {
                                    strayRan.countDown();
                                  }
                                })
                        : Thread.ofVirtual().unstarted(r))
            .build();
    AtomicReference<Throwable> rejected = new AtomicReference<>();
    Throwable thrown =
        runWithin(
            Duration.ofSeconds(10),
            () ->
                g.run(
                    () -> {
                      CountDownLatch siblingIn = new CountDownLatch(1);
                      g.fork(
                          () -> {
                            siblingIn.countDown();
                            Thread.sleep(60_000);
                            return null;
                          });
                      siblingIn.await();
                      misuse.set(true);
                      rejected.set(catchThrowable(() -> g.fork(() -> "never")));
                      strayRan.await();
                      assertThat(g.fork(() -> 7).get()).isEqualTo(7);
                      g.cancel();
                    }));
    assertThat(rejected.get())
        .isInstanceOf(RejectedExecutionException.class)
        .hasMessageContaining("already started");
    assertThat(thrown).as("run returned normally, the group cancelled").isNull();
    assertThat(g.cancelCaught()).isTrue();
  }

  /** Runs {@code call} on a platform thread, failing if it has not ended within {@code limit}. */
  private static Throwable runWithin(Duration limit, ThrowingCallable call) throws Exception {
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread t = Thread.ofPlatform().start(() -> thrown.set(catchThrowable(call)));
    if (!t.join(limit)) {
      String tree = TaskTree.capture().format();
      t.interrupt();
      throw new AssertionError("not ended within " + limit + ":\n" + tree);
    }
    return thrown.get();
  }

  @RepeatedTest(5)
  void aThreadFactoryReturningTheForkingThreadIsRejectedAndTheOwnerKeepsItsGroup()
      throws Exception {
    // The worst case of a live thread handed back: the caller of fork itself. The rejection must
    // not make the owner's thread look like a child (its handler is how a thread finds its task).
    TaskGroup g =
        TaskGroup.builder().name("self-serving").threadFactory(r -> Thread.currentThread()).build();
    String name = Thread.currentThread().getName();
    AtomicReference<Throwable> rejected = new AtomicReference<>();
    AtomicReference<Throwable> checkpoint = new AtomicReference<>();
    Thread.UncaughtExceptionHandler handler = Thread.currentThread().getUncaughtExceptionHandler();
    g.run(
        () -> {
          rejected.set(catchThrowable(() -> g.fork(() -> "never")));
          g.cancel("after the rejection");
          checkpoint.set(catchThrowable(CancelScope::checkpoint));
        });
    assertThat(rejected.get())
        .isInstanceOf(RejectedExecutionException.class)
        .hasMessageContaining("self-serving")
        .hasMessageContaining("already started");
    assertThat(checkpoint.get()).isInstanceOf(CancelledException.class);
    assertThat(g.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().getName()).isEqualTo(name);
    assertThat(Thread.currentThread().getUncaughtExceptionHandler()).isSameAs(handler);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @RepeatedTest(5)
  void aRejectedForkOrStartUnderMaxConcurrencyGivesItsPlaceBack() throws Exception {
    // "the work does not run and the group is as it was": with maxConcurrency(1) the place the
    // rejected fork took must be free again, or the next fork waits forever.
    AtomicInteger calls = new AtomicInteger();
    TaskGroup g =
        TaskGroup.builder()
            .maxConcurrency(1)
            .threadFactory(
                r -> {
                  if (calls.incrementAndGet() % 2 == 1) {
                    throw new IllegalStateException("every other thread fails");
                  }
                  return Thread.ofVirtual().unstarted(r);
                })
            .contextPropagator(
                work -> {
                  if (calls.get() == 4) {
                    throw new IllegalStateException("propagator refuses once");
                  }
                  return work;
                })
            .build();
    String result =
        g.call(
            () -> {
              assertThatThrownBy(() -> g.fork(() -> "a"))
                  .isInstanceOf(RejectedExecutionException.class);
              String first = g.fork(() -> "b").get(); // call 2: works
              assertThatThrownBy(() -> g.start(signal -> signal.started("c")))
                  .isInstanceOf(RejectedExecutionException.class); // call 3 throws
              calls.incrementAndGet(); // 4: the propagator refuses the next one
              assertThatThrownBy(() -> g.start(signal -> signal.started("d")))
                  .isInstanceOf(RejectedExecutionException.class);
              calls.incrementAndGet(); // 5 -> the factory's next call is 6: works
              String started = g.start(signal -> signal.started("e"));
              return first + started;
            });
    assertThat(result).isEqualTo("be");
  }
}
