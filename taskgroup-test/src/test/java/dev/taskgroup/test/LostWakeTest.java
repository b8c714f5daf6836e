package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * A wake-up for a thread on its way to a sleep is not lost. The library checks for a cancellation,
 * then sleeps; a cancellation delivered in between (a cooperative scope's deadline: no interrupt)
 * wakes a thread that does not sleep yet. The unpark's permit did not last: the sleep takes the
 * timeline's lock before it parks, and a thread that waits for a lock parks on it, using the permit
 * up. The thread then slept until its own end, and auto-advance jumped there (a day, in the
 * contract test: 1 round in 150 with the CPUs loaded, 0 in 600 after). Here the permit is used up
 * on purpose, as the lock's park did.
 */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class LostWakeTest {
  @RepeatedTest(3)
  void aSleepAfterAWakeForAThreadNotYetSleepingReturnsAtOnce() throws InterruptedException {
    Thread.interrupted(); // no park of this thread returns early but for the wake
    LockSupport.parkNanos(1_000_000L); // nor for a permit left by an earlier test
    VirtualTimeline time = new VirtualTimeline(0L, Instant.EPOCH);
    time.wake(Thread.currentThread()); // the cancellation's delivery: not sleeping yet
    LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(5)); // uses the permit up, as the lock did
    time.parkUntil(time.nanoTime() + Duration.ofDays(1).toNanos()); // nothing else wakes it
    assertThat(time.sleeperWaking()).isFalse();
    // Once only: the next sleep sleeps (until a wake, here a second one from another thread).
    Thread sleeper = Thread.currentThread();
    Thread waker =
        Thread.ofPlatform()
            .start(
                () -> {
                  while (sleeper.getState() != Thread.State.WAITING) {
                    Thread.onSpinWait(); // until the sleep has parked
                  }
                  time.wake(sleeper);
                });
    time.parkUntil(time.nanoTime() + Duration.ofDays(1).toNanos()); // returns: the wake ended it
    waker.join();
  }
}
