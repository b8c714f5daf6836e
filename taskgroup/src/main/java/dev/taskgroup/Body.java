package dev.taskgroup;

/**
 * Work that may throw: the body of a {@link TaskGroup} and work forked into it.
 *
 * <p>Unlike {@link Runnable}, a body may throw any exception, checked or not. A body that ends by a
 * cancellation (see {@link CancelScope}) is not a failure; any other exception is, and the group
 * reports it in a {@link TaskGroupException}.
 *
 * {@snippet :
 * TaskGroup.create().run(() -> {
 *   Files.writeString(path, "hello");   // may throw IOException
 * });
 * }
 */
@FunctionalInterface
public interface Body {
  /**
   * Runs the work.
   *
   * @throws Exception whatever the work throws
   */
  void run() throws Exception;
}
