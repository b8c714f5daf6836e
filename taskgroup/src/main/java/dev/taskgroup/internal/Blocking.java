package dev.taskgroup.internal;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BiConsumer;

/**
 * Waiting for what the JDK cannot cancel by interrupt: {@code CancelScope.await}.
 *
 * <pre>
 * Implementation overview
 *
 * Outside a cooperative scope the caller waits in the stage's own get(): a cancellation comes
 * as an interrupt, which get() ends on, and get() takes its waiter off the stage when it ends
 * without a completion, so a long-lived stage awaited and interrupted again and again keeps
 * nothing (a whenComplete per await, as below, stayed on such a stage for good). After
 * InterruptedException it looks whether the thread is effectively cancelled (cancel the stage,
 * throw as a checkpoint) or the interrupt is someone else's (throw, leave the stage alone); a
 * result that arrived with the interrupt is returned by get() itself, the interrupt set again.
 *
 * In a cooperative scope no interrupt comes, and get() re-parks on the deliverer's unpark: the
 * caller parks on its own instead and is woken by the stage's completion (a whenComplete that
 * unparks it) or by that unpark. After every wake-up it looks, in this order: the stage is done
 * (a result that arrived is returned: no result is lost to a race), the thread is effectively
 * cancelled, the interrupt status is set by someone else. The completion callback holds the
 * waiting thread only while it waits (Wakeup, cleared when await ends): a stage that outlives
 * an await in a cooperative scope that ended by an outside interrupt keeps a small callback,
 * not the thread.
 * </pre>
 */
public final class Blocking {
  private Blocking() {}

  /** See {@code CancelScope.await}. */
  public static <T> T await(CompletionStage<T> stage)
      throws InterruptedException, ExecutionException {
    CompletableFuture<T> f = asFuture(stage);
    if (f.isDone()) {
      return f.get(); // does not wait
    }
    ThreadState ts = ThreadState.currentOrNull();
    if (ts != null && ts.isCooperative()) {
      return awaitCooperatively(f);
    }
    if (PlainScope.isCancelled()) {
      f.cancel(true);
      PlainScope.checkpoint(); // throws, leaving the status as a checkpoint does
    }
    try {
      return f.get();
    } catch (InterruptedException e) {
      if (PlainScope.isCancelled()) {
        f.cancel(true);
        throw ThreadState.interruptedWhileWaiting("a CompletionStage");
      }
      throw new InterruptedException("interrupted while waiting for a CompletionStage");
    }
  }

  /**
   * The stage's own CompletableFuture; or, for a stage that does not interoperate (its
   * toCompletableFuture() throws UnsupportedOperationException, as CompletionStage allows, or
   * returns null), a new one that the stage completes. Nothing can cancel such a stage: a
   * cancellation cancels the new future, which ends the wait and leaves the stage running, and its
   * whenComplete callback stays on it until it completes.
   */
  private static <T> CompletableFuture<T> asFuture(CompletionStage<T> stage) {
    CompletableFuture<T> own;
    try {
      own = stage.toCompletableFuture();
    } catch (UnsupportedOperationException notInteroperating) {
      own = null;
    }
    if (own != null) {
      return own;
    }
    CompletableFuture<T> f = new CompletableFuture<>();
    stage.whenComplete(
        (result, failure) -> {
          if (failure == null) {
            f.complete(result);
          } else {
            f.completeExceptionally(failure); // get() unwraps a CompletionException, as for a CF
          }
        });
    return f;
  }

  /** In a cooperative scope: parks on its own, woken by the completion or the deliverer. */
  private static <T> T awaitCooperatively(CompletableFuture<T> f)
      throws InterruptedException, ExecutionException {
    Wakeup wakeup = new Wakeup(Thread.currentThread());
    f.whenComplete(wakeup);
    try {
      waitUntilDone(f);
    } finally {
      wakeup.waiter = null;
    }
    return f.get(); // done: does not wait
  }

  private static void waitUntilDone(CompletableFuture<?> f) throws InterruptedException {
    while (!f.isDone()) {
      if (PlainScope.isCancelled()) {
        f.cancel(true);
        PlainScope.checkpoint(); // throws, leaving the status as a checkpoint does
      }
      if (Thread.interrupted()) {
        if (PlainScope.isCancelled()) { // cancelled since the look above
          f.cancel(true);
          throw ThreadState.interruptedWhileWaiting("a CompletionStage");
        }
        throw new InterruptedException("interrupted while waiting for a CompletionStage");
      }
      LockSupport.park(f);
    }
  }

  /** Unparks the awaiting thread when the stage completes, if it still waits. */
  private static final class Wakeup implements BiConsumer<Object, Throwable> {
    volatile Thread waiter;

    Wakeup(Thread waiter) {
      this.waiter = waiter;
    }

    @Override
    public void accept(Object result, Throwable failure) {
      Thread t = waiter;
      if (t != null) {
        LockSupport.unpark(t);
      }
    }
  }
}
