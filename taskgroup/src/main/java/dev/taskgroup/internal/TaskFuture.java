package dev.taskgroup.internal;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * The {@link CompletableFuture} of {@code Task.toCompletableFuture()}: completed by the task when
 * its outcome is set (normally, exceptionally with the failure, or cancelled); cancelling it
 * cancels the task. Completing it from outside completes only this future.
 *
 * <pre>
 * Implementation overview
 *
 * Made on the first toCompletableFuture() and published by CAS in TaskExtras.future; a task that
 * never calls it pays nothing. Whoever moves the task's outcome out of RUNNING calls
 * taskDone() after reading the field (and the task's thread again as it finishes, when
 * Task.cancel set the outcome first: see TaskImpl.complete); the maker calls it after publishing
 * the field if the outcome was already set, and cancel() once the task's outcome is set. Either
 * sees the other (both fields are volatile); a second taskDone() does nothing, as
 * CompletableFuture completes once.
 * </pre>
 *
 * @param <T> the result type
 */
final class TaskFuture<T> extends CompletableFuture<T> {
  private final TaskImpl<T> task;

  TaskFuture(TaskImpl<T> task) {
    this.task = task;
  }

  /** Copies the task's outcome, which is set. */
  void taskDone() {
    switch (task.state()) {
      case SUCCESS -> complete(task.resultNow());
      case FAILED -> {
        // A CancellationException the work threw is its failure; as it is, the future would
        // count it as a cancellation (isCancelled, get throwing it). A CompletionException, the
        // future would take for its own wrapper: get() would throw an ExecutionException with
        // the failure's cause, not the failure (so the group, seeing that rethrown, would not
        // know it and would report the failure twice), and exceptionNow() would return the
        // cause. Wrapped, get() throws an ExecutionException with the failure as the cause, and
        // exceptionNow() returns it, as for any other failure. The wrapper's message is made
        // here: CompletionException(cause) calls the failure's toString(), which may throw.
        Throwable failure = task.exceptionNow();
        completeExceptionally(
            failure instanceof CancellationException || failure instanceof CompletionException
                ? new CompletionException(Cancellation.describe(failure), failure)
                : failure);
      }
      case CANCELLED -> super.cancel(false);
      case RUNNING -> throw new AssertionError("taskDone() before the outcome is set");
    }
  }

  /** Cancels the task as {@code Task.cancel} does, whatever the flag; this future follows it. */
  @Override
  public boolean cancel(boolean mayInterruptIfRunning) {
    if (!isDone()) {
      task.cancel(mayInterruptIfRunning);
      // The outcome is set now, whoever set it; but when the task's thread set it, that thread
      // may not have completed this future yet. Future.cancel: once it returns, isDone() is true.
      taskDone();
    }
    return isCancelled();
  }

  /**
   * The future's own completion state in brackets, as CompletableFuture.toString specifies it (it
   * can differ from the task's: the future may be completed from outside), then the task.
   */
  @Override
  public String toString() {
    String own = super.toString(); // identity, then the state in brackets
    return "CompletableFuture" + own.substring(own.indexOf('[')) + " of " + task;
  }
}
