package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The library's own threads (the deadline timer and its backstop, the re-delivery watcher) end once
 * they have had nothing to do for the keep-alive, and start again when there is work: no deadline
 * and no re-delivery is lost to a thread that is ending. A short keep-alive here; the JMX bean's
 * keeper, which ends only once no thread that used the library is alive, and the class loader that
 * can then be collected: ClassLoaderUnloadTest.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LibraryThreadsTest {
  private static final List<String> NAMES =
      List.of("taskgroup-deadline-backstop", "taskgroup-redelivery");

  private long keepAliveMillis;

  @BeforeEach
  void shortKeepAlive() {
    keepAliveMillis = TimeUnit.NANOSECONDS.toMillis(LibraryThreads.keepAliveNanos());
    LibraryThreads.setKeepAliveMillis(50);
  }

  @AfterEach
  void restoreKeepAlive() throws InterruptedException {
    awaitEnded(); // no thread left from a short keep-alive for the next test class to count
    LibraryThreads.setKeepAliveMillis(keepAliveMillis);
  }

  /** Starts the timer, the backstop and the watcher: a deadline, and a child that swallows. */
  private static void useEveryThread() throws InterruptedException {
    CancelScope deadline = CancelScope.withTimeout(Duration.ofMillis(1));
    deadline.run(() -> Thread.sleep(60_000)); // until the deadline interrupts it
    assertThat(deadline.cancelCaught()).as("the deadline fired").isTrue();
    swallowInACancelledGroup();
  }

  /** A child that swallows the group's cancel and sleeps again: only a re-delivery ends it. */
  private static void swallowInACancelledGroup() throws InterruptedException {
    TaskGroup g = TaskGroup.named("swallower");
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch swallowed = new CountDownLatch(1);
    g.run(
        () -> {
          g.fork(
              () -> {
                started.countDown();
                try {
                  Thread.sleep(60_000);
                } catch (InterruptedException e) {
                  swallowed.countDown(); // and goes on as if nothing happened
                }
                Thread.sleep(60_000); // until interrupted again
                return null;
              });
          started.await(); // a child cancelled before it runs never runs
          g.cancel();
        });
    assertThat(swallowed.getCount()).as("the child swallowed the first interrupt").isZero();
  }

  private static List<Thread> libraryThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> NAMES.contains(t.getName()))
        .toList();
  }

  /** Waits until every library thread has ended (or fails after 10 s). */
  private static void awaitEnded() throws InterruptedException {
    await(
        "the library's threads ended",
        () -> !DeadlineTimer.running() && !DeadlineBackstop.running() && !Redelivery.running());
    for (Thread t : libraryThreads()) {
      t.join(); // gone from the fields; its last instructions
    }
  }

  private static void await(String what, BooleanSupplier condition) {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime() - until).as("timed out waiting for: %s", what).isNegative();
      LockSupport.parkNanos(1_000_000L); // polls fields: nothing to be woken by
    }
  }

  @Test
  void everyLibraryThreadEndsAfterTheKeepAliveWithNothingToDo() throws InterruptedException {
    useEveryThread();
    assertThat(libraryThreads()).isNotEmpty();
    long before = System.nanoTime();
    awaitEnded();
    assertThat(libraryThreads()).isEmpty();
    System.out.printf(
        "library threads ended %d ms after their last work%n",
        (System.nanoTime() - before) / 1_000_000);
  }

  @RepeatedTest(3)
  void deadlinesAndRedeliveriesWorkAgainOnceTheThreadsHaveEnded() throws InterruptedException {
    useEveryThread();
    awaitEnded();
    long start = System.nanoTime();
    useEveryThread(); // each asserts what it needs: the deadline fired, the swallower ended
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
    assertThat(DeadlineTimer.running() || DeadlineBackstop.running() || Redelivery.running())
        .as("the threads started again")
        .isTrue();
  }

  /**
   * With a keep-alive of a millisecond the threads end between almost every two uses, at random
   * points: a deadline set, or a swallower registered, as a thread decides to end is not lost.
   */
  @RepeatedTest(3)
  void threadsEndingAndStartingAllTheTimeLoseNoDeadlineAndNoRedelivery() throws Exception {
    LibraryThreads.setKeepAliveMillis(1);
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    Random random = new Random(seed);
    int restarts = 0; // rounds that found their thread gone: it started again
    for (int i = 0; i < 150; i++) {
      LockSupport.parkNanos(random.nextInt(3_000_000)); // a gap of 0-3 ms: sometimes they end
      long start = System.nanoTime();
      boolean deadlineRound = random.nextBoolean();
      if (deadlineRound ? !DeadlineTimer.running() : !Redelivery.running()) {
        restarts++;
      }
      if (deadlineRound) {
        CancelScope deadline = CancelScope.withTimeout(Duration.ofNanos(random.nextInt(2_000_000)));
        deadline.run(() -> Thread.sleep(60_000));
        assertThat(deadline.cancelCaught()).as("round %d: the deadline fired", i).isTrue();
      } else {
        swallowInACancelledGroup();
      }
      assertThat(Duration.ofNanos(System.nanoTime() - start))
          .as("round %d (seed %d)", i, seed)
          .isLessThan(Duration.ofSeconds(5));
    }
    System.out.println(restarts + " of 150 rounds started a thread that had ended");
    assertThat(restarts).as("rounds that found their thread ended").isPositive();
  }
}
