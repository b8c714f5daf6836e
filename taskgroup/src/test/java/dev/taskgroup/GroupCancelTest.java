package dev.taskgroup;

import static dev.taskgroup.Fixtures.parkUntilInterrupted;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.Fixtures.Finished;
import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import dev.taskgroup.Fixtures.Trail;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Cancelling a group as a whole. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class GroupCancelTest {
  private static final int CHILDREN = 8;

  // ---- item 1: cancel from the body, a child, an unrelated thread -------------------------

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancelFromBodyCancelsEveryChildAndExitsNormally(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch started = new CountDownLatch(CHILDREN);
    Finished finished = new Finished();
    AtomicBoolean bodyInterrupted = new AtomicBoolean();
    List<Task<Void>> tasks = new ArrayList<>();

    group.run(
        () -> {
          for (int i = 0; i < CHILDREN; i++) {
            tasks.add(group.fork(Fixtures.blockedUntilCancelled(started, finished)));
          }
          started.await();
          group.cancel();
          try {
            Thread.sleep(60_000);
          } catch (InterruptedException e) {
            bodyInterrupted.set(true);
            throw e;
          }
        });

    assertThat(bodyInterrupted).isTrue();
    assertThat(finished.count()).isEqualTo(CHILDREN);
    assertThat(tasks).allMatch(t -> t.state() == Future.State.CANCELLED);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    threads.assertAllDone();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancelFromChildCancelsSiblingsAndBody(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch started = new CountDownLatch(CHILDREN);
    Finished finished = new Finished();

    group.run(
        () -> {
          for (int i = 0; i < CHILDREN; i++) {
            group.fork(
                () -> {
                  started.countDown();
                  Thread.sleep(60_000);
                  return null;
                });
          }
          group.fork(
              () -> {
                started.await();
                group.cancel("found it");
                finished.mark();
                return null;
              });
          Thread.sleep(60_000);
        });

    assertThat(finished.count()).isEqualTo(1);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    assertThat(group.cancelScope().cancelReason()).contains("found it");
    threads.assertAllDone();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void cancelFromUnrelatedThreadCancelsTheGroup(ThreadKind cancellerKind) throws Exception {
    Tracking threads = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch started = new CountDownLatch(CHILDREN);
    Thread canceller =
        cancellerKind.start(
            () -> {
              try {
                started.await();
              } catch (InterruptedException e) {
                return;
              }
              group.cancel();
            });

    group.run(
        () -> {
          for (int i = 0; i < CHILDREN; i++) {
            group.fork(
                () -> {
                  started.countDown();
                  parkUntilInterrupted();
                });
          }
          Thread.sleep(60_000);
        });

    canceller.join();
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isTrue();
    threads.assertAllDone();
  }

  @RepeatedTest(20)
  void childrenThatSwallowTheInterruptAreWaitedFor() throws Exception {
    Tracking threads = new Tracking(ThreadKind.VIRTUAL);
    TaskGroup group = Fixtures.group("g", threads);
    CountDownLatch started = new CountDownLatch(CHILDREN);
    AtomicBoolean lateChildDone = new AtomicBoolean();

    group.run(
        () -> {
          for (int i = 0; i < CHILDREN; i++) {
            group.fork(
                () -> {
                  started.countDown();
                  try {
                    Thread.sleep(60_000);
                  } catch (InterruptedException swallowed) {
                    // keeps running for a while after the cancellation, without blocking
                    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(30);
                    while (System.nanoTime() < until) {
                      Thread.onSpinWait();
                    }
                    lateChildDone.set(true);
                  }
                });
          }
          started.await();
          group.cancel();
        });

    assertThat(lateChildDone).as("run returned before a child finished").isTrue();
    threads.assertAllDone();
  }

  @Test
  void childThatFinishedBeforeCancelKeepsItsResult() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicReference<Task<String>> done = new AtomicReference<>();
    group.run(
        () -> {
          Task<String> t = group.fork(() -> "result");
          t.get();
          done.set(t);
          group.cancel();
        });
    assertThat(done.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(done.get().resultNow()).isEqualTo("result");
  }

  // ---- item 2: cancel() returns; the next checkpoint throws -------------------------------

  @Test
  void cancelReturnsNormallyAndTheNextCheckpointThrows() throws Exception {
    TaskGroup group = TaskGroup.create();
    Trail trail = new Trail();
    group.run(
        () -> {
          group.cancel();
          trail.add("after cancel");
          assertThat(CancelScope.isCancelled()).isTrue();
          try {
            CancelScope.checkpoint();
            trail.add("checkpoint passed");
          } catch (InterruptedException e) {
            trail.add("checkpoint threw");
            assertThat(Thread.currentThread().isInterrupted())
                .as("a checkpoint leaves the interrupt status set")
                .isTrue();
          }
          try {
            Thread.sleep(10_000);
          } catch (InterruptedException e) {
            trail.add("sleep threw");
          }
          CancelScope.checkpoint();
          trail.add("unreachable");
        });
    assertThat(trail.events()).containsExactly("after cancel", "checkpoint threw", "sleep threw");
    assertThat(group.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void cancelWithNullReasonIsRejectedAndChangesNothing() throws Exception {
    TaskGroup group = TaskGroup.create();
    assertThatThrownBy(() -> group.cancel(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessageContaining("reason");
    assertThat(group.cancelCalled()).isFalse();
    group.run(() -> CancelScope.checkpoint());
    assertThat(group.cancelCaught()).isFalse();
  }

  // ---- item 4: before run, after exit, fork into a cancelled group ------------------------

  @Test
  void cancelAfterExitOnlySetsCancelCalled() throws Exception {
    TaskGroup group = TaskGroup.create();
    group.run(() -> group.fork(() -> "x"));
    group.cancel("late");
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(group.cancelScope().cancelReason()).as("not cancelled: no reason").isEmpty();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void cancelBeforeRunStartsTheGroupCancelled() throws Exception {
    TaskGroup group = TaskGroup.create();
    group.cancel();
    Trail trail = new Trail();
    group.run(
        () -> {
          trail.add("body started");
          CancelScope.checkpoint();
          trail.add("unreachable");
        });
    assertThat(trail.events()).containsExactly("body started");
    assertThat(group.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void forkIntoCancelledGroupDoesNotStartTheWork() throws Exception {
    TaskGroup group = TaskGroup.create();
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<?>> task = new AtomicReference<>();
    group.run(
        () -> {
          group.cancel();
          task.set(group.fork(() -> ran.set(true)));
        });
    assertThat(ran).isFalse();
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(task.get().isDone()).isTrue();
  }

  @Test
  void forkIntoGroupCancelledFromAboveDoesNotStartTheWork() throws Exception {
    AtomicBoolean ran = new AtomicBoolean();
    AtomicReference<Task<?>> task = new AtomicReference<>();
    CancelScope outer = CancelScope.create();
    outer.run(
        () -> {
          TaskGroup group = TaskGroup.create();
          group.run(
              () -> {
                outer.cancel();
                task.set(group.fork(() -> ran.set(true)));
              });
        });
    assertThat(ran).isFalse();
    assertThat(task.get().isCancelled()).isTrue();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void forkBeforeRunIsRejected() {
    TaskGroup group = TaskGroup.named("early");
    assertThatThrownBy(() -> group.fork(() -> "x"))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("early");
  }

  // ---- item 5: cancel twice ---------------------------------------------------------------

  @Test
  void cancelTwiceIsLikeOnceAndKeepsTheFirstReason() throws Exception {
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          group.cancel("first");
          group.cancel("second");
          group.cancel();
          Thread.sleep(10_000);
        });
    assertThat(group.cancelCaught()).isTrue();
    assertThat(group.cancelScope().cancelReason()).contains("first");
  }

  // ---- item 6: a result that already arrived may be returned ------------------------------

  @Test
  void resultThatAlreadyArrivedIsReturnedThenTheNextCheckpointThrows() throws Exception {
    TaskGroup group = TaskGroup.create();
    Trail trail = new Trail();
    group.run(
        () -> {
          Task<String> child = group.fork(() -> "ready");
          while (!child.isDone()) {
            Thread.onSpinWait();
          }
          group.cancel();
          trail.add(child.get());
          CancelScope.checkpoint();
          trail.add("unreachable");
        });
    assertThat(trail.events()).containsExactly("ready");
  }

  @Test
  void taskGetThatMustWaitThrowsWhenCancelledAndKeepsTheStatusSet() throws Exception {
    TaskGroup group = TaskGroup.create();
    Trail trail = new Trail();
    group.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          CountDownLatch started = new CountDownLatch(1);
          Task<Void> child =
              group.fork(
                  () -> {
                    started.countDown();
                    while (true) { // ignores the cancellation until released
                      try {
                        release.await();
                        return;
                      } catch (InterruptedException ignored) {
                        // keep waiting
                      }
                    }
                  });
          started.await();
          group.cancel();
          try {
            child.get();
          } catch (InterruptedException e) {
            trail.add("get threw; status set: " + Thread.currentThread().isInterrupted());
          } finally {
            release.countDown();
          }
        });
    assertThat(trail.events()).containsExactly("get threw; status set: true");
  }
}
