package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.Fixtures.Trail;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Nesting: which scope absorbs a cancellation, for scopes, groups and mixes of them. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class NestingTest {

  @Test
  void middleCancelFromInnerScopePropagatesToMiddleOnly() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope middle = CancelScope.create();
    CancelScope inner = CancelScope.create();
    Trail trail = new Trail();
    outer.run(
        () -> {
          middle.run(
              () -> {
                inner.run(
                    () -> {
                      middle.cancel();
                      trail.add("inner still running");
                      Thread.sleep(10_000);
                      trail.add("unreachable");
                    });
                trail.add("unreachable after inner");
              });
          trail.add("outer goes on");
          CancelScope.checkpoint();
          trail.add("outer checkpoint passed");
        });
    assertThat(trail.events())
        .containsExactly("inner still running", "outer goes on", "outer checkpoint passed");
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(middle.cancelCaught()).isTrue();
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(outer.cancelCalled()).isFalse();
    assertThat(inner.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void middleCancelFromInnerGroupChildPropagatesToMiddleGroupOnly() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup middle = TaskGroup.named("middle");
    TaskGroup inner = TaskGroup.named("inner");
    Trail trail = new Trail();
    CountDownLatch middleDone = new CountDownLatch(1);
    outer.run(
        () -> {
          Task<String> sibling =
              outer.fork(
                  () -> {
                    middleDone.await(); // blocked across the middle cancel: throws if reached
                    return "outer child untouched";
                  });
          middle.run(
              () -> {
                inner.run(
                    () -> {
                      inner.fork(
                          () -> {
                            middle.cancel();
                            return null;
                          });
                      Thread.sleep(10_000);
                    });
                trail.add("unreachable after inner");
              });
          middleDone.countDown();
          trail.add(sibling.get());
        });
    assertThat(trail.events()).containsExactly("outer child untouched");
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(middle.cancelCaught()).isTrue();
    assertThat(outer.cancelCaught()).isFalse();
    assertThat(outer.cancelCalled()).isFalse();
  }

  @Test
  void groupInsideScopeInsideGroup() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    CancelScope middle = CancelScope.create();
    TaskGroup inner = TaskGroup.named("inner");
    outer.run(
        () -> {
          middle.run(
              () ->
                  inner.run(
                      () -> {
                        inner.fork(
                            () -> {
                              middle.cancel();
                              return null;
                            });
                        Thread.sleep(10_000);
                      }));
          CancelScope.checkpoint();
        });
    assertThat(middle.cancelCaught()).isTrue();
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isFalse();
  }

  @Test
  void outermostCancelledScopeAbsorbs() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    outer.run(
        () ->
            inner.run(
                () -> {
                  inner.cancel();
                  outer.cancel();
                  Thread.sleep(10_000);
                }));
    assertThat(inner.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void shieldHidesTheCancelledScopeAboveSoTheInnerAbsorbs() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope shield = CancelScope.shielded();
    CancelScope inner = CancelScope.create();
    Trail trail = new Trail();
    outer.run(
        () -> {
          outer.cancel();
          shield.run(
              () -> {
                Thread.sleep(1); // not cancelled: the shield keeps the outer cancel out
                inner.run(
                    () -> {
                      inner.cancel();
                      Thread.sleep(10_000);
                    });
                trail.add("shield body goes on");
              });
          trail.add("back in outer");
          CancelScope.checkpoint();
        });
    assertThat(trail.events()).containsExactly("shield body goes on", "back in outer");
    assertThat(inner.cancelCaught()).isTrue();
    assertThat(shield.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void bodyThatReturnsDespiteCancelIsNotCaught() throws Exception {
    CancelScope scope = CancelScope.create();
    String result =
        scope.call(
            () -> {
              scope.cancel();
              return "finished anyway";
            });
    assertThat(result).isEqualTo("finished anyway");
    assertThat(scope.cancelCalled()).isTrue();
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  @Test
  void callReturnsNullWhenCutShort() throws Exception {
    CancelScope scope = CancelScope.create();
    String result =
        scope.call(
            () -> {
              scope.cancel();
              Thread.sleep(10_000);
              return "never";
            });
    assertThat(result).isNull();
    assertThat(scope.cancelCaught()).isTrue();
  }

  @Test
  void groupCallReturnsTheBodyResultOrNullWhenCutShort() throws Exception {
    assertThat(TaskGroup.create().call(() -> 42)).isEqualTo(42);
    TaskGroup group = TaskGroup.create();
    Integer cut =
        group.call(
            () -> {
              group.cancel();
              Thread.sleep(10_000);
              return 42;
            });
    assertThat(cut).isNull();
  }

  @Test
  void checkedExceptionPassesThroughUnchanged() {
    IOException failure = new IOException("disk full");
    CancelScope scope = CancelScope.create();
    assertThatThrownBy(
            () ->
                scope.run(
                    () -> {
                      throw failure;
                    }))
        .isSameAs(failure);
  }

  @Test
  void failureThrownAfterCancelIsNotSwallowed() {
    IllegalStateException failure = new IllegalStateException("broken invariant");
    CancelScope scope = CancelScope.create();
    assertThatThrownBy(
            () ->
                scope.run(
                    () -> {
                      scope.cancel();
                      throw failure;
                    }))
        .isSameAs(failure);
    assertThat(scope.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted())
        .as("the library's interrupt does not outlive the scope")
        .isFalse();
  }

  @Test
  void propagatingCancellationIsTheOriginalInterruptedException() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    InterruptedException[] seen = new InterruptedException[2];
    outer.run(
        () -> {
          try {
            inner.run(
                () -> {
                  outer.cancel("stop");
                  try {
                    Thread.sleep(10_000);
                  } catch (InterruptedException e) {
                    seen[0] = e;
                    throw e;
                  }
                });
          } catch (InterruptedException e) {
            seen[1] = e;
            throw e;
          }
        });
    assertThat(seen[1]).isSameAs(seen[0]);
    assertThat(outer.cancelCaught()).isTrue();
  }

  @Test
  void checkpointExceptionNamesTheScopeAndReason() throws Exception {
    TaskGroup group = TaskGroup.named("crawler");
    String[] message = new String[1];
    group.run(
        () -> {
          group.cancel("target found");
          try {
            CancelScope.checkpoint();
          } catch (InterruptedException e) {
            message[0] = e.getMessage();
            throw e;
          }
        });
    assertThat(message[0]).contains("crawler").contains("target found");
  }

  @Test
  void deepNestingCancelsWithoutStackOverflow() throws Exception {
    int depth = 10_000;
    CancelScope[] scopes = new CancelScope[depth];
    for (int i = 0; i < depth; i++) {
      scopes[i] = CancelScope.create();
    }
    Thread t =
        Thread.ofPlatform()
            .stackSize(64 * 1024 * 1024)
            .start(
                () -> {
                  try {
                    nest(scopes, 0);
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    t.join();
    assertThat(scopes[0].cancelCaught()).isTrue();
    assertThat(scopes[depth - 1].cancelCaught()).isFalse();
  }

  private static void nest(CancelScope[] scopes, int i) throws InterruptedException {
    if (i == scopes.length) {
      scopes[0].cancel();
      Thread.sleep(10_000);
      return;
    }
    scopes[i].run(() -> nest(scopes, i + 1));
  }
}
