package dev.taskgroup.internal;

import dev.taskgroup.Body;
import dev.taskgroup.CancelScope;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One {@code CancelScope.onCancel} registration: an action run once, on its own virtual thread,
 * when its scope becomes effectively cancelled while the registration is open.
 *
 * <pre>
 * Implementation overview
 *
 * `state` moves by CAS: OPEN -> RUNNING -> RAN (fired), or OPEN -> CLOSED (closed first).
 * Firing (Scope.fireHooks, from whoever propagates the cancellation, or register() when the
 * scope already is cancelled) wins the CAS once and starts the action on a virtual thread (a
 * helper that a test clock's auto-advance counts while it runs: ClockedThreads.startHelper); if a
 * group encloses the scope, the action counts as one of the group's members until it ends, so
 * the group waits for it and an exception it throws is a failure of the group; if that group
 * has already closed (a cancel landing as its run ends), the action does not run at all.
 * Without a group, the exception is kept and close() throws it; a registration left open (never
 * closed) is closed by its scope's exit instead (takeLeftOpen), which waits for the action and
 * throws what it threw, as a try-with-resources around the scope's body would. Before the action starts, the
 * registering thread is marked (ThreadState HOOK_FIRED): an exception it throws while it stays
 * effectively cancelled is then the action's effect, a cancellation (Cancellation.isCancellation).
 * close() from the thread running the action returns at once (it would wait for itself).
 *
 * The scope's hooks form a stack through `next`, pushed and pruned only by the scope's own
 * thread (registration is always for the caller's innermost scope); firers walk it without a
 * lock, and a pruned hook keeps its `next`.
 * </pre>
 */
public final class CancelHook implements CancelScope.Registration {
  private static final int OPEN = 0;
  private static final int RUNNING = 1;
  private static final int RAN = 2;
  private static final int CLOSED = 3;

  /**
   * The scope and the action; both dropped once the registration is spent (closed first, or its
   * action has ended), so that a registration somebody keeps does not keep what the action captured
   * (a statement, a socket). Written only by whoever won the state's CAS from OPEN, and read only
   * by the firer that won it, so never cleared under a reader.
   */
  private Scope scope;

  private Body action;

  /**
   * The registrant's context class loader, which the action runs with (its thread is started by
   * whichever thread delivers the cancellation); written and dropped with the action.
   */
  private ClassLoader loader;

  private volatile int state;

  /** Counted down when a fired action has ended. */
  private final CountDownLatch ran = new CountDownLatch(1);

  /** The thread running the action, while it runs: close() from it must not wait for itself. */
  private volatile Thread runner;

  /**
   * What the action threw, when no group took it; written before `ran` is counted down, and taken
   * once (a getAndSet: close() and the scope's exit may race for it).
   */
  private volatile Throwable failure;

  /** The next hook of the same scope. */
  volatile CancelHook next;

  /**
   * Hooks pushed on the scope since its stack was last pruned whole, this one included, and how
   * many open ones that pruning left (see Scope.pushHook); written once, before this hook is
   * pushed, and read only by the scope's own thread.
   */
  int pushesSincePrune;

  int openAtPrune;

  /**
   * For the stuck warning, set when fired into a group: who registered the action, and when it was
   * fired (System.nanoTime). Written before the group lists the hook (under its monitor), read by
   * the warning after taking the list under the same monitor.
   */
  private String registrant;

  private long firedAt;

  private CancelHook(Scope scope, Body action) {
    this.scope = scope;
    this.action = action;
    if (action != null) {
      this.loader = Thread.currentThread().getContextClassLoader(); // made by the registrant
    }
  }

  /**
   * Registers {@code action} for the calling thread's innermost scope; runs it at once (and waits
   * for it) if that scope already is effectively cancelled. The action is first wrapped, here on
   * the registering thread, by the context propagators that apply (see Propagation).
   *
   * @throws java.util.concurrent.RejectedExecutionException if a propagator threw: nothing is
   *     registered
   */
  public static CancelHook register(Body action) {
    ThreadState ts = ThreadState.current();
    Scope s = ts.innermost;
    Body wrapped = Propagation.wrapAction(action, s); // a propagator that throws, throws here
    if (s instanceof OwnThread) {
      // Outside every scope, on a thread that is not a task: its root is never cancelled, so the
      // action can never run. Registered nowhere, so that an open registration (never closed)
      // does not keep what the action captured for the life of the thread (a pool's).
      CancelHook spent = new CancelHook(null, null);
      spent.state = CLOSED;
      return spent;
    }
    CancelHook hook = new CancelHook(s, wrapped);
    s.pushHook(hook);
    if (Scope.effectivelyCancelled(s)) {
      hook.fire();
      hook.awaitRan();
    }
    return hook;
  }

  /**
   * Makes every registration of the stack from {@code first} that is still open spent, dropping its
   * scope and action: called when their scope ends while not cancelled, after which nothing can
   * fire them (a cancel() after the end only records cancelCalled; a walk from above no longer
   * reaches the scope). A registration the user keeps then keeps neither what its action captured
   * nor, through the scope, the scopes and tasks above it. A firer that won the CAS first runs the
   * action as before.
   */
  static void abandonOpen(CancelHook first) {
    for (CancelHook h = first; h != null; h = h.next) {
      if (h.state == OPEN && STATE.compareAndSet(h, OPEN, CLOSED)) {
        h.scope = null;
        h.action = null;
        h.loader = null;
      }
    }
  }

  /**
   * Whether the registration can be unlinked from its scope's stack: closed, or its action ended
   * with nothing left for anyone (a failure not yet taken must stay where the scope's exit finds
   * it).
   */
  boolean isSpent() {
    int st = state;
    return st == CLOSED || (st == RAN && failure == null);
  }

  /**
   * Closes the registrations of the stack from {@code first} that a scope with no group around
   * leaves open after firing them: waits for each action to end, as {@link #close()} would, and
   * returns what they threw, judged failures on the calling thread (the scope's), oldest first.
   * Without this, a failure nobody closed the registration for would be seen by nobody. Called by
   * the scope's own thread after its exit, when nothing can fire them any more.
   */
  static List<Throwable> takeLeftOpen(CancelHook first, ThreadState ts) {
    List<Throwable> failures = List.of();
    for (CancelHook h = first; h != null; h = h.next) {
      int st = h.state;
      if (st == RUNNING || st == RAN) {
        h.awaitRan();
        Throwable t = (Throwable) FAILURE.getAndSet(h, (Throwable) null);
        if (t != null) {
          Cancellation.actionFailure(t, ts);
          if (failures.isEmpty()) {
            failures = new ArrayList<>(2);
          }
          failures.add(0, t); // the stack is newest first
        }
      }
    }
    return failures;
  }

  /** Starts the action on its own thread, once, unless closed first. */
  void fire() {
    if (state != OPEN) {
      return;
    }
    if (!STATE.compareAndSet(this, OPEN, RUNNING)) {
      return;
    }
    Group group = Group.enclosing(scope);
    if (group != null) {
      registrant = describeRegistrant(scope.home());
      firedAt = System.nanoTime();
    }
    if (group != null && !group.admitHelper(this)) {
      // The group has closed: every member has ended, its scopes are being left, and the
      // cancellation came too late to stop anything. Run nothing: the action would outlive the
      // group's run, and what it threw would have no group to go to.
      finish(null);
      return;
    }
    // Mark the scope's thread (what it throws from now on, while it stays cancelled, is the
    // action's effect: Cancellation.isCancellation) and interrupt it, both before the action
    // runs: an action that closes the socket the thread reads must find the thread already
    // marked, or the read's SocketException would look like a failure.
    ThreadState h = scope.home();
    if (h != null) {
      h.ownHookFiring();
      h.deliver();
    }
    Group reportTo = group;
    try {
      // Started by whichever thread delivers the cancellation: its inheritable thread locals are
      // not the registrant's (the propagators, applied at registration, carry the registrant's).
      // Started as a helper: a test clock's auto-advance counts it while the action runs.
      ClockedThreads.startHelper(
          Thread.ofVirtual().name("taskgroup-cancel-hook").inheritInheritableThreadLocals(false),
          () -> runAction(reportTo));
    } catch (Throwable e) {
      failed(reportTo, e);
      finish(reportTo);
    }
  }

  /** Whether this action runs on {@code t} now. */
  boolean runsOn(Thread t) {
    return runner == t;
  }

  private void runAction(Group reportTo) {
    runner = Thread.currentThread();
    Object recording = Events.hookStart();
    boolean threw = false;
    Body a = action;
    try {
      Thread.currentThread().setContextClassLoader(loader);
      a.run();
    } catch (Throwable t) {
      threw = true;
      failed(reportTo, t);
    } finally {
      Events.hookEnd(recording, threw);
      finish(reportTo);
    }
  }

  private void failed(Group reportTo, Throwable t) {
    if (reportTo != null) {
      reportTo.helperFailed(t, "a cancel hook");
    } else {
      failure = t;
    }
  }

  private void finish(Group reportTo) {
    runner = null;
    scope = null;
    action = null;
    loader = null;
    state = RAN;
    ran.countDown();
    if (reportTo != null) {
      reportTo.helperDone(this);
    }
  }

  private static String describeRegistrant(ThreadState home) {
    if (home instanceof TaskImpl<?> task) {
      return task.describe();
    }
    Thread t = home == null ? null : home.thread;
    return t == null ? "a thread" : "thread #" + t.threadId() + " \"" + t.getName() + "\"";
  }

  /**
   * Appends, for the stuck warning, a line naming this running action (who registered it, the
   * thread it runs on and for how long) and that thread's stack.
   */
  void describeRunning(StringBuilder sb, long now) {
    sb.append("\n  cancel-hook action registered by ");
    OneLine.append(sb, registrant);
    Thread r = runner;
    if (r == null) {
      sb.append(", its thread not running yet");
      return;
    }
    sb.append(", on thread #").append(r.threadId()).append(" \"");
    OneLine.append(sb, r.getName(), '"');
    sb.append("\" (").append(r.getState()).append("), running for ");
    sb.append(TimeUnit.NANOSECONDS.toMillis(now - firedAt)).append(" ms");
    for (StackTraceElement e : r.getStackTrace()) {
      sb.append("\n      at ").append(e);
    }
  }

  /**
   * Waits, without being interruptible, until a fired action has ended. The thread is marked as
   * waiting for it (ThreadState HOOK_WAIT): the cancellation it is in would otherwise be delivered
   * to it again and again while it waits, each time it took the interrupt status (with thousands of
   * threads waiting so, on one carrier, the actions never got to run).
   */
  private void awaitRan() {
    if (ran.getCount() == 0L) {
      return;
    }
    ThreadState ts = ThreadState.currentOrNull();
    boolean marked = ts != null && ts.beginHookWait();
    boolean interrupted = false;
    try {
      while (true) {
        try {
          ran.await();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (marked) {
        ts.endHookWait(interrupted);
      } else if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Override
  public void close() {
    Scope s = scope;
    if (s != null && state == OPEN && Scope.effectivelyCancelled(s)) {
      // The scope was cancelled while this registration was open, but no firer has reached it
      // yet: the first hook fired interrupted the thread, which is now leaving the scope and
      // closing its other registrations, or the thread saw the cancellation by itself. The action
      // runs now, as register() runs it in a scope already cancelled, and close waits for it.
      fire();
    }
    if (STATE.compareAndSet(this, OPEN, CLOSED)) {
      scope = null;
      action = null;
      loader = null;
      return;
    }
    if (state == CLOSED || Thread.currentThread() == runner) {
      return; // closed before; or the running action closes its own registration: it started
    }
    awaitRan();
    Throwable t = (Throwable) FAILURE.getAndSet(this, (Throwable) null); // thrown once
    if (t != null) {
      // The action's own failure, never its effect on the thread (Cancellation.isCancellation):
      // judged a failure here, on the thread it is thrown on, by identity (an exception's equals
      // and hashCode are the user's, and may match another exception, or throw).
      ThreadState ts = ThreadState.currentOrNull();
      if (ts != null) {
        Cancellation.actionFailure(t, ts);
      }
      throw Cancellation.<RuntimeException>sneakyThrow(t);
    }
  }

  private static final VarHandle STATE;
  private static final VarHandle FAILURE;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      STATE = l.findVarHandle(CancelHook.class, "state", int.class);
      FAILURE = l.findVarHandle(CancelHook.class, "failure", Throwable.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
