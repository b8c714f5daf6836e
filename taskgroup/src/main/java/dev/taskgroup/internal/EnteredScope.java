package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A node a thread enters and leaves by running it: the state behind a {@code CancelScope} ({@link
 * PlainScope}) or a task group ({@link Group}), as opposed to the root of a thread's chain ({@link
 * ThreadState}, {@link TaskImpl}). Only these have a deadline, and a thread other than themselves
 * as home: keeping both fields here, not in {@link Scope}, keeps them off every forked child.
 *
 * <p>Fields: `home` written by the entering thread before the node is published (volatile, read by
 * walkers); `inner` written by that thread, read by walkers; `deadline` set by Deadlines, which
 * guards its fields. Once the run has ended, `home` is null again, and so is a `parent` that was
 * the thread's root (forgetThreadAfterRun: a node kept after its run keeps no thread).
 */
public abstract class EnteredScope extends Scope {
  /** The thread whose chain holds this node; set on entry. */
  volatile ThreadState home;

  /** The deadline, or null if none was ever set; its fields are guarded by Deadlines. */
  volatile Deadlines.Deadline deadline;

  /**
   * The node entered below this one in the same thread, while it runs; null otherwise. Written by
   * that thread, read by walkers (Scope.below()).
   */
  volatile Scope inner;

  /** Why it was first cancelled; CAS once from null, by any thread. */
  private volatile CancelReason reason;

  /** Cancel hooks registered on this scope; see Scope.hooks(). */
  private volatile CancelHook hooks;

  protected EnteredScope(int initialFlags) {
    super(initialFlags);
  }

  @Override
  final Scope below() {
    return inner;
  }

  @Override
  final ThreadState home() {
    return home;
  }

  @Override
  final Deadlines.Deadline deadline() {
    return deadline;
  }

  @Override
  public final CancelReason reason() {
    return reason;
  }

  @Override
  final boolean recordReason(CancelReason why) {
    return REASON.compareAndSet(this, null, why);
  }

  @Override
  final void withdrawReason(CancelReason why) {
    REASON.compareAndSet(this, why, null);
  }

  @Override
  final CancelHook hooks() {
    return hooks;
  }

  @Override
  final void hooks(CancelHook first) {
    hooks = first;
  }

  /** Makes this (claimed) node the calling thread's innermost scope. */
  final ThreadState enter() {
    ThreadState ts = ThreadState.current();
    Scope above = ts.innermost;
    initParent(above); // not yet reachable: plain writes, published by the two below
    HOME.set(this, ts);
    if (above != ts) { // a scope or group; the thread's root derives it (ThreadState.below())
      INNER.setRelease((EnteredScope) above, this);
    }
    ts.innermost = this; // volatile: ordered before settle() reads the flags (see ThreadState)
    if (Features.ON && LibraryClock.testClockInstalled()) {
      // For the test clock's auto-advance (one static read otherwise). Before the deadline is
      // scheduled: else the clock could see it due while not yet seeing this running thread.
      ClockedThreads.track(ts);
    }
    if (deadline != null) {
      Deadlines.start(this);
    }
    ts.settle();
    return ts;
  }

  /**
   * Leaves this scope, which must be the innermost of {@code ts}, the calling thread's state: marks
   * it exited and brings the thread's interrupt status in line with where it now is.
   *
   * @return the flags as they were at exit (a later cancel() no longer counts)
   */
  final int exit(ThreadState ts) {
    return exit(ts, false);
  }

  /**
   * As {@link #exit(ThreadState)}; {@code interruptLanded}: the scope is left with the
   * cancellation's exception (see ThreadState.settle(boolean)).
   */
  final int exit(ThreadState ts, boolean interruptLanded) {
    // The block API nests exits in entries, so `this` is the innermost scope, except after an
    // error thrown inside a nested enter or exit (a StackOverflowError deep in a recursion), which
    // can leave a scope below this one entered: setting innermost to this scope's parent, below,
    // repairs the chain. (No assert here: it would replace that error, and leave the chain stale.)
    CancelHook h = hooks; // read once: only this thread, the scope's own, sets it
    if (h != null && effectivelyCancelled(this)) {
      // Registrations left open in a scope left while effectively cancelled: the walk that
      // cancelled it may not have reached it yet (busy elsewhere), and once exited the scope is
      // below no walk. They start here, as Registration.close() starts an open one whose scope was
      // cancelled; before EXITED is set, so that an enclosing group still waits for them.
      for (CancelHook k = h; k != null; k = k.next) {
        k.fire(); // a no-op for one already fired or closed
      }
    }
    int f = markExited();
    CancelReason r = reason;
    if (r != null && (f & CANCELLED) == 0) {
      // Recorded by a cancel that found this scope running and whose bit lands after this exit:
      // it cancelled nothing (it only sets cancelCalled), and leaves no reason. (One that records
      // only now takes its reason back itself: Scope.markCancelled.)
      REASON.compareAndSet(this, r, null);
    }
    // Read from the flags, not effectivelyCancelled(this): the exit may just have taken this node
    // out of the count of cancelled running ones, and the walk's fast path would then miss it.
    if (h != null && (f & CANCELLED) == 0 && !cancelledAboveVisible()) {
      CancelHook.abandonOpen(h); // not cancelled at its end: nothing can fire them any more
    }
    if (deadline != null) {
      Deadlines.stop(this);
    }
    Scope above = parent;
    if (above != ts) { // as in enter(); a walk that still sees this node re-checks
      INNER.setRelease((EnteredScope) above, null); // no fence needed
    }
    ts.innermost = above;
    if (above == ts
        && !(ts instanceof TaskImpl<?>)
        && Features.ON
        && LibraryClock.testClockInstalled()) {
      ClockedThreads.untrack(ts); // out of every scope: counts no more, and is not kept
    }
    ts.settle(interruptLanded);
    return f;
  }

  /**
   * After a run has ended (never after a rejected one: the node may be running elsewhere), lets go
   * of the thread it ran on: {@code home}, and {@code parent} when that is the thread's root (its
   * OwnThread, or the root scope of the task it ran in). A scope or group somebody keeps after its
   * run (a field, a map of jobs; and through a group every Task of it) then keeps neither that
   * thread, dead perhaps (about 370 bytes for a platform one), nor the result or failure of the
   * task it ran in (which nobody else may hold). Observably nothing changes: every reader of {@code
   * home} checks for null (it is null before entry), and walks up stop at null as at the root,
   * which for a node that has exited decides nothing any more (a cancel() only records; a walk that
   * saw it before checks again). Except for a registration that may still fire or run: its firer
   * reads both (the enclosing group to report to, the thread to mark), so a node with one not yet
   * spent keeps them. A plain write: a walker on another thread that still sees the old value does
   * what it did before.
   */
  final void forgetThreadAfterRun() {
    if ((flags & EXITED) == 0) {
      return; // an error left the thread inside (enter() threw): its chain still needs the links
    }
    for (CancelHook h = hooks; h != null; h = h.next) {
      if (!h.isSpent()) {
        return;
      }
    }
    HOME.set(this, null);
    if (parent instanceof ThreadState) {
      dropParent();
    }
  }

  private static final VarHandle HOME;
  private static final VarHandle INNER;
  private static final VarHandle REASON;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      HOME = l.findVarHandle(EnteredScope.class, "home", ThreadState.class);
      INNER = l.findVarHandle(EnteredScope.class, "inner", Scope.class);
      REASON = l.findVarHandle(EnteredScope.class, "reason", CancelReason.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
