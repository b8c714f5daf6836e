package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.parallel.ResourceLock;
import org.junit.jupiter.api.parallel.Resources;

/**
 * {@code close()}: back to the system clock, and what is pending goes on there with the time it had
 * left. These tests install clocks by hand, so they take the global lock themselves.
 */
@ResourceLock(Resources.GLOBAL)
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class CloseTest {
  private static final long LEFT_MS = 300;

  @RepeatedTest(3)
  void aPendingDeadlineGoesOnWithTheTimeItHadLeft() throws Exception {
    VirtualClock clock = VirtualClock.install();
    var scope = CancelScope.withTimeout(Duration.ofMillis(10_000 + LEFT_MS));
    AtomicLong endedAt = new AtomicLong();
    Thread runner = startInside(scope, Duration.ofHours(1), endedAt, clock);
    clock.advance(Duration.ofSeconds(10));
    assertThat(scope.cancelCalled()).isFalse();
    long closedAt = System.nanoTime();
    clock.close();
    runner.join();
    long waitedMs = TimeUnit.NANOSECONDS.toMillis(endedAt.get() - closedAt);
    System.out.printf(
        "deadline with %d ms left at close fired %d ms after it%n", LEFT_MS, waitedMs);
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(waitedMs).isBetween(LEFT_MS, 10_000L); // its 300 ms, not 10.3 s anew
  }

  @RepeatedTest(3)
  void aPendingSleepGoesOnWithTheTimeItHadLeft() throws Exception {
    VirtualClock clock = VirtualClock.install();
    var scope = CancelScope.create();
    AtomicLong endedAt = new AtomicLong();
    Thread runner = startInside(scope, Duration.ofMillis(10_000 + LEFT_MS), endedAt, clock);
    clock.advance(Duration.ofSeconds(10));
    assertThat(endedAt.get()).isZero();
    long closedAt = System.nanoTime();
    clock.close();
    runner.join();
    long sleptMs = TimeUnit.NANOSECONDS.toMillis(endedAt.get() - closedAt);
    System.out.printf("sleep with %d ms left at close ended %d ms after it%n", LEFT_MS, sleptMs);
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(sleptMs).isBetween(LEFT_MS, 10_000L);
  }

  @Test
  void afterCloseDeadlinesAndSleepsRunOnTheSystemClock() throws Exception {
    VirtualClock clock = VirtualClock.install();
    clock.advance(Duration.ofHours(1));
    clock.close();
    long t0 = System.nanoTime();
    CancelScope.sleep(Duration.ofMillis(50));
    String result =
        CancelScope.moveOnAfter(
            Duration.ofMillis(50),
            () -> {
              CancelScope.sleep(Duration.ofHours(1));
              return "slept";
            });
    assertThat(result).isNull();
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(100));
  }

  @RepeatedTest(5)
  void aSleepBegunBeforeInstallEndsWhenTheClockIsAdvancedPastIt() throws Exception {
    CountDownLatch woke = new CountDownLatch(1);
    Thread sleeper = startSleeping(Duration.ofHours(1), woke);
    VirtualClockTest.awaitState(sleeper, Thread.State.TIMED_WAITING); // parked on the system clock
    try (VirtualClock clock = VirtualClock.install()) {
      clock.advance(Duration.ofHours(1));
      assertThat(woke.await(WOKE_WITHIN_S, TimeUnit.SECONDS))
          .as("the hour-long sleep ended by advance(1 h), not on real time")
          .isTrue();
    } finally {
      sleeper.interrupt(); // left parked on real time when it failed
    }
  }

  @RepeatedTest(5)
  void aSleepLeftByAClosedClockEndsWhenTheNextClockIsAdvancedPastIt() throws Exception {
    CountDownLatch woke = new CountDownLatch(1);
    Thread sleeper;
    try (VirtualClock first = VirtualClock.install()) {
      sleeper = startSleeping(Duration.ofHours(1), woke);
      VirtualClockTest.awaitState(sleeper, Thread.State.WAITING); // parked on the first clock
    }
    // Closed: the sleep goes on, on the system clock, with the hour it had left.
    VirtualClockTest.awaitState(sleeper, Thread.State.TIMED_WAITING);
    try (VirtualClock second = VirtualClock.install()) {
      second.advance(Duration.ofHours(1));
      assertThat(woke.await(WOKE_WITHIN_S, TimeUnit.SECONDS))
          .as("the sleep left by the first clock ended by the second clock's advance(1 h)")
          .isTrue();
    } finally {
      sleeper.interrupt();
    }
  }

  @Test
  void oneClockAtATimeAndAClosedOneStaysClosed() {
    VirtualClock clock = VirtualClock.install();
    try {
      assertThatThrownBy(VirtualClock::install)
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("already installed");
    } finally {
      clock.close();
    }
    clock.close(); // twice: no effect
    assertThatThrownBy(() -> clock.advance(Duration.ofSeconds(1)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    VirtualClock.install().close(); // the next one may be installed
  }

  @Test
  void advanceRejectsNullAndNegative() {
    try (VirtualClock clock = VirtualClock.install()) {
      assertThatThrownBy(() -> clock.advance(null))
          .isInstanceOf(NullPointerException.class)
          .hasMessageContaining("duration");
      assertThatThrownBy(() -> clock.advance(Duration.ofSeconds(-1)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("must not be negative");
    }
  }

  /** Real seconds a sleep ended by an advance may take to return: far less than its hour. */
  private static final long WOKE_WITHIN_S = 5;

  /** Starts a thread in {@code CancelScope.sleep(sleep)} that counts {@code woke} down after it. */
  private static Thread startSleeping(Duration sleep, CountDownLatch woke) {
    return Thread.ofVirtual()
        .start(
            () -> {
              try {
                CancelScope.sleep(sleep);
                woke.countDown();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
  }

  /**
   * Starts a thread that runs {@code scope} around a sleep of {@code sleep} and records when it
   * ended (real time); returns once the sleep has begun.
   */
  private static Thread startInside(
      CancelScope scope, Duration sleep, AtomicLong endedAt, VirtualClock clock)
      throws InterruptedException {
    CountDownLatch inside = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          inside.countDown();
                          try {
                            CancelScope.sleep(sleep);
                          } finally {
                            endedAt.set(System.nanoTime());
                          }
                        });
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    inside.await();
    VirtualClockTest.awaitState(runner, Thread.State.WAITING); // parked on the virtual clock
    return runner;
  }
}
