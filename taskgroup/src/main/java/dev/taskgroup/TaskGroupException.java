package dev.taskgroup;

import dev.taskgroup.internal.Cancellation;
import java.io.Serial;
import java.util.List;

/**
 * Thrown by {@link TaskGroup#run} when the body or any child failed: it holds every failure. {@link
 * TaskGroup#start} also throws one, holding that single failure, when the work fails with a checked
 * exception before it signals.
 *
 * <p>{@link #failures()} lists each throwable in the order the failures happened: the first, and
 * any raised by others while they were being cancelled or in their cleanup. The throwables are the
 * originals, checked or not, never wrapped; a nested group's {@code TaskGroupException} is kept as
 * one failure, not flattened. The same throwable thrown by two children (a shared exception object)
 * is listed once. The cancellations of the group, its scopes and its tasks are never among them; a
 * {@link java.util.concurrent.CancellationException} that work threw on its own account (from
 * {@code get()} of a task somebody cancelled) is a failure like any other. {@link #getCause()} is
 * the first failure, and the others are attached as {@linkplain #getSuppressed() suppressed}
 * exceptions so that a printed stack trace shows them all.
 *
 * {@snippet :
 * try {
 *   group.run(() -> {
 *     group.fork(() -> download(a));
 *     group.fork(() -> download(b));
 *   });
 * } catch (TaskGroupException e) {
 *   for (Throwable failure : e.failures()) log.warn("download failed", failure);
 * }
 * }
 */
public final class TaskGroupException extends RuntimeException {
  @Serial private static final long serialVersionUID = 1L;

  /** Every failure, in order; serialised with the exception. */
  @SuppressWarnings("serial") // an unmodifiable list of serialisable throwables
  private final List<Throwable> failures;

  /** The group's name, for the message; null when the message was given. */
  private final String groupName;

  /**
   * Creates an exception for the failures of the named group. The message is made when it is first
   * asked for: making it calls each first failure's {@code toString()}, which the group's run, near
   * the end of a thread's stack, may not have the frames for.
   *
   * @param groupName the group's name, used in the message
   * @param failures the failures in the order they happened; at least one
   */
  TaskGroupException(String groupName, List<Throwable> failures) {
    this(failures, null, groupName);
  }

  /** For a checked failure of the work passed to {@code start} before it signalled. */
  static TaskGroupException failedBeforeStarted(String groupName, List<Throwable> failures) {
    return new TaskGroupException(
        failures,
        "the work passed to start() on group '"
            + groupName
            + "' failed before calling started(): "
            + Cancellation.describe(failures.get(0)),
        null);
  }

  private TaskGroupException(List<Throwable> failures, String message, String groupName) {
    super(message, failures.get(0));
    this.failures = List.copyOf(failures);
    this.groupName = groupName;
    for (int i = 1; i < this.failures.size(); i++) {
      Throwable other = this.failures.get(i);
      if (other != this) {
        addSuppressed(other);
      }
    }
  }

  /**
   * The message: the group's name, how many failures, and the first.
   *
   * @return the message
   */
  @Override
  public String getMessage() {
    String given = super.getMessage();
    return given != null ? given : message(groupName, failures);
  }

  private static String message(String groupName, List<Throwable> failures) {
    int n = failures.size();
    String count = n == 1 ? "1 failure" : n + " failures";
    return "group '"
        + groupName
        + "' failed with "
        + count
        + "; first: "
        + Cancellation.describe(failures.get(0));
  }

  /**
   * Every failure of the group, in the order they happened.
   *
   * @return an unmodifiable, non-empty list; its first element is {@link #getCause()}
   */
  public List<Throwable> failures() {
    return failures;
  }
}
