package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Twins of Trio's {@code src/trio/_core/_tests/test_cancelled.py}: the reason a cancellation
 * carries. Trio's {@code Cancelled} names its source ({@code explicit}, {@code deadline}, {@code
 * nursery}, {@code KeyboardInterrupt}), the task that caused it and the reason given; here the
 * message of a {@link CancelledException} and {@link CancelScope#cancelReason()} name what
 * cancelled the scope (the text given to {@code cancel(reason)}, an expired deadline, a failure in
 * the group with the failing task and its exception, the owner being interrupted) and the thread
 * that cancelled it. In both, the first reason is kept: a later cancel or deadline does not
 * overwrite it. (Trio's {@code test_Cancelled_str} and the subclass tests are in {@link
 * PortedTrioTest}.)
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PortedTrioCancelReasonTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static final Instant LONG_AGO = Instant.now().minus(Duration.ofDays(1));

  /** Runs {@code body} on a platform thread of that name and returns what it threw, or null. */
  private static Throwable onThreadNamed(String name, Body body) throws InterruptedException {
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread t = Thread.ofPlatform().name(name).start(() -> thrown.set(catchThrowable(body::run)));
    t.join();
    return thrown.get();
  }

  /** What a checkpoint in the current scope throws (it must throw). */
  private static CancelledException checkpointThrows() {
    Throwable t = catchThrowable(CancelScope::checkpoint);
    assertThat(t).isInstanceOf(CancelledException.class);
    return (CancelledException) t;
  }

  /**
   * Trio test_cancel_reason, first part: {@code cs.cancel(reason="hello")}; the checkpoint's
   * Cancelled says "explicit", the reason and the task. Here: the reason and the cancelling thread.
   */
  @Test
  void anExplicitCancelNamesItsReasonAndTheThreadThatCancelled() throws Exception {
    AtomicReference<CancelledException> seen = new AtomicReference<>();
    CancelScope scope = CancelScope.create();
    Throwable thrown =
        onThreadNamed(
            "the-canceller",
            () ->
                scope.run(
                    () -> {
                      scope.cancel("hello");
                      seen.set(checkpointThrows());
                    }));
    assertThat(thrown).isNull();
    assertThat(seen.get().getMessage()).contains("hello").contains("the-canceller");
    assertThat(scope.cancelReason()).contains("hello");
    assertThat(scope.cancelCaught()).isFalse(); // the body caught it, as pytest.raises does
  }

  /**
   * Trio test_cancel_reason, second and third parts: a deadline of -inf given on entry, and one set
   * inside the scope: the Cancelled says "deadline".
   */
  @Test
  void aDeadlineInThePastOnEntryOrSetInsideNamesTheDeadline() throws Exception {
    AtomicReference<CancelledException> onEntry = new AtomicReference<>();
    CancelScope first = CancelScope.withDeadline(LONG_AGO);
    first.run(() -> onEntry.set(checkpointThrows()));
    assertThat(onEntry.get().getMessage()).contains("deadline");
    assertThat(first.cancelReason()).isPresent();

    AtomicReference<CancelledException> setInside = new AtomicReference<>();
    CancelScope second = CancelScope.create();
    second.run(
        () -> {
          second.setDeadline(LONG_AGO);
          setInside.set(checkpointThrows());
        });
    assertThat(setInside.get().getMessage()).contains("deadline");
    assertThat(second.cancelCaught()).isFalse(); // the body caught it
  }

  /**
   * Trio test_cancel_reason_not_overwritten: cancelled explicitly, then given a deadline in the
   * past: every later checkpoint still says "explicit".
   */
  @Test
  void anExplicitCancelIsNotOverwrittenByALaterDeadline() throws Exception {
    AtomicReference<CancelledException> before = new AtomicReference<>();
    AtomicReference<CancelledException> after = new AtomicReference<>();
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel("first, by hand");
          before.set(checkpointThrows());
          Thread.interrupted(); // the status the checkpoint left set: the next one must throw anew
          scope.setDeadline(LONG_AGO);
          after.set(checkpointThrows());
        });
    assertThat(before.get().getMessage()).contains("first, by hand");
    assertThat(after.get().getMessage()).contains("first, by hand").doesNotContain("deadline");
    assertThat(scope.cancelReason()).contains("first, by hand");
  }

  /**
   * Trio test_cancel_reason_not_overwritten_2: the deadline first, then {@code cancel()}: the
   * reason stays the deadline's.
   */
  @Test
  void anExpiredDeadlineIsNotOverwrittenByALaterCancel() throws Exception {
    AtomicReference<CancelledException> before = new AtomicReference<>();
    AtomicReference<CancelledException> after = new AtomicReference<>();
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.setDeadline(LONG_AGO);
          before.set(checkpointThrows());
          Thread.interrupted();
          scope.cancel("too late to count");
          after.set(checkpointThrows());
        });
    assertThat(before.get().getMessage()).contains("deadline");
    assertThat(after.get().getMessage()).contains("deadline").doesNotContain("too late to count");
    assertThat(scope.cancelReason()).isPresent().get().asString().doesNotContain("too late");
  }

  /**
   * The same for a group: {@code cancel(reason)} twice keeps the first, and the children's
   * cancellations say it.
   */
  @RepeatedTest(5)
  void aGroupKeepsItsFirstReasonForEveryChild() throws Exception {
    TaskGroup group = TaskGroup.named("reasons");
    CountDownLatch parked = new CountDownLatch(3);
    List<AtomicReference<Throwable>> seen =
        List.of(new AtomicReference<>(), new AtomicReference<>(), new AtomicReference<>());
    group.run(
        () -> {
          for (AtomicReference<Throwable> slot : seen) {
            group.fork(
                () -> {
                  parked.countDown();
                  try {
                    CancelScope.sleep(Duration.ofDays(1));
                  } catch (InterruptedException e) {
                    slot.set(e);
                    throw e;
                  }
                });
          }
          parked.await();
          group.cancel("the first reason");
          group.cancel("the second reason");
        });
    for (AtomicReference<Throwable> slot : seen) {
      assertThat(slot.get()).isInstanceOf(CancelledException.class);
      assertThat(slot.get().getMessage())
          .contains("the first reason")
          .doesNotContain("the second reason");
    }
    assertThat(group.cancelScope().cancelReason()).contains("the first reason");
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * Trio test_cancel_reason_nursery2: two started tasks; one raises ValueError once both run; the
   * other's Cancelled says "nursery", names the exception and the failing task; it then raises
   * TypeError, and both are in the group's exception.
   */
  @RepeatedTest(5)
  void aSiblingsFailureNamesTheFailingTaskAndItsException() throws Exception {
    TaskGroup group = TaskGroup.named("nursery");
    CountDownLatch bothRun = new CountDownLatch(2);
    AtomicReference<Throwable> cancelledSaw = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          "failing-task",
                          () -> {
                            bothRun.countDown();
                            bothRun.await();
                            throw new IllegalArgumentException("the value was wrong");
                          });
                      group.fork(
                          "cancelled-task",
                          () -> {
                            bothRun.countDown();
                            try {
                              CancelScope.sleep(Duration.ofDays(1));
                            } catch (InterruptedException e) {
                              cancelledSaw.set(e);
                            }
                            throw new UnsupportedOperationException("raised after the cancel");
                          });
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .hasSize(2)
        .anySatisfy(f -> assertThat(f).isInstanceOf(IllegalArgumentException.class))
        .anySatisfy(f -> assertThat(f).isInstanceOf(UnsupportedOperationException.class));
    assertThat(cancelledSaw.get()).isInstanceOf(CancelledException.class);
    assertThat(cancelledSaw.get().getMessage())
        .contains("failing-task")
        .contains("IllegalArgumentException")
        .contains("the value was wrong");
    assertThat(group.cancelScope().cancelReason())
        .get()
        .asString()
        .contains("failing-task")
        .contains("the value was wrong");
    assertThat(group.cancelCalled()).isFalse(); // a failure cancels; nobody called cancel()
  }

  /**
   * Trio test_cancel_reason_nursery: the failing task has raised before the body looks; the body's
   * own checkpoint says why, and a task started afterwards is refused with the same reason (a
   * deliberate difference: Trio runs the new task in the cancelled nursery, where its first
   * checkpoint raises; here {@code start} into a cancelled group runs no work and throws).
   */
  @RepeatedTest(5)
  void theBodyAndALaterStartSeeTheFailureAsTheReason() throws Exception {
    TaskGroup group = TaskGroup.named("nursery");
    AtomicReference<CancelledException> bodySaw = new AtomicReference<>();
    AtomicReference<Throwable> startThrew = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      Task<Void> failing =
                          group.fork(
                              "failing-task",
                              () -> {
                                throw new IllegalArgumentException("raised at once");
                              });
                      while (!failing.isDone()) {
                        Thread.onSpinWait();
                      }
                      bodySaw.set(checkpointThrows());
                      Thread.interrupted();
                      startThrew.set(
                          catchThrowable(
                              () -> group.start((StartSignal<Object> signal) -> signal.started())));
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(bodySaw.get().getMessage()).contains("failing-task").contains("raised at once");
    assertThat(startThrew.get()).isInstanceOf(CancelledException.class);
    assertThat(startThrew.get().getMessage()).contains("raised at once");
  }

  /**
   * Trio test_nested_child_source and test_cancel_reason_nursery3: the body raises while a child
   * sleeps: the child's cancellation names the body's exception and the owner's thread.
   */
  @RepeatedTest(5)
  void theBodysFailureIsTheReasonTheChildrenSee() throws Exception {
    AtomicReference<Throwable> childSaw = new AtomicReference<>();
    AtomicReference<TaskGroup> groupRef = new AtomicReference<>();
    Throwable thrown =
        onThreadNamed(
            "the-parent",
            () -> {
              TaskGroup group = TaskGroup.named("nursery");
              groupRef.set(group);
              CountDownLatch childRuns = new CountDownLatch(1);
              group.run(
                  () -> {
                    group.fork(
                        () -> {
                          childRuns.countDown();
                          try {
                            CancelScope.sleep(Duration.ofDays(1));
                          } catch (InterruptedException e) {
                            childSaw.set(e);
                            throw e;
                          }
                        });
                    childRuns.await();
                    throw new IllegalStateException("the body broke");
                  });
            });
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .isInstanceOf(IllegalStateException.class);
    assertThat(childSaw.get()).isInstanceOf(CancelledException.class);
    assertThat(childSaw.get().getMessage()).contains("the body broke");
    assertThat(groupRef.get().cancelScope().cancelReason())
        .get()
        .asString()
        .contains("the body broke");
  }

  /**
   * Trio test_reason_delayed_ki: KeyboardInterrupt reaches the parent blocked in the nursery's
   * exit; the sleepers' Cancelled says "KeyboardInterrupt". Here the outside event is an interrupt
   * of the owner while it waits for its children: their cancellation says the owner was
   * interrupted, and run throws InterruptedException.
   */
  @RepeatedTest(5)
  void anOutsideInterruptOfTheOwnerIsTheReasonTheChildrenSee() throws Exception {
    TaskGroup group = TaskGroup.named("nursery");
    CountDownLatch parked = new CountDownLatch(2);
    List<AtomicReference<Throwable>> seen =
        List.of(new AtomicReference<>(), new AtomicReference<>());
    AtomicReference<Throwable> runThrew = new AtomicReference<>();
    Thread owner =
        Thread.ofPlatform()
            .name("the-owner")
            .start(
                () ->
                    runThrew.set(
                        catchThrowable(
                            () ->
                                group.run(
                                    () -> {
                                      for (AtomicReference<Throwable> slot : seen) {
                                        group.fork(
                                            () -> {
                                              parked.countDown();
                                              while (true) {
                                                try {
                                                  CancelScope.checkpoint();
                                                } catch (InterruptedException e) {
                                                  slot.set(e);
                                                  throw e;
                                                }
                                                Thread.onSpinWait();
                                              }
                                            });
                                      }
                                    }))));
    parked.await();
    // The body has returned or is about to: wait until the owner waits for its children.
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (owner.getState() != Thread.State.WAITING && System.nanoTime() < end) {
      Thread.onSpinWait();
    }
    owner.interrupt();
    owner.join();
    assertThat(runThrew.get()).isInstanceOf(InterruptedException.class);
    for (AtomicReference<Throwable> slot : seen) {
      assertThat(slot.get()).isInstanceOf(CancelledException.class);
      assertThat(slot.get().getMessage()).contains("interrupted");
    }
  }
}
