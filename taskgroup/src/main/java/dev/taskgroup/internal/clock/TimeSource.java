package dev.taskgroup.internal.clock;

import java.time.Instant;
import java.util.concurrent.locks.LockSupport;

/**
 * A time other than the system's, installed in {@link LibraryClock}: what the test kit's virtual
 * clock implements. Every method may be called from any thread.
 */
public interface TimeSource {
  /**
   * Now, on the library's monotonic timeline (the same units and origin as {@link
   * LibraryClock#nanoTime()} had when this source was installed).
   *
   * @return the current time in nanoseconds
   */
  long nanoTime();

  /**
   * Now, on the wall clock this source shows.
   *
   * @return the current instant
   */
  Instant instant();

  /**
   * Parks the calling thread until {@link #nanoTime()} reaches {@code deadlineNanos}; may return
   * earlier (the thread was unparked or interrupted, or this source was uninstalled): the caller
   * re-checks and parks again. Never throws, never clears the interrupt status.
   *
   * @param deadlineNanos when to wake, on this source's timeline
   */
  void parkUntil(long deadlineNanos);

  /**
   * Parks the calling thread with no end in time: no move of this source's time wakes it; it
   * returns when the thread is unparked or interrupted, when this source is uninstalled, or
   * spuriously: the caller re-checks and parks again. Never throws, never clears the interrupt
   * status. By default a plain park, which no clock wakes.
   */
  default void parkForever() {
    LockSupport.park(this);
  }

  /**
   * Wakes {@code thread} without interrupting it, for a cancellation the library delivers that way
   * (inside a cooperative scope): a wait it may be in, on this source or not, re-checks. A source
   * that tells blocked threads from running ones counts a sleep of {@code thread} it ends here as
   * about to run: the thread still shows as waiting until it is scheduled. By default a plain
   * unpark.
   *
   * @param thread the thread to wake
   */
  default void wake(Thread thread) {
    LockSupport.unpark(thread);
  }
}
