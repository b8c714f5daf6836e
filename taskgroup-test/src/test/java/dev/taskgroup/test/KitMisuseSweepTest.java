package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Misuse of the test kit and the state after a rejected call: a second install while one clock is
 * installed, advances from the very threads an advance cancels (the advancing thread's own scope,
 * an {@code onCancel} action the advance started), an advance racing {@code close}, the most
 * negative and the largest durations, and a clock parameter asked for in {@code @BeforeAll}. {@link
 * VirtualClock}'s javadoc: "Every method may be called from any thread. Null arguments throw {@link
 * NullPointerException} naming the parameter"; a rejected call changes nothing.
 */
@VirtualTime
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class KitMisuseSweepTest {

  @Test
  void aRejectedSecondInstallLeavesTheInstalledClockInCharge(VirtualClock clock) throws Exception {
    Instant before = clock.instant();
    assertThatThrownBy(VirtualClock::install)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("already installed")
        .hasMessageContaining("close it first");
    // the installed clock still drives the library's deadlines
    CancelScope s = CancelScope.withTimeout(Duration.ofSeconds(5));
    CountDownLatch inside = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    s.run(
                        () -> {
                          inside.countDown();
                          CancelScope.sleep(Duration.ofDays(1));
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    inside.await();
    clock.advance(Duration.ofSeconds(5));
    assertThat(runner.join(Duration.ofSeconds(10))).isTrue();
    assertThat(s.cancelCaught()).isTrue();
    assertThat(s.deadline()).contains(before.plusSeconds(5));
  }

  @Test
  void anAdvanceFromInsideTheScopeItCancelsReturnsAndTheNextCheckpointThrows(VirtualClock clock)
      throws Exception {
    // Trio's MockClock.jump from inside a cancel scope (closest: trio/_tests/test_testing.py,
    // test_mock_clock_autojump): the jump returns; the cancellation lands at the next checkpoint.
    CancelScope s = CancelScope.withTimeout(Duration.ofSeconds(1));
    AtomicReference<String> trail = new AtomicReference<>("");
    s.run(
        () -> {
          clock.advance(Duration.ofSeconds(2));
          trail.set("advance returned");
          CancelScope.checkpoint();
          trail.set("checkpoint passed");
        });
    assertThat(trail.get()).isEqualTo("advance returned");
    assertThat(s.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void anAdvanceFromAnOnCancelActionStartedByAnAdvanceIsNotADeadlock(VirtualClock clock)
      throws Exception {
    CancelScope s = CancelScope.withTimeout(Duration.ofSeconds(1));
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch actionDone = new CountDownLatch(1);
    AtomicReference<Throwable> actionThrew = new AtomicReference<>();
    AtomicReference<Instant> seenByAction = new AtomicReference<>();
    Instant start = clock.instant();
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    s.run(
                        () -> {
                          try (var hook =
                              CancelScope.onCancel(
                                  () -> {
                                    try {
                                      clock.advance(Duration.ofSeconds(1));
                                      seenByAction.set(clock.instant());
                                    } catch (Throwable e) {
                                      actionThrew.set(e);
                                    } finally {
                                      actionDone.countDown();
                                    }
                                  })) {
                            registered.countDown();
                            CancelScope.sleep(Duration.ofDays(1));
                          }
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    registered.await();
    clock.advance(Duration.ofSeconds(1));
    assertThat(actionDone.await(10, TimeUnit.SECONDS)).as("action's own advance returned").isTrue();
    assertThat(runner.join(Duration.ofSeconds(10))).isTrue();
    assertThat(actionThrew.get()).isNull();
    assertThat(seenByAction.get()).isEqualTo(start.plusSeconds(2));
    assertThat(s.cancelCaught()).isTrue();
  }

  @Test
  void aCloseFromAnOnCancelActionStartedByAnAdvanceIsNotADeadlock(VirtualClock clock)
      throws Exception {
    CancelScope s = CancelScope.withTimeout(Duration.ofSeconds(1));
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch closed = new CountDownLatch(1);
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    s.run(
                        () -> {
                          try (var hook =
                              CancelScope.onCancel(
                                  () -> {
                                    clock.close();
                                    closed.countDown();
                                  })) {
                            registered.countDown();
                            CancelScope.sleep(Duration.ofDays(1));
                          }
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    registered.await();
    clock.advance(Duration.ofSeconds(1));
    assertThat(closed.await(10, TimeUnit.SECONDS)).as("close from the action returned").isTrue();
    assertThat(runner.join(Duration.ofSeconds(10))).isTrue();
    assertThat(s.cancelCaught()).isTrue();
    assertThatThrownBy(() -> clock.advance(Duration.ZERO))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    VirtualClock.install().close(); // nothing is left installed
  }

  @RepeatedTest(20)
  void anAdvanceRacingCloseEitherMovesTheTimeOrSaysClosed(VirtualClock clock) throws Exception {
    CountDownLatch advancing = new CountDownLatch(1);
    List<Throwable> thrown = new ArrayList<>();
    Thread advancer =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    for (; ; ) {
                      clock.advance(Duration.ofMillis(1));
                      advancing.countDown();
                    }
                  } catch (Throwable e) {
                    thrown.add(e);
                  }
                });
    advancing.await();
    clock.close();
    Instant atClose = clock.instant();
    assertThat(advancer.join(Duration.ofSeconds(10))).isTrue();
    assertThat(thrown)
        .singleElement()
        .isInstanceOf(IllegalStateException.class)
        .extracting(Throwable::getMessage)
        .asString()
        .contains("closed");
    assertThat(clock.instant()).as("nothing moved the time after close").isEqualTo(atClose);
    VirtualClock.install().close(); // the library let go of it
  }

  @Test
  void theMostNegativeDurationsAreRejectedNamingTheirValueAndTheTimeStaysPut(VirtualClock clock) {
    Instant before = clock.instant();
    for (Duration d :
        List.of(
            Duration.ofSeconds(Long.MIN_VALUE),
            Duration.ofNanos(Long.MIN_VALUE),
            Duration.ofSeconds(0, -1))) {
      assertThat(catchThrowable(() -> clock.advance(d)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("negative")
          .hasMessageContaining(d.toString());
      assertThat(catchThrowable(() -> clock.autoAdvance(d)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("negative")
          .hasMessageContaining(d.toString());
    }
    assertThat(clock.instant()).isEqualTo(before);
  }

  @Test
  void afterTheLargestAdvanceDeadlinesStillFireAndNothingOverflows(VirtualClock clock)
      throws Exception {
    clock.advance(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999));
    assertThat(clock.instant()).isEqualTo(Instant.MAX);
    clock.advance(Duration.ofSeconds(1)); // saturated: still no exception
    assertThat(clock.instant()).isEqualTo(Instant.MAX);

    // A relative timeout still works on the nanosecond timeline.
    CancelScope s = CancelScope.withTimeout(Duration.ofSeconds(1));
    CountDownLatch inside = new CountDownLatch(1);
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Thread runner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    s.run(
                        () -> {
                          inside.countDown();
                          CancelScope.sleep(Duration.ofDays(1));
                        });
                  } catch (Throwable e) {
                    failed.set(e);
                  }
                });
    inside.await();
    assertThat(s.deadline()).contains(Instant.MAX);
    clock.advance(Duration.ofSeconds(1));
    assertThat(runner.join(Duration.ofSeconds(10))).isTrue();
    assertThat(failed.get()).isNull();
    assertThat(s.cancelCaught()).isTrue();

    // Instant.MAX is now: a deadline at it is due at once, not an overflow.
    CancelScope atMax = CancelScope.withDeadline(Instant.MAX);
    atMax.run(CancelScope::checkpoint);
    assertThat(atMax.cancelCaught()).isTrue();
  }

  @Test
  void aClockParameterInBeforeAllIsRefusedClearly(VirtualClock clock) {
    clock.close(); // this test's own clock: the class run below installs its own
    TestExecutionSummary summary = runClass(ClockInBeforeAll.class);
    assertThat(summary.getTotalFailureCount()).isEqualTo(1);
    Throwable failure = summary.getFailures().get(0).getException();
    assertThat(failure)
        .isInstanceOf(ParameterResolutionException.class)
        .hasMessageContaining("exists only per test")
        .hasMessageContaining("@BeforeEach");
    VirtualClock.install().close(); // nothing left installed
  }

  @VirtualTime
  static class ClockInBeforeAll {
    @BeforeAll
    static void before(VirtualClock clock) {}

    @Test
    void test() {}
  }

  private static TestExecutionSummary runClass(Class<?> testClass) {
    var request =
        LauncherDiscoveryRequestBuilder.request()
            .selectors(DiscoverySelectors.selectClass(testClass))
            .configurationParameter("junit.jupiter.execution.parallel.enabled", "false")
            .build();
    var listener = new SummaryGeneratingListener();
    LauncherFactory.create().execute(request, listener);
    return listener.getSummary();
  }
}
