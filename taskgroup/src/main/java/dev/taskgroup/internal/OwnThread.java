package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The state of a thread that is not a task's: it keeps its judged failure and its reason (a
 * thread's root is never cancelled, so that stays null) in fields.
 */
final class OwnThread extends ThreadState {
  /** See {@link ThreadState#judgedFailures()}; made, read and written by the thread itself. */
  private JudgedFailures judged;

  /** See {@link Scope#reason()}; CAS once from null. */
  private volatile CancelReason reason;

  /** See {@link Scope#hooks()}. */
  private volatile CancelHook hooks;

  OwnThread(Thread thread) {
    super(thread);
  }

  @Override
  JudgedFailures judgedFailures() {
    return judged;
  }

  @Override
  void judgedFailure(Throwable t) {
    JudgedFailures j = judged;
    if (j == null) {
      judged = j = new JudgedFailures();
    }
    j.add(t);
  }

  @Override
  public CancelReason reason() {
    return reason;
  }

  @Override
  boolean recordReason(CancelReason why) {
    return OWN_REASON.compareAndSet(this, null, why);
  }

  @Override
  void withdrawReason(CancelReason why) {
    OWN_REASON.compareAndSet(this, why, null);
  }

  @Override
  CancelHook hooks() {
    return hooks;
  }

  @Override
  void hooks(CancelHook first) {
    hooks = first;
  }

  private static final VarHandle OWN_REASON;

  static {
    try {
      OWN_REASON =
          MethodHandles.lookup().findVarHandle(OwnThread.class, "reason", CancelReason.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
