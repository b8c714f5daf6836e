package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.internal.clock.LibraryClock;
import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.spi.AbstractInterruptibleChannel;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A test clock's firing ({@link Deadlines#fireDue}, what {@code VirtualClock.advance} calls)
 * returns only once the cancellation of every deadline it made due has been delivered, also when
 * another thread fired it first: a scope entered after its own deadline passed expires at once,
 * together with every entry due no later than it, so a thread entering such a scope between the
 * clock's move and its firing takes the entries the move made due, and the firing finds nothing
 * left to fire (seen in 140 of 1 000 rounds of {@code advance} with a scope entered with a zero
 * timeout meanwhile). The test holds that thread in the delivery: the cancelled thread blocks in a
 * channel, and a virtual thread's interrupt closes the channel on the thread interrupting it, whose
 * close here runs until the test lets it go. A close that blocks instead (it may wait for the very
 * clock that fires: a thread sleeping on it) must not hold the firing for ever.
 */
class FireDueWaitsForDeliveriesTest {
  /**
   * A real channel (the JDK's own extension point) whose close lasts until the test lets it go:
   * running all along (spinning), or blocked.
   */
  static final class ChannelWithSlowClose extends AbstractInterruptibleChannel {
    /** How the close lasts: it spins, waits, or waits in short timed waits (as the JDK's do). */
    enum Lasts {
      SPINNING,
      WAITING,
      TIMED_WAITING
    }

    final Lasts lasts;
    final CountDownLatch blocked = new CountDownLatch(1);
    final CountDownLatch closing = new CountDownLatch(1);
    final CountDownLatch letClose = new CountDownLatch(1);
    final AtomicBoolean closed = new AtomicBoolean();

    ChannelWithSlowClose(Lasts lasts) {
      this.lasts = lasts;
    }

    @Override
    protected void implCloseChannel() {
      closing.countDown();
      boolean interrupted = false;
      while (letClose.getCount() != 0) {
        if (lasts == Lasts.SPINNING) {
          Thread.onSpinWait();
          continue;
        }
        try {
          if (lasts == Lasts.WAITING) {
            letClose.await();
          } else {
            letClose.await(10, TimeUnit.MILLISECONDS);
          }
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      closed.set(true);
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }

    /** Blocks in the channel until interrupted, as the JDK's channels do. */
    void block() throws IOException {
      begin();
      try {
        blocked.countDown();
        while (!Thread.currentThread().isInterrupted()) {
          LockSupport.park(this);
        }
      } finally {
        end(false);
      }
      throw new ClosedByInterruptException();
    }
  }

  @RepeatedTest(3)
  @Timeout(20)
  void theFiringWaitsForAnotherThreadsDeliveryOfADeadlineTheClockMadeDue() throws Exception {
    ManualTime time = new ManualTime();
    LibraryClock.install(time);
    ChannelWithSlowClose channel = new ChannelWithSlowClose(ChannelWithSlowClose.Lasts.SPINNING);
    try {
      CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(1));
      Thread owner = Thread.ofVirtual().start(() -> runQuietly(scope, channel::block));
      channel.blocked.await();
      time.move(Duration.ofSeconds(2)); // the scope's deadline is due; this clock fires nothing

      // Enters a scope whose deadline is due at once: it takes the scope's entry too, and delivers
      // it (interrupts the owner, which closes the channel here and waits).
      Thread enterer =
          Thread.ofPlatform()
              .start(() -> runQuietly(CancelScope.withTimeout(Duration.ZERO), () -> {}));
      channel.closing.await();

      AtomicReference<Boolean> deliveredWhenTheFiringReturned = new AtomicReference<>();
      CountDownLatch fired = new CountDownLatch(1);
      Thread firing =
          Thread.ofPlatform()
              .start(
                  () -> {
                    Deadlines.fireDue();
                    deliveredWhenTheFiringReturned.set(channel.closed.get());
                    fired.countDown();
                  });
      // Gives a firing that does not wait time to return (it would at once); one that waits
      // returns only after the channel is let go, whenever that is.
      boolean returnedFirst = fired.await(300, TimeUnit.MILLISECONDS);
      channel.letClose.countDown();
      firing.join();
      enterer.join();
      owner.join();

      assertThat(deliveredWhenTheFiringReturned.get())
          .as(
              "the delivery done when the firing returned (it returned before the close was let go: "
                  + returnedFirst
                  + ")")
          .isTrue();
      assertThat(scope.cancelCalled()).isTrue();
    } finally {
      LibraryClock.uninstall(time);
    }
  }

  /**
   * The same delivery blocked in the close: the firing returns (the close might be waiting for this
   * clock, which would then never move again), and the delivery ends once the close is let go.
   */
  @ParameterizedTest
  @EnumSource(
      value = ChannelWithSlowClose.Lasts.class,
      names = {"WAITING", "TIMED_WAITING"})
  @Timeout(20)
  void theFiringDoesNotWaitForADeliveryBlockedInWhatItCalled(ChannelWithSlowClose.Lasts lasts)
      throws Exception {
    ManualTime time = new ManualTime();
    LibraryClock.install(time);
    ChannelWithSlowClose channel = new ChannelWithSlowClose(lasts);
    try {
      CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(1));
      Thread owner = Thread.ofVirtual().start(() -> runQuietly(scope, channel::block));
      channel.blocked.await();
      time.move(Duration.ofSeconds(2));
      Thread enterer =
          Thread.ofPlatform()
              .start(() -> runQuietly(CancelScope.withTimeout(Duration.ZERO), () -> {}));
      channel.closing.await();

      Thread firing = Thread.ofPlatform().start(Deadlines::fireDue);
      boolean returned = firing.join(Duration.ofSeconds(10));
      channel.letClose.countDown();
      firing.join();
      enterer.join();
      owner.join();

      assertThat(returned).as("the firing returned while the close was blocked").isTrue();
      assertThat(channel.closed).isTrue();
      assertThat(scope.cancelCalled()).isTrue();
    } finally {
      channel.letClose.countDown();
      LibraryClock.uninstall(time);
    }
  }

  private interface Work {
    void run() throws Exception;
  }

  private static void runQuietly(CancelScope scope, Work work) {
    try {
      scope.run(work::run);
    } catch (Exception e) {
      // the owner's blocked call ends with the channel's ClosedByInterruptException
    }
  }
}
