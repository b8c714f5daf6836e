package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A cancellation raised by the library can be caught by its public type; an outside one not. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class CancelledExceptionTest {

  @Test
  void aCheckpointInACancelledGroupThrowsThePublicTypeNamingGroupAndReason() throws Exception {
    TaskGroup g = TaskGroup.named("search");
    AtomicReference<Throwable> seen = new AtomicReference<>();
    g.run(
        () -> {
          g.cancel("found it");
          Throwable t = catchThrowable(CancelScope::checkpoint);
          seen.set(t);
          throw (Exception) t;
        });
    assertThat(seen.get())
        .isInstanceOf(CancelledException.class)
        .hasMessageContaining("group 'search'")
        .hasMessageContaining("found it");
    assertThat(g.cancelCaught()).isTrue();
  }

  @Test
  void anOutsideInterruptIsAPlainInterruptedException() {
    Thread.currentThread().interrupt();
    Throwable t = catchThrowable(CancelScope::checkpoint);
    assertThat(t)
        .isInstanceOf(InterruptedException.class)
        .isNotInstanceOf(CancelledException.class);
    assertThat(Thread.interrupted()).isFalse();
  }

  @RepeatedTest(5)
  void aTaskGetThatWaitsWhenTheCallerIsCancelledThrowsThePublicType() throws Exception {
    TaskGroup g = TaskGroup.named("waiter");
    CountDownLatch childStarted = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Throwable> seen = new AtomicReference<>();
    g.run(
        () -> {
          // shielded: the child outlives the cancel, so get() really has to wait
          Task<Void> child =
              g.fork(
                  () ->
                      CancelScope.shielded()
                          .run(
                              () -> {
                                childStarted.countDown();
                                release.await();
                              }));
          childStarted.await();
          g.cancel("enough");
          Throwable t = catchThrowable(child::get);
          seen.set(t);
          release.countDown();
          throw (Exception) t;
        });
    assertThat(seen.get()).isInstanceOf(CancelledException.class).hasMessageContaining("enough");
  }

  @Test
  void userCodeCanCreateOneForTestsOfItsHandlers() {
    var cause = new java.nio.channels.ClosedByInterruptException();
    CancelledException e = new CancelledException("test", cause);
    assertThat(e).isInstanceOf(InterruptedException.class).hasMessage("test").hasCause(cause);
  }
}
