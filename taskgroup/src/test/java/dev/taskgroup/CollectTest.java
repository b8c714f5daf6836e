package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.Finished;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The supervisor policy, COLLECT, with and without a failure handler. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CollectTest {

  private static TaskGroup collecting() {
    return TaskGroup.builder().name("supervisor").failurePolicy(FailurePolicy.COLLECT).build();
  }

  @Test
  void failingChildCancelsNobodyAndFailuresAreReportedAtTheEnd() throws Exception {
    TaskGroup group = collecting();
    RuntimeException a = new RuntimeException("a");
    RuntimeException b = new RuntimeException("b");
    Finished siblingsCompleted = new Finished();
    AtomicBoolean bodyCompleted = new AtomicBoolean();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      Task<Void> first =
                          group.fork(
                              () -> {
                                throw a;
                              });
                      while (!first.isDone()) {
                        Thread.onSpinWait();
                      }
                      CountDownLatch bFailed = new CountDownLatch(1);
                      CountDownLatch siblingsDone = new CountDownLatch(3);
                      for (int i = 0; i < 3; i++) {
                        group.fork(
                            () -> {
                              bFailed.await(); // not interrupted: nobody was cancelled
                              siblingsCompleted.mark();
                              siblingsDone.countDown();
                            });
                      }
                      Task<Void> second =
                          group.fork(
                              () -> {
                                throw b;
                              });
                      Probes.awaitTrue("b failed", Duration.ofSeconds(10), second::isDone);
                      bFailed.countDown();
                      siblingsDone.await(); // the body is not interrupted either
                      bodyCompleted.set(true);
                    }));
    assertThat(e.failures()).containsExactly(a, b);
    assertThat(siblingsCompleted.count()).isEqualTo(3);
    assertThat(bodyCompleted).isTrue();
  }

  @Test
  void handlerGetsEachFailureAsItHappensAndRunReturnsNormally() throws Exception {
    List<Throwable> handled = new CopyOnWriteArrayList<>();
    List<String> handledOn = new CopyOnWriteArrayList<>();
    TaskGroup group =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                t -> {
                  handled.add(t);
                  handledOn.add(Thread.currentThread().getName());
                })
            .build();
    RuntimeException a = new RuntimeException("a");
    AtomicBoolean seenBeforeEnd = new AtomicBoolean();
    group.run(
        () -> {
          Task<Void> t =
              group.fork(
                  "failing-worker",
                  () -> {
                    throw a;
                  });
          while (!t.isDone()) {
            Thread.onSpinWait();
          }
          seenBeforeEnd.set(handled.contains(a));
        });
    assertThat(seenBeforeEnd).as("handed over as it happened").isTrue();
    assertThat(handled).containsExactly(a);
    assertThat(handledOn).containsExactly("failing-worker");
  }

  @Test
  void bodyFailureStillCancelsTheChildren() throws Exception {
    TaskGroup group = collecting();
    IllegalStateException boom = new IllegalStateException("body");
    AtomicBoolean childCancelled = new AtomicBoolean();
    CountDownLatch started = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException ie) {
                              childCancelled.set(true);
                              throw ie;
                            }
                          });
                      started.await();
                      throw boom;
                    }));
    assertThat(e.failures()).containsExactly(boom);
    assertThat(childCancelled).isTrue();
  }

  @Test
  void handlerThatThrowsIsAFailureOfTheGroup() throws Exception {
    IllegalArgumentException handlerBug = new IllegalArgumentException("handler bug");
    TaskGroup group =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(
                t -> {
                  throw handlerBug;
                })
            .build();
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () ->
                        group.fork(
                            () -> {
                              throw new RuntimeException("child");
                            })));
    assertThat(e.failures()).containsExactly(handlerBug);
  }

  @Test
  void handlerKeepsMemoryFlatOverManyFailures() throws Exception {
    int children = Stress.scaled(50_000, 1_000_000);
    AtomicInteger handled = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder()
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(t -> handled.incrementAndGet())
            .maxConcurrency(1_000)
            .build();
    long[] heap = new long[2];
    RuntimeException failure = new RuntimeException("shared failure, no stack to pin memory");
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            if (i == children / 10) {
              heap[0] = Probes.usedHeapAfterGc();
            }
            group.fork(
                () -> {
                  throw failure;
                });
          }
          heap[1] = Probes.usedHeapAfterGc();
        });
    assertThat(handled.get()).isEqualTo(children);
    System.out.printf(
        "COLLECT with handler, %,d failing children: heap after GC %,d KiB at 10%%, %,d KiB at"
            + " the end%n",
        children, heap[0] / 1024, heap[1] / 1024);
    assertThat(heap[1] - heap[0]).as("heap growth in bytes").isLessThan(32L << 20);
  }
}
