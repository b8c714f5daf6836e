package dev.taskgroup.examples.guide;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Runs every sample the guide quotes and checks it does what the guide says. */
@Timeout(30)
class GuideSamplesTest {
  @Test
  void aGroupForksTwoCallsAndJoinsThem() throws Exception {
    assertThat(Basics.profilePage("ada")).isEqualTo("user ada has 3 orders");
  }

  @RepeatedTest(3)
  void theFirstMatchCancelsTheOtherScans() throws Exception {
    assertThat(Basics.firstMatch(List.of(1, 2, 3, 4, 5), 4)).contains(4);
  }

  @Test
  void checkpointThrowsOnceTheThreadIsCancelled() throws Exception {
    long[] data = new long[10_000];
    java.util.Arrays.fill(data, 1);
    assertThat(Basics.sum(data)).isEqualTo(10_000);
    var scope = dev.taskgroup.CancelScope.create();
    scope.cancel();
    scope.run(() -> Basics.sum(data));
    assertThat(scope.cancelCaught()).isTrue();
  }

  @RepeatedTest(3)
  void everyFailureIsReportedInOrder() throws Exception {
    assertThat(Basics.uploadBoth()).containsExactly("connection reset", "could not close session");
  }

  @Test
  void moveOnAfterGivesTheDefaultWhenSlow() throws Exception {
    assertThat(Deadlines.answerOrDefault(1)).isEqualTo("answer to question");
    assertThat(Deadlines.answerOrDefault(60_000)).isEqualTo("default answer");
  }

  @Test
  void failAfterThrowsWhenSlow() throws Exception {
    assertThat(Deadlines.answerOrTimeout(1)).isEqualTo("answer to question");
    assertThat(Deadlines.answerOrTimeout(60_000)).isEqualTo("timed out");
  }

  @Test
  void aScopeWithATimeoutAbsorbsItsDeadline() throws Exception {
    var queue = new LinkedBlockingQueue<String>(List.of("a", "b"));
    assertThat(Deadlines.drainFor(queue, Duration.ofMillis(50))).containsExactly("a", "b");
  }

  @Test
  void shieldedCleanupBlocksAfterCancel() throws Exception {
    assertThat(Deadlines.cancelThenCleanUp()).containsExactly("goodbye sent", "cancelCaught=true");
  }

  @RepeatedTest(3)
  void startWaitsForTheServerToListen() throws Exception {
    assertThat(Patterns.echoOnce("hello")).isEqualTo(5);
  }

  @Test
  void theSupervisorKeepsGoingAndStreamsFailures() throws Exception {
    assertThat(Patterns.processAll(List.of("a", "bad-1", "b", "bad-2")))
        .containsExactlyInAnyOrder("cannot process bad-1", "cannot process bad-2");
  }

  @Test
  void atMostFourDownloadsRunAtOnce() throws Exception {
    Services.MOST_AT_ONCE.set(0);
    List<String> urls = java.util.Collections.nCopies(20, "https://example.org");
    assertThat(Patterns.downloadAll(urls)).isEqualTo(20 * "https://example.org".length());
    assertThat(Services.MOST_AT_ONCE.get()).isBetween(1, 4);
  }

  @Test
  void invokeAnyTakesTheFastestAndInvokeAllKeepsOrder() throws Exception {
    assertThat(Patterns.fastestThenAll())
        .isEqualTo("answer to mirror-b / [answer to mirror-a, answer to mirror-b]");
  }
}
