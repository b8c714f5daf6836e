package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code CancelScope.await} and {@code CancelScope.closeOnCancel}. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class AwaitTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  /** A JDK HttpServer on loopback whose handler blocks until released. */
  static final class BlockingServer implements AutoCloseable {
    final HttpServer server;
    final CountDownLatch entered = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);

    BlockingServer() throws IOException {
      server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
      server.createContext(
          "/slow",
          exchange -> {
            entered.countDown();
            try {
              release.await(30, TimeUnit.SECONDS);
              exchange.sendResponseHeaders(200, -1);
            } catch (InterruptedException | IOException e) {
              // the client went away
            } finally {
              exchange.close();
            }
          });
      server.start();
    }

    URI uri() {
      return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/slow");
    }

    @Override
    public void close() {
      release.countDown();
      server.stop(0);
    }
  }

  @RepeatedTest(3)
  void cancelledAwaitOnHttpClientSendAsyncCancelsTheRequest() throws Exception {
    try (BlockingServer server = new BlockingServer();
        HttpClient client = HttpClient.newHttpClient()) {
      AtomicReference<CompletableFuture<HttpResponse<Void>>> request = new AtomicReference<>();
      TaskGroup group = TaskGroup.named("http");
      long start = System.nanoTime();
      group.run(
          () -> {
            group.fork(
                () -> {
                  server.entered.await();
                  group.cancel();
                });
            request.set(
                client.sendAsync(
                    HttpRequest.newBuilder(server.uri()).build(),
                    HttpResponse.BodyHandlers.discarding()));
            CancelScope.await(request.get());
            throw new AssertionError("await returned without a response");
          });
      long ms = Probes.millis(System.nanoTime() - start);
      System.out.printf("await(sendAsync) cancelled: run took %d ms%n", ms);
      assertThat(group.cancelCaught()).isTrue();
      assertThat(request.get()).isCompletedExceptionally(); // HttpClient: "Request cancelled"
      assertThat(catchThrowable(request.get()::join))
          .hasCauseInstanceOf(CancellationException.class);
      assertThat(server.release.getCount()).as("the handler is still blocked").isEqualTo(1L);
    }
  }

  @Test
  void awaitReturnsTheResultAndReportsAFailureAsExecutionException() throws Exception {
    assertThat(CancelScope.await(CompletableFuture.supplyAsync(() -> "done"))).isEqualTo("done");
    IllegalStateException boom = new IllegalStateException("boom");
    Throwable thrown = catchThrowable(() -> CancelScope.await(CompletableFuture.failedStage(boom)));
    assertThat(thrown).isInstanceOf(ExecutionException.class).hasCause(boom);
  }

  /**
   * A stage that does not interoperate: its {@code toCompletableFuture()} throws, as {@link
   * CompletionStage} allows; every other method is a minimal stage's, completed by {@code source}.
   */
  @SuppressWarnings("unchecked")
  private static <T> CompletionStage<T> notInteroperating(CompletableFuture<T> source) {
    CompletionStage<T> inner = source.minimalCompletionStage();
    return (CompletionStage<T>)
        Proxy.newProxyInstance(
            AwaitTest.class.getClassLoader(),
            new Class<?>[] {CompletionStage.class},
            (proxy, method, args) -> {
              if (method.getName().equals("toCompletableFuture")) {
                throw new UnsupportedOperationException("this stage does not interoperate");
              }
              try {
                return method.invoke(inner, args);
              } catch (InvocationTargetException e) {
                throw e.getCause();
              }
            });
  }

  /** Runs {@code body} on a new virtual thread and returns once that thread waits (parked). */
  private static Thread waitingIn(Body body, AtomicReference<Object> outcome) {
    Thread t =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    body.run();
                    outcome.set("returned");
                  } catch (Throwable e) {
                    outcome.set(e);
                  }
                });
    while (t.getState() != Thread.State.WAITING && t.isAlive()) {
      Thread.onSpinWait(); // the state is what this waits for: no sleep orders anything here
    }
    return t;
  }

  @RepeatedTest(3)
  void aStageThatDoesNotInteroperateIsWaitedForItsResultOrItsFailure() throws Exception {
    CompletableFuture<String> source = new CompletableFuture<>();
    CompletionStage<String> stage = notInteroperating(source);
    assertThat(catchThrowable(stage::toCompletableFuture))
        .isInstanceOf(UnsupportedOperationException.class);
    AtomicReference<String> result = new AtomicReference<>();
    AtomicReference<Object> outcome = new AtomicReference<>();
    Thread waiter = waitingIn(() -> result.set(CancelScope.await(stage)), outcome);
    source.complete("late");
    waiter.join();
    assertThat(outcome.get()).isEqualTo("returned");
    assertThat(result.get()).isEqualTo("late");

    CompletableFuture<String> failing = new CompletableFuture<>();
    IllegalStateException boom = new IllegalStateException("boom");
    Thread failed =
        waitingIn(
            () -> CancelScope.create().run(() -> CancelScope.await(notInteroperating(failing))),
            outcome);
    failing.completeExceptionally(boom);
    failed.join();
    assertThat(outcome.get()).isInstanceOf(ExecutionException.class);
    assertThat(((Throwable) outcome.get())).hasCause(boom);
  }

  @RepeatedTest(3)
  void aCancelEndsTheWaitForAStageThatDoesNotInteroperateAndLeavesTheStageAlone() throws Exception {
    for (CancelScope scope : new CancelScope[] {CancelScope.create(), CancelScope.cooperative()}) {
      CompletableFuture<String> source = new CompletableFuture<>();
      AtomicReference<Object> outcome = new AtomicReference<>();
      Thread waiter =
          waitingIn(() -> scope.run(() -> CancelScope.await(notInteroperating(source))), outcome);
      scope.cancel();
      waiter.join();
      assertThat(outcome.get()).as("%s", scope).isEqualTo("returned");
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(source).isNotDone(); // nothing can cancel it through the stage
    }
  }

  /**
   * A long-lived future awaited again and again, each wait ended by an outside interrupt, keeps
   * nothing per wait, in a cooperative scope as in a plain one: the cooperative wait left one
   * completion callback on the future per await (2 000 after 2 000 waits, freed only when the
   * future completes), and then, for a subclass that overrides equals and hashCode, still one per
   * await. Several threads waiting at once are all woken by the completion.
   */
  @RepeatedTest(3)
  void waitsEndedByOutsideInterruptsLeaveNothingOnTheFuture() throws Exception {
    for (int kind = 0; kind < 4; kind++) {
      boolean cooperative = kind % 2 == 1;
      CompletableFuture<String> longLived =
          kind < 2 ? new CompletableFuture<>() : new EqualToAll<>();
      for (int i = 0; i < 2_000; i++) {
        Thread.currentThread().interrupt(); // someone else's interrupt: the wait throws at once
        Throwable t =
            catchThrowable(
                () ->
                    (cooperative ? CancelScope.cooperative() : CancelScope.create())
                        .run(() -> CancelScope.await(longLived)));
        assertThat(t).isInstanceOf(InterruptedException.class);
      }
      assertThat(longLived.getNumberOfDependents())
          .as(
              "dependents after 2 000 interrupted waits (cooperative: %s, %s)",
              cooperative, longLived.getClass().getSimpleName())
          .isLessThanOrEqualTo(1);
      List<AtomicReference<Object>> outcomes = new java.util.ArrayList<>();
      List<Thread> waiters = new java.util.ArrayList<>();
      for (int w = 0; w < 4; w++) {
        AtomicReference<Object> outcome = new AtomicReference<>();
        outcomes.add(outcome);
        waiters.add(
            waitingIn(
                () ->
                    outcome.set(
                        (cooperative ? CancelScope.cooperative() : CancelScope.create())
                            .call(() -> CancelScope.await(longLived))),
                new AtomicReference<>()));
      }
      longLived.complete("done");
      for (Thread w : waiters) {
        w.join();
      }
      assertThat(outcomes).allSatisfy(o -> assertThat(o.get()).isEqualTo("done"));
    }
  }

  @RepeatedTest(3)
  void anOutsideInterruptThrowsAndLeavesTheStageAlone() throws Exception {
    CompletableFuture<String> never = new CompletableFuture<>();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    CountDownLatch waiting = new CountDownLatch(1);
    Thread waiter =
        Thread.ofVirtual()
            .start(
                () ->
                    thrown.set(
                        catchThrowable(
                            () -> {
                              waiting.countDown();
                              CancelScope.create().run(() -> CancelScope.await(never));
                            })));
    waiting.await();
    waiter.interrupt();
    waiter.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(never).isNotDone();
  }

  @Test
  void awaitInAnAlreadyCancelledScopeCancelsTheStage() throws Exception {
    CompletableFuture<String> never = new CompletableFuture<>();
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          CancelScope.await(never);
        });
    assertThat(scope.cancelCaught()).isTrue();
    assertThat(never).isCancelled();
  }

  @Test
  void closeOnCancelThrowsTheCloseFailureAsItIsFromRegistrationClose() throws Exception {
    IOException closeFailed = new IOException("close failed");
    CancelScope scope = CancelScope.create();
    Throwable thrown =
        catchThrowable(
            () ->
                scope.run(
                    () -> {
                      try (var hook =
                          CancelScope.closeOnCancel(
                              () -> {
                                throw closeFailed;
                              })) {
                        scope.cancel();
                        Thread.sleep(10_000);
                      }
                    }));
    assertThat(thrown).isSameAs(closeFailed);
  }

  @Test
  void closeOnCancelFailureInAGroupIsOneOfItsFailuresUnwrapped() {
    IOException closeFailed = new IOException("close failed");
    TaskGroup group = TaskGroup.named("closer");
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      try (var hook =
                          CancelScope.closeOnCancel(
                              () -> {
                                throw closeFailed;
                              })) {
                        group.cancel();
                        Thread.sleep(10_000);
                      }
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
  }

  /** A future equal to every other of its class, as a careless subclass may be. */
  static final class EqualToAll<T> extends CompletableFuture<T> {
    @Override
    public boolean equals(Object o) {
      return o instanceof EqualToAll;
    }

    @Override
    public int hashCode() {
      return 1;
    }
  }

  /**
   * In a cooperative scope, two distinct futures of a subclass that makes them equal: each await
   * returns when its own future completes. (The cooperative wait shares one completion callback per
   * future, found by equality: the second await found the first future's, and waited for that one
   * to complete.)
   */
  @RepeatedTest(3)
  void aCooperativeAwaitOfAFutureEqualToAnotherWaitsForItsOwn() throws Exception {
    EqualToAll<String> first = new EqualToAll<>();
    EqualToAll<String> second = new EqualToAll<>();
    CountDownLatch firstAwaited = new CountDownLatch(1);
    Thread firstWaiter =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    CancelScope.cooperative()
                        .run(
                            () -> {
                              firstAwaited.countDown();
                              CancelScope.await(first);
                            });
                  } catch (Exception e) {
                    throw new AssertionError(e);
                  }
                });
    firstAwaited.await();
    AtomicReference<String> got = new AtomicReference<>();
    Thread secondWaiter =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    CancelScope.cooperative().run(() -> got.set(CancelScope.await(second)));
                  } catch (Exception e) {
                    throw new AssertionError(e);
                  }
                });
    Probes.awaitTrue(
        "the second await parked",
        java.time.Duration.ofSeconds(10),
        () -> secondWaiter.getState() == Thread.State.WAITING);
    second.complete("second");
    assertThat(secondWaiter.join(java.time.Duration.ofSeconds(10)))
        .as("the second await returned once its own future completed")
        .isTrue();
    assertThat(got).hasValue("second");
    first.complete("first");
    firstWaiter.join();
  }
}
