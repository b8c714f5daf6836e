package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.AwaitTest.BlockingServer;
import dev.taskgroup.Fixtures.ThreadKind;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * An adversarial sweep of blocking calls and cancellation interop, and of the diagnostics: {@code
 * closeOnCancel} / {@code onCancel} registered late, twice, on a resource closed first, with
 * actions that throw, block or cancel again; {@code CancelScope.await} against futures completed
 * exceptionally, cancelled by others, never completed under a deadline, or completed while the
 * cancel lands; {@code Task.toCompletableFuture()} driven from outside; real H2 queries and
 * connections and the JDK HTTP client under deadlines and shields; children that swallow the
 * interrupt; the JFR events' fields; and {@code TaskTree} captured while tasks come and go.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InteropSweepTest {
  @TempDir Path dir;

  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  // ---- closeOnCancel / onCancel -----------------------------------------------------------

  /**
   * A registration made when the scope already is cancelled runs the action before {@code
   * closeOnCancel} returns (CancelScope.onCancel javadoc: "at once, before this method returns");
   * the read on the closed socket then throws a SocketException, which is the action's effect, so
   * the scope absorbs it. Closest: Trio's "checkpoint in an already-cancelled scope raises at
   * once".
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void closeOnCancelRegisteredAfterTheCancelClosesBeforeReturning(ThreadKind kind)
      throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
        Socket silent = server.accept()) {
      AtomicBoolean closedOnReturn = new AtomicBoolean();
      AtomicReference<Throwable> readThrew = new AtomicReference<>();
      CancelScope scope = CancelScope.create();
      Probes.onThread(
          kind,
          () ->
              scope.run(
                  () -> {
                    scope.cancel();
                    Thread.interrupted(); // a body that swallowed the first delivery
                    try (var hook = CancelScope.closeOnCancel(client)) {
                      closedOnReturn.set(client.isClosed());
                      try {
                        client.getInputStream().read();
                      } catch (IOException e) {
                        readThrew.set(e);
                        throw e;
                      }
                    }
                  }));
      assertThat(closedOnReturn).as("closed before closeOnCancel returned").isTrue();
      assertThat(readThrew.get()).isInstanceOf(SocketException.class);
      assertThat(scope.cancelCaught()).isTrue();
    }
  }

  /**
   * Two registrations of the same resource both run (each registration is one action, run once),
   * and a resource the user closed first is closed again by the hook without harm: {@code
   * Socket.close()} is idempotent, and nothing is reported.
   */
  @RepeatedTest(5)
  void closeOnCancelTwiceAndOnAResourceClosedFirst() throws Exception {
    AtomicInteger closes = new AtomicInteger();
    AutoCloseable counted = closes::incrementAndGet;
    Socket alreadyClosed = new Socket();
    alreadyClosed.close();
    TaskGroup group = TaskGroup.named("twice");
    group.run(
        () -> {
          try (var a = CancelScope.closeOnCancel(counted);
              var b = CancelScope.closeOnCancel(counted);
              var c = CancelScope.closeOnCancel(alreadyClosed)) {
            group.cancel();
            CancelScope.checkpoint();
          }
        });
    assertThat(group.cancelCaught()).isTrue();
    assertThat(closes).hasValue(2);
  }

  /**
   * An action that cancels its own scope again and then an outer scope: the second cancel of the
   * same scope has no effect, the outer one propagates (nothing deadlocks, nothing recurses), and
   * the cancellation is absorbed by the outermost cancelled scope (CancelScope javadoc,
   * "Catching"). Closest: Trio test_cancel_scope_nesting (cancel of outer from inside).
   */
  @RepeatedTest(10)
  void actionThatCancelsAgainAndCancelsTheOuterScope() throws Exception {
    CancelScope outer = CancelScope.create();
    CancelScope inner = CancelScope.create();
    AtomicInteger ran = new AtomicInteger();
    AtomicReference<Throwable> inInner = new AtomicReference<>();
    outer.run(
        () -> {
          inner.run(
              () -> {
                try (var hook =
                    CancelScope.onCancel(
                        () -> {
                          ran.incrementAndGet();
                          inner.cancel(); // recursive: no effect
                          outer.cancel("from the hook");
                        })) {
                  inner.cancel();
                  try {
                    new CountDownLatch(1).await();
                  } catch (InterruptedException e) {
                    inInner.set(e);
                    throw e;
                  }
                }
              });
          throw new AssertionError("the outer cancellation must reach here");
        });
    assertThat(ran).hasValue(1);
    assertThat(inInner.get()).isInstanceOf(InterruptedException.class);
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(outer.cancelReason()).contains("from the hook");
    assertThat(inner.cancelCaught()).as("outer was visible at inner's exit").isFalse();
  }

  /**
   * An action that blocks until released keeps the group open (the group waits for it, as for a
   * member) but does not keep the cancelled thread from ending; its later failure is still one of
   * the group's failures, never lost (TaskGroup javadoc: "Failures are never lost").
   */
  @RepeatedTest(5)
  void actionThatBlocksThenThrowsIsStillAFailureOfTheGroup() throws Exception {
    CountDownLatch inAction = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    IllegalStateException boom = new IllegalStateException("hook failed late");
    TaskGroup group = TaskGroup.named("slow-hook");
    AtomicBoolean bodyEnded = new AtomicBoolean();
    Thread releaser =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    inAction.await();
                    Probes.awaitTrue("body ended", Duration.ofSeconds(10), bodyEnded::get);
                    release.countDown();
                  } catch (InterruptedException e) {
                    release.countDown();
                  }
                });
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      try {
                        CancelScope.onCancel(
                            () -> {
                              inAction.countDown();
                              release.await();
                              throw boom;
                            });
                        group.cancel();
                        new CountDownLatch(1).await();
                      } finally {
                        bodyEnded.set(true);
                      }
                    }));
    releaser.join();
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
  }

  /**
   * A registration the body leaves open on the group's own scope, and a cancel from another thread
   * that lands while the group is ending: either the action runs as a member (the group waits for
   * it and reports what it threw) or it does not run at all. It must never run after {@code run}
   * returned with its failure dropped (TaskGroup javadoc: "no thread outlives the group", "Failures
   * are never lost").
   */
  @RepeatedTest(50)
  void openRegistrationFiredWhileTheGroupEndsIsAMemberOrNothing() throws Exception {
    AtomicInteger ranAfterReturn = new AtomicInteger();
    List<AtomicBoolean> ranForNormalReturns = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      TaskGroup group = TaskGroup.named("ending");
      AtomicBoolean bodyEnded = new AtomicBoolean();
      AtomicBoolean runReturned = new AtomicBoolean();
      AtomicBoolean actionRan = new AtomicBoolean();
      IllegalStateException boom = new IllegalStateException("hook of an ending group");
      Thread canceller =
          Thread.ofPlatform()
              .start(
                  () -> {
                    while (!bodyEnded.get()) {
                      Thread.onSpinWait();
                    }
                    group.cancel();
                  });
      Throwable thrown =
          catchThrowable(
              () ->
                  group.run(
                      () -> {
                        CancelScope.onCancel(
                            () -> {
                              actionRan.set(true);
                              if (runReturned.get()) {
                                ranAfterReturn.incrementAndGet();
                              }
                              throw boom;
                            });
                        bodyEnded.set(true);
                      }));
      runReturned.set(true);
      canceller.join();
      if (thrown == null) {
        ranForNormalReturns.add(actionRan); // it must never run: looked at once, below
      } else {
        assertThat(thrown).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) thrown).failures()).containsExactly(boom);
      }
    }
    // A bounded look (not ordering anything): an action started late would have run by now.
    Thread.sleep(100);
    assertThat(ranAfterReturn).as("actions run after the group's run returned").hasValue(0);
    assertThat(ranForNormalReturns.stream().filter(AtomicBoolean::get).count())
        .as("actions run, their failure dropped, by groups that returned normally")
        .isZero();
  }

  // ---- TaskGroup.start ----------------------------------------------------------------------

  /**
   * An interrupt from someone else that reaches the caller of {@code start} just after the work
   * signalled: {@code start} returns the value (the work had started), so it must leave the
   * interrupt status set, as {@code FutureTask.get} does for a result that is ready (it looks at
   * the state before the interrupt). Closest: OpenJDK FutureTask awaitDone; CancelScope javadoc "an
   * interrupt from someone else ... is never lost".
   */
  @RepeatedTest(50)
  void startThatSignalsAsTheCallerIsInterruptedKeepsTheInterrupt() throws Exception {
    int lost = 0;
    for (int i = 0; i < 20; i++) {
      TaskGroup group = TaskGroup.named("start-interrupt");
      AtomicReference<Integer> value = new AtomicReference<>();
      AtomicBoolean statusAfterStart = new AtomicBoolean();
      AtomicReference<Throwable> problem = new AtomicReference<>();
      Thread owner =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      group.run(
                          () -> {
                            Thread me = Thread.currentThread();
                            AtomicBoolean sent = new AtomicBoolean();
                            value.set(
                                group.start(
                                    signal -> {
                                      signal.started(42);
                                      me.interrupt();
                                      sent.set(true);
                                    }));
                            while (!sent.get()) {
                              Thread.onSpinWait(); // the interrupt was sent before we look
                            }
                            statusAfterStart.set(Thread.interrupted());
                          });
                    } catch (Throwable e) {
                      problem.set(e);
                    }
                  });
      owner.join();
      assertThat(problem.get()).isNull();
      assertThat(value.get()).isEqualTo(42);
      if (!statusAfterStart.get()) {
        lost++;
      }
    }
    assertThat(lost).as("outside interrupts lost by start() out of 20").isZero();
  }

  /**
   * An action that closes its own registration (cleanup code that closes "every registration it
   * made", say): {@code close()} from inside the running action must return (Registration.close:
   * "after close returns, the action will not start"; it has started), not wait for the action to
   * end, which is waiting for itself. The group must end.
   */
  @RepeatedTest(5)
  void actionThatClosesItsOwnRegistrationDoesNotDeadlock() throws Exception {
    TaskGroup group = TaskGroup.named("self-close");
    AtomicReference<CancelScope.Registration> reg = new AtomicReference<>();
    AtomicBoolean closedFromAction = new AtomicBoolean();
    Probes.onThread(
        ThreadKind.VIRTUAL,
        Duration.ofSeconds(5),
        () ->
            group.run(
                () -> {
                  CountDownLatch registered = new CountDownLatch(1);
                  reg.set(
                      CancelScope.onCancel(
                          () -> {
                            registered.await();
                            reg.get().close();
                            closedFromAction.set(true);
                          }));
                  registered.countDown();
                  group.cancel();
                  CancelScope.checkpoint();
                }));
    assertThat(closedFromAction).isTrue();
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * A long H2 query in a cooperative scope under a deadline: no interrupt is ever delivered there,
   * but the {@code onCancel(statement::cancel)} action still runs (cooperative javadoc: "onCancel
   * actions still run"), and the statement's SQLException is the cancellation, so the scope absorbs
   * it and the thread's interrupt status stays clear.
   */
  @RepeatedTest(3)
  void h2QueryInACooperativeScopeEndsThroughItsHookAtTheDeadline() throws Exception {
    try (Connection db = H2.memory("interop-coop");
        Statement statement = db.createStatement()) {
      CancelScope scope = cooperativeWithTimeout(Duration.ofMillis(150));
      AtomicBoolean interruptedInside = new AtomicBoolean();
      scope.run(
          () -> {
            try (var hook = CancelScope.onCancel(statement::cancel)) {
              statement.executeQuery(H2.LONG_QUERY);
            } finally {
              interruptedInside.set(Thread.currentThread().isInterrupted());
            }
          });
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(interruptedInside).as("a cooperative scope is never interrupted").isFalse();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  // ---- CancelScope.await ------------------------------------------------------------------

  /**
   * {@code await} of a stage completed exceptionally throws ExecutionException with the stage's
   * exception as cause (the CompletionException wrapper of a dependent stage is unwrapped as {@code
   * CompletableFuture.get} does), and of a stage someone else cancelled throws
   * CancellationException (CancelScope.await javadoc).
   */
  @Test
  void awaitReportsExceptionalAndCancelledStagesAsTheJavadocSays() throws Exception {
    IllegalStateException boom = new IllegalStateException("boom");
    CompletableFuture<String> failed = new CompletableFuture<>();
    CompletableFuture<Integer> dependent = failed.thenApply(String::length);
    failed.completeExceptionally(boom);
    assertThat(catchThrowable(() -> CancelScope.await(dependent)))
        .isInstanceOf(ExecutionException.class)
        .hasCause(boom);
    CompletableFuture<String> pending = new CompletableFuture<>();
    Thread canceller =
        Thread.ofVirtual()
            .start(
                () -> {
                  Probes.awaitTrue(
                      "await registered",
                      Duration.ofSeconds(10),
                      () -> pending.getNumberOfDependents() > 0);
                  pending.cancel(false);
                });
    assertThat(catchThrowable(() -> CancelScope.await(pending)))
        .isInstanceOf(CancellationException.class);
    canceller.join();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * A deadline ends {@code await} of a future that never completes: the scope absorbs the
   * cancellation, the future is cancelled (CancelScope.await javadoc), in a plain and in a
   * cooperative scope (the cooperative javadoc: "the cancellation is still seen by ... await"), and
   * in a shield inside a cancelled group, where only the shield's own deadline ends it.
   */
  @RepeatedTest(5)
  void aDeadlineEndsAwaitOfANeverCompletedFuturePlainCooperativeAndShielded() throws Exception {
    for (CancelScope scope :
        List.of(
            CancelScope.withTimeout(Duration.ofMillis(30)),
            cooperativeWithTimeout(Duration.ofMillis(30)))) {
      CompletableFuture<String> never = new CompletableFuture<>();
      long start = System.nanoTime();
      String r = scope.call(() -> CancelScope.await(never));
      assertThat(r).isNull();
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(never).isCancelled();
      assertThat(Probes.millis(System.nanoTime() - start)).isGreaterThanOrEqualTo(25L);
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
    TaskGroup group = TaskGroup.named("shielded-await");
    CompletableFuture<String> never = new CompletableFuture<>();
    CancelScope shield = CancelScope.shielded();
    AtomicBoolean stillPendingAfterGroupCancel = new AtomicBoolean();
    group.run(
        () -> {
          group.cancel();
          shield.setTimeout(Duration.ofMillis(100));
          shield.run(
              () -> {
                stillPendingAfterGroupCancel.set(!never.isDone());
                CancelScope.await(never);
              });
        });
    assertThat(stillPendingAfterGroupCancel).isTrue();
    assertThat(shield.cancelCaught()).isTrue();
    assertThat(never).isCancelled();
    assertThat(group.cancelCaught()).isTrue();
  }

  private static CancelScope cooperativeWithTimeout(Duration timeout) {
    CancelScope s = CancelScope.cooperative();
    s.setTimeout(timeout);
    return s;
  }

  /**
   * A future completed by another thread at the moment the waiting scope is cancelled: every run
   * ends, quickly; when {@code await} returns, it returns the completed value; when it throws, it
   * throws the cancellation ({@code InterruptedException}) and the future is done (completed by the
   * completer or cancelled by the await), never left pending; the interrupt never survives the
   * scope. Closest: CPython test_asyncio test_wait_for_race_condition / Kotlin "cancelled await of
   * a completed deferred" races. Randomised delay; the seed is printed.
   */
  @RepeatedTest(30)
  void awaitRacingCompletionAndCancelNeverLosesOrHangs() throws Exception {
    long seed = Probes.seed("interop.await.seed", "awaitRacingCompletionAndCancel");
    Random random = new Random(seed);
    int returned = 0;
    int cancelled = 0;
    for (int i = 0; i < 200; i++) {
      CompletableFuture<Integer> f = new CompletableFuture<>();
      CancelScope scope = CancelScope.create();
      CountDownLatch go = new CountDownLatch(1);
      int spinA = random.nextInt(2_000);
      int spinB = random.nextInt(2_000);
      int value = i;
      Thread completer =
          Thread.ofVirtual()
              .start(
                  () -> {
                    awaitQuietly(go);
                    spin(spinA);
                    f.complete(value);
                  });
      Thread canceller =
          Thread.ofVirtual()
              .start(
                  () -> {
                    awaitQuietly(go);
                    spin(spinB);
                    scope.cancel();
                  });
      Integer r =
          scope.call(
              () -> {
                go.countDown();
                return CancelScope.await(f);
              });
      completer.join();
      canceller.join();
      assertThat(Thread.currentThread().isInterrupted()).as("seed %d", seed).isFalse();
      assertThat(f).as("seed %d", seed).isDone();
      if (r != null) {
        assertThat(r).isEqualTo(value);
        returned++;
      } else {
        assertThat(scope.cancelCaught()).as("seed %d", seed).isTrue();
        cancelled++;
      }
    }
    System.out.printf("await race: %d returned, %d cancelled%n", returned, cancelled);
  }

  private static void spin(int n) {
    for (int i = 0; i < n; i++) {
      Thread.onSpinWait();
    }
  }

  private static void awaitQuietly(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ---- Task.toCompletableFuture -----------------------------------------------------------

  /**
   * Completing the task's future from outside (normally or exceptionally, even with a
   * CancellationException) does not affect the task (Task.toCompletableFuture javadoc); the group
   * still reports the task's own failure.
   */
  @RepeatedTest(3)
  void completingTheFutureFromOutsideNeverAffectsTheTaskOrItsFailure() throws Exception {
    // COLLECT: the failing sibling must not cancel the succeeding one.
    TaskGroup group =
        TaskGroup.builder().name("outside-complete").failurePolicy(FailurePolicy.COLLECT).build();
    CountDownLatch go = new CountDownLatch(1);
    IllegalStateException real = new IllegalStateException("the task's own failure");
    AtomicReference<Task<String>> failing = new AtomicReference<>();
    AtomicReference<Task<String>> succeeding = new AtomicReference<>();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      succeeding.set(
                          group.fork(
                              () -> {
                                go.await();
                                return "real";
                              }));
                      failing.set(
                          group.fork(
                              () -> {
                                go.await();
                                throw real;
                              }));
                      Thread outsider =
                          Thread.ofPlatform()
                              .start(
                                  () -> {
                                    succeeding
                                        .get()
                                        .toCompletableFuture()
                                        .completeExceptionally(new CancellationException("fake"));
                                    failing.get().toCompletableFuture().complete("fake");
                                  });
                      outsider.join();
                      go.countDown();
                    }));
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(real);
    assertThat(succeeding.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(succeeding.get().resultNow()).isEqualTo("real");
    assertThat(failing.get().state()).isEqualTo(Future.State.FAILED);
  }

  /**
   * {@code toCompletableFuture()} called on many threads while the task completes or is cancelled:
   * every call returns the same future, and it always ends in the task's outcome (never left
   * pending). Randomised; the seed is printed.
   */
  @RepeatedTest(20)
  void theFutureIsTheSameAndAlwaysCompletesWhenMadeWhileTheTaskEnds() throws Exception {
    long seed = Probes.seed("interop.future.seed", "futureMadeWhileTheTaskEnds");
    Random random = new Random(seed);
    for (int round = 0; round < 50; round++) {
      boolean cancelIt = random.nextBoolean();
      int spin = random.nextInt(3_000);
      TaskGroup group = TaskGroup.create();
      List<CompletableFuture<Integer>> seen = new ArrayList<>();
      AtomicReference<Task<Integer>> task = new AtomicReference<>();
      group.run(
          () -> {
            CountDownLatch go = new CountDownLatch(1);
            task.set(
                group.fork(
                    () -> {
                      go.await();
                      spin(spin);
                      return 7;
                    }));
            List<Task<CompletableFuture<Integer>>> makers = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
              makers.add(
                  group.fork(
                      () -> {
                        go.await();
                        return task.get().toCompletableFuture();
                      }));
            }
            go.countDown();
            if (cancelIt) {
              spin(spin);
              task.get().cancel(true);
            }
            for (Task<CompletableFuture<Integer>> m : makers) {
              seen.add(m.get());
            }
          });
      CompletableFuture<Integer> f = task.get().toCompletableFuture();
      assertThat(seen).as("seed %d", seed).allSatisfy(s -> assertThat(s).isSameAs(f));
      assertThat(f).as("seed %d", seed).isDone();
      if (task.get().state() == Future.State.CANCELLED) {
        assertThat(f).as("seed %d", seed).isCancelled();
      } else {
        assertThat(f.getNow(-1)).as("seed %d", seed).isEqualTo(7);
      }
    }
  }

  /**
   * A task that fails with a CancellationException of its own (nothing cancelled it): its future's
   * {@code join()} and {@code get()} report a failure, not a cancellation (Task.toCompletableFuture
   * javadoc).
   */
  @Test
  void aTasksOwnCancellationExceptionIsAFailureOfItsFuture() throws Exception {
    TaskGroup group = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    CancellationException own = new CancellationException("thrown by the work");
    AtomicReference<Task<String>> task = new AtomicReference<>();
    catchThrowable(
        () ->
            group.run(
                () ->
                    task.set(
                        group.fork(
                            () -> {
                              throw own;
                            }))));
    CompletableFuture<String> f = task.get().toCompletableFuture();
    assertThat(f.isCancelled()).isFalse();
    assertThat(catchThrowable(f::get)).isInstanceOf(ExecutionException.class).hasCause(own);
    assertThat(catchThrowable(f::join)).isInstanceOf(CompletionException.class).hasCause(own);
  }

  // ---- H2 ---------------------------------------------------------------------------------

  /**
   * A long H2 query under a deadline (not {@code cancel()}), with {@code onCancel(statement::
   * cancel)}: it ends in milliseconds as a cancellation, the scope absorbs it, and the connection
   * stays usable (docs/cancellation.md, JDBC row with the remedy).
   */
  @RepeatedTest(3)
  void h2QueryUnderADeadlineEndsThroughStatementCancelAndTheConnectionStaysUsable()
      throws Exception {
    try (Connection db = H2.memory("interop-deadline");
        Statement statement = db.createStatement()) {
      CancelScope scope = CancelScope.withTimeout(Duration.ofMillis(200));
      long start = System.nanoTime();
      scope.run(
          () -> {
            try (var hook = CancelScope.onCancel(statement::cancel)) {
              statement.executeQuery(H2.LONG_QUERY);
            }
          });
      long ms = Probes.millis(System.nanoTime() - start);
      assertThat(scope.cancelCaught()).isTrue();
      assertThat(ms).isLessThan(10_000L);
      try (ResultSet r = db.createStatement().executeQuery("SELECT 41 + 1")) {
        r.next();
        assertThat(r.getInt(1)).isEqualTo(42);
      }
    }
  }

  /**
   * A query inside a shield in a cancelled group: the group's cancel does not fire the hook
   * registered inside the shield (CancelScope.onCancel: "when the calling thread's innermost scope
   * becomes effectively cancelled"; a shield keeps it from being so), the query keeps running; then
   * the shield's own deadline fires it and the query ends as the shield's cancellation.
   */
  @RepeatedTest(3)
  void h2QueryInAShieldIgnoresTheGroupsCancelUntilTheShieldsDeadline() throws Exception {
    try (Connection db = H2.memory("interop-shield");
        Connection observer = H2.memory("interop-shield");
        Statement statement = db.createStatement()) {
      TaskGroup group = TaskGroup.named("shielded-query");
      CancelScope shield = CancelScope.shielded();
      AtomicInteger hookRuns = new AtomicInteger();
      AtomicBoolean ranWhileGroupCancelledOnly = new AtomicBoolean();
      group.run(
          () -> {
            group.fork(
                () -> {
                  H2.awaitLongQueryRunning(observer);
                  group.cancel();
                  // a bounded look: the hook must not run for the group's cancel
                  long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200);
                  while (System.nanoTime() - until < 0L && hookRuns.get() == 0) {
                    Thread.onSpinWait();
                  }
                  ranWhileGroupCancelledOnly.set(hookRuns.get() != 0);
                  shield.setDeadline(Instant.now());
                  return null;
                });
            shield.run(
                () -> {
                  try (var hook =
                      CancelScope.onCancel(
                          () -> {
                            hookRuns.incrementAndGet();
                            statement.cancel();
                          })) {
                    statement.executeQuery(H2.LONG_QUERY);
                  }
                });
          });
      assertThat(ranWhileGroupCancelledOnly).isFalse();
      assertThat(hookRuns).hasValue(1);
      assertThat(shield.cancelCaught()).isTrue();
      assertThat(group.cancelCaught()).isTrue();
    }
  }

  /**
   * {@code closeOnCancel(connection)} on an H2 connection running a long query: closing the
   * connection from the hook's thread ends the query, and the SQLException it raises is the
   * cancellation (the action's effect), so the group returns normally.
   */
  @RepeatedTest(3)
  void h2ConnectionClosedOnCancelEndsTheQueryAsACancellation() throws Exception {
    try (Connection observer = H2.memory("interop-close")) {
      Connection db = H2.memory("interop-close");
      TaskGroup group = TaskGroup.named("close-connection");
      AtomicReference<Throwable> seen = new AtomicReference<>();
      group.run(
          () -> {
            group.fork(
                () -> {
                  H2.awaitLongQueryRunning(observer);
                  group.cancel();
                  return null;
                });
            try (var hook = CancelScope.closeOnCancel(db);
                Statement st = db.createStatement()) {
              st.executeQuery(H2.LONG_QUERY);
            } catch (SQLException e) {
              seen.set(e);
              throw e;
            }
          });
      assertThat(group.cancelCaught()).isTrue();
      assertThat(seen.get()).isInstanceOf(SQLException.class);
      assertThat(db.isClosed()).isTrue();
    }
  }

  // ---- HttpClient -------------------------------------------------------------------------

  /**
   * {@code HttpClient.send} inside a shield in a cancelled group is not interrupted by the group;
   * the shield's deadline interrupts it (docs/cancellation.md: send ends on an interrupt), and
   * {@code await(sendAsync)} in a cooperative scope, where no interrupt is ever delivered, still
   * ends at the deadline and cancels the request.
   */
  @RepeatedTest(3)
  void httpSendInAShieldAndSendAsyncInACooperativeScopeEndAtTheirDeadlines() throws Exception {
    try (BlockingServer server = new BlockingServer();
        HttpClient client = HttpClient.newHttpClient()) {
      HttpRequest request = HttpRequest.newBuilder(server.uri()).build();
      TaskGroup group = TaskGroup.named("http-shield");
      CancelScope shield = CancelScope.shielded();
      AtomicReference<Throwable> sendThrew = new AtomicReference<>();
      group.run(
          () -> {
            group.cancel();
            shield.setTimeout(Duration.ofMillis(150));
            shield.run(
                () -> {
                  try {
                    client.send(request, HttpResponse.BodyHandlers.discarding());
                  } catch (InterruptedException e) {
                    sendThrew.set(e);
                    throw e;
                  }
                });
          });
      assertThat(sendThrew.get()).isInstanceOf(InterruptedException.class);
      assertThat(shield.cancelCaught()).isTrue();
      assertThat(group.cancelCaught()).isTrue();

      CancelScope coop = cooperativeWithTimeout(Duration.ofMillis(100));
      AtomicReference<CompletableFuture<HttpResponse<Void>>> pending = new AtomicReference<>();
      coop.run(
          () -> {
            pending.set(client.sendAsync(request, HttpResponse.BodyHandlers.discarding()));
            CancelScope.await(pending.get());
          });
      assertThat(coop.cancelCaught()).isTrue();
      assertThat(pending.get()).isCompletedExceptionally();
      assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }
  }

  // ---- swallowing children ------------------------------------------------------------------

  /**
   * A child that swallows the interrupt in a loop is interrupted again each time it blocks
   * (level-triggered delivery: Task javadoc "keeps being interrupted if it swallows"), and when it
   * finally throws a failure of its own, that failure is the group's, exactly once, whatever the
   * cancellation. Closest: Trio "cancellation is level-triggered" / test_cancel_edge_cases.
   */
  @RepeatedTest(10)
  void swallowerThatFailsAfterSwallowingIsReportedOnce() throws Exception {
    IllegalStateException late = new IllegalStateException("failed after the cancel");
    TaskGroup group = TaskGroup.named("swallower");
    CountDownLatch entered = new CountDownLatch(1);
    AtomicInteger swallowed = new AtomicInteger();
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          "swallowing",
                          () -> {
                            entered.countDown();
                            while (swallowed.get() < 5) {
                              try {
                                new CountDownLatch(1).await();
                              } catch (InterruptedException e) {
                                swallowed.incrementAndGet();
                              }
                            }
                            throw late;
                          });
                      entered.await();
                      group.cancel();
                    }));
    assertThat(swallowed).hasValue(5);
    assertThat(thrown).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(late);
  }

  /**
   * A swallowing child shows in the task tree as cancelled, on its own thread, with its
   * re-deliveries counted and the group's reason; the stack of that thread (what a warning or a
   * thread dump names) is in the swallowing loop.
   */
  @RepeatedTest(3)
  void swallowerInTheTreeIsCancelledWithRedeliveriesAndTheReason() throws Exception {
    TaskGroup group = TaskGroup.named("tree-swallow");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    AtomicReference<Thread> childThread = new AtomicReference<>();
    AtomicReference<String> tree = new AtomicReference<>();
    AtomicReference<String> stack = new AtomicReference<>();
    group.run(
        () -> {
          group.fork(
              "swallow-me",
              () -> {
                childThread.set(Thread.currentThread());
                entered.countDown();
                swallowUntil(stop);
                return null;
              });
          entered.await();
          group.cancel("tree reason");
          Thread inspector =
              Thread.ofVirtual()
                  .start(
                      () -> {
                        Probes.awaitTrue(
                            "two re-deliveries shown",
                            Duration.ofSeconds(10),
                            () ->
                                TaskTree.capture().format().matches("(?s).*redeliveries=[2-9].*"));
                        tree.set(TaskTree.capture().format());
                        stack.set(java.util.Arrays.toString(childThread.get().getStackTrace()));
                        stop.countDown();
                      });
          inspector.join();
        });
    String line =
        tree.get().lines().filter(l -> l.contains("task 'swallow-me'")).findFirst().orElseThrow();
    assertThat(line)
        .contains("cancelled")
        .contains("#" + childThread.get().threadId())
        .containsPattern("redeliveries=\\d+")
        .contains("tree reason");
    assertThat(stack.get()).contains("InteropSweepTest.swallowUntil");
  }

  private static void swallowUntil(CountDownLatch stop) {
    while (stop.getCount() > 0) {
      try {
        stop.await();
      } catch (InterruptedException swallowed) {
        // the mistake under test
      }
    }
  }

  // ---- JFR ----------------------------------------------------------------------------------

  /**
   * The Cancel, DeadlineExpired and CancelHook events carry what their descriptions promise: a
   * deadline's Cancel event names the scope and a deadline reason and is committed on the thread
   * that cancelled it (the timer, not the scope's thread); Task.cancel's event names the task; a
   * hook that throws is recorded as "failed"; a group whose owner was interrupted ends
   * "interrupted".
   */
  @RepeatedTest(2)
  void jfrEventsCarryTheDocumentedFields() throws Exception {
    Path file = dir.resolve("interop.jfr");
    AtomicLong scopeThread = new AtomicLong();
    try (Recording r = new Recording()) {
      for (String name :
          List.of("GroupEnd", "Cancel", "DeadlineExpired", "Redelivery", "CancelHook")) {
        r.enable("dev.taskgroup." + name).withoutThreshold();
      }
      r.start();
      // The deadline is set only once the scope's thread waits: a deadline already due when the
      // scope starts is fired by the scope's own thread, which would then be the event's thread
      // (a 100 ms deadline set up front was, once, on a busy CI).
      CancelScope timed = CancelScope.create();
      AtomicReference<Thread> scopeOwner = new AtomicReference<>();
      CountDownLatch inScope = new CountDownLatch(1);
      Thread setter =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      inScope.await();
                      Probes.awaitWaiting(scopeOwner.get(), Duration.ofSeconds(10));
                    } catch (InterruptedException e) {
                      return;
                    }
                    timed.setTimeout(Duration.ofMillis(1));
                  });
      timed.run(
          () -> {
            scopeOwner.set(Thread.currentThread());
            scopeThread.set(Thread.currentThread().threadId());
            inScope.countDown();
            new CountDownLatch(1).await();
          });
      setter.join();
      assertThat(timed.cancelCaught()).isTrue();
      TaskGroup tasks = TaskGroup.named("jfr-task-cancel");
      tasks.run(
          () -> {
            Task<Void> t = tasks.fork("jfr-victim", () -> Thread.sleep(60_000));
            t.cancel(true);
          });
      CancelScope hooked = CancelScope.create();
      Throwable hookFailure =
          catchThrowable(
              () ->
                  hooked.run(
                      () -> {
                        try (var reg =
                            CancelScope.onCancel(
                                () -> {
                                  throw new IOException("hook broke");
                                })) {
                          hooked.cancel();
                        }
                      }));
      assertThat(hookFailure).isInstanceOf(IOException.class);
      TaskGroup interrupted = TaskGroup.named("jfr-interrupted");
      Thread owner =
          Thread.ofPlatform()
              .start(
                  () ->
                      catchThrowable(
                          () ->
                              interrupted.run(
                                  () -> {
                                    Thread.currentThread().interrupt();
                                    new CountDownLatch(1).await();
                                  })));
      owner.join();
      r.stop();
      r.dump(file);
    }
    Map<String, List<RecordedEvent>> events =
        RecordingFile.readAllEvents(file).stream()
            .filter(e -> e.getEventType().getName().startsWith("dev.taskgroup."))
            .collect(Collectors.groupingBy(e -> e.getEventType().getName()));
    RecordedEvent deadlineCancel =
        events.get("dev.taskgroup.Cancel").stream()
            .filter(e -> e.getString("reason").equals("deadline expired"))
            .findFirst()
            .orElseThrow();
    assertThat(deadlineCancel.getString("scope")).isEqualTo("cancel scope");
    assertThat(deadlineCancel.getThread().getJavaThreadId()).isNotEqualTo(scopeThread.get());
    assertThat(events.get("dev.taskgroup.DeadlineExpired")).hasSize(1);
    RecordedEvent taskCancel =
        events.get("dev.taskgroup.Cancel").stream()
            .filter(e -> e.getString("scope").contains("jfr-victim"))
            .findFirst()
            .orElseThrow();
    assertThat(taskCancel.getString("scope")).startsWith("task 'jfr-victim'");
    assertThat(taskCancel.getThread().getJavaThreadId())
        .isEqualTo(Thread.currentThread().threadId());
    assertThat(events.get("dev.taskgroup.CancelHook"))
        .extracting(e -> e.getString("outcome"))
        .containsExactly("failed");
    Map<String, String> outcomes =
        events.get("dev.taskgroup.GroupEnd").stream()
            .collect(
                Collectors.toMap(
                    e -> e.getString("name"), e -> e.getString("outcome"), (a, b) -> a));
    assertThat(outcomes)
        .containsEntry("jfr-task-cancel", "completed")
        .containsEntry("jfr-interrupted", "interrupted");
  }

  // ---- TaskTree -----------------------------------------------------------------------------

  /**
   * TaskTree captured over and over while a group forks and finishes children as fast as it can,
   * some cancelled, in nested scopes: no capture throws or hangs, its text and JSON stay
   * well-formed, and it never shows a finished node ("a capture leaves finished nodes out") nor a
   * task with no group above it.
   */
  @RepeatedTest(5)
  void taskTreeCapturedWhileTasksStartAndFinish() throws Exception {
    TaskGroup group = TaskGroup.named("churn");
    AtomicBoolean stop = new AtomicBoolean();
    AtomicInteger captures = new AtomicInteger();
    AtomicReference<Throwable> problem = new AtomicReference<>();
    List<String> doneLines = new java.util.concurrent.CopyOnWriteArrayList<>();
    Thread capturer =
        Thread.ofPlatform()
            .start(
                () -> {
                  while (!stop.get()) {
                    try {
                      TaskTree t = TaskTree.capture();
                      String text = t.format();
                      String json = t.toJson();
                      if (!json.startsWith("{\"roots\":[") || !json.endsWith("]}")) {
                        throw new AssertionError("malformed JSON: " + json);
                      }
                      text.lines()
                          .filter(l -> l.contains("'churn") || l.contains("churn-"))
                          .filter(l -> l.contains(" done"))
                          .forEach(doneLines::add);
                      captures.incrementAndGet();
                    } catch (Throwable e) {
                      problem.compareAndSet(null, e);
                      return;
                    }
                  }
                });
    group.run(
        () -> {
          for (int i = 0; i < 2_000; i++) {
            int n = i;
            Task<Void> t =
                group.fork(
                    "churn-" + n,
                    () -> {
                      CancelScope.create()
                          .run(
                              () -> {
                                if (n % 3 == 0) {
                                  CancelScope.sleep(Duration.ofMillis(1));
                                }
                              });
                    });
            if (n % 5 == 0) {
              t.cancel(true);
            }
          }
        });
    stop.set(true);
    capturer.join();
    assertThat(problem.get()).isNull();
    assertThat(captures.get()).isPositive();
    assertThat(doneLines).as("finished nodes shown by a capture").isEmpty();
  }
}
