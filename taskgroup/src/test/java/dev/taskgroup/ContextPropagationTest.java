package dev.taskgroup;

import static dev.taskgroup.Propagators.REQUEST;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.taskgroup.Propagators.CarryRequest;
import dev.taskgroup.Propagators.Tagging;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Context propagation: what a child inherits, and the group's own ContextPropagators. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ContextPropagationTest {

  @Test
  void theModuleDeclaresThatItUsesContextPropagators() {
    Module module = ContextPropagator.class.getModule();
    assumeTrue(module.isNamed(), "runs on the module path only");
    assertThat(module.getDescriptor().uses()).contains(ContextPropagator.class.getName());
  }

  @Test
  void withoutPropagatorOnlyInheritableThreadLocalsReachAChild() throws Exception {
    InheritableThreadLocal<String> inheritable = new InheritableThreadLocal<>();
    inheritable.set("inherited");
    REQUEST.set("req-1");
    TaskGroup group = TaskGroup.create();
    AtomicReference<String> seen = new AtomicReference<>();
    group.run(() -> group.fork(() -> seen.set(inheritable.get() + "/" + REQUEST.get())));
    assertThat(seen.get()).isEqualTo("inherited/null");
  }

  @Test
  void aPropagatorCarriesContextIntoChildAndRestoresItAfter() throws Exception {
    REQUEST.set("req-1");
    TaskGroup group = TaskGroup.builder().contextPropagator(new CarryRequest()).build();
    AtomicReference<String> seen = new AtomicReference<>();
    group.run(() -> group.fork(() -> seen.set(REQUEST.get())));
    assertThat(seen.get()).isEqualTo("req-1");
    assertThat(REQUEST.get()).isEqualTo("req-1");
  }

  /**
   * Builder.onFailure: "A failing child's handler runs after the child's work and its context
   * propagators' code have ended: context they set around the work ... is no longer in place". The
   * body's failure reaches the handler on the owner, in the owner's own context.
   */
  @Test
  void aFailingChildsHandlerRunsOutsideItsPropagatorsContext() throws Exception {
    REQUEST.set("req-1");
    Map<Throwable, String> contextInHandler = new ConcurrentHashMap<>();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(new CarryRequest())
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> contextInHandler.put(f, String.valueOf(REQUEST.get())))
            .build();
    AtomicReference<String> inWork = new AtomicReference<>();
    IllegalStateException childFailure = new IllegalStateException("child");
    IllegalStateException bodyFailure = new IllegalStateException("body");
    group.run(
        () -> {
          Task<Void> child =
              group.fork(
                  () -> {
                    inWork.set(REQUEST.get());
                    throw childFailure;
                  });
          try {
            child.get(); // the handler has run once the task is done; the body's failure would
            // cancel a child that has not started yet
          } catch (ExecutionException handedToTheHandler) {
            // reported to the handler, not here
          }
          throw bodyFailure;
        });
    assertThat(inWork.get()).isEqualTo("req-1");
    assertThat(contextInHandler).containsEntry(childFailure, "null");
    assertThat(contextInHandler).containsEntry(bodyFailure, "req-1");
    REQUEST.remove();
  }

  /**
   * The same for a failure riding on a child's cancellation (a {@code close()} that failed as the
   * cancellation left its try-with-resources): handled once the propagators' code has ended.
   */
  @RepeatedTest(3)
  void aFailureRidingOnAChildsCancellationIsHandledOutsideItsPropagatorsContext() throws Exception {
    REQUEST.set("req-1");
    Map<String, String> contextInHandler = new ConcurrentHashMap<>();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(new CarryRequest())
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(f -> contextInHandler.put(f.getMessage(), String.valueOf(REQUEST.get())))
            .build();
    CountDownLatch blocked = new CountDownLatch(1);
    AtomicReference<String> inWork = new AtomicReference<>();
    group.run(
        () -> {
          Task<Object> child =
              group.fork(
                  () -> {
                    inWork.set(REQUEST.get());
                    try (AutoCloseable failingClose =
                        () -> {
                          throw new IllegalStateException("riding");
                        }) {
                      blocked.countDown();
                      new CountDownLatch(1).await(); // until cancelled
                    }
                    return null;
                  });
          blocked.await();
          child.cancel(true);
        });
    assertThat(inWork.get()).isEqualTo("req-1");
    assertThat(contextInHandler).containsExactly(Map.entry("riding", "null"));
    REQUEST.remove();
  }

  @Test
  void propagatorsWrapInOrderAndTheLastRunsOutermost() throws Exception {
    Queue<String> trail = Propagators.trail();
    String owner = Thread.currentThread().getName();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(new Tagging("A", trail))
            .contextPropagator(new Tagging("B", trail))
            .build();
    group.run(() -> group.fork(() -> trail.add("work")).get());
    assertThat(trail)
        .containsExactly(
            "A wrap on " + owner,
            "B wrap on " + owner,
            "B before",
            "A before",
            "work",
            "A after",
            "B after");
  }

  @Test
  void wrapRunsOnTheForkingThreadBeforeTheThreadFactory() throws Exception {
    Queue<String> trail = Propagators.trail();
    TaskGroup group =
        TaskGroup.builder()
            .threadFactory(Propagators.recordingFactory(trail))
            .contextPropagator(new Tagging("A", trail))
            .build();
    group.run(
        () -> {
          Thread forker = Thread.ofPlatform().name("forker").start(() -> group.fork(() -> {}));
          forker.join();
        });
    assertThat(trail).startsWith("A wrap on forker", "newThread on forker", "A before").hasSize(4);
  }

  @Test
  void wrapThrowingRejectsTheForkAndLeavesTheGroupAsItWas() throws Exception {
    Queue<String> trail = Propagators.trail();
    RuntimeException boom = new IllegalStateException("no context");
    AtomicInteger wraps = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder()
            .maxConcurrency(1)
            .threadFactory(Propagators.recordingFactory(trail))
            .contextPropagator(
                work -> {
                  if (wraps.incrementAndGet() == 1) {
                    throw boom;
                  }
                  return work;
                })
            .build();
    AtomicInteger ran = new AtomicInteger();
    group.run(
        () -> {
          assertThatThrownBy(() -> group.fork(ran::incrementAndGet))
              .isInstanceOf(RejectedExecutionException.class)
              .hasMessageContaining("so a fork into group '")
              .hasCause(boom);
          assertThat(trail).as("no thread made").isEmpty();
          // the place under maxConcurrency(1) was given back: this fork does not wait
          assertThat(group.fork(() -> ran.addAndGet(10)).get()).isEqualTo(10);
        });
    assertThat(ran.get()).as("the rejected work never ran").isEqualTo(10);
    assertThat(group.cancelCalled()).isFalse();
  }

  @Test
  void wrapReturningNullRejectsTheFork() throws Exception {
    TaskGroup group = TaskGroup.builder().contextPropagator(work -> null).build();
    group.run(
        () ->
            assertThatThrownBy(() -> group.fork(() -> {}))
                .isInstanceOf(RejectedExecutionException.class)
                .hasMessageContaining("returned null"));
  }

  @Test
  void aForkIntoACancelledGroupDoesNotCallWrap() throws Exception {
    AtomicInteger wraps = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work -> {
                  wraps.incrementAndGet();
                  return work;
                })
            .build();
    AtomicReference<Future.State> state = new AtomicReference<>();
    group.run(
        () -> {
          group.cancel();
          state.set(group.fork(() -> {}).state());
        });
    assertThat(state.get()).isEqualTo(Future.State.CANCELLED);
    assertThat(wraps.get()).isZero();
  }

  @Test
  void aPropagatorThrowingAfterTheWorkIsAFailureOfTheGroupAndTask() {
    RuntimeException boom = new IllegalStateException("restore failed");
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                runThen(
                    () -> {
                      throw boom;
                    }))
            .build();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    assertThatThrownBy(() -> group.run(() -> task.set(group.fork(() -> "done"))))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(boom));
    assertThat(task.get().state()).isEqualTo(Future.State.FAILED);
    assertThat(task.get().exceptionNow()).isSameAs(boom);
  }

  @Test
  void aPropagatorThrowingAfterAFailedWorkReportsBothInOrder() {
    RuntimeException restore = new IllegalStateException("restore failed");
    RuntimeException work = new IllegalArgumentException("work failed");
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                runThen(
                    () -> {
                      throw restore;
                    }))
            .build();
    assertThatThrownBy(
            () ->
                group.run(
                    () ->
                        group.fork(
                            () -> {
                              throw work;
                            })))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(work, restore));
  }

  @Test
  void aPropagatorThrowingBeforeTheWorkIsAFailureAndTheWorkNeverRuns() {
    RuntimeException boom = new IllegalStateException("cannot install context");
    AtomicInteger ran = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      throw boom;
                    })
            .build();
    assertThatThrownBy(() -> group.run(() -> group.fork(ran::incrementAndGet)))
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(boom));
    assertThat(ran.get()).isZero();
  }

  @Test
  void aPropagatorThatNeverRunsTheWorkIsAFailure() {
    AtomicInteger ran = new AtomicInteger();
    TaskGroup group = TaskGroup.builder().contextPropagator(work -> () -> {}).build();
    assertThatThrownBy(() -> group.run(() -> group.fork(ran::incrementAndGet)))
        .isInstanceOfSatisfying(
            TaskGroupException.class,
            e -> {
              assertThat(e.failures()).hasSize(1);
              assertThat(e.failures().get(0))
                  .isInstanceOf(IllegalStateException.class)
                  .hasMessageContaining("returned without running the work");
            });
    assertThat(ran.get()).isZero();
  }

  @Test
  void aPropagatorThatRunsTheWorkTwiceRunsItOnce() {
    AtomicInteger ran = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                work ->
                    () -> {
                      work.run();
                      work.run();
                    })
            .build();
    assertThatThrownBy(() -> group.run(() -> group.fork(ran::incrementAndGet)))
        .isInstanceOfSatisfying(
            TaskGroupException.class,
            e -> assertThat(e.failures().get(0).getMessage()).contains("twice"));
    assertThat(ran.get()).isEqualTo(1);
  }

  @RepeatedTest(20)
  void propagatorCodeAfterTheWorkEndsBeforeRunReturns() throws Exception {
    int children = 20;
    AtomicInteger restored = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(
                runThen(
                    () -> {
                      LockSupport.parkNanos(1_000_000L); // a slow restore
                      restored.incrementAndGet();
                    }))
            .build();
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            group.fork(() -> {});
          }
        });
    assertThat(restored.get()).isEqualTo(children);
  }

  /** A propagator that runs the work, then {@code after} (in a finally). */
  static ContextPropagator runThen(Runnable after) {
    return work ->
        () -> {
          try {
            work.run();
          } finally {
            after.run();
          }
        };
  }

  /**
   * A propagator's code after work.run() (flushing a span, say) is part of the child: the child is
   * still RUNNING and its group waits for it, so the group's cancel and its deadline interrupt that
   * code, as they interrupt the code before the work. Neither did (it slept its full 60 s; 2 of 2).
   */
  @RepeatedTest(3)
  void thePropagatorsCodeAfterTheWorkIsReachedByTheGroupsCancellation() throws Exception {
    for (String how : new String[] {"cancel", "deadline"}) {
      CountDownLatch afterWork = new CountDownLatch(1);
      AtomicReference<Throwable> flush = new AtomicReference<>();
      ContextPropagator flushing =
          work ->
              () -> {
                work.run();
                afterWork.countDown();
                try {
                  Thread.sleep(60_000); // a blocking flush
                } catch (InterruptedException e) {
                  flush.set(e);
                }
              };
      TaskGroup.Builder b = TaskGroup.builder().contextPropagator(flushing);
      if (how.equals("deadline")) {
        b.timeout(java.time.Duration.ofMillis(50));
      }
      TaskGroup g = b.build();
      AtomicReference<Task<Integer>> child = new AtomicReference<>();
      g.run(
          () -> {
            child.set(g.fork(() -> 1));
            afterWork.await();
            assertThat(child.get().state()).isEqualTo(Future.State.RUNNING);
            if (how.equals("cancel")) {
              g.cancel();
            }
          });
      assertThat(flush.get())
          .as("the flush was interrupted (%s)", how)
          .isInstanceOf(InterruptedException.class);
      assertThat(g.cancelCaught()).isTrue();
      assertThat(child.get().resultNow()).as("the work's own outcome stands").isEqualTo(1);
    }
  }

  /**
   * A propagator that runs the work inside a group of its own (a helper for the child's context):
   * once the work has returned, that group is still the thread's, and its cancel is seen there. The
   * work's end took the thread out of every scope, the helper group's too: its cancel set nothing
   * the thread could see (isCancelled() false, checkpoint() passed; 2 of 2).
   */
  @RepeatedTest(3)
  void aScopeAPropagatorEntersAroundTheWorkIsStillTheThreadsAfterTheWork() throws Exception {
    AtomicReference<Boolean> seen = new AtomicReference<>();
    AtomicReference<Throwable> checkpoint = new AtomicReference<>();
    ContextPropagator helperGroup =
        work ->
            () -> {
              TaskGroup aux = TaskGroup.create();
              try {
                aux.run(
                    () -> {
                      work.run();
                      aux.cancel();
                      seen.set(CancelScope.isCancelled());
                      try {
                        CancelScope.checkpoint();
                      } catch (InterruptedException e) {
                        checkpoint.set(e);
                        throw e;
                      }
                    });
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            };
    TaskGroup g = TaskGroup.builder().contextPropagator(helperGroup).build();
    AtomicReference<Task<Integer>> child = new AtomicReference<>();
    g.run(() -> child.set(g.fork(() -> 2)));
    assertThat(seen.get()).as("isCancelled() after the helper group's cancel").isTrue();
    assertThat(checkpoint.get()).isInstanceOf(CancelledException.class);
    assertThat(child.get().resultNow()).isEqualTo(2);
  }

  /**
   * An onCancel action is wrapped by the propagators as a child's work is, under the same rules:
   * run once, on the thread that runs what wrap() returned, or the action fails with an
   * IllegalStateException. A propagator that skipped it lost the action silently, one that ran it
   * twice ran it twice (3 of 3 runs).
   */
  @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
  @org.junit.jupiter.params.provider.ValueSource(
      strings = {"skips", "runs twice", "runs elsewhere"})
  void aPropagatorMisusingAnOnCancelActionFailsTheGroupAsForAChild(String misuse) throws Exception {
    java.util.concurrent.ExecutorService elsewhere =
        java.util.concurrent.Executors.newSingleThreadExecutor();
    try {
      ContextPropagator p =
          work ->
              () -> {
                switch (misuse) {
                  case "skips" -> {}
                  case "runs twice" -> {
                    work.run();
                    work.run();
                  }
                  default -> {
                    try {
                      elsewhere.submit(work).get();
                    } catch (ExecutionException e) {
                      throw (RuntimeException) e.getCause();
                    } catch (InterruptedException e) {
                      throw new IllegalStateException(e);
                    }
                  }
                }
              };
      AtomicInteger ran = new AtomicInteger();
      TaskGroup g = TaskGroup.builder().contextPropagator(p).build();
      TaskGroupException e =
          org.assertj.core.api.Assertions.catchThrowableOfType(
              TaskGroupException.class,
              () ->
                  g.run(
                      () -> {
                        try (var hook = CancelScope.onCancel(ran::incrementAndGet)) {
                          g.cancel();
                          Thread.sleep(60_000);
                        }
                      }));
      assertThat(ran.get()).isEqualTo(misuse.equals("runs twice") ? 1 : 0);
      assertThat(e).as("the group fails").isNotNull();
      assertThat(e.failures())
          .singleElement()
          .isInstanceOf(IllegalStateException.class)
          .extracting(Throwable::getMessage, org.assertj.core.api.InstanceOfAssertFactories.STRING)
          .contains(
              switch (misuse) {
                case "skips" -> "returned without running the onCancel action";
                case "runs twice" -> "twice";
                default -> "on another thread";
              });
    } finally {
      elsewhere.shutdownNow();
    }
  }

  /**
   * The propagator's code after the work is part of the child, and the group's cancellation reaches
   * it: what it lets out for that cancellation (the InterruptedException itself, or wrapped) is no
   * failure of the group, and the task's outcome stays the work's. It was a failure (the group
   * threw TaskGroupException[InterruptedException], the task FAILED) in 199 of 200 rounds.
   */
  @RepeatedTest(5)
  @Timeout(20)
  void theCancellationLetOutOfThePropagatorsCodeAfterTheWorkIsNoFailure() throws Exception {
    for (boolean wrapped : new boolean[] {false, true}) {
      CountDownLatch inAfterCode = new CountDownLatch(1);
      ContextPropagator blocksAfter =
          work ->
              () -> {
                work.run();
                inAfterCode.countDown();
                try {
                  new CountDownLatch(1).await(); // until the cancellation interrupts it
                } catch (InterruptedException e) {
                  throw wrapped ? new IllegalStateException("restoring failed", e) : sneaky(e);
                }
              };
      TaskGroup group = TaskGroup.builder().contextPropagator(blocksAfter).build();
      AtomicReference<Task<String>> task = new AtomicReference<>();
      group.run(
          () -> {
            task.set(group.fork(() -> "done"));
            inAfterCode.await();
            group.cancel("enough");
          });
      assertThat(task.get().state()).as("wrapped: %s", wrapped).isEqualTo(Future.State.SUCCESS);
      assertThat(task.get().resultNow()).isEqualTo("done");
    }
  }

  @SuppressWarnings("unchecked")
  private static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
    throw (E) e;
  }
}
