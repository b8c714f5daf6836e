package dev.taskgroup.internal;

import java.io.Serial;
import java.lang.ref.WeakReference;
import java.util.concurrent.ExecutionException;

/**
 * What {@code Task.get()} throws for a failed task: an {@link ExecutionException} whose cause is
 * the failure, which the task's group has already reported. Its own type says so: a group that sees
 * it thrown by its body or by a sibling does not count the failure a second time, and a cancelled
 * scope never takes it for a cancellation, whatever its cause (see {@link Cancellation}).
 */
final class FailedTaskException extends ExecutionException {
  @Serial private static final long serialVersionUID = 1L;

  /**
   * The group that reported the cause; not serialised. Weak: an exception kept after its group was
   * dropped (an error log, a list of outcomes) keeps its cause, as an ExecutionException from
   * FutureTask.get() does, not the group with what its onFailure handler, thread factory and
   * context propagators captured. A group that asks (reportedBy) holds itself, so the reference is
   * never cleared under that question. Made only on this rare path.
   */
  private final transient WeakReference<Group> reportedBy;

  FailedTaskException(TaskImpl<?> task, Throwable failure) {
    super(task.describe() + " failed: " + Cancellation.describe(failure), failure);
    this.reportedBy = new WeakReference<>(task.group());
  }

  /** Whether {@code g} has already reported this exception's cause. */
  boolean reportedBy(Group g) {
    WeakReference<Group> r = reportedBy; // null once deserialised
    return r != null && r.get() == g;
  }
}
