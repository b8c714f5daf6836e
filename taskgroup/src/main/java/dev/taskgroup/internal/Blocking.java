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
 * The caller parks on its own (no Future.get, which re-parks on a wake-up that is not its
 * completion) and is woken by the stage's completion (a whenComplete that unparks it), by a
 * cancellation's interrupt, or, in a cooperative scope, by the deliverer's unpark. After every
 * wake-up it looks, in this order: the stage is done (a result that arrived is returned: no
 * result is lost to a race), the thread is effectively cancelled (cancel the stage, throw as a
 * checkpoint), the interrupt status is set by someone else (throw, leave the stage alone).
 *
 * The completion callback holds the waiting thread only while it waits (Wakeup, cleared when
 * await ends): a stage that outlives an await that ended by an interrupt or a cancellation
 * keeps a small callback, not the thread.
 * </pre>
 */
public final class Blocking {
  private Blocking() {}

  /** See {@code CancelScope.await}. */
  public static <T> T await(CompletionStage<T> stage)
      throws InterruptedException, ExecutionException {
    CompletableFuture<T> f = stage.toCompletableFuture();
    if (!f.isDone()) {
      Wakeup wakeup = new Wakeup(Thread.currentThread());
      f.whenComplete(wakeup);
      try {
        waitUntilDone(f);
      } finally {
        wakeup.waiter = null;
      }
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
