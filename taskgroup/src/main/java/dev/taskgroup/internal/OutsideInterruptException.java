package dev.taskgroup.internal;

import java.io.Serial;

/**
 * The {@link InterruptedException} a group's {@code run} throws because its owner was interrupted
 * from outside (TaskGroup's javadoc, "When outcomes coincide", case 2). It is marked so that a
 * cancelled scope further out, which absorbs it as a cancellation, knows that the interrupt was
 * someone else's and sets the thread's interrupt status again: an outside interrupt is never lost.
 */
public final class OutsideInterruptException extends InterruptedException {
  @Serial private static final long serialVersionUID = 1L;

  OutsideInterruptException(String message, Throwable cause) {
    super(message);
    if (cause != null) {
      initCause(cause);
    }
  }

  /** Whether {@code t} or one of its causes is an outside interrupt thrown by a group. */
  static boolean isIn(Throwable t) {
    for (int depth = 0; t != null && depth < 64; t = Cancellation.causeOf(t), depth++) {
      if (t instanceof OutsideInterruptException) {
        return true;
      }
    }
    return false;
  }
}
