package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code CancelScope.sleep} on the system clock: a sleep that is a checkpoint. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class SleepTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted(); // a failing test must not poison the next one
  }

  @Test
  void sleepsAtLeastTheDurationOnTheSystemClock() throws InterruptedException {
    long t0 = System.nanoTime();
    CancelScope.sleep(Duration.ofMillis(30));
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(30));
  }

  @RepeatedTest(5)
  void cancellationEndsTheSleepAndLeavesTheStatusSet() throws InterruptedException {
    CountDownLatch sleeping = new CountDownLatch(1);
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<Boolean> statusAfter = new AtomicReference<>();
    var group = TaskGroup.create();
    group.run(
        () -> {
          group.fork(
              () -> {
                try {
                  sleeping.countDown();
                  CancelScope.sleep(Duration.ofMinutes(5));
                } catch (InterruptedException e) {
                  thrown.set(e);
                  statusAfter.set(Thread.currentThread().isInterrupted());
                  throw e;
                }
              });
          sleeping.await();
          group.cancel();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(statusAfter.get()).as("a checkpoint leaves the status set").isTrue();
    assertThat(group.cancelCaught()).isTrue();
  }

  @Test
  void anAlreadyCancelledThreadThrowsAtOnceEvenForZero() throws InterruptedException {
    var scope = CancelScope.create();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    scope.run(
        () -> {
          scope.cancel();
          thrown.set(catchThrowable(() -> CancelScope.sleep(Duration.ZERO)));
          assertThat(Thread.currentThread().isInterrupted()).isTrue();
        });
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(scope.cancelCaught()).isFalse(); // the body swallowed it and returned
  }

  @RepeatedTest(5)
  void anOutsideInterruptEndsTheSleepAndClearsTheStatus() throws InterruptedException {
    Thread sleeper = Thread.currentThread();
    CountDownLatch started = new CountDownLatch(1);
    OutsideInterrupter interrupter = OutsideInterrupter.onceWaiting(started, () -> sleeper);
    started.countDown();
    Throwable thrown = catchThrowable(() -> CancelScope.sleep(Duration.ofMinutes(5)));
    interrupter.join();
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void anInterruptPendingBeforeTheCallThrowsAndIsCleared() {
    Thread.currentThread().interrupt();
    assertThatThrownBy(() -> CancelScope.sleep(Duration.ofMinutes(5)))
        .isInstanceOf(InterruptedException.class);
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void rejectsNegativeAndNull() {
    assertThatThrownBy(() -> CancelScope.sleep(Duration.ofMillis(-1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("must not be negative");
    assertThatThrownBy(() -> CancelScope.sleep(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessageContaining("duration");
  }

  @Test
  void aDurationTooLongForNanosIsStillASleep() throws InterruptedException {
    Boolean cut =
        CancelScope.moveOnAfter(
            Duration.ofMillis(20),
            () -> {
              CancelScope.sleep(Duration.ofSeconds(Long.MAX_VALUE));
              return false;
            });
    assertThat(cut).isNull(); // no overflow into the past: it slept until the deadline
  }
}
