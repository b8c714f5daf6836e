package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * One builder, many groups: a builder reuses the configuration it built last, so these check that
 * every setter makes the next build see the change, that groups built before keep theirs, and that
 * a rejected setter changes nothing.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class BuilderReuseTest {

  /** A propagator that records its tag on the child's thread, before the work. */
  private static ContextPropagator tagging(String tag, Queue<String> trail) {
    return work ->
        () -> {
          trail.add(tag);
          work.run();
        };
  }

  @Test
  void aPropagatorAddedAfterABuildReachesOnlyTheGroupsBuiltAfterIt() throws Exception {
    Queue<String> trail = new ConcurrentLinkedQueue<>();
    TaskGroup.Builder builder = TaskGroup.builder().contextPropagator(tagging("A", trail));
    TaskGroup first = builder.build();
    TaskGroup second = builder.build();
    builder.contextPropagator(tagging("B", trail));
    TaskGroup third = builder.build();

    for (TaskGroup g : List.of(first, second, third)) {
      trail.clear();
      g.run(() -> g.fork(() -> trail.add("work")));
      assertThat(trail)
          .containsExactlyElementsOf(g == third ? List.of("B", "A", "work") : List.of("A", "work"));
    }
  }

  @RepeatedTest(10)
  void everySetterChangesTheNextBuildOnly() throws Exception {
    TaskGroup.Builder builder = TaskGroup.builder().name("before");
    TaskGroup before = builder.build();
    TaskGroup renamed = builder.name("after").build();
    TaskGroup collecting = builder.failurePolicy(FailurePolicy.COLLECT).build();
    TaskGroup timed = builder.timeout(Duration.ZERO).build();
    TaskGroup single = builder.maxConcurrency(1).timeout(Duration.ofDays(1)).build();
    TaskGroup two = builder.maxConcurrency(2).build();

    assertThat(before.name()).isEqualTo("before");
    assertThat(renamed.name()).isEqualTo("after");
    // failurePolicy: under COLLECT a sibling of a failing child is not cancelled
    assertThat(siblingSurvivesAFailure(collecting)).isTrue();
    assertThat(siblingSurvivesAFailure(renamed)).isFalse();
    // timeout: the group built after it is cancelled by it, the one before is not
    assertThat(endsCancelled(timed)).isTrue();
    assertThat(endsCancelled(before)).isFalse();
    // maxConcurrency: with one place the second child waits for the first
    assertThat(mostRunningAtOnce(single)).isEqualTo(1);
    assertThat(mostRunningAtOnce(two)).isEqualTo(2);
  }

  @RepeatedTest(10)
  void aRejectedSetterLeavesTheNextBuildAsBefore() throws Exception {
    Queue<String> trail = new ConcurrentLinkedQueue<>();
    TaskGroup.Builder builder =
        TaskGroup.builder().name("kept").maxConcurrency(1).contextPropagator(tagging("A", trail));
    builder.build(); // the builder now holds a configuration it reuses
    assertThatThrownBy(() -> builder.maxConcurrency(0))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> builder.timeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> builder.contextPropagator(null))
        .isInstanceOf(NullPointerException.class);
    TaskGroup limited = builder.build();
    TaskGroup after = builder.build();
    assertThat(after.name()).isEqualTo("kept");
    trail.clear();
    after.run(() -> after.fork(() -> trail.add("work")));
    assertThat(trail).containsExactly("A", "work");
    assertThat(mostRunningAtOnce(limited)).isEqualTo(1);
  }

  @Test
  void onFailureWithoutCollectIsRejectedAtEveryBuildEvenAfterAGoodOne() {
    TaskGroup.Builder builder = TaskGroup.builder().failurePolicy(FailurePolicy.COLLECT);
    builder.onFailure(e -> {}).build();
    builder.failurePolicy(FailurePolicy.CANCEL_ALL);
    assertThatThrownBy(builder::build)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("failurePolicy(COLLECT)");
    assertThatThrownBy(builder::build).isInstanceOf(IllegalStateException.class);
  }

  /** Threads sharing one builder (a template) each get a whole, working group. */
  @RepeatedTest(20)
  void oneBuilderSharedByManyThreadsBuildsWorkingGroups() throws Exception {
    Queue<String> trail = new ConcurrentLinkedQueue<>();
    TaskGroup.Builder shared =
        TaskGroup.builder().name("shared").contextPropagator(tagging("A", trail));
    int threads = 8;
    CountDownLatch go = new CountDownLatch(1);
    AtomicInteger ok = new AtomicInteger();
    TaskGroup outer = TaskGroup.create();
    outer.run(
        () -> {
          for (int i = 0; i < threads; i++) {
            outer.fork(
                () -> {
                  go.await();
                  for (int j = 0; j < 50; j++) {
                    TaskGroup g = shared.build();
                    AtomicInteger ran = new AtomicInteger();
                    g.run(() -> g.fork(ran::incrementAndGet));
                    if (ran.get() == 1 && g.name().equals("shared")) {
                      ok.incrementAndGet();
                    }
                  }
                });
          }
          go.countDown();
        });
    assertThat(ok.get()).isEqualTo(threads * 50);
    assertThat(trail.stream().filter("A"::equals).count()).isEqualTo(threads * 50);
  }

  /**
   * Whether a sibling that waits for a failing child's outcome is left running: a group reports a
   * child's failure (and, under CANCEL_ALL, cancels the rest) before the child's Task completes.
   */
  private static boolean siblingSurvivesAFailure(TaskGroup group) throws InterruptedException {
    AtomicInteger survived = new AtomicInteger();
    try {
      group.run(
          () -> {
            Task<Void> failing =
                group.fork(
                    (Body)
                        () -> {
                          throw new IllegalStateException("boom");
                        });
            group.fork(
                () -> {
                  try {
                    try {
                      failing.get();
                    } catch (ExecutionException expected) {
                      // the failure, seen after the group dealt with it
                    }
                    CancelScope.checkpoint();
                    survived.set(1);
                  } catch (InterruptedException e) {
                    // cancelled by the failure
                  }
                });
          });
    } catch (TaskGroupException expected) {
      // both policies report the failure
    }
    return survived.get() == 1;
  }

  private static boolean endsCancelled(TaskGroup group) throws InterruptedException {
    group.run(() -> {});
    return group.cancelCalled();
  }

  /**
   * Forks two children that hold their places until a watcher releases them: once both run, or once
   * the second fork waits for a place (the body is parked in it with one child running).
   */
  private static int mostRunningAtOnce(TaskGroup group) throws Exception {
    AtomicInteger running = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<Thread> body = new AtomicReference<>();
    AtomicBoolean secondForkReturned = new AtomicBoolean();
    Thread watcher =
        Thread.ofPlatform()
            .start(
                () -> {
                  while (running.get() < 2
                      && !secondForkWaits(body.get(), running, secondForkReturned)) {
                    Thread.onSpinWait();
                  }
                  release.countDown();
                });
    group.run(
        () -> {
          body.set(Thread.currentThread());
          for (int i = 0; i < 2; i++) {
            group.fork(
                () -> {
                  most.accumulateAndGet(running.incrementAndGet(), Math::max);
                  release.await();
                  running.decrementAndGet();
                });
          }
          secondForkReturned.set(true);
        });
    watcher.join();
    return most.get();
  }

  private static boolean secondForkWaits(
      Thread body, AtomicInteger running, AtomicBoolean secondForkReturned) {
    return body != null
        && running.get() == 1
        && !secondForkReturned.get()
        && body.getState() == Thread.State.WAITING;
  }
}
