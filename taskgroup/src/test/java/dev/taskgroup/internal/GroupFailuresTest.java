package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.FailurePolicy;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The failures a group keeps for the exception its run throws. */
class GroupFailuresTest {
  private static RuntimeException failure(int i) {
    return new RuntimeException("failure " + i, null, false, false) {};
  }

  /** Each failure once, in order, the same one rethrown counted once, on both sides of the set. */
  @Test
  void keepsEachFailureOnceInOrder() {
    GroupFailures f = new GroupFailures();
    List<Throwable> made = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      RuntimeException e = failure(i);
      made.add(e);
      f.keep(e);
      f.keep(made.get(i / 2)); // one kept before: not again
    }
    assertThat(f.take()).containsExactlyElementsOf(made);
  }

  /**
   * Keeping n failures costs time linear in n: looking for a rethrown one scanned the whole list,
   * so 200 000 failures took minutes (80 000 took 10 s), under the group's monitor.
   */
  @Test
  @Timeout(value = 10, unit = TimeUnit.SECONDS)
  void keepingManyFailuresIsLinear() {
    GroupFailures f = new GroupFailures();
    int n = 200_000;
    for (int i = 0; i < n; i++) {
      f.keep(failure(i));
    }
    assertThat(f.take()).hasSize(n);
  }

  /** The same through a COLLECT group without a handler, which keeps every child's failure. */
  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void aCollectGroupKeepsEveryFailureOfManyChildren() throws Exception {
    int n = 50_000;
    TaskGroup g = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT).build();
    TaskGroupException e = null;
    try {
      g.run(
          () -> {
            for (int wave = 0; wave < n; wave += 1_000) {
              List<Task<Object>> forked = new ArrayList<>();
              for (int i = wave; i < wave + 1_000; i++) {
                RuntimeException thrown = failure(i);
                forked.add(
                    g.fork(
                        () -> {
                          throw thrown;
                        }));
              }
              for (Task<Object> t : forked) {
                try {
                  t.get();
                } catch (ExecutionException expected) {
                  // kept by the group too
                }
              }
            }
          });
    } catch (TaskGroupException thrown) {
      e = thrown;
    }
    assertThat(e).isNotNull();
    assertThat(e.failures()).hasSize(n);
  }
}
