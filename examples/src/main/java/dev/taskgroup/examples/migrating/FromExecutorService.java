package dev.taskgroup.examples.migrating;

import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/** Both sides of docs/migrating/from-executor-service.md; both compile and run. */
public final class FromExecutorService {
  private FromExecutorService() {}

  // region executor-before
  static List<String> fetchAllWithExecutor(List<String> urls)
      throws InterruptedException, ExecutionException {
    try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<String>> futures = new ArrayList<>();
      for (String url : urls) {
        futures.add(pool.submit(() -> Slow.fetch(url)));
      }
      List<String> pages = new ArrayList<>();
      for (Future<String> f : futures) {
        pages.add(f.get());   // the first failure throws; the other tasks keep running
      }
      return pages;
    }                         // close() waits for every task, even after a failure
  }
  // endregion

  // region executor-after
  static List<String> fetchAllWithGroup(List<String> urls) throws InterruptedException {
    var group = TaskGroup.named("fetch-all");
    return group.call(() -> {
      List<Task<String>> tasks = new ArrayList<>();
      for (String url : urls) {
        tasks.add(group.fork(() -> Slow.fetch(url)));
      }
      List<String> pages = new ArrayList<>();
      for (Task<String> t : tasks) {
        pages.add(t.get());   // a failure has already cancelled the others
      }
      return pages;
    });                       // and every failure is in the TaskGroupException
  }
  // endregion

  // region invoke-all
  static List<String> fetchAllInOneCall(List<String> urls) throws InterruptedException {
    List<Callable<String>> calls = new ArrayList<>();
    for (String url : urls) {
      calls.add(() -> Slow.fetch(url));
    }
    return TaskGroup.invokeAll(calls);   // like ExecutorService.invokeAll, structured
  }
  // endregion

  // region all-of-before
  static String combineWithFutures() {
    CompletableFuture<String> user = CompletableFuture.supplyAsync(() -> quietly("user"));
    CompletableFuture<String> cart = CompletableFuture.supplyAsync(() -> quietly("cart"));
    return CompletableFuture.allOf(user, cart)
        .thenApply(done -> user.join() + " + " + cart.join())
        .join();   // a failure surfaces as CompletionException; the other future runs on
  }
  // endregion

  // region all-of-after
  static String combineWithGroup() throws InterruptedException {
    var group = TaskGroup.named("checkout");
    return group.call(() -> {
      Task<String> user = group.fork(() -> Slow.fetch("user"));
      Task<String> cart = group.fork(() -> Slow.fetch("cart"));
      return user.get() + " + " + cart.get();   // plain blocking code, no callbacks
    });
  }
  // endregion

  private static String quietly(String what) {
    try {
      return Slow.fetch(what);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
