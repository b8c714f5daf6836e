package dev.taskgroup;

import java.util.concurrent.CountDownLatch;
import java.util.function.BiConsumer;

/**
 * Run by {@link ClassLoaderUnloadMain} in a class loader of its own: runs a group with the given
 * name, counts {@code running} down inside it, and returns once {@code release} is counted down.
 */
public final class HoldWork implements BiConsumer<String, CountDownLatch[]> {
  /** For reflection. */
  public HoldWork() {}

  @Override
  public void accept(String name, CountDownLatch[] runningAndRelease) {
    try {
      TaskGroup.named(name)
          .run(
              () -> {
                runningAndRelease[0].countDown();
                runningAndRelease[1].await();
              });
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }
}
