package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.Finished;
import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Interrupts and cancellations from outside a group, and the precedence of outcomes. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class OutsideCancellationTest {

  /** Runs {@code action} on a new thread of {@code kind} and returns what it threw. */
  private static Throwable onOwnerThread(ThreadKind kind, OwnerAction action) throws Exception {
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean interruptedAfter = new AtomicBoolean();
    Thread t =
        kind.start(
            () -> {
              try {
                action.run(Thread.currentThread());
              } catch (Throwable e) {
                thrown.set(e);
              }
              interruptedAfter.set(Thread.currentThread().isInterrupted());
            });
    t.join();
    return thrown.get();
  }

  interface OwnerAction {
    void run(Thread owner) throws Exception;
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void ownerInterruptedFromOutsideCancelsChildrenWaitsAndThrows(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch started = new CountDownLatch(4);
    Finished finished = new Finished();
    AtomicBoolean statusAfter = new AtomicBoolean(true);
    Throwable thrown =
        onOwnerThread(
            kind,
            owner -> {
              OutsideInterrupter interrupter = OutsideInterrupter.once(started, () -> owner);
              try {
                group.run(
                    () -> {
                      for (int i = 0; i < 4; i++) {
                        group.fork(Fixtures.blockedUntilCancelled(started, finished));
                      }
                      Thread.sleep(60_000);
                    });
              } finally {
                statusAfter.set(Thread.currentThread().isInterrupted());
                interrupter.join();
              }
            });
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(finished.count()).isEqualTo(4);
    assertThat(group.cancelCalled()).isFalse();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(statusAfter).as("the interrupt was thrown, not left set").isFalse();
    threads.assertAllDone();
  }

  @RepeatedTest(10)
  void ownerInterruptedWhileWaitingForChildrenThrows() throws Exception {
    TaskGroup group = TaskGroup.create();
    CountDownLatch joining = new CountDownLatch(1);
    Finished finished = new Finished();
    Throwable thrown =
        onOwnerThread(
            ThreadKind.VIRTUAL,
            owner -> {
              // once the body has returned and the owner parks in the join
              OutsideInterrupter interrupter = OutsideInterrupter.onceWaiting(joining, () -> owner);
              group.run(
                  () -> {
                    CountDownLatch childStarted = new CountDownLatch(1);
                    group.fork(Fixtures.blockedUntilCancelled(childStarted, finished));
                    childStarted.await();
                    joining.countDown();
                  });
              interrupter.join();
            });
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(finished.count()).isEqualTo(1);
    assertThat(group.cancelCaught()).isFalse();
  }

  @Test
  void cancelledEnclosingScopeCancelsTheGroupAndPropagatesToIt() throws Exception {
    CancelScope outer = CancelScope.create();
    TaskGroup group = TaskGroup.create();
    CountDownLatch started = new CountDownLatch(2);
    Finished finished = new Finished();
    AtomicReference<Throwable> fromRun = new AtomicReference<>();
    outer.run(
        () -> {
          try {
            group.run(
                () -> {
                  for (int i = 0; i < 2; i++) {
                    group.fork(Fixtures.blockedUntilCancelled(started, finished));
                  }
                  started.await();
                  outer.cancel();
                  Thread.sleep(60_000);
                });
          } catch (InterruptedException e) {
            fromRun.set(e);
            throw e;
          }
        });
    assertThat(fromRun.get()).isInstanceOf(InterruptedException.class);
    assertThat(finished.count()).isEqualTo(2);
    assertThat(group.cancelCalled()).isFalse();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void enclosingCancelWinsOverTheGroupsOwnCancel() throws Exception {
    CancelScope outer = CancelScope.create();
    TaskGroup group = TaskGroup.create();
    outer.run(
        () ->
            group.run(
                () -> {
                  group.cancel();
                  outer.cancel();
                  Thread.sleep(60_000);
                }));
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).as("a cancelled scope above is visible").isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void failureWinsOverOutsideInterruptWhichStaysSet() throws Exception {
    TaskGroup group = TaskGroup.create();
    RuntimeException boom = new RuntimeException("boom");
    AtomicBoolean statusAfter = new AtomicBoolean();
    Throwable thrown =
        onOwnerThread(
            ThreadKind.VIRTUAL,
            owner -> {
              try {
                group.run(
                    () -> {
                      Thread.currentThread().interrupt(); // an interrupt "from outside"
                      Task<Void> failing =
                          group.fork(
                              () -> {
                                throw boom;
                              });
                      while (!failing.isDone()) {
                        Thread.onSpinWait(); // the failure happens before the owner joins
                      }
                    });
              } finally {
                statusAfter.set(Thread.currentThread().isInterrupted());
              }
            });
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
    assertThat(statusAfter).isTrue();
  }

  @Test
  void outsideInterruptWinsOverTheGroupsOwnCancel() throws Exception {
    TaskGroup group = TaskGroup.create();
    Throwable thrown =
        onOwnerThread(
            ThreadKind.PLATFORM,
            owner ->
                group.run(
                    () -> {
                      Thread.currentThread().interrupt(); // pending before the cancel
                      group.cancel();
                    }));
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
  }

  @RepeatedTest(20)
  void runNeverReturnsWhileAChildRunsHoweverOftenTheOwnerIsInterrupted() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicBoolean childDone = new AtomicBoolean();
    CountDownLatch started = new CountDownLatch(1);
    AtomicBoolean stop = new AtomicBoolean();
    AtomicBoolean childDoneWhenRunEnded = new AtomicBoolean();
    Throwable thrown =
        onOwnerThread(
            ThreadKind.VIRTUAL,
            owner -> {
              Thread hammer =
                  Thread.ofPlatform()
                      .start(
                          () -> {
                            try {
                              started.await();
                            } catch (InterruptedException e) {
                              return;
                            }
                            while (!stop.get()) {
                              owner.interrupt();
                              Thread.yield();
                            }
                          });
              try {
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(20);
                            while (System.nanoTime() < until) {
                              try {
                                Thread.sleep(1); // the blocking work under test
                              } catch (InterruptedException swallowed) {
                                // keeps going
                              }
                            }
                            childDone.set(true);
                          });
                      Thread.sleep(60_000);
                    });
              } finally {
                childDoneWhenRunEnded.set(childDone.get());
                stop.set(true);
                hammer.join();
                Thread.interrupted();
              }
            });
    assertThat(thrown).isInstanceOf(InterruptedException.class);
    assertThat(childDoneWhenRunEnded).isTrue();
  }

  @Test
  void childInterruptedByAnOutsiderIsAFailure() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<Thread> child = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            child.set(Thread.currentThread());
                            started.countDown();
                            Thread.sleep(60_000);
                          });
                      started.await();
                      child.get().interrupt(); // not a cancellation of the group
                    }));
    TaskGroupException e = (TaskGroupException) thrown;
    assertThat(e.failures()).singleElement().isInstanceOf(InterruptedException.class);
  }

  @Test
  void groupRunIsInterruptibleBeforeAnyChild() {
    TaskGroup group = TaskGroup.create();
    Thread.currentThread().interrupt();
    InterruptedException e =
        catchThrowableOfType(
            InterruptedException.class, () -> group.run(() -> Thread.sleep(60_000)));
    assertThat(e).isNotNull();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }
}
