package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.spi.AbstractInterruptibleChannel;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Auto-advance counts the library's own helper threads while they work for a scope: the thread
 * running an {@code onCancel} action, and the one delivering a deadline to a scope with a group
 * below. Each test keeps such a thread busy (running, not blocked) for many thresholds while every
 * other thread involved is blocked, and checks that the time did not move meanwhile.
 */
@VirtualTime
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HelperThreadsTest {
  /** How long the helper's work runs: twenty default thresholds of real time. */
  private static final Duration WORK = VirtualClock.DEFAULT_AUTO_ADVANCE_THRESHOLD.multipliedBy(20);

  /**
   * The pattern for a blocking call that an interrupt does not end: a cooperative scope whose
   * {@code onCancel} action ends the wait (here it computes for a while first, as a cancel over the
   * network takes a while). The scope's thread waits for the action; the clock must not jump to the
   * outer deadline meanwhile.
   */
  @RepeatedTest(5)
  void anOnCancelActionThatRunsHoldsTheClockStill(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    CancelScope outer = CancelScope.withTimeout(Duration.ofSeconds(2));
    ActionSeen seen = new ActionSeen();
    outer.run(() -> waitEndedByAnAction(clock, outer, seen));
    seen.assertNoJump(start.plusSeconds(1));
  }

  /** The same inside a group: the action counts as one of the group's members while it runs. */
  @RepeatedTest(5)
  void anOnCancelActionInAGroupThatRunsHoldsTheClockStill(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    CancelScope outer = CancelScope.withTimeout(Duration.ofSeconds(2));
    ActionSeen seen = new ActionSeen();
    outer.run(
        () -> {
          var group = TaskGroup.builder().threadFactory(Thread.ofPlatform().factory()).build();
          group.run(() -> group.fork(() -> waitEndedByAnAction(clock, outer, seen)));
        });
    seen.assertNoJump(start.plusSeconds(1));
  }

  /**
   * A deadline found due when it is set, on a running group's scope, is delivered on a helper
   * thread. Here the delivery takes a while: the group's owner is blocked in an interruptible
   * channel, whose close runs on the thread that interrupts it. The children, asleep for 10 s, must
   * be cancelled at the deadline's instant, not after a jump to the end of their sleeps.
   */
  @RepeatedTest(5)
  void aDeadlineDeliveryThatRunsHoldsTheClockStill(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    List<Duration> childrenCancelledAt = new CopyOnWriteArrayList<>();
    CountDownLatch sleeping = new CountDownLatch(2);
    SlowToCloseChannel channel = new SlowToCloseChannel(clock);
    var group = TaskGroup.builder().threadFactory(Thread.ofPlatform().factory()).build();
    Thread owner = Thread.currentThread();
    group.run(
        () -> {
          // A child that sets the deadline once the others sleep and the owner is blocked in the
          // channel: it runs (holds the clock still) until then.
          group.fork(
              () -> {
                while (sleeping.getCount() > 0 || !channel.blocks(owner)) {
                  Thread.onSpinWait();
                }
                group.cancelScope().setTimeout(Duration.ZERO);
              });
          for (int i = 0; i < 2; i++) {
            group.fork(
                () -> {
                  sleeping.countDown();
                  try {
                    CancelScope.sleep(Duration.ofSeconds(10));
                  } finally {
                    childrenCancelledAt.add(Duration.between(start, clock.instant()));
                  }
                });
          }
          try {
            channel.block();
          } catch (ClosedByInterruptException expected) {
            // the cancellation's: the deadline's delivery interrupted the owner
          }
        });
    assertThat(channel.closedAt.get())
        .as("the time when the delivery had closed the channel (the time must not have moved)")
        .isEqualTo(start);
    assertThat(childrenCancelledAt).containsExactly(Duration.ZERO, Duration.ZERO);
  }

  /**
   * Registers an action that runs for {@link #WORK} and then ends the wait, in a cooperative scope
   * with a 1 s deadline; the wait is a queue the interrupt would not reach anyway.
   */
  private static void waitEndedByAnAction(VirtualClock clock, CancelScope outer, ActionSeen seen)
      throws InterruptedException {
    BlockingQueue<String> queue = new LinkedBlockingQueue<>();
    CancelScope.cooperative()
        .run(
            () ->
                CancelScope.withTimeout(Duration.ofSeconds(1))
                    .run(
                        () -> {
                          try (var stop =
                              CancelScope.onCancel(
                                  () -> {
                                    seen.started.set(clock.instant());
                                    runFor(WORK);
                                    seen.ended.set(clock.instant());
                                    seen.outerFired.set(outer.cancelCalled());
                                    queue.put("stop");
                                  })) {
                            queue.take();
                          }
                        }));
  }

  /** What the action saw of the clock. */
  private static final class ActionSeen {
    final AtomicReference<Instant> started = new AtomicReference<>();
    final AtomicReference<Instant> ended = new AtomicReference<>();
    final AtomicReference<Boolean> outerFired = new AtomicReference<>();

    void assertNoJump(Instant deadline) {
      assertThat(started.get()).as("the action started at its deadline").isEqualTo(deadline);
      assertThat(ended.get()).as("the time when the action ended").isEqualTo(deadline);
      assertThat(outerFired.get()).as("the outer deadline fired while the action ran").isFalse();
    }
  }

  /** Computes (stays RUNNABLE) for {@code d} of real time: work, not a wait. */
  private static void runFor(Duration d) {
    long end = System.nanoTime() + d.toNanos();
    while (System.nanoTime() - end < 0L) {
      Thread.onSpinWait();
    }
  }

  /**
   * A channel whose one blocking operation waits until the channel is closed, without letting an
   * interrupt end the wait itself (the owner stays parked: blocked for the clock). Its close, which
   * the JDK runs on the thread that interrupts the one blocked in it, computes for {@link #WORK}
   * and records the virtual time when it is done.
   */
  private static final class SlowToCloseChannel extends AbstractInterruptibleChannel {
    private final VirtualClock clock;
    private final CountDownLatch closed = new CountDownLatch(1);
    private final CountDownLatch entered = new CountDownLatch(1);
    final AtomicReference<Instant> closedAt = new AtomicReference<>();

    SlowToCloseChannel(VirtualClock clock) {
      this.clock = clock;
    }

    void block() throws IOException {
      boolean interrupted = false;
      begin();
      try {
        entered.countDown();
        while (true) {
          try {
            closed.await();
            break;
          } catch (InterruptedException e) {
            interrupted = true; // parks again: only the close ends the wait
          }
        }
      } finally {
        if (interrupted) {
          Thread.currentThread().interrupt();
        }
        end(false);
      }
    }

    /** Whether {@code t} is parked inside {@link #block()}. */
    boolean blocks(Thread t) {
      return entered.getCount() == 0 && t.getState() == Thread.State.WAITING;
    }

    @Override
    protected void implCloseChannel() {
      runFor(WORK);
      closedAt.set(clock.instant());
      closed.countDown();
    }
  }
}
