package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One round of {@link ShieldTest}'s random shield toggling: a group's child keeps blocking (and
 * swallowing what it gets) in a shield under a cancelled scope while the group's body toggles the
 * shield at random moments, then leaves it on or off for good. {@link #play} runs the round and
 * asserts its outcome.
 */
final class ShieldToggleRound {
  private static final long PROMPT_MS = 1_000;

  private final ThreadKind kind;
  private final boolean endShielded;
  private final SplittableRandom random;
  private final String where;
  private final CancelScope outer = CancelScope.create();
  private final CancelScope shield = CancelScope.shielded();
  private final CountDownLatch inShield = new CountDownLatch(1);
  private final AtomicBoolean done = new AtomicBoolean(); // the shield is left as it ends
  private final AtomicInteger afterDone = new AtomicInteger(); // calls begun after, interrupted
  private final AtomicBoolean stop = new AtomicBoolean();
  private final AtomicLong endedAt = new AtomicLong();
  private final AtomicReference<String> afterOuter = new AtomicReference<>();
  private final AtomicReference<Task<Void>> task = new AtomicReference<>();
  private final AtomicBoolean stuck = new AtomicBoolean();
  private volatile long doneAt;

  private ShieldToggleRound(
      ThreadKind kind, boolean endShielded, SplittableRandom random, String where) {
    this.kind = kind;
    this.endShielded = endShielded;
    this.random = random;
    this.where = where;
  }

  /** Plays one round and asserts what must hold after it; {@code where} names it in failures. */
  static void play(ThreadKind kind, boolean endShielded, SplittableRandom random, String where)
      throws Exception {
    new ShieldToggleRound(kind, endShielded, random, where).play();
  }

  private void play() throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    int toggles = random.nextInt(5, 40);
    group.run(
        () -> {
          task.set(group.fork(this::child));
          inShield.await();
          outer.cancel();
          toggle(toggles);
          settle();
        });
    assertOutcome();
    threads.assertAllDone();
  }

  /** The child: blocks in the shield until told to stop, then meets the outer cancellation. */
  private void child() throws Exception {
    outer.run(
        () -> {
          shield.run(this::blockUntilStopped);
          Thread.sleep(60_000); // the outer cancellation, whatever the shield did
        });
    afterOuter.set("status " + Thread.currentThread().isInterrupted());
    Thread.sleep(20); // would throw if an interrupt had leaked
    afterOuter.set(afterOuter.get() + ", sleep completed");
  }

  private void blockUntilStopped() throws InterruptedException {
    inShield.countDown();
    while (!stop.get()) {
      boolean begunAfterDone = done.get();
      try {
        Thread.sleep(20); // the blocking call under test
      } catch (InterruptedException e) {
        if (begunAfterDone) {
          afterDone.incrementAndGet();
        }
        if (done.get() && !endShielded) {
          endedAt.set(System.nanoTime());
          throw e;
        }
        // swallowed while the shield toggles
      }
    }
  }

  /** Turns the shield off and on {@code toggles} times, at random moments. */
  private void toggle(int toggles) {
    boolean on = true;
    for (int i = 0; i < toggles; i++) {
      on = !on;
      shield.setShielded(on);
      long until = System.nanoTime() + random.nextLong(0, 1_500_000L);
      while (System.nanoTime() - until < 0L) {
        Thread.onSpinWait();
      }
    }
  }

  /** Leaves the shield as the round ends, then lets the child go once it had its chance. */
  private void settle() {
    shield.setShielded(endShielded);
    doneAt = System.nanoTime();
    done.set(true);
    if (endShielded) {
      Probes.awaitTrue( // a bounded wait: shows that no more interrupts come
          "a few blocking calls in the shield",
          Duration.ofSeconds(5),
          () -> System.nanoTime() - doneAt > TimeUnit.MILLISECONDS.toNanos(80));
      stop.set(true);
    } else {
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
      while (endedAt.get() == 0L && System.nanoTime() - until < 0L) {
        Thread.yield();
      }
      stuck.set(endedAt.get() == 0L);
      stop.set(true); // a stuck child is let go, so the test can report
    }
  }

  private void assertOutcome() {
    assertThat(stuck)
        .as(
            "%s: the shield was turned off for good under a cancelled scope, but the child was"
                + " still not cancelled 2 s later (stuck)",
            where)
        .isFalse();
    if (endShielded) {
      assertThat(afterDone.get())
          .as(
              "%s: blocking calls begun after the shield went on for good that were interrupted",
              where)
          .isLessThanOrEqualTo(1);
    } else {
      assertThat(Probes.millis(endedAt.get() - doneAt))
          .as("%s: ms from the last unshield to the child's cancellation", where)
          .isLessThan(PROMPT_MS);
    }
    assertThat(afterOuter.get())
        .as("%s: after the outer scope", where)
        .isEqualTo("status false, sleep completed");
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(shield.cancelCaught()).isFalse();
  }
}
