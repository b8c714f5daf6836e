package dev.taskgroup.internal;

import dev.taskgroup.Body;
import dev.taskgroup.ContextPropagator;
import dev.taskgroup.FailurePolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * The state behind one task group: its cancel scope (inherited), its members, its failures, and the
 * owner's run from start to close. Forking lives in {@link Forks}.
 *
 * <pre>
 * Implementation overview
 *
 * The member count is the body (1 while it runs) plus every member that has not finished: child
 * threads, and cancel-hook actions of scopes inside the group. It lives in ChildList's state word
 * (STARTED | LOCKED | count), next to the list of children it counts. 0 = not started; STARTED
 * with count 0 = closed. A member is admitted unless the group is closed, a child in the same
 * step that links it into the list, and leaves as its very last act, a child in the same step
 * that unlinks it; the one that takes the count to 0 unparks the owner. Because the body and
 * every child count, a child can always fork (its own share keeps the group open), and once the
 * count is 0 nothing can reopen it.
 * Why one word for the count and the list's lock: a fork then costs one atomic instruction for
 * both, and so does a child's end (measured with 100 children per group on one carrier, together
 * with ChildList's release-ordered links and the completion's EXITED: 6 ns per child less). The
 * word is not on this object: every check of a cancelled task's effective cancellation reads this
 * group's flags (the re-delivery watcher's, on another core, during a mass cancellation), and a
 * count on the same cache line made each ending child fetch that line back (measured with 100 000
 * parked children cancelled at once: JVMs that ended them at 30-45 ms instead of 19 became
 * rarer).
 * (An earlier try kept the count under the list's lock with release stores only, and the owner
 * parked in the join loop missed its wake-up about once per million groups on two carriers. The
 * cause was ours, not the JDK's: the releasing store of the 0 was followed by LockSupport.unpark,
 * whose first act, for a virtual thread, is an unfenced read of the park permit; see ChildList's
 * overview. The store of the 0 is now volatile.)
 *
 * The Group's monitor guards `failures` (GroupFailures) and the making of `side` (SideWork, which
 * has its own monitor; the child list has its own lock, see ChildList). It is never held while
 * calling user code, nor across anything that blocks.
 *
 * The owner's run:
 *   1. claim, enter the scope, run the body;
 *   2. classify the body's outcome: cancellation / outside interrupt / failure;
 *   3. beginJoin (the library stops interrupting the owner), give up the body's share and park
 *      until the count is 0; an interrupt seen here is from outside: cancel the children;
 *   4. endJoin, exit the scope, and report by the precedence in TaskGroup's javadoc ("When outcomes coincide");
 *   5. drop `owner`, `home`, and `parent` if it is the thread's root (EnteredScope.forgetThreadAfterRun):
 *      a group kept after its run keeps no thread, nor the task it ran in; and drop `failures`.
 * </pre>
 */
public final class Group extends EnteredScope {
  private static final ThreadFactory VIRTUAL_THREADS = Thread.ofVirtual().factory();

  final GroupConfig config;
  final ThreadFactory factory;

  /** Places for running children, FIFO; null when unbounded. */
  final Places places;

  final ChildList children = new ChildList();

  /** Service-loaded then own context propagators; null when none (see Propagation). */
  final ContextPropagator[] propagators;

  /** The thread running run(); set once before the body starts, dropped once it has ended. */
  private volatile Thread owner;

  /** Set by the owner only: it was interrupted from outside. */
  private boolean ownerInterrupted;

  /**
   * The failures kept and reported, made on the first; under the monitor (synchronized (this)). The
   * kept ones are emptied (the group still failed) once run has handed them to the exception it
   * throws, so that a finished group somebody keeps does not keep them: the exception is the
   * caller's to hold. Dropped as run returns (no member is left to report one), with the table of
   * every failure reported.
   */
  private GroupFailures failures;

  /** See SideWork; null until a cancel-hook action fires or a handler runs outside a child. */
  private volatile SideWork side;

  /**
   * The JFR GroupEnd event being recorded (Events), or null when nothing records: written by the
   * owner before the body starts, read by forks (ordered by the fork's own path from the body).
   */
  Object recording;

  public Group(GroupConfig config) {
    super(0);
    this.config = config;
    this.factory = config.factory() != null ? config.factory() : VIRTUAL_THREADS;
    this.places =
        config.maxConcurrency() == GroupConfig.UNBOUNDED
            ? null
            : new Places(config.maxConcurrency());
    this.propagators = config.appliedPropagators();
    if (config.timeout() != null) {
      Deadlines.initTimeout(this, config.timeout()); // `this` is not yet published
    }
  }

  /** The configured name, or one made from the identity hash (computed when asked). */
  public String name() {
    String n = config.name();
    return n != null ? n : "taskgroup-" + Integer.toHexString(System.identityHashCode(this));
  }

  @Override
  public String describe() {
    return "group '" + name() + "'";
  }

  /** Whether the owner is waiting for the members (its body has ended). */
  boolean joining() {
    ThreadState h = home;
    return h != null && h.innermost == this && h.joining();
  }

  /** Wakes the owner if it waits for the members (it then re-checks, see awaitMembers). */
  void wakeJoiningOwner() {
    Thread o = owner;
    if (o != null && joining()) {
      LockSupport.unpark(o);
    }
  }

  /**
   * Names the group and its state. This object is what the owner parks on while it waits for the
   * children: {@code LockSupport.getBlocker(owner)} and a debugger show this text. (JDK thread
   * dumps print a blocker's identity string instead, {@code dev.taskgroup.internal.Group@hash};
   * TaskTree's text gives that string next to the group, to join the two.)
   */
  @Override
  public String toString() {
    return "TaskGroup[" + name() + ", " + treeState() + "]";
  }

  /** The misuse of a second run: says whether the group is running or finished, and the fix. */
  private IllegalStateException alreadyRun() {
    if (closed()) {
      return new IllegalStateException(
          describe()
              + " has already run and finished: a group runs once; create a new"
              + " TaskGroup for the next batch of work");
    }
    if (ownedByCurrentThread()) {
      return new IllegalStateException(
          describe()
              + " is running, and run was called again from inside its own body: to run"
              + " work in it, fork it (group.fork(...)); for a nested group, create a new"
              + " TaskGroup");
    }
    return new IllegalStateException(
        describe()
            + " is already running in another thread: a group runs once; fork work into"
            + " it while it is open, or create a new TaskGroup");
  }

  /** Whether the calling thread is this group's owner (the thread running its body). */
  boolean ownedByCurrentThread() {
    return owner == Thread.currentThread();
  }

  /**
   * The failures, in the order they happened, for the exception run throws; the group lets go of
   * them (no member is left to add one: run calls this after the join).
   */
  private List<Throwable> takeFailures() {
    synchronized (this) {
      return failures.take();
    }
  }

  /**
   * The innermost group at or above {@code s}, where a task stands for its own group; null outside
   * every group. The two readings differ only for a start() child that has not signalled yet: its
   * parent is the caller's scope (it is cancelled with it), but it is its group's child, whose run
   * waits for it, whichever thread called start. So the answer for the child's scopes is that group
   * before the signal and after it alike: the group whose propagators wrap what the child starts
   * (Propagation), and the group that waits for its cancel hooks' actions and takes what they throw
   * (CancelHook.fire, PlainScope's exit), decided at different moments, must agree.
   */
  static Group enclosing(Scope s) {
    for (Scope x = s; x != null; x = x.parent) {
      if (x instanceof Group g) {
        return g;
      }
      if (x instanceof TaskImpl<?> t) {
        return t.group();
      }
    }
    return null;
  }

  // ---- the owner ------------------------------------------------------------------------

  /**
   * Runs the group with {@code body}.
   *
   * @throws GroupFailedException when the group failed (its failures, to report)
   * @throws InterruptedException when the owner was interrupted from outside, or a cancelled scope
   *     above the group is visible
   */
  public void run(Body body) throws InterruptedException, GroupFailedException {
    run(body, null);
  }

  /**
   * Runs the group with {@code body} and returns its result.
   *
   * @return the body's result, or null when the body was cut short by a cancellation
   * @throws GroupFailedException when the group failed (its failures, to report)
   * @throws InterruptedException as for {@link #run(Body)}
   */
  public <T> T call(Callable<T> body) throws InterruptedException, GroupFailedException {
    @SuppressWarnings("unchecked")
    T result = (T) run(null, body);
    return result;
  }

  /** The owner's run (see the overview), with one of {@code body} and {@code callable}. */
  private Object run(Body body, Callable<?> callable)
      throws InterruptedException, GroupFailedException {
    if (!children.open() || !claim()) {
      throw alreadyRun();
    }
    owner = Thread.currentThread();
    Object rec = Features.ON ? Events.groupStart() : null;
    if (rec != null) {
      recording = rec;
    }
    ThreadState ts = enter();
    // Shielded from its entry (setShielded before run): no cancellation further out reached the
    // body inside this group, so an interrupt type the body throws cannot be one (see below).
    boolean shieldedAtEntry = (flags & SHIELDED) != 0;
    Object result = null;
    Throwable thrown = null;
    InterruptedException passThrough = null;
    Throwable interruptSeen = null; // the body's exception for an interrupt from outside: kept
    try {
      if (body != null) {
        body.run();
      } else {
        result = callable.call();
      }
    } catch (Throwable t) {
      thrown = t;
    }
    // From here to the outcome, inside a try: an error (a StackOverflowError, when the body used
    // nearly all of the stack) while the end is judged, the members joined or the group left must
    // not lose the body's exception or the failures, nor leave the thread inside the group.
    List<Throwable> failed = null;
    Throwable outcome = null; // what run throws, made inside the try
    try {
      if (thrown != null) {
        if (OutsideInterruptException.isIn(thrown)) {
          reportRiding(thrown, ts);
          interruptSeen = thrown;
          ownerInterrupted(); // a nested group on this thread saw the owner interrupted
        } else if (effectivelyCancelled(this) && Cancellation.isCancellation(thrown, ts)) {
          result = null; // the body was cut short by a cancellation
          reportRiding(thrown, ts);
        } else if (cancelledBehindShield(parent)
            && (thrown instanceof InterruptedException
                || ((flags & SHIELDED) != 0
                    && !shieldedAtEntry
                    && Cancellation.isInterruptByType(thrown, ts)))) {
          // A cancellation further out that a shield the body raised (the group's own, or one
          // between) now hides: the library's own interrupt, not someone else's. It passes
          // through unchanged, as from a plain scope, once the members are cancelled and joined
          // (Trio: an exception from a nursery's body cancels the nursery). Taken for an outside
          // interrupt, it would be set again by the cancelled scope that absorbs it, and outlive
          // it. Another type an interrupt raises (an InterruptedIOException) is a cancellation as
          // well when the shield is the group's own, raised during the run: it goes on as the
          // cause of a CancelledException, as when a cancelled scope above is visible (below).
          // Behind a shield above the group (cleanup in a shielded scope), or the group's own
          // shield set before its run, the library interrupted nothing in the group: such an
          // exception is a failure, which must not be absorbed as a cancellation.
          reportRiding(thrown, ts);
          passThrough =
              thrown instanceof InterruptedException ie
                  ? ie
                  : new CancelledException(cancelledAbove(parent), thrown);
          cancelMembers(CancelReason.Kind.OWNER_INTERRUPTED, "the body left with a cancellation");
        } else if (thrown instanceof InterruptedException) {
          reportRiding(thrown, ts);
          interruptSeen = thrown;
          ownerInterrupted(); // not cancelled: someone else interrupted the owner
        } else {
          reportFailure(thrown, "the body", true, this, ts);
        }
      }
      if (ts.beginJoin()) {
        ownerInterrupted();
      }
      if (leave() != 0L) {
        awaitMembers();
      }
      ts.endJoin();
      boolean aboveVisible = cancelledAboveVisible();
      int f = exit(ts);
      if (rec != null) {
        Events.groupEnd(rec, name(), outcome(f, aboveVisible));
      }
      if (hasFailures()) {
        failed = takeFailures();
        if (ownerInterrupted) {
          Thread.currentThread().interrupt(); // an outside interrupt stays set
        }
        outcome = new GroupFailedException(failed);
      } else if (ownerInterrupted) {
        Thread.interrupted();
        // The body's own exception is the cause: where the body was interrupted, or the message
        // of an InterruptedException it made itself. Its riders were reported above, so an
        // enclosing group, which takes riders only down to the first cancellation type, never
        // sees them again.
        outcome =
            new OutsideInterruptException(
                describe() + ": its owner was interrupted", interruptSeen);
      } else if (passThrough != null) {
        outcome = passThrough;
      } else if (aboveVisible) {
        outcome =
            thrown instanceof InterruptedException ie
                ? ie
                : new CancelledException(cancelledAbove(parent), thrown);
      } else if ((f & CANCEL_CALLED) != 0) {
        setFlags(CAUGHT);
      }
    } catch (Throwable error) {
      throw Cancellation.<RuntimeException>sneakyThrow(endedByError(error, thrown, failed, ts));
    }
    // Every member has left and the outcome is made: a group kept afterwards (and every Task of
    // it, every ExecutionException its get() threw) keeps neither the owner, dead perhaps (a
    // child that ran a nested group), nor the task the run was in, nor its result. Readers of
    // `owner` check for null (a last member's unpark may read it now: the owner needs no wake-up).
    owner = null;
    forgetThreadAfterRun();
    if (failures != null) { // the members are joined: only this thread reads it now
      synchronized (this) {
        // What the group knew its reported failures by (a weak table sized by the largest burst,
        // about 40 bytes a failure): nothing reports to a closed group, and the kept ones were
        // taken. A supervisor kept after its run keeps nothing of the failures it handled.
        failures = null;
      }
    }
    if (outcome != null) {
      throw Cancellation.<GroupFailedException>sneakyThrow(outcome);
    }
    return result;
  }

  /**
   * After an error in run between the body's end and its outcome (a StackOverflowError near the
   * stack's end; see the comment there): takes the thread out of the group by a field write first
   * (it needs no frame, and another call at this depth may overflow again), then, each step on its
   * own, cancels the members and leaves the group again (each step may be repeated). Members are
   * not waited for: that needs the frames that just overflowed.
   *
   * @return what run throws: the group's failures, the body's exception unless it is an interrupt,
   *     and the error, as the group's failures; the error alone if even that cannot be made (an
   *     error the JVM throws, such as a StackOverflowError, takes no suppressed exceptions)
   */
  private Throwable endedByError(
      Throwable error, Throwable thrown, List<Throwable> failed, ThreadState ts) {
    ts.innermost = parent;
    try {
      ts.endJoin();
    } catch (Throwable again) {
      // the stack is still too short here: the next scope exit settles the status
    }
    try {
      cancelMembers(CancelReason.Kind.FAILURE, "its run ended with " + error.getClass().getName());
    } catch (Throwable again) {
      // as above: the members run on until they end by themselves
    }
    try {
      exit(ts);
    } catch (Throwable again) {
      ts.innermost = parent;
    }
    try {
      List<Throwable> all =
          new ArrayList<>(failed != null ? failed : hasFailures() ? takeFailures() : List.of());
      boolean recorded =
          thrown == null || thrown == error || thrown instanceof InterruptedException;
      for (int i = 0; i < all.size() && !recorded; i++) {
        recorded = all.get(i) == thrown; // by identity: equals() is the user's
      }
      if (!recorded) {
        all.add(thrown);
      }
      all.add(error);
      return new GroupFailedException(all);
    } catch (Throwable again) {
      return error; // those failures stay in the group, where nothing reads them: lost
    }
  }

  /**
   * Whether a scope at or above {@code s} is cancelled, shields or not: the thread is inside a
   * cancelled region that a shield below it may hide.
   */
  static boolean cancelledBehindShield(Scope s) {
    for (Scope x = s; x != null; x = x.parent) {
      if ((x.flags & CANCELLED) != 0) {
        return true;
      }
    }
    return false;
  }

  /**
   * Reports the failures riding on the interrupt that cut the body short, a cancellation or an
   * outside interrupt (a close() that failed in a try-with-resources on its way out): the interrupt
   * is not a failure, they are.
   */
  private void reportRiding(Throwable interrupt, ThreadState ts) {
    for (Throwable riding : Cancellation.suppressedFailures(interrupt, ts)) {
      reportFailure(riding, "the body", true, this, ts);
    }
  }

  /**
   * Parks until every member has left. While the group is cancelled and the stuck warning is on,
   * the park is timed, so that the warning can be logged once when the children outlive the
   * threshold (see {@link StuckWarning}); otherwise it costs nothing.
   */
  private void awaitMembers() {
    long warnAt = 0L; // when to warn (nanoTime), once the wait is seen cancelled; 0: not yet
    boolean warned = false;
    while (children.unfinished() != 0L) {
      if (!warned && StuckWarning.enabled() && effectivelyCancelled(this)) {
        long now = System.nanoTime();
        if (warnAt == 0L) {
          warnAt = now + StuckWarning.thresholdNanos();
        } else if (now - warnAt >= 0L) {
          warned = true;
          StuckWarning.log(this);
          continue;
        }
        LockSupport.parkNanos(this, warnAt - now);
      } else {
        LockSupport.park(this);
      }
      if (Thread.interrupted()) {
        ownerInterrupted();
      }
    }
  }

  /** How run ends, for the GroupEnd event: by the precedence of run's returns. */
  private String outcome(int exitFlags, boolean aboveVisible) {
    if (hasFailures()) {
      return "failed";
    }
    if (ownerInterrupted) {
      return "interrupted";
    }
    return aboveVisible || (exitFlags & CANCELLED) != 0 ? "cancelled" : "completed";
  }

  private void ownerInterrupted() {
    ownerInterrupted = true;
    cancelMembers(CancelReason.Kind.OWNER_INTERRUPTED, "owner interrupted");
  }

  private void cancelMembers(CancelReason.Kind kind, String text) {
    cancelMembers(CancelReason.of(kind, text));
  }

  private void cancelMembers(CancelReason why) {
    cancel(why, CANCEL_INTERNAL);
  }

  private boolean hasFailures() {
    synchronized (this) {
      return failures != null && failures.anyKept();
    }
  }

  // ---- membership -------------------------------------------------------------------------

  /** Whether the group has started (run was called). */
  boolean started() {
    return children.started();
  }

  /** Whether the group has closed (run is returning or returned). */
  boolean closed() {
    return children.closed();
  }

  /**
   * Admits a child about to start, and links it into the list of children, unless the group is
   * closed.
   *
   * @return the unfinished members before this one, or -1 if the group is closed
   */
  long admit(TaskImpl<?> child) {
    return children.admitAndAppend(child);
  }

  /** A member that is not a child leaves; the last one wakes the owner. Returns those left. */
  long leave() {
    long after = children.leave();
    if (after == 0L) {
      LockSupport.unpark(owner);
    }
    return after;
  }

  /**
   * A child that has finished (its outcome set) leaves, unlinked from the list of children; the
   * last member wakes the owner.
   */
  void childLeft(TaskImpl<?> child) {
    if (children.removeAndLeave(child) == 0L) {
      LockSupport.unpark(owner);
    }
  }

  /**
   * Admits a cancel-hook action as a member, listed for the stuck warning while it runs; false if
   * the group has closed.
   */
  boolean admitHelper(CancelHook hook) {
    if (children.admit() < 0L) {
      return false;
    }
    side().hookStarted(hook);
    return true;
  }

  /** The group's SideWork, made on first use. */
  private SideWork side() {
    SideWork s = side;
    if (s == null) {
      synchronized (this) {
        s = side;
        if (s == null) {
          side = s = new SideWork();
        }
      }
    }
    return s;
  }

  /** A cancel-hook action threw. */
  void helperFailed(Throwable t, String what) {
    reportFailure(t, what, config.policy() == FailurePolicy.CANCEL_ALL, null, null);
  }

  /** A cancel-hook action ended: off the list, then out of the members (its last act here). */
  void helperDone(CancelHook hook) {
    side().hookEnded(hook);
    leave();
  }

  /** The cancel-hook actions admitted and not yet ended, oldest first (for the stuck warning). */
  List<CancelHook> runningHooks() {
    SideWork s = side;
    return s == null ? List.of() : s.runningHooks();
  }

  /**
   * Whether the calling thread works for this group outside its children: it runs the group's
   * onFailure handler there, or one of its cancel-hook actions. A fork from it then never waits for
   * a place, as one from a child does not: the thread that waits for the action, or the failure
   * whose handler runs, may hold the place, or be about to free it only afterwards.
   */
  boolean worksOutsideChildrenHere() {
    SideWork s = side;
    return s != null && s.worksOn(Thread.currentThread());
  }

  // ---- failures ---------------------------------------------------------------------------

  /**
   * Failures that left a scope on the calling thread beside the one it throws, which could not
   * carry them (each refuses suppressed exceptions, made with {@code enableSuppression} false):
   * kept by the group the thread works for, as the body's or the child's failures, at once; on a
   * thread outside every group, handed to the thread's uncaught-exception handler. Never lost.
   * {@code where}: the innermost scope the thread is in after the exit.
   */
  static void keepUncarried(Scope where, ThreadState ts, List<Throwable> failures) {
    for (Scope x = where; x != null; x = x.parent) {
      if (x instanceof TaskImpl<?> t) {
        for (Throwable f : failures) {
          t.group().childFailed(t, f);
        }
        return;
      }
      if (x instanceof Group g) {
        for (Throwable f : failures) {
          g.reportFailure(f, "the body", true, g, ts);
        }
        return;
      }
    }
    Thread me = Thread.currentThread();
    for (Throwable f : failures) {
      me.getUncaughtExceptionHandler().uncaughtException(me, f);
    }
  }

  /** A child failed (on its own thread). */
  void childFailed(TaskImpl<?> task, Throwable failure) {
    reportFailure(
        failure, task.describe(), config.policy() == FailurePolicy.CANCEL_ALL, task, task);
  }

  /**
   * Keeps a failure (or hands it to the COLLECT handler) and, if {@code cancelRest}, cancels the
   * body and every child. A handler that throws is a failure of the group, which then cancels the
   * rest: supervision itself is broken; unless what it throws is the cancellation of the thread it
   * runs on (judged as the body's or the child's own exception would be). A failure this group has
   * reported, rethrown by the body or a sibling in the wrapper its read made ({@code Task.get()},
   * or a {@code CompletableFuture}'s {@code get()} or {@code join()}), is not reported a second
   * time; what was suppressed on the wrapper on its way (a {@code close()} that failed around the
   * read) is, except a cancellation of the reporting thread. {@code where} and {@code ts}: the
   * reporting thread's scope and state, null for a cancel-hook action.
   */
  private void reportFailure(
      Throwable failure, String source, boolean cancelRest, Scope where, ThreadState ts) {
    List<Throwable> added = GroupFailures.rethrownAddition(failure, this);
    if (added != null) {
      reportAdded(added, source, cancelRest, where, ts);
      if (cancelRest) {
        cancelMembers(CancelReason.failed(source + " failed: ", failure));
      }
      return;
    }
    if (reportedBefore(failure)) {
      // The failure object itself, rethrown: kept once (GroupFailures.keep), but what was
      // suppressed on it on the way (a close() that failed around the rethrow) is new.
      reportAdded(suppressedSinceReported(failure), source, cancelRest, where, ts);
    }
    Throwable[] suppressed = failure.getSuppressed(); // the throwable's monitor: not under ours
    synchronized (this) {
      failures().reported(failure, suppressed);
    }
    Consumer<? super Throwable> handler = config.onFailure();
    if (handler != null) {
      // A child reports its work's failure once the work has ended, out of its own scope (see
      // TaskImpl.report): it is taken back in while its handler runs, for the handler is still
      // part of the child (its task is not done), which the group's cancellation must reach.
      TaskImpl<?> ended = ts instanceof TaskImpl<?> t && t.reenterAfterWork() ? t : null;
      Thread outside =
          ended == null && !(ts instanceof TaskImpl<?> t && t.group() == this)
              ? Thread.currentThread()
              : null;
      if (outside != null) {
        side().handlerStarts(outside); // its forks do not wait for a place (see SideWork)
      }
      try {
        handler.accept(failure);
      } catch (Throwable handlerFailure) {
        if (handlerFailure == failure
            || ts == null
            || !Scope.effectivelyCancelled(where)
            || !Cancellation.isCancellation(handlerFailure, ts)) {
          handlerFailed(handlerFailure);
          return;
        }
        // The cancellation of the thread the handler runs on (the body, or the failing child,
        // being cancelled: a blocking call in the handler interrupted), not a failure, as it
        // would not be if the body or the child threw it; a close() that failed on its way is.
        for (Throwable riding : Cancellation.suppressedFailures(handlerFailure, ts)) {
          handlerFailed(riding);
        }
      } finally {
        if (ended != null) {
          ended.leaveAgain();
        }
        if (outside != null) {
          side().handlerEnded(outside);
        }
      }
    } else {
      keep(failure);
    }
    if (cancelRest) {
      cancelMembers(CancelReason.failed(source + " failed: ", failure));
    }
  }

  /**
   * The onFailure handler threw: supervision itself is broken, a failure of the group (kept, not
   * handed to the handler again) that cancels the rest.
   */
  private void handlerFailed(Throwable handlerFailure) {
    keep(handlerFailure);
    cancelMembers(CancelReason.failed("the onFailure handler threw: ", handlerFailure));
  }

  /**
   * Reports {@code added}, exceptions suppressed on a failure rethrown since it was reported, each
   * as a failure of its own, except a cancellation of the reporting thread.
   */
  private void reportAdded(
      List<Throwable> added, String source, boolean cancelRest, Scope where, ThreadState ts) {
    for (Throwable more : added) {
      if (ts == null
          || !(Scope.effectivelyCancelled(where) && Cancellation.isCancellation(more, ts))) {
        reportFailure(more, source, cancelRest, where, ts);
      }
    }
  }

  /** Whether this group has reported {@code t} itself (see GroupFailures.rethrownAddition). */
  boolean reportedBefore(Throwable t) {
    synchronized (this) {
      return failures != null && failures.wasReported(t);
    }
  }

  /**
   * The exceptions suppressed on {@code t}, a failure this group has reported, since it was (see
   * GroupFailures.rethrownAddition).
   */
  List<Throwable> suppressedSinceReported(Throwable t) {
    Throwable[] suppressed = t.getSuppressed(); // the throwable's monitor: not under ours
    if (suppressed.length == 0) {
      return List.of();
    }
    synchronized (this) {
      return failures().notReported(suppressed);
    }
  }

  private void keep(Throwable failure) {
    synchronized (this) {
      failures().keep(failure);
    }
  }

  /** The failures, made on first use; under the monitor. */
  private GroupFailures failures() {
    if (failures == null) {
      failures = new GroupFailures();
    }
    return failures;
  }

  // ---- forking ----------------------------------------------------------------------------

  /** See {@link Forks#fork}. */
  public <T> TaskImpl<T> fork(Object work, String taskName) {
    return Forks.fork(this, work, taskName);
  }

  /** See {@link Forks#start}. */
  public <T> T start(dev.taskgroup.Startable<T> work)
      throws InterruptedException, StartFailedException {
    return Forks.start(this, work);
  }

  /** Whether children run on the library's own virtual-thread factory (no handler to keep). */
  boolean usesDefaultFactory() {
    return factory == VIRTUAL_THREADS;
  }
}
