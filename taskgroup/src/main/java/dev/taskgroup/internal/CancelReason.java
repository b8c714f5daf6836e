package dev.taskgroup.internal;

/**
 * Why a scope was cancelled, and from which thread: kept with the scope (first reason wins) and
 * named in the message of every {@link CancelledException} it causes.
 *
 * @param kind what kind of event cancelled the scope
 * @param text the user's reason for an explicit cancel, otherwise a description
 * @param threadName the name of the thread that cancelled it
 * @param atNanos System.nanoTime when it was made (the first reason is the first cancel), or 0 for
 *     the one shared reason of every expired deadline (the deadline tells the time)
 */
public record CancelReason(Kind kind, String text, String threadName, long atNanos) {

  /** What cancelled a scope. */
  public enum Kind {
    /** {@code cancel()} or {@code cancel(reason)}. */
    EXPLICIT,
    /** The scope's deadline expired. */
    DEADLINE,
    /** A failure in the group (CANCEL_ALL) cancelled the rest of it. */
    FAILURE,
    /** The group's owner was interrupted from outside. */
    OWNER_INTERRUPTED,
    /** {@code Task.cancel()} cancelled one task. */
    TASK_CANCEL
  }

  /** An explicit cancel from the calling thread. */
  public static CancelReason explicit(String text) {
    return new CancelReason(
        Kind.EXPLICIT, text, Thread.currentThread().getName(), System.nanoTime());
  }

  /** A cancel of the given kind from the calling thread. */
  public static CancelReason of(Kind kind, String text) {
    return new CancelReason(kind, text, Thread.currentThread().getName(), System.nanoTime());
  }

  /** How the reason reads in an exception message. */
  public String describe() {
    String by = threadName.isEmpty() ? "an unnamed thread" : "thread \"" + threadName + "\"";
    return switch (kind) {
      case EXPLICIT -> "cancelled by " + by + ": " + text;
      case DEADLINE -> "deadline expired";
      case FAILURE -> "cancelled because of a failure (" + text + ")";
      case OWNER_INTERRUPTED -> "cancelled because its owner was interrupted";
      case TASK_CANCEL -> "cancelled by " + by + ": Task.cancel() called";
    };
  }
}
