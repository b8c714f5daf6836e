package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The result helpers: invokeAll (all results in order) and invokeAny (first success). */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class InvokeTest {

  @Test
  void invokeAllReturnsResultsInTheOrderGiven() throws Exception {
    List<Integer> results =
        TaskGroup.invokeAll(
            List.<Callable<Integer>>of(
                () -> {
                  Thread.sleep(30);
                  return 1;
                },
                () -> 2,
                () -> {
                  Thread.sleep(10);
                  return 3;
                }));
    assertThat(results).containsExactly(1, 2, 3);
  }

  @Test
  void invokeAllFailureCancelsTheOthersAndReportsIt() {
    RuntimeException boom = new RuntimeException("boom");
    AtomicInteger cancelled = new AtomicInteger();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                TaskGroup.invokeAll(
                    List.<Callable<String>>of(
                        () -> {
                          try {
                            Thread.sleep(60_000);
                          } catch (InterruptedException ie) {
                            cancelled.incrementAndGet();
                            throw ie;
                          }
                          return "slow";
                        },
                        () -> {
                          Thread.sleep(10);
                          throw boom;
                        })));
    assertThat(e.failures()).containsExactly(boom);
    assertThat(cancelled.get()).isEqualTo(1);
  }

  @Test
  void invokeAnyReturnsTheFirstSuccessAndCancelsTheRest() throws Exception {
    AtomicInteger cancelled = new AtomicInteger();
    String result =
        TaskGroup.invokeAny(
            List.<Callable<String>>of(
                () -> {
                  throw new IllegalStateException("fails fast, ignored");
                },
                () -> {
                  Thread.sleep(20);
                  return "fast";
                },
                () -> {
                  try {
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
}
