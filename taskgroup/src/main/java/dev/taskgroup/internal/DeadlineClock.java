package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.time.Duration;
import java.time.Instant;

/**
 * Deadline arithmetic for {@link Deadlines}: the conversion of an {@code Instant} to a moment of
 * the monotonic clock, and sums and differences that saturate at FOREVER_NANOS instead of
 * overflowing.
 *
 * <pre>
 * Implementation overview
 *
 * Stateless but for clockPair, one volatile reference to an immutable record: any thread may
 * replace it, a racing replacement is as good as the one it replaces, and readers read it once.
 * Invariant: a conversion through the kept pair is off by at most CLOCK_PAIR_SLACK_NANOS.
 * </pre>
 */
final class DeadlineClock {
  private DeadlineClock() {}

  /**
   * The moment of the monotonic clock that {@code deadline} names, through one pair of readings of
   * the two clocks kept while they agree: the same Instant, set on two scopes, becomes the same
   * nanoTime, so that nested scopes given one deadline expire together (converted with a fresh pair
   * each time, they came microseconds apart, and the inner one could expire alone and absorb the
   * cancellation meant for the outer). A pair is replaced as soon as the wall clock has drifted
   * from the monotonic one by more than CLOCK_PAIR_SLACK_NANOS since it was read (a step of the
   * wall clock), so a conversion is never further off than that. System clocks only: see the
   * caller.
   */
  static long wallToNano(long now, Instant wallNow, Instant deadline) {
    ClockPair p = clockPair;
    if (p == null
        || (drifted(p, now, wallNow)
            // The caller's two readings can be apart (its thread preempted between them, on a
            // busy machine): the pair is replaced only if a second look at both clocks agrees.
            && drifted(p, LibraryClock.nanoTime(), LibraryClock.instant()))) {
      p = new ClockPair(now, wallNow);
      clockPair = p;
    }
    return p.nano + saturatedNanos(Duration.between(p.wall, deadline));
  }

  /** Drops the kept pair (for the tests: the next conversion takes the readings it is given). */
  static void forgetPair() {
    clockPair = null;
  }

  /** Whether the clocks, read as {@code now} and {@code wallNow}, drifted from {@code p}. */
  private static boolean drifted(ClockPair p, long now, Instant wallNow) {
    long drift = saturatedNanos(Duration.between(p.wall, wallNow)) - (now - p.nano);
    return Math.abs(drift) > CLOCK_PAIR_SLACK_NANOS;
  }

  /** One reading of both clocks; see wallToNano. */
  private record ClockPair(long nano, Instant wall) {}

  /** The pair wallToNano uses; any thread may replace it (a racing replacement is as good). */
  private static volatile ClockPair clockPair;

  /** How far the two clocks may drift apart before wallToNano reads them again. */
  private static final long CLOCK_PAIR_SLACK_NANOS = 1_000_000L;

  /** Far enough to never fire, near enough that nanoTime differences do not overflow. */
  static final long FOREVER_NANOS = Long.MAX_VALUE / 4;

  static long saturatedNanos(Duration d) {
    try {
      return Math.max(Math.min(d.toNanos(), FOREVER_NANOS), -FOREVER_NANOS);
    } catch (ArithmeticException overflow) {
      return d.isNegative() ? -FOREVER_NANOS : FOREVER_NANOS;
    }
  }

  static long saturatedAdd(long now, long nanos) {
    return now + Math.min(nanos, FOREVER_NANOS);
  }

  static Instant saturatedInstant(Instant now, Duration timeout) {
    try {
      return now.plus(timeout);
    } catch (RuntimeException overflow) {
      return timeout.isNegative() ? Instant.MIN : Instant.MAX;
    }
  }
}
