package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.internal.clock.LibraryClock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * A deadline moved from another thread while it is being fired. A firing thread takes the expired
 * entries out of the heap under the deadlines' lock and delivers their cancellations after
 * releasing it; a move that lands in between must not return with the scope uncancelled only for
 * the old deadline to cancel it afterwards, the clock standing before the new one (seen once in 300
 * runs on the timer thread), nor cancel the moved scope alone, apart from the others that expired
 * with it. Either the move comes first and nothing fires, or the expiry comes first and the scope
 * is cancelled when the move returns, together with the rest of its batch. The test holds the
 * window open by doing the firing thread's two halves itself ({@link Deadlines#takeDue}, {@link
 * Deadlines#fireTakenInline}) on a test clock, which the timer does not fire on.
 */
class DeadlineMovedWhileFiringTest {
  @RepeatedTest(3)
  @Timeout(20)
  void aDeadlineMovedLaterBetweenItsTakingAndItsMarkingCancelsNothingAfterTheMoveReturned()
      throws Exception {
    movedWhileFiring(s -> s.setTimeout(Duration.ofSeconds(10)));
    movedWhileFiring(s -> s.setDeadline(LibraryClock.instant().plusSeconds(10)));
  }

  /**
   * Nested scopes with one deadline expire together, and the outer absorbs: the inner one's
   * deadline moved later as both are fired must not cancel the inner alone (its thread would wake,
   * absorb the cancellation and leave the outer, which the firing thread then finds exited).
   */
  @RepeatedTest(3)
  @Timeout(20)
  void aMoveOfOneOfNestedScopesExpiringTogetherDoesNotCancelItAlone() throws Exception {
    ManualTime time = new ManualTime();
    LibraryClock.install(time);
    try {
      Instant at = LibraryClock.instant().plusSeconds(1);
      CancelScope outer = CancelScope.withDeadline(at);
      CancelScope inner = CancelScope.withDeadline(at);
      CountDownLatch entered = new CountDownLatch(1);
      AtomicReference<String> outerEnd = new AtomicReference<>();
      Thread thread =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      outer.run(
                          () -> {
                            inner.run(
                                () -> {
                                  entered.countDown();
                                  new CountDownLatch(1).await(); // ends only when cancelled
                                });
                            outerEnd.set("the outer's body went on after the inner scope");
                          });
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  });
      entered.await();
      time.move(Duration.ofSeconds(2));
      List<EnteredScope> taken = new ArrayList<>();
      Deadlines.takeDue(taken);

      inner.setDeadline(LibraryClock.instant().plusSeconds(10));
      assertThat(outer.cancelCalled())
          .as("the outer cancelled whenever the inner is: they expired together")
          .isEqualTo(inner.cancelCalled());
      Deadlines.fireTakenInline(taken);
      thread.join();

      assertThat(outer.cancelCaught()).as("the outer absorbs").isTrue();
      assertThat(inner.cancelCaught()).isFalse();
      assertThat(outerEnd).hasNullValue();
    } finally {
      LibraryClock.uninstall(time);
    }
  }

  private static void movedWhileFiring(Consumer<CancelScope> moveLater) throws Exception {
    ManualTime time = new ManualTime();
    LibraryClock.install(time);
    try {
      CancelScope scope = CancelScope.withTimeout(Duration.ofSeconds(1));
      CountDownLatch entered = new CountDownLatch(1);
      Thread thread =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      scope.run(
                          () -> {
                            entered.countDown();
                            new CountDownLatch(1).await(); // ends only when cancelled
                          });
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  });
      entered.await();
      time.move(Duration.ofSeconds(2)); // past the deadline; this clock fires nothing by itself
      List<EnteredScope> taken = new ArrayList<>();
      Deadlines.takeDue(taken); // the firing thread's first half
      assertThat(taken).as("the deadline was due and taken").hasSize(1);

      moveLater.accept(scope);
      boolean cancelledWhenTheMoveReturned = scope.cancelCalled();
      Deadlines.fireTakenInline(taken); // the firing thread's second half

      assertThat(scope.cancelCalled())
          .as("cancelled after the move returned, the clock 8 s before the new deadline")
          .isEqualTo(cancelledWhenTheMoveReturned);
      assertThat(scope.deadline()).as("the moved deadline is what the scope shows").isPresent();
      if (!scope.cancelCalled()) {
        Deadlines.fireDue(); // nothing is due yet: the scope goes on until it is cancelled
        assertThat(scope.cancelCalled()).isFalse();
        scope.cancel();
      }
      thread.join();
    } finally {
      LibraryClock.uninstall(time);
    }
  }
}
