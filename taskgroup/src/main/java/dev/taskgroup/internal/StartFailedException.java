package dev.taskgroup.internal;

import java.io.Serial;

/**
 * How {@link Group#start} says that the work passed to {@code start} threw a checked exception
 * before it signalled (its cause), for the public {@code TaskGroup} to report. An unchecked one is
 * thrown as it is. Never seen by user code; it has no stack trace of its own.
 */
public final class StartFailedException extends Exception {
  @Serial private static final long serialVersionUID = 1L;

  StartFailedException(Throwable failure) {
    super(null, failure, false, false);
  }
}
