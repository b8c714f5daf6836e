package dev.taskgroup.examples.migrating;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/** The taskgroup side of docs/migrating/from-trio.md. */
public final class FromTrio {
  private FromTrio() {}

  // region nursery
  static List<String> producerConsumer() throws InterruptedException {
    List<String> got = new ArrayList<>();
    BlockingQueue<String> channel = new ArrayBlockingQueue<>(1);
    var nursery = TaskGroup.named("nursery");
    nursery.run(() -> {
      nursery.fork("producer", () -> {
        for (String item : List.of("a", "b", "c")) {
          channel.put(item);
        }
        channel.put("done");
      });
      nursery.fork("consumer", () -> {
        for (String item = channel.take(); !item.equals("done"); item = channel.take()) {
          got.add(item);
        }
        return null;
      });
    });
    return got;
  }
  // endregion

  // region start
  static String startThenUse() throws InterruptedException {
    var nursery = TaskGroup.named("nursery");
    return nursery.call(() -> {
      BlockingQueue<String> requests = nursery.start(taskStatus -> {
        BlockingQueue<String> queue = new ArrayBlockingQueue<>(8);
        taskStatus.started(queue);            // task_status.started(value)
        while (true) {
          queue.take();                       // serve until cancelled
        }
      });
      requests.put("hello");
      nursery.cancel();                       // nursery.cancel_scope.cancel()
      return "served";
    });
  }
  // endregion

  // region move-on-after
  static String moveOnAfter() throws InterruptedException {
    var scope = CancelScope.withTimeout(Duration.ofMillis(20));   // trio.move_on_after(0.02)
    scope.run(() -> Thread.sleep(60_000));
    return "cancelCalled=" + scope.cancelCalled() + " cancelCaught=" + scope.cancelCaught();
  }
  // endregion

  // region shield
  static String cleanupUnderShield() throws InterruptedException {
    var scope = CancelScope.create();
    var log = new StringBuilder();
    scope.run(() -> {
      scope.cancel();
      try {
        CancelScope.checkpoint();                           // await trio.lowlevel.checkpoint()
      } finally {
        var shield = CancelScope.withTimeout(Duration.ofSeconds(5));
        shield.setShielded(true);                           // with trio.CancelScope(shield=True)
        shield.run(() -> {
          Thread.sleep(5);
          log.append("cleaned up");
        });
      }
    });
    return log.toString();
  }
  // endregion
}
