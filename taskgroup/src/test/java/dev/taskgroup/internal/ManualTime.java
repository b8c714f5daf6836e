package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import dev.taskgroup.internal.clock.TimeSource;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A test clock for the library's own tests that moves only when told and fires nothing when it
 * moves: the test fires what is due itself ({@link Deadlines#fireDue}, or its two halves), so it
 * can stand between taking a deadline and marking its scope.
 */
final class ManualTime implements TimeSource {
  private final long origin = LibraryClock.nanoTime();
  private final Instant wallOrigin = Instant.now();
  private final AtomicLong moved = new AtomicLong();

  void move(Duration d) {
    moved.addAndGet(d.toNanos());
  }

  @Override
  public long nanoTime() {
    return origin + moved.get();
  }

  @Override
  public Instant instant() {
    return wallOrigin.plusNanos(moved.get());
  }

  @Override
  public void parkUntil(long deadlineNanos) {
    LockSupport.parkNanos(1_000_000L);
  }
}
