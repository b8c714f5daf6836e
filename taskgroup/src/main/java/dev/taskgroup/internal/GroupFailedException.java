package dev.taskgroup.internal;

import java.io.Serial;
import java.util.List;

/**
 * How {@link Group#run} and {@link Group#call} say that the group failed: the failures, in order,
 * for the public {@code TaskGroup} to report as its {@code TaskGroupException}. Never seen by user
 * code; it has no stack trace of its own.
 */
public final class GroupFailedException extends Exception {
  @Serial private static final long serialVersionUID = 1L;

  @SuppressWarnings("serial") // an unmodifiable list of throwables; never serialised in practice
  private final List<Throwable> failures;

  GroupFailedException(List<Throwable> failures) {
    super(null, null, false, false);
    this.failures = failures;
  }

  /** The group's failures, in the order they happened; never empty. */
  public List<Throwable> failures() {
    return failures;
  }
}
