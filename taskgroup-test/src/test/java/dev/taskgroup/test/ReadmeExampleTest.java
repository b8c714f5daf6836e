package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

// The example of the README's "Testing code that has deadlines", quoted from here (ReadmeTest
// checks that the README still shows exactly this).
// tag::example[]
@VirtualTime
class ReadmeExampleTest {
  @Test
  void givesUpAfterThirtySeconds(VirtualClock clock) throws InterruptedException {
    clock.autoAdvance(); // jump to the next deadline whenever every thread waits
    Instant start = clock.instant();

    String reply =
        CancelScope.moveOnAfter(
            Duration.ofSeconds(30),
            () -> {
              CancelScope.sleep(Duration.ofMinutes(5)); // a server that takes 5 minutes
              return "reply";
            });

    assertThat(reply).isNull(); // gave up...
    assertThat(Duration.between(start, clock.instant())) // ...after exactly 30 s
        .isEqualTo(Duration.ofSeconds(30));
  }
}
// end::example[]
