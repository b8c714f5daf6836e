package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.lang.reflect.Field;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A deadline that the timer took as its scope exited, and marks only after the exit (which does not
 * wait for the timer), changes nothing: what {@code run} left stays. Each test makes that
 * interleaving happen for sure by calling the timer's mark on a scope that has exited.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeadlineAfterExitTest {
  private static EnteredScope behind(Object publicScope) throws ReflectiveOperationException {
    Field f = publicScope.getClass().getDeclaredField("scope");
    f.setAccessible(true);
    return (EnteredScope) f.get(publicScope);
  }

  @Test
  void aScopeMarkedExpiredAfterItExitedIsNeitherCancelledNorGivenAReason() throws Exception {
    CancelScope scope = CancelScope.withTimeout(Duration.ofHours(1));
    scope.run(() -> {});
    assertThat(Deadlines.markExpired(behind(scope))).isFalse();
    assertThat(scope.cancelCalled()).isFalse();
    assertThat(scope.cancelReason()).isEmpty();
    assertThat(scope.toString()).contains("done");
  }

  @Test
  void aGroupMarkedExpiredAfterItsRunReturnedIsNeitherCancelledNorGivenAReason() throws Exception {
    TaskGroup group = TaskGroup.builder().timeout(Duration.ofHours(1)).build();
    group.run(() -> group.fork(() -> "done"));
    CancelScope scope = group.cancelScope();
    assertThat(Deadlines.markExpired(behind(scope))).isFalse();
    assertThat(group.cancelCalled()).isFalse();
    assertThat(scope.cancelReason()).isEmpty();
  }

  @Test
  void aScopeNotYetRunIsStillMarkedByAnExpiredDeadline() throws Exception {
    CancelScope scope = CancelScope.create();
    assertThat(Deadlines.markExpired(behind(scope))).isFalse(); // not running: nothing to deliver
    assertThat(scope.cancelCalled()).isTrue(); // it starts cancelled, as with a past deadline
    assertThat(scope.cancelReason()).contains("deadline expired");
  }
}
