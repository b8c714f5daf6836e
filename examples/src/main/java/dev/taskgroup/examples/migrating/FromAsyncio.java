package dev.taskgroup.examples.migrating;

import dev.taskgroup.CancelScope;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;

/** The taskgroup side of docs/migrating/from-asyncio.md. */
public final class FromAsyncio {
  private FromAsyncio() {}

  // region task-group
  static String both() throws InterruptedException {
    var tg = TaskGroup.create();
    return tg.call(() -> {
      Task<String> a = tg.fork(() -> Slow.fetch("a"));
      Task<String> b = tg.fork(() -> Slow.fetch("b"));
      return a.get() + b.get();
    });
  }
  // endregion

  // region cancel
  static int consumeUntilStop(BlockingQueue<String> inbox) throws InterruptedException {
    var consumed = new AtomicInteger();
    var tg = TaskGroup.named("consumer");
    tg.run(() -> {
      tg.fork(() -> {
        while (true) {
          if (inbox.take().equals("stop")) {
            tg.cancel("stop received");   // asyncio 3.15: tg.cancel()
          } else {
            consumed.incrementAndGet();
          }
        }
      });
      tg.fork(() -> Thread.sleep(60_000));   // a sibling, cancelled too
    });                                      // returns normally, like the async with block
    return consumed.get();
  }
  // endregion

  // region timeout
  static String withDeadline() throws InterruptedException {
    var scope = CancelScope.withTimeout(Duration.ofMillis(50));
    String result = scope.call(() -> Slow.fetch("slow", 60_000));
    if (scope.cancelCaught()) {   // asyncio.timeout raises TimeoutError instead
      return "gave up";
    }
    return result;
  }
  // endregion

  // region exception-group
  static List<String> failures() throws InterruptedException {
    var tg = TaskGroup.create();
    try {
      tg.run(() -> {
        tg.fork(() -> Slow.fetch("broken a", 1));
        tg.fork(() -> Slow.fetch("ok b", 60_000));   // cancelled, not a failure
      });
      return List.of();
    } catch (TaskGroupException group) {             // except* / ExceptionGroup
      return group.failures().stream().map(Throwable::getMessage).toList();
    }
  }
  // endregion
}
