package dev.taskgroup.examples.guide;

import dev.taskgroup.CancelScope;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;

/** The guide's first samples: a group, cancelling it from inside, checkpoints, failures. */
public final class Basics {
  private Basics() {}

  // region first-group
  static String profilePage(String userId) throws InterruptedException {
    var group = TaskGroup.named("profile");
    return group.call(() -> {
      Task<String> user = group.fork(() -> Services.fetchUser(userId));
      Task<Integer> orders = group.fork(() -> Services.countOrders(userId));
      return user.get() + " has " + orders.get() + " orders";   // get() waits for each
    });
  }
  // endregion

  // region first-match
  static Optional<Integer> firstMatch(List<Integer> shards, int needle)
      throws InterruptedException {
    var found = new AtomicReference<Integer>();
    var search = TaskGroup.named("search");
    search.run(() -> {
      for (int shard : shards) {
        search.fork(() -> {
          if (Services.scan(shard, needle)) {    // blocking, interruptible
            found.compareAndSet(null, shard);
            search.cancel("found in shard " + shard);   // stop the siblings
          }
        });
      }
    });                                          // waits for every child, returns normally
    assert found.get() == null || (search.cancelCalled() && search.cancelCaught());
    return Optional.ofNullable(found.get());
  }
  // endregion

  // region checkpoint
  static long sum(long[] data) throws InterruptedException {
    long sum = 0;
    for (int i = 0; i < data.length; i++) {
      if (i % 4096 == 0) {
        CancelScope.checkpoint();   // pure computation: look for a cancellation now and then
      }
      sum += data[i];
    }
    return sum;
  }
  // endregion

  @SuppressWarnings("finally") // the sample's cleanup fails on purpose
  // region failures
  static List<String> uploadBoth() throws InterruptedException {
    var upload = TaskGroup.named("upload");
    try {
      upload.run(() -> {
        upload.start(session -> { // start returns once the session is open
          session.started();
          try {
            Thread.sleep(60_000);                // cancelled by the sibling's failure...
          } finally {
            throw new IllegalStateException("could not close session");   // ...and fails too
          }
        });
        upload.fork(() -> {
          throw new IOException("connection reset");
        });
      });
      return List.of();
    } catch (TaskGroupException e) {
      return e.failures().stream().map(Throwable::getMessage).toList();
    }
  }
  // endregion
}
