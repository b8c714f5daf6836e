package dev.taskgroup.internal;

import dev.taskgroup.Body;
import dev.taskgroup.StartSignal;
import dev.taskgroup.Startable;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * The handshake of {@code TaskGroup.start}: the signal handed to the work, and the work itself as
 * the child's body.
 *
 * <pre>
 * Implementation overview
 *
 * `state` moves once by CAS from PENDING to STARTING (started() was called; then STARTED once
 * the value is stored) or to ENDED (the work ended first). Whoever wins decides: after STARTED
 * the child belongs to its group (its root scope is moved under the group, and its failures are
 * the group's); after ENDED the outcome (`failure`, or none: returned without signalling, or
 * cancelled) goes to the caller of start, and is never a failure of the group. The caller parks
 * until the state leaves PENDING.
 *
 * The child's thread reads `caller` before it publishes the new state, and the caller, once it
 * has seen STARTED and taken the value, drops both (takeValue): a started child may run for
 * days, and its signal (reachable from the work's own frame) must not keep the thread that
 * called start, which may have ended long ago, nor a copy of the value. Likewise when start
 * throws (forgetOutcome): after ENDED, once it has read the failure; after it stopped waiting,
 * once the child is done, whatever the work signalled meanwhile.
 * </pre>
 *
 * @param <T> the type of the signalled value
 */
final class StartSignalImpl<T> implements StartSignal<T>, Body {
  static final int PENDING = 0;
  static final int STARTING = 1;
  static final int STARTED = 2;
  static final int ENDED = 3;

  /**
   * The work; dropped when it starts (its own frame keeps it while it runs), so that a signal kept
   * after the start does not keep what the work captured.
   */
  private Startable<T> work;

  /** The thread waiting in start(); dropped by takeValue. */
  private Thread caller;

  /**
   * The child; set before its thread starts, dropped once the state has left PENDING (by the winner
   * of its CAS, the only reader), so that a signal kept after the start does not keep the child,
   * nor through it its group and the scopes above.
   */
  TaskImpl<?> task;

  private volatile int state;

  /** The signalled value; written before STARTED. */
  private T value;

  /** What the work threw before signalling, if anything; written before ENDED. */
  private Throwable failure;

  /** Whether the work ended by a cancellation before signalling; written before ENDED. */
  private boolean cancelled;

  StartSignalImpl(Startable<T> work, Thread caller) {
    this.work = work;
    this.caller = caller;
  }

  @Override
  public void run() throws Exception {
    Startable<T> w = work;
    work = null; // run once, on the child's thread
    w.run(this);
  }

  @Override
  public void started(T v) {
    if (!STATE.compareAndSet(this, PENDING, STARTING)) {
      throw new IllegalStateException(
          state == ENDED
              ? "started() called after the started work ended"
              : "started() was already called for this start()");
    }
    Thread c = caller; // read before STARTED: the caller drops it once it sees STARTED
    value = v;
    task.moveUnderGroup();
    task = null; // only started() reads it, and only the CAS's winner gets here
    state = STARTED;
    LockSupport.unpark(c);
  }

  @Override
  public void started() {
    started(null);
  }

  /**
   * The child's work ended (called on the child's thread before it reports anything).
   *
   * @return true if the outcome belongs to the caller of start (the work never signalled), so the
   *     group must not see it
   */
  boolean workEnded(Throwable thrown, boolean wasCancelled) {
    if (state != PENDING) {
      return false;
    }
    failure = thrown;
    cancelled = wasCancelled;
    Thread c = caller;
    if (!STATE.compareAndSet(this, PENDING, ENDED)) {
      return false;
    }
    task = null; // started() can no longer win the CAS, the only reason to read it
    LockSupport.unpark(c);
    return true;
  }

  int state() {
    return state;
  }

  /** The signalled value, once STARTED; the signal then lets go of it and of the caller. */
  T takeValue() {
    T v = value;
    value = null;
    caller = null;
    return v;
  }

  Throwable failure() {
    return failure;
  }

  /**
   * The caller of start is done with the outcome (it is about to throw, or it left before the work
   * signalled): the signal, which the work may keep for as long as it runs or longer, lets go of
   * the caller's thread and of the outcome, a failure start has thrown or a value signalled after
   * the caller left, which nobody will take. Called once the state has left PENDING, after which
   * the child's thread no longer touches these fields.
   */
  void forgetOutcome() {
    value = null;
    failure = null;
    caller = null;
  }

  boolean endedByCancellation() {
    return cancelled;
  }

  private static final VarHandle STATE;

  static {
    try {
      STATE = MethodHandles.lookup().findVarHandle(StartSignalImpl.class, "state", int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
