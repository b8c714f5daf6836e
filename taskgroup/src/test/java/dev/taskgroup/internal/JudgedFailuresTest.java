package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The judgments a thread keeps: several at once (two judged failures can be travelling on one
 * thread), each kept once, and at most {@link JudgedFailures#LIMIT} live ones, dropping the oldest.
 */
class JudgedFailuresTest {
  @Test
  void keepsEveryJudgmentMadeWhileEarlierOnesTravel() {
    JudgedFailures judged = new JudgedFailures();
    RuntimeException first = new IllegalStateException("first");
    RuntimeException second = new IllegalStateException("second");
    judged.add(first);
    judged.add(second);
    assertThat(judged.contains(first)).isTrue();
    assertThat(judged.contains(second)).isTrue();
    assertThat(judged.contains(new IllegalStateException("other"))).isFalse();
  }

  @Test
  void aJudgmentMadeTwiceIsKeptOnce() {
    JudgedFailures judged = new JudgedFailures();
    RuntimeException failure = new IllegalStateException("again");
    judged.add(failure);
    judged.add(failure);
    assertThat(judged.size()).isEqualTo(1);
  }

  @Test
  void pastTheLimitTheOldestLiveJudgmentIsDropped() {
    JudgedFailures judged = new JudgedFailures();
    List<Throwable> kept = new ArrayList<>(); // held strongly, as a log of handled failures would
    for (int i = 0; i <= JudgedFailures.LIMIT; i++) {
      Throwable t = new IllegalStateException("failure " + i);
      kept.add(t);
      judged.add(t);
    }
    assertThat(judged.size()).isEqualTo(JudgedFailures.LIMIT);
    assertThat(judged.contains(kept.get(0))).isFalse();
    assertThat(kept.subList(1, kept.size())).allMatch(judged::contains);
  }
}
