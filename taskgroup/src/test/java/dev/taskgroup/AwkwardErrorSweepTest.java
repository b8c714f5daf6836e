package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * Errors at points the library does not expect, and user code that goes on using the library
 * afterwards: a {@link StackOverflowError} thrown inside the library's own code near the end of a
 * thread's stack (while a cancel delivers the interrupt, a checkpoint or a scope's exit settles the
 * interrupt status under its lock, or a scope judges how its body ended), caught further up by the
 * user, who then checkpoints and leaves scopes on the same thread. The library cannot be correct
 * under every such error, but it must not hang, leave the thread inside a scope that is gone
 * (cancelled or shielded by it), or leak an interrupt.
 *
 * <p>Each test sweeps the depth at which the library call starts, one frame at a time, from the
 * stack's end to past where the call succeeds, on a platform thread with a small stack (fast).
 * Closest upstream: CPython {@code test_taskgroups.py} test_taskgroup_recursion (a RecursionError
 * inside a task group) and Trio's {@code test_cancel_scope_*} invariants that the scope stack is
 * restored however a scope is left.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AwkwardErrorSweepTest {

  private static final long SMALL_STACK = 256 * 1024;

  /** How many depths past the first one where the call succeeds the sweep also tries. */
  private static final int CLEAN_DEPTHS_TO_END = 40;

  /** The sweep gives up past this many depths (it has not found where the call succeeds). */
  private static final int MAX_DEPTHS = 6_000;

  @FunctionalInterface
  interface Op {
    void run() throws Exception;
  }

  /** What the sweep saw: how many of its depths threw a StackOverflowError, and every problem. */
  record Sweep(int depths, int overflows, List<String> problems) {}

  /** The lowest {@code n} {@link #at} was called with (the same method measures and descends). */
  private static int lowest;

  /** Where {@code overflow} was thrown (its top frames), for a problem's message. */
  private static String where(Throwable overflow) {
    if (overflow == null) {
      return "";
    }
    StringBuilder b = new StringBuilder(" (the overflow came from:");
    StackTraceElement[] st = overflow.getStackTrace();
    for (int i = 0; i < Math.min(6, st.length); i++) {
      b.append("\n      ").append(st[i]);
    }
    return b.append(')').toString();
  }

  private static void at(int n, Op op) throws Exception {
    lowest = n;
    if (n > 0) {
      at(n - 1, op);
    } else {
      op.run();
    }
  }

  /**
   * On a new thread with a small stack, runs {@code round} with the depth at which to start the
   * library call: from right at the stack's end to where the call succeeds; {@code round} returns
   * what is wrong after that depth (null if nothing), with the error it caught or null.
   */
  private static Sweep sweepNearStackEnd(Round round) throws InterruptedException {
    AtomicReference<Sweep> result = new AtomicReference<>();
    AtomicReference<Throwable> broke = new AtomicReference<>();
    Thread t =
        Thread.ofPlatform()
            .stackSize(SMALL_STACK)
            .start(
                () -> {
                  List<String> problems = new ArrayList<>();
                  int overflows = 0;
                  int clean = 0;
                  int back = 0;
                  try {
                    // Warm up at a shallow depth: a class initialised, or a call site linked, for
                    // the first time near the stack's end would fail for good
                    // (NoClassDefFoundError),
                    // which is the JVM's doing, not the library's.
                    round.run(Op::run, new AtomicReference<>());
                    for (; back < MAX_DEPTHS && clean < CLEAN_DEPTHS_TO_END; back++) {
                      try {
                        at(Integer.MAX_VALUE, null); // never reaches 0: overflows
                      } catch (StackOverflowError expected) {
                        // how deep this thread can go: Integer.MAX_VALUE - lowest
                      }
                      int depth = Math.max(0, Integer.MAX_VALUE - lowest - back);
                      AtomicReference<Throwable> overflow = new AtomicReference<>();
                      String problem = round.run(op -> at(depth, op), overflow);
                      if (overflow.get() != null) {
                        overflows++;
                        clean = 0;
                      } else {
                        clean++;
                      }
                      if (problem != null) {
                        problems.add("at " + back + " frames from the end: " + problem);
                      }
                    }
                  } catch (Throwable e) {
                    broke.set(e);
                  }
                  result.set(new Sweep(back, overflows, problems));
                });
    t.join(TimeUnit.SECONDS.toMillis(20));
    if (t.isAlive()) {
      StringBuilder stack = new StringBuilder();
      for (StackTraceElement e : t.getStackTrace()) {
        if (!e.getMethodName().equals("at")) {
          stack.append("\n  ").append(e);
        }
      }
      throw new AssertionError("the sweep hangs:" + stack);
    }
    if (broke.get() != null) {
      throw new AssertionError("the sweep itself failed", broke.get());
    }
    return result.get();
  }

  /** One round of a sweep: runs the library call at a depth, then checks the thread. */
  @FunctionalInterface
  interface Round {
    /**
     * @param deep runs its argument at the round's depth
     * @param overflow set to the StackOverflowError the round caught, if any
     * @return what is wrong after the round, or null
     */
    String run(Deep deep, AtomicReference<Throwable> overflow) throws Exception;
  }

  @FunctionalInterface
  interface Deep {
    void run(Op op) throws Exception;
  }

  /**
   * A scope that cancels itself and absorbs the cancellation, run deeper and deeper inside a scope
   * that is not cancelled; a StackOverflowError thrown anywhere in it (the cancel's delivery of the
   * interrupt to the thread itself, the checkpoint, the scope's judging of its body's end, its
   * exit) is caught in the outer scope's body. The thread must then go on working: the next
   * checkpoint and the outer scope's exit return (they do not spin for ever on the lock that orders
   * the thread's interrupt status, left held by the error), the thread is not cancelled, and no
   * interrupt is left on it, there or once the outer scope ends.
   */
  @RepeatedTest(6)
  void anOverflowAroundAScopeThatCancelsItselfLeavesTheThreadWorking() throws Exception {
    Sweep sweep =
        sweepNearStackEnd(
            (deep, overflow) -> {
              AtomicReference<String> problem = new AtomicReference<>();
              CancelScope outer = CancelScope.create();
              outer.run(
                  () -> {
                    try {
                      deep.run(
                          () -> {
                            CancelScope inner = CancelScope.create();
                            inner.run(
                                () -> {
                                  inner.cancel();
                                  CancelScope.checkpoint();
                                });
                          });
                    } catch (StackOverflowError e) {
                      overflow.set(e);
                    }
                    if (CancelScope.isCancelled()) {
                      problem.set("still cancelled inside the outer scope, which is not");
                    }
                    try {
                      CancelScope.checkpoint();
                    } catch (InterruptedException e) {
                      problem.compareAndSet(
                          null, "a checkpoint threw " + e + where(overflow.get()));
                    }
                  });
              if (problem.get() == null && Thread.interrupted()) {
                problem.set("an interrupt left on the thread");
              }
              if (problem.get() == null && CancelScope.isCancelled()) {
                problem.set("cancelled outside every scope");
              }
              return problem.get();
            });
    assertThat(sweep.overflows()).as("depths that overflowed").isPositive();
    assertThat(sweep.problems()).as("swept %d depths", sweep.depths()).isEmpty();
    assertRedeliveryStillWorks();
  }

  /**
   * A group whose body forks a child that waits until cancelled, then fails, run deeper and deeper:
   * a StackOverflowError thrown while {@code run} judged the body's end (recording its failure,
   * cancelling the child), joined the child or left the group once made {@code run} throw the error
   * alone: the body's failure was lost (an error the JVM throws takes no suppressed exceptions),
   * and the thread was left inside the dead group, cancelled, so that every later group on the
   * thread saw itself cancelled. Whatever {@code run} throws, the body's failure is in it (among a
   * {@link TaskGroupException}'s failures, with the error), and the thread is outside every
   * cancelled scope. The child is cancelled again on a best-effort basis (that walk can overflow
   * too) and not waited for (that needs the frames that overflowed): the sweep prints how often it
   * was left running. The group's children run on platform threads: an overflow inside a virtual
   * thread's start or unpark can leave the JDK's scheduler lock held ({@code
   * ForkJoinPool.lockRunState}) for the whole JVM. Closest upstream: CPython {@code
   * test_taskgroups.py} test_taskgroup_recursion.
   */
  @RepeatedTest(3)
  void anOverflowWhileAGroupEndsKeepsEveryFailureAndTakesTheThreadOutOfTheGroup() throws Exception {
    AtomicInteger notCancelled = new AtomicInteger();
    Sweep sweep =
        sweepNearStackEnd(
            (deep, overflow) -> {
              TaskGroup g =
                  TaskGroup.builder().threadFactory(Thread.ofPlatform().factory()).build();
              AtomicReference<Task<?>> child = new AtomicReference<>();
              AtomicBoolean bodyThrew = new AtomicBoolean();
              RuntimeException bodyFailed = new IllegalStateException("the body's");
              Throwable thrown = null;
              try {
                deep.run(
                    () ->
                        g.run(
                            () -> {
                              child.set(
                                  g.fork(
                                      () -> {
                                        new CountDownLatch(1).await(); // until cancelled
                                      }));
                              bodyThrew.set(true);
                              throw bodyFailed;
                            }));
              } catch (StackOverflowError e) {
                overflow.set(e);
                thrown = e;
              } catch (TaskGroupException e) {
                thrown = e;
              }
              String problem = null;
              Task<?> c = child.get();
              if (c != null) {
                long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200);
                while (!c.isDone() && System.nanoTime() - until < 0L) {
                  Thread.yield();
                }
                if (!c.isDone()) {
                  // Best effort only: cancelling it again overflowed too. Not a problem of this
                  // sweep's (nothing is lost, the thread goes on), but counted.
                  notCancelled.incrementAndGet();
                  c.cancel(true);
                }
              }
              if (problem == null && CancelScope.isCancelled()) {
                problem = "the thread is left inside a cancelled scope" + where(overflow.get());
              }
              if (problem == null && bodyThrew.get() && !carries(thrown, bodyFailed)) {
                problem =
                    "the body's failure is lost: run threw "
                        + thrown
                        + " carrying "
                        + java.util.Arrays.toString(thrown == null ? null : thrown.getSuppressed())
                        + where(overflow.get());
              }
              Thread.interrupted();
              return problem;
            });
    System.out.printf(
        "group near the stack's end: %d depths, %d overflowed, child left uncancelled at %d%n",
        sweep.depths(), sweep.overflows(), notCancelled.get());
    assertThat(sweep.overflows()).as("depths that overflowed").isPositive();
    assertThat(sweep.problems()).as("swept %d depths", sweep.depths()).isEmpty();
    assertRedeliveryStillWorks();
  }

  /**
   * {@code cancel()} of a group whose children wait in blocking calls, called from another thread
   * deeper and deeper, up to the stack's end. A StackOverflowError thrown after the group was
   * marked cancelled but before the walk had interrupted every child left the rest parked for ever,
   * and the owner waiting for them: a second {@code cancel()} did nothing, the group being
   * cancelled already (nor did an interrupt of the owner). Now a caller that caught the error and
   * calls {@code cancel()} again (from wherever it can) finishes the walk: the group ends. The
   * children run on platform threads (see the sweep above).
   */
  @RepeatedTest(3)
  void aCancelThatOverflowsMidWalkIsFinishedByTheNextCancel() throws Exception {
    AtomicInteger cutAfterMarking = new AtomicInteger();
    AtomicInteger jdkHalfInterrupts = new AtomicInteger();
    Sweep sweep =
        sweepNearStackEnd(
            (deep, overflow) -> {
              List<Thread> children = new java.util.concurrent.CopyOnWriteArrayList<>();
              TaskGroup g =
                  TaskGroup.builder()
                      .threadFactory(
                          r -> {
                            Thread c = Thread.ofPlatform().unstarted(r);
                            children.add(c);
                            return c;
                          })
                      .build();
              CountDownLatch parked = new CountDownLatch(3);
              Thread owner =
                  Thread.ofPlatform()
                      .start(
                          () -> {
                            try {
                              g.run(
                                  () -> {
                                    for (int i = 0; i < 3; i++) {
                                      g.fork(
                                          () -> {
                                            parked.countDown();
                                            new CountDownLatch(1).await(); // until cancelled
                                          });
                                    }
                                  });
                            } catch (Exception e) {
                              // an InterruptedException of the clean-up below
                            }
                          });
              parked.await();
              try {
                deep.run(g::cancel);
              } catch (StackOverflowError e) {
                overflow.set(e);
                if (g.cancelCalled()) {
                  cutAfterMarking.incrementAndGet();
                }
                g.cancel(); // what a caller that caught the error does: cancel again
              }
              owner.join(200);
              if (!owner.isAlive()) {
                return null;
              }
              // The JDK's own half-interrupt: Thread.interrupt() sets the thread's interrupt status
              // and then tells the VM (interrupt0), which unparks it. An overflow between the two
              // leaves a parked thread interrupted and asleep: every later interrupt() sees it
              // interrupted already. Nothing the library can tell from a slow thread; counted.
              boolean halfInterrupted = false;
              for (Thread c : children) {
                if (c.isAlive() && c.isInterrupted() && c.getState() == Thread.State.WAITING) {
                  halfInterrupted = true;
                  java.util.concurrent.locks.LockSupport.unpark(c);
                }
              }
              owner.join(3_000);
              if (halfInterrupted && !owner.isAlive()) {
                jdkHalfInterrupts.incrementAndGet();
                return null;
              }
              String problem =
                  "the group never ended after cancel() overflowed and was called again"
                      + where(overflow.get());
              owner.interrupt(); // let the sweep go on; the children stay parked
              return problem;
            });
    System.out.printf(
        "cancel near the stack's end: %d depths, %d overflowed, %d after the group was marked,"
            + " %d inside the JDK's Thread.interrupt()%n",
        sweep.depths(), sweep.overflows(), cutAfterMarking.get(), jdkHalfInterrupts.get());
    assertThat(sweep.overflows()).as("depths that overflowed").isPositive();
    assertThat(sweep.problems()).as("swept %d depths", sweep.depths()).isEmpty();
  }

  /** Whether {@code failure} is {@code thrown}, one of its group failures, or rides on it. */
  private static boolean carries(Throwable thrown, Throwable failure) {
    if (thrown == null) {
      return false;
    }
    if (thrown == failure) {
      return true;
    }
    if (thrown instanceof TaskGroupException tge) {
      for (Throwable f : tge.failures()) {
        if (carries(f, failure)) {
          return true;
        }
      }
    }
    for (Throwable s : thrown.getSuppressed()) {
      if (carries(s, failure)) {
        return true;
      }
    }
    return carries(thrown.getCause(), failure);
  }

  /**
   * The re-delivery watcher, shared by every thread in the JVM, still interrupts a thread that
   * swallowed its cancellation: a thread that overflowed its stack while registering for it (its
   * cancel() delivered to itself) once claimed a slot it never filled, and the watcher, waiting for
   * that slot, stopped for good, for every thread.
   */
  private static void assertRedeliveryStillWorks() throws Exception {
    AtomicBoolean interruptedAgain = new AtomicBoolean();
    CancelScope scope = CancelScope.create();
    scope.run(
        () -> {
          scope.cancel();
          Thread.interrupted(); // swallowed
          try {
            Thread.sleep(TimeUnit.SECONDS.toMillis(10));
          } catch (InterruptedException again) {
            interruptedAgain.set(true);
          }
        });
    assertThat(interruptedAgain).as("the swallowed cancellation was delivered again").isTrue();
  }

  // ---- errors from user callbacks ------------------------------------------------------------

  /** A propagator whose wrap() throws {@code error}, and whose toString() throws as well. */
  private static ContextPropagator brokenPropagator(Error error) {
    return new ContextPropagator() {
      @Override
      public Runnable wrap(Runnable work) {
        throw error;
      }

      @Override
      public String toString() {
        throw new IllegalStateException("toString() is broken too");
      }
    };
  }

  /**
   * A propagator whose {@code wrap()} throws an {@link Error} and whose {@code toString()} throws
   * as well (the library describes the propagator in its message): the fork still throws {@link
   * java.util.concurrent.RejectedExecutionException} with wrap's error as its cause ({@link
   * ContextPropagator}: "If it throws, or returns null, the fork ... throws
   * RejectedExecutionException with that exception as its cause, the work does not run and the
   * group is as it was"), and so does an {@code onCancel} registration inside the group; the group
   * then ends normally. Closest upstream: OpenJDK ThreadPerTaskExecutor / StructuredTaskScope tests
   * of a thread factory that throws (the rejection keeps the factory's exception as its cause).
   */
  @RepeatedTest(2)
  void aPropagatorThatThrowsInWrapAndInToStringStillRejectsWithItsError() throws Exception {
    AssertionError wrapFailed = new AssertionError("wrap() failed");
    TaskGroup g = TaskGroup.builder().contextPropagator(brokenPropagator(wrapFailed)).build();
    AtomicReference<Throwable> fork = new AtomicReference<>();
    AtomicReference<Throwable> register = new AtomicReference<>();
    java.util.concurrent.atomic.AtomicBoolean ran = new java.util.concurrent.atomic.AtomicBoolean();
    g.run(
        () -> {
          try {
            g.fork(() -> ran.set(true));
          } catch (Throwable e) {
            fork.set(e);
          }
          try (var hook = CancelScope.onCancel(() -> ran.set(true))) {
            // not reached
          } catch (Throwable e) {
            register.set(e);
          }
        });
    for (AtomicReference<Throwable> rejected : List.of(fork, register)) {
      assertThat(rejected.get())
          .isInstanceOf(java.util.concurrent.RejectedExecutionException.class)
          .hasCause(wrapFailed);
    }
    assertThat(ran).isFalse();
    assertThat(g.cancelCalled()).isFalse();
  }

  /**
   * A thread factory that returns a thread already started, of a subclass whose {@code toString()}
   * throws (the library names the thread in its message): the fork still throws {@link
   * java.util.concurrent.RejectedExecutionException} ({@link TaskGroup.Builder#threadFactory}: "a
   * factory that ... returns a thread already started makes fork throw RejectedExecutionException
   * (and leaves that thread as it was)"), and the group ends normally.
   */
  @RepeatedTest(2)
  void aStartedThreadWhoseToStringThrowsIsStillRejected() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    Thread started =
        new Thread(
            () -> {
              try {
                release.await();
              } catch (InterruptedException e) {
                // ends
              }
            }) {
          @Override
          public String toString() {
            throw new IllegalStateException("toString() is broken");
          }
        };
    started.start();
    try {
      TaskGroup g = TaskGroup.builder().threadFactory(r -> started).build();
      AtomicReference<Throwable> fork = new AtomicReference<>();
      g.run(
          () -> {
            try {
              g.fork(() -> {});
            } catch (Throwable e) {
              fork.set(e);
            }
          });
      assertThat(fork.get()).isInstanceOf(java.util.concurrent.RejectedExecutionException.class);
      assertThat(started.isAlive()).as("the thread is left as it was").isTrue();
    } finally {
      release.countDown();
      started.join();
    }
  }

  /**
   * A child's failure of a type the task's future would take for its own wrapper or for a
   * cancellation ({@link java.util.concurrent.CancellationException}, {@link
   * java.util.concurrent.CompletionException}), whose {@code toString()} throws, on a task whose
   * future was asked for before it ended: the future wraps it in a {@code CompletionException} of
   * its own, whose constructor calls that {@code toString()}. The group still gets the failure, and
   * {@code run} returns ("Failures are never lost"; before, the child never left its group and
   * {@code run} waited for ever), and the future holds the failure as {@code get()}'s cause.
   */
  @RepeatedTest(2)
  @Timeout(20)
  void aFailureWhoseToStringThrowsReachesTheGroupAndTheFutureOfItsTask() throws Exception {
    RuntimeException[] failures = {
      new java.util.concurrent.CancellationException("the work's own") {
        @Override
        public String toString() {
          throw new IllegalStateException("toString() is broken");
        }
      },
      new java.util.concurrent.CompletionException("the work's own", null) {
        @Override
        public String toString() {
          throw new IllegalStateException("toString() is broken");
        }
      }
    };
    for (RuntimeException failure : failures) {
      TaskGroup g = TaskGroup.create();
      AtomicReference<java.util.concurrent.CompletableFuture<Void>> future =
          new AtomicReference<>();
      Throwable thrown =
          org.assertj.core.api.Assertions.catchThrowable(
              () ->
                  g.run(
                      () -> {
                        CountDownLatch asked = new CountDownLatch(1);
                        Task<Void> task =
                            g.fork(
                                () -> {
                                  asked.await();
                                  throw failure;
                                });
                        future.set(task.toCompletableFuture()); // before the task ends
                        asked.countDown();
                      }));
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure);
      assertThat(future.get())
          .failsWithin(java.time.Duration.ofSeconds(5))
          .withThrowableOfType(java.util.concurrent.ExecutionException.class)
          .havingCause()
          .isSameAs(failure);
    }
  }

  /**
   * A failure whose {@code toString()} blocks: the first failure cancels the body and the other
   * children at once, without describing it first (the reason it gives them is made when read).
   * Before, the failing child's thread described it for the cancel reason before cancelling, and a
   * {@code toString()} that blocked kept the rest of the group running, and {@code run} waiting.
   */
  @RepeatedTest(2)
  @Timeout(20)
  void aFailureWhoseToStringBlocksStillCancelsTheRestAtOnce() throws Exception {
    failureWhoseToStringBlocks(null);
  }

  /**
   * The same with a JFR recording on: the {@code Cancel} event, recorded as the group is marked
   * cancelled, names the failure's class without describing it. (It described the failure on the
   * failing thread before the rest of the group was cancelled: a {@code toString()} that blocked
   * kept the group running.)
   */
  @RepeatedTest(2)
  @Timeout(20)
  void aFailureWhoseToStringBlocksStillCancelsTheRestAtOnceUnderARecording() throws Exception {
    try (jdk.jfr.Recording recording = new jdk.jfr.Recording()) {
      recording.enable("dev.taskgroup.Cancel");
      recording.start();
      failureWhoseToStringBlocks(recording);
    }
  }

  private static void failureWhoseToStringBlocks(jdk.jfr.Recording recording) throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    RuntimeException failure =
        new RuntimeException("slow to describe") {
          @Override
          public String toString() { // blocks, whatever interrupts come, until released
            boolean interrupted = false;
            while (true) {
              try {
                release.await();
                break;
              } catch (InterruptedException e) {
                interrupted = true;
              }
            }
            if (interrupted) {
              Thread.currentThread().interrupt();
            }
            return "described";
          }
        };
    AtomicBoolean siblingCancelled = new AtomicBoolean();
    AtomicBoolean checkpointCancelled = new AtomicBoolean();
    try {
      TaskGroup g = TaskGroup.create();
      Throwable thrown =
          org.assertj.core.api.Assertions.catchThrowable(
              () ->
                  g.run(
                      () -> {
                        CountDownLatch siblingWaits = new CountDownLatch(2);
                        g.fork(
                            () -> {
                              siblingWaits.countDown();
                              try {
                                new CountDownLatch(1).await();
                              } catch (InterruptedException e) {
                                siblingCancelled.set(true);
                                throw e;
                              }
                              return null;
                            });
                        g.fork(
                            () -> {
                              siblingWaits.countDown();
                              try {
                                CancelScope.sleep(java.time.Duration.ofMinutes(1));
                              } catch (CancelledException e) { // the library's: a message to make
                                checkpointCancelled.set(true);
                                throw e;
                              }
                              return null;
                            });
                        siblingWaits.await();
                        g.fork(
                            () -> {
                              throw failure;
                            });
                      }));
      assertThat(siblingCancelled).as("the sibling was cancelled").isTrue();
      assertThat(checkpointCancelled)
          .as("the sibling in CancelScope.sleep was cancelled (its message is made when read)")
          .isTrue();
      assertThat(thrown).isInstanceOf(TaskGroupException.class);
      assertThat(((TaskGroupException) thrown).failures()).containsExactly(failure);
      if (recording != null) {
        recording.stop();
        java.nio.file.Path file = java.nio.file.Files.createTempFile("blocking-describe", ".jfr");
        try {
          recording.dump(file);
          String groupName = g.toString();
          assertThat(
                  jdk.jfr.consumer.RecordingFile.readAllEvents(file).stream()
                      .filter(e -> e.getEventType().getName().equals("dev.taskgroup.Cancel"))
                      .map(e -> e.getString("reason"))
                      .filter(r -> r != null && r.contains("because of a failure"))
                      .toList())
              .as("the group's Cancel event (%s)", groupName)
              .anySatisfy(
                  r -> assertThat(r).endsWith("failed: " + failure.getClass().getName() + ")"));
        } finally {
          java.nio.file.Files.deleteIfExists(file);
        }
      }
    } finally {
      release.countDown();
    }
  }
}
