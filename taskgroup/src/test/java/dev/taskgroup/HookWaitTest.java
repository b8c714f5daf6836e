package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A thread that registers an {@code onCancel} action in a scope already cancelled waits for the
 * action, uninterruptibly: that wait takes the thread's interrupt status, and the library must not
 * take it for a swallowed cancellation and interrupt the thread again and again while it waits (it
 * did, every few milliseconds: the task tree and the stuck warning counted re-deliveries the thread
 * never swallowed, and 10 000 such waiters on one carrier left the actions no time to run: nothing
 * came back). When the wait ends the cancellation is as it was: the status set, and a swallow
 * afterwards delivered again.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HookWaitTest {
  @RepeatedTest(3)
  void aThreadWaitingForItsActionIsNotInterruptedAgainAndIsCancelledAsBeforeOnceItEnds()
      throws Exception {
    CountDownLatch actionRunning = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<String> afterTheWait = new AtomicReference<>();
    TaskGroup group = TaskGroup.named("hook-wait");
    Thread owner =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    group.run(
                        () ->
                            group.fork(
                                "hook-waiter",
                                () -> {
                                  group.cancel("enough");
                                  try (CancelScope.Registration r =
                                      CancelScope.onCancel(
                                          () -> {
                                            actionRunning.countDown();
                                            awaitUninterruptibly(release);
                                          })) {
                                    afterTheWait.set(
                                        "interrupted " + Thread.currentThread().isInterrupted());
                                  }
                                  Thread.interrupted(); // swallowed: delivered again below
                                  Thread.sleep(60_000);
                                }));
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    actionRunning.await();
    // A bounded wait, not an ordering: it gives a re-delivery time to come (one is due within
    // 20 ms of a swallow).
    Thread.sleep(150);
    String tree = TaskTree.capture().format();
    release.countDown();
    owner.join();

    assertThat(tree)
        .as("while it waited for its action")
        .containsPattern("task 'hook-waiter' cancelled #\\d+ \"hook-waiter\" \\(cancelled by")
        .doesNotContain("redeliveries=");
    assertThat(afterTheWait).hasValue("interrupted true");
    assertThat(group.cancelCalled()).isTrue();
  }

  /**
   * 10 000 virtual threads, on one carrier, each registering an action in a cancelled scope: every
   * one comes back (in about 1.4 s; before, none came back after the first 256, in 40 s).
   */
  @Test
  void manyThreadsWaitingForTheirActionsOnOneCarrierAllComeBack() throws Exception {
    String out =
        Fixtures.runJvm(
            List.of("-Djdk.virtualThreadScheduler.parallelism=1"),
            ManyHookWaitersMain.class,
            "10000");
    assertThat(out).isEqualTo("all 10000 actions ran");
  }

  private static void awaitUninterruptibly(CountDownLatch latch) {
    boolean interrupted = false;
    while (true) {
      try {
        latch.await();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
