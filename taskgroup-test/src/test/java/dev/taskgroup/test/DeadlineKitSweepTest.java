package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.parallel.ResourceLock;
import org.junit.jupiter.api.parallel.Resources;

/**
 * Deadlines on a {@link VirtualClock} after the changes to the library's deadline timer: an Instant
 * set under the clock fires at its exact virtual nanosecond (not a nanosecond before), nested
 * scopes given one Instant expire together on the advance that reaches it and the outermost absorbs
 * (guide, "Deadlines"; Trio's test_cancel_scope_nesting with MockClock, closest), deadlines 1 ns
 * apart, the 73-year horizon, {@code deadline()} for every factory and setter on virtual time, and
 * Instant deadlines across install and close (nothing of the virtual conversion leaks to the system
 * clock and back).
 */
@ResourceLock(Resources.GLOBAL)
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeadlineKitSweepTest {

  /** Nested scopes with the given deadlines, run on a virtual thread until cancelled. */
  private static final class Chain {
    final List<CancelScope> scopes = new ArrayList<>();
    final CountDownLatch blocked = new CountDownLatch(1);
    final AtomicReference<Throwable> escaped = new AtomicReference<>();
    final Thread thread;

    Chain(Instant... deadlines) throws InterruptedException {
      for (Instant at : deadlines) {
        scopes.add(CancelScope.withDeadline(at));
      }
      thread = Thread.ofVirtual().start(() -> escaped.set(catchThrowable(() -> runFrom(0))));
      blocked.await();
    }

    private void runFrom(int i) throws InterruptedException {
      if (i == scopes.size()) {
        blocked.countDown();
        new CountDownLatch(1).await();
        return;
      }
      scopes.get(i).run(() -> runFrom(i + 1));
    }

    void assertOutermostAbsorbedAll() throws InterruptedException {
      assertThat(thread.join(Duration.ofSeconds(10))).isTrue();
      assertThat(escaped.get()).isNull();
      assertThat(scopes.getFirst().cancelCaught()).as("outermost absorbs").isTrue();
      for (int i = 1; i < scopes.size(); i++) {
        assertThat(scopes.get(i).cancelCalled()).as("scope %d expired too", i).isTrue();
        assertThat(scopes.get(i).cancelCaught()).as("scope %d absorbed", i).isFalse();
      }
    }
  }

  private static Instant[] same(Instant at, int n) {
    Instant[] a = new Instant[n];
    java.util.Arrays.fill(a, at);
    return a;
  }

  @RepeatedTest(20)
  void oneInstantOnNestedScopesExpiresOnTheAdvanceThatReachesItExactly() throws Exception {
    for (int depth : new int[] {2, 3, 10}) {
      try (var clock = VirtualClock.install()) {
        Instant at = clock.instant().plusSeconds(10);
        Chain c = new Chain(same(at, depth));
        clock.advance(Duration.ofSeconds(10).minusNanos(1));
        for (CancelScope s : c.scopes) {
          assertThat(s.cancelCalled()).as("1 ns before the deadline").isFalse();
        }
        clock.advance(Duration.ofNanos(1));
        for (CancelScope s : c.scopes) {
          assertThat(s.cancelCalled()).as("delivered when advance returns").isTrue();
        }
        c.assertOutermostAbsorbedAll();
      }
    }
  }

  /** A jump well past the shared Instant: all expire together, the outermost absorbs. */
  @RepeatedTest(20)
  void oneInstantOnNestedScopesAndAJumpPastItIsAbsorbedByTheOutermost() throws Exception {
    try (var clock = VirtualClock.install()) {
      Chain c = new Chain(same(clock.instant().plusSeconds(3), 3));
      clock.advance(Duration.ofHours(1));
      c.assertOutermostAbsorbedAll();
    }
  }

  /** The outer scope in the owner, the inner in a child, the same Instant: the owner's absorbs. */
  @RepeatedTest(20)
  void oneInstantAcrossAGroupIsAbsorbedByTheOwnersScope() throws Exception {
    try (var clock = VirtualClock.install()) {
      Instant at = clock.instant().plusSeconds(5);
      CancelScope outer = CancelScope.withDeadline(at);
      CancelScope inner = CancelScope.withDeadline(at);
      CountDownLatch blocked = new CountDownLatch(1);
      AtomicReference<Throwable> escaped = new AtomicReference<>();
      Thread owner =
          Thread.ofVirtual()
              .start(
                  () ->
                      escaped.set(
                          catchThrowable(
                              () ->
                                  outer.run(
                                      () -> {
                                        var group = TaskGroup.named("g");
                                        group.run(
                                            () ->
                                                group.fork(
                                                    () ->
                                                        inner.run(
                                                            () -> {
                                                              blocked.countDown();
                                                              new CountDownLatch(1).await();
                                                            })));
                                      }))));
      blocked.await();
      clock.advance(Duration.ofSeconds(5));
      assertThat(owner.join(Duration.ofSeconds(10))).isTrue();
      assertThat(escaped.get()).isNull();
      assertThat(outer.cancelCaught()).isTrue();
      assertThat(inner.cancelCalled()).isTrue();
      assertThat(inner.cancelCaught()).isFalse();
    }
  }

  /** Deadlines 1 ns apart, the outer first: advancing exactly to it cancels only the outer. */
  @RepeatedTest(20)
  void anOuterDeadlineOneNanosecondBeforeTheInnerFiresAloneAtItsNanosecond() throws Exception {
    try (var clock = VirtualClock.install()) {
      Instant at = clock.instant().plusMillis(7);
      Chain c = new Chain(at, at.plusNanos(1));
      clock.advance(Duration.ofMillis(7));
      assertThat(c.thread.join(Duration.ofSeconds(10))).isTrue();
      assertThat(c.escaped.get()).isNull();
      assertThat(c.scopes.get(0).cancelCaught()).isTrue();
      assertThat(c.scopes.get(1).cancelCalled()).as("its nanosecond never came").isFalse();
    }
  }

  /** The inner first, 1 ns apart, advanced exactly to it: the inner absorbs, the outer goes on. */
  @RepeatedTest(20)
  void anInnerDeadlineOneNanosecondBeforeTheOuterIsAbsorbedByTheInner() throws Exception {
    try (var clock = VirtualClock.install()) {
      Instant at = clock.instant().plusMillis(7);
      CancelScope outer = CancelScope.withDeadline(at.plusNanos(1));
      CancelScope inner = CancelScope.withDeadline(at);
      CountDownLatch blocked = new CountDownLatch(1);
      CountDownLatch afterInner = new CountDownLatch(1);
      Thread t =
          Thread.ofVirtual()
              .start(
                  () ->
                      catchThrowable(
                          () ->
                              outer.run(
                                  () -> {
                                    inner.run(
                                        () -> {
                                          blocked.countDown();
                                          new CountDownLatch(1).await();
                                        });
                                    afterInner.countDown();
                                    new CountDownLatch(1).await();
                                  })));
      blocked.await();
      clock.advance(Duration.ofMillis(7));
      afterInner.await();
      assertThat(inner.cancelCaught()).isTrue();
      assertThat(outer.cancelCalled()).isFalse();
      clock.advance(Duration.ofNanos(1));
      assertThat(t.join(Duration.ofSeconds(10))).isTrue();
      assertThat(outer.cancelCaught()).isTrue();
    }
  }

  @Test
  void anInstantSetUnderTheClockFiresAtItsExactVirtualNanosecond() throws Exception {
    try (var clock = VirtualClock.install()) {
      Chain c = new Chain(clock.instant().plusNanos(1_234_567));
      clock.advance(Duration.ofNanos(1_234_566));
      assertThat(c.scopes.getFirst().cancelCalled()).isFalse();
      clock.advance(Duration.ofNanos(1));
      assertThat(c.scopes.getFirst().cancelCalled()).isTrue();
      c.assertOutermostAbsorbedAll();
    }
  }

  @Test
  void instantMinCancelsAtOnceAndInstantMaxNeverFiresUnderTheClock() throws Exception {
    try (var clock = VirtualClock.install()) {
      CancelScope min = CancelScope.withDeadline(Instant.MIN);
      min.run(() -> new CountDownLatch(1).await());
      assertThat(min.cancelCaught()).isTrue();
      assertThat(min.deadline()).contains(Instant.MIN);

      Chain max = new Chain(Instant.MAX);
      clock.advance(Duration.ofDays(365L * 1000));
      assertThat(max.scopes.getFirst().cancelCalled()).isFalse();
      assertThat(max.scopes.getFirst().deadline()).contains(Instant.MAX);
      max.scopes.getFirst().cancel();
      max.assertOutermostAbsorbedAll();
    }
  }

  /** Moved earlier and later while running, under the clock: fires at the latest setting. */
  @Test
  void aDeadlineMovedEarlierThenLaterFiresAtItsLastSettingExactly() throws Exception {
    try (var clock = VirtualClock.install()) {
      Instant start = clock.instant();
      Chain c = new Chain(start.plusSeconds(10));
      CancelScope s = c.scopes.getFirst();
      s.setDeadline(start.plusSeconds(5));
      s.setDeadline(start.plusSeconds(20));
      clock.advance(Duration.ofSeconds(20).minusNanos(1));
      assertThat(s.cancelCalled()).isFalse();
      clock.advance(Duration.ofNanos(1));
      assertThat(s.cancelCalled()).isTrue();
      c.assertOutermostAbsorbedAll();
    }
  }

  /** deadline() for every factory and setter, exact under virtual time. */
  @Test
  void deadlineShownExactlyForEveryFactoryAndSetter() throws Exception {
    try (var clock = VirtualClock.install()) {
      Instant now = clock.instant();
      Duration d = Duration.ofSeconds(30);
      CancelScope t = CancelScope.withTimeout(d);
      assertThat(t.deadline()).isEmpty();
      t.run(() -> assertThat(t.deadline()).contains(now.plus(d)));

      CancelScope set = CancelScope.create();
      set.setTimeout(d);
      assertThat(set.deadline()).isEmpty();
      set.run(
          () -> {
            assertThat(set.deadline()).contains(now.plus(d));
            set.setTimeout(Duration.ofNanos(1));
            assertThat(set.deadline()).contains(now.plusNanos(1));
            set.setTimeout(Duration.ofSeconds(9));
          });

      var group = TaskGroup.builder().name("timed").timeout(d).build();
      group.run(() -> assertThat(group.cancelScope().deadline()).contains(now.plus(d)));

      CancelScope forever = CancelScope.withTimeout(ChronoUnit.FOREVER.getDuration());
      forever.run(() -> assertThat(forever.deadline()).contains(Instant.MAX));

      Duration century = Duration.ofDays(36_525);
      CancelScope longOne = CancelScope.withTimeout(century);
      longOne.run(() -> assertThat(longOne.deadline()).contains(now.plus(century)));
    }
  }

  /**
   * VirtualClock javadoc: a deadline about 73 years away or more is forever: no advance fires it.
   */
  @Test
  void aCenturyTimeoutNeverFiresEvenWhenTheClockIsAdvancedPastIt() throws Exception {
    try (var clock = VirtualClock.install()) {
      Duration century = Duration.ofDays(36_525);
      CancelScope s = CancelScope.withTimeout(century);
      CountDownLatch blocked = new CountDownLatch(1);
      Thread t =
          Thread.ofVirtual()
              .start(
                  () ->
                      catchThrowable(
                          () ->
                              s.run(
                                  () -> {
                                    blocked.countDown();
                                    new CountDownLatch(1).await();
                                  })));
      blocked.await();
      Instant shown = s.deadline().orElseThrow();
      clock.advance(century.plusDays(1));
      assertThat(s.cancelCalled()).isFalse();
      assertThat(s.deadline()).contains(shown);
      s.cancel();
      assertThat(t.join(Duration.ofSeconds(10))).isTrue();
    }
  }

  /**
   * An Instant deadline set under the clock and still pending at close goes on, on the system
   * clock, with the time it had left (VirtualTimeline's overview): not at once, not never.
   */
  @Test
  void anInstantDeadlinePendingAtCloseFiresAfterTheTimeItHadLeft() throws Exception {
    Chain c;
    long closedAt;
    try (var clock = VirtualClock.install()) {
      clock.advance(Duration.ofHours(2));
      c = new Chain(clock.instant().plusMillis(150));
      clock.advance(Duration.ofMillis(50));
      closedAt = System.nanoTime();
    }
    assertThat(c.thread.join(Duration.ofSeconds(10))).isTrue();
    long waited = System.nanoTime() - closedAt;
    assertThat(waited).as("fired after the 100 ms it had left").isGreaterThan(90_000_000L);
    c.assertOutermostAbsorbedAll();
  }

  /**
   * After a clock that moved hours ahead (or not at all) is closed, an Instant set on the system
   * clock fires at that wall time: the virtual readings do not leak into the system conversion.
   */
  @RepeatedTest(3)
  void anInstantSetOnTheSystemClockAfterCloseFiresAtItsWallTime() throws Exception {
    for (Duration moved : new Duration[] {Duration.ofHours(3), Duration.ZERO}) {
      CancelScope.withDeadline(Instant.now().plusSeconds(60)).run(() -> {}); // a kept pair
      try (var clock = VirtualClock.install()) {
        clock.advance(moved);
        Chain inside = new Chain(clock.instant().plusSeconds(1));
        clock.advance(Duration.ofSeconds(1));
        inside.assertOutermostAbsorbedAll();
      }
      Instant at = Instant.now().plusMillis(80);
      Chain c = new Chain(at);
      assertThat(c.thread.join(Duration.ofSeconds(10))).isTrue();
      Instant woke = Instant.now();
      assertThat(woke).as("not early (moved %s)", moved).isAfterOrEqualTo(at.minusMillis(1));
      assertThat(woke).as("not late (moved %s)", moved).isBefore(at.plusSeconds(3));
      c.assertOutermostAbsorbedAll();
    }
  }

  /**
   * A deadline set by Instant on the system clock before the clock is installed stays pending under
   * the clock (the timeline is one line) and fires when the virtual time reaches it.
   */
  @Test
  void anInstantSetBeforeInstallFiresWhenTheVirtualTimeReachesIt() throws Exception {
    Chain c = new Chain(Instant.now().plusSeconds(30));
    try (var clock = VirtualClock.install()) {
      clock.advance(Duration.ofSeconds(29));
      assertThat(c.scopes.getFirst().cancelCalled()).isFalse();
      clock.advance(Duration.ofSeconds(2));
      assertThat(c.scopes.getFirst().cancelCalled()).isTrue();
      c.assertOutermostAbsorbedAll();
    }
  }
}
