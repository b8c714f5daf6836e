package dev.taskgroup.internal;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import jdk.jfr.FlightRecorder;

/**
 * Run by {@code JfrEventsTest} in a JVM of its own: the recorder is started, and the library's
 * first use is a deadline that expires. Its event types, registered at their first use after the
 * recorder started, must not be registered by the deadline thread while it holds the deadlines'
 * lock (every thread setting a deadline would wait for JFR to build its metadata). Prints whether
 * the scope was cancelled, whether the types were registered under the lock, and what was reported
 * to the default uncaught-exception handler.
 */
public final class FirstRecordedDeadlineMain {
  private FirstRecordedDeadlineMain() {}

  public static void main(String[] args) throws Exception {
    List<Throwable> reported = new CopyOnWriteArrayList<>();
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> reported.add(e));
    FlightRecorder.getFlightRecorder(); // starts the recorder
    CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(1));
    scope.run(() -> Thread.sleep(2_000)); // cut short by the deadline, unless its delivery failed
    System.out.println(
        "cancelled: "
            + scope.cancelCaught()
            + ", registered under the lock: "
            + JfrEvents.REGISTERED_UNDER_DEADLINES_LOCK
            + ", reported: "
            + reported);
  }
}
