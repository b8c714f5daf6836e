package dev.taskgroup;

/**
 * The readiness signal handed to work started with {@link TaskGroup#start(Startable)}.
 *
 * <p>The work calls {@link #started(Object)} once it is ready (a server bound to its port, say);
 * the caller of {@code start} then gets the value back while the work keeps running in the group. A
 * signal may be used from any thread, exactly once. When the caller of {@code start} has already
 * given up (it was cancelled or interrupted while waiting), a first {@code started} does nothing:
 * the value is dropped, and the work, cancelled with that caller, goes on being cancelled (as
 * Trio's {@code task_status.started()} does then). Once the work has ended, a signal throws {@link
 * IllegalStateException}.
 *
 * @param <T> the type of the value handed back to the caller of {@code start}
 */
public interface StartSignal<T> {
  /**
   * Reports that the work is ready, handing {@code value} to the caller of {@code start}. From now
   * on the work is cancelled with its group instead of with the caller. When the caller's
   * cancellation had reached the work before the signal, its interrupt is withdrawn here (unless
   * the group is cancelled too), so that the work's next blocking call does not throw for it: at
   * once when the work's own thread signals. When another thread does, it is withdrawn at the
   * work's next checkpoint or scope entry or exit; a blocking call before then may still throw for
   * it. Until then, an exception of an interrupt type that the work lets out (such as {@link
   * InterruptedException}, {@link java.io.InterruptedIOException}, or one caused by either) is
   * taken for that cancellation, and the task ends {@code CANCELLED}, not failed: the library
   * cannot tell the exception the withdrawn interrupt raised from one a later interrupt raises (as
   * {@link java.util.concurrent.FutureTask} takes whatever a task cancelled while running throws).
   *
   * @param value the value {@code start} returns; may be {@code null}
   * @throws IllegalStateException if the signal was already given
   */
  void started(T value);

  /**
   * Reports that the work is ready, with no value: {@code start} returns {@code null}.
   *
   * @throws IllegalStateException if the signal was already given
   */
  void started();
}
