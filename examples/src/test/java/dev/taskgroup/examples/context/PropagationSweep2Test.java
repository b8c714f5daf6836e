package dev.taskgroup.examples.context;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.taskgroup.CancelScope;
import dev.taskgroup.ContextPropagator;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.ContextKey;
import io.opentelemetry.context.Scope;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.MDC;

/**
 * A second adversarial sweep of {@link ContextPropagator}, beside {@code RealContextSweepTest} and
 * the core module's propagation tests (which it does not repeat). It checks, against the javadoc of
 * {@link ContextPropagator} and {@link TaskGroup.Builder#contextPropagator}: the owner's MDC and
 * OpenTelemetry {@link Context} after {@code run} returns or throws, and on a pooled owner thread
 * across many groups; the order of the three propagators' before/after code for {@code fork},
 * {@code start} (around {@code started()}), {@code invokeAll} and {@code onCancel} actions (and
 * whose propagators wrap an action registered in a nested group); misbehaving propagators (the same
 * Runnable returned, the work run on another thread, run after throwing, an inner propagator's
 * after code throwing, forking from {@code wrap} or from the wrapped Runnable, a checkpoint in the
 * before/after code of a cancelled child); and that 10 000 children's captured contexts are not
 * retained once the children have ended. Every failure must surface exactly once, as the javadoc
 * classifies it (wrap: {@link RejectedExecutionException}; outside the work: a failure of the
 * group; the work's own: as usual).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class PropagationSweep2Test {
  private static final ContextKey<String> KEY = ContextKey.named("sweep2-key");

  @AfterEach
  void clean() {
    MDC.clear();
  }

  private static TaskGroup.Builder both() {
    return TaskGroup.builder()
        .contextPropagator(new MdcPropagator())
        .contextPropagator(new OpenTelemetryPropagator());
  }

  /** Records "name:wrap" on the forking thread, "name>" before and "<name" after the work. */
  private record Recording(String name, Queue<String> events) implements ContextPropagator {
    @Override
    public Runnable wrap(Runnable work) {
      events.add(name + ":wrap");
      return () -> {
        events.add(name + ">");
        try {
          work.run();
        } finally {
          events.add("<" + name);
        }
      };
    }
  }

  private static TaskGroup.Builder three(Queue<String> events) {
    return TaskGroup.builder()
        .contextPropagator(new Recording("A", events))
        .contextPropagator(new Recording("B", events))
        .contextPropagator(new Recording("C", events));
  }

  private static final List<String> AROUND_WORK =
      List.of("A:wrap", "B:wrap", "C:wrap", "C>", "B>", "A>", "work", "<A", "<B", "<C");

  /**
   * ContextPropagator (the MdcPropagator recipe): "what the child changes stays in the child". The
   * owner's MDC and OpenTelemetry context are as they were after {@code run}, whether it returns or
   * throws (trio: a task's contextvars changes never reach its parent; closest: Trio's
   * test_contextvars_* in test_run.py).
   */
  @RepeatedTest(10)
  void theOwnersContextIsUnchangedAfterRunReturnsOrThrows() throws Exception {
    MDC.put("owner", "o");
    Context mine = Context.root().with(KEY, "o");
    try (Scope ignored = mine.makeCurrent()) {
      TaskGroup ok = both().build();
      ok.run(() -> forkMeddlers(ok, "o", false));
      assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("owner", "o"));
      assertThat(Context.current()).isSameAs(mine);

      TaskGroup failing = both().build();
      assertThatThrownBy(() -> failing.run(() -> forkMeddlers(failing, "o", true)))
          .isInstanceOf(TaskGroupException.class)
          .satisfies(e -> assertThat(((TaskGroupException) e).failures()).hasSize(1));
      assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("owner", "o"));
      assertThat(Context.current()).isSameAs(mine);
    }
    assertThat(Context.current()).isSameAs(Context.root());
  }

  @SuppressWarnings("MustBeClosedChecker")
  private static void forkMeddlers(TaskGroup group, String owner, boolean fail) {
    for (int i = 0; i < 4; i++) {
      int n = i;
      group.fork(
          () -> {
            assertThat(MDC.get("owner")).isEqualTo(owner);
            assertThat(Context.current().get(KEY)).isEqualTo(owner);
            MDC.put("owner", "child " + n);
            MDC.put("leak", "child " + n);
            Context.current().with(KEY, "child " + n).makeCurrent(); // never closed: a leak
            if (fail && n == 2) {
              throw new IllegalStateException("boom " + n);
            }
          });
    }
  }

  /**
   * A pooled owner thread (an executor's platform thread) runs 1 000 groups in turn: after each,
   * its MDC and OpenTelemetry context are what it set, nothing of any child accumulates.
   */
  @Test
  void aPooledOwnerThreadAccumulatesNothingAcrossAThousandGroups() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      Future<?> done =
          pool.submit(
              () -> {
                for (int i = 0; i < 1_000; i++) {
                  int n = i;
                  MDC.put("owner", "o" + i);
                  Context mine = Context.root().with(KEY, "o" + i);
                  try (Scope ignored = mine.makeCurrent()) {
                    TaskGroup g = both().build();
                    g.run(() -> forkMeddlers(g, "o" + n, false));
                    assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("owner", "o" + i));
                    assertThat(Context.current()).isSameAs(mine);
                  }
                  assertThat(Context.current()).isSameAs(Context.root());
                }
                MDC.clear();
                return null;
              });
      done.get(15, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Builder.contextPropagator: "the propagators apply in the order given ... the last one applied
   * runs outermost in the child"; ContextPropagator: wrap is called on the forking thread before
   * the child exists, and the code after the work ends before the child leaves its group. For
   * {@code start}: the before code runs before {@code started()} (so before {@code start} returns),
   * the after code once the work returns, before {@code run} returns.
   */
  @RepeatedTest(20)
  void threePropagatorsNestForStartAroundTheSignal() throws Exception {
    Queue<String> events = new ConcurrentLinkedQueue<>();
    TaskGroup group = three(events).build();
    CountDownLatch release = new CountDownLatch(1);
    group.run(
        () -> {
          String v =
              group.start(
                  signal -> {
                    events.add("before signal");
                    signal.started("up");
                    release.await();
                    events.add("after signal");
                  });
          assertThat(v).isEqualTo("up");
          events.add("start returned");
          assertThat(events)
              .containsExactly(
                  "A:wrap",
                  "B:wrap",
                  "C:wrap",
                  "C>",
                  "B>",
                  "A>",
                  "before signal",
                  "start returned");
          release.countDown();
        });
    assertThat(events)
        .containsExactly(
            "A:wrap",
            "B:wrap",
            "C:wrap",
            "C>",
            "B>",
            "A>",
            "before signal",
            "start returned",
            "after signal",
            "<A",
            "<B",
            "<C");
  }

  /** As above, for a fork, each {@code invokeAll} task, and an {@code onCancel} action. */
  @RepeatedTest(20)
  void threePropagatorsNestForForkInvokeAllAndOnCancel() throws Exception {
    Queue<String> forkEvents = new ConcurrentLinkedQueue<>();
    TaskGroup forked = three(forkEvents).build();
    forked.run(() -> forked.fork(() -> forkEvents.add("work")).get());
    assertThat(forkEvents).containsExactlyElementsOf(AROUND_WORK);

    Queue<String> allEvents = new ConcurrentLinkedQueue<>();
    Queue<String> allOuter = new ConcurrentLinkedQueue<>();
    TaskGroup outer = three(allEvents).build();
    outer.run(
        () ->
            outer
                .fork(
                    () -> {
                      allEvents.clear(); // the fork of this child itself
                      TaskGroup.invokeAll(
                          List.<Callable<Void>>of(
                              () -> {
                                allOuter.add("task");
                                allEvents.add("work");
                                return null;
                              }));
                    })
                .get());
    assertThat(allOuter).containsExactly("task");
    // the outer child's own after code comes after: keep the invokeAll task's part
    assertThat(List.copyOf(allEvents).subList(0, AROUND_WORK.size()))
        .containsExactlyElementsOf(AROUND_WORK);

    Queue<String> actionEvents = new ConcurrentLinkedQueue<>();
    TaskGroup cancelled = three(actionEvents).build();
    CountDownLatch ran = new CountDownLatch(1);
    cancelled.run(
        () -> {
          try (var r =
              CancelScope.onCancel(
                  () -> {
                    actionEvents.add("work");
                    ran.countDown();
                  })) {
            cancelled.cancel();
            ran.await();
          }
        });
    assertThat(actionEvents).containsExactlyElementsOf(AROUND_WORK);
  }

  /**
   * ContextPropagator: onCancel actions are wrapped "by the service-loaded propagators and those of
   * the innermost group enclosing the registering thread, on that thread". An action registered in
   * the body of an inner group, itself opened in a child of an outer group, is wrapped by the inner
   * group's propagators only; one registered by a start() child before it signals, by that child's
   * group's.
   */
  @RepeatedTest(10)
  void anActionRegisteredInANestedGroupIsWrappedByTheInnermostGroupsPropagatorsOnly()
      throws Exception {
    Queue<String> outerEvents = new ConcurrentLinkedQueue<>();
    Queue<String> innerEvents = new ConcurrentLinkedQueue<>();
    Queue<String> startEvents = new ConcurrentLinkedQueue<>();
    TaskGroup outer =
        TaskGroup.builder().contextPropagator(new Recording("O", outerEvents)).build();
    CountDownLatch actions = new CountDownLatch(2);
    outer.run(
        () ->
            outer
                .fork(
                    () -> {
                      TaskGroup inner =
                          TaskGroup.builder()
                              .contextPropagator(new Recording("I", innerEvents))
                              .build();
                      TaskGroup starts =
                          TaskGroup.builder()
                              .contextPropagator(new Recording("S", startEvents))
                              .build();
                      inner.run(
                          () -> {
                            try (var r = CancelScope.onCancel(actions::countDown)) {
                              starts.run(
                                  () -> {
                                    starts.start(
                                        signal -> {
                                          var r2 = CancelScope.onCancel(actions::countDown);
                                          signal.started(null);
                                          try (r2) {
                                            new CountDownLatch(1).await();
                                          }
                                        });
                                    inner.cancel();
                                    actions.await();
                                    starts.cancel();
                                  });
                            }
                          });
                    })
                .get());
    // the outer group's child itself, nothing more: the inner groups' actions are not wrapped by O
    assertThat(outerEvents).containsExactly("O:wrap", "O>", "<O");
    assertThat(innerEvents).containsExactly("I:wrap", "I>", "<I");
    // the start child: its own wrap and run, and its action's wrap and run
    assertThat(startEvents).containsExactlyInAnyOrder("S:wrap", "S>", "S:wrap", "S>", "<S", "<S");
  }

  /** A propagator that returns the Runnable it was given is allowed: the work runs once. */
  @RepeatedTest(10)
  void aPropagatorReturningTheSameRunnableRunsTheWorkOnce() throws Exception {
    AtomicInteger runs = new AtomicInteger();
    TaskGroup group = TaskGroup.builder().contextPropagator(work -> work).build();
    group.run(
        () -> {
          Task<Integer> t = group.fork(runs::incrementAndGet);
          assertThat(t.get()).isEqualTo(1);
        });
    assertThat(runs).hasValue(1);
  }

  /**
   * ContextPropagator: the Runnable "must call work.run() once, on that thread (... one from
   * another thread, throws IllegalStateException)"; "returning without calling work.run()" is a
   * failure of the group (an IllegalStateException), and the work does not run. One failure,
   * reported once, and run returns (no hang).
   */
  @RepeatedTest(10)
  void aPropagatorRunningTheWorkOnAnotherThreadFailsTheChildOnce() throws Exception {
    AtomicInteger runs = new AtomicInteger();
    AtomicReference<Throwable> seenElsewhere = new AtomicReference<>();
    ContextPropagator elsewhere =
        work ->
            () -> {
              Thread t =
                  Thread.ofPlatform()
                      .unstarted(
                          () -> {
                            try {
                              work.run();
                            } catch (Throwable e) {
                              seenElsewhere.set(e);
                            }
                          });
              t.start();
              try {
                t.join();
              } catch (InterruptedException e) {
                throw new AssertionError(e);
              }
            };
    TaskGroup group = TaskGroup.builder().contextPropagator(elsewhere).build();
    AtomicReference<Task<Integer>> task = new AtomicReference<>();
    assertThatThrownBy(() -> group.run(() -> task.set(group.fork(runs::incrementAndGet))))
        .isInstanceOfSatisfying(
            TaskGroupException.class,
            e -> {
              assertThat(e.failures()).hasSize(1);
              assertThat(e.failures().get(0)).isInstanceOf(IllegalStateException.class);
            });
    assertThat(runs).hasValue(0);
    assertThat(seenElsewhere.get()).isInstanceOf(IllegalStateException.class);
    assertThat(task.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(task.get().exceptionNow()).isInstanceOf(IllegalStateException.class);
  }

  /**
   * ContextPropagator: an exception thrown "outside work.run()" is a failure of the group, "and the
   * task fails with it unless the work failed first". A Runnable that throws and runs the work in
   * its finally: the work runs once (its result is dropped for the failure), the failure is
   * reported once.
   */
  @RepeatedTest(10)
  void aPropagatorThatRunsTheWorkAfterThrowingFailsTheTaskWithWhatItThrew() throws Exception {
    AtomicInteger runs = new AtomicInteger();
    RuntimeException thrown = new IllegalArgumentException("before");
    ContextPropagator p =
        work ->
            () -> {
              try {
                throw thrown;
              } finally {
                work.run();
              }
            };
    TaskGroup group = TaskGroup.builder().contextPropagator(p).build();
    AtomicReference<Task<Integer>> task = new AtomicReference<>();
    assertThatThrownBy(() -> group.run(() -> task.set(group.fork(runs::incrementAndGet))))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(thrown));
    assertThat(runs).hasValue(1);
    assertThat(task.get().exceptionNow()).isSameAs(thrown);
  }

  /**
   * An inner propagator's after code throws: the outer ones still restore (their finally), the
   * child's MDC and OpenTelemetry context are restored, and the failure surfaces once, as the
   * task's and the group's.
   */
  @RepeatedTest(10)
  void anInnerPropagatorsAfterCodeThrowingStillLetsTheOuterOnesRestore() throws Exception {
    RuntimeException after = new IllegalStateException("after");
    ContextPropagator throwsAfter =
        work ->
            () -> {
              work.run();
              throw after;
            };
    AtomicReference<Map<String, String>> mdcAfter = new AtomicReference<>(Map.of("x", "x"));
    AtomicReference<Context> otelAfter = new AtomicReference<>();
    ContextPropagator observer =
        work ->
            () -> {
              try {
                work.run();
              } finally {
                mdcAfter.set(MDC.getCopyOfContextMap());
                otelAfter.set(Context.current());
              }
            };
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(throwsAfter)
            .contextPropagator(new MdcPropagator())
            .contextPropagator(new OpenTelemetryPropagator())
            .contextPropagator(observer)
            .build();
    MDC.put("owner", "o");
    AtomicReference<Task<String>> task = new AtomicReference<>();
    try (Scope ignored = Context.root().with(KEY, "v").makeCurrent()) {
      assertThatThrownBy(() -> group.run(() -> task.set(group.fork(() -> MDC.get("owner")))))
          .isInstanceOfSatisfying(
              TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(after));
    }
    assertThat(task.get().exceptionNow()).isSameAs(after);
    assertThat(mdcAfter.get()).isNullOrEmpty();
    assertThat(otelAfter.get()).isSameAs(Context.root());
    assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("owner", "o"));
  }

  /**
   * A propagator may fork into the same group from inside wrap (on the forking thread, for a fork
   * and for a start) and from inside the Runnable it returns (on the child's thread, before the
   * work), unbounded and under maxConcurrency(1) and (4): every child runs once, nothing hangs,
   * nothing fails. (Under maxConcurrency(1) the owner's fork used to hold the only place while wrap
   * forked, and wait for a place for ever.)
   */
  @RepeatedTest(20)
  void aPropagatorForkingIntoItsGroupFromWrapAndFromTheRunnable() throws Exception {
    for (int max : new int[] {1, 4, 0}) {
      AtomicReference<TaskGroup> self = new AtomicReference<>();
      ThreadLocal<Boolean> inWrap = ThreadLocal.withInitial(() -> false);
      Queue<String> ran = new ConcurrentLinkedQueue<>();
      ContextPropagator forker =
          new ContextPropagator() {
            @Override
            public Runnable wrap(Runnable work) {
              if (!inWrap.get()) {
                inWrap.set(true);
                try {
                  self.get().fork(() -> ran.add("from wrap"));
                } finally {
                  inWrap.set(false);
                }
                return () -> {
                  inWrap.set(true); // a fork from here does not fork again
                  try {
                    self.get().fork(() -> ran.add("from runnable"));
                  } finally {
                    inWrap.set(false);
                  }
                  work.run();
                };
              }
              return work;
            }
          };
      TaskGroup.Builder builder = TaskGroup.builder().contextPropagator(forker);
      if (max > 0) {
        builder.maxConcurrency(max);
      }
      TaskGroup group = builder.build();
      self.set(group);
      group.run(
          () -> {
            group.fork(() -> ran.add("work"));
            group.start(
                signal -> {
                  ran.add("started");
                  signal.started(null);
                });
          });
      assertThat(ran)
          .as("maxConcurrency %d", max)
          .containsExactlyInAnyOrder(
              "from wrap", "work", "from runnable", "from wrap", "started", "from runnable");
    }
  }

  /**
   * ContextPropagator: "It may see the interrupt status a cancellation left." A propagator whose
   * before and after code calls {@link CancelScope#checkpoint()}, and enters a scope, in a child
   * whose group is cancelled: what it catches does not change the outcome; the child ends as
   * cancelled, not failed, and {@code run} returns normally.
   */
  @RepeatedTest(20)
  void checkpointsAndScopesInThePropagatorsCodeOfACancelledChildChangeNothing() throws Exception {
    Queue<String> seen = new ConcurrentLinkedQueue<>();
    ContextPropagator checks =
        work ->
            () -> {
              try {
                CancelScope.checkpoint();
                seen.add("before: not cancelled");
              } catch (InterruptedException e) {
                seen.add("before: cancelled");
              }
              work.run();
              try {
                CancelScope.create().run(CancelScope::checkpoint);
                seen.add("after");
              } catch (InterruptedException e) {
                seen.add("after"); // "may see" the cancellation: either is allowed
              }
            };
    TaskGroup group = TaskGroup.builder().contextPropagator(checks).build();
    CountDownLatch inWork = new CountDownLatch(1);
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(
              group.fork(
                  () -> {
                    inWork.countDown();
                    new CountDownLatch(1).await();
                  }));
          inWork.await();
          group.cancel();
        });
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
    assertThat(seen).containsExactly("before: not cancelled", "after");
  }

  /**
   * The same, but the propagator lets the cancellation's {@link InterruptedException} out of its
   * code (sneakily). Before the work, the child ends cancelled and the work does not run; after the
   * work, the javadoc says an exception outside the work "is a failure of the group".
   */
  @RepeatedTest(10)
  void aCancellationLetOutOfThePropagatorsBeforeCodeCancelsTheChild() throws Exception {
    AtomicInteger runs = new AtomicInteger();
    CountDownLatch forked = new CountDownLatch(1);
    ContextPropagator rethrows =
        work ->
            () -> {
              try {
                forked.await();
                CancelScope.checkpoint();
              } catch (InterruptedException e) {
                throw PropagationSweep2Test.<RuntimeException>sneaky(e);
              }
              work.run();
            };
    TaskGroup group = TaskGroup.builder().contextPropagator(rethrows).build();
    AtomicReference<Task<Integer>> task = new AtomicReference<>();
    group.run(
        () -> {
          task.set(group.fork(runs::incrementAndGet));
          group.cancel();
          forked.countDown();
        });
    assertThat(runs).hasValue(0);
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> X sneaky(Throwable t) throws X {
    throw (X) t;
  }

  /**
   * 10 000 forks, each capturing a large context in wrap: once the children have ended, no captured
   * context is still reachable (from the group, the tasks' bookkeeping or a dead thread), even
   * while the group is still running (Kotlin's coroutine context is likewise dropped with a
   * completed job; closest: kotlinx.coroutines' ReusableCancellableContinuationLeakStressTest).
   */
  @Test
  void tenThousandCapturedContextsAreNotRetainedOnceTheChildrenEnded() throws Exception {
    List<WeakReference<byte[]>> captured = new ArrayList<>();
    ContextPropagator big =
        work -> {
          byte[] ctx = new byte[4096];
          synchronized (captured) {
            captured.add(new WeakReference<>(ctx));
          }
          return () -> {
            ctx[0] = 1;
            work.run();
          };
        };
    TaskGroup group = TaskGroup.builder().contextPropagator(big).build();
    group.run(
        () -> {
          List<Task<Void>> tasks = new ArrayList<>();
          for (int i = 0; i < 10_000; i++) {
            tasks.add(group.fork(() -> {}));
          }
          for (Task<Void> t : tasks) {
            t.get();
          }
          // the after code has ended once the child left its group: wait until every one did
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
          int alive;
          do {
            System.gc();
            alive = 0;
            synchronized (captured) {
              for (WeakReference<byte[]> r : captured) {
                if (r.get() != null) {
                  alive++;
                }
              }
            }
            if (alive > 0) {
              Thread.onSpinWait();
            }
          } while (alive > 0 && System.nanoTime() < deadline);
          assertThat(alive).as("captured contexts still reachable, tasks held").isZero();
        });
    assertThat(captured).hasSize(10_000);
  }

  /**
   * A propagator whose wrap throws for the third of three {@code invokeAll} tasks: the fork is
   * rejected (ContextPropagator: a {@link RejectedExecutionException} with the cause), and {@code
   * invokeAll} throws that rejection itself, as ExecutorService.invokeAll does; the tasks already
   * running are cancelled and waited for before it throws (none failed: nothing is suppressed in
   * it), and the enclosing group is not failed by it.
   */
  @RepeatedTest(20)
  void aWrapThrowingForAnInvokeAllTaskIsThrownItselfAndTheOthersAreJoined() throws Exception {
    AtomicInteger wraps = new AtomicInteger();
    RuntimeException cause = new IllegalStateException("third wrap");
    ContextPropagator p =
        work -> {
          if (wraps.incrementAndGet() == 3) {
            throw cause;
          }
          return work;
        };
    AtomicInteger began = new AtomicInteger();
    AtomicInteger ended = new AtomicInteger();
    TaskGroup group = TaskGroup.builder().contextPropagator(p).build();
    group.run(
        () ->
            assertThatThrownBy(
                    () ->
                        TaskGroup.invokeAll(
                            List.<Callable<Integer>>of(
                                () -> {
                                  began.incrementAndGet();
                                  try {
                                    new CountDownLatch(1).await();
                                  } finally {
                                    ended.incrementAndGet();
                                  }
                                  return 1;
                                },
                                () -> 2,
                                () -> 3)))
                .isInstanceOfSatisfying(
                    RejectedExecutionException.class,
                    e -> {
                      assertThat(e).hasCause(cause);
                      assertThat(e.getSuppressed()).isEmpty();
                      // cancelled before or while it ran; if it ran, it ended first
                      assertThat(ended.get()).isEqualTo(began.get());
                    }));
    assertThat(wraps).hasValue(3);
  }
}
