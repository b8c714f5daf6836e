package dev.taskgroup.examples.migrating;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.TaskGroupException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Runs every sample the migration guides quote and checks it does what the guide says. */
@Timeout(30)
class MigrationSamplesTest {
  @Test
  void structuredTaskScopeShapes() throws Exception {
    assertThat(FromStructuredTaskScope.userAndOrder("7")).isEqualTo("user 7, order 7");
    assertThat(FromStructuredTaskScope.fromAnyMirror()).isEqualTo("fast mirror");
    assertThatThrownBy(() -> FromStructuredTaskScope.userWithin(Duration.ofMillis(20)))
        .isInstanceOf(TimeoutException.class);
    assertThat(FromStructuredTaskScope.firstPageMentioning(List.of("x", "a cat", "y"), "cat"))
        .isEqualTo("a cat");
  }

  @Test
  void executorAndGroupGiveTheSameResults() throws Exception {
    List<String> urls = List.of("u1", "u2", "u3");
    assertThat(FromExecutorService.fetchAllWithExecutor(urls)).isEqualTo(urls);
    assertThat(FromExecutorService.fetchAllWithGroup(urls)).isEqualTo(urls);
    assertThat(FromExecutorService.fetchAllInOneCall(urls)).isEqualTo(urls);
    assertThat(FromExecutorService.combineWithFutures()).isEqualTo("user + cart");
    assertThat(FromExecutorService.combineWithGroup()).isEqualTo("user + cart");
  }

  @RepeatedTest(3)
  void aFailureIsReportedDifferently() {
    List<String> urls = List.of("broken u1", "u2");
    assertThatThrownBy(() -> FromExecutorService.fetchAllWithExecutor(urls))
        .isInstanceOf(ExecutionException.class);
    assertThatThrownBy(() -> FromExecutorService.fetchAllWithGroup(urls))
        .isInstanceOf(TaskGroupException.class)
        .hasRootCauseMessage("broken u1 failed");
  }

  @RepeatedTest(3)
  void asyncioShapes() throws Exception {
    assertThat(FromAsyncio.both()).isEqualTo("ab");
    var inbox = new LinkedBlockingQueue<>(List.of("m1", "m2", "stop"));
    assertThat(FromAsyncio.consumeUntilStop(inbox)).isEqualTo(2);
    assertThat(FromAsyncio.withDeadline()).isEqualTo("gave up");
    assertThat(FromAsyncio.failures()).containsExactly("broken a failed");
  }

  @RepeatedTest(3)
  void trioShapes() throws Exception {
    assertThat(FromTrio.producerConsumer()).containsExactly("a", "b", "c");
    assertThat(FromTrio.startThenUse()).isEqualTo("served");
    assertThat(FromTrio.moveOnAfter()).isEqualTo("cancelCalled=true cancelCaught=true");
    assertThat(FromTrio.cleanupUnderShield()).isEqualTo("cleaned up");
  }

  @RepeatedTest(3)
  void kotlinShapes() throws Exception {
    assertThat(FromKotlin.loadProfile()).isEqualTo("user & friends");
    assertThat(FromKotlin.timeouts()).isEqualTo("null, then TimeoutException");
    assertThat(FromKotlin.supervise(List.of("a", "broken b", "c", "broken d"))).isEqualTo(2);
    assertThat(FromKotlin.cancelOneJob()).isEqualTo("CANCELLED");
    assertThat(FromKotlin.releaseUnderShield()).isEqualTo("released");
  }
}
