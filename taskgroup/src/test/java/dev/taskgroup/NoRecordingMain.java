package dev.taskgroup;

import java.time.Duration;
import jdk.jfr.EventType;
import jdk.jfr.FlightRecorder;

/**
 * Run by {@link JfrEventsTest} in a JVM of its own that records nothing at first: using the library
 * (a group cancelled, a deadline expired) must not register its event types, which makes JFR build
 * its metadata (0.3 to 0.4 s, on the thread that ran the first group or cancelled the first scope).
 * Once the recorder has been started, the next use registers them. Prints how many of the library's
 * event types are registered at each point.
 */
public final class NoRecordingMain {
  private NoRecordingMain() {}

  public static void main(String[] args) throws Exception {
    TaskGroup g = TaskGroup.named("no-recording");
    g.run(
        () -> {
          g.fork(() -> 1);
          g.cancel("done");
        });
    CancelScope.withTimeout(Duration.ofMillis(1)).run(() -> Thread.sleep(10_000));
    FlightRecorder recorder = FlightRecorder.getFlightRecorder(); // starts the recorder
    long before = libraryTypes(recorder);
    TaskGroup.create().run(() -> {});
    System.out.println(
        "registered before the recorder started: " + before + ", after: " + libraryTypes(recorder));
  }

  private static long libraryTypes(FlightRecorder recorder) {
    return recorder.getEventTypes().stream()
        .map(EventType::getName)
        .filter(n -> n.startsWith("dev.taskgroup."))
        .count();
  }
}
