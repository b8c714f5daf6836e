package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.ref.WeakReference;
import java.util.ArrayDeque;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The re-delivery watcher's queue: first in, first out with each entry's time, across the ring's
 * wrap and its growth, and keeping nothing it gave back.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WatchQueueTest {
  private static ThreadState state() {
    return new OwnThread(Thread.ofVirtual().unstarted(() -> {}));
  }

  /**
   * Random adds and removals against ArrayDeque as the model: sizes that cross every capacity up to
   * 2 048 many times, with the ring's head anywhere when it grows. Seeded: -DwatchQueue.seed=N
   * replays.
   */
  @RepeatedTest(5)
  void keepsTheOrderAndTheTimesOfWhatWasAddedAcrossWrapAndGrowth() {
    long seed = Long.getLong("watchQueue.seed", System.nanoTime());
    System.out.println("WatchQueueTest seed=" + seed + " (replay: -DwatchQueue.seed=" + seed + ")");
    SplittableRandom random = new SplittableRandom(seed);
    WatchQueue queue = new WatchQueue();
    ArrayDeque<ThreadState> model = new ArrayDeque<>();
    ArrayDeque<Long> modelTimes = new ArrayDeque<>();
    long time = random.nextLong();
    for (int op = 0; op < 200_000; op++) {
      // Phases that mostly add, then mostly remove, so the size sweeps 0 .. ~2 000 and back.
      boolean adding = ((op / 4_000) % 2 == 0) ? random.nextInt(10) < 7 : random.nextInt(10) < 3;
      if (adding || model.isEmpty()) {
        ThreadState ts = state();
        time += random.nextLong(0, 1_000); // never earlier than the last, as the watcher adds
        queue.add(ts, time);
        model.addLast(ts);
        modelTimes.addLast(time);
      } else {
        assertThat(queue.firstTime()).isEqualTo(modelTimes.peekFirst());
        assertThat(queue.removeFirst()).isSameAs(model.pollFirst());
        modelTimes.pollFirst();
      }
      assertThat(queue.size()).isEqualTo(model.size());
      assertThat(queue.isEmpty()).isEqualTo(model.isEmpty());
      if (queue.isEmpty()) {
        queue.shrinkIfEmpty();
      }
    }
    while (!model.isEmpty()) {
      assertThat(queue.firstTime()).isEqualTo(modelTimes.pollFirst());
      assertThat(queue.removeFirst()).isSameAs(model.pollFirst());
    }
    assertThat(queue.isEmpty()).isTrue();
  }

  /** A watch taken out, or left when the ring grew, is not kept by the queue. */
  @Test
  void keepsNoThreadStateItGaveBack() throws InterruptedException {
    WatchQueue queue = new WatchQueue();
    WeakReference<?>[] refs = new WeakReference<?>[1_000];
    for (int round = 0; round < 3; round++) {
      queue.add(state(), round); // moves the head, so that later growth copies a wrapped ring
      queue.removeFirst();
    }
    for (int i = 0; i < refs.length; i++) {
      ThreadState ts = state();
      refs[i] = new WeakReference<>(ts);
      queue.add(ts, i);
    }
    for (int i = 0; i < refs.length; i++) {
      queue.removeFirst();
    }
    queue.add(state(), refs.length); // still usable; the old slots hold nothing
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    int alive;
    do {
      System.gc();
      alive = 0;
      for (WeakReference<?> r : refs) {
        alive += r.get() != null ? 1 : 0;
      }
    } while (alive > 0 && System.nanoTime() - end < 0L);
    assertThat(alive).as("thread states still reachable after removal").isZero();
    assertThat(queue.size()).isEqualTo(1);
  }
}
