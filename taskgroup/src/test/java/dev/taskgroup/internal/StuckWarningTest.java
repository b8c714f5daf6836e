package dev.taskgroup.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The stuck warning: a cancelled group whose children do not finish is reported once, through the
 * real System.Logger (the JDK maps it to java.util.logging, captured here by a handler).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StuckWarningTest {
  private final List<LogRecord> records = new CopyOnWriteArrayList<>();
  private final CountDownLatch logged = new CountDownLatch(1);
  private final Logger jul = Logger.getLogger("dev.taskgroup");
  private final Handler capture =
      new Handler() {
        @Override
        public void publish(LogRecord r) {
          records.add(r);
          logged.countDown();
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };
  private long before;

  @BeforeEach
  void lowThreshold() {
    before = TimeUnit.NANOSECONDS.toMillis(StuckWarning.thresholdNanos());
    StuckWarning.setThresholdMillis(100);
    jul.addHandler(capture);
  }

  @AfterEach
  void restore() {
    jul.removeHandler(capture);
    StuckWarning.setThresholdMillis(before);
  }

  /** A child that swallows every interrupt until {@code stop} is counted down. */
  private static Object swallowUntil(CountDownLatch entered, CountDownLatch stop) {
    entered.countDown();
    while (stop.getCount() > 0) {
      try {
        stop.await();
      } catch (InterruptedException swallowed) {
        // the mistake the warning is there to find
      }
    }
    return null;
  }

  @RepeatedTest(3)
  void cancelledGroupWithAStuckChildWarnsOnceNamingTheChildAndItsLine() throws Exception {
    TaskGroup group = TaskGroup.named("stuck-group");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    Thread releaser = releaseAfterWarning(stop);
    group.run(
        () -> {
          group.fork("stuck-child", () -> swallowUntil(entered, stop));
          group.fork("quick-child", () -> null);
          entered.await();
          group.cancel("shutting down");
        });
    releaser.join();
    assertThat(records).hasSize(1);
    LogRecord r = records.get(0);
    assertThat(r.getLevel()).isEqualTo(Level.WARNING);
    assertThat(r.getMessage())
        .startsWith("group 'stuck-group' was cancelled ")
        .contains("shutting down")
        .containsPattern("task 'stuck-child' on thread #\\d+ \"stuck-child\"")
        .containsPattern("interrupt re-delivered \\d+ times")
        .containsPattern(
            "\n      at (\\S+/)?dev\\.taskgroup\\.internal\\.StuckWarningTest\\.swallowUntil\\(")
        .contains("catches InterruptedException")
        .contains("CancelScope.onCancel")
        .doesNotContain("quick-child");
  }

  /**
   * Names with line breaks and quotes (a group's, a child's and its thread's, a cancel reason) stay
   * on their line in the warning, escaped as in {@code TaskTree.format()}: a name must not make a
   * line that reads as another stuck child.
   */
  @RepeatedTest(2)
  void namesWithLineBreaksStayOnTheirLine() throws Exception {
    String forged = "x'\n  task 'forged' on thread #1 \"forged\" (WAITING)";
    TaskGroup group = TaskGroup.named("g" + forged);
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    Thread releaser = releaseAfterWarning(stop);
    group.run(
        () -> {
          group.fork("c" + forged, () -> swallowUntil(entered, stop));
          entered.await();
          group.cancel("r)" + forged);
        });
    releaser.join();
    assertThat(records).hasSize(1);
    String escaped = "x\\'\\n  task \\'forged\\' on thread #1 \"forged\" (WAITING)";
    assertThat(records.get(0).getMessage())
        .doesNotContain("\n  task 'forged'")
        .startsWith("group 'g" + escaped + "' was cancelled ")
        .contains("\n  task 'c" + escaped + "' on thread #")
        .contains(": r\\)x'\\n  task 'forged' on thread #1 \"forged\" (WAITING\\)");
  }

  /** A cancel-hook action that waits, ignoring interrupts, until {@code stop} is counted down. */
  private static void blockUntil(CountDownLatch stop) {
    boolean interrupted = false;
    while (stop.getCount() > 0) {
      try {
        stop.await();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  @RepeatedTest(3)
  void cancelHookActionsTheGroupStillWaitsForAreNamedWithWhoRegisteredThemAndTheirStacks()
      throws Exception {
    TaskGroup group = TaskGroup.named("hook-group");
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    Thread releaser = releaseAfterWarning(stop);
    String owner = Thread.currentThread().getName();
    group.run(
        () -> {
          group.fork(
              "registrant",
              () -> {
                // Left open: the child ends when cancelled, and the group waits for the action.
                CancelScope.onCancel(() -> blockUntil(stop));
                registered.countDown();
                new CountDownLatch(1).await(); // until cancelled
                return null;
              });
          CancelScope.onCancel(() -> blockUntil(stop)); // registered by the owner, in the body
          registered.await();
          group.cancel("closing");
        });
    releaser.join();
    assertThat(records).hasSize(1);
    assertThat(records.get(0).getMessage())
        .startsWith("group 'hook-group' was cancelled ")
        .contains("(none left now)")
        .doesNotContain("task 'registrant' on thread")
        .contains("cancel-hook actions (onCancel, closeOnCancel)")
        .containsPattern(
            "cancel-hook action registered by task 'registrant' of group 'hook-group', on thread"
                + " #\\d+ \"taskgroup-cancel-hook\" \\((WAITING|RUNNABLE)\\), running for \\d+ ms")
        .containsPattern(
            "cancel-hook action registered by thread #\\d+ \""
                + java.util.regex.Pattern.quote(owner)
                + "\", on thread #\\d+ \"taskgroup-cancel-hook\"")
        .containsPattern(
            "\n      at (\\S+/)?dev\\.taskgroup\\.internal\\.StuckWarningTest\\.blockUntil\\(");
    assertThat(group.cancelCaught()).isTrue();
  }

  @RepeatedTest(3)
  void cancelWhileTheOwnerAlreadyWaitsStillWarns() throws Exception {
    TaskGroup group = TaskGroup.named("late-cancel");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    Thread canceller =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    entered.await();
                    while (!group.toString().contains("joining")) {
                      Thread.onSpinWait();
                    }
                    group.cancel();
                    logged.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  stop.countDown();
                });
    group.run(() -> group.fork("late-child", () -> swallowUntil(entered, stop)));
    canceller.join();
    assertThat(records).hasSize(1);
    assertThat(records.get(0).getMessage()).contains("group 'late-cancel'", "'late-child'");
  }

  /**
   * A log handler that throws, an exception or an error (a broken logging backend: a class missing
   * at run time): the group still waits for its child and ends as it would have; an error is
   * reported to the default uncaught-exception handler.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true, false, true})
  void aLoggerThatThrowsDoesNotChangeHowTheGroupEnds(boolean error) throws Exception {
    Throwable broken =
        error
            ? new NoClassDefFoundError("org/example/MissingAppender")
            : new IllegalStateException("broken log handler");
    Handler throwing =
        new Handler() {
          @Override
          public void publish(LogRecord r) {
            logged.countDown();
            if (broken instanceof Error e) {
              throw e;
            }
            throw (RuntimeException) broken;
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    jul.removeHandler(capture);
    jul.addHandler(throwing);
    List<Throwable> reported = new CopyOnWriteArrayList<>();
    Thread.UncaughtExceptionHandler handler = Thread.getDefaultUncaughtExceptionHandler();
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> reported.add(e));
    try {
      TaskGroup group = TaskGroup.named("broken-logging");
      CountDownLatch entered = new CountDownLatch(1);
      CountDownLatch stop = new CountDownLatch(1);
      AtomicBoolean childEnded = new AtomicBoolean();
      Thread releaser = releaseAfterWarning(stop);
      group.run(
          () -> {
            group.fork(
                () -> {
                  swallowUntil(entered, stop);
                  childEnded.set(true);
                });
            entered.await();
            group.cancel();
          });
      assertThat(childEnded).as("the child ended before run returned").isTrue();
      releaser.join();
      assertThat(group.cancelCaught()).isTrue();
      assertThat(reported).isEqualTo(error ? List.of(broken) : List.of());
    } finally {
      Thread.setDefaultUncaughtExceptionHandler(handler);
      jul.removeHandler(throwing);
    }
  }

  /** A thread that counts {@code stop} down once the warning was published. */
  private Thread releaseAfterWarning(CountDownLatch stop) {
    return Thread.ofVirtual()
        .start(
            () -> {
              try {
                logged.await();
              } catch (InterruptedException e) {
                return;
              }
              stop.countDown();
            });
  }

  @RepeatedTest(2)
  void noWarningWhenTheChildrenEndInTimeOrTheWarningIsOff() throws Exception {
    TaskGroup group = TaskGroup.named("prompt");
    group.run(
        () -> {
          group.fork(
              () -> {
                new CountDownLatch(1).await(); // ends at once when cancelled
                return null;
              });
          group.cancel();
        });
    StuckWarning.setThresholdMillis(0);
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    TaskGroup off = TaskGroup.named("off");
    Thread releaser =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    entered.await();
                    // a bounded wait showing no warning comes: 300 ms is far past the threshold
                    Thread.sleep(300);
                  } catch (InterruptedException e) {
                    return;
                  }
                  stop.countDown();
                });
    off.run(
        () -> {
          off.fork(() -> swallowUntil(entered, stop));
          entered.await();
          off.cancel();
        });
    releaser.join();
    assertThat(records).isEmpty();
  }
}
