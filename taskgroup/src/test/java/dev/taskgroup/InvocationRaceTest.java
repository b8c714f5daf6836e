package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link InvocationRace}'s Dekker pair, raced head on: the caller publishing a task it has just
 * forked ({@code entered}) against the task that ends the race ({@code end}), both released at the
 * same moment, many times. Whichever comes first, the new task must be cancelled: by the ending
 * task (it saw the new one in the list) or by the caller (it saw the end). Real tasks of a real
 * group, each waiting until it is cancelled.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class InvocationRaceTest {

  @Test
  void aTaskPublishedAsTheRaceEndsIsCancelledByOneSideOrTheOther() throws Exception {
    int rounds = Stress.scaled(40_000, 400_000);
    AtomicReference<InvocationRace> current = new AtomicReference<>();
    AtomicInteger released = new AtomicInteger(); // round number the ender may start
    AtomicInteger ended = new AtomicInteger(); // rounds the ender has finished
    Thread ender =
        Thread.ofPlatform()
            .start(
                () -> {
                  for (int round = 1; round <= rounds; round++) {
                    while (released.get() < round) {
                      Thread.onSpinWait();
                    }
                    current.get().end(0);
                    ended.set(round);
                  }
                });
    TaskGroup group = TaskGroup.create();
    int[] missed = new int[1];
    try {
      group.run(
          () -> {
            for (int round = 1; round <= rounds; round++) {
              Task<Void> winner = group.fork(InvocationRaceTest::waitUntilCancelled);
              Task<Void> late = group.fork(InvocationRaceTest::waitUntilCancelled);
              InvocationRace race = new InvocationRace(2);
              assertThat(race.entered(0, winner)).isTrue();
              current.set(race);
              released.set(round);
              race.entered(1, late);
              while (ended.get() < round) {
                assertThat(ender.isAlive())
                    .as("round %d: the ender is still there", round)
                    .isTrue();
                Thread.onSpinWait();
              }
              if (!late.isCancelled()) {
                missed[0]++;
                late.cancel(true);
              }
              assertThat(winner.isCancelled())
                  .as("round %d: the ender cancelled itself", round)
                  .isFalse();
              winner.cancel(true);
            }
          });
    } finally {
      released.set(Integer.MAX_VALUE); // a failed round must not leave the ender spinning
      ender.join();
    }
    assertThat(missed[0]).as("tasks neither side cancelled, of %d rounds", rounds).isZero();
  }

  private static void waitUntilCancelled() throws InterruptedException {
    new CountDownLatch(1).await();
  }
}
