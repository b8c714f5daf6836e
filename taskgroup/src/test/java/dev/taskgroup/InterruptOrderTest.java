package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Trail;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Interrupt bookkeeping in every order: the library's interrupt never survives its scope's exit,
 * and an interrupt from outside is never lost where the javadoc promises it: pending when the
 * cancellation is delivered, arriving while the status is clear, or arriving while a group's owner
 * waits for its children. Only one that arrives while the library's own interrupt is pending may be
 * absorbed with it.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class InterruptOrderTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static boolean interrupted() {
    return Thread.currentThread().isInterrupted();
  }

  // ---- outside, then cancel ------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void outsideInterruptThenCancelThenBlockingIsSetAgainAfterTheAbsorbingScope(ThreadKind kind)
      throws Exception {
    CancelScope scope = CancelScope.create();
    CountDownLatch inScope = new CountDownLatch(1);
    AtomicReference<Thread> target = new AtomicReference<>();
    AtomicBoolean statusAfter = new AtomicBoolean();
    OutsideInterrupter outsider = OutsideInterrupter.once(inScope, target::get);
    Probes.onThread(
        kind,
        () -> {
          target.set(Thread.currentThread());
          scope.run(
              () -> {
                inScope.countDown();
                Probes.awaitTrue(
                    "the outside interrupt",
                    Duration.ofSeconds(5),
                    InterruptOrderTest::interrupted);
                scope.cancel();
                Thread.sleep(10_000); // throws at once, consuming the status
              });
          statusAfter.set(interrupted());
        });
    outsider.join();
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(statusAfter).as("the outside interrupt is set again after the scope").isTrue();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void outsideInterruptThenCancelWithNothingBlockingStaysSetAfterExit(ThreadKind kind)
      throws Exception {
    CancelScope scope = CancelScope.create();
    CountDownLatch inScope = new CountDownLatch(1);
    AtomicReference<Thread> target = new AtomicReference<>();
    AtomicBoolean statusAfter = new AtomicBoolean();
    OutsideInterrupter outsider = OutsideInterrupter.once(inScope, target::get);
    Probes.onThread(
        kind,
        () -> {
          target.set(Thread.currentThread());
          scope.run(
              () -> {
                inScope.countDown();
                Probes.awaitTrue(
                    "the outside interrupt",
                    Duration.ofSeconds(5),
                    InterruptOrderTest::interrupted);
                scope.cancel();
              });
          statusAfter.set(interrupted());
        });
    outsider.join();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(statusAfter).isTrue();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void ownerInterruptedFromOutsideThenGroupCancelThrowsInterruptedException(ThreadKind kind)
      throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch childStarted = new CountDownLatch(1);
    AtomicReference<Thread> owner = new AtomicReference<>();
    Trail trail = new Trail();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    OutsideInterrupter outsider = OutsideInterrupter.once(childStarted, owner::get);
    Probes.onThread(
        kind,
        () -> {
          owner.set(Thread.currentThread());
          thrown.set(
              catchThrowable(
                  () ->
                      group.run(
                          () -> {
                            group.fork(
                                () -> {
                                  childStarted.countDown();
                                  try {
                                    Thread.sleep(60_000);
                                  } finally {
                                    trail.add("child ended");
                                  }
                                });
                            Probes.awaitTrue(
                                "the outside interrupt",
                                Duration.ofSeconds(5),
                                InterruptOrderTest::interrupted);
                            group.cancel();
                            Thread.sleep(60_000);
                          })));
          trail.add("run ended");
        });
    outsider.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(trail.events()).containsExactly("child ended", "run ended");
  }

  // ---- cancel, then outside while the status is clear ----------------------------------------
  //
  // Not tested, because it cannot be guaranteed: once the library has interrupted a thread for a
  // cancellation, a JDK call (or user code) that consumes that interrupt leaves no trace the
  // library can see, so an outside interrupt that arrives after the consumption and before the
  // library next looks is indistinguishable from its own still-pending one. CancelScope's javadoc
  // ("Interrupts") lets
  // such an interrupt be absorbed when the library's is pending; the library treats "consumed
  // but not yet observed" as pending. Where it can tell (the interrupt was pending before the
  // cancel, arrived while an owner waited for its children, or after the exit) it never loses
  // one: the tests around this comment.

  // ---- outside while the owner waits for its children ----------------------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void outsideInterruptWhileTheOwnerWaitsForACancelledGroupsChildrenIsThrown(ThreadKind kind)
      throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch childStarted = new CountDownLatch(1);
    CountDownLatch inCleanup = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch bodyReturning = new CountDownLatch(1);
    AtomicReference<Thread> owner = new AtomicReference<>();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Trail trail = new Trail();
    OutsideInterrupter outsider = // interrupts the owner in the join, then lets the child end
        OutsideInterrupter.onceWaiting(bodyReturning, owner::get, release::countDown);
    Probes.onThread(
        kind,
        () -> {
          owner.set(Thread.currentThread());
          thrown.set(
              catchThrowable(
                  () ->
                      group.run(
                          () -> {
                            group.fork(
                                () -> {
                                  try {
                                    childStarted.countDown();
                                    Thread.sleep(60_000);
                                  } finally {
                                    CancelScope.shielded()
                                        .run(
                                            () -> {
                                              inCleanup.countDown();
                                              release.await();
                                              trail.add("child cleanup done");
                                            });
                                  }
                                });
                            childStarted.await();
                            group.cancel();
                            try {
                              inCleanup.await(); // throws at once: the body is cancelled too
                            } finally {
                              bodyReturning.countDown();
                            }
                          })));
          trail.add("run ended");
        });
    outsider.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught())
        .as("outside interrupt wins over the group's own cancel")
        .isFalse();
    assertThat(trail.events()).containsExactly("child cleanup done", "run ended");
  }

  /**
   * The body cancels its group and returns with the library's interrupt still pending; the outsider
   * interrupts the owner once it is parked waiting for the child.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void outsideInterruptWhileTheOwnerWaitsWithItsCancelInterruptPendingIsThrown(ThreadKind kind)
      throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch bodyReturning = new CountDownLatch(1);
    CountDownLatch childStarted = new CountDownLatch(1);
    AtomicReference<Thread> owner = new AtomicReference<>();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    OutsideInterrupter outsider = // interrupts the owner in the join, then lets the child end
        OutsideInterrupter.onceWaiting(bodyReturning, owner::get, release::countDown);
    Probes.onThread(
        kind,
        () -> {
          owner.set(Thread.currentThread());
          thrown.set(
              catchThrowable(
                  () ->
                      group.run(
                          () -> {
                            group.fork(
                                () ->
                                    CancelScope.shielded()
                                        .run(
                                            () -> {
                                              childStarted.countDown();
                                              release.await();
                                            }));
                            childStarted.await();
                            group.cancel(); // the library's interrupt is pending on the owner
                            bodyReturning.countDown(); // and the body returns with it pending
                          })));
        });
    outsider.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCaught()).isFalse();
  }

  // ---- races ---------------------------------------------------------------------------------

  /**
   * A scope's body returns while another thread cancels the scope, many times: whether the cancel
   * lands inside or after, no interrupt of the library is left on the thread once the scope exited
   * and that cancel() call returned. The canceller runs free, cancelling each new scope once after
   * a random pause, and says which scope it is cancelling; the target checks its status once no
   * cancel of the scope it left can still be running. Seeded: -DexitRace.seed=N replays the pauses.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancelRacingWithTheScopesExitNeverLeavesTheLibrarysInterrupt(ThreadKind kind)
      throws Exception {
    long seed = Probes.seed("exitRace.seed", "cancelRacingWithExit " + kind);
    int[] counts = new int[3]; // delivered inside, not delivered inside, leaked
    List<Integer> leaks = new ArrayList<>();
    AtomicReference<CancelScope> current = new AtomicReference<>();
    AtomicReference<CancelScope> inFlight = new AtomicReference<>();
    AtomicBoolean stop = new AtomicBoolean();
    int[] completed = new int[1];
    Thread canceller =
        Thread.ofPlatform()
            .start(
                () -> {
                  SplittableRandom random = new SplittableRandom(seed);
                  CancelScope last = null;
                  while (!stop.get()) {
                    CancelScope s = current.get();
                    if (s == null || s == last) {
                      Thread.onSpinWait();
                      continue;
                    }
                    last = s;
                    spin(random.nextLong(0, 3_000));
                    inFlight.set(s); // before the cancel: the target waits for it to end
                    s.cancel();
                    inFlight.set(null);
                  }
                });
    try {
      Probes.onThread(
          kind,
          () -> {
            SplittableRandom random = new SplittableRandom(~seed);
            long start = System.nanoTime();
            for (int r = 0; r < 200_000 && System.nanoTime() - start < BUDGET_NANOS; r++) {
              completed[0] = r + 1;
              CancelScope scope = CancelScope.create();
              long bodyNanos = random.nextLong(0, 3_000);
              boolean[] seenInside = new boolean[1];
              current.set(scope);
              scope.run(
                  () -> {
                    spin(bodyNanos);
                    seenInside[0] = interrupted();
                  });
              while (inFlight.get() == scope) { // a cancel of this scope may still deliver
                Thread.onSpinWait();
              }
              if (interrupted()) {
                counts[2]++;
                if (leaks.size() < 10) {
                  leaks.add(r);
                }
                Thread.interrupted();
              } else {
                counts[seenInside[0] ? 0 : 1]++;
              }
            }
          });
    } finally {
      stop.set(true);
      canceller.join();
    }
    System.out.printf(
        "cancel racing with exit, %d rounds on %s: delivered inside %d, not inside %d,"
            + " leaked after exit %d (first rounds %s)%n",
        completed[0], kind, counts[0], counts[1], counts[2], leaks);
    assertThat(counts[2])
        .as("rounds (seed %d) leaving the library's interrupt set after exit: %s", seed, leaks)
        .isZero();
  }

  /** How long each race test runs rounds for (the machine is slow and shared). */
  private static final long BUDGET_NANOS = TimeUnit.SECONDS.toNanos(2);

  private static void spin(long nanos) {
    long until = System.nanoTime() + nanos;
    while (System.nanoTime() - until < 0L) {
      Thread.onSpinWait();
    }
  }

  /**
   * A scope cancels itself and exits (after a blocking call threw, or with the library's interrupt
   * still pending) while another thread interrupts it at a random moment. One that arrived before
   * the cancel or after the exit must be set after the exit; one that arrived while the library's
   * own was pending, or after a JDK call consumed it (see the comment on the "while the status is
   * clear" section), may be absorbed. Seeded: -DoutsideRace.seed=N replays.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancelAndExitRacingWithAnOutsideInterruptLoseItOnlyWhereTheSpecAllows(ThreadKind kind)
      throws Exception {
    long seed = Probes.seed("outsideRace.seed", "outsideRace " + kind);
    int rounds = 5_000; // at most; the loop stops after BUDGET
    int[] completed = new int[1];
    SplittableRandom random = new SplittableRandom(seed);
    long[] delays = new long[rounds];
    boolean[] blocking = new boolean[rounds];
    for (int i = 0; i < rounds; i++) {
      delays[i] = random.nextLong(0, 40_000);
      blocking[i] = random.nextBoolean();
    }
    long[][] t = new long[rounds][5]; // cancel, status clear again, exit, interrupt a1, a2
    boolean[] setAfter = new boolean[rounds];
    AtomicInteger goRound = new AtomicInteger(-1);
    AtomicInteger doneRound = new AtomicInteger(-1);
    AtomicReference<Thread> target = new AtomicReference<>();
    AtomicBoolean stop = new AtomicBoolean();
    Thread outsider =
        Thread.ofPlatform()
            .start(
                () -> {
                  for (int r = 0; r < rounds && !stop.get(); r++) {
                    while (goRound.get() < r) {
                      if (stop.get()) {
                        return;
                      }
                      Thread.onSpinWait();
                    }
                    spin(delays[r]);
                    t[r][3] = System.nanoTime();
                    target.get().interrupt();
                    t[r][4] = System.nanoTime();
                    doneRound.set(r);
                  }
                });
    try {
      Probes.onThread(
          kind,
          () -> {
            target.set(Thread.currentThread());
            long start = System.nanoTime();
            for (int r = 0; r < rounds && System.nanoTime() - start < BUDGET_NANOS; r++) {
              completed[0] = r + 1;
              final int round = r;
              CancelScope scope = CancelScope.create();
              goRound.set(round);
              spin(delays[(round * 7 + 3) % rounds] / 2);
              scope.run(
                  () -> {
                    t[round][0] = System.nanoTime();
                    scope.cancel();
                    if (blocking[round]) {
                      try {
                        Thread.sleep(10_000);
                      } catch (InterruptedException e) {
                        t[round][1] = System.nanoTime();
                        throw e;
                      }
                    }
                  });
              t[round][2] = System.nanoTime();
              while (doneRound.get() < round) {
                Thread.onSpinWait();
              }
              setAfter[round] = Thread.interrupted();
            }
          });
    } finally {
      stop.set(true);
      outsider.join();
    }
    int[] strictSet = new int[3]; // before cancel, (unused), after exit
    int lenient = 0;
    int whileClear = 0;
    int whileClearLost = 0;
    int lostCount = 0;
    List<String> lost = new ArrayList<>(); // the first few
    long watcherFirstLook = TimeUnit.MILLISECONDS.toNanos(4);
    for (int r = 0; r < completed[0]; r++) {
      long cancel = t[r][0];
      long clearAgain = t[r][1];
      long exit = t[r][2];
      long a1 = t[r][3];
      long a2 = t[r][4];
      int category;
      if (a2 - cancel < 0L) {
        category = 0; // pending (or thrown) when the cancellation was delivered
      } else if (a1 - exit > 0L) {
        category = 2; // after the scope exited
      } else if (blocking[r] && a1 - clearAgain > 0L && exit - cancel < watcherFirstLook) {
        // While the status was clear after a JDK call consumed the library's interrupt: it
        // cannot be told from the library's own (see the comment above); counted, not asserted.
        whileClear++;
        whileClearLost += setAfter[r] ? 0 : 1;
        continue;
      } else {
        lenient++;
        continue;
      }
      strictSet[category]++;
      if (!setAfter[r]) {
        lostCount++;
        if (lost.size() < 10) {
          lost.add(
              String.format(
                  "round %d (%s, %s)",
                  r,
                  new String[] {"before cancel", "-", "after exit"}[category],
                  blocking[r] ? "blocking" : "pending at exit"));
        }
      }
    }
    System.out.printf(
        "outside interrupt racing cancel+exit, %d rounds on %s: arrived before cancel %d, while"
            + " clear after consumption %d (absorbed %d), after exit %d, while the library's was"
            + " pending (either outcome) %d; lost where not allowed: %d (first: %s)%n",
        completed[0],
        kind,
        strictSet[0],
        whileClear,
        whileClearLost,
        strictSet[2],
        lenient,
        lostCount,
        lost);
    assertThat(lostCount)
        .as("seed %d: outside interrupts lost where the javadoc forbids it, first: %s", seed, lost)
        .isZero();
  }
}
