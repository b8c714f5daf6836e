package dev.taskgroup;

import static dev.taskgroup.Propagators.REQUEST;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.Propagators.CarryRequest;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Context propagators reach start children, invokeAll / invokeAny tasks and onCancel actions. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PropagationCoverageTest {

  private static TaskGroup carrying() {
    return TaskGroup.builder().contextPropagator(new CarryRequest()).build();
  }

  @Test
  void startChildRunsInsideThePropagators() throws Exception {
    REQUEST.set("req-start");
    TaskGroup group = carrying();
    AtomicReference<String> seen = new AtomicReference<>();
    group.run(() -> seen.set(group.start(signal -> signal.started(REQUEST.get()))));
    assertThat(seen.get()).isEqualTo("req-start");
  }

  @Test
  void startWhoseWrapThrowsIsRejectedAndTheWorkNeverRuns() throws Exception {
    RuntimeException boom = new IllegalStateException("no context");
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .contextPropagator(Propagators.throwingInWrap(boom))
            .build();
    AtomicInteger ran = new AtomicInteger();
    group.run(
        () ->
            assertThatThrownBy(() -> group.start(signal -> ran.incrementAndGet()))
                .isInstanceOf(RejectedExecutionException.class)
                .hasMessageContaining("so a start in group '")
                .hasCause(boom));
    assertThat(ran.get()).isZero();
  }

  @Test
  void startWhosePropagatorThrowsBeforeTheWorkThrowsThatFromStart() throws Exception {
    RuntimeException boom = new IllegalStateException("cannot install context");
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      throw boom;
                    })
            .build();
    group.run(() -> assertThatThrownBy(() -> group.start(StartSignal::started)).isSameAs(boom));
  }

  @RepeatedTest(5)
  void aChildForkedFromAChildUnderMaxConcurrencyWaitsForItsPlaceInsideThePropagators()
      throws Exception {
    REQUEST.set("req-bounded");
    TaskGroup group =
        TaskGroup.builder().maxConcurrency(1).contextPropagator(new CarryRequest()).build();
    AtomicReference<String> grandchild = new AtomicReference<>();
    group.run(
        () ->
            group.fork(
                () -> {
                  // the only place is this child's: the grandchild takes it once this ends
                  group.fork(() -> grandchild.set(REQUEST.get()));
                  return null;
                }));
    assertThat(grandchild.get()).isEqualTo("req-bounded");
  }

  @Test
  void invokeAllTasksRunInsideTheEnclosingGroupsPropagators() throws Exception {
    REQUEST.set("req-all");
    TaskGroup group = carrying();
    AtomicReference<List<String>> seen = new AtomicReference<>();
    group.run(
        () -> {
          Callable<String> read = REQUEST::get;
          seen.set(TaskGroup.invokeAll(List.of(read, read)));
        });
    assertThat(seen.get()).containsExactly("req-all", "req-all");
  }

  @Test
  void invokeAnyTasksRunInsideTheEnclosingGroupsPropagators() throws Exception {
    REQUEST.set("req-any");
    TaskGroup group = carrying();
    AtomicReference<String> seen = new AtomicReference<>();
    group.run(() -> seen.set(TaskGroup.invokeAny(List.<Callable<String>>of(REQUEST::get))));
    assertThat(seen.get()).isEqualTo("req-any");
  }

  @Test
  void invokeAllOutsideAnyGroupAppliesNoOwnPropagator() throws Exception {
    REQUEST.set("req-none");
    assertThat(TaskGroup.invokeAll(List.<Callable<String>>of(REQUEST::get))).containsOnlyNulls();
  }

  @RepeatedTest(10)
  void onCancelActionRunsInsideTheEnclosingGroupsPropagatorsWrappedOnTheRegisteringThread()
      throws Exception {
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work -> {
                  String wrappedOn = Thread.currentThread().getName();
                  String captured = REQUEST.get();
                  return () -> {
                    REQUEST.set(captured + " wrapped on " + wrappedOn);
                    work.run();
                  };
                })
            .build();
    AtomicReference<String> seen = new AtomicReference<>();
    CountDownLatch registered = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              "registrar",
              () -> {
                REQUEST.set("req-hook");
                try (var hook = CancelScope.onCancel(() -> seen.set(REQUEST.get()))) {
                  registered.countDown();
                  Fixtures.parkUntilInterrupted();
                }
                return null;
              });
          registered.await();
          group.cancel();
        });
    assertThat(seen.get()).isEqualTo("req-hook wrapped on registrar");
  }

  @Test
  void onCancelWhoseWrapThrowsRegistersNothing() throws Exception {
    RuntimeException boom = new IllegalStateException("no context");
    TaskGroup group =
        TaskGroup.builder().contextPropagator(Propagators.throwingInWrap(boom)).build();
    AtomicInteger ran = new AtomicInteger();
    group.run(
        () -> {
          assertThatThrownBy(() -> CancelScope.onCancel(ran::incrementAndGet))
              .isInstanceOf(RejectedExecutionException.class)
              .hasCause(boom);
          group.cancel();
        });
    assertThat(ran.get()).as("the rejected action never runs").isZero();
    assertThat(group.cancelCaught()).isTrue();
  }
}
