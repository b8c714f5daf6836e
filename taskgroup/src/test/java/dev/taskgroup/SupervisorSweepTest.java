package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * An adversarial sweep of supervisors: {@link FailurePolicy#COLLECT}, the {@link
 * TaskGroup.Builder#onFailure} handler, and the failure accounting of {@link
 * FailurePolicy#CANCEL_ALL}. Handlers that fork, restart, block, enter scopes and throw; failures
 * raised while the group is cancelled, by a deadline, a shield's exit or an outer group's failure;
 * thousands of failures at once; shared and odd throwables. Each test checks a promise of the
 * javadoc of {@code TaskGroup}, {@code FailurePolicy} or {@code TaskGroupException}: every failure
 * exactly once (handler or exception), in order, never after {@code run} returned, and {@code
 * run}'s outcome by the precedence of "When outcomes coincide". Closest upstream: CPython {@code
 * test_taskgroups.py}, Trio {@code test_nursery} / AnyIO {@code test_taskgroups.py} (exception
 * groups), Kotlin {@code SupervisorJob} with a {@code CoroutineExceptionHandler} (from memory:
 * closest).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class SupervisorSweepTest {

  // ---- the handler forks: a supervisor restarting failed work -------------------------------

  /**
   * The supervisor pattern (Erlang/Kotlin: restart what failed): the handler forks the failed job
   * again, under maxConcurrency. The handler runs on the failing child's thread, which holds its
   * place until the handler returns; maxConcurrency's javadoc: "A fork from inside one of the
   * group's own children never waits". A fork from the handler that waited for a place would wait
   * for its own thread's, for ever. Here one place, three jobs that each fail twice before they
   * succeed; some restarts are forked from a scope the handler entered. Every job ends succeeded,
   * one at a time.
   */
  @RepeatedTest(10)
  @Timeout(value = 10, unit = TimeUnit.SECONDS)
  void handlerRestartingFailedWorkUnderMaxConcurrencyDoesNotDeadlock() throws Exception {
    int jobs = 3;
    int failuresPerJob = 2;
    Map<Integer, AtomicInteger> attempts = new ConcurrentHashMap<>();
    Map<Integer, Boolean> succeeded = new ConcurrentHashMap<>();
    AtomicInteger running = new AtomicInteger();
    AtomicInteger maxRunning = new AtomicInteger();
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    AtomicReference<TaskGroup> self = new AtomicReference<>();
    AtomicReference<java.util.function.IntFunction<Body>> job = new AtomicReference<>();
    job.set(
        id ->
            () -> {
              maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
              try {
                Thread.yield();
                if (attempts.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet()
                    <= failuresPerJob) {
                  throw new JobFailed(id);
                }
                succeeded.put(id, true);
              } finally {
                running.decrementAndGet();
              }
            });
    TaskGroup group =
        TaskGroup.builder()
            .name("restarting")
            .maxConcurrency(1)
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  int id = ((JobFailed) f).id;
                  Body again = job.get().apply(id);
                  if (id % 2 == 0) {
                    self.get().fork(again);
                  } else {
                    try {
                      CancelScope.create().run(() -> self.get().fork(again)); // from a scope
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                  }
                })
            .build();
    self.set(group);
    group.run(
        () -> {
          for (int i = 0; i < jobs; i++) {
            group.fork(job.get().apply(i));
          }
        });
    assertThat(succeeded).hasSize(jobs);
    assertThat(handled).hasSize(jobs * failuresPerJob);
    assertThat(maxRunning.get()).isEqualTo(1);
  }

  // ---- what the handler throws while its thread is being cancelled ---------------------------

  /**
   * A body that fails in its cleanup after the group's cancel(): its failure goes to the handler,
   * on the owner's thread, still inside the cancelled group, where a blocking call (here a
   * checkpoint) is interrupted. The handler turns that into the common {@code new
   * RuntimeException(e)}. TaskGroupException: "The cancellations of the group, its scopes and its
   * tasks are never among them"; had the body thrown that same exception it would be the
   * cancellation (CancelScope, "What counts as a cancellation"). So run returns normally, by the
   * group's own cancel, and the body's failure was handed over once.
   */
  @RepeatedTest(10)
  void handlerInterruptedByTheBodysCancellationIsNotAFailure() throws Exception {
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    TaskGroup group =
        TaskGroup.builder()
            .name("body-handler")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  try {
                    CancelScope.checkpoint();
                  } catch (InterruptedException e) {
                    throw new RuntimeException("handler stopped", e);
                  }
                })
            .build();
    IllegalStateException cleanup = new IllegalStateException("body cleanup");
    group.run(
        () -> {
          group.cancel();
          try {
            CancelScope.checkpoint();
          } catch (InterruptedException e) {
            throw cleanup;
          }
        });
    assertThat(handled).containsExactly(cleanup);
    assertThat(group.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  /**
   * A child of a cancelled supervisor that fails while the cancellation's interrupt is still set on
   * its thread (it noticed the cancellation by polling and threw): its handler, on that thread,
   * finds a blocking call interrupted, and lets the interrupt out wrapped, from a
   * try-with-resources whose close() fails too. The wrapped interrupt is the child's cancellation,
   * not a failure; the close() failure riding on it is one (never lost), reported by run.
   */
  @RepeatedTest(10)
  void handlerOfACancelledChildInterruptedIsNotAFailureButWhatRidesOnItIs() throws Exception {
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    IllegalStateException closeFailed = new IllegalStateException("close failed");
    TaskGroup group =
        TaskGroup.builder()
            .name("child-handler")
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  handled.add(f);
                  try (AutoCloseable r =
                      () -> {
                        throw closeFailed;
                      }) {
                    Thread.sleep(60_000);
                  } catch (Exception e) {
                    throw new RuntimeException("handler stopped", e);
                  }
                })
            .build();
    IllegalStateException noticed = new IllegalStateException("noticed the cancellation");
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            while (!Thread.currentThread().isInterrupted()) {
                              Thread.onSpinWait();
                            }
                            throw noticed;
                          });
                      started.await();
                      group.cancel();
                    }));
    assertThat(handled).containsExactly(noticed);
    assertThat(thrown)
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(closeFailed));
  }

  /**
   * The handler rethrows the very failure it was given, while the failing child is being cancelled:
   * "an exception it throws is a failure of the group"; the failure was judged one already, and is
   * not taken for the cancellation now.
   */
  @RepeatedTest(10)
  void handlerRethrowingItsFailureWhileCancelledKeepsIt() throws Exception {
    TaskGroup group =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                f -> {
                  throw (RuntimeException) f;
                })
            .build();
    IllegalStateException noticed = new IllegalStateException("noticed the cancellation");
    CountDownLatch started = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            while (!Thread.currentThread().isInterrupted()) {
                              Thread.onSpinWait();
                            }
                            throw noticed;
                          });
                      started.await();
                      group.cancel();
                    }));
    assertThat(thrown)
        .isInstanceOfSatisfying(
            TaskGroupException.class, e -> assertThat(e.failures()).containsExactly(noticed));
  }

  /** A job's failure, naming the job. */
  private static final class JobFailed extends RuntimeException {
    final int id;

    JobFailed(int id) {
      super("job " + id + " failed", null, false, false);
      this.id = id;
    }
  }
}
