package dev.taskgroup;

import java.time.Duration;

/**
 * Run by {@link ClassLoaderUnloadMain} in a class loader of its own, on a thread that then ends: a
 * use of the library that starts each of its threads (a deadline: the timer and its backstop; a
 * child that swallows the cancellation: the re-delivery watcher; the first use: the JMX bean).
 */
public final class UnloadWork implements Runnable {
  /** For reflection. */
  public UnloadWork() {}

  @Override
  public void run() {
    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(20)).build();
    try {
      g.run(
          () ->
              g.fork(
                  () -> {
                    try {
                      Thread.sleep(60_000); // until the deadline interrupts it
                    } catch (InterruptedException swallowed) {
                      // and sleeps again: only a re-delivery ends it
                    }
                    Thread.sleep(60_000);
                    return null;
                  }));
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
    if (!g.cancelCaught()) {
      throw new AssertionError("the group was not cancelled by its deadline");
    }
    TaskTree.capture().format();
  }
}
