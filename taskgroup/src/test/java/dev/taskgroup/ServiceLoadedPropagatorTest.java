package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.taskgroup.Propagators.Tagging;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Propagators found by ServiceLoader apply to every group, before the group's own. Runs in its own
 * surefire execution on the class path, where {@code META-INF/services} files are read (on the
 * module path a provider needs a {@code provides} clause).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ServiceLoadedPropagatorTest {
  private final Queue<String> trail = Propagators.trail();

  @BeforeEach
  void onTheClassPathOnly() {
    assumeFalse(
        ContextPropagator.class.getModule().isNamed(),
        "META-INF/services is read on the class path only: this test runs in the surefire"
            + " execution 'service-loading-on-the-class-path'");
  }

  /**
   * Turns the service-loaded propagator on for the calling thread (each test method runs on a
   * thread of its own: the timeout's).
   */
  private void turnOn() {
    ServiceLoadedTestPropagator.TRAIL.set(trail);
  }

  @Test
  void aServiceLoadedPropagatorAppliesToAGroupWithNoneOfItsOwn() throws Exception {
    turnOn();
    TaskGroup group = TaskGroup.create();
    group.run(() -> group.fork(() -> trail.add("work")));
    assertThat(trail).containsExactly("service wrap", "service before", "work", "service after");
  }

  @Test
  void serviceLoadedPropagatorsWrapFirstAndRunInnermost() throws Exception {
    turnOn();
    TaskGroup group = TaskGroup.builder().contextPropagator(new Tagging("own", trail)).build();
    String owner = Thread.currentThread().getName();
    group.run(() -> group.fork(() -> trail.add("work")));
    assertThat(trail)
        .containsExactly(
            "service wrap",
            "own wrap on " + owner,
            "own before",
            "service before",
            "work",
            "service after",
            "own after");
  }

  @Test
  void invokeAllTasksAreWrappedByServiceLoadedPropagators() throws Exception {
    turnOn();
    Callable<String> work = () -> "done";
    assertThat(TaskGroup.invokeAll(List.of(work))).containsExactly("done");
    assertThat(trail).containsExactly("service wrap", "service before", "service after");
  }

  @Test
  void anOnCancelActionOutsideAnyGroupIsWrappedByServiceLoadedPropagators() throws Exception {
    turnOn();
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          try (var hook = CancelScope.onCancel(() -> trail.add("action"))) {
            scope.cancel(); // close() waits for the fired action, wrapper included
          }
        });
    assertThat(trail).containsExactly("service wrap", "service before", "action", "service after");
  }
}
