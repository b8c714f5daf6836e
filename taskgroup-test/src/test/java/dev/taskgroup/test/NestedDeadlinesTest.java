package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Nested deadlines, group timeouts and sleeps behave on virtual time as on the real clock. */
@VirtualTime
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class NestedDeadlinesTest {
  private Instant start;

  @BeforeEach
  void startAutoAdvance(VirtualClock clock) {
    clock.autoAdvance();
    start = clock.instant();
  }

  @RepeatedTest(3)
  void anInnerFailAfterFiresFirstAndTheOuterScopeGoesOn(VirtualClock clock) throws Exception {
    String result =
        CancelScope.moveOnAfter(
            Duration.ofSeconds(60),
            () -> {
              Throwable inner =
                  catchThrowable(
                      () ->
                          CancelScope.failAfter(
                              Duration.ofSeconds(10), () -> sleepThen(Duration.ofMinutes(5))));
              assertThat(inner).isInstanceOf(TimeoutException.class);
              assertThat(clock.instant()).isEqualTo(start.plusSeconds(10));
              return "outer went on";
            });
    assertThat(result).isEqualTo("outer went on");
  }

  @RepeatedTest(3)
  void anOuterFailAfterFiresFirstAndTheInnerScopeLetsItThrough(VirtualClock clock) {
    AtomicReference<CancelScope> inner = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ofSeconds(10),
                    () -> {
                      inner.set(CancelScope.withTimeout(Duration.ofSeconds(60)));
                      return inner.get().call(() -> sleepThen(Duration.ofMinutes(5)));
                    }));
    assertThat(thrown).isInstanceOf(TimeoutException.class);
    assertThat(inner.get().cancelCalled()).isFalse();
    assertThat(inner.get().cancelCaught()).isFalse();
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(10));
  }

  @RepeatedTest(3)
  void aGroupTimeoutCancelsEveryChildAtItsDeadline(VirtualClock clock) throws Exception {
    Queue<Instant> cancelledAt = new ConcurrentLinkedQueue<>();
    var group = TaskGroup.builder().name("slow").timeout(Duration.ofSeconds(30)).build();
    group.run(
        () -> {
          for (int i = 0; i < 3; i++) {
            group.fork(
                () -> {
                  try {
                    return sleepThen(Duration.ofMinutes(5));
                  } finally {
                    cancelledAt.add(clock.instant());
                  }
                });
          }
        });
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    Instant deadline = start.plusSeconds(30);
    assertThat(List.copyOf(cancelledAt)).containsExactly(deadline, deadline, deadline);
  }

  @Test
  void aTimeoutMovedLaterWhileRunningFiresAtTheNewTime(VirtualClock clock) throws Exception {
    var scope = CancelScope.withTimeout(Duration.ofSeconds(10));
    scope.run(
        () -> {
          scope.setTimeout(Duration.ofSeconds(20));
          assertThat(scope.deadline()).contains(start.plusSeconds(20));
          sleepThen(Duration.ofMinutes(5));
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(clock.instant()).isEqualTo(start.plusSeconds(20));
  }

  @RepeatedTest(3)
  void sleepersWakeInTimeOrderEachAtItsOwnTime(VirtualClock clock) throws Exception {
    Queue<String> woke = new ConcurrentLinkedQueue<>();
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          for (int seconds : new int[] {3, 1, 2}) {
            group.fork(
                () -> {
                  CancelScope.sleep(Duration.ofSeconds(seconds));
                  woke.add(seconds + "s at " + Duration.between(start, clock.instant()));
                  return null;
                });
          }
        });
    assertThat(List.copyOf(woke)).containsExactly("1s at PT1S", "2s at PT2S", "3s at PT3S");
  }

  private static String sleepThen(Duration d) throws InterruptedException {
    CancelScope.sleep(d);
    return "slept";
  }
}
