package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import jdk.jfr.EventType;
import jdk.jfr.FlightRecorder;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The library's JFR events, recorded for real and read back from the dumped file. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class JfrEventsTest {
  @TempDir Path dir;

  /** Runs {@code work} while recording every dev.taskgroup event; returns them by type name. */
  private Map<String, List<RecordedEvent>> record(Body work) throws Exception {
    return record(work, true);
  }

  /** As {@link #record(Body)}, with stack traces only if {@code stackTraces}. */
  private Map<String, List<RecordedEvent>> record(Body work, boolean stackTraces) throws Exception {
    Path file = dir.resolve("r.jfr");
    try (Recording r = new Recording()) {
      for (String name :
          List.of("GroupEnd", "Cancel", "DeadlineExpired", "Redelivery", "CancelHook")) {
        var settings = r.enable("dev.taskgroup." + name).withoutThreshold();
        if (stackTraces) {
          settings.withStackTrace();
        }
      }
      r.start();
      work.run();
      r.stop();
      r.dump(file);
    }
    return RecordingFile.readAllEvents(file).stream()
        .filter(e -> e.getEventType().getName().startsWith("dev.taskgroup."))
        .collect(Collectors.groupingBy(e -> e.getEventType().getName()));
  }

  @RepeatedTest(2)
  void groupEndCountsChildrenAndNamesTheOutcome() throws Exception {
    var events =
        record(
            () -> {
              TaskGroup ok = TaskGroup.named("jfr-ok");
              ok.run(
                  () -> {
                    ok.fork(() -> 1);
                    ok.fork(() -> 2);
                  });
              TaskGroup cancelled = TaskGroup.named("jfr-cancelled");
              cancelled.run(() -> cancelled.cancel("because"));
              try {
                TaskGroup failed = TaskGroup.named("jfr-failed");
                failed.run(
                    () ->
                        failed.fork(
                            () -> {
                              throw new IllegalStateException("x");
                            }));
              } catch (TaskGroupException expected) {
                // recorded as failed
              }
            });
    Map<String, RecordedEvent> ends =
        events.get("dev.taskgroup.GroupEnd").stream()
            .collect(Collectors.toMap(e -> e.getString("name"), Function.identity(), (a, b) -> a));
    assertThat(ends.get("jfr-ok").getString("outcome")).isEqualTo("completed");
    assertThat(ends.get("jfr-ok").getInt("children")).isEqualTo(2);
    assertThat(ends.get("jfr-ok").getDuration()).isPositive();
    assertThat(ends.get("jfr-cancelled").getString("outcome")).isEqualTo("cancelled");
    assertThat(ends.get("jfr-failed").getString("outcome")).isEqualTo("failed");
    RecordedEvent cancel =
        events.get("dev.taskgroup.Cancel").stream()
            .filter(e -> e.getString("scope").equals("group 'jfr-cancelled'"))
            .findFirst()
            .orElseThrow();
    assertThat(cancel.getString("reason")).contains("because");
    assertThat(cancel.getThread().getJavaThreadId()).isEqualTo(Thread.currentThread().threadId());
  }

  /**
   * A stack walk at each group's end and each cancel cost more than the group: the events carry a
   * stack trace only when the recording asks for one.
   */
  @RepeatedTest(2)
  void eventsCarryAStackTraceOnlyWhenTheRecordingAsksForOne() throws Exception {
    for (boolean stackTraces : new boolean[] {false, true}) {
      var events =
          record(
              () -> {
                TaskGroup g = TaskGroup.named("jfr-stack");
                g.run(() -> g.cancel("stack?"));
              },
              stackTraces);
      for (String type : List.of("dev.taskgroup.GroupEnd", "dev.taskgroup.Cancel")) {
        RecordedEvent e = events.get(type).get(0);
        if (stackTraces) {
          assertThat(e.getStackTrace()).as(type).isNotNull();
          assertThat(e.getStackTrace().getFrames())
              .as(type)
              .anyMatch(f -> f.getMethod().getName().equals("run"));
        } else {
          assertThat(e.getStackTrace()).as(type).isNull();
        }
      }
    }
  }

  /**
   * GroupEnd counts the children started: a fork refused because its thread could not start (a
   * factory's thread whose start() throws) is not one.
   */
  @RepeatedTest(2)
  void groupEndDoesNotCountAChildWhoseThreadNeverStarted() throws Exception {
    var events =
        record(
            () -> {
              TaskGroup g =
                  TaskGroup.builder()
                      .name("jfr-refused")
                      .threadFactory(
                          r ->
                              new Thread(r) {
                                @Override
                                public synchronized void start() {
                                  throw new IllegalThreadStateException("refused");
                                }
                              })
                      .build();
              g.run(
                  () -> {
                    for (int i = 0; i < 3; i++) {
                      assertThat(catchThrowable(() -> g.fork(() -> null)))
                          .isInstanceOf(RejectedExecutionException.class);
                    }
                  });
            });
    RecordedEvent end =
        events.get("dev.taskgroup.GroupEnd").stream()
            .filter(e -> e.getString("name").equals("jfr-refused"))
            .findFirst()
            .orElseThrow();
    assertThat(end.getInt("children")).isZero();
  }

  @RepeatedTest(2)
  void deadlineRedeliveryAndHookEventsCarryTheirFields() throws Exception {
    var events =
        record(
            () -> {
              CancelScope.moveOnAfter(
                  Duration.ofMillis(5),
                  () -> {
                    new CountDownLatch(1).await();
                    return null;
                  });
              TaskGroup g = TaskGroup.named("jfr-swallow");
              CountDownLatch entered = new CountDownLatch(1);
              g.run(
                  () -> {
                    g.fork(
                        "jfr-swallower",
                        () -> {
                          entered.countDown();
                          int swallowed = 0;
                          while (swallowed < 3) {
                            try {
                              new CountDownLatch(1).await();
                            } catch (InterruptedException e) {
                              swallowed++;
                            }
                          }
                          return null;
                        });
                    entered.await();
                    g.cancel();
                  });
              CancelScope s = CancelScope.create();
              s.run(
                  () -> {
                    try (var reg = CancelScope.onCancel(() -> {})) {
                      s.cancel();
                    }
                  });
            });
    RecordedEvent deadline = events.get("dev.taskgroup.DeadlineExpired").get(0);
    assertThat(deadline.getString("scope")).isEqualTo("cancel scope");
    assertThat(deadline.getDuration("lateness").isNegative()).isFalse();
    List<RecordedEvent> redeliveries =
        events.get("dev.taskgroup.Redelivery").stream()
            .filter(e -> e.getThread("thread").getJavaName().equals("jfr-swallower"))
            .toList();
    assertThat(redeliveries).isNotEmpty();
    // count: re-deliveries so far to that thread, one event each
    assertThat(redeliveries.stream().mapToInt(e -> e.getInt("count")).sorted().toArray())
        .isEqualTo(java.util.stream.IntStream.rangeClosed(1, redeliveries.size()).toArray());
    assertThat(events.get("dev.taskgroup.CancelHook").get(0).getString("outcome"))
        .isEqualTo("completed");
  }

  @Test
  void theLibraryRunsWithoutJdkJfr() throws Exception {
    assertThat(Fixtures.runJvm(List.of("--limit-modules", "java.base"), NoJfrMain.class))
        .isEqualTo("ok");
  }

  @Test
  void aJvmThatNeverRecordedRegistersNoEventTypeUntilTheRecorderStarts() throws Exception {
    assertThat(Fixtures.runJvm(List.of(), NoRecordingMain.class))
        .isEqualTo("registered before the recorder started: 0, after: 5");
  }

  @Test
  void theFirstDeadlineRecordedRegistersTheEventTypesOutsideTheDeadlinesLock() throws Exception {
    assertThat(Fixtures.runJvm(List.of(), dev.taskgroup.internal.FirstRecordedDeadlineMain.class))
        .isEqualTo("cancelled: true, registered under the lock: false, reported: []");
  }

  @Test
  void everyFieldIsDocumented() throws Exception {
    FlightRecorder recorder = FlightRecorder.getFlightRecorder(); // starts the recorder
    TaskGroup.create().run(() -> {}); // the library's first use since registers its event types
    var types =
        recorder.getEventTypes().stream()
            .filter(t -> t.getName().startsWith("dev.taskgroup."))
            .toList();
    assertThat(types)
        .extracting(EventType::getName)
        .contains(
            "dev.taskgroup.GroupEnd",
            "dev.taskgroup.Cancel",
            "dev.taskgroup.DeadlineExpired",
            "dev.taskgroup.Redelivery",
            "dev.taskgroup.CancelHook");
    for (EventType t : types) {
      assertThat(t.getDescription()).as(t.getName()).isNotBlank();
      t.getFields().stream()
          .filter(
              f ->
                  !List.of("startTime", "duration", "eventThread", "stackTrace")
                      .contains(f.getName()))
          .forEach(
              f -> {
                assertThat(f.getLabel()).as(t.getName() + "." + f.getName()).isNotBlank();
                assertThat(f.getDescription()).as(t.getName() + "." + f.getName()).isNotBlank();
              });
    }
  }
}
