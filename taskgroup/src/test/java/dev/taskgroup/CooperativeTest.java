package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.file.Path;
import java.sql.SQLException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code CancelScope.cooperative()}: cancellation without interrupts. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CooperativeTest {
  @TempDir Path dir;

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  @RepeatedTest(2)
  void h2FileWriterInACooperativeScopeStopsPromptlyAndLosesNothing() throws Exception {
    H2FileWriter writer = new H2FileWriter(dir);
    Outcome out = cancelWriter(writer, true);
    System.out.printf(
        "cooperative H2 writer: cancel took %d ms, saw %s, counted %d, reopened %d%n",
        out.ms, out.seen, writer.committed.get(), out.rows);
    assertThat(out.seen).isInstanceOf(InterruptedException.class);
    assertThat(out.rows).isEqualTo(writer.committed.get());
    assertThat(out.ms).isLessThan(5_000);
  }

  @RepeatedTest(2)
  void h2FileWriterCancelledByInterruptIsDamaged() throws Exception {
    H2FileWriter writer = new H2FileWriter(dir);
    Outcome out = cancelWriter(writer, false);
    System.out.printf(
        "interrupted H2 writer: cancel took %d ms, saw %s, counted %d, reopened %d%n",
        out.ms, out.seen, writer.committed.get(), out.rows);
    assertThat(out.seen)
        .as("the interrupt closed H2's file store")
        .isInstanceOf(SQLException.class);
  }

  @RepeatedTest(3)
  void insideNoInterruptArrivesButCheckpointThrowsWithTheStatusClear() throws Exception {
    CancelScope outer = CancelScope.create();
    AtomicReference<Boolean> interruptedAtCheckpoint = new AtomicReference<>();
    outer.run(
        () -> {
          Thread.ofVirtual().start(outer::cancel);
          CancelScope.cooperative()
              .run(
                  () -> {
                    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(100);
                    while (!CancelScope.isCancelled() || System.nanoTime() - until < 0L) {
                      assertThat(Thread.currentThread().isInterrupted()).isFalse();
                    }
                    try {
                      CancelScope.checkpoint();
                    } finally {
                      interruptedAtCheckpoint.set(Thread.currentThread().isInterrupted());
                    }
                  });
        });
    assertThat(interruptedAtCheckpoint.get()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @RepeatedTest(3)
  void anInterruptDeliveredBeforeEntryIsDroppedAndDeliveryResumesOnLeaving() throws Exception {
    CancelScope outer = CancelScope.create();
    boolean[] seen = new boolean[3];
    outer.run(
        () -> {
          outer.cancel();
          seen[0] = Thread.currentThread().isInterrupted();
          CancelScope.cooperative().run(() -> seen[1] = Thread.currentThread().isInterrupted());
          seen[2] = Thread.currentThread().isInterrupted();
        });
    assertThat(seen).containsExactly(true, false, true);
  }

  @RepeatedTest(3)
  void aThreadForkedInsideIsInterruptedAsUsual() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<Throwable> childSaw = new AtomicReference<>();
    CountDownLatch running = new CountDownLatch(1);
    CancelScope.cooperative()
        .run(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            running.countDown();
                            childSaw.set(catchThrowable(() -> Thread.sleep(30_000)));
                          });
                      running.await();
                      group.cancel();
                    }));
    assertThat(childSaw.get()).isInstanceOf(InterruptedException.class);
  }

  @RepeatedTest(3)
  void aNestedCooperativeScopeKeepsTheOuterOneCooperative() throws Exception {
    CancelScope outer = CancelScope.create();
    boolean[] interrupted = new boolean[1];
    outer.run(
        () ->
            CancelScope.cooperative()
                .run(
                    () -> {
                      CancelScope.cooperative().run(() -> {});
                      outer.cancel();
                      interrupted[0] = Thread.currentThread().isInterrupted();
                      CancelScope.checkpoint();
                    }));
    assertThat(interrupted[0]).as("still cooperative after the inner one left").isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @RepeatedTest(3)
  void libraryWaitsNoticeTheCancellationWithoutAnInterrupt() throws Exception {
    for (String wait : new String[] {"get", "timed get", "start", "fork", "await"}) {
      TaskGroup group = TaskGroup.builder().name(wait).maxConcurrency(1).build();
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      group.run(
          () -> {
            Task<Void> blocker = group.fork(() -> Thread.sleep(30_000)); // holds the one place
            cancelOnceParked(group, Thread.currentThread());
            thrown.set(
                catchThrowable(
                    () -> CancelScope.cooperative().run(() -> waitOn(wait, group, blocker))));
          });
      assertThat(thrown.get()).as(wait).isInstanceOf(InterruptedException.class);
    }
  }

  /** Cancels {@code group} from another thread once {@code waiter} is parked (in the wait). */
  private static void cancelOnceParked(TaskGroup group, Thread waiter) {
    Thread.ofVirtual()
        .start(
            () -> {
              Thread.State st;
              while ((st = waiter.getState()) != Thread.State.WAITING
                  && st != Thread.State.TIMED_WAITING) {
                Thread.onSpinWait();
              }
              group.cancel();
            });
  }

  private static void waitOn(String wait, TaskGroup group, Task<Void> blocker) throws Exception {
    switch (wait) {
      case "get" -> blocker.get();
      case "timed get" -> blocker.get(30, TimeUnit.SECONDS);
      case "start" -> group.start(signal -> Thread.sleep(30_000));
      case "fork" -> group.fork(() -> {});
      default -> CancelScope.await(new java.util.concurrent.CompletableFuture<Void>());
    }
    CancelScope.checkpoint();
  }

  @RepeatedTest(5)
  void startGivenUpInACooperativeScopeLeavesNoInterruptThatLooksLikeSomeoneElses()
      throws Exception {
    TaskGroup group = TaskGroup.named("give-up");
    CountDownLatch working = new CountDownLatch(1);
    AtomicReference<Throwable> startThrew = new AtomicReference<>();
    group.run(
        () -> {
          cancelOnceParkedAfter(group, Thread.currentThread(), working);
          startThrew.set(
              catchThrowable(
                  () ->
                      CancelScope.cooperative()
                          .run(
                              () ->
                                  group.start(
                                      signal -> {
                                        working.countDown();
                                        try {
                                          Thread.sleep(30_000); // never signals
                                        } finally {
                                          // cleanup that outlasts the caller's give-up
                                          CancelScope.shielded().run(() -> Thread.sleep(100));
                                        }
                                      }))));
        });
    assertThat(startThrew.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCaught()).as("run returned normally, cancelled by cancel()").isTrue();
  }

  /** As cancelOnceParked, once {@code ready} has been counted down. */
  private static void cancelOnceParkedAfter(TaskGroup group, Thread waiter, CountDownLatch ready) {
    Thread.ofVirtual()
        .start(
            () -> {
              try {
                ready.await();
              } catch (InterruptedException e) {
                return;
              }
              Thread.State st;
              while ((st = waiter.getState()) != Thread.State.WAITING
                  && st != Thread.State.TIMED_WAITING) {
                Thread.onSpinWait();
              }
              group.cancel();
            });
  }

  private record Outcome(long ms, Throwable seen, long rows) {}

  private static Outcome cancelWriter(H2FileWriter writer, boolean cooperative) throws Exception {
    TaskGroup group = TaskGroup.named("writer");
    AtomicReference<Throwable> seen = new AtomicReference<>();
    long[] cancelledAt = new long[1];
    Throwable runThrew =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            try {
                              if (cooperative) {
                                CancelScope.cooperative().run(() -> writer.write(true));
                              } else {
                                writer.write(false);
                              }
                            } catch (Throwable t) {
                              seen.set(t);
                              throw t;
                            }
                          });
                      writer.underWay.await();
                      cancelledAt[0] = System.nanoTime();
                      group.cancel();
                    }));
    long ms = Probes.millis(System.nanoTime() - cancelledAt[0]);
    if (runThrew != null) {
      System.out.println("run threw " + runThrew);
    }
    return new Outcome(ms, seen.get(), writer.rowsAfterReopen());
  }
}
