package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An Instant deadline becomes a moment of the monotonic clock through one kept pair of readings of
 * both clocks: the same Instant, converted at two moments, gives the same nanoTime (nested scopes
 * given one deadline expire together), until the wall clock drifts or steps from the monotonic one.
 */
class DeadlineConversionTest {
  @BeforeEach
  void startWithoutAPair() {
    DeadlineClock.forgetPair(); // conversions by other tests of this JVM read the real clocks
  }

  @Test
  void theSameInstantConvertedTwiceGivesTheSameNanoTime() {
    Instant wall = Instant.parse("2030-01-01T00:00:00Z");
    Instant deadline = wall.plusMillis(30);
    long first = DeadlineClock.wallToNano(1_000_000_000L, wall, deadline);
    // 7 µs later on both clocks, and the wall clock read 3 µs off (its resolution, a slew)
    long second = DeadlineClock.wallToNano(1_000_007_000L, wall.plusNanos(7_000 + 3_000), deadline);
    assertThat(second).isEqualTo(first);
    assertThat(first).isEqualTo(1_000_000_000L + 30_000_000L);
  }

  @Test
  void aStepOfTheWallClockIsFollowed() {
    Instant wall = Instant.parse("2031-01-01T00:00:00Z");
    DeadlineClock.wallToNano(5_000_000_000L, wall, wall);
    // one second later on the monotonic clock, but the wall clock was stepped back an hour
    Instant stepped = wall.plusSeconds(1).minus(Duration.ofHours(1));
    long at = DeadlineClock.wallToNano(6_000_000_000L, stepped, stepped.plusMillis(50));
    assertThat(at).isEqualTo(6_000_000_000L + 50_000_000L);
  }
}
