package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Soak: many groups in a row, one very large group, and a supervisor running for a while. Short in
 * CI; with {@code -Pstress} the sizes of the issue (10 000 000 groups, 1 000 000 children, minutes
 * of streaming failures).
 */
@Timeout(value = 2, unit = TimeUnit.HOURS)
class SoakTest {

  @Test
  void manySequentialSmallGroupsKeepTheHeapFlat() throws Exception {
    int groups = Stress.scaled(200_000, 10_000_000);
    AtomicLong sum = new AtomicLong();
    long[] heap = new long[2];
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    for (int i = 0; i < groups; i++) {
                      if (i == groups / 10) {
                        heap[0] = Probes.usedHeapAfterGc();
                      }
                      TaskGroup g = TaskGroup.create();
                      int v = i;
                      g.run(
                          () -> {
                            g.fork(() -> sum.addAndGet(v & 1));
                            CancelScope.moveOnAfter(Duration.ofHours(1), () -> sum.addAndGet(1));
                          });
                    }
                    heap[1] = Probes.usedHeapAfterGc();
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    owner.join();
    System.out.printf(
        "soak: %,d sequential groups (one child and one moveOnAfter each): heap after GC %,d KiB"
            + " at 10%%, %,d KiB at the end%n",
        groups, heap[0] / 1024, heap[1] / 1024);
    assertThat(sum.get()).isEqualTo(groups + groups / 2);
    assertThat(heap[1] - heap[0]).as("heap growth in bytes").isLessThan(16L << 20);
  }

  @Test
  void oneGroupWithManyParkedChildrenIsCancelled() throws Exception {
    int children = Stress.scaled(100_000, 1_000_000);
    AtomicInteger parked = new AtomicInteger();
    AtomicInteger ended = new AtomicInteger();
    TaskGroup g = TaskGroup.named("big");
    long[] nanos = new long[3];
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    nanos[0] = System.nanoTime();
                    g.run(
                        () -> {
                          for (int i = 0; i < children; i++) {
                            g.fork(
                                () -> {
                                  parked.incrementAndGet();
                                  while (!Thread.currentThread().isInterrupted()) {
                                    LockSupport.park();
                                  }
                                  ended.incrementAndGet();
                                });
                          }
                          while (parked.get() < children) {
                            Thread.sleep(1); // polling the count, an observable condition
                          }
                          nanos[1] = System.nanoTime();
                          g.cancel();
                        });
                    nanos[2] = System.nanoTime();
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    owner.join();
    System.out.printf(
        "soak: %,d children started in %.0f ms, cancelled in %.0f ms%n",
        children, (nanos[1] - nanos[0]) / 1e6, (nanos[2] - nanos[1]) / 1e6);
    assertThat(ended.get()).isEqualTo(children);
    assertThat(g.cancelCaught()).isTrue();
  }

  @Test
  void supervisorStreamsFailuresToItsHandlerForAWhile() throws Exception {
    Duration length = Stress.longMode() ? Duration.ofMinutes(3) : Duration.ofSeconds(3);
    AtomicLong handled = new AtomicLong();
    AtomicLong served = new AtomicLong();
    RuntimeException failure = new RuntimeException("request failed");
    TaskGroup server =
        TaskGroup.builder()
            .name("supervisor")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(t -> handled.incrementAndGet())
            .maxConcurrency(256)
            .timeout(length)
            .build();
    long[] heap = new long[2];
    CountDownLatch warm = new CountDownLatch(1);
    Thread sampler =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    if (warm.await(length.toMillis(), TimeUnit.MILLISECONDS)) {
                      heap[0] = Probes.usedHeapAfterGc();
                    }
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    server.run(
        () -> {
          for (long i = 0; ; i++) {
            long n = i;
            server.fork(
                () -> {
                  if (n % 3 == 0) {
                    throw failure;
                  }
                  served.incrementAndGet();
                });
            if (i == 100_000) {
              warm.countDown();
            }
            if (i % 1024 == 0) {
              CancelScope.checkpoint(); // ends the loop when the deadline cancels the group
            }
          }
        });
    sampler.join();
    heap[1] = Probes.usedHeapAfterGc();
    System.out.printf(
        "soak: supervisor ran %s: %,d served, %,d failures handled; heap after GC %,d KiB"
            + " early, %,d KiB at the end%n",
        length, served.get(), handled.get(), heap[0] / 1024, heap[1] / 1024);
    assertThat(server.cancelCaught()).isTrue();
    assertThat(handled.get()).isPositive();
    assertThat(heap[1] - heap[0]).as("heap growth in bytes").isLessThan(32L << 20);
  }

  /**
   * A supervisor that forks bursts and waits in between keeps nothing of the finished children: no
   * failure it handed to its handler, no result of a task nobody holds.
   */
  @Test
  void burstThenIdleSupervisorKeepsNoFinishedChild() throws Exception {
    int rounds = Stress.scaled(5, 200);
    int burst = Stress.scaled(400, 5_000);
    TaskGroup g =
        TaskGroup.builder()
            .name("bursts")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> {})
            .build();
    g.run(
        () -> {
          for (int r = 0; r < rounds; r++) {
            java.util.Queue<java.lang.ref.WeakReference<Object>> outcomes =
                new java.util.concurrent.ConcurrentLinkedQueue<>();
            CountDownLatch made = new CountDownLatch(burst);
            for (int i = 0; i < burst; i++) {
              boolean fail = (i & 1) == 0;
              g.fork(
                  () -> {
                    Object outcome = fail ? new RuntimeException("failed") : new byte[256];
                    outcomes.add(new java.lang.ref.WeakReference<>(outcome));
                    made.countDown();
                    if (outcome instanceof RuntimeException e) {
                      throw e;
                    }
                    return outcome;
                  });
            }
            made.await();
            int alive = Probes.awaitCleared(java.util.List.copyOf(outcomes));
            assertThat(alive).as("outcomes still reachable after burst %d", r).isZero();
          }
        });
    System.out.printf(
        "soak: %d bursts of %,d children, idle after each: no outcome kept%n", rounds, burst);
  }
}
