package dev.taskgroup;

import static java.util.concurrent.Future.State.CANCELLED;
import static java.util.concurrent.Future.State.FAILED;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.spi.AbstractInterruptibleChannel;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A thread blocked in an interruptible channel whose close throws an unchecked exception (a bug in
 * a third-party channel): {@code Thread.interrupt()} closes the channel, so it throws that
 * exception to whoever interrupts, after setting the interrupt status and, for a virtual thread,
 * before waking it. A cancellation must still return, reach every child, wake that thread, and keep
 * re-delivering (the re-delivery watcher must survive it); the exception is reported to the default
 * uncaught-exception handler. Closest upstream: OpenJDK's StructuredTaskScope, which ignores what
 * {@code interrupt()} throws when it shuts down.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FailingChannelCloseTest {
  /** A real channel (the JDK's own extension point) whose close fails. */
  static final class ChannelWithFailingClose extends AbstractInterruptibleChannel {
    @Override
    protected void implCloseChannel() {
      throw new IllegalStateException("close failed");
    }

    /**
     * Blocks in the channel until interrupted, then throws ClosedByInterruptException, as the JDK's
     * channels do. On a platform thread the interrupt may wake the thread before {@code
     * interrupt()} reaches the channel (JDK 25 sets the status first), so {@code end} may find the
     * channel untouched (then this throws the exception itself) or may close it on this thread
     * (then the close's failure is thrown here).
     */
    void block() throws IOException {
      begin();
      try {
        while (!Thread.currentThread().isInterrupted()) {
          LockSupport.park(this);
        }
      } finally {
        end(false);
      }
      throw new ClosedByInterruptException();
    }
  }

  private final List<Throwable> reported = new CopyOnWriteArrayList<>();
  private Thread.UncaughtExceptionHandler saved;

  @BeforeEach
  void captureUncaught() {
    saved = Thread.getDefaultUncaughtExceptionHandler();
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> reported.add(e));
  }

  @AfterEach
  void restoreUncaught() {
    Thread.setDefaultUncaughtExceptionHandler(saved);
    Thread.interrupted();
  }

  private static void awaitBlocked(Thread t) {
    Probes.awaitTrue(
        "thread blocked",
        Duration.ofSeconds(10),
        () -> t.getState() == Thread.State.WAITING || t.getState() == Thread.State.TIMED_WAITING);
  }

  /** A group whose children are threads of {@code kind}, each added to {@code threads}. */
  private static TaskGroup groupOf(ThreadKind kind, List<Thread> threads) {
    return TaskGroup.builder()
        .threadFactory(
            r -> {
              Thread t = kind.factory().newThread(r);
              threads.add(t);
              return t;
            })
        .build();
  }

  /** How a group with one child in the channel and one after it ended its cancellation. */
  private record Cancelled(
      TaskGroup group,
      Task<?> inChannel,
      Task<?> after,
      Throwable cancelThrew,
      Throwable runThrew) {}

  /**
   * Runs a group of {@code kind} threads whose first child blocks in a channel whose close throws
   * and whose second waits on a latch, and cancels it from the body once both are blocked.
   */
  private static Cancelled cancelAChildInTheChannel(ThreadKind kind) {
    List<Thread> threads = new CopyOnWriteArrayList<>();
    TaskGroup group = groupOf(kind, threads);
    Task<?>[] tasks = new Task<?>[2];
    AtomicReference<Throwable> cancelThrew = new AtomicReference<>();
    Throwable runThrew =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      tasks[0] = group.fork(() -> new ChannelWithFailingClose().block());
                      tasks[1] = group.fork(() -> new CountDownLatch(1).await());
                      threads.forEach(FailingChannelCloseTest::awaitBlocked);
                      try {
                        group.cancel();
                      } catch (Throwable t) {
                        cancelThrew.set(t);
                      }
                    }));
    return new Cancelled(group, tasks[0], tasks[1], cancelThrew.get(), runThrew);
  }

  /**
   * cancel() returns, the child in the channel ends, and so does the one after it (the walk goes
   * on). The close failure is reported, or, on a platform thread that closed the channel itself on
   * its way out, is that child's failure: never thrown by cancel(), never lost.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void aCancelReachingAChannelWhoseCloseThrowsReturnsAndStopsEveryChild(ThreadKind kind)
      throws Exception {
    for (int round = 0; round < 20; round++) {
      reported.clear();
      Cancelled c = cancelAChildInTheChannel(kind);
      assertThat(c.cancelThrew()).as("round %d: cancel() threw", round).isNull();
      assertThat(c.after().state()).as("round %d: the child after it", round).isEqualTo(CANCELLED);
      int closeFailures = reported.size();
      if (c.inChannel().state() == FAILED) {
        assertThat(kind)
            .as("round %d: only a platform thread closes it itself", round)
            .isEqualTo(ThreadKind.PLATFORM);
        assertThat(c.inChannel().exceptionNow()).hasMessage("close failed");
        assertThat(c.runThrew()).isInstanceOf(TaskGroupException.class);
        assertThat(((TaskGroupException) c.runThrew()).failures())
            .containsExactly(c.inChannel().exceptionNow());
        closeFailures++;
      } else {
        assertThat(c.inChannel().state())
            .as("round %d: the child in the channel", round)
            .isEqualTo(CANCELLED);
        assertThat(c.runThrew()).as("round %d: run", round).isNull();
        assertThat(c.group().cancelCaught()).isTrue();
      }
      assertThat(reported).allSatisfy(e -> assertThat(e).hasMessage("close failed"));
      if (kind == ThreadKind.VIRTUAL) { // the channel is always closed by interrupt(), once
        assertThat(closeFailures).as("round %d: close failures %s", round, reported).isEqualTo(1);
      } else { // or not at all, when the woken thread left the channel first
        assertThat(closeFailures)
            .as("round %d: close failures %s", round, reported)
            .isLessThanOrEqualTo(1);
      }
    }
  }

  /**
   * A default uncaught-exception handler that itself throws changes nothing: what it throws is
   * ignored, as the JVM ignores it for a thread that died.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void aDefaultHandlerThatThrowsIsIgnored(ThreadKind kind) throws Exception {
    AtomicInteger handled = new AtomicInteger();
    Thread.setDefaultUncaughtExceptionHandler(
        (t, e) -> {
          handled.incrementAndGet();
          throw new IllegalStateException("the handler failed too");
        });
    Cancelled c = cancelAChildInTheChannel(kind);
    assertThat(c.cancelThrew()).as("cancel() threw").isNull();
    assertThat(c.after().state()).isEqualTo(CANCELLED);
    if (kind == ThreadKind.VIRTUAL) {
      assertThat(handled).as("the handler was called").hasValue(1);
    }
  }

  /**
   * A default handler that blocks: the close failure is reported once the delivery is done, so the
   * child in the channel, cancelled, leaves its scope and its group ends while the handler still
   * blocks the canceller. (Reported while the delivery was still in flight, the child's exit waited
   * for the delivery, and so for the handler: on one carrier it spun for ever.)
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void aDefaultHandlerThatBlocksHoldsUpOnlyTheCanceller(ThreadKind kind) throws Exception {
    CountDownLatch handling = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread.setDefaultUncaughtExceptionHandler(
        (t, e) -> {
          handling.countDown();
          try {
            release.await();
          } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
          }
        });
    try {
      List<Thread> threads = new CopyOnWriteArrayList<>();
      TaskGroup group = groupOf(kind, threads);
      AtomicReference<Task<?>> inChannel = new AtomicReference<>();
      group.run(
          () -> {
            inChannel.set(group.fork(() -> new ChannelWithFailingClose().block()));
            threads.forEach(FailingChannelCloseTest::awaitBlocked);
            Thread.ofPlatform().daemon().start(group::cancel); // it may block in the handler
          });
      assertThat(inChannel.get().state()).isIn(CANCELLED, Task.State.FAILED);
      if (kind == ThreadKind.VIRTUAL) {
        assertThat(handling.await(10, TimeUnit.SECONDS)).as("the handler was called").isTrue();
      }
    } finally {
      release.countDown();
    }
  }

  /**
   * A default handler that blocks, met by the re-delivery watcher (one thread serving the whole
   * process) when its re-delivery closes a channel whose close throws: the watcher goes on
   * re-delivering to every other thread that swallows while the handler still blocks. (The watcher
   * called the handler itself, and stopped with it: a swallower elsewhere was never interrupted
   * again.) The handler is handed the watcher's thread.
   */
  @org.junit.jupiter.api.RepeatedTest(3)
  void aDefaultHandlerThatBlocksDoesNotStopTheReDeliveryWatcher() throws Exception {
    CountDownLatch handling = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<String> handedThread = new AtomicReference<>();
    Thread.setDefaultUncaughtExceptionHandler(
        (t, e) -> {
          handedThread.compareAndSet(null, t.getName());
          handling.countDown();
          boolean interrupted = false;
          while (true) {
            try {
              release.await();
              break;
            } catch (InterruptedException again) {
              interrupted = true;
            }
          }
          if (interrupted) {
            Thread.currentThread().interrupt();
          }
        });
    AtomicInteger swallowedElsewhere = new AtomicInteger();
    java.util.concurrent.Semaphore swallows = new java.util.concurrent.Semaphore(0);
    AtomicInteger enough = new AtomicInteger(Integer.MAX_VALUE);
    AtomicReference<String> afterTheHandlerBlocked = new AtomicReference<>();
    AtomicReference<Thread> observer = new AtomicReference<>();
    try {
      TaskGroup group = TaskGroup.named("blocking-handler");
      group.run(
          () -> {
            group.fork(
                () -> {
                  try {
                    new CountDownLatch(1).await();
                  } catch (InterruptedException swallowed) {
                    // blocks again below, in the channel: the watcher interrupts it again
                  }
                  new ChannelWithFailingClose().block();
                });
            group.fork(
                () -> {
                  while (swallowedElsewhere.get() < enough.get()) {
                    try {
                      new CountDownLatch(1).await();
                    } catch (InterruptedException swallowed) {
                      swallowedElsewhere.incrementAndGet();
                      swallows.release();
                    }
                  }
                });
            observer.set(
                Thread.ofPlatform()
                    .start(
                        () -> {
                          try {
                            boolean called = handling.await(10, TimeUnit.SECONDS);
                            swallows.drainPermits(); // counts from the handler's block on
                            enough.set(swallowedElsewhere.get() + 3);
                            boolean again = swallows.tryAcquire(3, 10, TimeUnit.SECONDS);
                            afterTheHandlerBlocked.set(
                                "handler called "
                                    + called
                                    + ", interrupted again while it blocked "
                                    + again);
                          } catch (InterruptedException e) {
                            afterTheHandlerBlocked.set("interrupted");
                          } finally {
                            enough.set(0);
                            release.countDown();
                          }
                        }));
            group.cancel();
          });
      observer.get().join();
    } finally {
      release.countDown();
    }
    assertThat(afterTheHandlerBlocked)
        .hasValue("handler called true, interrupted again while it blocked true");
    assertThat(handedThread).hasValue("taskgroup-redelivery");
  }

  /**
   * A child that swallows each interrupt and blocks again in a new such channel is interrupted
   * again each time (each re-delivery closes a channel that throws, in the watcher), and the
   * watcher still re-delivers to another thread afterwards.
   */
  @ParameterizedTest
  @MethodSource("dev.taskgroup.Fixtures#threadKinds")
  void reDeliveriesThroughChannelsWhoseCloseThrowsGoOnAndTheWatcherSurvives(ThreadKind kind)
      throws Exception {
    int rounds = 3;
    AtomicInteger seenByChild = new AtomicInteger();
    AtomicInteger swallowed = new AtomicInteger();
    List<Thread> threads = new CopyOnWriteArrayList<>();
    TaskGroup group = groupOf(kind, threads);
    group.run(
        () -> {
          group.fork(
              () -> {
                for (int i = 0; i < rounds; i++) {
                  try {
                    new ChannelWithFailingClose().block();
                  } catch (ClosedByInterruptException expected) {
                    swallowed.incrementAndGet();
                  } catch (IllegalStateException closedHere) {
                    // A re-delivery that landed before the channel was entered: the channel closes
                    // itself on entry, on this thread, and its close throws here.
                    seenByChild.incrementAndGet();
                    swallowed.incrementAndGet();
                  }
                  Thread.interrupted(); // swallowed; blocks again in a new channel
                }
                CancelScope.checkpoint(); // still cancelled: leaves cancelled
              });
          threads.forEach(FailingChannelCloseTest::awaitBlocked);
          group.cancel();
        });
    assertThat(swallowed).hasValue(rounds);
    int closeFailures = reported.size() + seenByChild.get();
    if (kind == ThreadKind.VIRTUAL) {
      assertThat(closeFailures)
          .as("close failures, reported or thrown on the child (%s)", reported)
          .isEqualTo(rounds);
    } else { // a platform thread may leave a channel before interrupt() reaches it
      assertThat(closeFailures)
          .as("close failures, reported or thrown on the child (%s)", reported)
          .isBetween(1, rounds);
    }
    assertThat(reported).allSatisfy(e -> assertThat(e).hasMessage("close failed"));

    // The watcher is alive: another thread that swallows is interrupted again.
    CancelScope scope = CancelScope.create();
    long[] again = new long[1];
    Thread other =
        Thread.ofPlatform()
            .start(
                () -> {
                  try {
                    scope.run(
                        () -> {
                          scope.cancel();
                          try {
                            Thread.sleep(60_000);
                          } catch (InterruptedException first) {
                            // swallowed
                          }
                          long t0 = System.nanoTime();
                          try {
                            Thread.sleep(20_000);
                          } catch (InterruptedException redelivered) {
                            again[0] = System.nanoTime() - t0;
                          }
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    other.join();
    assertThat(again[0]).as("re-delivered to another thread afterwards").isPositive();
    assertThat(Probes.millis(again[0])).as("re-delivery ms (bound 20 ms)").isLessThan(1_000);
  }
}
