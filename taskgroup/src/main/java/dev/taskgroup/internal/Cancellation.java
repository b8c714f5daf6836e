package dev.taskgroup.internal;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.nio.channels.ClosedByInterruptException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;

/** Which exceptions count as a cancellation (SPEC section 2, "cancellation-family"). */
public final class Cancellation {
  /** Longer cause chains are cut here (a cycle of causes must not hang the library). */
  private static final int MAX_CAUSE_DEPTH = 64;

  private Cancellation() {}

  /**
   * Whether {@code t}, thrown in a thread that is effectively cancelled, is the cancellation
   * itself rather than a failure: an interrupt-family exception or {@link CancellationException}
   * anywhere in its cause chain, an {@link IOException} thrown while the thread's interrupt
   * status is still set by the cancellation, or any {@link Exception} thrown after an action
   * the thread registered with {@code onCancel} started for this cancellation.
   */
  public static boolean isCancellation(Throwable t, ThreadState ts) {
    int depth = 0;
    for (Throwable c = t; c != null && depth < MAX_CAUSE_DEPTH; c = c.getCause(), depth++) {
      if (c instanceof InterruptedException
          || c instanceof ClosedByInterruptException
          || c instanceof CancellationException
          || (c instanceof InterruptedIOException && !(c instanceof SocketTimeoutException))) {
        return true;
      }
    }
    return ((t instanceof IOException && ts.cancellationInterruptPending()) || isHookEffect(t, ts))
        && !CancelHook.thrownByClose(t); // an action's own failure is never the cancellation
  }

  /**
   * Whether {@code t} is the effect of an {@code onCancel} / {@code closeOnCancel} action the
   * thread registered: any {@link Exception} (never an {@link Error}) thrown while the thread
   * stays effectively cancelled by the cancellation for which such an action has started (a
   * cancelled statement's {@code SQLException}, a closed socket's {@code SocketException}).
   */
  private static boolean isHookEffect(Throwable t, ThreadState ts) {
    return t instanceof Exception && ts.ownHookFired();
  }

  /**
   * The failures riding on a cancellation: exceptions suppressed by it (a try-with-resources
   * whose {@code close()} failed while the block was being cancelled) that are not
   * cancellations themselves. A scope that absorbs the cancellation must not lose them.
   */
  public static List<Throwable> suppressedFailures(Throwable cancellation, ThreadState ts) {
    Throwable[] suppressed = cancellation.getSuppressed();
    if (suppressed.length == 0) {
      return List.of();
    }
    List<Throwable> failures = new ArrayList<>(suppressed.length);
    for (Throwable s : suppressed) {
      if (!isCancellation(s, ts)) {
        failures.add(s);
      }
    }
    return failures;
  }

  /**
   * The exception a cancellation leaves a scope with when the scope does not absorb it: the
   * original when it is an {@link InterruptedException}, else one naming the cancelled scope.
   */
  public static InterruptedException asInterrupted(Throwable t, Scope where) {
    if (t instanceof InterruptedException ie) {
      return ie;
    }
    return new CancelledException(Scope.cancelledAbove(where), t);
  }

  /** Throws any throwable without declaring it (for exception-transparent bodies). */
  @SuppressWarnings("unchecked")
  public static <X extends Throwable> RuntimeException sneakyThrow(Throwable t) throws X {
    throw (X) t;
  }
}
