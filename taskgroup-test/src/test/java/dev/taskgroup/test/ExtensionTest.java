package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.parallel.ResourceLock;
import org.junit.jupiter.api.parallel.Resources;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * {@link VirtualTime} and {@link VirtualTimeExtension}, run through the JUnit launcher on the small
 * test classes nested here (nested classes are not run by the build on their own).
 */
@ResourceLock(Resources.GLOBAL)
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ExtensionTest {
  static final List<VirtualClock> CLOCKS = new CopyOnWriteArrayList<>();

  @VirtualTime
  static class TwoTests {
    private VirtualClock inBeforeEach;

    @BeforeEach
    void before(VirtualClock clock) {
      inBeforeEach = clock;
    }

    @Test
    void first(VirtualClock clock) {
      moveAnHour(clock);
    }

    @Test
    void second(VirtualClock clock) {
      moveAnHour(clock);
    }

    private void moveAnHour(VirtualClock clock) {
      assertThat(clock).isSameAs(inBeforeEach);
      CLOCKS.add(clock);
      clock.advance(Duration.ofHours(1));
    }
  }

  @VirtualTime
  static class Failing {
    @Test
    void fails(VirtualClock clock) {
      clock.advance(Duration.ofHours(1));
      throw new AssertionError("fails on purpose");
    }
  }

  @Test
  void everyTestGetsAFreshClockOfItsOwnAlsoInBeforeEach() {
    CLOCKS.clear();
    Instant before = Instant.now();
    TestExecutionSummary summary = run(TwoTests.class);
    Instant after = Instant.now();
    assertThat(summary.getTestsSucceededCount()).isEqualTo(2);
    assertThat(CLOCKS).hasSize(2).doesNotHaveDuplicates();
    for (VirtualClock clock : CLOCKS) {
      // Each started at the real now, not where the other test had moved its time.
      assertThat(clock.instant()).isBetween(before.plusSeconds(3600), after.plusSeconds(3600));
    }
  }

  @Test
  void theClockIsClosedAfterATestThatFailed() throws InterruptedException {
    TestExecutionSummary summary = run(Failing.class);
    assertThat(summary.getTestsFailedCount()).isEqualTo(1);
    long t0 = System.nanoTime();
    CancelScope.sleep(Duration.ofMillis(20)); // on the system clock again
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(20));
    VirtualClock.install().close(); // nothing left installed
  }

  private static TestExecutionSummary run(Class<?> testClass) {
    var request =
        LauncherDiscoveryRequestBuilder.request()
            .selectors(selectClass(testClass))
            .configurationParameter("junit.jupiter.execution.parallel.enabled", "false")
            .build();
    var listener = new SummaryGeneratingListener();
    LauncherFactory.create().execute(request, listener);
    return listener.getSummary();
  }
}
