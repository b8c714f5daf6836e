package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Deadlines while CPU-bound virtual threads hold every carrier: the deadline timer, a virtual
 * thread, gets no carrier then, and its backstop on a platform thread fires the deadline late by a
 * few tens of milliseconds at most, seen at the busy threads' next checkpoint. And the backstop and
 * the timer never both fire one deadline.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeadlineOnBusyCarriersTest {
  /** The carriers of this JVM's virtual-thread scheduler. */
  private static final int CARRIERS =
      Integer.getInteger(
          "jdk.virtualThreadScheduler.parallelism", Runtime.getRuntime().availableProcessors());

  /** "Within the backstop's bound" (a few tens of ms), generously, for a loaded 2-core machine. */
  private static final Duration PROMPT = Duration.ofSeconds(2);

  /** How long a busy thread spins when nothing stops it: a failure, and the end of it. */
  private static final long GIVE_UP_NANOS = TimeUnit.SECONDS.toNanos(5);

  @TempDir Path dir;

  /** Spins for a millisecond at a time, with a checkpoint after each, until cancelled. */
  private static void spinWithCheckpoints() throws InterruptedException {
    long start = System.nanoTime();
    while (System.nanoTime() - start < GIVE_UP_NANOS) {
      long until = System.nanoTime() + 1_000_000L;
      while (System.nanoTime() - until < 0L) {
        Thread.onSpinWait();
      }
      CancelScope.checkpoint();
    }
  }

  /**
   * One more CPU-bound virtual thread than there are carriers, each in its own withTimeout(100 ms)
   * scope, spinning with checkpoints: every scope is cancelled promptly and absorbs. (The last
   * thread starts when a carrier frees up, and its timeout counts from then.)
   */
  @RepeatedTest(3)
  void timeoutsFireWhileCpuBoundThreadsHoldEveryCarrier() throws Exception {
    int n = CARRIERS + 1;
    CancelScope[] scopes = new CancelScope[n];
    long[] tookNanos = new long[n];
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int k = i;
      scopes[k] = CancelScope.withTimeout(Duration.ofMillis(100));
      threads.add(
          Thread.ofVirtual()
              .start(
                  () -> {
                    long start = System.nanoTime();
                    try {
                      scopes[k].run(DeadlineOnBusyCarriersTest::spinWithCheckpoints);
                    } catch (InterruptedException e) {
                      throw new AssertionError("escaped its own scope", e);
                    }
                    tookNanos[k] = System.nanoTime() - start;
                  }));
    }
    for (Thread t : threads) {
      t.join();
    }
    for (int i = 0; i < n; i++) {
      System.out.printf(
          "busy thread %d of %d cancelled after %d ms%n", i, n, tookNanos[i] / 1_000_000);
      assertThat(scopes[i].cancelCaught())
          .as("thread %d's scope absorbed its deadline", i)
          .isTrue();
      assertThat(Duration.ofNanos(tookNanos[i])).as("thread %d", i).isLessThan(PROMPT);
    }
  }

  /** A group with a timeout whose children, more than there are carriers, are all CPU-bound. */
  @RepeatedTest(3)
  void aGroupTimeoutFiresWhenEveryChildIsCpuBound() throws Exception {
    TaskGroup group = TaskGroup.builder().name("busy").timeout(Duration.ofMillis(100)).build();
    long start = System.nanoTime();
    group.run(
        () -> {
          for (int i = 0; i < CARRIERS + 1; i++) {
            group.fork(DeadlineOnBusyCarriersTest::spinWithCheckpoints);
          }
        });
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    System.out.printf("group of busy children returned after %d ms%n", took.toMillis());
    assertThat(group.cancelCaught()).isTrue();
    assertThat(took).isLessThan(PROMPT);
  }

  /**
   * Many deadlines, spread over 200 ms, while CPU-bound threads hold every carrier for the first
   * half: the backstop fires those the starved timer leaves, the timer the rest once it runs again,
   * and the two race for those overdue when the carriers free up. Each deadline expires exactly
   * once: every scope is cancelled for its deadline, and there are as many DeadlineExpired events
   * as scopes.
   */
  @RepeatedTest(5)
  void eachDeadlineExpiresOnceWhetherTheTimerOrTheBackstopFiresIt() throws Exception {
    int n = 1_000;
    CancelScope[] scopes = new CancelScope[n];
    List<Thread> sleepers = new ArrayList<>();
    CountDownLatch entered = new CountDownLatch(n);
    Path file = dir.resolve("deadlines.jfr");
    try (Recording recording = new Recording()) {
      recording.enable(DEADLINE_EVENT).withoutThreshold();
      recording.start();
      Instant first = Instant.now().plusMillis(300);
      for (int i = 0; i < n; i++) {
        scopes[i] = CancelScope.withDeadline(first.plusNanos(i * 200_000_000L / n));
        sleepers.add(sleeperIn(scopes[i], entered));
      }
      entered.await();
      holdEveryCarrierFor(Duration.between(Instant.now(), first).plusMillis(100));
      for (Thread t : sleepers) {
        assertThat(t.join(Duration.ofSeconds(10))).as("every sleeper's deadline fired").isTrue();
      }
      recording.stop();
      recording.dump(file);
    }
    Map<String, Long> byThread = deadlineEventsByThread(file);
    System.out.println("deadlines fired, by thread: " + byThread);
    for (CancelScope s : scopes) {
      assertThat(s.cancelCaught()).isTrue();
      assertThat(s.cancelReason().orElseThrow()).contains("deadline");
    }
    assertThat(byThread.values().stream().mapToLong(Long::longValue).sum())
        .as("DeadlineExpired events")
        .isEqualTo(n);
    assertThat(byThread).containsKey("taskgroup-deadline-backstop");
  }

  private static final String DEADLINE_EVENT = "dev.taskgroup.DeadlineExpired";

  /** A virtual thread blocked in {@code s} until it is cancelled. */
  private static Thread sleeperIn(CancelScope s, CountDownLatch entered) {
    return Thread.ofVirtual()
        .start(
            () -> {
              try {
                s.run(
                    () -> {
                      entered.countDown();
                      new CountDownLatch(1).await();
                    });
              } catch (InterruptedException e) {
                throw new AssertionError("escaped its own scope", e);
              }
            });
  }

  /** Spins on a virtual thread per carrier, outside any scope, for {@code d}; returns after. */
  private static void holdEveryCarrierFor(Duration d) throws InterruptedException {
    long until = System.nanoTime() + d.toNanos();
    List<Thread> busy = new ArrayList<>();
    for (int i = 0; i < CARRIERS; i++) {
      busy.add(
          Thread.ofVirtual()
              .start(
                  () -> {
                    while (System.nanoTime() - until < 0L) {
                      Thread.onSpinWait();
                    }
                  }));
    }
    for (Thread t : busy) {
      t.join();
    }
  }

  /** The recorded DeadlineExpired events, counted by the name of the thread that fired them. */
  private static Map<String, Long> deadlineEventsByThread(Path file) throws IOException {
    return RecordingFile.readAllEvents(file).stream()
        .filter(e -> e.getEventType().getName().equals(DEADLINE_EVENT))
        .collect(
            Collectors.groupingBy(
                e -> e.getThread() == null ? "?" : e.getThread().getJavaName(),
                Collectors.counting()));
  }
}
