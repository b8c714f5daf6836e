package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Callable;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad input gets a clear error and changes nothing. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MisuseTest {

  static Stream<Arguments> nullArguments() {
    TaskGroup g = TaskGroup.create();
    CancelScope s = CancelScope.create();
    TaskGroup.Builder b = TaskGroup.builder();
    Callable<String> work = () -> "x";
    return Stream.of(
        nulls("TaskGroup.named", "name", () -> TaskGroup.named(null)),
        nulls("run", "body", () -> g.run(null)),
        nulls("call", "body", () -> g.call(null)),
        nulls("fork(Callable)", "work", () -> g.fork((Callable<?>) null)),
        nulls("fork(Body)", "work", () -> g.fork((Body) null)),
        nulls("fork(name, work) name", "name", () -> g.fork(null, work)),
        nulls("fork(name, work) work", "work", () -> g.fork("n", (Callable<?>) null)),
        nulls("fork(name, Body) name", "name", () -> g.fork(null, (Body) () -> {})),
        nulls("fork(name, Body) work", "work", () -> g.fork("n", (Body) null)),
        nulls("start", "work", () -> g.start(null)),
        nulls("TaskGroup.cancel", "reason", () -> g.cancel(null)),
        nulls("Builder.name", "name", () -> b.name(null)),
        nulls("Builder.threadFactory", "factory", () -> b.threadFactory(null)),
        nulls("Builder.failurePolicy", "policy", () -> b.failurePolicy(null)),
        nulls("Builder.onFailure", "handler", () -> b.onFailure(null)),
        nulls("Builder.timeout", "timeout", () -> b.timeout(null)),
        nulls("CancelScope.run", "body", () -> s.run(null)),
        nulls("CancelScope.call", "body", () -> s.call(null)),
        nulls("CancelScope.cancel", "reason", () -> s.cancel(null)),
        nulls("withTimeout", "timeout", () -> CancelScope.withTimeout(null)),
        nulls("withDeadline", "deadline", () -> CancelScope.withDeadline(null)),
        nulls("setDeadline", "deadline", () -> s.setDeadline(null)),
        nulls("setTimeout", "timeout", () -> s.setTimeout(null)),
        nulls("onCancel", "action", () -> CancelScope.onCancel(null)),
        nulls("moveOnAfter timeout", "timeout", () -> CancelScope.moveOnAfter(null, () -> 1)),
        nulls("moveOnAfter body", "body", () -> CancelScope.moveOnAfter(Duration.ZERO, null)),
        nulls("failAfter timeout", "timeout", () -> CancelScope.failAfter(null, () -> 1)),
        nulls("failAfter body", "body", () -> CancelScope.failAfter(Duration.ZERO, null)));
  }

  private static Arguments nulls(String call, String parameter, ThrowingCallable action) {
    return Arguments.of(call, parameter, action);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("nullArguments")
  void nullArgumentThrowsNullPointerExceptionNamingTheParameter(
      String call, String parameter, ThrowingCallable action) {
    assertThatThrownBy(action).isInstanceOf(NullPointerException.class).hasMessage(parameter);
  }

  @Test
  void rejectedNullLeavesTheGroupUsable() throws Exception {
    TaskGroup g = TaskGroup.create();
    assertThatThrownBy(() -> g.run(null)).isInstanceOf(NullPointerException.class);
    assertThat(g.call(() -> "ran")).isEqualTo("ran");
  }

  @Test
  void badNumbersAreRejected() {
    assertThatThrownBy(() -> TaskGroup.builder().maxConcurrency(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("maxConcurrency");
    assertThatThrownBy(() -> TaskGroup.builder().maxConcurrency(-5))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> TaskGroup.builder().timeout(Duration.ofMillis(-1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("timeout");
    assertThatThrownBy(() -> CancelScope.withTimeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    CancelScope s = CancelScope.create();
    assertThatThrownBy(() -> s.setTimeout(Duration.ofNanos(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.moveOnAfter(Duration.ofSeconds(-1), () -> 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CancelScope.failAfter(Duration.ofSeconds(-1), () -> 1))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void rejectedBuilderSettingLeavesTheBuilderAsItWas() throws Exception {
    TaskGroup.Builder b = TaskGroup.builder().name("kept");
    assertThatThrownBy(() -> b.name(null)).isInstanceOf(NullPointerException.class);
    assertThat(b.build().name()).isEqualTo("kept");
  }

  @Test
  void onFailureWithCancelAllIsRejectedAtBuild() {
    TaskGroup.Builder b = TaskGroup.builder().onFailure(t -> {});
    assertThatThrownBy(b::build)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("COLLECT");
  }

  @Test
  void runningAGroupTwiceIsRejected() throws Exception {
    TaskGroup g = TaskGroup.named("once");
    g.run(() -> {});
    assertThatThrownBy(() -> g.run(() -> {}))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("group 'once' has already run and finished")
        .hasMessageContaining("create a new TaskGroup");
    assertThatThrownBy(() -> g.call(() -> 1)).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void runningAGroupTwiceConcurrentlyIsRejected() throws Exception {
    TaskGroup g = TaskGroup.named("nested-self");
    AtomicReference<Throwable> inner = new AtomicReference<>();
    g.run(
        () -> {
          try {
            g.run(() -> {});
          } catch (IllegalStateException e) {
            inner.set(e);
          }
        });
    assertThat(inner.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("group 'nested-self' is running")
        .hasMessageContaining("from inside its own body")
        .hasMessageContaining("fork it")
        .hasMessageNotContaining("has already run");
  }

  @Test
  void runningAGroupFromAnotherThreadWhileItRunsSaysItIsRunning() throws Exception {
    TaskGroup g = TaskGroup.named("busy");
    AtomicReference<Throwable> other = new AtomicReference<>();
    g.run(
        () -> {
          Thread.ofVirtual().start(() -> other.set(catchThrowable(() -> g.run(() -> {})))).join();
        });
    assertThat(other.get())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("group 'busy' is already running in another thread")
        .hasMessageContaining("fork work into it");
  }

  @Test
  void runningAScopeTwiceIsRejected() throws Exception {
    CancelScope s = CancelScope.create();
    s.run(() -> {});
    assertThatThrownBy(() -> s.run(() -> {}))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("create a new CancelScope");
  }

  @Test
  void runningAGroupsScopeOnItsOwnIsRejected() {
    TaskGroup g = TaskGroup.named("owner");
    assertThatThrownBy(() -> g.cancelScope().run(() -> {}))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("owner");
  }

  @Test
  void forkAfterTheGroupFinishedIsRejectedNamingTheGroup() throws Exception {
    TaskGroup g = TaskGroup.named("finished-group");
    g.run(() -> {});
    assertThatThrownBy(() -> g.fork(() -> "late"))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("finished-group")
        .hasMessageContaining("fork or start only while its run is open, or use a new TaskGroup");
  }

  @Test
  void factoryReturningNullIsRejectedAndTheGroupGoesOn() throws Exception {
    ThreadFactory nulls = r -> null;
    TaskGroup g = TaskGroup.builder().name("nulls").threadFactory(nulls).build();
    AtomicReference<Throwable> rejected = new AtomicReference<>();
    String result =
        g.call(
            () -> {
              try {
                g.fork(() -> "never");
              } catch (RejectedExecutionException e) {
                rejected.set(e);
              }
              return "body finished";
            });
    assertThat(result).isEqualTo("body finished");
    assertThat(rejected.get()).hasMessageContaining("nulls").hasMessageContaining("null");
    assertThat(g.cancelCalled()).isFalse();
  }

  @Test
  void factoryThatThrowsIsRejectedWithItsExceptionAsCause() throws Exception {
    IllegalStateException broken = new IllegalStateException("factory broken");
    TaskGroup g =
        TaskGroup.builder()
            .threadFactory(
                r -> {
                  throw broken;
                })
            .build();
    AtomicReference<Throwable> rejected = new AtomicReference<>();
    g.run(
        () -> {
          try {
            g.fork(() -> "never");
          } catch (RejectedExecutionException e) {
            rejected.set(e);
          }
        });
    assertThat(rejected.get()).hasCause(broken);
  }

  @Test
  void forkWithANameNamesTheThreadWhicheverFactoryMadeIt() throws Exception {
    ThreadFactory named = Thread.ofPlatform().name("factory-name-", 0).factory();
    for (ThreadFactory f : new ThreadFactory[] {named, Thread.ofVirtual().factory()}) {
      TaskGroup g = TaskGroup.builder().threadFactory(f).build();
      String seen = g.call(() -> g.fork("worker-7", () -> Thread.currentThread().getName()).get());
      assertThat(seen).isEqualTo("worker-7");
    }
  }

  @Test
  void deadlineInThePastIsAcceptedAsInput() {
    CancelScope s = CancelScope.withDeadline(Instant.EPOCH);
    // accepted, not rejected: it has expired, so the scope is cancelled (Trio: cancel_called)
    assertThat(s.cancelCalled()).isTrue();
  }
}
