package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.io.Serial;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Exceptions crossing the library's boundaries in wrappers: a user failure riding on a library-made
 * exception (suppressed on a cancellation, on the {@code ExecutionException} of {@code Task.get()},
 * on a nested group's {@code TaskGroupException}) or a library-made exception riding on a user one
 * (a cancellation wrapped in a {@code RuntimeException}, a task's failure wrapped in JDK or user
 * wrappers), rethrown into a group's body, a sibling, a scope, {@code failAfter}, {@code start}, an
 * {@code onCancel} action or {@code invokeAll}. Each user exception must surface exactly once (in
 * what {@code run} throws, to the {@code onFailure} handler, or to the caller of the call), never
 * lost and never counted twice ({@code TaskGroup}: "Failures are never lost"; {@code Task}: "if the
 * body or a sibling rethrows that exception, the group knows it as the child's failure and does not
 * report it a second time"; "An exception suppressed on such a rethrown exception ... is
 * reported").
 *
 * <p>The try-with-resources whose {@code close()} fails while the block is being cancelled follows
 * Trio's {@code test_cancel_scope_exit_doesnt_create_cyclic_garbage} / {@code
 * test_nursery_exception_chaining} family (closest: an exception raised in cleanup during a
 * cancellation must not vanish with the cancellation) and CPython {@code test_taskgroups.py}
 * test_taskgroup_23 (a sibling awaiting a failed task and re-raising).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class WrapperSweepTest {

  private static TaskGroup collecting(String name) {
    return TaskGroup.builder().name(name).failurePolicy(FailurePolicy.COLLECT).build();
  }

  /** A resource whose close() throws {@code failure}. */
  private static AutoCloseable failingClose(Exception failure) {
    return () -> {
      throw failure;
    };
  }

  /**
   * The common Java idiom: a try-with-resources around a blocking call, inside a method that turns
   * InterruptedException into an unchecked exception. The close() failure is suppressed on the
   * InterruptedException, which becomes the cause of what is thrown.
   */
  private static void blockWrappingTheInterrupt(CountDownLatch in, Exception closeFailed) {
    try {
      try (AutoCloseable r = failingClose(closeFailed)) {
        in.countDown();
        Thread.sleep(60_000);
      }
    } catch (InterruptedException e) {
      throw new IllegalStateException("interrupted", e);
    } catch (Exception other) {
      throw new AssertionError("unexpected", other);
    }
  }

  /** Every throwable reachable from {@code t} through causes and suppressed, by identity. */
  private static int occurrences(Throwable t, Throwable wanted) {
    return occurrences(t, wanted, new ArrayList<>());
  }

  private static int occurrences(Throwable t, Throwable wanted, List<Throwable> seen) {
    if (t == null || seen.stream().anyMatch(s -> s == t)) {
      return 0;
    }
    seen.add(t);
    int n = t == wanted ? 1 : 0;
    n += occurrences(t.getCause(), wanted, seen);
    for (Throwable s : t.getSuppressed()) {
      n += occurrences(s, wanted, seen);
    }
    if (t instanceof TaskGroupException tge) {
      for (Throwable f : tge.failures()) {
        n += occurrences(f, wanted, seen);
      }
    }
    return n;
  }

  // ---- a failure suppressed on a cancellation that the user wrapped -------------------------

  // A child cancelled with the group: its close() failure rides on the InterruptedException it
  // wrapped. "Any exception with one of those in its cause chain" is the cancellation, but the
  // close() failure is not: it must not vanish with the cancellation (FailurePolicy: "no failure
  // is ever lost").
  @RepeatedTest(10)
  void aCloseFailureOnAWrappedCancellationInAChildIsReported() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    TaskGroup g = TaskGroup.named("wrapped-in-child");
    CountDownLatch in = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      g.fork(() -> blockWrappingTheInterrupt(in, closeFailed));
                      in.await();
                      g.cancel();
                    }));
    assertThat(thrown).as("the close() failure was lost").isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
  }

  // The same in the group's body.
  @RepeatedTest(10)
  void aCloseFailureOnAWrappedCancellationInTheBodyIsReported() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    TaskGroup g = TaskGroup.named("wrapped-in-body");
    Throwable thrown =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      CountDownLatch in = new CountDownLatch(1);
                      g.cancel();
                      blockWrappingTheInterrupt(in, closeFailed);
                    }));
    assertThat(thrown).as("the close() failure was lost").isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
  }

  // The same in a plain scope that absorbs the cancellation: CancelScope.run throws the riding
  // failure, as it does for one suppressed on the InterruptedException itself.
  @RepeatedTest(10)
  void aCloseFailureOnAWrappedCancellationInAPlainScopeIsThrown() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    CancelScope s = CancelScope.create();
    Throwable thrown =
        catchThrowable(
            () ->
                s.run(
                    () -> {
                      s.cancel();
                      blockWrappingTheInterrupt(new CountDownLatch(1), closeFailed);
                    }));
    assertThat(thrown).as("the close() failure was lost").isSameAs(closeFailed);
  }

  // A cancellation only by the thread's state (a SocketException thrown while the cancellation's
  // interrupt is pending: a socket the interrupt closed) carries the I/O stack's own
  // exceptions in its cause chain, with whatever they suppressed: those are the effect of the
  // cancellation, not failures riding on it. Only a cancellation by a type in the chain (the
  // wrapped
  // InterruptedException above) takes riders from its causes. The scope absorbs it and returns.
  @RepeatedTest(5)
  void theCausesOfACancellationByStateCarryNoRidingFailures() throws Exception {
    CancelScope s = CancelScope.create();
    s.run(
        () -> {
          s.cancel(); // delivered at once: the interrupt status is set, as for a blocked call
          assertThat(Thread.currentThread().isInterrupted()).isTrue();
          RuntimeException internal = new RuntimeException("transport: connection reset");
          internal.addSuppressed(new IllegalStateException("transport: cleanup after the reset"));
          throw new java.net.SocketException("socket closed", internal);
        });
    assertThat(s.cancelCaught()).isTrue();
  }

  // failAfter: the deadline cancels the body, whose close() failure rides on the wrapped
  // cancellation: the failure, not the TimeoutException (a lost failure otherwise).
  @RepeatedTest(5)
  void aCloseFailureOnAWrappedCancellationInFailAfterIsThrown() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    Throwable thrown =
        catchThrowable(
            () ->
                CancelScope.failAfter(
                    Duration.ZERO,
                    () -> {
                      blockWrappingTheInterrupt(new CountDownLatch(1), closeFailed);
                      return null;
                    }));
    assertThat(thrown).as("the close() failure was lost").isSameAs(closeFailed);
  }

  // moveOnAfter: the riding failure, not the null of a timeout.
  @RepeatedTest(5)
  void aCloseFailureOnAWrappedCancellationInMoveOnAfterIsThrown() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    Throwable thrown =
        catchThrowable(
            () ->
                CancelScope.moveOnAfter(
                    Duration.ZERO,
                    () -> {
                      blockWrappingTheInterrupt(new CountDownLatch(1), closeFailed);
                      return "finished";
                    }));
    assertThat(thrown).as("the close() failure was lost").isSameAs(closeFailed);
  }

  // A cooperative scope: the cancellation comes from a checkpoint (a CancelledException, the
  // library's own), which the block wraps; the close() failure rides on it all the same.
  @RepeatedTest(5)
  void aCloseFailureOnAWrappedCheckpointInACooperativeScopeIsThrown() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    CancelScope s = CancelScope.cooperative();
    Throwable thrown =
        catchThrowable(
            () ->
                s.run(
                    () -> {
                      s.cancel();
                      try {
                        try (AutoCloseable r = failingClose(closeFailed)) {
                          CancelScope.checkpoint();
                        }
                      } catch (InterruptedException e) {
                        throw new IllegalStateException("checkpoint", e);
                      }
                    }));
    assertThat(thrown).as("the close() failure was lost").isSameAs(closeFailed);
  }

  // invokeAll: the first failure cancels the sibling, whose close() failure rides on its wrapped
  // cancellation. "every failure is then reported".
  @RepeatedTest(10)
  void aCloseFailureOnAWrappedCancellationInInvokeAllIsReported() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    RuntimeException first = new RuntimeException("first");
    CountDownLatch in = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                TaskGroup.invokeAll(
                    List.<java.util.concurrent.Callable<Object>>of(
                        () -> {
                          blockWrappingTheInterrupt(in, closeFailed);
                          return null;
                        },
                        () -> {
                          in.await();
                          throw first;
                        })));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(first, closeFailed);
  }

  // invokeAny when every task fails, one of them with a CancellationException that nothing
  // cancelled (a failure, Task's javadoc): a TaskGroupException with every failure, each once, and
  // the close() failure suppressed on one of them travels on it (JDK invokeAny: an
  // ExecutionException when no task completed successfully; closest: OpenJDK
  // InvokeAnyTest / AbstractExecutorService.doInvokeAny).
  @RepeatedTest(5)
  void invokeAnyWithEveryTaskFailedReportsEachFailureOnce() {
    java.util.concurrent.CancellationException own =
        new java.util.concurrent.CancellationException("the work's own, nothing cancelled it");
    IOException io = new IOException("refused");
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                TaskGroup.invokeAny(
                    List.<java.util.concurrent.Callable<Object>>of(
                        () -> {
                          throw own;
                        },
                        () -> {
                          try (AutoCloseable r = failingClose(closeFailed)) {
                            throw io;
                          }
                        })));
    assertThat(e).as("invokeAny must throw the failures").isNotNull();
    assertThat(e.failures()).containsExactlyInAnyOrder(own, io);
    assertThat(io.getSuppressed()).containsExactly(closeFailed);
    assertThat(occurrences(e, closeFailed)).isEqualTo(1);
  }

  // Control: suppressed on the InterruptedException itself, unwrapped (already handled).
  @RepeatedTest(5)
  void aCloseFailureOnAnUnwrappedCancellationInAChildIsReported() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    TaskGroup g = TaskGroup.named("unwrapped-in-child");
    CountDownLatch in = new CountDownLatch(1);
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      g.fork(
                          () -> {
                            try (AutoCloseable r = failingClose(closeFailed)) {
                              in.countDown();
                              Thread.sleep(60_000);
                            }
                            return null;
                          });
                      in.await();
                      g.cancel();
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(closeFailed);
  }

  // ---- a failure suppressed on an outside interrupt of the group's owner -------------------

  // Someone else interrupts the owner while the body blocks in a try-with-resources whose close()
  // fails: the InterruptedException carries the close() failure. TaskGroup, "When outcomes
  // coincide": "(1) failures: TaskGroupException (an interrupt of the owner from outside stays set
  // on the thread)" before "(2) the owner was interrupted by someone else". The close() failure
  // must not be dropped with the InterruptedException.
  @RepeatedTest(10)
  void aCloseFailureOnAnOutsideInterruptOfTheBodyIsReported() throws Exception {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    TaskGroup g = TaskGroup.named("outside-body");
    CountDownLatch in = new CountDownLatch(1);
    Thread owner = Thread.currentThread();
    OutsideInterrupter interrupter = OutsideInterrupter.onceWaiting(in, () -> owner);
    Throwable thrown;
    boolean interruptLeftSet;
    try {
      thrown =
          catchThrowable(
              () ->
                  g.run(
                      () -> {
                        try (AutoCloseable r = failingClose(closeFailed)) {
                          in.countDown();
                          Thread.sleep(60_000);
                        }
                      }));
    } finally {
      interruptLeftSet = Thread.interrupted(); // before the join, which it would break
      interrupter.join();
    }
    assertThat(thrown).as("the close() failure was lost").isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
    assertThat(interruptLeftSet).as("the outside interrupt stays set").isTrue();
  }

  // The same one level down: a nested group's run throws for the outside interrupt, and the
  // body's try-with-resources around it adds its close() failure to that exception.
  @RepeatedTest(10)
  void aCloseFailureOnANestedGroupsOutsideInterruptIsReported() throws Exception {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    TaskGroup outer = TaskGroup.named("outside-outer");
    CountDownLatch in = new CountDownLatch(1);
    Thread owner = Thread.currentThread();
    OutsideInterrupter interrupter = OutsideInterrupter.onceWaiting(in, () -> owner);
    Throwable thrown;
    try {
      thrown =
          catchThrowable(
              () ->
                  outer.run(
                      () -> {
                        TaskGroup nested = TaskGroup.named("outside-nested");
                        try (AutoCloseable r = failingClose(closeFailed)) {
                          nested.run(
                              () -> {
                                in.countDown();
                                Thread.sleep(60_000);
                              });
                        }
                      }));
    } finally {
      Thread.interrupted(); // before the join, which it would break
      interrupter.join();
    }
    assertThat(thrown).as("the close() failure was lost").isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) thrown).failures()).containsExactly(closeFailed);
  }

  // ---- a child's failure object rethrown bare ----------------------------------------------

  // A sibling rethrows the failed task's exceptionNow(): the same throwable is kept once
  // (TaskGroupException.failures). (With an onFailure handler it is handed over again, as for
  // children that throw one shared instance: CollectTest.handlerKeepsMemoryFlatOverManyFailures.)
  @RepeatedTest(5)
  void exceptionNowRethrownByASiblingIsKeptOnce() {
    TaskGroup g = collecting("exception-now-kept");
    RuntimeException failure = new RuntimeException("only once");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      g.fork(
                          () -> {
                            try {
                              return failing.get();
                            } catch (ExecutionException ee) {
                              throw (RuntimeException) failing.exceptionNow();
                            }
                          });
                    }));
    assertThat(e.failures()).containsExactly(failure);
  }

  // An onCancel action rethrows the failure object of a child that already failed: the action's
  // failure is the group's (CancelScope.onCancel), and the same throwable is kept once.
  @RepeatedTest(5)
  void anOnCancelActionRethrowingAChildsFailureIsKeptOnce() {
    TaskGroup g = collecting("on-cancel-rethrow");
    RuntimeException failure = new RuntimeException("only once");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      ExecutionException read =
                          catchThrowableOfType(ExecutionException.class, failing::get);
                      assertThat(read).hasCause(failure);
                      CancelScope s = CancelScope.create();
                      s.run(
                          () -> {
                            try (var hook =
                                CancelScope.onCancel(
                                    () -> {
                                      throw (RuntimeException) failing.exceptionNow();
                                    })) {
                              s.cancel();
                            }
                          });
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(failure);
  }

  // The same action rethrowing Task.get()'s exception with a suppressed failure of its own: the
  // child's failure once, the action's suppressed one reported (Task: "An exception suppressed on
  // such a rethrown exception on its way ... is reported").
  @RepeatedTest(5)
  void anOnCancelActionRethrowingGetsExceptionKeepsItsSuppressed() {
    TaskGroup g = collecting("on-cancel-get");
    RuntimeException failure = new RuntimeException("only once");
    IllegalStateException extra = new IllegalStateException("the action's own");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      catchThrowable(failing::get);
                      CancelScope s = CancelScope.create();
                      s.run(
                          () -> {
                            try (var hook =
                                CancelScope.onCancel(
                                    () -> {
                                      try (AutoCloseable r = failingClose(extra)) {
                                        failing.get();
                                      }
                                    })) {
                              s.cancel();
                            }
                          });
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(failure, extra);
  }

  // ---- a close() failure on Task.get()'s exception, rethrown out of a shield ----------------

  // CANCEL_ALL: the child's failure cancels the body; the body reads the failure in a shield
  // (where nothing is cancelled) and the read's close() fails with an IOException. The IOException
  // left the shield (riding on the rethrown ExecutionException): "an IOException that leaves a
  // shielded scope ... is a failure at every exit further out too". It must not be taken for the
  // cancellation because the cancellation's interrupt is delivered again after the shield.
  // Every way of reading the outcome (RethrownFailureTest.READS: Task.get(), the future's join(),
  // get(), a dependent stage, CancelScope.await).
  @RepeatedTest(5)
  void anIoCloseFailureOnAReadRethrownFromAShieldInTheBodyIsReported() {
    for (int i = 0; i < RethrownFailureTest.READS.size(); i++) {
      RethrownFailureTest.Read read = RethrownFailureTest.READS.get(i);
      RuntimeException failure = new RuntimeException("the child's");
      IOException closeFailed = new IOException("close() failed in the shield");
      TaskGroup g = TaskGroup.named("shield-body");
      TaskGroupException e =
          catchThrowableOfType(
              TaskGroupException.class,
              () ->
                  g.run(
                      () -> {
                        Task<Object> failing =
                            g.fork(
                                () -> {
                                  throw failure;
                                });
                        try {
                          Thread.sleep(60_000); // ended by the failure's cancellation
                        } catch (InterruptedException cancelled) {
                          CancelScope.shielded()
                              .run(
                                  () -> {
                                    try (AutoCloseable r = failingClose(closeFailed)) {
                                      read.from(failing);
                                    }
                                  });
                        }
                      }));
      assertThat(e).as("read #%d", i).isNotNull();
      assertThat(e.failures()).as("read #%d", i).containsExactly(failure, closeFailed);
    }
  }

  // The same in a sibling.
  @RepeatedTest(10)
  void anIoCloseFailureOnAReadRethrownFromAShieldInASiblingIsReported() {
    RuntimeException failure = new RuntimeException("the child's");
    IOException closeFailed = new IOException("close() failed in the shield");
    TaskGroup g = TaskGroup.named("shield-sibling");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      CountDownLatch in = new CountDownLatch(1);
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                in.await();
                                throw failure;
                              });
                      g.fork(
                          () -> {
                            try {
                              in.countDown();
                              Thread.sleep(60_000);
                            } catch (InterruptedException cancelled) {
                              CancelScope.shielded()
                                  .run(
                                      () -> {
                                        try (AutoCloseable r = failingClose(closeFailed)) {
                                          failing.get();
                                        }
                                      });
                            }
                          });
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(failure, closeFailed);
  }

  // ---- wrappers around a child's failure ----------------------------------------------------

  // JDK wrappers several deep (exact classes), each picking up a suppressed failure on the way:
  // the child's failure once, every suppressed one reported.
  @RepeatedTest(5)
  void nestedJdkWrappersCountTheChildOnceAndKeepEverySuppressed() {
    RuntimeException failure = new RuntimeException("the child's");
    IllegalStateException s1 = new IllegalStateException("on the read's exception");
    IllegalStateException s2 = new IllegalStateException("on the ExecutionException");
    IllegalStateException s3 = new IllegalStateException("on the CompletionException");
    TaskGroup g = collecting("nested-wrappers");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      g.fork(
                          () -> {
                            ExecutionException read =
                                catchThrowableOfType(ExecutionException.class, failing::get);
                            read.addSuppressed(s1);
                            ExecutionException mid = new ExecutionException(read);
                            mid.addSuppressed(s2);
                            CompletionException top = new CompletionException(mid);
                            top.addSuppressed(s3);
                            throw top;
                          });
                    }));
    assertThat(e.failures()).containsExactlyInAnyOrder(failure, s3, s2, s1);
    assertThat(e.failures().get(0)).isSameAs(failure);
  }

  /** A user's own ExecutionException, optionally refusing suppressed exceptions. */
  static final class MyExecutionException extends ExecutionException {
    @Serial private static final long serialVersionUID = 1L;

    MyExecutionException(Throwable cause) {
      super("mine", cause);
    }
  }

  /** A user's own CompletionException made with enableSuppression=false, no stack trace. */
  static final class Bare extends RuntimeException {
    @Serial private static final long serialVersionUID = 1L;

    Bare(Throwable cause) {
      super("bare", cause, false, false);
    }
  }

  // A user subclass of ExecutionException is not "that exception" (Task's javadoc, and
  // Group.rethrownAddition: "exactly those JDK classes"): it is a new failure of the group, kept
  // as it is (with the child's failure as its cause), never dropped as a duplicate.
  @RepeatedTest(5)
  void aUserWrapperOfAChildsFailureIsANewFailure() {
    RuntimeException failure = new RuntimeException("the child's");
    AtomicReference<Throwable> wrappers = new AtomicReference<>();
    TaskGroup g = collecting("user-wrapper");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                throw failure;
                              });
                      g.fork(
                          () -> {
                            ExecutionException read =
                                catchThrowableOfType(ExecutionException.class, failing::get);
                            Bare bare = new Bare(new MyExecutionException(read.getCause()));
                            wrappers.set(bare);
                            throw bare;
                          });
                    }));
    assertThat(e.failures()).containsExactly(failure, wrappers.get());
  }

  // ---- a nested group's TaskGroupException carrying a suppressed failure ---------------------

  // A nested group fails; the outer body catches its TaskGroupException, adds what its own
  // cleanup threw, and rethrows it: nested groups stay nested, and the suppressed failure travels
  // on it, reachable exactly once.
  @RepeatedTest(5)
  void aNestedGroupsExceptionCarriesASuppressedCleanupFailureOnce() {
    RuntimeException inner = new RuntimeException("inner child");
    IllegalStateException cleanup = new IllegalStateException("outer cleanup");
    TaskGroup outer = TaskGroup.named("outer");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                outer.run(
                    () -> {
                      TaskGroup nested = TaskGroup.named("nested");
                      try (AutoCloseable r = failingClose(cleanup)) {
                        nested.run(
                            () ->
                                nested.fork(
                                    () -> {
                                      throw inner;
                                    }));
                      }
                    }));
    assertThat(e.failures()).hasSize(1);
    TaskGroupException nestedFailure = (TaskGroupException) e.failures().get(0);
    assertThat(nestedFailure.failures()).containsExactly(inner);
    assertThat(nestedFailure.getSuppressed()).containsExactly(cleanup);
    assertThat(occurrences(e, inner)).isEqualTo(1);
    assertThat(occurrences(e, cleanup)).isEqualTo(1);
  }

  // ---- start(): a failure before started() and one riding on its cancellation ---------------

  // The work's checked failure before started() reaches start's caller inside a
  // TaskGroupException, with what was suppressed on it; it is not a failure of the group
  // (TaskGroup.start).
  @RepeatedTest(5)
  void aCheckedFailureBeforeStartedReachesTheCallerWithItsSuppressed() throws Exception {
    IOException failure = new IOException("bind failed");
    IllegalStateException cleanup = new IllegalStateException("close() failed");
    TaskGroup g = TaskGroup.named("start-failed");
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    g.run(
        () ->
            fromStart.set(
                catchThrowable(
                    () ->
                        g.start(
                            signal -> {
                              try (AutoCloseable r = failingClose(cleanup)) {
                                throw failure;
                              }
                            }))));
    assertThat(fromStart.get()).isInstanceOf(TaskGroupException.class);
    assertThat(((TaskGroupException) fromStart.get()).failures()).containsExactly(failure);
    assertThat(failure.getSuppressed()).containsExactly(cleanup);
  }

  /** The work given to start: blocks (signalling nothing) once {@code in} is counted down. */
  interface StartWork {
    Startable<Object> make(CountDownLatch in, Exception closeFailed);
  }

  /**
   * Runs {@code work} through {@code start} from a scope that a sibling cancels once the work is
   * in; returns how many times {@code closeFailed} reached start's caller or run's caller.
   */
  private static int startCancelledBeforeSignalling(StartWork work, Exception closeFailed) {
    TaskGroup g = TaskGroup.named("start-cancelled");
    AtomicReference<Throwable> fromStart = new AtomicReference<>();
    Throwable fromRun =
        catchThrowable(
            () ->
                g.run(
                    () -> {
                      CountDownLatch in = new CountDownLatch(1);
                      CancelScope s = CancelScope.create();
                      g.fork(
                          () -> {
                            in.await();
                            s.cancel();
                          });
                      s.run(
                          () ->
                              fromStart.set(
                                  catchThrowable(() -> g.start(work.make(in, closeFailed)))));
                    }));
    assertThat(fromStart.get())
        .as("start threw %s, run threw %s", fromStart.get(), fromRun)
        .isNotNull();
    return occurrences(fromStart.get(), closeFailed) + occurrences(fromRun, closeFailed);
  }

  // The caller of start() is cancelled before the work signals; the work's close() failure rides
  // on its (wrapped) cancellation. "the work's failure if it failed meanwhile without signalling
  // (in its cleanup, say: never lost)": it must surface exactly once, to start's caller or in run.
  @RepeatedTest(10)
  void aCloseFailureOfStartWorkCancelledBeforeSignallingSurfacesOnce() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    int n =
        startCancelledBeforeSignalling(
            (in, failure) -> signal -> blockWrappingTheInterrupt(in, failure), closeFailed);
    assertThat(n).isEqualTo(1);
  }

  // The same with the close() failure suppressed on the InterruptedException itself (control).
  @RepeatedTest(5)
  void aCloseFailureOnStartWorksOwnCancellationSurfacesOnce() {
    IllegalStateException closeFailed = new IllegalStateException("close() failed");
    int n =
        startCancelledBeforeSignalling(
            (in, failure) ->
                signal -> {
                  try (AutoCloseable r = failingClose(failure)) {
                    in.countDown();
                    Thread.sleep(60_000);
                  }
                },
            closeFailed);
    assertThat(n).isEqualTo(1);
  }

  // ---- a failure whose cause is the CancelledException of a scope that has exited ----------

  // The thread is no longer cancelled: a RuntimeException wrapping the CancelledException it kept
  // is an ordinary failure ("What counts as a cancellation, for a thread that is effectively
  // cancelled"); read back through get() and rethrown, it is still one.
  @RepeatedTest(5)
  void aFailureCausedByAnOldCancellationIsAFailureCountedOnce() {
    AtomicReference<Throwable> made = new AtomicReference<>();
    TaskGroup g = collecting("old-cancellation");
    TaskGroupException e =
        catchThrowableOfType(
            TaskGroupException.class,
            () ->
                g.run(
                    () -> {
                      Task<Object> failing =
                          g.fork(
                              () -> {
                                AtomicReference<InterruptedException> kept =
                                    new AtomicReference<>();
                                CancelScope s = CancelScope.create();
                                s.run(
                                    () -> {
                                      s.cancel();
                                      try {
                                        CancelScope.checkpoint();
                                      } catch (InterruptedException ie) {
                                        kept.set(ie);
                                      }
                                    });
                                assertThat(kept.get()).isInstanceOf(CancelledException.class);
                                RuntimeException f = new RuntimeException("stale", kept.get());
                                made.set(f);
                                throw f;
                              });
                      g.fork(() -> failing.get());
                    }));
    assertThat(e).isNotNull();
    assertThat(e.failures()).containsExactly(made.get());
  }

  @Test
  void occurrencesCountsByIdentity() {
    RuntimeException a = new RuntimeException("a");
    RuntimeException top = new RuntimeException("top", a);
    top.addSuppressed(a);
    assertThat(occurrences(top, a)).isEqualTo(1);
  }
}
