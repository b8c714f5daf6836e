package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Trail;
import java.util.Queue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The {@link Task} handle: Future semantics and cancelling one task. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class TaskTest {

  @Test
  void getReturnsTheResultAndStateIsSuccess() throws Exception {
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          Task<Integer> t = g.fork(() -> 6 * 7);
          assertThat(t.get()).isEqualTo(42);
          assertThat(t.state()).isEqualTo(Future.State.SUCCESS);
          assertThat(t.resultNow()).isEqualTo(42);
          assertThat(t.isDone()).isTrue();
          assertThat(t.isCancelled()).isFalse();
          assertThatThrownBy(t::exceptionNow).isInstanceOf(IllegalStateException.class);
        });
  }

  @Test
  void timedGetTimesOutWhileRunning() throws Exception {
    TaskGroup g = TaskGroup.create();
    g.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          Task<String> t =
              g.fork(
                  () -> {
                    release.await();
                    return "late";
                  });
          assertThatThrownBy(() -> t.get(10, TimeUnit.MILLISECONDS))
              .isInstanceOf(TimeoutException.class);
          assertThat(t.state()).isEqualTo(Future.State.RUNNING);
          assertThatThrownBy(t::resultNow).isInstanceOf(IllegalStateException.class);
          release.countDown();
          assertThat(t.get(10, TimeUnit.SECONDS)).isEqualTo("late");
        });
  }

  @Test
  void manyWaitersAreAllReleased() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Integer> sum = new AtomicReference<>(0);
    g.run(
        () -> {
          CountDownLatch release = new CountDownLatch(1);
          Task<Integer> t =
              g.fork(
                  () -> {
                    release.await();
                    return 1;
                  });
          CountDownLatch waiting = new CountDownLatch(10);
          for (int i = 0; i < 10; i++) {
            g.fork(
                () -> {
                  waiting.countDown();
                  int v = t.get();
                  sum.accumulateAndGet(v, Integer::sum);
                });
          }
          waiting.await();
          release.countDown();
        });
    assertThat(sum.get()).isEqualTo(10);
  }

  @RepeatedTest(10)
  void cancellingOneTaskLeavesSiblingsAndTheGroupAlone() throws Exception {
    TaskGroup g = TaskGroup.create();
    Trail trail = new Trail();
    g.run(
        () -> {
          CountDownLatch started = new CountDownLatch(1);
          Task<String> victim =
              g.fork(
                  () -> {
                    started.countDown();
                    Thread.sleep(60_000);
                    return "never";
                  });
          Task<String> sibling = g.fork(() -> "sibling ok");
          started.await();
          assertThat(victim.cancel(false)).isTrue();
          assertThat(victim.state()).isEqualTo(Future.State.CANCELLED);
          assertThat(victim.isCancelled()).isTrue();
          assertThat(victim.cancel(true)).isFalse();
          assertThatThrownBy(victim::get).isInstanceOf(CancellationException.class);
          trail.add(sibling.get());
          CancelScope.checkpoint();
          trail.add("body not cancelled");
        });
    assertThat(trail.events()).containsExactly("sibling ok", "body not cancelled");
    assertThat(g.cancelCalled()).isFalse();
    assertThat(g.cancelCaught()).isFalse();
  }

  @Test
  void groupWaitsForACancelledTaskThatKeepsRunning() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicBoolean done = new AtomicBoolean();
    AtomicReference<Task<String>> task = new AtomicReference<>();
    g.run(
        () -> {
          CountDownLatch started = new CountDownLatch(1);
          task.set(
              g.fork(
                  () -> {
                    started.countDown();
                    try {
                      Thread.sleep(60_000);
                    } catch (InterruptedException swallowed) {
                      long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(20);
                      while (System.nanoTime() < until) {
                        Thread.onSpinWait();
                      }
                    }
                    done.set(true);
                    return "late result, dropped";
                  }));
          started.await();
          task.get().cancel(true);
        });
    assertThat(done).isTrue();
    assertThat(task.get().state()).isEqualTo(Future.State.CANCELLED);
  }

  @Test
  void lateFailureOfACancelledTaskIsStillAFailureOfTheGroup() throws Exception {
    TaskGroup g = TaskGroup.create();
    RuntimeException late = new RuntimeException("late");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      CountDownLatch started = new CountDownLatch(1);
                      Task<Void> t =
                          g.fork(
                              () -> {
                                started.countDown();
                                try {
                                  Thread.sleep(60_000);
                                } finally {
                                  throw late;
                                }
                              });
                      started.await();
                      t.cancel(true);
                    }));
    assertThat(e.failures()).containsExactly(late);
  }

  @Test
  void taskNameIsTheGivenNameOrTheThreadName() throws Exception {
    TaskGroup g =
        TaskGroup.builder().threadFactory(Thread.ofPlatform().name("pt-", 1).factory()).build();
    g.run(
        () -> {
          assertThat(g.fork("given", () -> 1).name()).isEqualTo("given");
          assertThat(g.fork(() -> 1).name()).startsWith("pt-");
        });
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void aNamedChildWithNoResultRunsOnAThreadOfThatName(ThreadKind kind) throws Exception {
    TaskGroup g = TaskGroup.builder().threadFactory(kind.factory()).build();
    AtomicReference<String> threadName = new AtomicReference<>();
    AtomicReference<Task<Void>> task = new AtomicReference<>();
    Body recordName = () -> threadName.set(Thread.currentThread().getName());
    g.run(() -> task.set(g.fork("flusher", recordName)));
    assertThat(threadName.get()).isEqualTo("flusher");
    assertThat(task.get().name()).isEqualTo("flusher");
    assertThat(task.get().state()).isEqualTo(Future.State.SUCCESS);
    assertThat(task.get().resultNow()).isNull();
  }

  @Test
  void aThreadFactorysUncaughtExceptionHandlerKeepsReceivingWhatReachesIt() throws Exception {
    Queue<Throwable> handled = new ConcurrentLinkedQueue<>();
    ThreadFactory withHandler =
        Thread.ofVirtual().uncaughtExceptionHandler((t, e) -> handled.add(e)).factory();
    TaskGroup g = TaskGroup.builder().threadFactory(withHandler).build();
    RuntimeException reported = new RuntimeException("reported through the thread's handler");
    CountDownLatch blocked = new CountDownLatch(1);
    g.run(
        () -> {
          g.fork(
              () -> {
                Thread me = Thread.currentThread();
                me.getUncaughtExceptionHandler().uncaughtException(me, reported);
                blocked.countDown();
                Thread.sleep(60_000); // the group still cancels this thread
              });
          blocked.await();
          g.cancel();
        });
    assertThat(handled).containsExactly(reported);
    assertThat(g.cancelCaught()).isTrue();
  }

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void aTaskWaitingForItselfIsRefusedAtOnceAndLeftAsItWas(ThreadKind kind) throws Exception {
    TaskGroup g = TaskGroup.builder().threadFactory(kind.factory()).build();
    AtomicReference<Task<String>> self = new AtomicReference<>();
    CountDownLatch published = new CountDownLatch(1);
    Queue<Throwable> refused = new ConcurrentLinkedQueue<>();
    g.run(
        () -> {
          self.set(
              g.fork(
                  "self-reader",
                  () -> {
                    published.await();
                    Task<String> me = self.get();
                    refused.add(catchThrowableOfType(IllegalStateException.class, me::get));
                    refused.add(
                        catchThrowableOfType(
                            IllegalStateException.class, () -> me.get(1, TimeUnit.DAYS)));
                    assertThat(me.state()).isEqualTo(Future.State.RUNNING);
                    assertThat(Thread.currentThread().isInterrupted()).isFalse();
                    return "returned after the refusals";
                  }));
          published.countDown();
        });
    assertThat(refused).hasSize(2).doesNotContainNull();
    assertThat(refused)
        .allSatisfy(
            e ->
                assertThat(e.getMessage())
                    .contains("'self-reader'", "from its own thread", "return the value"));
    assertThat(self.get().resultNow()).isEqualTo("returned after the refusals");
  }

  @Test
  void theFailureHandlerOnAFailingChildsThreadCannotWaitForThatChild() throws Exception {
    AtomicReference<Task<Void>> failing = new AtomicReference<>();
    CountDownLatch published = new CountDownLatch(1);
    Queue<Throwable> refused = new ConcurrentLinkedQueue<>();
    IllegalArgumentException boom = new IllegalArgumentException("boom");
    TaskGroup g =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f ->
                    refused.add(
                        catchThrowableOfType(IllegalStateException.class, failing.get()::get)))
            .build();
    g.run(
        () -> {
          failing.set(
              g.fork(
                  () -> {
                    published.await();
                    throw boom;
                  }));
          published.countDown();
        });
    assertThat(refused).singleElement().isNotNull();
    assertThat(failing.get().exceptionNow()).isSameAs(boom);
  }

  @Test
  void aDependentStageOnTheTasksOwnThreadReadsItsOutcome() throws Exception {
    TaskGroup g = TaskGroup.create();
    AtomicReference<Object> read = new AtomicReference<>();
    CountDownLatch staged = new CountDownLatch(1);
    g.run(
        () -> {
          AtomicReference<Task<String>> self = new AtomicReference<>();
          Task<String> t =
              g.fork(
                  () -> {
                    staged.await(); // the stage is added before the work ends: its thread runs it
                    return "done";
                  });
          self.set(t);
          t.toCompletableFuture()
              .thenRun(
                  () -> {
                    try {
                      read.set(self.get().get());
                    } catch (Exception e) {
                      read.set(e);
                    }
                  });
          staged.countDown();
        });
    assertThat(read.get()).isEqualTo("done");
  }

  @Test
  void theCancellationATaskCancelSendsNamesTheTaskOnceAndWhoCancelledIt() throws Exception {
    TaskGroup g = TaskGroup.named("orders");
    AtomicReference<Throwable> seen = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1);
    g.run(
        () -> {
          Task<Void> fetch =
              g.fork(
                  "fetch",
                  () -> {
                    started.countDown();
                    try {
                      new CountDownLatch(1).await();
                    } catch (InterruptedException e) {
                      seen.set(catchThrowable(CancelScope::checkpoint)); // the library's own
                      throw e;
                    }
                  });
          started.await();
          Thread.ofPlatform().name("canceller").start(() -> fetch.cancel(true)).join();
        });
    assertThat(seen.get())
        .isInstanceOf(CancelledException.class)
        .hasMessage(
            "task 'fetch' of group 'orders' cancelled by thread \"canceller\": Task.cancel() called");
  }

  @RepeatedTest(3)
  @Timeout(20)
  void aReaderThatIsNotCancelledLearnsWhyTheTaskWasCancelled() throws Exception {
    TaskGroup g = TaskGroup.named("orders");
    CountDownLatch started = new CountDownLatch(2);
    AtomicReference<Task<Void>> byGroup = new AtomicReference<>();
    AtomicReference<Task<Void>> byTask = new AtomicReference<>();
    g.run(
        () -> {
          byGroup.set(g.fork("fetch", () -> parkUntilCancelled(started)));
          byTask.set(g.fork("price", () -> parkUntilCancelled(started)));
          started.await();
          Thread.ofPlatform().name("canceller").start(() -> byTask.get().cancel(true)).join();
          Thread.ofPlatform().name("stopper").start(() -> g.cancel("shutting down")).join();
        });
    assertThat(catchThrowable(byGroup.get()::get))
        .isInstanceOf(CancellationException.class)
        .hasMessage(
            "task 'fetch' of group 'orders' was cancelled (cancelled by thread \"stopper\": shutting"
                + " down)");
    assertThat(catchThrowable(byTask.get()::resultNow))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage(
            "task 'price' of group 'orders' was cancelled (cancelled by thread \"canceller\":"
                + " Task.cancel() called)");
  }

  private static void parkUntilCancelled(CountDownLatch started) throws InterruptedException {
    started.countDown();
    new CountDownLatch(1).await();
  }
}
