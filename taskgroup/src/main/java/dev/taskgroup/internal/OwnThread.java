package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.WeakReference;

/**
 * The state of a thread that is not a task's: it keeps its judged failure and its reason (a
 * thread's root is never cancelled, so that stays null) in fields.
 */
final class OwnThread extends ThreadState {
  /**
   * See {@link ThreadState#judgedFailure()}; written by the thread itself. Weak: the judgment
   * matters only while the exception travels (then its thrower's frames hold it), and a thread that
   * lives on (a pool's) must not keep the last failure that left a scope on it.
   */
  private WeakReference<Throwable> judged;

  /** See {@link Scope#reason()}; CAS once from null. */
  private volatile CancelReason reason;

  /** See {@link Scope#hooks()}. */
  private volatile CancelHook hooks;

  OwnThread(Thread thread) {
    super(thread);
  }

  @Override
  Throwable judgedFailure() {
    WeakReference<Throwable> j = judged;
    return j == null ? null : j.get();
  }

  @Override
  void judgedFailure(Throwable t) {
    judged = t == null ? null : new WeakReference<>(t);
  }

  @Override
  public CancelReason reason() {
    return reason;
  }

  @Override
  void recordReason(CancelReason why) {
    OWN_REASON.compareAndSet(this, null, why);
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
