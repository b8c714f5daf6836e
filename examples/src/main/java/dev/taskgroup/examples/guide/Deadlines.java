package dev.taskgroup.examples.guide;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeoutException;

/** The guide's samples on deadlines and shields. */
public final class Deadlines {
  private Deadlines() {}

  // region move-on-after
  static String answerOrDefault(long serviceMillis) throws InterruptedException {
    String answer = CancelScope.moveOnAfter(
        Duration.ofMillis(100), () -> Services.ask("question", serviceMillis));
    return answer != null ? answer : "default answer";   // null: the deadline fired
  }
  // endregion

  // region with-timeout
  static List<String> drainFor(BlockingQueue<String> queue, Duration window)
      throws InterruptedException {
    List<String> taken = new ArrayList<>();
    var scope = CancelScope.withTimeout(window);
    scope.run(() -> {
      while (true) {
        taken.add(queue.take());   // interrupted when the deadline expires
      }
    });
    assert scope.cancelCaught();   // the scope absorbed its own deadline
    return taken;
  }
  // endregion

  // region fail-after
  static String answerOrTimeout(long serviceMillis) throws InterruptedException {
    try {
      return CancelScope.failAfter(
          Duration.ofMillis(100), () -> Services.ask("question", serviceMillis));
    } catch (TimeoutException e) {
      return "timed out";
    }
  }
  // endregion

  // region shield
  static List<String> cancelThenCleanUp() throws InterruptedException {
    List<String> log = new ArrayList<>();
    var session = TaskGroup.named("session");
    session.run(() -> {
      session.cancel("client went away");
      try {
        Thread.sleep(60_000);                     // throws InterruptedException at once
      } finally {
        CancelScope.shielded().run(() -> {
          Thread.sleep(10);                       // blocking cleanup still works here
          log.add("goodbye sent");
        });
      }
    });
    log.add("cancelCaught=" + session.cancelCaught());
    return log;
  }
  // endregion
}
