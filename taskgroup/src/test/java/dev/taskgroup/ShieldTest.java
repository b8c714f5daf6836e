package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import dev.taskgroup.Fixtures.Trail;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Shields: a shielded scope keeps cancellation from above out, while its own cancel and deadline
 * work; unshielding delivers at once; shields toggled from another thread leave nobody stuck and
 * leak nothing; blocking cleanup runs in a shield.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ShieldTest {
  /** Generous bound for "at once" on a loaded 2-core machine. */
  private static final long PROMPT_MS = 1_000;

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static boolean interrupted() {
    return Thread.currentThread().isInterrupted();
  }

  // ---- shielded from above, not from itself ------------------------------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void shieldInAChildKeepsTheGroupsCancelOutWhileBlockingCallsComplete(ThreadKind kind)
      throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch inShield = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Trail trail = new Trail();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    CancelScope.shielded()
                        .run(
                            () -> {
                              inShield.countDown();
                              release.await(); // blocked across the group's cancel
                              trail.add("await completed; group cancelled=" + group.cancelCalled());
                              Thread.sleep(20); // the blocking call under test
                              trail.add("sleep completed; cancelled=" + CancelScope.isCancelled());
                              CancelScope.checkpoint();
                              trail.add("checkpoint passed");
                            });
                    trail.add("left the shield");
                    try {
                      Thread.sleep(60_000); // the group's cancellation reaches it here
                    } catch (InterruptedException e) {
                      trail.add("cancelled after the shield");
                      throw e;
                    }
                  }));
          inShield.await();
          group.cancel();
          release.countDown();
        });
    assertThat(trail.events())
        .containsExactly(
            "await completed; group cancelled=true",
            "sleep completed; cancelled=false",
            "checkpoint passed",
            "left the shield",
            "cancelled after the shield");
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(group.cancelCaught()).isTrue();
    threads.assertAllDone();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void shieldedGroupKeepsAnEnclosingCancelAwayFromItsChildren(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    CancelScope outer = CancelScope.create();
    TaskGroup inner = Fixtures.group("shielded", threads);
    inner.cancelScope().setShielded(true);
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Task<String>> child = new AtomicReference<>();
    Trail trail = new Trail();
    outer.run(
        () -> {
          inner.run(
              () -> {
                child.set(
                    inner.fork(
                        () -> {
                          started.countDown();
                          release.await();
                          Thread.sleep(20); // the blocking call under test
                          return "child finished";
                        }));
                started.await();
                outer.cancel();
                release.countDown();
                trail.add(child.get().get());
              });
          trail.add("after the shielded group");
          Thread.sleep(60_000);
        });
    assertThat(trail.events()).containsExactly("child finished", "after the shielded group");
    assertThat(inner.cancelCalled()).isFalse();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    threads.assertAllDone();
  }

  @Test
  void shieldsOwnCancelWorksUnderACancelledOuter() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope shield = CancelScope.shielded();
    Trail trail = new Trail();
    outer.run(
        () -> {
          outer.cancel();
          shield.run(
              () -> {
                Thread.sleep(10); // the blocking call under test: not ended by the outer cancel
                trail.add("shielded sleep completed");
                shield.cancel();
                try {
                  Thread.sleep(10_000);
                } catch (InterruptedException e) {
                  trail.add("own cancel interrupted the shield");
                  throw e;
                }
              });
          trail.add("after the shield");
          try {
            Thread.sleep(10_000);
          } catch (InterruptedException e) {
            trail.add("outer cancel delivered after the shield");
            throw e;
          }
        });
    assertThat(trail.events())
        .containsExactly(
            "shielded sleep completed",
            "own cancel interrupted the shield",
            "after the shield",
            "outer cancel delivered after the shield");
    assertThat(shield.cancelCaught()).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(interrupted()).isFalse();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void shieldsOwnDeadlineWorksInAChildOfACancelledGroup(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch inShield = new CountDownLatch(1);
    AtomicLong shieldMs = new AtomicLong();
    AtomicBoolean shieldCaught = new AtomicBoolean();
    group.run(
        () -> {
          group.fork(
              () -> {
                CancelScope shield = CancelScope.shielded();
                shield.setTimeout(Duration.ofMillis(100));
                long t0 = System.nanoTime();
                shield.run(
                    () -> {
                      inShield.countDown();
                      Thread.sleep(10_000); // the group's cancel does not end it; the deadline does
                    });
                shieldMs.set(Probes.millis(System.nanoTime() - t0));
                shieldCaught.set(shield.cancelCaught());
                Thread.sleep(10_000); // the group's cancellation now
              });
          inShield.await();
          group.cancel();
        });
    System.out.printf(
        "shield with a 100 ms deadline in a cancelled group (%s): %d ms%n", kind, shieldMs.get());
    assertThat(shieldCaught).isTrue();
    assertThat(shieldMs.get()).isGreaterThanOrEqualTo(99).isLessThan(100 + PROMPT_MS);
    assertThat(group.cancelCaught()).isTrue();
    threads.assertAllDone();
  }

  // ---- turning the shield off ----------------------------------------------------------------

  @Test
  void unshieldingFromItsOwnThreadWhileOuterIsCancelledThrowsAtTheNextBlockingCall()
      throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.shielded();
    AtomicLong ms = new AtomicLong(-1);
    Trail trail = new Trail();
    outer.run(
        () ->
            inner.run(
                () -> {
                  outer.cancel();
                  Thread.sleep(10); // the blocking call under test: the shield keeps the cancel out
                  trail.add("shielded sleep completed");
                  inner.setShielded(false);
                  long t0 = System.nanoTime();
                  try {
                    Thread.sleep(10_000);
                  } finally {
                    ms.set(Probes.millis(System.nanoTime() - t0));
                  }
                }));
    System.out.printf("unshield (own thread): the next sleep threw after %d ms%n", ms.get());
    assertThat(trail.events()).containsExactly("shielded sleep completed");
    assertThat(ms.get()).isLessThan(PROMPT_MS);
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(interrupted()).isFalse();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void unshieldingFromAnotherThreadEndsABlockedChildAtOnce(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    CancelScope shield = CancelScope.shielded();
    CountDownLatch inShield = new CountDownLatch(1);
    AtomicReference<Thread> child = new AtomicReference<>();
    AtomicLong endedAt = new AtomicLong();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    long[] unshieldedAt = new long[1];
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    child.set(Thread.currentThread());
                    shield.run(
                        () -> {
                          inShield.countDown();
                          try {
                            Thread.sleep(60_000);
                          } finally {
                            endedAt.set(System.nanoTime());
                          }
                        });
                  }));
          inShield.await();
          Probes.awaitWaiting(child.get(), Duration.ofSeconds(5));
          group.cancel();
          Thread.State stillBlocked = child.get().getState();
          unshieldedAt[0] = System.nanoTime();
          shield.setShielded(false);
          assertThat(stillBlocked).isIn(Thread.State.WAITING, Thread.State.TIMED_WAITING);
        });
    long ms = Probes.millis(endedAt.get() - unshieldedAt[0]);
    System.out.printf(
        "unshield from another thread (%s child): sleep ended %d ms later%n", kind, ms);
    assertThat(ms).isLessThan(PROMPT_MS);
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(shield.cancelCaught()).isFalse();
    assertThat(group.cancelCaught()).isTrue();
    threads.assertAllDone();
  }

  /**
   * Shield off (an interrupt is delivered and swallowed), shield on from another thread (the
   * re-delivery watch lapses), shield off again: the cancellation must be delivered again, at once.
   * Deterministic version of what the random toggling below can run into.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void shieldOffOnOffFromAnotherThreadDeliversAgainAfterTheSecondOff(ThreadKind kind)
      throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope shield = CancelScope.shielded();
    Swallower s = Swallower.start(kind, outer, shield);
    try {
      s.inShield.await();
      outer.cancel(); // nothing delivered: shielded
      shield.setShielded(false); // delivered
      Probes.awaitTrue("first delivery", Duration.ofSeconds(5), () -> s.interrupts.get() >= 1);
      shield.setShielded(true); // from another thread: a pending interrupt may fire once more
      Thread.sleep(100); // many re-delivery periods pass while shielded: the watch lapses
      int whileShielded = s.interrupts.get();
      s.lastOff.set(true);
      long t0 = System.nanoTime();
      shield.setShielded(false);
      boolean ended = s.thread.join(Duration.ofSeconds(2));
      System.out.printf(
          "off/on/off (%s): interrupts before the last off %d; after it the thread %s%n",
          kind,
          whileShielded,
          ended
              ? "ended in " + Probes.millis(s.endedAt.get() - t0) + " ms"
              : "was still blocked 2 s later");
      assertThat(ended)
          .as("turning the shield off again delivers the outer cancellation (thread not stuck)")
          .isTrue();
      assertThat(s.failure.get()).isNull();
      assertThat(Probes.millis(s.endedAt.get() - t0)).isLessThan(PROMPT_MS);
      assertThat(outer.cancelCaught()).isTrue();
      assertThat(shield.cancelCaught()).isFalse();
      assertThat(s.statusAfter).as("interrupt left after the outer scope").isFalse();
    } finally {
      s.stop.set(true);
      s.thread.interrupt();
      s.thread.join();
    }
  }

  /**
   * A thread that blocks in {@code shield} inside {@code outer}, swallowing every interrupt it gets
   * until {@code lastOff} is set (then the next one ends it), and reports what happened.
   */
  private static final class Swallower {
    final CountDownLatch inShield = new CountDownLatch(1);
    final AtomicInteger interrupts = new AtomicInteger();
    final AtomicBoolean lastOff = new AtomicBoolean();
    final AtomicBoolean stop = new AtomicBoolean();
    final AtomicLong endedAt = new AtomicLong();
    final AtomicReference<Throwable> failure = new AtomicReference<>();
    final AtomicBoolean statusAfter = new AtomicBoolean(true);
    Thread thread;

    static Swallower start(ThreadKind kind, CancelScope outer, CancelScope shield) {
      Swallower s = new Swallower();
      s.thread =
          kind.start(
              () -> {
                try {
                  outer.run(() -> shield.run(s::swallowUntilLastOff));
                  s.statusAfter.set(Thread.currentThread().isInterrupted());
                } catch (Throwable e) {
                  s.failure.set(e);
                }
              });
      return s;
    }

    private void swallowUntilLastOff() throws InterruptedException {
      inShield.countDown();
      while (!stop.get()) {
        try {
          Thread.sleep(60_000);
        } catch (InterruptedException e) {
          interrupts.incrementAndGet();
          if (lastOff.get()) {
            endedAt.set(System.nanoTime());
            throw e;
          }
          // swallowed while the shield toggles
        }
      }
    }
  }

  static Stream<Arguments> togglingCases() {
    return Stream.of(
        Arguments.of(ThreadKind.VIRTUAL, false),
        Arguments.of(ThreadKind.PLATFORM, false),
        Arguments.of(ThreadKind.VIRTUAL, true),
        Arguments.of(ThreadKind.PLATFORM, true));
  }

  /**
   * Another thread toggles, at random moments, the shield of a scope in which a group's child keeps
   * blocking (and swallowing what it gets) while the scope around it is cancelled. Ending with the
   * shield off, the child must be cancelled promptly; ending with it on, at most one interrupt (one
   * already pending) may still end a blocking call begun after that. No interrupt leaks out of the
   * cancelled scope. Seeded: -DshieldToggle.seed=N replays.
   */
  @ParameterizedTest(name = "{0}, ends shielded={1}")
  @MethodSource("togglingCases")
  void shieldToggledFromAnotherThreadNeverStrandsTheChildNorLeaksAnInterrupt(
      ThreadKind kind, boolean endShielded) throws Exception {
    long seed =
        Probes.seed("shieldToggle.seed", "shieldToggled " + kind + " endShielded=" + endShielded);
    SplittableRandom random = new SplittableRandom(seed);
    int rounds = 6;
    for (int round = 0; round < rounds; round++) {
      ShieldToggleRound.play(kind, endShielded, random.split(), "seed " + seed + " round " + round);
    }
  }

  // ---- cleanup -------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cleanupInAShieldAfterCancellationCanBlockAndDoIo(ThreadKind kind, @TempDir Path dir)
      throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    Path file = dir.resolve("goodbye.txt");
    CountDownLatch started = new CountDownLatch(1);
    Trail trail = new Trail();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    try {
                      started.countDown();
                      Thread.sleep(60_000);
                    } finally {
                      CancelScope.shielded()
                          .run(
                              () -> {
                                Thread.sleep(30); // blocking cleanup
                                // an interruptible channel: a pending interrupt would close it
                                try (FileChannel ch =
                                    FileChannel.open(
                                        file,
                                        StandardOpenOption.CREATE,
                                        StandardOpenOption.WRITE)) {
                                  ch.write(
                                      ByteBuffer.wrap("goodbye".getBytes(StandardCharsets.UTF_8)));
                                  ch.force(true);
                                }
                                trail.add("cleanup done; cancelled=" + CancelScope.isCancelled());
                              });
                    }
                  }));
          started.await();
          group.cancel();
        });
    assertThat(trail.events()).containsExactly("cleanup done; cancelled=false");
    assertThat(Files.readString(file)).isEqualTo("goodbye");
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(group.cancelCaught()).isTrue();
    threads.assertAllDone();
  }
}
