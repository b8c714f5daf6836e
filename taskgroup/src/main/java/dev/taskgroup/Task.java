package dev.taskgroup;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;

/**
 * A child of a {@link TaskGroup}: work running on its own thread, and the handle to its outcome.
 *
 * <p>A task is a {@link Future}. Its {@linkplain #state() state} is {@code RUNNING} until the work
 * ends, then:
 *
 * <ul>
 *   <li>{@code SUCCESS} when the work returned; {@link #get()} returns its result;
 *   <li>{@code FAILED} when it threw anything that is not a cancellation; {@link #get()} throws
 *       {@link java.util.concurrent.ExecutionException} with that throwable as its cause, and the
 *       group reports the same throwable as a failure;
 *   <li>{@code CANCELLED} when it ended by a cancellation (of the group, of a scope above it, or of
 *       this task), when its work never started (it was forked into a group that was already
 *       cancelled, or the cancellation came before its thread began the work: then none of its code
 *       runs, not even a {@code finally}), or as soon as {@link #cancel(boolean)} returned {@code
 *       true}; {@link #get()} throws {@link java.util.concurrent.CancellationException}.
 * </ul>
 *
 * <p><b>Cancellation.</b> {@link #cancel(boolean)} cancels this task's own cancel scope, whatever
 * the flag: the task's thread is interrupted, and keeps being interrupted if it swallows the
 * interrupt, until the work ends. Once {@code cancel} returns {@code true} the state is {@code
 * CANCELLED} and a result that arrives later is dropped. A failure that arrives later is still a
 * failure of the group: failures are never lost. The group waits for the task's thread either way.
 * When several threads cancel the task at once, one call returns {@code true}, and whichever
 * returns, the cancellation has reached the task's code by then (unless the work had ended).
 *
 * <p><b>Reading an outcome from a cancelled thread.</b> {@link #get()} and {@link #get(long,
 * java.util.concurrent.TimeUnit)} are checkpoints for a task that did not succeed: when the calling
 * thread is effectively cancelled (see {@link CancelScope}) and the task failed or was cancelled,
 * or the caller would have to wait, they throw {@link InterruptedException} (leaving the interrupt
 * status set) instead of the task's failure. A result that has arrived is returned all the same.
 * This is what keeps a failure from being counted twice: with {@link FailurePolicy#CANCEL_ALL} a
 * child's failure cancels the body and the siblings before anyone can read it, so a body that forks
 * and then calls {@code get()} (the example below) ends by that cancellation, and the group reports
 * the child's failure once, whatever the order of the failure, the cancellation and the {@code
 * get()}. When the caller is not cancelled (policy {@link FailurePolicy#COLLECT}, a shield, or a
 * thread outside the group), {@code get()} throws {@link java.util.concurrent.ExecutionException}
 * with the failure as cause; if the body or a sibling rethrows that exception, the group knows it
 * as the child's failure and does not report it a second time. The same holds for the {@code
 * ExecutionException} or {@code CompletionException} of the task's {@link #toCompletableFuture()
 * future} (its {@code get()} or {@code join()}, a dependent stage's, or {@code CancelScope.await}).
 * An exception suppressed on such a rethrown exception on its way (a {@code close()} that failed in
 * a try-with-resources around the read) is a failure of its own and is reported. {@link
 * #resultNow()}, {@link #exceptionNow()} and {@link #state()} never throw for a cancellation.
 *
 * <p><b>A task cannot wait for itself.</b> Its outcome is set by its own thread once the work (and
 * the {@link TaskGroup.Builder#onFailure onFailure} handler of its failure, which runs there) has
 * returned, so {@code get()} or {@code get(timeout, unit)} called on that thread before then could
 * only wait to be cancelled: it throws {@link IllegalStateException} instead, and nothing changes.
 * (A {@code get()} from a dependent stage of the task's {@linkplain #toCompletableFuture() future}
 * is fine: those run once the outcome is set.)
 *
 * <p><b>Memory consistency.</b> Actions of the task's work happen-before a {@code get()} that
 * returns its result or throws its failure, and happen-before the return of the group's {@code
 * run}.
 *
 * {@snippet :
 * var group = TaskGroup.create();
 * group.run(() -> {
 *   Task<User> user = group.fork(() -> fetchUser(id));
 *   Task<List<Order>> orders = group.fork(() -> fetchOrders(id));
 *   render(user.get(), orders.get());   // get() waits for each result
 * });
 * }
 *
 * <p>{@code toString()} gives the name (if any) and one of the states of {@link TaskTree}, e.g.
 * {@code Task[fetch-1, cancelled]}.
 *
 * @param <T> the result type of the work
 */
public interface Task<T> extends Future<T> {
  /**
   * The name of this task: the name passed to {@link TaskGroup#fork(String,
   * java.util.concurrent.Callable)}, otherwise the name of its thread (empty for an unnamed virtual
   * thread).
   *
   * @return this task's name, never {@code null}
   */
  String name();

  /**
   * The task's outcome as a {@link CompletableFuture}, for code that composes futures: the same
   * future on every call, completed when the task is (normally with its result, exceptionally with
   * its failure, or cancelled), by the thread that sets the outcome just after it releases the
   * threads waiting in {@link #get()}: one of those may find the future not done for a moment.
   * Cancelling the future, with either flag, cancels the task as {@link #cancel(boolean)} does;
   * completing it from outside does not affect the task. A failure that is itself a {@link
   * java.util.concurrent.CancellationException} (thrown by the work while nothing cancelled it) or
   * a {@link java.util.concurrent.CompletionException} completes the future wrapped in a {@code
   * CompletionException}, so that the future of a failed task never looks cancelled and never
   * unwraps the failure: its {@code get()} throws an {@code ExecutionException} with that exception
   * as the cause, and its {@code exceptionNow()} returns it. Dependent stages added before the task
   * ended run on the thread that completes the future, as for any {@code CompletableFuture}: the
   * task's thread as it ends (the group waits for them, a cancellation of the group reaches them
   * there, and a fork from them into a group with {@code maxConcurrency} never waits, as a fork
   * from the task's work does not), or the thread that cancels the task, once the cancellation has
   * been delivered; threads waiting in {@link #get()} are released before they run.
   *
   * {@snippet :
   * Task<Price> price = group.fork(() -> quote(item));
   * CompletableFuture<String> label = price.toCompletableFuture().thenApply(Price::format);
   * }
   *
   * @return the task's future
   */
  CompletableFuture<T> toCompletableFuture();
}
