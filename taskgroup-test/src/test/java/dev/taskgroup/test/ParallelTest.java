package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.parallel.Execution;
import org.junit.jupiter.api.parallel.ExecutionMode;

/**
 * Two virtual-time tests in a class whose tests run in parallel (parallel execution is on in this
 * module): {@link VirtualTime} keeps them apart, so each has its own clock. Without its lock the
 * second install would throw.
 */
@Execution(ExecutionMode.CONCURRENT)
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ParallelTest {
  private static final AtomicInteger RUNNING = new AtomicInteger();

  @VirtualTime
  @RepeatedTest(3)
  void oneHour(VirtualClock clock) throws InterruptedException {
    waitOut(clock, Duration.ofHours(1));
  }

  @VirtualTime
  @RepeatedTest(3)
  void twoHours(VirtualClock clock) throws InterruptedException {
    waitOut(clock, Duration.ofHours(2));
  }

  private static void waitOut(VirtualClock clock, Duration timeout) throws InterruptedException {
    assertThat(RUNNING.incrementAndGet()).as("virtual-time tests running at once").isEqualTo(1);
    try {
      Instant start = clock.instant();
      assertThat(Duration.between(start, Instant.now()).abs()).isLessThan(Duration.ofSeconds(5));
      clock.autoAdvance();
      CancelScope.moveOnAfter(
          timeout,
          () -> {
            CancelScope.sleep(timeout.multipliedBy(2));
            return null;
          });
      assertThat(clock.instant()).isEqualTo(start.plus(timeout));
    } finally {
      RUNNING.decrementAndGet();
    }
  }
}
