package dev.taskgroup.internal;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One node of a captured task tree: a group, a cancel scope or a task, as it was when captured.
 * Built by {@link TreeCapture}; read by {@code dev.taskgroup.TaskTree}. Immutable once the capture
 * has returned.
 */
public final class TreeNode {
  /** {@code group}, {@code scope} or {@code task}. */
  public final String kind;

  /** The group's or task's name; null for a cancel scope. */
  public final String name;

  /** {@code running}, {@code cancelled}, {@code joining} or {@code done}. */
  public final String state;

  /** The id of the thread that runs it ({@link Thread#threadId()}); -1 if none yet. */
  public final long threadId;

  /** That thread's name; null if none yet. */
  public final String threadName;

  /** The deadline, or null. */
  public final Instant deadline;

  /** Why it is cancelled (the reason of the scope that cancels it), or null. */
  public final String cancelReason;

  /** For a cancelled node: milliseconds since the cancel reached it, or -1 when unknown. */
  public final long cancelledMillisAgo;

  /** For a cancelled node: re-deliveries of the interrupt to its thread so far. */
  public final int redeliveries;

  /**
   * For a group whose owner waits for its children: the object it parks on, as JDK thread dumps
   * print it ({@code dev.taskgroup.internal.Group@1b6d3586}); null otherwise.
   */
  public final String parkedOn;

  final List<TreeNode> children = new ArrayList<>();

  TreeNode(
      String kind,
      String name,
      String state,
      Thread thread,
      Instant deadline,
      String cancelReason,
      long cancelledMillisAgo,
      int redeliveries,
      String parkedOn) {
    this.kind = kind;
    this.name = name;
    this.state = state;
    this.threadId = thread == null ? -1L : thread.threadId();
    this.threadName = thread == null ? null : thread.getName();
    this.deadline = deadline;
    this.cancelReason = cancelReason;
    this.cancelledMillisAgo = cancelledMillisAgo;
    this.redeliveries = redeliveries;
    this.parkedOn = parkedOn;
  }

  /** The nodes below this one: nested scopes first, then the children of a group. */
  public List<TreeNode> children() {
    return Collections.unmodifiableList(children);
  }
}
