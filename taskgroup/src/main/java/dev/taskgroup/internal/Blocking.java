package dev.taskgroup.internal;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
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
 * cancelled, the interrupt status is set by someone else. The completion callback is one per
 * future, shared by every cooperative await of it (WAKEUPS, weak keys: a future nobody holds
 * goes, and its entry with it); it holds the waiting threads only while they wait (each adds
 * itself before it looks whether the future is done, and removes itself when await ends). A
 * callback per await stayed on a long-lived future for good: one per wait an outside interrupt
 * ended. The entry goes once its future is seen done. The map finds a future by identity
 * (FutureKey), never by the future's own equals and hashCode, which a subclass may override: two
 * distinct futures equal (the second await waited for the first's completion), a hashCode that
 * is slow or throws. Entries whose future was collected are dropped on the next use of the map.
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

  /**
   * The completion callbacks of the futures awaited in cooperative scopes, by identity and weakly
   * (see the overview); guarded by itself, as is every use of COLLECTED.
   */
  private static final Map<FutureKey, Wakeup> WAKEUPS = new HashMap<>();

  /** The keys of WAKEUPS whose future was collected. */
  private static final ReferenceQueue<Object> COLLECTED = new ReferenceQueue<>();

  /**
   * A future's key in WAKEUPS: weak, and equal only to a key of the same future (or to itself, once
   * cleared, so that a collected entry can still be removed).
   */
  private static final class FutureKey extends WeakReference<Object> {
    private final int hash;

    FutureKey(CompletableFuture<?> f, ReferenceQueue<Object> queue) {
      super(f, queue);
      hash = System.identityHashCode(f);
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object o) {
      if (o == this) {
        return true;
      }
      Object mine = get();
      return mine != null && o instanceof FutureKey other && other.get() == mine;
    }
  }

  /** In a cooperative scope: parks on its own, woken by the completion or the deliverer. */
  private static <T> T awaitCooperatively(CompletableFuture<T> f)
      throws InterruptedException, ExecutionException {
    Thread me = Thread.currentThread();
    Wakeup wakeup;
    boolean first;
    FutureKey key = new FutureKey(f, COLLECTED);
    synchronized (WAKEUPS) {
      for (Object gone; (gone = COLLECTED.poll()) != null; ) {
        WAKEUPS.remove(gone);
      }
      wakeup = WAKEUPS.get(key);
      first = wakeup == null;
      if (first) {
        WAKEUPS.put(key, wakeup = new Wakeup());
      }
    }
    wakeup.waiters.add(me); // before waitUntilDone's first look at the future
    try {
      if (first) {
        // Outside the lock (a subclass's whenComplete is user code). A waiter that found the
        // entry before this wakes by the callback, or sees the future done itself.
        f.whenComplete(wakeup);
      }
      waitUntilDone(f);
    } finally {
      wakeup.waiters.remove(me);
      if (f.isDone()) {
        synchronized (WAKEUPS) {
          WAKEUPS.remove(key);
        }
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

  /** Unparks the threads awaiting a future when it completes. Holds no reference to the future. */
  private static final class Wakeup implements BiConsumer<Object, Throwable> {
    final Set<Thread> waiters = ConcurrentHashMap.newKeySet();

    @Override
    public void accept(Object result, Throwable failure) {
      for (Thread t : waiters) {
        LockSupport.unpark(t);
      }
    }
  }
}
