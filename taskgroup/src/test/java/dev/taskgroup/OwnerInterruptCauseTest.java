package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * When a group's body leaves with an {@link InterruptedException} that is not the library's (an
 * interrupt from outside, or one the body made itself), {@code run} cancels and joins the children
 * and throws an {@code InterruptedException} of its own that names the group. The body's exception
 * is kept as its cause: where the body was interrupted, and any message it gave, are not lost.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class OwnerInterruptCauseTest {

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  private static List<Throwable> causeChain(Throwable t) {
    List<Throwable> chain = new ArrayList<>();
    for (Throwable c = t; c != null && chain.size() < 16; c = c.getCause()) {
      chain.add(c);
    }
    return chain;
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void anInterruptedExceptionTheBodyMadeIsTheCauseAndTheChildIsCancelled(ThreadKind kind)
      throws Exception {
    InterruptedException mine = new InterruptedException("the body's own");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicReference<Task<Void>> child = new AtomicReference<>();
    TaskGroup g = TaskGroup.create();
    Probes.onThread(
        kind,
        () ->
            thrown.set(
                catchThrowable(
                    () ->
                        g.run(
                            () -> {
                              CountDownLatch started = new CountDownLatch(1);
                              child.set(
                                  g.fork(
                                      () -> {
                                        started.countDown();
                                        Thread.sleep(60_000);
                                      }));
                              started.await();
                              throw mine;
                            }))));
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(thrown.get()).hasMessageContaining("its owner was interrupted");
    assertThat(causeChain(thrown.get())).as("the body's exception, by identity").contains(mine);
    assertThat(child.get().state()).isEqualTo(java.util.concurrent.Future.State.CANCELLED);
  }

  @RepeatedTest(5)
  void anInterruptFromOutsideKeepsTheBlockingCallsExceptionWithItsStack() throws Exception {
    CountDownLatch blocking = new CountDownLatch(1);
    AtomicReference<Thread> owner = new AtomicReference<>();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    OutsideInterrupter outsider = OutsideInterrupter.onceWaiting(blocking, owner::get);
    TaskGroup g = TaskGroup.create();
    Probes.onThread(
        ThreadKind.VIRTUAL,
        () -> {
          owner.set(Thread.currentThread());
          thrown.set(
              catchThrowable(
                  () ->
                      g.run(
                          () -> {
                            g.fork(() -> Thread.sleep(60_000));
                            blocking.countDown();
                            new CountDownLatch(1).await();
                          })));
        });
    outsider.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    Throwable cause = thrown.get().getCause();
    assertThat(cause).as("the latch's exception").isInstanceOf(InterruptedException.class);
    assertThat(Arrays.stream(cause.getStackTrace()).map(StackTraceElement::getClassName))
        .as("where the body was interrupted")
        .contains(CountDownLatch.class.getName());
  }

  @RepeatedTest(3)
  void nestedGroupsKeepTheWholeChainAndThrowOneInterruptedException() throws Exception {
    InterruptedException mine = new InterruptedException("innermost");
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () -> {
                      outer.fork(() -> Thread.sleep(60_000));
                      inner.run(
                          () -> {
                            inner.fork(() -> Thread.sleep(60_000));
                            throw mine;
                          });
                    }));
    assertThat(thrown).isInstanceOf(InterruptedException.class).hasMessageContaining("outer");
    assertThat(causeChain(thrown)).contains(mine);
    assertThat(Thread.currentThread().isInterrupted()).as("thrown, so no longer set").isFalse();
  }

  @RepeatedTest(3)
  void aCloseFailureRidingOnTheBodysInterruptIsReportedOnceAndTheStatusStaysSet() {
    IllegalStateException closeFailed = new IllegalStateException("close failed");
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup inner = TaskGroup.named("inner");
    Throwable thrown =
        catchThrowable(
            () ->
                outer.run(
                    () ->
                        inner.run(
                            () -> {
                              try (AutoCloseable r =
                                  () -> {
                                    throw closeFailed;
                                  }) {
                                throw new InterruptedException("mine");
                              }
                            })));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    List<Throwable> all = new ArrayList<>();
    collectFailures(thrown, all);
    assertThat(all.stream().filter(t -> t == closeFailed).count())
        .as("the close() failure, once: %s", all)
        .isEqualTo(1);
    assertThat(Thread.interrupted()).as("an outside interrupt stays set under failures").isTrue();
  }

  private static void collectFailures(Throwable t, List<Throwable> into) {
    if (t instanceof TaskGroupException tge) {
      for (Throwable f : tge.failures()) {
        collectFailures(f, into);
      }
    } else {
      into.add(t);
    }
  }
}
