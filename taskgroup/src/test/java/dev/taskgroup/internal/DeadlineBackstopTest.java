package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.internal.clock.LibraryClock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The deadline timer's backstop as a thread: one daemon platform thread that parks idle once no
 * deadline has been pending for a while, that the next deadline wakes, and that fires nothing while
 * a test clock is installed. (Its end after the keep-alive: LibraryThreadsTest.)
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeadlineBackstopTest {
  private static final String NAME = "taskgroup-deadline-backstop";

  private static final int CARRIERS =
      Integer.getInteger(
          "jdk.virtualThreadScheduler.parallelism", Runtime.getRuntime().availableProcessors());

  /** Runs a scope with a deadline, which starts the timer and its backstop if not yet started. */
  private static Thread startedBackstop() throws InterruptedException {
    CancelScope.withTimeout(Duration.ofMillis(20)).run(() -> new CountDownLatch(1).await());
    List<Thread> found =
        Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(NAME)).toList();
    assertThat(found).as("threads named %s", NAME).hasSize(1);
    return found.get(0);
  }

  /** Waits, polling the thread's state, until the backstop is parked idle (or fails). */
  private static void awaitIdle(Thread backstop) {
    await(
        "the backstop parked idle",
        Duration.ofSeconds(10),
        () ->
            Deadlines.nextDue().isEmpty()
                && DeadlineBackstop.idle()
                && backstop.getState() == Thread.State.TIMED_WAITING
                && LockSupport.getBlocker(backstop) == DeadlineBackstop.class);
  }

  /** Spins with a checkpoint after each step until cancelled, or for 5 s (a failure). */
  private static void spinWithCheckpoints() throws InterruptedException {
    long start = System.nanoTime();
    while (System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5)) {
      Thread.onSpinWait();
      CancelScope.checkpoint();
    }
  }

  /**
   * With Deadlines.LOCK held by the caller: starts a virtual thread that takes and releases it, and
   * returns once that thread is queued on it.
   */
  private static Thread queueVirtualThreadOnTheHeldLock() {
    Thread queued =
        Thread.ofVirtual()
            .start(
                () -> {
                  Deadlines.LOCK.lock();
                  Deadlines.LOCK.unlock();
                });
    await(
        "a virtual thread queued on the lock",
        Duration.ofSeconds(5),
        () -> Deadlines.LOCK.hasQueuedThread(queued));
    return queued;
  }

  private static void await(String what, Duration max, BooleanSupplier condition) {
    long until = System.nanoTime() + max.toNanos();
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime() - until).as("timed out waiting for: %s", what).isNegative();
      LockSupport.parkNanos(1_000_000L); // polls a thread's state: nothing to be woken by
    }
  }

  @Test
  void oneDaemonPlatformThreadParksIdleOnceNoDeadlineIsPending() throws Exception {
    Thread backstop = startedBackstop();
    assertThat(backstop.isVirtual()).isFalse();
    assertThat(backstop.isDaemon()).isTrue();
    assertThat(backstop.getContextClassLoader()).isSameAs(ClassLoader.getSystemClassLoader());
    long before = System.nanoTime();
    awaitIdle(backstop);
    System.out.printf(
        "backstop idle %d ms after the last deadline%n", (System.nanoTime() - before) / 1_000_000);
  }

  /**
   * From idle, the next deadline wakes the backstop (the wake-up is not lost): CPU-bound threads
   * holding every carrier in withTimeout(100 ms) scopes are cancelled promptly.
   */
  @RepeatedTest(3)
  void anIdleBackstopIsWokenByTheNextDeadline() throws Exception {
    Thread backstop = startedBackstop();
    awaitIdle(backstop);
    List<CancelScope> scopes = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    long[] tookNanos = new long[CARRIERS];
    for (int i = 0; i < CARRIERS; i++) {
      int k = i;
      CancelScope s = CancelScope.withTimeout(Duration.ofMillis(100));
      scopes.add(s);
      threads.add(
          Thread.ofVirtual()
              .start(
                  () -> {
                    long start = System.nanoTime();
                    try {
                      s.run(DeadlineBackstopTest::spinWithCheckpoints);
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                    tookNanos[k] = System.nanoTime() - start;
                  }));
    }
    for (Thread t : threads) {
      t.join();
    }
    for (int i = 0; i < CARRIERS; i++) {
      assertThat(scopes.get(i).cancelCaught()).isTrue();
      assertThat(Duration.ofNanos(tookNanos[i])).isLessThan(Duration.ofSeconds(2));
    }
  }

  /**
   * A virtual thread at the head of Deadlines.LOCK's queue, woken by the lock's release but with no
   * carrier to run on, does not hold up the backstop: it takes the lock whenever the lock is free,
   * queue or not. (Queued behind that thread, it waited until the busy threads ended.)
   */
  @RepeatedTest(3)
  void aVirtualThreadQueuedOnTheLockWithNoCarrierDoesNotHoldTheBackstopUp() throws Exception {
    startedBackstop();
    CountDownLatch entered = new CountDownLatch(CARRIERS);
    CountDownLatch go = new CountDownLatch(1);
    AtomicInteger spinning = new AtomicInteger();
    List<CancelScope> scopes = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < CARRIERS; i++) {
      CancelScope s = CancelScope.withTimeout(Duration.ofMillis(300));
      scopes.add(s);
      threads.add(
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      s.run(
                          () -> {
                            entered.countDown();
                            go.await();
                            spinning.incrementAndGet();
                            spinWithCheckpoints();
                          });
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  }));
    }
    entered.await();
    Thread queued;
    Deadlines.LOCK.lock();
    try {
      queued = queueVirtualThreadOnTheHeldLock();
      go.countDown();
      await("every carrier busy", Duration.ofSeconds(5), () -> spinning.get() == CARRIERS);
      // Held long enough for the backstop, which polls every 20 ms, to try to take it.
      LockSupport.parkNanos(3 * DeadlineBackstop.POLL_NANOS);
    } finally {
      Deadlines.LOCK.unlock(); // hands the lock to `queued`, which has no carrier to run on
    }
    long released = System.nanoTime();
    for (Thread t : threads) {
      t.join();
    }
    Duration took = Duration.ofNanos(System.nanoTime() - released);
    queued.join(); // it ran once a carrier was free
    assertThat(scopes).allMatch(CancelScope::cancelCaught);
    assertThat(took).isLessThan(Duration.ofSeconds(2));
  }

  /**
   * A platform thread setting a deadline does not queue on Deadlines.LOCK behind a virtual thread
   * that was woken by the lock's release but has no carrier to run on: it takes the lock once it is
   * free. (Queued behind that thread, it stayed parked until the busy threads ended.)
   */
  @RepeatedTest(3)
  void aPlatformThreadSettingADeadlineIsNotHeldUpByAVirtualThreadQueuedOnTheLockWithNoCarrier()
      throws Exception {
    CancelScope idle = CancelScope.create();
    AtomicLong platformDone = new AtomicLong();
    AtomicInteger spinning = new AtomicInteger();
    AtomicBoolean stop = new AtomicBoolean();
    List<Thread> hogs = new ArrayList<>();
    Thread queued;
    Thread platform;
    long released;
    Deadlines.LOCK.lock();
    try {
      queued = queueVirtualThreadOnTheHeldLock();
      platform =
          Thread.ofPlatform()
              .start(
                  () -> {
                    idle.setTimeout(Duration.ofSeconds(10)); // takes the lock
                    platformDone.set(System.nanoTime());
                  });
      await(
          "the platform thread waiting for the lock",
          Duration.ofSeconds(5),
          () ->
              Deadlines.LOCK.hasQueuedThread(platform)
                  || platform.getState() == Thread.State.TIMED_WAITING);
      for (int i = 0; i < CARRIERS; i++) {
        hogs.add(
            Thread.ofVirtual()
                .start(
                    () -> {
                      spinning.incrementAndGet();
                      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                      while (!stop.get() && System.nanoTime() - until < 0L) {
                        Thread.onSpinWait(); // holds its carrier; calls nothing of the library
                      }
                    }));
      }
      await("every carrier busy", Duration.ofSeconds(5), () -> spinning.get() == CARRIERS);
    } finally {
      released = System.nanoTime();
      Deadlines.LOCK.unlock(); // wakes `queued`, which has no carrier to run on
    }
    platform.join();
    stop.set(true);
    for (Thread t : hogs) {
      t.join();
    }
    queued.join();
    Duration took = Duration.ofNanos(platformDone.get() - released);
    assertThat(took).isLessThan(Duration.ofSeconds(1));
  }

  /**
   * A test clock moved past a deadline fires nothing until the clock fires it (Deadlines.fireDue):
   * neither the timer nor the backstop, however long the deadline has been overdue on that clock.
   */
  @Test
  void nothingFiresWhileATestClockIsInstalledUntilTheClockFiresIt() throws Exception {
    startedBackstop();
    ManualTime time = new ManualTime();
    LibraryClock.install(time);
    try {
      CancelScope s = CancelScope.withTimeout(Duration.ofMillis(50));
      CountDownLatch ended = new CountDownLatch(1);
      CountDownLatch entered = new CountDownLatch(1);
      Thread t =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      s.run(
                          () -> {
                            entered.countDown();
                            new CountDownLatch(1).await();
                          });
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                    ended.countDown();
                  });
      entered.await();
      time.move(Duration.ofSeconds(1));
      // The backstop looks at the heap every 20 ms or so, and fires what is 10 ms overdue.
      assertThat(ended.await(200, TimeUnit.MILLISECONDS)).as("fired while installed").isFalse();
      assertThat(s.cancelCalled()).isFalse();
      Deadlines.fireDue();
      assertThat(s.cancelCalled()).isTrue();
      t.join();
    } finally {
      LibraryClock.uninstall(time);
    }
  }
}
