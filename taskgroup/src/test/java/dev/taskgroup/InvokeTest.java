package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The result helpers: invokeAll (all results in order) and invokeAny (first success). */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class InvokeTest {

  @Test
  void invokeAllReturnsResultsInTheOrderGiven() throws Exception {
    AtomicReference<Thread> second = new AtomicReference<>();
    AtomicReference<Thread> third = new AtomicReference<>();
    List<Integer> results =
        TaskGroup.invokeAll(
            List.<Callable<Integer>>of(
                () -> {
                  endedBefore(third); // finishes last
                  return 1;
                },
                () -> {
                  second.set(Thread.currentThread()); // finishes first
                  return 2;
                },
                () -> {
                  third.set(Thread.currentThread());
                  endedBefore(second);
                  return 3;
                }));
    assertThat(results).containsExactly(1, 2, 3);
  }

  @Test
  void invokeAllFailureCancelsTheOthersAndReportsIt() {
    RuntimeException boom = new RuntimeException("boom");
    AtomicInteger cancelled = new AtomicInteger();
    CountDownLatch slowStarted = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                TaskGroup.invokeAll(
                    List.<Callable<String>>of(
                        () -> {
                          try {
                            slowStarted.countDown();
                            Thread.sleep(60_000);
                          } catch (InterruptedException ie) {
                            cancelled.incrementAndGet();
                            throw ie;
                          }
                          return "slow";
                        },
                        () -> {
                          slowStarted.await();
                          throw boom;
                        })));
    assertThat(e.failures()).containsExactly(boom);
    assertThat(cancelled.get()).isEqualTo(1);
  }

  @Test
  void invokeAnyReturnsTheFirstSuccessAndCancelsTheRest() throws Exception {
    AtomicInteger cancelled = new AtomicInteger();
    AtomicReference<Thread> failing = new AtomicReference<>();
    CountDownLatch slowStarted = new CountDownLatch(1);
    String result =
        TaskGroup.invokeAny(
            List.<Callable<String>>of(
                () -> {
                  failing.set(Thread.currentThread());
                  throw new IllegalStateException("fails first, ignored");
                },
                () -> {
                  endedBefore(failing);
                  slowStarted.await();
                  return "fast";
                },
                () -> {
                  try {
                    slowStarted.countDown();
                    Thread.sleep(60_000);
                  } catch (InterruptedException ie) {
                    cancelled.incrementAndGet();
                    throw ie;
                  }
                  return "slow";
                }));
    assertThat(result).isEqualTo("fast");
    assertThat(cancelled.get()).as("the loser was cancelled and waited for").isEqualTo(1);
  }

  /**
   * Waits until the task that publishes its thread in {@code other} has ended, thread and all:
   * orders the completions of tasks the test has no handle on, without sleeping.
   */
  private static void endedBefore(AtomicReference<Thread> other) throws InterruptedException {
    Probes.awaitTrue("the other task started", Duration.ofSeconds(10), () -> other.get() != null);
    other.get().join();
  }

  @Test
  void invokeAnyReportsEveryFailureWhenAllFail() {
    RuntimeException a = new RuntimeException("a");
    RuntimeException b = new RuntimeException("b");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                TaskGroup.invokeAny(
                    List.<Callable<String>>of(
                        () -> {
                          throw a;
                        },
                        () -> {
                          throw b;
                        })));
    assertThat(e.failures()).containsExactlyInAnyOrder(a, b);
  }

  @RepeatedTest(50)
  void invokeAnyWithTwoSimultaneousSuccessesReturnsExactlyOne() throws Exception {
    CyclicBarrier together = new CyclicBarrier(2);
    Callable<String> left =
        () -> {
          together.await();
          return "left";
        };
    Callable<String> right =
        () -> {
          together.await();
          return "right";
        };
    String result = TaskGroup.invokeAny(List.of(left, right));
    assertThat(result).isIn("left", "right");
  }

  @Test
  void invokeAnyMayReturnNull() throws Exception {
    assertThat(TaskGroup.invokeAny(List.<Callable<String>>of(() -> null))).isNull();
  }

  @Test
  void badArgumentsAreRejected() {
    assertThatThrownBy(() -> TaskGroup.invokeAny(List.of()))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> TaskGroup.invokeAll(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("tasks");
    assertThatThrownBy(() -> TaskGroup.invokeAll(java.util.Arrays.asList(() -> 1, null)))
        .isInstanceOf(NullPointerException.class);
    assertThat(catchThrowableOfType(NullPointerException.class, () -> TaskGroup.invokeAny(null)))
        .hasMessage("tasks");
  }

  @Test
  void invokeAllOfNothingIsEmpty() throws Exception {
    assertThat(TaskGroup.invokeAll(List.<Callable<String>>of())).isEmpty();
  }

  /**
   * A fork of invokeAll or invokeAny refused by a context propagator (of the group around the
   * caller) while the first task fails: the call throws the refusal itself, as ExecutorService
   * does, with the first task's failure suppressed in it (kept, not dropped), and the second task
   * never runs. Before, the refusal came wrapped as a failure of the invoking group.
   */
  @RepeatedTest(5)
  void aRefusedForkIsThrownItselfWithTheFailuresOfTheTasksBeforeItSuppressed() throws Exception {
    for (boolean any : new boolean[] {false, true}) {
      String what = any ? "invokeAny" : "invokeAll";
      CountDownLatch wrapping = new CountDownLatch(1);
      CountDownLatch firstThrowing = new CountDownLatch(1);
      IllegalStateException boom = new IllegalStateException("first task failed");
      IllegalStateException noThread = new IllegalStateException("no thread for the second");
      AtomicInteger wraps = new AtomicInteger();
      AtomicInteger secondRan = new AtomicInteger();
      ContextPropagator refuseSecond =
          work -> {
            if (wraps.incrementAndGet() == 2) {
              wrapping.countDown();
              try {
                firstThrowing.await(); // the first task is failing: its failure must not be lost
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
              throw noThread;
            }
            return work;
          };
      List<Callable<String>> tasks =
          List.of(
              () -> {
                wrapping.await(); // fails only once the second fork is being refused
                firstThrowing.countDown();
                throw boom;
              },
              () -> String.valueOf(secondRan.incrementAndGet()));
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      TaskGroup.builder()
          .contextPropagator(refuseSecond)
          .build()
          .run(
              () -> {
                try {
                  if (any) {
                    TaskGroup.invokeAny(tasks);
                  } else {
                    TaskGroup.invokeAll(tasks);
                  }
                } catch (Throwable t) {
                  thrown.set(t);
                }
              });
      Throwable t = thrown.get();
      assertThat(t).as(what).isInstanceOf(java.util.concurrent.RejectedExecutionException.class);
      assertThat(t.getCause()).as(what).isSameAs(noThread);
      // Both calls alike: the failures themselves (invokeAll suppressed its group's exception)
      assertThat(t.getSuppressed()).as(what).containsExactly(boom);
      assertThat(secondRan).as(what).hasValue(0);
    }
  }

  // invokeAny and invokeAll are decided by a task (the first result; the first failure), which
  // cancels the other tasks itself while the caller may still be forking them: every task forked
  // before, during or after the decision must be cancelled, or the call waits for ever (this
  // class's timeout). The deciding task is at a random place among 32; the others wait until
  // cancelled. The caller's interrupt status stays clear. Randomised: the seed is printed.
  @Test
  void theDecidingTaskStopsEveryOtherTaskWhateverTheMomentItIsForked() throws Exception {
    long seed = Probes.seed("invokeRace.seed", "InvokeTest deciding task");
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed);
    RuntimeException boom = new RuntimeException("boom");
    for (int round = 0; round < 400; round++) {
      boolean any = (round & 1) == 0;
      int decider = rnd.nextInt(32);
      List<Callable<String>> tasks = new java.util.ArrayList<>();
      for (int i = 0; i < 32; i++) {
        boolean decides = i == decider;
        tasks.add(
            () -> {
              if (decides) {
                if (any) {
                  return "won";
                }
                throw boom;
              }
              new CountDownLatch(1).await(); // until cancelled
              return "never";
            });
      }
      String what = "round " + round + " (seed " + seed + "), task " + decider + " decides";
      if (any) {
        assertThat(TaskGroup.invokeAny(tasks)).as(what).isEqualTo("won");
      } else {
        TaskGroupException e =
            catchThrowableOfType(TaskGroupException.class, () -> TaskGroup.invokeAll(tasks));
        assertThat(e).as(what).isNotNull();
        assertThat(e.failures()).as(what).containsExactly(boom);
      }
      assertThat(Thread.currentThread().isInterrupted()).as(what).isFalse();
    }
  }
}
