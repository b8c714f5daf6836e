package dev.taskgroup.internal;

import dev.taskgroup.TaskGroupException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileLockInterruptionException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CancellationException;

/**
 * Which exceptions count as a cancellation rather than a failure (see {@code CancelScope}, "What
 * counts as a cancellation"), and how that judgment travels with an exception.
 *
 * <pre>
 * Implementation overview
 *
 * An exception leaving a scope in a thread that is effectively cancelled is judged there, once:
 *   by type  an InterruptedException, ClosedByInterruptException, InterruptedIOException (not a
 *            SocketTimeoutException) or CancellationException anywhere in its cause chain: a
 *            cancellation wherever it goes, except that an exception with one only among its
 *            causes that an exit let through as a failure (a shielded cleanup's failure that
 *            wraps the cancellation it caught) stays a failure, as below;
 *   by state an IOException of a kind an interrupt raises (isInterruptIoKind: a SocketException,
 *            ClosedChannelException or FileLockInterruptionException in its chain) leaving
 *            while a cancellation's interrupt is still pending, a BrokenBarrierException in its
 *            chain (a barrier broken by a party's interrupt), or any Exception thrown after
 *            an onCancel / closeOnCancel action the thread registered has started for the
 *            cancellation (the action's effect): a cancellation only where the thread's state
 *            says so; never an action's own failure. Only those kinds: an exception carries no
 *            time, so one thrown just before the cancellation came (a body that cancels its own
 *            group in a finally) leaves while the interrupt is pending all the same, and any
 *            other IOException (a missing file, a full disk) must not be lost that way.
 * A judgment by state must not be made again further out: after a shield's exit the library
 * interrupts the thread again for the cancellation outside, so an IOException the shield let
 * through as a failure would look like a cancellation at the next exit. So the judgment travels
 * with the exception:
 *   - a scope exit that lets an exception through as not a cancellation (and it is not one by
 *     type) records it among the thread's judged failures (JudgedFailures); every later
 *     exit on that thread that finds it in an exception's cause chain judges a failure;
 *   - a TaskGroupException (a group's failures) and the ExecutionException of Task.get()
 *     (FailedTaskException: a failure its task's exit judged) are failures by type: the cause
 *     chain walk stops there.
 * Invariant: an exception once judged a failure at a scope exit is never judged a cancellation
 * at a later one.
 * </pre>
 */
public final class Cancellation {
  /** Longer cause chains are cut here (a cycle of causes must not hang the library). */
  private static final int MAX_CAUSE_DEPTH = 64;

  private Cancellation() {}

  /**
   * Whether {@code t}, thrown in a thread that is effectively cancelled, is the cancellation itself
   * rather than a failure: a cancellation by type, an {@link IOException} of a kind an interrupt
   * raises ({@link #isInterruptIoKind}) while the thread's interrupt status is still set by the
   * cancellation, a {@link BrokenBarrierException} ({@link #isBrokenBarrier}), or any {@link
   * Exception} thrown after an action the thread registered with {@code onCancel} started for this
   * cancellation; never an exception judged a failure at an earlier scope exit, nor an action's own
   * failure.
   */
  public static boolean isCancellation(Throwable t, ThreadState ts) {
    return switch (judgeByType(t, ts.judgedFailures())) {
      case CANCELLATION -> true;
      case FAILURE -> false;
      default ->
          // (an action's own failure, thrown by close(), was judged a failure there: FAILURE above)
          (isInterruptIoKind(t) && ts.cancellationInterruptPending())
              || isBrokenBarrier(t)
              || isHookEffect(t, ts);
    };
  }

  /**
   * Whether {@code t} is a {@link BrokenBarrierException}, itself or in its cause chain: what the
   * other parties waiting at a {@code CyclicBarrier} get when the cancellation interrupts one of
   * them (and what a party woken by that break before its own interrupt came gets, with no
   * interrupt pending yet: so no interrupt is asked for). Thrown in a cancelled thread, the barrier
   * was most likely broken by that cancellation, as a channel the interrupt closed is for the other
   * threads blocked on it.
   */
  private static boolean isBrokenBarrier(Throwable t) {
    int depth = 0;
    for (Throwable c = t; c != null && depth < MAX_CAUSE_DEPTH; c = causeOf(c), depth++) {
      if (c instanceof BrokenBarrierException) {
        return true;
      }
    }
    return false;
  }

  /**
   * Whether {@code t} is an {@link IOException} of a kind a blocking JDK call throws when an
   * interrupt closes what it blocks on: a {@link SocketException} (a virtual thread's socket closed
   * by the interrupt, and every later use of it), a {@link ClosedChannelException} (an
   * interruptible channel closed by it, the other threads blocked on that channel, every later use)
   * or a {@link FileLockInterruptionException}, itself or in its cause chain (an {@code
   * SSLException} around the socket's). Any other {@code IOException} (a missing file, an end of
   * stream, a parse error) no interrupt raises: thrown just before a cancellation came, and leaving
   * while its interrupt is set, it is a failure still, never taken for the cancellation.
   */
  private static boolean isInterruptIoKind(Throwable t) {
    if (!(t instanceof IOException)) {
      return false;
    }
    int depth = 0;
    for (Throwable c = t; c != null && depth < MAX_CAUSE_DEPTH; c = causeOf(c), depth++) {
      if (c instanceof SocketException
          || c instanceof ClosedChannelException
          || c instanceof FileLockInterruptionException) {
        return true;
      }
    }
    return false;
  }

  /**
   * Whether {@code t} is the effect of an {@code onCancel} / {@code closeOnCancel} action the
   * thread registered: any {@link Exception} (never an {@link Error}) thrown while the thread stays
   * effectively cancelled by the cancellation for which such an action has started (a cancelled
   * statement's {@code SQLException}, a closed socket's {@code SocketException}).
   */
  private static boolean isHookEffect(Throwable t, ThreadState ts) {
    return t instanceof Exception && ts.ownHookFired();
  }

  /**
   * Called at a scope exit that let {@code t} through as not a cancellation: from now on, on this
   * thread, {@code t} is a failure (see the overview). Only the exception path pays for it.
   */
  static void judgedFailure(Throwable t, ThreadState ts) {
    Verdict v = judgeByType(t, null);
    // A cancellation only in the cause chain (a cleanup failure in a shield that wraps the
    // cancellation it caught) was judged a failure here too; one of the cancellation types itself,
    // rethrown from a shield, stays the cancellation.
    if (v == Verdict.UNDECIDED || (v == Verdict.CANCELLATION && !isCancellationType(t))) {
      ts.judgedFailure(t);
    }
  }

  /**
   * Called where an {@code onCancel} action's own failure is thrown on the registering thread (with
   * no group around: Registration.close, or the exit of the scope that left it open): from now on,
   * on this thread, {@code t} is a failure, whatever its type. Unlike {@link #judgedFailure}, also
   * a cancellation type itself (an action that waits for what the cancellation cancelled gets a
   * CancellationException or an InterruptedException): it is the action's, not this thread's
   * cancellation, and the cancelled scopes it leaves through must not absorb it (they did: the
   * failure was lost).
   */
  static void actionFailure(Throwable t, ThreadState ts) {
    ts.judgedFailure(t);
  }

  /**
   * Called at a scope exit where nothing was cancelled that let {@code t} through: the exceptions
   * suppressed on it, and on its causes, left with it and were not the cancellation there, so they
   * are failures from now on, on this thread, as {@code t} is (see {@link #judgedFailure}).
   */
  static void judgedRiders(Throwable t, ThreadState ts) {
    int depth = 0;
    for (Throwable c = t; c != null && depth < MAX_CAUSE_DEPTH; c = causeOf(c), depth++) {
      for (Throwable s : c.getSuppressed()) {
        if (judgeByType(s, null) == Verdict.UNDECIDED) {
          ts.judgedFailure(s);
        }
      }
    }
  }

  /**
   * Whether {@code t} is, by its type, the exception an interrupt raises: an {@link
   * InterruptedException} (the library's checkpoint's too), {@link ClosedByInterruptException} or
   * {@link InterruptedIOException} (not a {@link SocketTimeoutException}) in its cause chain, never
   * judged a failure before on this thread; not a {@link CancellationException}, which work may
   * throw on its own account. For a task leaving after a shield raised since hides the cancellation
   * further out whose interrupt raised it (TaskImpl.end): a cancellation still.
   */
  static boolean isInterruptByType(Throwable t, ThreadState ts) {
    if (judgeByType(t, ts.judgedFailures()) != Verdict.CANCELLATION) {
      return false;
    }
    int depth = 0;
    for (Throwable c = t; c != null && depth < MAX_CAUSE_DEPTH; c = causeOf(c), depth++) {
      if (isCancellationType(c)) {
        return !(c instanceof CancellationException);
      }
    }
    return false;
  }

  private enum Verdict {
    CANCELLATION,
    FAILURE,
    UNDECIDED
  }

  /** The verdict that does not depend on the thread's state, from {@code t}'s cause chain. */
  private static Verdict judgeByType(Throwable t, JudgedFailures judged) {
    int depth = 0;
    for (Throwable c = t; c != null && depth < MAX_CAUSE_DEPTH; c = causeOf(c), depth++) {
      if (c instanceof TaskGroupException
          || c instanceof FailedTaskException
          || (judged != null && judged.contains(c))) {
        return Verdict.FAILURE;
      }
      if (isCancellationType(c)) {
        return Verdict.CANCELLATION;
      }
    }
    return Verdict.UNDECIDED;
  }

  /**
   * {@code t.getCause()}, or null if that throws: a user exception's override must not break the
   * scope exit that judges it (the exit would be skipped, the thread left inside the scope, or a
   * task never reported, and its group would wait for ever).
   */
  static Throwable causeOf(Throwable t) {
    try {
      return t.getCause();
    } catch (Throwable broken) {
      return null;
    }
  }

  /**
   * {@code String.valueOf(t)} for a message or a cancel reason, or the class name and identity if
   * {@code toString()} throws: describing a failure must never replace it (nor stop its report).
   */
  public static String describe(Throwable t) {
    try {
      return String.valueOf(t);
    } catch (Throwable broken) {
      return t.getClass().getName() + "@" + Integer.toHexString(System.identityHashCode(t));
    }
  }

  /** Whether {@code c} itself (not its causes) is of one of the cancellation types. */
  private static boolean isCancellationType(Throwable c) {
    return c instanceof InterruptedException
        || c instanceof ClosedByInterruptException
        || c instanceof CancellationException
        || (c instanceof InterruptedIOException && !(c instanceof SocketTimeoutException));
  }

  /**
   * The one of {@code failures} to throw (or to hand on), carrying the others as suppressed
   * exceptions: the first, unless it refuses suppressed exceptions (made with {@code
   * enableSuppression} false) and others ride with it; then the first that accepts one. Those none
   * can carry (every one refuses) are added to {@code uncarried}, when the caller has somewhere
   * else to put them.
   */
  static Throwable carryAll(List<Throwable> failures, List<Throwable> uncarried) {
    Throwable carrier = failures.get(0);
    Throwable probe = null; // the one added to find out whether the carrier accepts them
    for (Throwable candidate : failures) {
      Throwable other = null;
      for (Throwable o : failures) {
        if (o != candidate) {
          other = o;
          break;
        }
      }
      if (other == null) {
        return carrier; // one failure (perhaps suppressed twice)
      }
      int before = candidate.getSuppressed().length;
      candidate.addSuppressed(other); // a no-op on one that refuses
      if (candidate.getSuppressed().length > before) {
        carrier = candidate;
        probe = other;
        break;
      }
    }
    for (Throwable other : failures) {
      // The same failure suppressed twice: Throwable.addSuppressed rejects self-suppression.
      if (other == carrier || other == probe) {
        continue;
      }
      if (probe != null) {
        carrier.addSuppressed(other);
      } else if (uncarried != null) {
        uncarried.add(other);
      }
    }
    return carrier;
  }

  /**
   * The failures riding on a cancellation: exceptions suppressed by it (a try-with-resources whose
   * {@code close()} failed while the block was being cancelled) that are not cancellations
   * themselves, and, when it is a cancellation by a type in its cause chain, those suppressed by
   * the exceptions of the chain down to that one (the common {@code catch (InterruptedException e)
   * { throw new RuntimeException(e); }} around such a block leaves the {@code close()} failure on
   * the cause). A cancellation only by the thread's state (an {@code IOException} while the
   * interrupt is pending, an {@code onCancel} action's effect) gives only its own: its causes are
   * the effect's (a cancelled statement's driver exceptions), not riding failures. A scope that
   * absorbs the cancellation must not lose them.
   */
  public static List<Throwable> suppressedFailures(Throwable cancellation, ThreadState ts) {
    int links = 1; // how far down the chain riders are taken from: to the cancellation type
    int depth = 0;
    for (Throwable c = cancellation;
        c != null && depth < MAX_CAUSE_DEPTH;
        c = causeOf(c), depth++) {
      if (isCancellationType(c)) {
        links = depth + 1;
        break;
      }
    }
    List<Throwable> failures = null;
    Set<Throwable> seen = null; // by identity, once the list is long: a linear search each is n^2
    Throwable c = cancellation;
    for (int i = 0; c != null && i < links; c = causeOf(c), i++) {
      for (Throwable s : c.getSuppressed()) {
        if (!isCancellation(s, ts) && (failures == null || !contains(failures, seen, s))) {
          if (failures == null) {
            failures = new ArrayList<>(2);
          }
          failures.add(s);
          if (seen != null) {
            seen.add(s);
          } else if (failures.size() > SHORT_LIST) {
            seen = Collections.newSetFromMap(new IdentityHashMap<>());
            seen.addAll(failures);
          }
        }
      }
    }
    return failures == null ? List.of() : failures;
  }

  /** Up to this many riding failures, a duplicate is looked for by a linear search. */
  private static final int SHORT_LIST = 8;

  private static boolean contains(List<Throwable> list, Set<Throwable> seen, Throwable t) {
    if (seen != null) {
      return seen.contains(t);
    }
    for (Throwable x : list) {
      if (x == t) {
        return true;
      }
    }
    return false;
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
