package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What {@link VirtualClock} promises: deadlines and sleeps on virtual time, advanced by hand. */
@VirtualTime
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class VirtualClockTest {

  // tag::thirty-seconds[]
  @Test
  void aThirtySecondDeadlineAroundAFiveMinuteSleepTakesNoRealTime(VirtualClock clock)
      throws InterruptedException {
    clock.autoAdvance();
    Instant start = clock.instant();
    long realStart = System.nanoTime();

    String result =
        CancelScope.moveOnAfter(
            Duration.ofSeconds(30),
            () -> {
              CancelScope.sleep(Duration.ofMinutes(5));
              return "slept";
            });

    assertThat(result).isNull(); // the deadline cut the sleep short
    assertThat(Duration.between(start, clock.instant())).isEqualTo(Duration.ofSeconds(30));
    assertThat(Duration.ofNanos(System.nanoTime() - realStart)).isLessThan(Duration.ofSeconds(1));
  }

  // end::thirty-seconds[]

  @RepeatedTest(3)
  void theBodySeesTheDeadlineFireAtExactlyThirtySeconds(VirtualClock clock)
      throws InterruptedException {
    clock.autoAdvance();
    Instant start = clock.instant();
    AtomicReference<Instant> cancelledAt = new AtomicReference<>();
    CancelScope.moveOnAfter(
        Duration.ofSeconds(30),
        () -> {
          try {
            CancelScope.sleep(Duration.ofMinutes(5));
          } finally {
            cancelledAt.set(clock.instant());
          }
          return null;
        });
    assertThat(cancelledAt.get()).isEqualTo(start.plusSeconds(30));
  }

  @RepeatedTest(5)
  void advanceFiresDueDeadlinesInDeadlineOrderBeforeItReturns(VirtualClock clock)
      throws InterruptedException {
    Instant start = clock.instant();
    Queue<String> delivered = new ConcurrentLinkedQueue<>();
    Thread advancer = Thread.currentThread();
    var group =
        TaskGroup.builder()
            .threadFactory(r -> new RecordingThread(r, advancer, clock, start, delivered))
            .build();
    CountDownLatch waiting = new CountDownLatch(3);
    group.run(
        () -> {
          for (int seconds : new int[] {30, 10, 20}) {
            group.fork(
                "timeout " + seconds + "s",
                () -> {
                  CancelScope.withTimeout(Duration.ofSeconds(seconds))
                      .run(
                          () -> {
                            waiting.countDown();
                            CancelScope.sleep(Duration.ofHours(1));
                          });
                  return null;
                });
          }
          waiting.await();
          clock.advance(Duration.ofSeconds(25));
          assertThat(List.copyOf(delivered))
              .containsExactly("timeout 10s at 10s", "timeout 20s at 20s");
          clock.advance(Duration.ofSeconds(10));
          assertThat(List.copyOf(delivered))
              .containsExactly("timeout 10s at 10s", "timeout 20s at 20s", "timeout 30s at 30s");
        });
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(35));
  }

  @RepeatedTest(3)
  void advanceWakesASleeperOnlyWhenItsTimeHasCome(VirtualClock clock) throws Exception {
    CountDownLatch woke = new CountDownLatch(1);
    Thread sleeper =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    CancelScope.sleep(Duration.ofSeconds(10));
                    woke.countDown();
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    awaitState(sleeper, Thread.State.WAITING);
    clock.advance(Duration.ofSeconds(9));
    assertThat(woke.getCount()).isEqualTo(1);
    assertThat(sleeper.getState()).isEqualTo(Thread.State.WAITING);
    clock.advance(Duration.ofSeconds(1));
    assertThat(woke.await(5, TimeUnit.SECONDS)).isTrue();
    sleeper.join();
  }

  @Test
  void anInstantDeadlineIsReadAgainstTheVirtualNow(VirtualClock clock) throws Exception {
    var scope = CancelScope.withDeadline(clock.instant().plusSeconds(5));
    assertThat(scope.deadline()).contains(clock.instant().plusSeconds(5));
    CountDownLatch inside = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          inside.countDown();
                          CancelScope.sleep(Duration.ofHours(1));
                        });
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    inside.await();
    clock.advance(Duration.ofMillis(4_999));
    assertThat(scope.cancelCalled()).isFalse();
    clock.advance(Duration.ofMillis(1));
    assertThat(scope.cancelCalled()).isTrue();
    runner.join();
    assertThat(scope.cancelCaught()).isTrue();
  }

  // To the nanosecond: an Instant deadline is converted with the virtual clock's own readings,
  // never
  // with a pair of system-clock readings the library keeps for real deadlines (within 1 ms).
  @Test
  void anInstantDeadlineFiresAtItsVirtualNanosecond(VirtualClock clock) throws Exception {
    var scope = CancelScope.withDeadline(clock.instant().plusSeconds(5));
    CountDownLatch inside = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          inside.countDown();
                          CancelScope.sleep(Duration.ofHours(1));
                        });
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    inside.await();
    clock.advance(Duration.ofSeconds(5).minusNanos(1));
    assertThat(scope.cancelCalled()).isFalse();
    clock.advance(Duration.ofNanos(1));
    assertThat(scope.cancelCalled()).isTrue();
    runner.join();
    assertThat(scope.cancelCaught()).isTrue();
  }

  @Test
  void aRunnableThreadHoldsTheAutoAdvanceStill(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    Instant seen =
        CancelScope.moveOnAfter(
            Duration.ofSeconds(1),
            () -> {
              long spinUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200);
              while (System.nanoTime() - spinUntil < 0L) {
                Thread.onSpinWait(); // RUNNABLE all along: 20 thresholds, no jump
              }
              return clock.instant();
            });
    assertThat(seen).isEqualTo(start);
  }

  @RepeatedTest(3)
  void aThreadInThreadSleepCountsAsBlockedSoTheClockJumps(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    long realStart = System.nanoTime();
    String result =
        CancelScope.moveOnAfter(
            Duration.ofSeconds(30),
            () -> {
              Thread.sleep(Duration.ofMinutes(5)); // real time, invisible to the clock
              return "slept";
            });
    assertThat(result).isNull(); // the clock jumped to the deadline while Thread.sleep waited
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(30));
    assertThat(Duration.ofNanos(System.nanoTime() - realStart)).isLessThan(Duration.ofSeconds(5));
  }

  @Test
  void aChildForkedButNotYetStartedHoldsTheClockStill(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    CountDownLatch startCalled = new CountDownLatch(1);
    CountDownLatch letItStart = new CountDownLatch(1);
    var group =
        TaskGroup.builder()
            .timeout(Duration.ofSeconds(1))
            .threadFactory(r -> new HeldAtStart(r, startCalled, letItStart))
            .build();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(() -> group.fork(() -> CancelScope.sleep(Duration.ofHours(1))));
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    startCalled.await(); // the owner waits in start(), the child's thread is NEW
    long spinUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200); // 20 thresholds
    while (System.nanoTime() - spinUntil < 0L) {
      Thread.onSpinWait();
    }
    assertThat(clock.instant()).isEqualTo(start);
    letItStart.countDown();
    owner.join();
    assertThat(group.cancelCaught()).isTrue(); // then the 1 s timeout fired, virtually
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(1));
  }

  /** A thread whose start() waits for a latch: a child forked and not yet started. */
  static final class HeldAtStart extends Thread {
    private final CountDownLatch startCalled;
    private final CountDownLatch letItStart;

    HeldAtStart(Runnable r, CountDownLatch startCalled, CountDownLatch letItStart) {
      super(r);
      this.startCalled = startCalled;
      this.letItStart = letItStart;
    }

    @Override
    public void start() {
      startCalled.countDown();
      boolean interrupted = false;
      while (true) {
        try {
          letItStart.await();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      if (interrupted) {
        interrupt(); // keep it for whoever owns this thread
      }
      super.start();
    }
  }

  static void awaitState(Thread t, Thread.State state) {
    while (t.getState() != state) {
      Thread.onSpinWait();
    }
  }

  /**
   * A child thread that records each interrupt the advancing thread delivers to it, with the
   * virtual time of delivery: Thread.interrupt() runs on the thread that delivers.
   */
  static final class RecordingThread extends Thread {
    private final Thread advancer;
    private final VirtualClock clock;
    private final Instant start;
    private final Queue<String> delivered;

    RecordingThread(
        Runnable r, Thread advancer, VirtualClock clock, Instant start, Queue<String> delivered) {
      super(r);
      this.advancer = advancer;
      this.clock = clock;
      this.start = start;
      this.delivered = delivered;
    }

    @Override
    public void interrupt() {
      if (Thread.currentThread() == advancer) {
        long at = Duration.between(start, clock.instant()).toSeconds();
        delivered.add(getName() + " at " + at + "s");
      }
      super.interrupt();
    }
  }
}
