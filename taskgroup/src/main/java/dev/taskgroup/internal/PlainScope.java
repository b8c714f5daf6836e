package dev.taskgroup.internal;

import dev.taskgroup.CancelScope;
import dev.taskgroup.internal.clock.LibraryClock;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.nio.channels.ClosedByInterruptException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;

/**
 * A cancel scope that is not a group's: the state behind {@code CancelScope.create()} and its
 * siblings, and its run.
 */
public final class PlainScope extends EnteredScope {
  /** A {@code CancelScope.cooperative()} scope: no interrupts for its thread inside it. */
  private final boolean cooperative;

  public PlainScope(boolean shielded) {
    this(shielded, false);
  }

  public PlainScope(boolean shielded, boolean cooperative) {
    super(shielded ? SHIELDED : 0);
    this.cooperative = cooperative;
  }

  /**
   * Runs {@code body} inside this scope on the calling thread (CancelScope's javadoc, "Catching").
   *
   * @return the body's result, or null if a cancellation of this scope cut it short
   * @throws InterruptedException a cancellation this scope does not absorb, or an outside
   *     interrupt; anything else the body throws passes through unchanged
   */
  public <T> T call(CancelScope.Computation<T, ?> body) throws InterruptedException {
    if (!claim()) {
      throw new IllegalStateException(
          "this cancel scope has already run (or is running): a scope runs once; create a new"
              + " CancelScope for each region");
    }
    try {
      return callClaimed(body);
    } finally {
      // After the outcome is made (a CancelledException's message walks up from here): a scope
      // kept afterwards keeps neither its thread nor the task it ran in. Memory only: an error
      // here (a StackOverflowError, at the depth the run just left) must not replace the outcome.
      try {
        forgetThreadAfterRun();
      } catch (Throwable ignored) {
        // the scope keeps its thread
      }
    }
  }

  /** The run of a claimed scope; see {@link #call}. */
  private <T> T callClaimed(CancelScope.Computation<T, ?> body) throws InterruptedException {
    ThreadState ts;
    boolean nested = false;
    if (cooperative) {
      ts = ThreadState.current();
      nested = ts.beginCooperative(); // before enter()'s settle(), which drops ours
    }
    ts = enter();
    T result = null;
    Throwable thrown = null;
    try {
      result = body.call();
    } catch (Throwable t) {
      thrown = t;
    }
    boolean cancelledHere;
    boolean cancellation;
    List<Throwable> riding;
    boolean aboveVisible;
    int f;
    try {
      cancelledHere = thrown != null && effectivelyCancelled(this);
      cancellation = cancelledHere && Cancellation.isCancellation(thrown, ts);
      riding = cancellation ? Cancellation.suppressedFailures(thrown, ts) : List.of();
      aboveVisible = cancelledAboveVisible();
      if (cooperative && !nested) {
        ts.endCooperative(); // so that exit()'s settle() delivers into a cancelled region at once
      }
      // A JDK call's exception for the cancellation proves our interrupt landed; our own
      // checkpoint's (CancelledException) does not, nor does a CancellationException or an
      // exception judged by the thread's state: the body may throw those on seeing the
      // cancellation (through isCancelled(), a cancelled Future) before the interrupt on its way
      // lands (ThreadState, "In flight").
      f = exit(ts, cancellation && raisedByInterrupt(thrown));
    } catch (Throwable error) {
      // An error while judging the body's end or leaving: a StackOverflowError, when the body
      // used nearly all of the stack and the judging needs a few frames more. Caught further up,
      // it would leave the thread inside this scope (cancelled, or shielded, by a scope that is
      // gone, until the scope around it ends). Leave now, with the stack those frames freed
      // (exit() again is harmless: each of its steps may be repeated), and let the error go on
      // with what the body threw on it, never lost. The thread is taken out of this scope first,
      // by a field write that needs no frame: the exit may overflow again at the same depth.
      ts.innermost = parent;
      if (cooperative && !nested) {
        ts.endCooperative();
      }
      exit(ts);
      if (thrown != null && thrown != error) {
        error.addSuppressed(thrown);
      }
      throw error;
    }
    CancelHook hooksLeft = hooks();
    if (hooksLeft != null && Group.enclosing(parent) == null) {
      riding = closeLeftOpen(hooksLeft, ts, thrown, cancellation, riding);
    }
    if (!riding.isEmpty()) {
      // A failure suppressed by the cancellation (a close() that threw) is still a failure.
      List<Throwable> uncarried = new ArrayList<>(0);
      Throwable first = Cancellation.carryAll(riding, uncarried);
      if (!uncarried.isEmpty()) {
        Group.keepUncarried(parent, ts, uncarried); // each refuses suppression: none can carry
      }
      if (parent != ts || ts instanceof TaskImpl<?>) { // judged here: a failure further out too
        Cancellation.judgedFailure(first, ts);
      }
      throw Cancellation.<RuntimeException>sneakyThrow(first);
    }
    if (cancellation) {
      if ((f & CANCELLED) != 0 && !aboveVisible) {
        setFlags(CAUGHT);
        if (OutsideInterruptException.isIn(thrown)) {
          Thread.currentThread().interrupt(); // someone else's interrupt: never lost
        }
        return null;
      }
      throw Cancellation.asInterrupted(thrown, this);
    }
    if (thrown != null) {
      if (parent != ts || ts instanceof TaskImpl<?>) { // a scope exit further out will judge it
        Cancellation.judgedFailure(thrown, ts);
        if (!cancelledHere) {
          // What rides on it left a scope where nothing was cancelled (a shield): failures too,
          // though the cancellation outside, delivered again, would make an IOException look like
          // it further out (a close() failure suppressed on a rethrown Task.get() exception).
          Cancellation.judgedRiders(thrown, ts);
        }
      }
      throw Cancellation.<RuntimeException>sneakyThrow(thrown);
    }
    return result;
  }

  /**
   * Whether {@code t} is of a type a JDK call raises for an interrupt (a cancellation's, here): not
   * the library's own checkpoint exception, not a {@link CancellationException}, not an exception
   * that is a cancellation only by its cause chain or by the thread's state.
   */
  private static boolean raisedByInterrupt(Throwable t) {
    return (t instanceof InterruptedException && !(t instanceof CancelledException))
        || t instanceof ClosedByInterruptException
        || (t instanceof InterruptedIOException && !(t instanceof SocketTimeoutException));
  }

  /**
   * With no group around, an onCancel action's failure goes to close(); for registrations left
   * open, this exit is their close: it waits for their actions and takes what they threw, as a
   * try-with-resources around the body would. Suppressed on the body's own failure; else they ride
   * on its cancellation, or on its normal end, and are thrown as failures.
   *
   * @return {@code riding} with the actions' failures added, unless the body failed
   */
  private static List<Throwable> closeLeftOpen(
      CancelHook first,
      ThreadState ts,
      Throwable thrown,
      boolean cancellation,
      List<Throwable> riding) {
    List<Throwable> hookFailures = CancelHook.takeLeftOpen(first, ts);
    if (hookFailures.isEmpty()) {
      return riding;
    }
    if (thrown != null && !cancellation) {
      Throwable last = null;
      for (Throwable hf : hookFailures) {
        if (hf != thrown) {
          thrown.addSuppressed(hf);
          last = hf;
        }
      }
      Throwable[] took = thrown.getSuppressed();
      if (last == null || (took.length > 0 && took[took.length - 1] == last)) {
        return riding;
      }
      // The body's failure refuses suppressed exceptions: all are thrown as riding failures, one
      // carrying the others, so that none is lost.
      List<Throwable> all = new ArrayList<>(hookFailures.size() + 1);
      all.add(thrown);
      all.addAll(hookFailures);
      return all;
    }
    List<Throwable> all = new ArrayList<>(riding);
    all.addAll(hookFailures);
    return all;
  }

  /**
   * A checkpoint: throws if the calling thread is effectively cancelled (leaving the interrupt
   * status set) or if its interrupt status is set by someone else (clearing it).
   */
  public static void checkpoint() throws InterruptedException {
    ThreadState ts = ThreadState.currentOrNull();
    if (ts != null) {
      Scope cancelled = cancelledAbove(ts.innermost());
      ts.settle();
      if (cancelled != null) {
        throw new CancelledException(cancelled, null);
      }
    }
    if (Thread.interrupted()) {
      // A cancellation that arrived after the look above may be what set the status: then it is
      // the cancellation, and its interrupt is set again, as every checkpoint leaves it.
      Scope cancelled = ts == null ? null : cancelledAbove(ts.innermost());
      if (cancelled != null) {
        ts.settle();
        throw new CancelledException(cancelled, null);
      }
      throw new InterruptedException("interrupted");
    }
  }

  /**
   * Sleeps {@code nanos} on the library's clock (a test clock's, when one is installed). A
   * checkpoint at the start and while it waits: throws if the thread is, or becomes, effectively
   * cancelled (the interrupt status set) or is interrupted by someone else (the status cleared).
   * {@code nanos} of FOREVER_NANOS or more (CancelScope.sleep saturates there) is forever: no time
   * ends it, real or virtual.
   */
  public static void sleep(long nanos) throws InterruptedException {
    checkpoint();
    if (nanos >= DeadlineClock.FOREVER_NANOS) {
      // Not an end FOREVER_NANOS from now: after a spurious wakeup, once a test clock had moved,
      // that end was less than the horizon away and parked as an ordinary sleep, which the test
      // clock's next long advance (or an auto-advance jump of 73 years) reached and ended.
      for (; ; ) {
        LibraryClock.parkForever(CancelScope.class);
        if (Thread.interrupted() || isCancelled()) {
          throw ThreadState.interruptedWhileWaiting("CancelScope.sleep");
        }
      }
    }
    long until = LibraryClock.nanoTime() + nanos;
    while (until - LibraryClock.nanoTime() > 0L) {
      LibraryClock.parkUntil(until, CancelScope.class);
      if (Thread.interrupted() || isCancelled()) {
        throw ThreadState.interruptedWhileWaiting("CancelScope.sleep");
      }
    }
  }

  /** Whether the calling thread is effectively cancelled. */
  public static boolean isCancelled() {
    ThreadState ts = ThreadState.currentOrNull();
    return ts != null && effectivelyCancelled(ts.innermost());
  }
}
