package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.fail;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Groups and scopes whose owner is a pooled thread: a {@code ThreadPoolExecutor} worker, a {@code
 * ForkJoinPool} worker (parallel streams, {@code CompletableFuture.supplyAsync}), a JDK {@code
 * HttpServer} handler thread. The library cancels by interrupting and re-delivers swallowed
 * interrupts; CancelScope's javadoc ("Interrupts": an interrupt the library delivered for a scope
 * never survives that scope's exit) and TaskGroup's ("no interrupt the group delivered is left on
 * the caller") mean that nothing it delivered may reach the pooled thread after {@code run} returns
 * or throws: neither the rest of the same pool task nor the pool's next, unrelated task. Each
 * scenario checks the status right after {@code run}, then probes a short window (parking in
 * slices, a probe, not synchronisation) in which a late interrupt would show; and checks what the
 * javadoc promises about outside interrupts (a pool's {@code shutdownNow}, {@code
 * Future.cancel(true)}): the children are cancelled and joined and {@code run} throws {@link
 * InterruptedException}. {@link LeftoversSweepTest} covers a plain cancel racing the end of a
 * group's run and {@link InterruptOrderTest} a scope's normal exit racing a cancel; not repeated.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PooledOwnerSweepTest {
  /** The probe window: the re-delivery bound (20 ms by default) plus room for a late watcher. */
  private static final long PROBE_NANOS = TimeUnit.MILLISECONDS.toNanos(30);

  private ExecutorService pool;
  private final AtomicReference<Thread> pooled = new AtomicReference<>();

  @BeforeEach
  void onePooledThread() {
    pool =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = Thread.ofPlatform().name("pooled-owner").unstarted(r);
              pooled.set(t);
              return t;
            });
  }

  @AfterEach
  void shutDown() throws Exception {
    pool.shutdownNow();
    assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    Thread.interrupted();
  }

  /** Runs {@code work} as one task of the pool and returns its result, rethrowing its failure. */
  private <T> T onPool(java.util.concurrent.Callable<T> work) throws Exception {
    try {
      return pool.submit(work).get(20, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception ex) {
        throw ex;
      }
      throw (Error) e.getCause();
    }
  }

  /**
   * The probe: parks in slices for {@link #PROBE_NANOS}, failing as soon as the calling thread's
   * interrupt status is set (a park returns at once on an interrupt).
   */
  private static void assertStaysUninterrupted(String after) {
    assertThat(Thread.currentThread().isInterrupted())
        .as("interrupt status right after %s", after)
        .isFalse();
    long end = System.nanoTime() + PROBE_NANOS;
    while (System.nanoTime() - end < 0L) {
      LockSupport.parkNanos(PooledOwnerSweepTest.class, 2_000_000L);
      if (Thread.interrupted()) {
        fail("an interrupt reached " + Thread.currentThread() + " later, after " + after);
      }
    }
  }

  /** The pool's next task finds its thread clean, and stays so for the probe window. */
  private void assertNextTaskClean(String after) throws Exception {
    onPool(
        () -> {
          assertStaysUninterrupted(after + " (the pool's next task)");
          return null;
        });
  }

  // ---- a cancellation exception the body throws itself, racing the delivery ----------------

  /**
   * The body sees its scope cancelled ({@code CancelScope.isCancelled()}, public) and ends with a
   * {@link CancellationException} of its own (what a {@code Future.get()} of work cancelled by the
   * same shutdown throws), while the canceller's interrupt is still on its way: the scope absorbs
   * it (it is a cancellation by type) and {@code run} returns normally; the interrupt the library
   * was delivering must not land after that (CancelScope's javadoc, "Interrupts"). The canceller is
   * another thread's {@code cancel()} or the scope's own deadline (the timer thread). Closest
   * upstream: Trio test_cancel_scope_exit_doesnt_leak / CPython test_timeouts
   * "test_timeout_exiting_with_cancelled" (the scope ends cleanly when the body raised the
   * cancellation itself).
   */
  @RepeatedTest(6)
  void aCancellationExceptionTheBodyThrowsItselfLeavesNoInterruptOnThePooledThread()
      throws Exception {
    long seed = Probes.seed("pooled.selfThrown.seed", "self-thrown CancellationException");
    int[] leaks =
        onPool(
            () ->
                selfThrownRounds(
                    seed,
                    () ->
                        new CancellationException("the work this body waited for was cancelled")));
    assertThat(leaks)
        .as(
            "rounds whose interrupt landed after run returned: cancel() [at once, later], deadline"
                + " [at once, later] (seed %d)",
            seed)
        .containsExactly(0, 0, 0, 0);
    assertNextTaskClean("self-thrown cancellations");
  }

  /**
   * As {@link #aCancellationExceptionTheBodyThrowsItselfLeavesNoInterruptOnThePooledThread}, with
   * the way CancelScope's javadoc ("Interrupts") gives for a body that sees the cancellation by
   * itself: it calls {@code CancelScope.checkpoint()}, whose exception is the library's own, and
   * the scope's exit waits for an interrupt still on its way. (An {@code InterruptedException} the
   * body made itself cannot be told from one a blocking call raised for the interrupt, which proves
   * that it landed: the javadoc names that window.)
   */
  @RepeatedTest(6)
  void aCheckpointOnSeeingTheCancellationLeavesNoInterruptOnThePooledThread() throws Exception {
    long seed = Probes.seed("pooled.checkpoint.seed", "checkpoint on seeing the cancellation");
    int[] leaks =
        onPool(
            () ->
                selfThrownRounds(
                    seed,
                    () -> {
                      CancelScope.checkpoint(); // throws: the scope is cancelled
                      return new IllegalStateException("checkpoint() did not throw");
                    }));
    assertThat(leaks).as("leaks (seed %d)", seed).containsExactly(0, 0, 0, 0);
    assertNextTaskClean("checkpoints");
  }

  /**
   * Rounds of a scope cancelled by another thread after a random pause (even rounds) or by its own
   * deadline (odd rounds), whose body spins until {@code CancelScope.isCancelled()} and then throws
   * {@code made}; returns the rounds that left an interrupt on the thread, right after run and a
   * little later, per kind.
   */
  private static int[] selfThrownRounds(long seed, Callable<Exception> made) throws Exception {
    SplittableRandom random = new SplittableRandom(seed);
    int[] counted = new int[4];
    for (int r = 0; r < 150; r++) {
      boolean byDeadline = r % 2 == 1;
      long pause = random.nextLong(0, 3_000);
      CancelScope scope =
          byDeadline
              ? CancelScope.withTimeout(Duration.ofNanos(20_000 + pause))
              : CancelScope.create();
      CountDownLatch inBody = new CountDownLatch(1);
      Thread canceller =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      inBody.await();
                    } catch (InterruptedException e) {
                      return;
                    }
                    if (!byDeadline) {
                      InterruptRaces.spin(pause);
                      scope.cancel();
                    }
                  });
      scope.run(
          () -> {
            inBody.countDown();
            while (!CancelScope.isCancelled()) {
              Thread.onSpinWait();
            }
            throw made.call();
          });
      assertThat(scope.cancelCaught()).isTrue();
      if (Thread.interrupted()) {
        counted[byDeadline ? 2 : 0]++;
      }
      joinUninterruptibly(canceller); // cancel() has returned
      InterruptRaces.spin(200_000); // the deadline's timer may still be delivering
      if (Thread.interrupted()) {
        counted[byDeadline ? 3 : 1]++;
      }
    }
    assertStaysUninterrupted("the last round");
    return counted;
  }

  private static void joinUninterruptibly(Thread t) {
    boolean interrupted = false;
    while (true) {
      try {
        t.join();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  // ---- absorbed cancellations -------------------------------------------------------------

  /**
   * A scope cancelled from another thread while its body blocks, and one whose deadline fires,
   * absorb the cancellation: {@code run} returns normally, {@code cancelCaught()} is true, the
   * pooled thread's status is clear and stays so, also in the pool's next task. Closest upstream:
   * Trio test_cancel_scope_basic / AnyIO test_cancel_scope_in_another_task.
   */
  @RepeatedTest(8)
  void anAbsorbedCancellationLeavesThePooledThreadClean() throws Exception {
    onPool(
        () -> {
          CancelScope byOther = CancelScope.create();
          Thread me = Thread.currentThread();
          Thread canceller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        Probes.awaitWaiting(me, Duration.ofSeconds(5));
                        byOther.cancel();
                      });
          byOther.run(() -> Thread.sleep(60_000));
          assertThat(byOther.cancelCaught()).isTrue();
          canceller.join();
          CancelScope timed = CancelScope.withTimeout(Duration.ofMillis(1));
          timed.run(() -> new CountDownLatch(1).await());
          assertThat(timed.cancelCaught()).isTrue();
          assertStaysUninterrupted("absorbed cancellations");
          return null;
        });
    assertNextTaskClean("absorbed cancellations");
  }

  /**
   * A child's failure cancels the body just as the body returns (a random pause each): {@code run}
   * throws {@link TaskGroupException} holding the failure, and no interrupt is left on the pooled
   * owner (TaskGroup's javadoc). Closest upstream: CPython test_taskgroup "test_taskgroup_07" (a
   * child's error cancels the parent task at its end).
   */
  @RepeatedTest(10)
  void aChildFailureCancellingTheBodyAtItsEndLeavesNoInterrupt() throws Exception {
    long seed = Probes.seed("pooled.childFailure.seed", "child failure at the body's end");
    onPool(
        () -> {
          SplittableRandom random = new SplittableRandom(seed);
          for (int r = 0; r < 20; r++) {
            long childSpin = random.nextLong(0, 40_000);
            long bodySpin = random.nextLong(0, 40_000);
            TaskGroup g = TaskGroup.create();
            IllegalStateException boom = new IllegalStateException("child " + r);
            Throwable t =
                catchThrowable(
                    () ->
                        g.run(
                            () -> {
                              g.fork(
                                  () -> {
                                    InterruptRaces.spin(childSpin);
                                    throw boom;
                                  });
                              InterruptRaces.spin(bodySpin);
                            }));
            assertThat(t).isInstanceOf(TaskGroupException.class);
            assertThat(((TaskGroupException) t).failures()).containsExactly(boom);
            assertThat(Thread.interrupted()).as("round %d (seed %d)", r, seed).isFalse();
          }
          assertStaysUninterrupted("child failures at the body's end");
          return null;
        });
    assertNextTaskClean("child failures at the body's end");
  }

  // ---- re-delivery and cancel hooks -------------------------------------------------------

  /**
   * The body swallows the cancellation's interrupt and goes on computing for up to twice the
   * re-delivery period, then returns: the watcher may re-deliver while it runs, but never after the
   * scope exited (CancelScope's javadoc, "Interrupts"). The body returned normally, so {@code
   * cancelCaught()} is false. Closest upstream: none (Trio's cancellation is level-triggered by
   * construction); OpenJDK's contract that an interrupt is a flag on the thread.
   */
  @RepeatedTest(8)
  void aSwallowedInterruptIsNotRedeliveredAfterTheScopeEnds() throws Exception {
    long seed = Probes.seed("pooled.swallow.seed", "swallowed interrupt");
    onPool(
        () -> {
          long spin = new SplittableRandom(seed).nextLong(0, 10_000_000);
          CancelScope scope = CancelScope.create();
          Thread me = Thread.currentThread();
          Thread canceller =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        Probes.awaitWaiting(me, Duration.ofSeconds(5));
                        scope.cancel();
                      });
          scope.run(
              () -> {
                try {
                  Thread.sleep(60_000);
                } catch (InterruptedException swallowed) {
                  // a library that swallows the interrupt
                }
                InterruptRaces.spin(spin);
              });
          canceller.join();
          assertThat(scope.cancelCalled()).isTrue();
          assertThat(scope.cancelCaught()).isFalse();
          assertStaysUninterrupted("a swallowed cancellation (spin " + spin + " ns)");
          return null;
        });
    assertNextTaskClean("a swallowed cancellation");
  }

  /**
   * An onCancel action of a registration left open, still running when its scope's body has ended:
   * the scope's {@code run} closes the registration, so it waits for the action (with no group
   * around; inside a group the group counts the action and its {@code run} waits for it), and the
   * action interrupts nothing afterwards. Closest upstream: none direct (Trio has no cancel hooks);
   * the contract is CancelScope.Registration.close's javadoc.
   */
  @RepeatedTest(5)
  void anOnCancelActionOutlivingItsScopeInterruptsNothingLater() throws Exception {
    onPool(
        () -> {
          CountDownLatch actionStarted = new CountDownLatch(1);
          CountDownLatch release = new CountDownLatch(1);
          CountDownLatch actionEnded = new CountDownLatch(1);
          CancelScope scope = CancelScope.create();
          Thread me = Thread.currentThread();
          Thread releaser =
              Thread.ofPlatform()
                  .start(
                      () -> {
                        try {
                          actionStarted.await();
                          Probes.awaitWaiting(me, Duration.ofSeconds(5)); // the exit waits
                        } catch (InterruptedException e) {
                          // torn down
                        } finally {
                          release.countDown();
                        }
                      });
          scope.run(
              () -> {
                CancelScope.onCancel(
                    () -> {
                      actionStarted.countDown();
                      try {
                        release.await();
                      } finally {
                        actionEnded.countDown();
                      }
                    });
                Thread.ofPlatform().start(scope::cancel);
                Thread.sleep(60_000);
              });
          assertThat(scope.cancelCaught()).isTrue();
          assertThat(actionEnded.getCount()).as("the action ended before run returned").isZero();
          releaser.join();
          assertStaysUninterrupted("an onCancel action that outlived its scope's body");

          // In a group: run waits for the action.
          CountDownLatch groupRelease = new CountDownLatch(1);
          AtomicBoolean groupActionEnded = new AtomicBoolean();
          TaskGroup g = TaskGroup.create();
          g.run(
              () -> {
                CancelScope.onCancel(
                    () -> {
                      try {
                        groupRelease.await();
                      } finally {
                        groupActionEnded.set(true);
                      }
                    });
                Thread.ofPlatform()
                    .start(
                        () -> {
                          g.cancel();
                          Probes.awaitWaiting(me, Duration.ofSeconds(5));
                          groupRelease.countDown();
                        });
                Thread.sleep(60_000);
              });
          assertThat(groupActionEnded).as("the group waited for its cancel hook").isTrue();
          assertThat(g.cancelCaught()).isTrue();
          assertStaysUninterrupted("a group's cancel hook");
          return null;
        });
    assertNextTaskClean("onCancel actions");
  }

  // ---- outside interrupts from the pool ---------------------------------------------------

  /**
   * {@code shutdownNow()} interrupts a worker whose task is in a group's {@code run}, once in the
   * body and once in the wait for the children: an outside interrupt (TaskGroup's javadoc, "When
   * outcomes coincide", case 2): the children are cancelled and waited for, then {@code run} throws
   * {@link InterruptedException}, and the pool terminates. Closest upstream: OpenJDK
   * StructuredTaskScope tests "testInterruptJoin" (join throws InterruptedException after the
   * subtasks are cancelled and joined).
   */
  @RepeatedTest(10)
  void shutdownNowInterruptingTheOwnerCancelsAndJoinsTheChildren() throws Exception {
    for (int variant = 0; variant < 4; variant++) {
      boolean inJoin = variant % 2 == 1;
      ExecutorService own =
          variant < 2
              ? Executors.newFixedThreadPool(1)
              : Executors.newVirtualThreadPerTaskExecutor();
      CountDownLatch started = new CountDownLatch(2);
      Queue<String> childEnds = new ConcurrentLinkedQueue<>();
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicReference<String> endsWhenRunThrew = new AtomicReference<>();
      AtomicReference<Thread> owner = new AtomicReference<>();
      own.execute(
          () -> {
            owner.set(Thread.currentThread());
            TaskGroup g = TaskGroup.create();
            try {
              g.run(
                  () -> {
                    for (int i = 0; i < 2; i++) {
                      String name = "child" + i;
                      g.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } finally {
                              childEnds.add(name);
                            }
                          });
                    }
                    if (!inJoin) {
                      Thread.sleep(60_000);
                    }
                  });
            } catch (Throwable t) {
              endsWhenRunThrew.set(String.join(",", childEnds.stream().sorted().toList()));
              thrown.set(t);
            }
          });
      started.await();
      Probes.awaitWaiting(owner.get(), Duration.ofSeconds(5));
      own.shutdownNow();
      assertThat(own.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
      assertThat(thrown.get())
          .as("variant %d (in join: %s)", variant, inJoin)
          .isInstanceOf(InterruptedException.class);
      assertThat(endsWhenRunThrew.get()).isEqualTo("child0,child1");
    }
  }

  /**
   * {@code shutdownNow()} interrupts a pooled owner while its body waits inside the library: in
   * {@code fork} for a place ({@code maxConcurrency(1)}), in {@code start} for the signal, in
   * {@code Task.get()} for a child's result. Whichever, it is an outside interrupt: the running
   * children are cancelled and joined before {@code run} throws {@link InterruptedException}
   * (TaskGroup's javadoc, "When outcomes coincide", case 2; {@code start}'s: "the child is
   * cancelled and waited for"), the work that never got a place never runs, and the pool
   * terminates. Closest upstream: OpenJDK StructuredTaskScope "testInterruptJoin" and Kotlin
   * coroutineScope's cancellation of children on an outer cancellation (closest, from memory).
   */
  @RepeatedTest(3)
  void shutdownNowWhileTheBodyWaitsInForkStartOrGetCancelsAndJoins() throws Exception {
    for (String where : new String[] {"fork", "start", "get"}) {
      ExecutorService own = Executors.newFixedThreadPool(1);
      CountDownLatch running = new CountDownLatch(1);
      Queue<String> ended = new ConcurrentLinkedQueue<>();
      AtomicBoolean secondRan = new AtomicBoolean();
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicReference<String> endedWhenRunThrew = new AtomicReference<>();
      AtomicReference<Task<?>> second = new AtomicReference<>();
      AtomicReference<Thread> owner = new AtomicReference<>();
      own.execute(
          () -> {
            owner.set(Thread.currentThread());
            TaskGroup g =
                where.equals("fork")
                    ? TaskGroup.builder().maxConcurrency(1).build()
                    : TaskGroup.create();
            try {
              g.run(
                  () -> {
                    Body blocked =
                        () -> {
                          running.countDown();
                          try {
                            Thread.sleep(60_000);
                          } finally {
                            ended.add("first");
                          }
                        };
                    switch (where) {
                      case "fork" -> {
                        g.fork(blocked);
                        second.set(g.fork(() -> secondRan.set(true))); // waits for a place
                      }
                      case "start" ->
                          g.start(
                              signal -> {
                                blocked.run(); // never signals
                              });
                      default -> g.fork(blocked).get();
                    }
                  });
            } catch (Throwable t) {
              endedWhenRunThrew.set(String.join(",", ended));
              thrown.set(t);
            }
          });
      running.await();
      Probes.awaitWaiting(owner.get(), Duration.ofSeconds(5));
      own.shutdownNow();
      assertThat(own.awaitTermination(10, TimeUnit.SECONDS)).as(where).isTrue();
      assertThat(thrown.get()).as(where).isInstanceOf(InterruptedException.class);
      assertThat(endedWhenRunThrew.get()).as(where).isEqualTo("first");
      assertThat(secondRan).as(where).isFalse();
      if (where.equals("fork") && second.get() != null) {
        assertThat(second.get().state()).isEqualTo(Future.State.CANCELLED);
      }
    }
  }

  /**
   * {@code Future.cancel(true)} of a submitted task whose body runs a group: the worker is
   * interrupted from outside, the children are cancelled and joined, {@code run} throws {@link
   * InterruptedException}; the worker then runs the next task with a clean status. Closest
   * upstream: OpenJDK FutureTask tests (cancel(true) interrupts the runner once) with CPython
   * test_taskgroup "test_taskgroup_cancel_parent" (an outside cancel of the parent cancels the
   * children).
   */
  @RepeatedTest(10)
  void futureCancelOfASubmittedGroupJoinsTheChildrenAndLeavesTheWorkerClean() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    AtomicBoolean childEnded = new AtomicBoolean();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean childEndedBeforeRunThrew = new AtomicBoolean();
    CountDownLatch taskEnded = new CountDownLatch(1);
    Future<?> f =
        pool.submit(
            () -> {
              TaskGroup g = TaskGroup.create();
              try {
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try {
                              started.countDown();
                              Thread.sleep(60_000);
                            } finally {
                              childEnded.set(true);
                            }
                          });
                    });
              } catch (Throwable t) {
                childEndedBeforeRunThrew.set(childEnded.get());
                thrown.set(t);
              } finally {
                taskEnded.countDown();
              }
              return null;
            });
    started.await();
    Probes.awaitWaiting(pooled.get(), Duration.ofSeconds(5));
    assertThat(f.cancel(true)).isTrue();
    taskEnded.await();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(childEndedBeforeRunThrew).isTrue();
    assertNextTaskClean("Future.cancel(true) of a group's task");
  }

  // ---- ForkJoinPool, parallel streams, CompletableFuture ----------------------------------

  /**
   * Groups run as ForkJoinPool tasks (a pool of two workers, more tasks than workers), whose
   * children run parallel streams on the common pool, and groups run inside a parallel stream's
   * elements: all complete with the right results, none deadlocks. A group whose deadline cancels
   * it on a ForkJoinPool worker leaves the worker clean. Closest upstream: OpenJDK
   * StructuredTaskScope "testForkInsideForkJoinPool" (closest, from memory).
   */
  @RepeatedTest(5)
  void groupsInForkJoinTasksAndParallelStreamsDoNotDeadlock() throws Exception {
    ForkJoinPool fjp = new ForkJoinPool(2);
    try {
      java.util.List<java.util.concurrent.ForkJoinTask<Long>> tasks = new java.util.ArrayList<>();
      for (int i = 0; i < 4; i++) {
        tasks.add(
            fjp.submit(
                () ->
                    TaskGroup.create()
                        .call(
                            () -> {
                              TaskGroup inner = TaskGroup.create();
                              return inner.call(
                                  () -> {
                                    Task<Long> a =
                                        inner.fork(
                                            () ->
                                                IntStream.range(0, 2_000)
                                                    .parallel()
                                                    .asLongStream()
                                                    .sum());
                                    Task<Long> b =
                                        inner.fork(
                                            () ->
                                                IntStream.range(0, 2_000)
                                                    .parallel()
                                                    .asLongStream()
                                                    .sum());
                                    return a.get() + b.get();
                                  });
                            })));
      }
      for (var t : tasks) {
        assertThat(t.get(10, TimeUnit.SECONDS)).isEqualTo(2L * 1_999_000L);
      }
      long viaStream =
          IntStream.range(0, 8)
              .parallel()
              .mapToLong(
                  i -> {
                    try {
                      TaskGroup g = TaskGroup.create();
                      return g.call(() -> g.fork(() -> (long) i).get());
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  })
              .sum();
      assertThat(viaStream).isEqualTo(28L);
      // Every common-pool worker may block in a group's join while its children run parallel
      // streams on the same common pool.
      long nested =
          IntStream.range(0, 4)
              .parallel()
              .mapToLong(
                  i -> {
                    try {
                      TaskGroup g = TaskGroup.create();
                      return g.call(
                          () ->
                              g.fork(
                                      () ->
                                          IntStream.range(0, 1_000).parallel().asLongStream().sum())
                                  .get());
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  })
              .sum();
      assertThat(nested).isEqualTo(4L * 499_500L);
      boolean[] clean =
          fjp.submit(
                  () -> {
                    TaskGroup g = TaskGroup.builder().timeout(Duration.ofMillis(2)).build();
                    g.run(() -> g.fork(() -> Thread.sleep(60_000)));
                    boolean caught = g.cancelCaught();
                    assertStaysUninterrupted("a timed-out group on a ForkJoinPool worker");
                    return new boolean[] {caught};
                  })
              .get(10, TimeUnit.SECONDS);
      assertThat(clean[0]).isTrue();
    } finally {
      fjp.shutdownNow();
      assertThat(fjp.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  /**
   * A group owner inside {@code CompletableFuture.supplyAsync}, and the future cancelled with
   * {@code cancel(true)}: CompletableFuture's javadoc says the flag has no effect (the running
   * supplier is not interrupted), so the group goes on unaffected and ends normally with its
   * children's results, and its owner sees no interrupt; {@code group.cancel()} is the way to stop
   * it, after which the owner is clean too. Closest upstream: OpenJDK CompletableFuture tests
   * "testCancel" (mayInterruptIfRunning ignored).
   */
  @RepeatedTest(5)
  void aGroupInSupplyAsyncIsNotInterruptedByCancellingTheFuture() throws Exception {
    ForkJoinPool fjp = new ForkJoinPool(1);
    try {
      CountDownLatch childStarted = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      CompletableFuture<Boolean> ownerInterruptedAfter = new CompletableFuture<>();
      AtomicInteger result = new AtomicInteger();
      CompletableFuture<Integer> cf =
          CompletableFuture.supplyAsync(
              () -> {
                TaskGroup g = TaskGroup.create();
                try {
                  int r =
                      g.call(
                          () -> {
                            Task<Integer> t =
                                g.fork(
                                    () -> {
                                      childStarted.countDown();
                                      release.await();
                                      return 42;
                                    });
                            return t.get();
                          });
                  result.set(r);
                  ownerInterruptedAfter.complete(Thread.currentThread().isInterrupted());
                  return r;
                } catch (Throwable e) {
                  ownerInterruptedAfter.completeExceptionally(e);
                  throw new RuntimeException(e);
                }
              },
              fjp);
      childStarted.await();
      assertThat(cf.cancel(true)).isTrue();
      release.countDown();
      assertThat(ownerInterruptedAfter.get(10, TimeUnit.SECONDS)).isFalse();
      assertThat(result.get()).isEqualTo(42);

      // Cancelling the group itself stops it; the worker is clean afterwards.
      CountDownLatch blocked = new CountDownLatch(1);
      AtomicReference<TaskGroup> running = new AtomicReference<>();
      CompletableFuture<Boolean> caught =
          CompletableFuture.supplyAsync(
              () -> {
                TaskGroup g = TaskGroup.create();
                running.set(g);
                try {
                  g.run(
                      () -> {
                        g.fork(
                            () -> {
                              blocked.countDown();
                              Thread.sleep(60_000);
                            });
                      });
                } catch (InterruptedException e) {
                  throw new AssertionError(e);
                }
                assertStaysUninterrupted("a cancelled group in supplyAsync");
                return g.cancelCaught();
              },
              fjp);
      blocked.await();
      running.get().cancel();
      assertThat(caught.get(10, TimeUnit.SECONDS)).isTrue();
    } finally {
      fjp.shutdownNow();
      assertThat(fjp.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  // ---- HttpServer handlers -----------------------------------------------------------------

  /**
   * A JDK HttpServer handler (on a one-thread executor) runs a group: one child streams the
   * response, another waits on a slow backend. The client reads a little and disconnects; the
   * streaming child's write fails, the failure cancels the waiting child, {@code run} throws {@link
   * TaskGroupException} with that failure, and the handler thread is clean: the next request on the
   * same thread is served with no interrupt. Closest upstream: none (AnyIO test_streams "client
   * disconnect" style, from memory).
   */
  @RepeatedTest(5)
  void anHttpHandlerRunningAGroupSurvivesAClientDisconnect() throws Exception {
    ExecutorService handlers = Executors.newSingleThreadExecutor();
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    AtomicReference<Throwable> firstOutcome = new AtomicReference<>();
    CompletableFuture<Boolean> backendCancelled = new CompletableFuture<>();
    CompletableFuture<Boolean> secondClean = new CompletableFuture<>();
    AtomicInteger requests = new AtomicInteger();
    server.createContext(
        "/",
        exchange -> {
          int n = requests.incrementAndGet();
          try {
            if (n == 1) {
              exchange.sendResponseHeaders(200, 0);
              OutputStream out = exchange.getResponseBody();
              TaskGroup g = TaskGroup.create();
              try {
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try {
                              Thread.sleep(60_000); // the slow backend
                            } catch (InterruptedException e) {
                              backendCancelled.complete(true);
                              throw e;
                            }
                          });
                      g.fork(
                          () -> {
                            byte[] chunk = new byte[64 * 1024];
                            while (true) {
                              out.write(chunk);
                              out.flush();
                            }
                          });
                    });
              } catch (Throwable t) {
                firstOutcome.set(t);
              }
              firstOutcome.compareAndSet(null, new AssertionError("run returned normally"));
              if (Thread.currentThread().isInterrupted()) {
                firstOutcome.set(new AssertionError("handler thread left interrupted"));
              }
              exchange.close();
            } else {
              try {
                assertStaysUninterrupted("a group whose client disconnected");
                secondClean.complete(true);
              } catch (Throwable t) {
                secondClean.completeExceptionally(t);
              }
              byte[] ok = "ok".getBytes(StandardCharsets.US_ASCII);
              exchange.sendResponseHeaders(200, ok.length);
              exchange.getResponseBody().write(ok);
              exchange.close();
            }
          } catch (IOException e) {
            exchange.close();
          }
        });
    server.setExecutor(handlers);
    server.start();
    try {
      int port = server.getAddress().getPort();
      try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
        s.getOutputStream()
            .write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        InputStream in = s.getInputStream();
        byte[] buf = new byte[8192];
        int total = 0;
        while (total < 100_000) {
          int r = in.read(buf);
          if (r < 0) {
            break;
          }
          total += r;
        }
        s.setSoLinger(true, 0); // a reset: the server's next writes fail at once
      }
      assertThat(backendCancelled.get(10, TimeUnit.SECONDS)).isTrue();
      try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
        s.getOutputStream()
            .write(
                "GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
        String reply = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        assertThat(reply).startsWith("HTTP/1.1 200").endsWith("ok");
      }
      assertThat(secondClean.get(10, TimeUnit.SECONDS)).isTrue();
      Throwable t = firstOutcome.get();
      assertThat(t).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) t).failures())
          .singleElement()
          .isInstanceOf(IOException.class);
    } finally {
      server.stop(0);
      handlers.shutdownNow();
      assertThat(handlers.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  /**
   * With no executor set, a JDK HttpServer runs its handlers on its one dispatcher thread, which
   * also runs the selector loop: an interrupt left there would break every later exchange. Each
   * request runs a group whose deadline cancels a blocked child, and one whose body sees the
   * cancellation and throws a CancellationException of its own; every request is answered, and the
   * dispatcher thread is never left interrupted. Closest upstream: none (OpenJDK's HttpServer tests
   * run handlers on the dispatcher by default).
   */
  @RepeatedTest(3)
  void groupsOnTheHttpServerDispatcherThreadLeaveItClean() throws Exception {
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    Queue<String> dirty = new ConcurrentLinkedQueue<>();
    server.createContext(
        "/",
        exchange -> {
          try {
            TaskGroup timed = TaskGroup.builder().timeout(Duration.ofMillis(1)).build();
            timed.run(() -> timed.fork(() -> Thread.sleep(60_000)));
            TaskGroup g = TaskGroup.create();
            g.run(
                () -> {
                  g.fork(() -> Thread.sleep(60_000));
                  Thread.ofPlatform().start(g::cancel);
                  while (!CancelScope.isCancelled()) {
                    Thread.onSpinWait();
                  }
                  throw new CancellationException("gave up");
                });
            if (!timed.cancelCaught() || !g.cancelCaught()) {
              dirty.add("not caught");
            }
          } catch (Throwable t) {
            dirty.add(String.valueOf(t));
          }
          if (Thread.currentThread().isInterrupted()) {
            dirty.add("interrupted after " + exchange.getRequestURI());
          }
          byte[] ok = "ok".getBytes(StandardCharsets.US_ASCII);
          exchange.sendResponseHeaders(200, ok.length);
          exchange.getResponseBody().write(ok);
          exchange.close();
        });
    server.start();
    try (HttpClient client = HttpClient.newHttpClient()) {
      URI base = URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/");
      for (int i = 0; i < 10; i++) {
        HttpResponse<String> r =
            client.send(
                HttpRequest.newBuilder(base.resolve("r" + i))
                    .timeout(Duration.ofSeconds(10))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.body()).isEqualTo("ok");
      }
    } finally {
      server.stop(0);
    }
    assertThat(dirty).isEmpty();
  }
}
