package dev.taskgroup.internal;

import java.io.Serial;

/**
 * The {@link InterruptedException} the library throws for a cancellation: at a checkpoint, or
 * when a cancellation that arrived as another exception (a {@code ClosedByInterruptException},
 * an {@code IOException} from a socket closed by the interrupt) propagates out of a scope that
 * does not absorb it; then that exception is its cause. The message names the scope and why it
 * was cancelled.
 */
public final class CancelledException extends InterruptedException {
  @Serial private static final long serialVersionUID = 1L;

  /** For the cancellation of {@code cancelled}, with an optional original exception. */
  public CancelledException(Scope cancelled, Throwable cause) {
    super(message(cancelled));
    if (cause != null) {
      initCause(cause);
    }
  }

  private static String message(Scope cancelled) {
    if (cancelled == null) {
      return "cancelled";
    }
    CancelReason why = cancelled.reason();
    return cancelled.describe() + " " + (why == null ? "cancelled" : why.describe());
  }
}
