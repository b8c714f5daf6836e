package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Platform threads handing work to each other are busy, not blocked, although each reads {@code
 * WAITING} from its unpark until the operating system runs it: auto-advance must not jump while
 * they work.
 */
@VirtualTime
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PlatformHandoffTest {
  private static final int ITEMS = 10_000;

  /**
   * Hands the items over once before the rounds, under an auto-advancing clock of its own (not
   * checked): the JIT compiler then does its work on this code and the clock's here, and does not
   * hold the CPU for milliseconds while a round's child, just woken, waits to run (a case the clock
   * cannot see: see autoAdvance()'s javadoc).
   */
  @BeforeAll
  static void compileTheHandOverFirst() throws InterruptedException {
    try (VirtualClock clock = VirtualClock.install().autoAdvance()) {
      handOver(new AtomicInteger());
    }
  }

  /**
   * Two platform children hand {@link #ITEMS} items to each other through synchronous queues,
   * taking no virtual time, inside a scope with an hour's timeout, under the default threshold.
   * When only their states were looked at, the clock jumped in 18 of 60 rounds on one CPU. (With a
   * threshold of 2 ms it jumped in every round, but the fixed clock can still jump there when the
   * CPU is shared with busy threads, as the build's own are when it starts the test class.)
   */
  @RepeatedTest(20)
  void platformThreadsHandingItemsOverDoNotLetTheClockJump(VirtualClock clock) throws Exception {
    clock.autoAdvance();
    Instant start = clock.instant();
    AtomicInteger handedBack = new AtomicInteger();
    CancelScope sentinel = CancelScope.withTimeout(Duration.ofHours(1));
    sentinel.run(() -> handOver(handedBack));
    assertThat(sentinel.cancelCalled())
        .as("the hour's deadline fired after %d of %d items", handedBack.get(), ITEMS)
        .isFalse();
    assertThat(clock.instant()).isEqualTo(start);
  }

  /** Two platform children hand {@link #ITEMS} items there and back through synchronous queues. */
  private static void handOver(AtomicInteger handedBack) throws InterruptedException {
    SynchronousQueue<Integer> there = new SynchronousQueue<>();
    SynchronousQueue<Integer> back = new SynchronousQueue<>();
    var group = TaskGroup.builder().threadFactory(Thread.ofPlatform().factory()).build();
    group.run(
        () -> {
          group.fork(
              () -> {
                for (int i = 0; i < ITEMS; i++) {
                  there.put(i);
                  back.take();
                  handedBack.incrementAndGet();
                }
              });
          group.fork(
              () -> {
                for (int i = 0; i < ITEMS; i++) {
                  back.put(there.take());
                }
              });
        });
  }
}
