package dev.taskgroup.internal;

import dev.taskgroup.Body;
import dev.taskgroup.Task;
import dev.taskgroup.internal.clock.LibraryClock;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;

/**
 * A forked task: its {@link Runnable} (what its thread runs), its root cancel scope and thread
 * state (inherited), its {@link Task} handle, and its link in the group's list of children. One
 * object per child.
 *
 * <pre>
 * Implementation overview
 *
 * The task's state lives in the upper bits of its root scope's `flags` word (Scope), which is
 * updated only by CAS and atomic bit operations, so the two never overwrite each other: the
 * Future outcome (bits 8-9), FINISHED (bit 10), the place under maxConcurrency (bits 11-12,
 * PLACE_*), START_CHILD (bit 13, set before the task is published: where group() looks), and,
 * under a thread factory that is not the library's, UNLAUNCHED (bit 14, cleared by CAS once the
 * fork has admitted the task) and RAN_EARLY (bit 15: its Runnable ran on another thread before
 * then; see ranElsewhere and launched).
 * One word, not a field of its own: a parked child is 4 bytes lighter. The outcome moves once,
 * by CAS, from RUNNING to
 * SUCCESS, FAILED or CANCELLED; Task.cancel() may set CANCELLED first, and then the thread's
 * late result is dropped (a late failure still goes to the group). The work ends CANCELLED when
 * it leaves with a cancellation while effectively cancelled, or with the exception of an
 * interrupt (Cancellation.isInterruptByType) while a scope above it is cancelled behind a shield
 * raised since (the interrupt was the library's, delivered before the shield went up; see end).
 * FINISHED says the thread is done with the work and its bookkeeping; the thread sets it, with
 * its outcome and its root scope's EXITED, in one CAS at the end (before it leaves the group,
 * Group.childLeft). The place
 * bits are written before the thread starts and then only by the task's thread (by CAS, as
 * Task.cancel may change the outcome meanwhile).
 *
 * `payload`: the work (a Callable or a Body) until it ends; then the result or the failure,
 * written before the final CAS and read after seeing the state (cleared after the CAS when
 * Task.cancel set the outcome first: nothing reads it then, and a held Task keeps no dropped
 * result). One slot for both, as the two are never needed at once. The exceptions scope exits
 * on this thread let through as failures (ThreadState.judgedFailures, rare) are kept in
 * TaskExtras; only the task's thread uses them, and drops them as it completes.
 *
 * Waiters in get() form a Treiber stack in TaskExtras.waiters; whoever moves the outcome out of
 * RUNNING wakes them, then completes the future (Task.cancel does both after delivering the
 * cancellation), and the task's thread does both again as it finishes, before it leaves the
 * group, in case Task.cancel set the outcome and has not got there yet; a waiter re-checks the
 * state after pushing itself. A waiter that stops waiting (timed out, interrupted) clears its
 * node's thread and unlinks the abandoned nodes (TaskExtras.removeAbandonedWaiters), so that a
 * long-running task polled with timed gets keeps no thread that stopped waiting.
 *
 * `next` and `prev` link the group's live children in fork order (see ChildList). A child
 * unlinks itself right after setting its outcome, in the same step that it leaves the group:
 * the group holds no finished child, so the outcome of a task nobody holds is garbage at once.
 * Invariant: a task in its group's list with FINISHED set is being unlinked by its own thread
 * (walkers skip it).
 *
 * With context propagators, the thread runs a Propagation.Child instead of the task: runWork
 * (begin, the work, classify) inside the propagators, then report (outcome, FINISHED, leave)
 * once they have returned. The thread stays in its scopes until then (the propagators' code
 * after the work belongs to the child: the group's cancellation reaches it), and leaves the root
 * scope just before reporting.
 *
 * Without propagators, the work's end takes the thread out of the task's root scope (innermost
 * null) before the failure is reported; the group's onFailure handler, which runs in report,
 * still belongs to the child (not done yet): the root scope is the thread's innermost again while
 * it runs (reenterAfterWork / leaveAgain), so that the group's cancellation reaches it.
 * </pre>
 *
 * @param <T> the result type
 */
public final class TaskImpl<T> extends ThreadState
    implements Task<T>, Runnable, Thread.UncaughtExceptionHandler {
  /** Where the task's bits start in {@link Scope#flags}: above the scope's own (see overview). */
  private static final int SHIFT = 8;

  private static final int RUNNING = 0;
  private static final int SUCCESS = 1 << SHIFT;
  private static final int FAILED = 2 << SHIFT;
  private static final int CANCELLED_STATE = 3 << SHIFT;
  private static final int OUTCOME = 3 << SHIFT;
  private static final int FINISHED = 4 << SHIFT;

  /** No place to take or give back (unbounded group, or already given back). */
  static final int PLACE_NONE = 0;

  /** The fork took a place for this child; the child gives it back when its work ends. */
  static final int PLACE_HELD = 8 << SHIFT;

  /**
   * The child waits on its own thread, before running the work, for the place its fork queued for
   * (its ticket, in TaskExtras.placeTicket); a child that ends without waiting withdraws it.
   */
  static final int PLACE_ACQUIRE_IN_THREAD = 16 << SHIFT;

  private static final int PLACE_MASK = 24 << SHIFT;

  /**
   * A start() child: until its work signals, its parent is the caller's scope, so its group is kept
   * in its TaskExtras (startGroup). Any other task's group is its parent.
   */
  private static final int START_CHILD = 32 << SHIFT;

  /**
   * Set from construction until the fork has admitted the task to its group (Forks.launch), for a
   * group whose thread factory is not the library's: such a factory, or a thread it handed the
   * Runnable to, may run it before then, and the task must not leave a group it never joined. (The
   * library's factory cannot: its tasks never carry the bit, and their fork pays nothing.)
   */
  private static final int UNLAUNCHED = 64 << SHIFT;

  /** Run on a foreign thread while UNLAUNCHED: the fork ends the task once it is admitted. */
  private static final int RAN_EARLY = 128 << SHIFT;

  /** The work, then its result or failure; see the overview. */
  private Object payload;

  /**
   * The explicit name, a handler the factory set, the CompletableFuture, the judged failure; null
   * if none.
   */
  private volatile TaskExtras extras;

  /** The next live child of the group, in fork order, or this task once unlinked; ChildList. */
  volatile TaskImpl<?> next;

  /** The previous live child of the group; under the group's lock (ChildList). */
  TaskImpl<?> prev;

  TaskImpl(Group group, Object work, String name) {
    super(group);
    this.payload = work;
    if (!group.usesDefaultFactory()) {
      FLAGS.set(this, flags | UNLAUNCHED); // published with the task
    }
    if (name != null) {
      EXTRAS.set(this, new TaskExtras(name)); // published with the task
    }
  }

  /**
   * The child of a start(): cancelled with {@code callerScope} (the caller's innermost scope) until
   * its work signals, then with its group (see {@link #moveUnderGroup}).
   */
  static TaskImpl<Void> startChild(Group group, Object signal, Scope callerScope) {
    TaskImpl<Void> t = new TaskImpl<>(group, signal, null);
    TaskExtras x = new TaskExtras(null);
    x.startGroup = group;
    EXTRAS.set(t, x); // published with the task, as the fields below
    FLAGS.set(t, t.flags | START_CHILD);
    t.initParent(callerScope);
    return t;
  }

  /**
   * The group the task belongs to. Not a field: it is the task's parent scope (one reference fewer
   * per child), except for a start() child, whose group is in its TaskExtras.
   */
  Group group() {
    return (flags & START_CHILD) == 0 ? (Group) parent : extras.startGroup;
  }

  /**
   * Whether this is a start() child whose work has not signalled yet: its parent is still the
   * caller's scope, not its group.
   */
  boolean awaitingSignal() {
    return (flags & START_CHILD) != 0 && parent != extras.startGroup;
  }

  /** Whether this is a start() child whose work has signalled (it runs in its group now). */
  private boolean signalled() {
    return (flags & START_CHILD) != 0 && !awaitingSignal();
  }

  /** A task that never started because its group was already cancelled. */
  static <T> TaskImpl<T> cancelledBeforeStart(Group group, String name) {
    TaskImpl<T> t = new TaskImpl<>(group, null, name);
    FLAGS.set(t, t.flags | CANCELLED_STATE | FINISHED);
    return t;
  }

  /**
   * Reached by a throwable that escaped the task's own bookkeeping (the work's are all caught), or
   * by code that reports through its thread's handler: passed on to the handler the thread factory
   * set, which this one replaced (the thread group when it set none).
   */
  @Override
  public void uncaughtException(Thread t, Throwable e) {
    TaskExtras x = extras;
    Thread.UncaughtExceptionHandler previous = x == null ? null : x.replacedHandler;
    (previous != null ? previous : t.getThreadGroup()).uncaughtException(t, e);
  }

  /** The thread could not be started: the task ends cancelled, never having run. */
  void abandon() {
    releasePlace();
    INNERMOST.setRelease(this, null);
    complete(CANCELLED_STATE, null);
    forgetThread();
    group().childLeft(this);
  }

  /**
   * Drops the thread as the task finishes, before it leaves its group: a Task held afterwards (a
   * list of results) keeps no dead thread, which with its continuation is about four fifths of a
   * finished child's weight. A thread name the task does not keep itself (one the factory or the
   * work set) is kept first, so that {@link #name()} still says it.
   */
  private void forgetThread() {
    Thread t = thread;
    if (t == null) {
      return;
    }
    TaskExtras x = extras;
    if (x == null || x.name == null) {
      String n = t.getName();
      if (!n.isEmpty()) {
        extras().name = n;
      }
    }
    THREAD.setRelease(this, null); // after the name: name() reads the thread first
  }

  /** Sets the place bits (PLACE_*) before the thread starts (published by Thread.start). */
  void initPlace(int place) {
    if ((flags & UNLAUNCHED) == 0) {
      FLAGS.set(this, flags | place);
    } else {
      setPlace(place); // a run elsewhere may be setting RAN_EARLY right now
    }
  }

  private int place() {
    return flags & PLACE_MASK;
  }

  /** Changes the place bits; called by the task's thread, or by its fork before it starts. */
  private void setPlace(int place) {
    int s;
    do {
      s = flags;
    } while (!FLAGS.compareAndSet(this, s, (s & ~PLACE_MASK) | place));
  }

  /**
   * If the calling thread is this task's, its work ended (out of its scopes: innermost null) and
   * the task not finished, makes the task's root scope its innermost again, for the onFailure
   * handler it runs while reporting (Group.reportFailure): a cancellation of the group reaches the
   * handler, and an interrupt of ours pending from the work is cleared if nothing is cancelled any
   * more. {@link #leaveAgain} undoes it.
   *
   * @return whether it did
   */
  boolean reenterAfterWork() {
    if (innermost != null || thread != Thread.currentThread() || (flags & FINISHED) != 0) {
      return false;
    }
    reenter();
    return true;
  }

  /** Makes the task's root scope the thread's innermost again (see reenterAfterWork). */
  private void reenter() {
    innermost = this; // volatile: ordered before settle() reads the flags, as a scope's entry
    settle();
  }

  /**
   * Leaves the root scope again after {@link #reenterAfterWork}, or after the propagators' code
   * that ran after the work (Propagation.Child): no interrupt of ours is left.
   */
  void leaveAgain() {
    innermost = null;
    settle();
  }

  private void releasePlace() {
    int p = place();
    if (p == PLACE_HELD) {
      setPlace(PLACE_NONE);
      group().places.release();
    } else if (p == PLACE_ACQUIRE_IN_THREAD) { // ended before it waited (cancelled first)
      setPlace(PLACE_NONE);
      withdrawTicket();
    }
  }

  /**
   * Keeps the ticket a fork from a sibling took for this child (Forks), before its thread starts.
   */
  void placeTicket(Places.Ticket ticket) {
    extras().placeTicket = ticket;
  }

  /**
   * Gives up the ticket of a child that will not wait for it: withdrawn, or its place given back.
   */
  void withdrawTicket() {
    TaskExtras x = extras;
    Places.Ticket t = x.placeTicket;
    x.placeTicket = null;
    group().places.cancel(t);
  }

  @Override
  JudgedFailures judgedFailures() {
    TaskExtras x = extras;
    return x == null ? null : x.judgedFailures;
  }

  @Override
  void judgedFailure(Throwable t) {
    TaskExtras x = extras();
    JudgedFailures j = x.judgedFailures;
    if (j == null) {
      x.judgedFailures = j = new JudgedFailures();
    }
    j.add(t);
  }

  @Override
  public CancelReason reason() {
    TaskExtras x = extras;
    return x == null ? null : x.reason;
  }

  @Override
  boolean recordReason(CancelReason why) {
    return TaskExtras.REASON.compareAndSet(extras(), null, why);
  }

  @Override
  void withdrawReason(CancelReason why) {
    TaskExtras x = extras;
    if (x != null) {
      TaskExtras.REASON.compareAndSet(x, why, null);
    }
  }

  @Override
  CancelHook hooks() {
    TaskExtras x = extras;
    return x == null ? null : x.hooks;
  }

  @Override
  void hooks(CancelHook first) {
    if (first != null || extras != null) {
      extras().hooks = first;
    }
  }

  /** The task's TaskExtras, made on first use. */
  private TaskExtras extras() {
    TaskExtras x = extras;
    if (x == null) {
      TaskExtras made = new TaskExtras(null);
      TaskExtras other = (TaskExtras) EXTRAS.compareAndExchange(this, null, made);
      x = other == null ? made : other;
    }
    return x;
  }

  /**
   * Makes the task its own innermost scope, before its thread starts (a plain write, published by
   * the list link and Thread.start): from then on a deliverer may interrupt the thread, even before
   * it runs, and the thread's first act is to check for a cancellation anyway.
   */
  void initInnermost() {
    INNERMOST.set(this, this);
  }

  /**
   * Started work signalled: from now on it is cancelled with its group (TaskGroup.start's javadoc).
   * Called on the thread that signals. When that is the task's own thread, its interrupt status is
   * made to match its new place at once, as at a scope's entry: an interrupt the library delivered
   * for the caller's cancellation, pending still (the work entered and left a scope since, which
   * sets it again, or has not reached a checkpoint), is dropped, so that the work's next blocking
   * call in its group does not throw for a cancellation it is no longer in. (Signalled from another
   * thread, the task's thread drops it at its next checkpoint or scope entry or exit, and end()
   * judges an interrupt type that it raises before then a cancellation.)
   */
  void moveUnderGroup() {
    parent = group();
    if (effectivelyCancelled(this)) {
      propagateFrom(this);
    }
    if (thread == Thread.currentThread()) {
      settle();
    }
  }

  /** Waits until the work has ended, whatever interrupts arrive; keeps them for the caller. */
  void awaitDoneUninterruptibly() {
    // Not await(): that throws for a cancelled caller in a cooperative scope, which is not an
    // interrupt to hand back (it would then look like someone else's), and it throws again at
    // once for a cancelled caller whose status the library sets again (a busy wait).
    boolean interrupted = false;
    TaskExtras.Waiter node = null;
    while ((flags & OUTCOME) == RUNNING) {
      if (node == null) {
        node = new TaskExtras.Waiter(Thread.currentThread());
        extras().pushWaiter(node); // made on first use: a task nobody waits for has no stack
        continue; // re-check the state before parking: the completer may have missed us
      }
      LockSupport.park(this);
      interrupted |= Thread.interrupted();
    }
    if (interrupted) {
      Thread.currentThread().interrupt(); // the caller's, whoever's it was: handed back as it came
    }
  }

  @Override
  public String describe() {
    String n = name();
    return n.isEmpty()
        ? "an unnamed task of " + group().describe()
        : "task '" + n + "' of " + group().describe();
  }

  /** Whether this is the child of a start() (its work waits for the signal); before it ends. */
  boolean isStartChild() {
    return payload instanceof StartSignalImpl<?>;
  }

  /** Whether the task's thread is done with the work and its bookkeeping. */
  boolean isFinished() {
    return (flags & FINISHED) != 0;
  }

  // ---- the task's thread ------------------------------------------------------------------

  /**
   * The task's thread. Kept small on purpose: this frame stays on the child's stack for as long as
   * the work runs, and a parked virtual thread's stack is heap memory (see begin and end).
   */
  @Override
  public void run() {
    if (!begin()) {
      end(null, null, true, null);
      return;
    }
    Object value = null;
    Throwable thrown = null;
    try {
      if (payload instanceof Body b) {
        b.run();
      } else {
        value = ((Callable<?>) payload).call();
      }
    } catch (Throwable t) {
      thrown = t;
    }
    end(value, thrown, false, null);
  }

  /**
   * What a task's thread runs inside its context propagators (see Propagation): as {@link #run},
   * but the outcome is handed to {@code via} and reported later, by {@link #report}, once the
   * propagators' code has ended. (A copy of run rather than a call from it: run's frame is kept as
   * small and shallow as it is for the common case.)
   */
  void runWork(Propagation.Child via) {
    if (!begin() || via.placeRefused) {
      end(null, null, true, via);
      return;
    }
    Object value = null;
    Throwable thrown = null;
    try {
      if (payload instanceof Body b) {
        b.run();
      } else {
        value = ((Callable<?>) payload).call();
      }
    } catch (Throwable t) {
      thrown = t;
    }
    end(value, thrown, false, via);
  }

  /**
   * The misuse of a thread factory whose thread runs the Runnable it was given again after the task
   * ended: refused on that thread, the task and its group untouched.
   */
  IllegalStateException runAgain() {
    return new IllegalStateException(
        describe()
            + " has already run: the thread factory's thread ran the Runnable it was given again;"
            + " a ThreadFactory's thread must run it exactly once");
  }

  /**
   * The misuse of a thread factory whose thread handed the Runnable to another thread (an
   * executor): the work does not run, and the task ends with this failure, here, as it does when a
   * context propagator runs the work elsewhere; else the group would wait for it for ever. (Should
   * the factory's own thread run it too, that run is refused by begin's FINISHED check.)
   */
  IllegalStateException ranElsewhere() {
    IllegalStateException e = ranElsewhereFailure(Thread.currentThread().toString());
    for (int s = flags; (s & UNLAUNCHED) != 0; s = flags) {
      // Run before its fork admitted it (the factory handed the Runnable on at once, or returned
      // a thread it had started): it is not a member of the group, and leaving would corrupt the
      // group's count and list. The fork ends it once admitted (launched), or, rejected, the
      // task never counted.
      if (FLAGS.compareAndSet(this, s, s | RAN_EARLY)) {
        return e;
      }
    }
    if ((flags & FINISHED) == 0) {
      endWithoutWork(e);
    }
    return e;
  }

  private IllegalStateException ranElsewhereFailure(String where) {
    return new IllegalStateException(
        describe()
            + " was run on "
            + where
            + ", not on the thread its group's thread factory made for it: a ThreadFactory's"
            + " thread must run the Runnable it was given itself");
  }

  /**
   * The fork has admitted the task to its group (a group whose thread factory is not the
   * library's): from now on a run elsewhere ends it at once; one that came before ends it here.
   */
  void launched() {
    int s;
    do {
      s = flags;
    } while (!FLAGS.compareAndSet(this, s, s & ~UNLAUNCHED));
    if ((s & RAN_EARLY) != 0 && (s & FINISHED) == 0) {
      endWithoutWork(ranElsewhereFailure("another thread before its fork had started it"));
    }
  }

  /** A context propagator threw, or returned, before the work ran: the work never runs. */
  void endWithoutWork(Throwable thrown) {
    end(null, thrown, false, null);
  }

  /** Binds the thread; false if the task was cancelled before its work started. */
  private boolean begin() {
    if (thread != Thread.currentThread()) {
      // A finished task has dropped its thread (forgetThread, after FINISHED): a second run, on
      // its own thread or any other, is refused here; its end would leave the group again.
      throw (flags & FINISHED) != 0 ? runAgain() : ranElsewhere();
    }
    return !effectivelyCancelled(this) && takePlace();
  }

  /**
   * Classifies the outcome, reports it, and leaves the group: the thread's last acts. Under context
   * propagators ({@code via} not null) the outcome is kept in {@code via} and reported after the
   * propagators' code has ended.
   */
  private void end(Object value, Throwable thrown, boolean notRun, Propagation.Child via) {
    Object w = payload;
    payload = null;
    boolean cancelled = notRun;
    Throwable failure = null;
    List<Throwable> riding = List.of();
    if (thrown != null) {
      if (endsByCancellation(thrown)) {
        cancelled = true;
        riding = Cancellation.suppressedFailures(thrown, this); // a close() that failed meanwhile
      } else {
        failure = thrown;
      }
    }
    if (via == null) {
      INNERMOST.setRelease(this, null); // deliverers that still see it re-check and skip
    }
    // Else the thread stays where it is (in the root scope, or in a scope a propagator entered
    // around the work): the propagators' code after the work is part of the child, which the
    // group's cancellation and deadline must reach as they reach its code before the work.
    // Propagation.Child leaves the root scope (leaveAgain) once that code has returned.
    if (w instanceof StartSignalImpl<?> signal) {
      // A failure riding on the cancellation is the work's failure as much as one it threw: before
      // the signal, both go to the caller of start(), and neither to the group. One carries the
      // others (to the caller, or to the group if the work signalled meanwhile); those no failure
      // can carry, for refusing suppressed exceptions, go to the group: never lost.
      if (!riding.isEmpty()) {
        List<Throwable> carried = new ArrayList<>(1); // the carrier, then those it cannot carry
        Throwable carrier = Cancellation.carryAll(riding, carried);
        carried.add(0, carrier);
        riding = carried;
      }
      if (signal.workEnded(riding.isEmpty() ? failure : riding.get(0), cancelled)) {
        failure = null; // it never signalled: the caller of start() gets the outcome, not the group
        riding = riding.subList(Math.min(1, riding.size()), riding.size());
      }
    }
    if (via != null) {
      // Reported once the propagators' code has ended, failures riding on the cancellation too:
      // the handler of each runs outside the context the propagators set around the work.
      via.ended(value, failure, cancelled, riding);
      return;
    }
    reportRiding(riding);
    report(value, failure, cancelled, null);
  }

  /**
   * Whether {@code thrown}, leaving the child's code on its thread (the work, or a context
   * propagator's code around it), ends it by a cancellation rather than as a failure. First, the
   * thread is effectively cancelled and {@code thrown} is a cancellation there. Second, the code
   * left with the cancellation of a scope further out that a shield raised since (on the group, or
   * between) now hides, as the exception its interrupt raised: the library's own interrupt,
   * delivered before the shield went up, not someone else's (as for a group's body, see Group.run).
   * Only if the library did interrupt this thread (DELIVERED): a child forked inside the shield
   * never was, and an interrupt type it throws is a failure. Judged a failure, a cancellation would
   * be reported as one. Third, a start() child that its caller's cancellation interrupted before
   * its work signalled from another thread, which cannot clear this thread's status (see
   * moveUnderGroup): the interrupt left pending is the library's, for a cancellation the work has
   * since been moved out of, and what it raised is that cancellation's. In the second and third,
   * DELIVERED outlives the interrupt status until the thread settles: an interrupt type raised in
   * between by a later interrupt (another thread's, after the work consumed the library's) cannot
   * be told from it and is taken for the cancellation too, as StartSignal and setShielded say.
   * Judging by the status at the move instead would make the exception of an interrupt consumed
   * just before it, still on its way out, a failure: a cancellation reported as one.
   */
  boolean endsByCancellation(Throwable thrown) {
    return (effectivelyCancelled(this) && Cancellation.isCancellation(thrown, this))
        || (deliveredUnsettled()
            && (Group.cancelledBehindShield(this) || signalled())
            && Cancellation.isInterruptByType(thrown, this));
  }

  /**
   * Reports failures that rode on the work's cancellation (a close() that failed), oldest first.
   */
  void reportRiding(List<Throwable> riding) {
    for (Throwable r : riding) {
      group().childFailed(this, r);
    }
  }

  /**
   * Reports the outcome to the task and the group, then leaves the group, unlinked from its list
   * (the group keeps no finished child, see the overview). {@code outside}: what a context
   * propagator threw outside the work, a failure too (after the work's own).
   */
  void report(Object value, Throwable failure, boolean cancelled, Throwable outside) {
    Group g = group();
    if (failure != null) {
      g.childFailed(this, failure);
    }
    if (outside != null) {
      g.childFailed(this, outside);
      if (failure == null) {
        failure = outside;
      }
    }
    try {
      if (failure != null) {
        complete(FAILED, failure);
      } else {
        complete(cancelled ? CANCELLED_STATE : SUCCESS, value);
      }
    } finally {
      // The place goes back only now: once the failure has been reported (and, with CANCEL_ALL,
      // has cancelled the group), the propagators' code has ended and the outcome is set, so that
      // the next child can neither start, fail and be reported before this one, nor run beside
      // it. In a finally: the child leaves its group whatever completing threw (a bug of the
      // library's: the group would wait for it for ever).
      forgetThread();
      releasePlace();
      g.childLeft(this);
    }
  }

  /**
   * Takes the place this child waits for on its own thread, if any; false if cancelled. Called by
   * begin, and, under context propagators, by Propagation.Child before their code runs (it is part
   * of the child's run, see report); the second call then finds no place to wait for.
   */
  boolean takePlace() {
    if (place() != PLACE_ACQUIRE_IN_THREAD) {
      return true;
    }
    TaskExtras x = extras;
    Places.Ticket t = x.placeTicket;
    x.placeTicket = null; // granted or withdrawn below: nothing left to give up
    // A start() child is cancelled with its caller's scope until it signals, not with its group:
    // the group's cancellation does not interrupt it (a shield above the caller may hide it). Yet
    // a wait for a place ends when the group is cancelled, and starts nothing, whoever waits:
    // such a child waits as a thread outside the group does, looking at the group itself.
    Group g = group();
    Group watched = awaitingSignal() ? g : null;
    try {
      if (!g.places.await(t, watched)) { // the turn the fork took (Forks.reserveInThread)
        setPlace(PLACE_NONE); // withdrawn: the group was cancelled first
        return false;
      }
      setPlace(PLACE_HELD);
      return !effectivelyCancelled(this) && (watched == null || !effectivelyCancelled(watched));
    } catch (InterruptedException e) {
      setPlace(PLACE_NONE);
      return false;
    }
  }

  /**
   * The thread's last word on the task, in one CAS: its outcome (unless cancelled first), FINISHED,
   * and EXITED for its root scope (from then on a Task.cancel() only records) if not set before.
   */
  private void complete(int newOutcome, Object result) {
    payload = result;
    TaskExtras ex = extras;
    // Registrations left open on a root scope that is cancelled as the task ends: a walk may be
    // firing them right now, and would find them abandoned below; they start here instead, as
    // Registration.close() starts an open one whose scope was cancelled.
    // Started before the task is marked finished, so that its group is still waiting for it.
    if (ex != null && ex.hooks != null && effectivelyCancelled(this)) {
      for (CancelHook h = ex.hooks; h != null; h = h.next) {
        h.fire(); // a no-op for one already fired or closed
      }
    }
    for (; ; ) {
      int s = flags;
      int next = exitedFlags((s & OUTCOME) == RUNNING ? s | newOutcome : s) | FINISHED;
      if (FLAGS.compareAndSet(this, s, next)) {
        if ((s & OUTCOME) != RUNNING) {
          // Task.cancel set the outcome first: the late result (or failure, which went to the
          // group) is dropped, and a Task held afterwards must not keep it. Nothing reads the
          // payload of a cancelled task.
          payload = null;
        }
        if (Features.ON && LibraryClock.testClockInstalled()) {
          ClockedThreads.untrack(this); // the test clock keeps no finished task (nor its result)
        }
        exitedFrom(s);
        TaskExtras x = extras; // if null, a waiter that pushes itself later sees the state first
        if (x != null) {
          if (x.judgedFailures != null) {
            // Only this thread used it, for the work's scopes, which it has left: a Task held
            // afterwards must not keep a table sized by the failures the work let through (about
            // 35 bytes each, between two collections).
            x.judgedFailures = null;
          }
          if (x.hooks != null) {
            // Registrations left open on the root scope can no longer fire (a finished child is
            // skipped by every delivery): a Task held afterwards must not keep their actions.
            CancelHook.abandonOpen(x.hooks); // and one the user keeps keeps nothing
            x.hooks = null;
          }
          // When Task.cancel set the outcome first, this thread wakes the waiters and completes
          // the future too (a second time does nothing): the canceller may not have got there
          // yet, and the task must not leave its group (whose run then returns) before they are.
          if (x.future != null && thread == Thread.currentThread()) {
            outcomeSetInside(x);
          } else {
            x.outcomeSet();
          }
        }
        return;
      }
    }
  }

  /**
   * Completes the future on the task's own thread, which runs the dependent stages added before
   * (the group waits for them: the task has not left it). They run inside the task's root scope
   * again, as the onFailure handler does (reenterAfterWork), although the task is finished: a
   * cancellation of the group reaches them (they may block; the walk goes on to a finished child
   * that is inside its root scope, see Scope), and a fork from them is a fork from inside one of
   * the group's children, which holds its place until they end and so must never wait for one.
   */
  private void outcomeSetInside(TaskExtras x) {
    reenter();
    try {
      x.outcomeSet();
    } finally {
      leaveAgain();
    }
  }

  // ---- Task / Future ----------------------------------------------------------------------

  @Override
  public String name() {
    TaskExtras x = extras;
    if (x != null && x.name != null) {
      return x.name;
    }
    Thread t = (Thread) THREAD.getAcquire(this);
    if (t != null) {
      return t.getName();
    }
    x = extras; // dropped as the task finished, after its name was kept here (forgetThread)
    return x != null && x.name != null ? x.name : "";
  }

  @Override
  public boolean cancel(boolean mayInterruptIfRunning) {
    if (!claimCancelledOutcome()) {
      // Another canceller set the outcome: it may not have marked the task's scope yet, and this
      // caller's future.cancel() completes the future and runs its stages now, which must find
      // the task cancelled in every respect. Marking is idempotent, so this one delivers too,
      // unless the scope is marked already, or the task has ended or never started.
      int s = flags;
      if ((s & OUTCOME) == CANCELLED_STATE && (s & (CANCELLED | EXITED | FINISHED)) == 0) {
        cancel(CancelReason.of(CancelReason.Kind.TASK_CANCEL, "Task.cancel()"), CANCEL_CALLED);
      }
      return false;
    }
    // The cancellation is delivered first: waking the waiters completes the future, which runs
    // its dependent stages on this thread, user code that must not hold back the interrupt (a
    // stage waiting for the task to stop would wait for ever).
    cancel(CancelReason.of(CancelReason.Kind.TASK_CANCEL, "Task.cancel()"), CANCEL_CALLED);
    TaskExtras x = extras;
    if (x != null) { // else a waiter that pushes itself later sees the state before it parks
      x.outcomeSet(); // the task's thread, ending meanwhile, may have done it already (complete)
    }
    return true;
  }

  /**
   * The first half of {@link #cancel(boolean)}: moves the outcome from RUNNING to CANCELLED, and
   * says whether this call did.
   */
  boolean claimCancelledOutcome() {
    int s;
    do {
      s = flags;
      if ((s & OUTCOME) != RUNNING) {
        return false;
      }
    } while (!FLAGS.compareAndSet(this, s, s | CANCELLED_STATE));
    return true;
  }

  @Override
  @SuppressWarnings("unchecked")
  public CompletableFuture<T> toCompletableFuture() {
    TaskExtras x = extras();
    TaskFuture<T> f = (TaskFuture<T>) x.future;
    if (f == null) {
      TaskFuture<T> made = new TaskFuture<>(this);
      TaskFuture<T> other = (TaskFuture<T>) TaskExtras.FUTURE.compareAndExchange(x, null, made);
      f = other == null ? made : other;
      if (other == null && (flags & OUTCOME) != RUNNING) {
        f.taskDone(); // the outcome was set before the future was there to see it
      }
    }
    return f;
  }

  @Override
  public boolean isCancelled() {
    return (flags & OUTCOME) == CANCELLED_STATE;
  }

  @Override
  public boolean isDone() {
    return (flags & OUTCOME) != RUNNING;
  }

  @Override
  public T get() throws InterruptedException, ExecutionException {
    int s = flags & OUTCOME;
    if (s == RUNNING) {
      refuseWaitForItself("get()");
      s = await(false, 0L);
    }
    return report(s);
  }

  @Override
  public T get(long timeout, TimeUnit unit)
      throws InterruptedException, ExecutionException, TimeoutException {
    long nanos = unit.toNanos(timeout);
    int s = flags & OUTCOME;
    if (s == RUNNING) {
      refuseWaitForItself("get(timeout, unit)");
    }
    if (s == RUNNING && (s = await(true, nanos)) == RUNNING) {
      throw new TimeoutException(describe() + " did not finish within " + timeout + " " + unit);
    }
    return report(s);
  }

  @Override
  @SuppressWarnings("unchecked")
  public T resultNow() {
    return switch (flags & OUTCOME) {
      case SUCCESS -> (T) payload;
      case FAILED -> throw new IllegalStateException(describe() + " failed");
      case CANCELLED_STATE -> throw new IllegalStateException(cancelledMessage());
      default -> throw new IllegalStateException(describe() + " has not completed");
    };
  }

  @Override
  public Throwable exceptionNow() {
    return switch (flags & OUTCOME) {
      case FAILED -> (Throwable) payload;
      case SUCCESS -> throw new IllegalStateException(describe() + " completed with a result");
      case CANCELLED_STATE -> throw new IllegalStateException(cancelledMessage());
      default -> throw new IllegalStateException(describe() + " has not completed");
    };
  }

  @Override
  public State state() {
    return switch (flags & OUTCOME) {
      case SUCCESS -> State.SUCCESS;
      case FAILED -> State.FAILED;
      case CANCELLED_STATE -> State.CANCELLED;
      default -> State.RUNNING;
    };
  }

  /**
   * The outcome for get(). A caller that is effectively cancelled gets the cancellation, not a
   * failure or a CancellationException: the failure is its group's to report (once), and has most
   * likely cancelled the caller itself. A result that arrived is returned all the same.
   */
  @SuppressWarnings("unchecked")
  private T report(int s) throws ExecutionException, InterruptedException {
    if (s == SUCCESS) {
      return (T) payload;
    }
    ThreadState caller = currentOrNull();
    if (caller != null) {
      Scope cancelled = cancelledAbove(caller.innermost());
      if (cancelled != null) {
        caller.settle(); // the status stays set, as at every checkpoint
        throw new CancelledException(cancelled, null);
      }
    }
    if (s == FAILED) {
      throw new FailedTaskException(this, (Throwable) payload);
    }
    throw new CancellationException(cancelledMessage());
  }

  /**
   * "task 'x' of group 'g' was cancelled", and why when that is known: the task's own reason
   * (Task.cancel), else its group's (cancel, a failure, the deadline), as asyncio's waiter sees the
   * message of the cancel. A cancellation of a scope further out names no reason here: the group
   * may have left that scope's chain by now.
   */
  private String cancelledMessage() {
    CancelReason why = reason();
    if (why == null) {
      Group g = group();
      why = g == null ? null : g.reason();
    }
    return describe() + " was cancelled" + (why == null ? "" : " (" + why.describe() + ")");
  }

  /**
   * The misuse of a task waiting for its own outcome on its own thread (its work, or the onFailure
   * handler it runs for its failure): the outcome is set by that thread once the work and handler
   * have returned, so the wait could end only by a cancellation (or, timed, never with a result).
   * Refused at once, as asyncio refuses a task awaiting itself; nothing is changed.
   */
  private void refuseWaitForItself(String call) {
    if (thread == Thread.currentThread()) {
      throw new IllegalStateException(
          "Task."
              + call
              + " on "
              + describe()
              + " from its own thread: the task ends only after its thread returns, so this"
              + " would wait until it is cancelled; return the value from the work instead, or"
              + " read it from another thread (the body, a sibling)");
    }
  }

  /** Waits until the state is set, the time is up (timed) or the caller is interrupted. */
  private int await(boolean timed, long nanos) throws InterruptedException {
    long deadline = timed ? System.nanoTime() + nanos : 0L;
    TaskExtras.Waiter node = null;
    ThreadState me = null; // looked up once, when it first has to wait
    for (; ; ) {
      int s = flags & OUTCOME;
      if (s != RUNNING) {
        return s;
      }
      if (Thread.interrupted() || cooperativelyCancelled(me)) {
        abandon(node);
        throw interruptedWhileWaiting(describe());
      }
      if (timed && nanos <= 0L) {
        return s; // before the deadline sum, which a huge negative timeout would overflow
      }
      if (node == null) {
        me = ThreadState.currentOrNull();
        node = new TaskExtras.Waiter(Thread.currentThread());
        extras().pushWaiter(node); // made on first use: a task nobody waits for has no stack
        continue; // re-check the state before parking: the completer may have missed us
      }
      if (timed) {
        long left = deadline - System.nanoTime();
        if (left <= 0L) {
          abandon(node);
          return flags & OUTCOME;
        }
        LockSupport.parkNanos(this, left);
      } else {
        LockSupport.park(this);
      }
    }
  }

  /**
   * A waiter that stops waiting (timed out, interrupted) leaves the stack, so that a task polled
   * with timed gets while it runs for long does not keep every thread that ever waited.
   */
  private void abandon(TaskExtras.Waiter node) {
    if (node != null) {
      node.thread = null;
      extras.removeAbandonedWaiters();
    }
  }

  @Override
  public String toString() {
    String n = name();
    return n.isEmpty() ? "Task[" + treeState() + "]" : "Task[" + n + ", " + treeState() + "]";
  }

  /**
   * Keeps the handler the thread factory set (not the thread group, which the thread falls back to
   * anyway); called before the thread starts.
   */
  void keepReplacedHandler(Thread t) {
    Thread.UncaughtExceptionHandler h = t.getUncaughtExceptionHandler();
    if (h != null && h != t.getThreadGroup()) {
      TaskExtras x = extras;
      if (x == null) {
        x = new TaskExtras(null);
        EXTRAS.set(this, x); // published by Thread.start, as the other fields set before it
      }
      x.replacedHandler = h;
    }
  }

  static final VarHandle NEXT;
  private static final VarHandle EXTRAS;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      NEXT = l.findVarHandle(TaskImpl.class, "next", TaskImpl.class);
      EXTRAS = l.findVarHandle(TaskImpl.class, "extras", TaskExtras.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
