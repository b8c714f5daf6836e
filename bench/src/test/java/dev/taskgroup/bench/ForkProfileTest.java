package dev.taskgroup.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jdk.jfr.EventType;
import jdk.jfr.FlightRecorder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link ForkProfile} charges each sample to the code that ran: the library in taskgroup's body.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ForkProfileTest {

  @Test
  void theLibrarysSamplesComeFromTheTaskgroupBody() throws Exception {
    ForkJoinHundred bench = new ForkJoinHundred();
    ForkProfile.Profile raw =
        ForkProfile.record("raw", ForkProfile.body(bench, "raw"), Duration.ofSeconds(2));
    ForkProfile.Profile taskgroup =
        ForkProfile.record(
            "taskgroup", ForkProfile.body(bench, "taskgroup"), Duration.ofSeconds(2));

    assertThat(raw.samples()).isGreaterThan(20);
    assertThat(taskgroup.samples()).isGreaterThan(20);
    // Not zero: the library's background threads (the re-delivery watcher, winding down after an
    // earlier test in this JVM) are sampled too. Misattribution would put most samples there.
    assertThat(raw.share(ForkProfile.Owner.LIBRARY)).isLessThan(1.0);
    assertThat(taskgroup.share(ForkProfile.Owner.LIBRARY)).isPositive();
    assertThat(taskgroup.lines().keySet())
        .as("the library's JFR events are off while it samples")
        .noneMatch(k -> k.startsWith("JfrEvents."));
    assertThat(taskgroup.lines().keySet())
        .as("library frames are named by class, method and line")
        .allMatch(k -> k.matches("[\\w$]+\\.[\\w$<>]+:-?\\d+"));
    assertThat(raw.nanosPerChild()).isPositive();
    assertThat(ForkProfile.format(List.of(raw, taskgroup)))
        .contains("raw", "taskgroup", "library frames of taskgroup");
  }

  @Test
  void everyEventOfTheLibraryIsTurnedOff() throws Exception {
    ForkJoinHundred bench = new ForkJoinHundred();
    ForkProfile.record("taskgroup", ForkProfile.body(bench, "taskgroup"), Duration.ofMillis(200));
    // By now the library's event classes are loaded and JFR has run: every one is registered.
    List<String> registered =
        FlightRecorder.getFlightRecorder().getEventTypes().stream()
            .map(EventType::getName)
            .filter(n -> n.startsWith("dev.taskgroup."))
            .toList();
    assertThat(registered).isNotEmpty();
    assertThat(ForkProfile.LIBRARY_EVENTS).containsAll(registered);
  }

  @Test
  void ownersAreTheLibraryTheBenchmarkOrTheJdk() {
    assertThat(ForkProfile.ownerOf("dev.taskgroup.internal.ChildList"))
        .isEqualTo(ForkProfile.Owner.LIBRARY);
    assertThat(ForkProfile.ownerOf("dev.taskgroup.bench.ForkJoinHundred$Member"))
        .isEqualTo(ForkProfile.Owner.BENCHMARK);
    assertThat(ForkProfile.ownerOf("java.lang.VirtualThread")).isEqualTo(ForkProfile.Owner.JDK);
  }
}
