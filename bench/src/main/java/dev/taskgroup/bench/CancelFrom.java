package dev.taskgroup.bench;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Where workload (b) calls its cancel from: the benchmark thread itself, which is virtual (the
 * comparison runs JMH with {@code -Djmh.executor=VIRTUAL}), or one platform thread kept for the
 * whole trial. With a platform thread the timed work (the cancel and the wait until everything has
 * ended) runs there, and the benchmark thread waits for it; the hand-off costs two wake-ups, a few
 * microseconds against the milliseconds measured, the same for every implementation.
 */
public final class CancelFrom {
  /** Work that may throw, run where the cancel is called from. */
  @FunctionalInterface
  public interface Action {
    void run() throws Exception;
  }

  /** The platform thread, or null when the cancel is called from the benchmark thread. */
  private final ExecutorService platform;

  /**
   * @param canceller {@code "virtual"} (the benchmark thread) or {@code "platform"}
   */
  public CancelFrom(String canceller) {
    platform =
        switch (canceller) {
          case "virtual" -> null;
          case "platform" ->
              Executors.newSingleThreadExecutor(Thread.ofPlatform().name("canceller").factory());
          default ->
              throw new IllegalArgumentException(
                  "canceller must be virtual or platform, not " + canceller);
        };
  }

  /** Runs {@code action} where the cancel is called from, and returns when it has. */
  public void run(Action action) throws Exception {
    if (platform == null) {
      action.run();
      return;
    }
    try {
      platform
          .submit(
              () -> {
                action.run();
                return null;
              })
          .get();
    } catch (ExecutionException e) {
      throw e.getCause() instanceof Exception x ? x : e;
    }
  }

  /** Stops the platform thread, if any. */
  public void close() {
    if (platform != null) {
      platform.shutdownNow();
    }
  }
}
