package dev.taskgroup.tools;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * The child JVM of {@link TreeToolTest}: runs a group with two children, prints "ready" once they
 * are running, and returns when a line arrives on standard input.
 */
public final class TreeDemoMain {
  private TreeDemoMain() {}

  public static void main(String[] args) throws Exception {
    CountDownLatch running = new CountDownLatch(2);
    CountDownLatch release = new CountDownLatch(1);
    TaskGroup group = TaskGroup.named("tool-demo");
    group.run(
        () -> {
          group.fork(
              "sleeper",
              () ->
                  CancelScope.withTimeout(Duration.ofHours(1))
                      .call(
                          () -> {
                            running.countDown();
                            release.await();
                            return null;
                          }));
          group.fork(
              "waiter",
              () -> {
                running.countDown();
                release.await();
                return null;
              });
          running.await();
          System.out.println("ready");
          System.out.flush();
          System.in.read();
          release.countDown();
        });
  }
}
