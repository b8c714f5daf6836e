package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import dev.taskgroup.Fixtures.Trail;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.DataFormatException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Deadlines and the clock they run on: {@code moveOnAfter}, {@code failAfter}, deadlines in the
 * past, changing a deadline while running, {@code deadline()}, group deadlines, and deadlines
 * racing with cancels and with the end of the body.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeadlineTest {
  /** Generous bound for "promptly" on a loaded 2-core machine, for deadlines of ~20 ms. */
  private static final long PROMPT_MS = 1_500;

  @AfterEach
  void clearStatus() {
    Thread.interrupted(); // a failing test must not poison the next one
  }

  private static boolean interrupted() {
    return Thread.currentThread().isInterrupted();
  }

  // ---- moveOnAfter / failAfter --------------------------------------------------------------

  @Test
  void moveOnAfterReturnsNullOnTimeoutAfterCancellingTheBody() throws Exception {
    Trail trail = new Trail();
    long t0 = System.nanoTime();
    String result =
        CancelScope.moveOnAfter(
            Duration.ofMillis(20),
            () -> {
              try {
                Thread.sleep(10_000);
                trail.add("sleep completed");
              } catch (InterruptedException e) {
                trail.add("sleep threw; cancelled=" + CancelScope.isCancelled());
                throw e;
              }
              return "too late";
            });
    long ms = Probes.millis(System.nanoTime() - t0);
    System.out.printf("moveOnAfter(20 ms) around a 10 s sleep returned after %d ms%n", ms);
    assertThat(result).isNull();
    assertThat(trail.events()).containsExactly("sleep threw; cancelled=true");
    assertThat(ms).isGreaterThanOrEqualTo(19).isLessThan(PROMPT_MS);
    assertThat(interrupted()).isFalse();
  }

  @Test
  void moveOnAfterReturnsTheResultWhenTheBodyIsFast() throws Exception {
    String result = CancelScope.moveOnAfter(Duration.ofSeconds(10), () -> "fast");
    assertThat(result).isEqualTo("fast");
    assertThat(interrupted()).isFalse();
    Thread.sleep(1); // nothing pending
  }

  @Test
  void checkedExceptionFromTheBodyPassesThroughMoveOnAfterAndFailAfterUnchanged() {
    IOException io = new IOException("disk on fire");
    IOException fromMove =
        catchThrowableOfType(
            IOException.class,
            () ->
                CancelScope.moveOnAfter(
                    Duration.ofHours(1),
                    () -> {
                      throw io;
                    }));
    IOException fromFail =
        catchThrowableOfType(
            IOException.class,
            () ->
                CancelScope.failAfter(
                    Duration.ofHours(1),
                    () -> {
                      throw io;
                    }));
    assertThat(fromMove).isSameAs(io);
    assertThat(fromFail).isSameAs(io);
    assertThat(interrupted()).isFalse();
  }

  @Test
  void checkedFailureThrownAfterTheDeadlineCancelledTheBodyIsStillAFailure() {
    // Not a cancellation-family exception: a failure, never lost, even right after the timeout.
    DataFormatException failure = new DataFormatException("cleanup failed");
    DataFormatException thrown =
        catchThrowableOfType(
            DataFormatException.class,
            () ->
                CancelScope.moveOnAfter(
                    Duration.ofMillis(10),
                    () -> {
                      try {
                        Thread.sleep(10_000);
                      } catch (InterruptedException e) {
                        throw failure;
                      }
                      return "unreachable";
                    }));
    assertThat(thrown).isSameAs(failure);
    assertThat(interrupted()).as("the library's interrupt left with its scope").isFalse();
  }

  @Test
  void failAfterThrowsTimeoutExceptionOnTimeout() {
    Trail trail = new Trail();
    long t0 = System.nanoTime();
    Throwable thrown =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofMillis(20),
                    () -> {
                      try {
                        Thread.sleep(10_000);
                      } catch (InterruptedException e) {
                        trail.add("body cancelled");
                        throw e;
                      }
                      return "too late";
                    }));
    long ms = Probes.millis(System.nanoTime() - t0);
    System.out.printf("failAfter(20 ms) threw after %d ms: %s%n", ms, thrown);
    assertThat(thrown).isExactlyInstanceOf(TimeoutException.class);
    assertThat(trail.events()).containsExactly("body cancelled");
    assertThat(ms).isLessThan(PROMPT_MS);
    assertThat(interrupted()).isFalse();
  }

  @Test
  void failAfterWhoseBodySwallowsTheCancellationReturnsTheResult() throws Exception {
    Trail trail = new Trail();
    String result =
        CancelScope.failAfter(
            Duration.ofMillis(20),
            () -> {
              try {
                Thread.sleep(10_000);
              } catch (InterruptedException swallowed) {
                trail.add("swallowed");
              }
              return "completed anyway";
            });
    assertThat(result).isEqualTo("completed anyway");
    assertThat(trail.events()).containsExactly("swallowed");
    assertThat(interrupted()).isFalse();
    Thread.sleep(30); // no interrupt of the library is left behind, not even a late one
  }

  @Test
  void failAfterReturnsTheResultWhenTheBodyIsFast() throws Exception {
    assertThat(CancelScope.failAfter(Duration.ofSeconds(10), () -> 42)).isEqualTo(42);
  }

  // ---- a deadline in the past, a zero timeout ------------------------------------------------

  static Stream<Arguments> alreadyExpired() {
    return Stream.of(
        Arguments.of(
            "withDeadline(now - 5 s)",
            (java.util.function.Supplier<CancelScope>)
                () -> CancelScope.withDeadline(Instant.now().minusSeconds(5))),
        Arguments.of(
            "withTimeout(0)",
            (java.util.function.Supplier<CancelScope>)
                () -> CancelScope.withTimeout(Duration.ZERO)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("alreadyExpired")
  void expiredDeadlineCancelsAtOnceAndTheFirstCheckpointThrows(
      String name, java.util.function.Supplier<CancelScope> make) throws Exception {
    CancelScope scope = make.get();
    Trail trail = new Trail();
    scope.run(
        () -> {
          trail.add("body starts; cancelled=" + CancelScope.isCancelled());
          CancelScope.checkpoint();
          trail.add("after the first checkpoint");
        });
    assertThat(trail.events()).containsExactly("body starts; cancelled=true");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(interrupted()).isFalse();
  }

  @Test
  void zeroTimeoutMovesOnAndFailsAtOnce() throws Exception {
    AtomicBoolean ran = new AtomicBoolean();
    String moved =
        CancelScope.moveOnAfter(
            Duration.ZERO,
            () -> {
              ran.set(true);
              CancelScope.checkpoint();
              return "not cancelled?";
            });
    assertThat(moved).isNull();
    assertThat(ran).isTrue();
    Throwable failed =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      Thread.sleep(10_000);
                      return "not cancelled?";
                    }));
    assertThat(failed).isInstanceOf(TimeoutException.class);
    assertThat(interrupted()).isFalse();
  }

  @Test
  void settingADeadlineInThePastWhileRunningCancelsBeforeTheSetterReturns() throws Exception {
    CancelScope scope = CancelScope.create();
    Trail trail = new Trail();
    scope.run(
        () -> {
          scope.setDeadline(Instant.now().minusSeconds(5));
          trail.add("cancelled=" + CancelScope.isCancelled() + " interrupted=" + interrupted());
          CancelScope.checkpoint();
          trail.add("unreachable");
        });
    assertThat(trail.events()).containsExactly("cancelled=true interrupted=true");
    assertThat(scope.cancelCaught()).isTrue();
  }

  // ---- changing the deadline while running ---------------------------------------------------

  static Stream<Arguments> earlierDeadlines() {
    return Stream.of(
        Arguments.of(
            "setTimeout", (Consumer<CancelScope>) s -> s.setTimeout(Duration.ofMillis(20))),
        Arguments.of(
            "setDeadline",
            (Consumer<CancelScope>) s -> s.setDeadline(Instant.now().plusMillis(20))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("earlierDeadlines")
  void earlierDeadlineSetFromAnotherThreadFiresPromptly(String name, Consumer<CancelScope> change)
      throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofHours(1));
    CountDownLatch blocking = new CountDownLatch(1);
    AtomicLong changedAt = new AtomicLong();
    Thread changer =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    blocking.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  changedAt.set(System.nanoTime());
                  change.accept(scope);
                });
    long[] threwAt = new long[1];
    scope.run(
        () -> {
          blocking.countDown();
          try {
            Thread.sleep(10_000);
          } finally {
            threwAt[0] = System.nanoTime();
          }
        });
    changer.join();
    long ms = Probes.millis(threwAt[0] - changedAt.get());
    System.out.printf("%s(20 ms) while running: the body was cancelled %d ms later%n", name, ms);
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(ms).isLessThan(PROMPT_MS);
    assertThat(interrupted()).isFalse();
  }

  static Stream<Arguments> laterDeadlines() {
    return Stream.of(
        Arguments.of(
            "setTimeout", (Consumer<CancelScope>) s -> s.setTimeout(Duration.ofSeconds(20))),
        Arguments.of(
            "setDeadline",
            (Consumer<CancelScope>) s -> s.setDeadline(Instant.now().plusSeconds(20))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("laterDeadlines")
  void laterDeadlinePostponesSoABodyThatFinishesBeforeItIsNotCancelled(
      String name, Consumer<CancelScope> change) throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(300));
    long t0 = System.nanoTime();
    String result =
        scope.call(
            () -> {
              change.accept(scope);
              Thread.sleep(600); // well past the first deadline, well before the new one
              CancelScope.checkpoint();
              return "finished";
            });
    System.out.printf(
        "%s(20 s) replaced a 300 ms timeout; body of 600 ms finished after %d ms%n",
        name, Probes.millis(System.nanoTime() - t0));
    assertThat(result).isEqualTo("finished");
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(interrupted()).isFalse();
  }

  // ---- deadline() ----------------------------------------------------------------------------

  @Test
  void deadlineIsEmptyWhenNoneIsSet() throws Exception {
    CancelScope scope = CancelScope.create();
    assertThat(scope.deadline()).isEmpty();
    scope.run(() -> assertThat(scope.deadline()).isEmpty());
    assertThat(scope.deadline()).isEmpty();
    assertThat(TaskGroup.create().cancelScope().deadline()).isEmpty();
  }

  @Test
  void deadlineIsTheInstantAsSetBeforeAndWhileRunning() throws Exception {
    Instant at = Instant.now().plusSeconds(3600).plusNanos(123_456_789);
    CancelScope scope = CancelScope.withDeadline(at);
    assertThat(scope.deadline()).contains(at);
    AtomicReference<Instant> inside = new AtomicReference<>();
    Instant later = at.plusSeconds(60).plusNanos(1);
    scope.run(
        () -> {
          inside.set(scope.deadline().orElseThrow());
          scope.setDeadline(later);
        });
    assertThat(inside.get()).isEqualTo(at);
    assertThat(scope.deadline()).contains(later);
  }

  @Test
  void relativeTimeoutHasNoDeadlineBeforeRunAndAboutNowPlusTimeoutWhileRunning() throws Exception {
    Duration timeout = Duration.ofMinutes(10);
    CancelScope scope = CancelScope.withTimeout(timeout);
    assertThat(scope.deadline()).as("a relative timeout starts with run").isEmpty();
    Instant before = Instant.now();
    AtomicReference<Instant> seen = new AtomicReference<>();
    AtomicReference<Instant> insideNow = new AtomicReference<>();
    AtomicReference<Instant> afterSetTimeout = new AtomicReference<>();
    AtomicReference<Instant> setAt = new AtomicReference<>();
    scope.run(
        () -> {
          seen.set(scope.deadline().orElseThrow());
          insideNow.set(Instant.now());
          setAt.set(Instant.now());
          scope.setTimeout(Duration.ofMinutes(20));
          afterSetTimeout.set(scope.deadline().orElseThrow());
        });
    System.out.printf(
        "withTimeout(10 min): before run %s, deadline while running %s%n", before, seen.get());
    Duration slack = Duration.ofMillis(50); // wall-clock granularity
    assertThat(seen.get())
        .isBetween(before.plus(timeout).minus(slack), insideNow.get().plus(timeout).plus(slack));
    assertThat(afterSetTimeout.get())
        .isBetween(
            setAt.get().plus(Duration.ofMinutes(20)).minus(slack),
            Instant.now().plus(Duration.ofMinutes(20)).plus(slack));
  }

  @Test
  void groupTimeoutShowsAsTheGroupScopesDeadlineOnceRunning() throws Exception {
    TaskGroup group = TaskGroup.builder().timeout(Duration.ofMinutes(10)).build();
    assertThat(group.cancelScope().deadline()).isEmpty();
    Instant before = Instant.now();
    AtomicReference<Instant> seen = new AtomicReference<>();
    group.run(() -> seen.set(group.cancelScope().deadline().orElseThrow()));
    assertThat(seen.get())
        .isBetween(
            before.plus(Duration.ofMinutes(10)).minusMillis(50),
            Instant.now().plus(Duration.ofMinutes(10)).plusMillis(50));
  }

  // ---- group deadlines -----------------------------------------------------------------------

  private static void groupDeadlineCancelsBodyAndChildren(
      ThreadKind kind, TaskGroup.Builder builder, Consumer<TaskGroup> inBody) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = builder.name("deadline").threadFactory(threads).build();
    int children = 4;
    CountDownLatch started = new CountDownLatch(children);
    Trail trail = new Trail();
    List<Task<Void>> tasks = new ArrayList<>();
    java.util.concurrent.atomic.AtomicInteger ran = new java.util.concurrent.atomic.AtomicInteger();
    long t0 = System.nanoTime();
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            tasks.add(
                group.fork(
                    () -> {
                      ran.incrementAndGet();
                      started.countDown();
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException e) {
                        trail.add("child cancelled");
                        throw e;
                      }
                    }));
          }
          try {
            started.await(); // on a loaded machine the deadline may fire here already
            inBody.accept(group);
            Thread.sleep(60_000);
          } catch (InterruptedException e) {
            trail.add("body cancelled");
            throw e;
          }
        });
    long ms = Probes.millis(System.nanoTime() - t0);
    System.out.printf(
        "group with a ~30 ms deadline (%s children) returned after %d ms%n", kind, ms);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(group.cancelScope().cancelReason())
        .hasValueSatisfying(r -> assertThat(r).containsIgnoringCase("deadline"));
    assertThat(tasks).allSatisfy(t -> assertThat(t.state()).isEqualTo(Future.State.CANCELLED));
    // Every child that ran was cancelled in its sleep (one the deadline beat never ran at all).
    assertThat(trail.events()).containsOnly("child cancelled", "body cancelled");
    assertThat(trail.events()).filteredOn("body cancelled"::equals).hasSize(1);
    assertThat(trail.events()).filteredOn("child cancelled"::equals).hasSize(ran.get());
    assertThat(ms).isLessThan(PROMPT_MS + 1_000);
    threads.assertAllDone();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void builderTimeoutCancelsBodyAndChildrenAndRunReturnsNormally(ThreadKind kind) throws Exception {
    groupDeadlineCancelsBodyAndChildren(
        kind, TaskGroup.builder().timeout(Duration.ofMillis(30)), g -> {});
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void groupScopeSetTimeoutWhileRunningCancelsBodyAndChildren(ThreadKind kind) throws Exception {
    groupDeadlineCancelsBodyAndChildren(
        kind, TaskGroup.builder(), g -> g.cancelScope().setTimeout(Duration.ofMillis(30)));
  }

  @Test
  void groupScopeSetTimeoutBeforeRunCountsFromRun() throws Exception {
    TaskGroup group = TaskGroup.create();
    group.cancelScope().setTimeout(Duration.ofMillis(30));
    assertThat(group.cancelScope().deadline()).isEmpty();
    long t0 = System.nanoTime();
    group.run(() -> Thread.sleep(60_000));
    System.out.printf(
        "group scope setTimeout(30 ms) before run: returned after %d ms%n",
        Probes.millis(System.nanoTime() - t0));
    assertThat(group.cancelCaught()).isTrue();
  }

  @Test
  void groupTimeoutZeroStartsCancelled() throws Exception {
    TaskGroup group = TaskGroup.builder().timeout(Duration.ZERO).build();
    Trail trail = new Trail();
    group.run(
        () -> {
          trail.add("body starts; cancelled=" + CancelScope.isCancelled());
          CancelScope.checkpoint();
          trail.add("unreachable");
        });
    assertThat(trail.events()).containsExactly("body starts; cancelled=true");
    assertThat(group.cancelCaught()).isTrue();
  }

  @Test
  void cancelReasonAfterADeadlineSaysSoAndIsKeptOverALaterCancel() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(5));
    assertThat(scope.cancelReason()).isEmpty();
    scope.run(() -> Thread.sleep(10_000));
    scope.cancel("too late to matter");
    assertThat(scope.cancelReason())
        .hasValueSatisfying(r -> assertThat(r).containsIgnoringCase("deadline"));
  }

  // ---- races ---------------------------------------------------------------------------------

  /**
   * An inner deadline and an outer {@code cancel()} land at about the same moment; the inner body
   * leaves only once both are in. The outermost cancelled scope absorbs; the inner scope does not,
   * whichever came first.
   */
  @RepeatedTest(20)
  void innerDeadlineAndOuterCancelAtOnceAreAbsorbedByTheOuter() throws Exception {
    long seed = Probes.seed("deadlineRace.seed", "innerDeadlineAndOuterCancelAtOnce");
    SplittableRandom random = new SplittableRandom(seed);
    long jitterNanos = random.nextLong(-2_000_000L, 2_000_000L);
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.withTimeout(Duration.ofMillis(5));
    CountDownLatch innerRunning = new CountDownLatch(1);
    Trail trail = new Trail();
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    innerRunning.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  Instant at = inner.deadline().orElseThrow();
                  long when =
                      System.nanoTime()
                          + Duration.between(Instant.now(), at).toNanos()
                          + jitterNanos;
                  while (System.nanoTime() - when < 0L) {
                    Thread.onSpinWait();
                  }
                  outer.cancel();
                });
    outer.run(
        () -> {
          inner.run(
              () -> {
                innerRunning.countDown();
                try {
                  Thread.sleep(10_000);
                } catch (InterruptedException e) {
                  Probes.awaitTrue(
                      "both cancellations in",
                      Duration.ofSeconds(5),
                      () -> outer.cancelCalled() && inner.cancelCalled());
                  throw e;
                }
              });
          trail.add("after inner: unreachable, the outer cancel is visible");
        });
    canceller.join();
    assertThat(trail.events()).isEmpty();
    assertThat(inner.cancelCalled()).isTrue();
    assertThat(outer.cancelCalled()).isTrue();
    assertThat(inner.cancelCaught()).as("inner absorbs with a cancelled outer visible").isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(interrupted()).isFalse();
  }

  /** The same race between a child's deadline and its group's cancel(). */
  @RepeatedTest(10)
  void childDeadlineAndGroupCancelAtOnceAreAbsorbedByTheGroup() throws Exception {
    TaskGroup group = TaskGroup.create();
    CancelScope inner = CancelScope.withTimeout(Duration.ofMillis(5));
    CountDownLatch innerRunning = new CountDownLatch(1);
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    inner.run(
                        () -> {
                          innerRunning.countDown();
                          try {
                            Thread.sleep(10_000);
                          } catch (InterruptedException e) {
                            Probes.awaitTrue(
                                "both cancellations in",
                                Duration.ofSeconds(5),
                                () -> group.cancelCalled() && inner.cancelCalled());
                            throw e;
                          }
                        });
                  }));
          innerRunning.await();
          Instant at = inner.deadline().orElseThrow();
          long when = System.nanoTime() + Duration.between(Instant.now(), at).toNanos();
          while (System.nanoTime() - when < 0L) {
            Thread.onSpinWait();
          }
          group.cancel();
        });
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  /**
   * The deadline fires while the body is finishing (deadline ~ the body's length), many times,
   * blocking and busy bodies: never an interrupt left on the thread afterwards, and {@code
   * cancelCaught()} exactly when the body was cut short.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void deadlineFiringAsTheBodyFinishesNeverLeaksAnInterrupt(ThreadKind kind) throws Exception {
    long seed = Probes.seed("deadlineFinish.seed", "deadlineFiringAsTheBodyFinishes " + kind);
    int rounds = 1_000;
    int[] outcomes = new int[3]; // cut short, finished (blocking), finished (busy)
    Probes.onThread(
        kind,
        () -> {
          SplittableRandom random = new SplittableRandom(seed);
          for (int i = 0; i < rounds; i++) {
            long timeoutNanos = random.nextLong(100_000L, 1_500_000L);
            long bodyNanos = random.nextLong(100_000L, 1_500_000L);
            boolean busy = random.nextBoolean();
            boolean viaMoveOnAfter = random.nextBoolean();
            assertThat(interrupted()).as("round %d starts with a clear status", i).isFalse();
            CancelScope scope = CancelScope.withTimeout(Duration.ofNanos(timeoutNanos));
            AtomicBoolean cutShort = new AtomicBoolean();
            String result;
            try {
              CancelScope.Computation<String, RuntimeException> body =
                  bodyOfLength(bodyNanos, busy, cutShort);
              result =
                  viaMoveOnAfter
                      ? CancelScope.moveOnAfter(Duration.ofNanos(timeoutNanos), body)
                      : scope.call(body);
            } catch (InterruptedException e) {
              throw new AssertionError(
                  "round " + i + " (seed " + seed + "): an interrupt escaped the scope", e);
            }
            String where = "round " + i + " (seed " + seed + ")";
            assertThat(interrupted()).as("%s: interrupt left after exit", where).isFalse();
            if (!viaMoveOnAfter) {
              assertThat(scope.cancelCaught())
                  .as("%s: cancelCaught", where)
                  .isEqualTo(cutShort.get());
            }
            assertThat(result).as("%s: result", where).isEqualTo(cutShort.get() ? null : "done");
            outcomes[cutShort.get() ? 0 : busy ? 2 : 1]++;
          }
          Thread.sleep(30); // a late stray interrupt would land here
        });
    System.out.printf(
        "deadline ~ body length, %d rounds on %s: cut short %d, blocking body finished %d,"
            + " busy body finished %d%n",
        rounds, kind, outcomes[0], outcomes[1], outcomes[2]);
  }

  /**
   * A body that spins ({@code busy}) or sleeps for {@code nanos}, then returns "done"; a sleep cut
   * short by the deadline sets {@code cutShort}.
   */
  private static CancelScope.Computation<String, RuntimeException> bodyOfLength(
      long nanos, boolean busy, AtomicBoolean cutShort) {
    return () -> {
      if (busy) {
        long until = System.nanoTime() + nanos;
        while (System.nanoTime() - until < 0L) {
          Thread.onSpinWait();
        }
      } else {
        try {
          Thread.sleep(Duration.ofNanos(nanos)); // the blocking body under test
        } catch (InterruptedException e) {
          cutShort.set(true);
          throw e;
        }
      }
      return "done";
    };
  }

  // ---- resources -----------------------------------------------------------------------------

  @Test
  void manyMoveOnAfterCallsDoNotGrowTheHeap() throws Exception {
    int calls = 200_000;
    Duration hour = Duration.ofHours(1);
    for (int i = 0; i < 1_000; i++) { // warm up, so class loading and JIT are not counted
      CancelScope.moveOnAfter(hour, () -> "x");
    }
    long before = Probes.usedHeapAfterGc();
    long t0 = System.nanoTime();
    long sum = 0;
    for (int i = 0; i < calls; i++) {
      final int n = i;
      Integer r = CancelScope.moveOnAfter(hour, () -> n);
      sum += r;
    }
    long elapsed = System.nanoTime() - t0;
    long after = Probes.usedHeapAfterGc();
    System.out.printf(
        "%d moveOnAfter(1 h) calls in %d ms (%.2f us each): used heap after GC %.1f MiB before,"
            + " %.1f MiB after, growth %.2f MiB%n",
        calls,
        Probes.millis(elapsed),
        elapsed / 1_000.0 / calls,
        Probes.mib(before),
        Probes.mib(after),
        Probes.mib(after - before));
    assertThat(sum).isEqualTo((long) calls * (calls - 1) / 2);
    assertThat(after - before).as("heap growth in bytes").isLessThan(10L * 1024 * 1024);
    assertThat(interrupted()).isFalse();
  }
}
