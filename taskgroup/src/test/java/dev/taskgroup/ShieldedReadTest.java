package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Shielded cleanup reads a sibling the group's cancellation cancelled: get() throws a
 * CancellationException there (nothing is cancelled inside the shield). Let through, it is judged
 * again at the next exit, in the cancelled group, and taken for the cancellation (the guide, "What
 * counts as a cancellation"); wrapped inside the shield, it is a failure.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ShieldedReadTest {
  @RepeatedTest(3)
  void aCancellationExceptionLetThroughAShieldIsTakenForTheCancellationOutside() throws Exception {
    AtomicReference<Throwable> read = new AtomicReference<>();
    TaskGroup g = TaskGroup.create();
    g.run(() -> readCancelledSiblingInAShield(g, read, false));
    assertThat(read.get()).isInstanceOf(CancellationException.class);
    assertThat(g.cancelCaught()).isTrue();
  }

  @RepeatedTest(3)
  void oneWrappedInsideTheShieldIsAFailure() throws Exception {
    AtomicReference<Throwable> read = new AtomicReference<>();
    TaskGroup g = TaskGroup.create();
    Throwable thrown =
        catchThrowable(() -> g.run(() -> readCancelledSiblingInAShield(g, read, true)));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures())
        .singleElement()
        .satisfies(f -> assertThat(f.getCause()).isSameAs(read.get()));
  }

  private static void readCancelledSiblingInAShield(
      TaskGroup g, AtomicReference<Throwable> read, boolean wrap) throws Exception {
    Task<Void> sleeper = g.fork(() -> new CountDownLatch(1).await());
    g.cancel("enough");
    CancelScope.shielded()
        .run(
            () -> {
              try {
                sleeper.get(); // waits: nothing is cancelled in here
              } catch (CancellationException e) {
                read.set(e);
                if (wrap) {
                  throw new IllegalStateException("the sibling was cancelled", e);
                }
                throw e;
              }
            });
  }
}
