package dev.taskgroup.internal;

import java.io.Serial;

/**
 * The exception the library throws for a cancellation (see the public {@link
 * dev.taskgroup.CancelledException}, which users catch): at a checkpoint, or when a cancellation
 * that arrived as another exception (a {@code ClosedByInterruptException}, an {@code IOException}
 * from a socket closed by the interrupt) propagates out of a scope that does not absorb it; then
 * that exception is its cause. The message names the scope and why it was cancelled. Being of this
 * class (not merely the public one, which users may create) marks an exception as the library's
 * own, for the "In flight" rule in {@link PlainScope}.
 */
public final class CancelledException extends dev.taskgroup.CancelledException {
  @Serial private static final long serialVersionUID = 1L;

  /** For the cancellation of {@code cancelled}, with an optional original exception. */
  public CancelledException(Scope cancelled, Throwable cause) {
    super(message(cancelled), cause);
  }

  /**
   * For a cancellation the library reports without the scope at hand ({@code invokeAll} whose tasks
   * a cancellation now hidden by a shield stopped), with {@code message} saying what happened.
   */
  public CancelledException(String message) {
    super(message, null);
  }

  private static String message(Scope cancelled) {
    if (cancelled == null) {
      return "cancelled";
    }
    CancelReason why = cancelled.reason();
    return cancelled.describe() + " " + (why == null ? "cancelled" : why.describe());
  }
}
