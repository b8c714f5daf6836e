package dev.taskgroup.examples;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import java.time.Duration;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The demo the README's first command runs: what taskgroup does, scenario by scenario, with
 * timings. Uses only the public API.
 */
public final class Demo {
  private static final long START = System.nanoTime();

  private Demo() {}

  public static void main(String[] args) throws Exception {
    System.out.println("taskgroup demo (Java " + Runtime.version().feature() + ")");
    seedCase();
    nested();
    failures();
    deadlines();
    crawler();
    supervisor();
    System.out.printf("%n[%6.1f ms] done%n", elapsedMs());
  }

  /** (a) N workers search; the first to find the answer cancels the rest; exit is normal. */
  static void seedCase() throws InterruptedException {
    heading("(a) the seed case: the first worker to find the answer cancels its siblings");
    int workers = 16;
    int answerAt = 11; // the worker that will find it
    AtomicInteger found = new AtomicInteger(-1);
    AtomicInteger stopped = new AtomicInteger();
    TaskGroup search = TaskGroup.named("search");
    long t0 = System.nanoTime();
    search.run(
        () -> {
          for (int i = 0; i < workers; i++) {
            int id = i;
            search.fork(
                () -> {
                  try {
                    // Each worker "searches" for a while; only one finds the answer.
                    Thread.sleep(id == answerAt ? 40 : 10_000);
                    found.set(id);
                    search.cancel("worker " + id + " found the answer");
                  } catch (InterruptedException cancelled) {
                    stopped.incrementAndGet();
                    throw cancelled;
                  }
                });
          }
        });
    System.out.printf(
        "  worker %d found it; %d siblings were cancelled; run() returned normally after %.1f ms%n",
        found.get(), stopped.get(), ms(t0));
    System.out.printf(
        "  cancelCalled=%s cancelCaught=%s reason=\"%s\"%n",
        search.cancelCalled(),
        search.cancelCaught(),
        search.cancelScope().cancelReason().orElse(""));
  }

  /** (b) middle.cancel() from inside inner: inner propagates, middle absorbs, outer goes on. */
  static void nested() throws InterruptedException {
    heading("(b) nested inner / middle / outer: middle.cancel() called from inside inner");
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroup middle = TaskGroup.named("middle");
    TaskGroup inner = TaskGroup.named("inner");
    long t0 = System.nanoTime();
    outer.run(
        () -> {
          middle.run(
              () -> {
                try {
                  inner.run(
                      () -> {
                        inner.fork(() -> Thread.sleep(10_000)); // cancelled with middle
                        middle.cancel("from inside inner");
                        Thread.sleep(10_000);
                      });
                } catch (InterruptedException e) {
                  System.out.println("  inner:  run() threw InterruptedException (" + e + ")");
                  throw e;
                }
              });
          System.out.println("  middle: run() returned normally");
          CancelScope.checkpoint(); // outer is not cancelled: this passes
          System.out.println("  outer:  goes on; a checkpoint passes");
        });
    for (TaskGroup g : new TaskGroup[] {inner, middle, outer}) {
      System.out.printf(
          "  %-8s cancelCalled=%-5s cancelCaught=%s%n",
          g.name() + ":", g.cancelCalled(), g.cancelCaught());
    }
    System.out.printf("  all three exited after %.1f ms%n", ms(t0));
  }

  /** (c) a failing child cancels its siblings; a second failure during cleanup is kept too. */
  @SuppressWarnings("finally") // the cleanup fails on purpose
  static void failures() throws InterruptedException {
    heading("(c) a failure cancels the siblings; every failure is kept");
    TaskGroup group = TaskGroup.named("upload");
    long t0 = System.nanoTime();
    try {
      group.run(
          () -> {
            group.fork(
                () -> {
                  try {
                    Thread.sleep(10_000);
                  } finally {
                    // cancelled by the sibling's failure; its cleanup fails as well
                    throw new IllegalStateException("could not close the upload session");
                  }
                });
            group.fork(() -> Thread.sleep(10_000)); // cancelled quietly
            group.fork(
                () -> {
                  Thread.sleep(20);
                  throw new java.io.IOException("connection reset");
                });
          });
    } catch (TaskGroupException e) {
      System.out.printf("  run() threw TaskGroupException after %.1f ms:%n", ms(t0));
      for (Throwable f : e.failures()) {
        System.out.println("    - " + f);
      }
      System.out.println("  cancelCalled=" + group.cancelCalled() + " (a failure is not a cancel)");
    }
  }

  /** (d) deadlines: moveOnAfter gives up quietly, failAfter throws. */
  static void deadlines() throws Exception {
    heading("(d) deadlines: moveOnAfter and failAfter around slow work");
    long t0 = System.nanoTime();
    String reply =
        CancelScope.moveOnAfter(
            Duration.ofMillis(50),
            () -> {
              Thread.sleep(10_000); // a slow server
              return "reply";
            });
    System.out.printf("  moveOnAfter(50 ms): returned %s after %.1f ms%n", reply, ms(t0));
    long t1 = System.nanoTime();
    try {
      CancelScope.failAfter(Duration.ofMillis(50), () -> slowQuery());
    } catch (TimeoutException e) {
      System.out.printf("  failAfter(50 ms): threw %s after %.1f ms%n", e, ms(t1));
    }
    String fast = CancelScope.failAfter(Duration.ofSeconds(1), () -> "fast answer");
    System.out.println("  failAfter(1 s) around fast work: returned \"" + fast + "\"");
  }

  /** (e) start() a local web site, then crawl it with bounded concurrency until found. */
  static void crawler() throws Exception {
    heading("(e) start() a web server, then a bounded crawler that cancels when it finds the page");
    Crawler.run(8);
  }

  /** (f) supervisor style: COLLECT with a handler keeps serving while some requests fail. */
  static void supervisor() throws InterruptedException {
    heading("(f) a supervisor (FailurePolicy.COLLECT): failures are handled, nobody is cancelled");
    AtomicInteger failed = new AtomicInteger();
    AtomicInteger served = new AtomicInteger();
    TaskGroup server =
        TaskGroup.builder()
            .name("server")
            .failurePolicy(dev.taskgroup.FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  if (failed.incrementAndGet() <= 2) {
                    System.out.println("  handler: request failed: " + f.getMessage());
                  }
                })
            .build();
    long t0 = System.nanoTime();
    server.run(
        () -> {
          for (int request = 0; request < 1_000; request++) {
            int id = request;
            server.fork(
                () -> {
                  if (id % 10 == 7) {
                    throw new IllegalArgumentException("bad request #" + id);
                  }
                  served.incrementAndGet();
                });
          }
        });
    System.out.printf(
        "  %d requests served, %d failed and were handed to the handler; run() returned normally"
            + " after %.1f ms%n",
        served.get(), failed.get(), ms(t0));
  }

  private static String slowQuery() throws InterruptedException {
    TaskGroup parts = TaskGroup.named("query");
    return parts.call(
        () -> {
          var a = parts.fork(() -> sleepThen(10_000, "a"));
          var b = parts.fork(() -> sleepThen(10_000, "b"));
          return a.get() + b.get();
        });
  }

  private static String sleepThen(long millis, String value) throws InterruptedException {
    Thread.sleep(millis);
    return value;
  }

  private static void heading(String title) {
    System.out.printf("%n[%6.1f ms] %s%n", elapsedMs(), title);
  }

  private static double ms(long since) {
    return (System.nanoTime() - since) / 1e6;
  }

  private static double elapsedMs() {
    return ms(START);
  }
}
