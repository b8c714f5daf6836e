package dev.taskgroup.examples.migrating;

import dev.taskgroup.CancelScope;
import dev.taskgroup.FailurePolicy;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/** The taskgroup side of docs/migrating/from-kotlin.md. */
public final class FromKotlin {
  private FromKotlin() {}

  // region coroutine-scope
  static String loadProfile() throws InterruptedException {
    var scope = TaskGroup.named("profile");              // coroutineScope {
    return scope.call(() -> {
      Task<String> user = scope.fork(() -> Slow.fetch("user"));       // async { ... }
      Task<String> friends = scope.fork(() -> Slow.fetch("friends"));
      return user.get() + " & " + friends.get();         // .await()
    });
  }
  // endregion

  // region timeouts
  static String timeouts() throws InterruptedException {
    String orNull = CancelScope.moveOnAfter(              // withTimeoutOrNull(50) { ... }
        Duration.ofMillis(50), () -> Slow.fetch("slow", 60_000));
    try {
      CancelScope.failAfter(                              // withTimeout(50) { ... }
          Duration.ofMillis(50), () -> Slow.fetch("slow", 60_000));
      return "no timeout";
    } catch (TimeoutException e) {                        // TimeoutCancellationException
      return orNull + ", then " + e.getClass().getSimpleName();
    }
  }
  // endregion

  // region supervisor
  static int supervise(List<String> jobs) throws InterruptedException {
    var failed = new AtomicInteger();
    var supervisor = TaskGroup.builder()                  // supervisorScope {
        .failurePolicy(FailurePolicy.COLLECT)
        .onFailure(e -> failed.incrementAndGet())         // CoroutineExceptionHandler
        .build();
    supervisor.run(() -> {
      for (String job : jobs) {
        supervisor.fork(() -> Slow.fetch(job));           // launch { ... }
      }
    });
    return failed.get();
  }
  // endregion

  // region cancel-job
  static String cancelOneJob() throws InterruptedException {
    var scope = TaskGroup.create();
    return scope.call(() -> {
      Task<String> job = scope.fork(() -> Slow.fetch("never", 60_000));   // val job = launch
      job.cancel(true);                                                   // job.cancel()
      return job.state().toString();
    });
  }
  // endregion

  // region non-cancellable
  static String releaseUnderShield() throws InterruptedException {
    var scope = TaskGroup.create();
    var released = new StringBuilder();
    scope.run(() -> {
      scope.cancel();
      try {
        CancelScope.checkpoint();                          // ensureActive()
      } finally {
        CancelScope.shielded().run(() -> {                 // withContext(NonCancellable)
          Thread.sleep(5);
          released.append("released");
        });
      }
    });
    return released.toString();
  }
  // endregion
}
