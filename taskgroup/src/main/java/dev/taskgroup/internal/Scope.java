package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;

/**
 * A node of the cancel-scope tree: the state behind one {@code CancelScope}, one task group ({@link
 * Group}), the root scope of one forked task ({@link TaskImpl}), or the root of a thread that
 * entered scopes ({@link ThreadState}).
 *
 * <pre>
 * Implementation overview
 *
 * The tree. A node's parent is the node that was innermost in the same thread when it was
 * entered; a task's root has its group as parent. The nodes one thread is inside form a chain
 * from its ThreadState down to its innermost node, linked downward by below(): a scope's or
 * group's `inner` field (EnteredScope); a thread's root derives its first node from the thread's
 * innermost one by walking up (ThreadState.below), so a forked child has no field for it. A Group also
 * reaches its live children's roots through its list of children (ChildList).
 * Cancellation walks down these links; "is this thread cancelled?" walks up the parents.
 *
 * Flags, one atomic int per node (updated by CAS, never decreasing except SHIELDED); a task's
 * root (TaskImpl) keeps its own state in bits 8 and up, so every update keeps the bits it does
 * not change:
 *   CANCEL_CALLED   cancel() or the deadline: sticky, what cancelCalled() reports
 *   CANCEL_INTERNAL the group cancels what it holds because of a failure or an outside
 *                   interrupt of its owner: cancels like CANCEL_CALLED, but is not "called"
 *   SHIELDED        cancellation above does not pass this node (may be toggled)
 *   ENTERED         run() started: cancel() from now on propagates
 *   EXITED          run() ended: cancel() from now on only records cancelCalled
 *   CAUGHT          the scope absorbed a cancellation (cancelCaught)
 *   WALK_CUT        the walk after this node was cancelled ended in an error (a
 *                   StackOverflowError, cancel() called with nearly no stack left): threads it
 *                   had not reached yet were never interrupted, and a thread parked in a blocking
 *                   call would wait for ever (and its group's owner with it). Set by the failing
 *                   walk (best effort: the error may strike again); the next cancel() of the
 *                   node clears it and walks again, from wherever that is called
 * Lifecycle: NEW -> ENTERED -> ENTERED|EXITED. A node is entered once (claim() rejects a
 * second run).
 *
 * Effective cancellation of a node: it, or any node above it up to and including the nearest
 * shielded one, has a CANCELLED bit. It is derived on demand by walking up (no cache to keep
 * consistent); scopes are shallow, and the walk is a few volatile reads.
 *
 * Propagation (propagateFrom): after a node becomes cancelled (or unshielded), walk its
 * thread's chain below it, stopping at a shield; every Group met pushes its first child; each
 * child's chain is walked the same way, siblings in fork order. Every thread reached gets
 * ThreadState.deliver(), which re-checks effective cancellation itself, so a walk racing with
 * entry and exit of scopes is harmless. The walk uses an explicit stack, never recursion.
 *
 * Fields: `flags` by CAS from any thread (and the reason, kept by the subclasses); `parent` written by the entering thread
 * before the node is published (volatile, read by walkers), and dropped once a scope's or group's
 * run has ended if it is the thread's root (EnteredScope.forgetThreadAfterRun); `inner` written by the thread of
 * the chain, read by walkers. A node's thread (home()) and deadline live in EnteredScope for a
 * scope or group; a thread's root (ThreadState, TaskImpl) is its own home and has no deadline,
 * so a forked child carries neither field.
 * </pre>
 */
public abstract class Scope {
  /** {@code cancel()} was called or the deadline expired. */
  public static final int CANCEL_CALLED = 1;

  /** Cancelled by its group because of a failure or an outside interrupt; not "called". */
  public static final int CANCEL_INTERNAL = 1 << 1;

  /** Cancellation above this node does not reach it or anything below it. */
  public static final int SHIELDED = 1 << 2;

  /** Its run has started. */
  public static final int ENTERED = 1 << 3;

  /** Its run has ended. */
  public static final int EXITED = 1 << 4;

  /** It absorbed a cancellation. */
  public static final int CAUGHT = 1 << 5;

  /** Either kind of cancellation. */
  public static final int CANCELLED = CANCEL_CALLED | CANCEL_INTERNAL;

  /** A cancellation walk from this node was cut short by an error; see {@link #cancel}. */
  static final int WALK_CUT = 1 << 6;

  /**
   * Its run ended while it was cancelled: set together with EXITED, in one atomic step, so that a
   * cancel whose bit lands after the exit can tell whether the reason it recorded is the one the
   * exit saw (see markCancelled).
   */
  static final int EXITED_CANCELLED = 1 << 7;

  /** The flag bits above; CAS from any thread. */
  volatile int flags;

  /** The node above; set on entry (for a task root: its group, at construction). */
  volatile Scope parent;

  /**
   * Cancel hooks registered on this scope (a stack; null if none); pushed and pruned by its own
   * thread, read by firers. Kept by the subclasses: a forked child keeps them off its own object.
   */
  abstract CancelHook hooks();

  /** Sets the first hook (see {@link #hooks()}); called only by the scope's own thread. */
  abstract void hooks(CancelHook first);

  /**
   * A new node. Its fields are written plainly (a volatile write here would cost a full fence on
   * every fork): a node is published to other threads only through a lock, a volatile link or
   * {@code Thread.start}, all of which order these writes before it.
   */
  protected Scope(int initialFlags) {
    FLAGS.set(this, initialFlags);
  }

  /** Sets {@code parent} of a node not yet published (see the constructor). */
  final void initParent(Scope parentNode) {
    PARENT.set(this, parentNode);
  }

  /**
   * Unlinks a node whose run has ended from the thread's root above it (see
   * EnteredScope.forgetThreadAfterRun); a plain write, as a walk up stops at null as at the root.
   */
  final void dropParent() {
    PARENT.set(this, null);
  }

  /**
   * The node entered below this one in the same thread, while it runs; null otherwise. A scope or
   * group keeps it in a field (EnteredScope.inner); a thread's root derives it (ThreadState).
   */
  abstract Scope below();

  /**
   * The thread whose chain holds this node: the node itself for a thread's root (ThreadState,
   * TaskImpl), the entering thread's for a scope or group (EnteredScope); null before entry.
   */
  abstract ThreadState home();

  /** The deadline, or null if none was ever set (only scopes and groups have one). */
  Deadlines.Deadline deadline() {
    return null;
  }

  // ---- queries --------------------------------------------------------------------------

  /** The current flag bits. */
  public final int flags() {
    return flags;
  }

  /** Whether {@code cancel()} was called or the deadline expired. */
  public final boolean cancelCalled() {
    return (flags & CANCEL_CALLED) != 0;
  }

  /** Whether this scope absorbed a cancellation. */
  public final boolean cancelCaught() {
    return (flags & CAUGHT) != 0;
  }

  /** Whether this scope is shielded. */
  public final boolean isShielded() {
    return (flags & SHIELDED) != 0;
  }

  /** The first reason this scope was cancelled for, or null. */
  public abstract CancelReason reason();

  /**
   * Records {@code why} as the reason unless one was recorded first (once, from null, by CAS from
   * any thread). Kept by the subclasses: a forked child keeps it off its own object (TaskImpl).
   *
   * @return whether this call recorded it
   */
  abstract boolean recordReason(CancelReason why);

  /**
   * Takes back {@code why} if it is still the reason: recorded by a cancel whose bit then landed
   * after the node's exit, which only sets cancelCalled (see markCancelled).
   */
  abstract void withdrawReason(CancelReason why);

  /** A short description for messages: "cancel scope", "group 'x'", "task 'y'". */
  public String describe() {
    return "cancel scope";
  }

  /**
   * The node's state as a task tree shows it: {@code new}, {@code running}, {@code cancelled},
   * {@code joining} or {@code done} (see {@link TreeCapture#state}).
   */
  public final String treeState() {
    return TreeCapture.state(this);
  }

  /**
   * The nearest node at or above {@code from}, up to the nearest shield, that is cancelled: the one
   * that makes {@code from} effectively cancelled; null if none does.
   */
  public static Scope cancelledAbove(Scope from) {
    if (runningCancelled == 0) {
      return null; // nothing anywhere is cancelled: no walk (a deep nest costs O(1), not O(depth))
    }
    for (; ; ) {
      Scope found = null;
      for (Scope s = from; s != null; s = s.parent) {
        int f = s.flags;
        if ((f & CANCELLED) != 0) {
          found = s;
          break;
        }
        if ((f & SHIELDED) != 0) {
          return null;
        }
      }
      if (found == null || noShieldBelow(from, found)) {
        return found;
      }
      // A shield went up below `found` while we walked (cancels are sticky, shields are not):
      // walk again, so that the answer held at one moment.
    }
  }

  /**
   * Whether no node from {@code from} up to (not including) {@code until} is shielded now; false
   * too if the chain no longer reaches {@code until}: a group entered directly in a task whose run
   * ended meanwhile drops its parent link (EnteredScope.forgetThreadAfterRun), so the caller walks
   * again over the chain as it is now.
   */
  static boolean noShieldBelow(Scope from, Scope until) {
    for (Scope s = from; s != until; s = s.parent) {
      if (s == null || (s.flags & SHIELDED) != 0) {
        return false;
      }
    }
    return true;
  }

  /** Whether code running innermost in {@code from} is effectively cancelled. */
  public static boolean effectivelyCancelled(Scope from) {
    return cancelledAbove(from) != null;
  }

  /**
   * Whether a cancelled scope is visible above this one (the absorb rule): none is when this scope
   * is shielded.
   */
  final boolean cancelledAboveVisible() {
    return (flags & SHIELDED) == 0 && effectivelyCancelled(parent);
  }

  // ---- transitions ----------------------------------------------------------------------

  /**
   * Marks this node entered; false if it already was (a second run).
   *
   * @return whether the caller may run it
   */
  final boolean claim() {
    for (; ; ) {
      int f = flags;
      if ((f & ENTERED) != 0) {
        return false;
      }
      if (FLAGS.compareAndSet(this, f, f | ENTERED)) {
        if ((f & CANCELLED) != 0) {
          runningCancelled(1); // cancelled before it ran: it counts from now on
        }
        return true;
      }
    }
  }

  /** Sets bits, returning the bits before. */
  final int setFlags(int bits) {
    return (int) FLAGS.getAndBitwiseOr(this, bits);
  }

  /** Clears bits, returning the bits before. */
  final int clearFlags(int bits) {
    return (int) FLAGS.getAndBitwiseAnd(this, ~bits);
  }

  /**
   * What {@code cancel()} does (or an expired deadline): records the first reason, sets {@link
   * #CANCEL_CALLED} and, if the node is running and was not cancelled before, interrupts every
   * thread this makes effectively cancelled. Idempotent.
   */
  public final void cancel(CancelReason why) {
    cancel(why, CANCEL_CALLED);
  }

  /**
   * Cancels this node as {@link #cancel(CancelReason)} does, with {@code bit} {@link
   * #CANCEL_CALLED} (what {@code cancelCalled()} reports) or {@link #CANCEL_INTERNAL} (a group
   * cancelling what it holds because of a failure or an outside interrupt).
   */
  final void cancel(CancelReason why, int bit) {
    boolean walk;
    try {
      walk = markCancelled(why, bit);
    } catch (Throwable error) {
      // (A StackOverflowError, as in afterCancelled: recording the event, say.) If the node is
      // marked, its walk is owed: the next cancel() makes it. At worst that walk is one too many.
      if ((flags & CANCELLED) != 0) {
        setFlags(WALK_CUT);
      }
      throw error;
    }
    if (walk) {
      afterCancelled();
    } else if ((flags & WALK_CUT) != 0 && (clearFlags(WALK_CUT) & WALK_CUT) != 0) {
      afterCancelled(); // the first walk was cut short: this cancel() finishes the job
    }
  }

  /**
   * The cheap half of {@link #cancel}: records the reason and sets the bit.
   *
   * @return whether {@link #afterCancelled()} must now deliver the cancellation
   */
  final boolean markCancelled(CancelReason why, int bit) {
    boolean recorded = false;
    if (reason() == null && (flags & EXITED) == 0) {
      recorded = recordReason(why); // after the exit a cancel() only sets cancelCalled: no reason
    }
    runningCancelled(1); // counted first, taken back below unless this made it cancelled-running
    int before = setFlags(bit);
    if (recorded && (before & (EXITED | EXITED_CANCELLED)) == EXITED) {
      // The exit came between the reason and the bit, and nothing had cancelled the node before
      // it: this cancel only sets cancelCalled, and leaves no reason.
      withdrawReason(why);
    }
    if ((before & (CANCELLED | EXITED)) == 0) {
      Events.cancel(this, reason());
    }
    boolean running = (before & CANCELLED) == 0 && (before & (ENTERED | EXITED)) == ENTERED;
    if (!running) {
      runningCancelled(-1);
    }
    return running;
  }

  /**
   * {@link #markCancelled} for an expired deadline, which cancels nothing once the scope has
   * exited. The timer may take an entry that falls due as its scope exits and mark the scope only
   * after the exit (which does not wait for it: Deadlines.stop): cancelCalled must not change after
   * run returned. The bit is set by a CAS that fails on EXITED; the reason is recorded before it,
   * as markCancelled does (a reader that sees the bit finds the reason), and taken back if an exit
   * lands between the two.
   *
   * @return whether {@link #afterCancelled()} must now deliver the cancellation
   */
  final boolean markExpiredUnlessExited(CancelReason why) {
    if ((flags & EXITED) != 0) {
      return false;
    }
    boolean recorded = reason() == null && recordReason(why);
    runningCancelled(1); // as in markCancelled
    int before;
    do {
      before = flags;
      if ((before & EXITED) != 0) {
        runningCancelled(-1);
        if (recorded && (before & EXITED_CANCELLED) == 0) {
          withdrawReason(why); // as in markCancelled
        }
        return false;
      }
    } while (!FLAGS.compareAndSet(this, before, before | CANCEL_CALLED));
    if ((before & CANCELLED) == 0) {
      Events.cancel(this, reason());
    }
    boolean running = (before & CANCELLED) == 0 && (before & ENTERED) != 0;
    if (!running) {
      runningCancelled(-1);
    }
    return running;
  }

  /**
   * Marks this node exited; a cancelled node that was running stops counting in {@link
   * #RUNNING_CANCELLED}.
   *
   * @return the flags before
   */
  final int markExited() {
    int f;
    do { // a CAS loop, as getAndBitwiseOr is on x86: one atomic step either way
      f = flags;
    } while (!FLAGS.compareAndSet(this, f, exitedFlags(f)));
    exitedFrom(f);
    return f;
  }

  /** {@code before} with EXITED set, and EXITED_CANCELLED if it was cancelled. */
  static int exitedFlags(int before) {
    return before | EXITED | ((before & CANCELLED) != 0 ? EXITED_CANCELLED : 0);
  }

  /**
   * The accounting of an update that set {@link #EXITED} on flags that were {@code before}: a
   * cancelled node that was running stops counting in {@link #RUNNING_CANCELLED}. For a subclass
   * that sets EXITED together with bits of its own, in one CAS (TaskImpl's completion).
   */
  static void exitedFrom(int before) {
    if ((before & CANCELLED) != 0 && (before & (ENTERED | EXITED)) == ENTERED) {
      runningCancelled(-1);
    }
  }

  private static void runningCancelled(int delta) {
    int after = (int) RUNNING_CANCELLED.getAndAdd(delta) + delta;
    assert after >= 0 : "more cancelled nodes left than were counted";
  }

  /** The walking half of {@link #cancel}: interrupts everything it cancelled. */
  final void afterCancelled() {
    try {
      onCancelled();
      propagateFrom(this);
    } catch (Throwable error) {
      // Most likely a StackOverflowError: cancel() was called with nearly no stack left. The node
      // is marked cancelled, so a later cancel() would not walk again: say that this one did not
      // finish (WALK_CUT), so that it does. Delivery is idempotent: walking again is harmless.
      setFlags(WALK_CUT);
      throw error;
    }
  }

  /** Pushes after which the stack is pruned whole, at the least (see pushHook). */
  private static final int PRUNE_AFTER = 8;

  /**
   * Adds a hook; called only by the thread running this scope. The spent hooks on top (closed in
   * the order they were opened, as try-with-resources closes them) are dropped each time; the whole
   * stack is pruned only once the pushes since the last pruning outnumber the open hooks it left
   * (and PRUNE_AFTER), so that a pruning's walk is paid for by as many pushes: O(1) per push,
   * amortised. (Pruning at every push made n open registrations cost n^2: 8 000 took 0.2 s.) A
   * spent hook holds neither its scope nor its action (see CancelHook), so the ones left in the
   * stack until the next pruning keep nothing of the user's.
   */
  final void pushHook(CancelHook hook) {
    CancelHook first = hooks();
    while (first != null && first.isSpent()) {
      first = first.next;
    }
    int pushes = 1;
    int open = 0;
    if (first != null) {
      pushes = first.pushesSincePrune + 1;
      open = first.openAtPrune;
      if (pushes > Math.max(PRUNE_AFTER, open)) {
        open = pruneBelow(first);
        pushes = 1;
      }
    }
    hook.pushesSincePrune = pushes;
    hook.openAtPrune = open;
    hook.next = first;
    hooks(hook);
  }

  /** Unlinks the spent hooks below {@code first} (not spent); returns how many are left. */
  private static int pruneBelow(CancelHook first) {
    int left = 0;
    for (CancelHook h = first; h != null; ) {
      left++;
      CancelHook n = h.next;
      CancelHook kept = n;
      while (kept != null && kept.isSpent()) {
        kept = kept.next;
      }
      if (kept != n) {
        h.next = kept;
      }
      h = kept;
    }
    return left;
  }

  /** Fires every open hook of this scope (it has just become effectively cancelled). */
  private void fireHooks() {
    for (CancelHook h = hooks(); h != null; h = h.next) {
      h.fire();
    }
  }

  /** Whether this scope's thread has a group running below it (a cancel may walk far). */
  final boolean hasGroupBelow() {
    for (Scope s = this; s != null; s = s.below()) {
      if (s instanceof Group) {
        return true;
      }
    }
    return false;
  }

  /** Hook run once, when a running node first becomes cancelled, before propagation. */
  void onCancelled() {}

  /**
   * Turns the shield on or off. Off, while something above is cancelled: delivers that cancellation
   * below at once. On, from the thread that runs this scope: drops an interrupt the library
   * delivered for a cancellation above it.
   */
  public final void setShielded(boolean shield) {
    if (shield) {
      int before = setFlags(SHIELDED);
      ThreadState h = home();
      if ((before & SHIELDED) == 0 && h != null && h.thread == Thread.currentThread()) {
        h.settle();
      }
    } else {
      int before = clearFlags(SHIELDED);
      if ((before & SHIELDED) != 0
          && (before & (ENTERED | EXITED)) == ENTERED
          && effectivelyCancelled(this)) {
        propagateFrom(this);
      }
    }
  }

  /**
   * Interrupts every thread that {@code from} being cancelled (or unshielded) makes effectively
   * cancelled: its own thread's chain below it, and every child of every group met there,
   * recursively, siblings in fork order; shields stop the walk.
   */
  static void propagateFrom(Scope from) {
    ArrayDeque<TaskImpl<?>> pending = null;
    Scope start = from;
    for (; ; ) {
      for (Scope s = start; s != null; s = s.below()) {
        if (s != start && (s.flags & SHIELDED) != 0) {
          break;
        }
        if (s.hooks() != null) {
          s.fireHooks();
        }
        if (s instanceof Group g) {
          if (StuckWarning.enabled()) {
            g.wakeJoiningOwner(); // so that it starts its timed wait for the stuck warning
          }
          if (g.places != null) {
            g.places.wakeWaiters(); // forks from outside waiting for a place stop (Forks)
          }
          TaskImpl<?> first = g.children.firstForWalk();
          if (first != null) {
            if (pending == null) {
              pending = new ArrayDeque<>();
            }
            pending.push(first);
          }
        }
      }
      ThreadState ts = start.home();
      if (ts != null) {
        ts.deliver();
      }
      start = null;
      while (start == null && pending != null && !pending.isEmpty()) {
        TaskImpl<?> child = pending.pop();
        TaskImpl<?> sibling = child.group().children.next(child);
        if (sibling != null) {
          pending.push(sibling);
        }
        // A start() child whose work has not signalled is in its group's list but below the
        // caller's scope (TaskGroup.start: cancelled with that scope until it signals): it is
        // walked only if that makes it cancelled too, else its cancel hooks would fire (and the
        // groups inside it be walked) while nothing above it is cancelled. Should it signal now,
        // moveUnderGroup sees the cancellation (parent and flags are both volatile).
        if ((!child.isFinished() || child.innermost() != null) // (see TaskImpl.outcomeSetInside)
            && (!child.awaitingSignal() || effectivelyCancelled(child))) {
          start = child;
        }
      }
      if (start == null) {
        return;
      }
    }
  }

  /**
   * How many nodes are cancelled, entered and not exited, in the whole process: while it is 0 no
   * thread is effectively cancelled, and {@link #cancelledAbove} answers without walking up (a
   * checkpoint or a scope entry 10 000 scopes deep would otherwise walk 10 000 nodes). Changed only
   * by the transition that makes a node's flags cancelled-and-running (markCancelled, claim) or
   * stop being so (markExited): each is one atomic update of the flags, so every increment has
   * exactly one decrement. markCancelled counts before its update and takes the count back if the
   * update was not that transition: the count may be too high for a moment (a walk that finds
   * nothing: safe), never too low (an exit's decrement never comes before its node's increment). A
   * node is counted before its cancellation is delivered, and a thread that reads 0 just before is
   * then interrupted by that delivery.
   *
   * <p>Invariant: runningCancelled >= the nodes with CANCELLED and ENTERED and not EXITED, equal to
   * it whenever no markCancelled is between its two updates.
   */
  private static volatile int runningCancelled;

  private static final VarHandle RUNNING_CANCELLED;
  static final VarHandle FLAGS;
  private static final VarHandle PARENT;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      FLAGS = l.findVarHandle(Scope.class, "flags", int.class);
      RUNNING_CANCELLED = l.findStaticVarHandle(Scope.class, "runningCancelled", int.class);
      PARENT = l.findVarHandle(Scope.class, "parent", Scope.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
