package dev.taskgroup.examples.migrating;

import dev.taskgroup.CancelScope;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/** The taskgroup side of docs/migrating/from-structured-task-scope.md. */
public final class FromStructuredTaskScope {
  private FromStructuredTaskScope() {}

  // region all-successful
  static String userAndOrder(String id) throws InterruptedException {
    var group = TaskGroup.named("user-and-order");
    return group.call(() -> {
      Task<String> user = group.fork(() -> Slow.fetch("user " + id));
      Task<String> order = group.fork(() -> Slow.fetch("order " + id));
      return user.get() + ", " + order.get();
    });   // a failure of either cancels the other; run throws TaskGroupException
  }
  // endregion

  // region any-successful
  static String fromAnyMirror() throws InterruptedException {
    List<Callable<String>> mirrors = List.of(
        () -> Slow.fetch("broken mirror", 1),
        () -> Slow.fetch("slow mirror", 60_000),
        () -> Slow.fetch("fast mirror", 5));
    return TaskGroup.invokeAny(mirrors);   // first success; the rest are cancelled
  }
  // endregion

  // region timeout
  static String userWithin(Duration limit) throws InterruptedException, TimeoutException {
    return CancelScope.failAfter(limit, () -> {
      var group = TaskGroup.named("lookup");
      return group.call(() -> group.fork(() -> Slow.fetch("user", 60_000)).get());
    });
  }
  // endregion

  // region cancel-from-inside
  static String firstPageMentioning(List<String> pages, String word)
      throws InterruptedException {
    var hit = new AtomicReference<String>();
    var group = TaskGroup.named("scan");
    group.run(() -> {
      for (String page : pages) {
        group.fork(() -> {
          String text = Slow.fetch(page, page.contains(word) ? 5 : 60_000);
          hit.set(text);
          group.cancel("found " + word);   // done: stop the others, exit normally
        });
      }
    });
    return hit.get();
  }
  // endregion
}
