package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.taskgroup.Fixtures.Finished;
import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.io.IOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Failures cancel the rest and are all kept. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FailureTest {

  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void childFailureCancelsBodyAndSiblingsAndIsThrownAtTheEnd(ThreadKind kind) throws Exception {
    Tracking threads = new Tracking(kind);
    TaskGroup group = Fixtures.group("g", threads);
    RuntimeException boom = new RuntimeException("boom");
    CountDownLatch started = new CountDownLatch(3);
    Finished siblingsDone = new Finished();
    AtomicBoolean bodyCancelled = new AtomicBoolean();

    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      for (int i = 0; i < 3; i++) {
                        group.fork(Fixtures.blockedUntilCancelled(started, siblingsDone));
                      }
                      started.await();
                      group.fork(
                          () -> {
                            throw boom;
                          });
                      try {
                        Thread.sleep(60_000);
                      } catch (InterruptedException cancelled) {
                        bodyCancelled.set(true);
                      }
                    }));

    assertThat(e.failures()).containsExactly(boom);
    assertThat(e.getCause()).isSameAs(boom);
    assertThat(e.getMessage()).contains("g");
    assertThat(bodyCancelled).isTrue();
    assertThat(siblingsDone.count()).isEqualTo(3);
    assertThat(group.cancelCalled()).as("a failure does not set cancelCalled").isFalse();
    assertThat(group.cancelCaught()).isFalse();
    threads.assertAllDone();
  }

  @RepeatedTest(10)
  void failuresRaisedDuringCancellationAreKeptInOrder() throws Exception {
    TaskGroup group = TaskGroup.create();
    RuntimeException first = new RuntimeException("first");
    IllegalStateException cleanup = new IllegalStateException("cleanup failed");
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
                            } finally {
                              throw cleanup; // fails while being cancelled
                            }
                          });
                      started.await();
                      group.fork(
                          () -> {
                            throw first;
                          });
                    }));
    assertThat(e.failures()).containsExactly(first, cleanup);
    assertThat(e.getSuppressed()).containsExactly(cleanup);
  }

  @Test
  void bodyFailureCancelsChildrenAndKeepsTheOriginalCheckedException() throws Exception {
    TaskGroup group = TaskGroup.create();
    IOException failure = new IOException("disk full");
    Finished childDone = new Finished();
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
                              Fixtures.parkUntilInterrupted();
                            } finally {
                              childDone.mark();
                            }
                          });
                      started.await();
                      throw failure;
                    }));
    assertThat(e.failures()).containsExactly(failure);
    assertThat(childDone.count()).isEqualTo(1);
  }

  @Test
  void nestedGroupFailureIsKeptAsOneFailure() throws Exception {
    TaskGroup outer = TaskGroup.named("outer");
    RuntimeException a = new RuntimeException("a");
    RuntimeException b = new RuntimeException("b");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                outer.run(
                    () ->
                        outer.fork(
                            () -> {
                              TaskGroup inner = TaskGroup.named("inner");
                              AtomicInteger arrived = new AtomicInteger();
                              inner.run(
                                  () -> {
                                    for (RuntimeException f : new RuntimeException[] {a, b}) {
                                      inner.fork(
                                          () -> {
                                            arrived.incrementAndGet();
                                            while (arrived.get() < 2) {
                                              Thread.onSpinWait(); // no interruptible wait
                                            }
                                            throw f;
                                          });
                                    }
                                  });
                              return null;
                            })));
    assertThat(e.failures()).hasSize(1);
    TaskGroupException nested = (TaskGroupException) e.failures().get(0);
    assertThat(nested.failures()).containsExactlyInAnyOrder(a, b);
  }

  @RepeatedTest(10)
  void cancelThenFailureStillThrowsTheFailure() throws Exception {
    TaskGroup group = TaskGroup.create();
    RuntimeException late = new RuntimeException("late");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () ->
                        group.fork(
                            () -> {
                              group.cancel();
                              throw late;
                            })));
    assertThat(e.failures()).containsExactly(late);
    assertThat(group.cancelCalled()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
  }

  @RepeatedTest(10)
  void failureThenCancelStillThrowsTheFailure() throws Exception {
    TaskGroup group = TaskGroup.create();
    RuntimeException early = new RuntimeException("early");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      Task<Void> failing =
                          group.fork(
                              () -> {
                                throw early;
                              });
                      try {
                        failing.get();
                      } catch (ExecutionException expected) {
                        // the failure happened; now cancel on top of it
                      }
                      group.cancel();
                    }));
    assertThat(e.failures()).containsExactly(early);
  }

  @Test
  void cancellationIsNeverReportedAsAFailure() throws Exception {
    TaskGroup group = TaskGroup.create();
    RuntimeException boom = new RuntimeException("boom");
    CountDownLatch started = new CountDownLatch(2);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            started.countDown();
                            Thread.sleep(60_000); // InterruptedException when cancelled
                          });
                      group.fork(
                          () -> {
                            started.countDown();
                            try {
                              Thread.sleep(60_000);
                            } catch (InterruptedException ie) {
                              throw new CancellationException("wrapped cancel");
                            }
                          });
                      started.await();
                      throw boom;
                    }));
    assertThat(e.failures()).containsExactly(boom);
  }

  @Test
  void errorsAreFailuresToo() throws Exception {
    TaskGroup group = TaskGroup.create();
    StackOverflowError overflow = new StackOverflowError();
    AssertionError assertion = new AssertionError("assert");
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
                            } finally {
                              throw assertion; // an Error raised while being cancelled
                            }
                          });
                      started.await();
                      group.fork(
                          () -> {
                            throw overflow;
                          });
                    }));
    assertThat(e.failures()).containsExactly(overflow, assertion);
  }

  @Test
  void failedTaskReportsItsFailureThroughTheFuture() throws Exception {
    TaskGroup group = TaskGroup.create();
    RuntimeException boom = new RuntimeException("boom");
    AtomicReference<Task<String>> task = new AtomicReference<>();
    catchThrowableOfType(
        TaskGroupException.class,
        () ->
            group.run(
                () ->
                    task.set(
                        group.fork(
                            () -> {
                              throw boom;
                            }))));
    Task<String> t = task.get();
    assertThat(t.state()).isEqualTo(Future.State.FAILED);
    assertThat(t.exceptionNow()).isSameAs(boom);
    ExecutionException ee = catchThrowableOfType(ExecutionException.class, t::get);
    assertThat(ee.getCause()).isSameAs(boom);
  }
}
