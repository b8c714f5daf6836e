package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The judgments a thread keeps: several at once (two judged failures can be travelling on one
 * thread), each kept once, every live one however many, the cleared ones dropped.
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
  void everyLiveJudgmentIsKeptHoweverMany() {
    JudgedFailures judged = new JudgedFailures();
    List<Throwable> kept = new ArrayList<>(); // held strongly, as a log of handled failures would
    for (int i = 0; i < 1_000; i++) {
      Throwable t = new IllegalStateException("failure " + i);
      kept.add(t);
      judged.add(t);
    }
    assertThat(judged.size()).isEqualTo(kept.size());
    assertThat(kept).allMatch(judged::contains);
    assertThat(judged.contains(new IllegalStateException("other"))).isFalse();
  }

  @Test
  void clearedJudgmentsAreDroppedAsTheTableIsRebuilt() throws InterruptedException {
    JudgedFailures judged = new JudgedFailures();
    Throwable kept = new IllegalStateException("kept");
    judged.add(kept);
    List<java.lang.ref.WeakReference<Throwable>> gone = new ArrayList<>();
    for (int i = 0; i < 1_000; i++) {
      Throwable t = new IllegalStateException("dropped " + i);
      gone.add(new java.lang.ref.WeakReference<>(t));
      judged.add(t);
    }
    long until = System.nanoTime() + 10_000_000_000L;
    while (gone.stream().anyMatch(r -> r.get() != null) && System.nanoTime() < until) {
      System.gc();
      Thread.sleep(10); // polling GC with a deadline: nothing else tells when it has run
    }
    assertThat(gone).allMatch(r -> r.get() == null);
    judged.add(new IllegalStateException("one more")); // not kept: may be cleared at once too
    assertThat(judged.size()).isBetween(1, 2);
    assertThat(judged.contains(kept)).isTrue();
  }

  /**
   * A table that grew with many judgments at once (a burst of failures between two collections)
   * shrinks again once they were cleared: at the next add after the collector's notice, not only
   * when the table fills up again (which a quiet thread or group may never do).
   */
  @Test
  void aTableThatGrewShrinksOnceItsEntriesAreCleared() throws InterruptedException {
    JudgedFailures judged = new JudgedFailures();
    List<Throwable> burst = new ArrayList<>();
    for (int i = 0; i < 10_000; i++) {
      Throwable t = new IllegalStateException("burst " + i);
      burst.add(t);
      judged.add(t);
    }
    assertThat(judged.capacity()).isGreaterThanOrEqualTo(10_000);
    java.lang.ref.WeakReference<Throwable> last = new java.lang.ref.WeakReference<>(burst.get(0));
    burst = null;
    long until = System.nanoTime() + 10_000_000_000L;
    do {
      System.gc();
      Thread.sleep(10); // polling GC with a deadline: nothing else tells when it has run
      judged.add(new IllegalStateException("after the burst"));
    } while (judged.capacity() > 64 && System.nanoTime() < until);
    assertThat(last.get()).isNull();
    assertThat(judged.capacity())
        .as("capacity after the burst was cleared")
        .isLessThanOrEqualTo(64);
  }
}
