package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Issue 7, item 4: a table of misuse and hostile input. Each row runs inside a fresh group whose
 * threads are tracked; each must end with the expected, clearly worded error, and leave no thread
 * running and no interrupt behind. (Null arguments and bad numbers are in MisuseTest.)
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class BadInputTest {

  /** What a row does with a running group and its tracking factory; returns what it threw. */
  interface Row {
    Throwable run(TaskGroup group) throws Exception;
  }

  static Stream<Arguments> rows() {
    return Stream.of(
        row(
            "started() called twice",
            IllegalStateException.class,
            "already called",
            g -> {
              Throwable[] second = new Throwable[1];
              g.run(
                  () ->
                      g.start(
                          signal -> {
                            signal.started("first");
                            second[0] = catchThrowable(() -> signal.started("second"));
                          }));
              return second[0]; // read after run: the child has ended
            }),
        row(
            "start() work that never signals",
            IllegalStateException.class,
            "started()",
            g -> g.call(() -> catchThrowable(() -> g.start(signal -> {})))),
        row(
            "running a group twice",
            IllegalStateException.class,
            "runs once",
            g -> {
              g.run(() -> {});
              return catchThrowable(() -> g.run(() -> {}));
            }),
        row(
            "forking after the group finished",
            IllegalStateException.class,
            "has finished",
            g -> {
              g.run(() -> {});
              return catchThrowable(() -> g.fork(() -> 1));
            }),
        row(
            "a child that throws an Error",
            TaskGroupException.class,
            "OutOfMemoryError",
            g ->
                catchThrowable(
                    () ->
                        g.run(
                            () ->
                                g.fork(
                                    () -> {
                                      throw new OutOfMemoryError("simulated");
                                    })))),
        row(
            "a child that overflows its stack",
            TaskGroupException.class,
            "StackOverflowError",
            g -> catchThrowable(() -> g.run(() -> g.fork(() -> recurse(0))))),
        row(
            "a body that overflows its stack",
            TaskGroupException.class,
            "StackOverflowError",
            g -> catchThrowable(() -> g.run(() -> recurse(0)))),
        row(
            "a start() work that overflows its stack",
            StackOverflowError.class,
            "",
            g -> g.call(() -> catchThrowable(() -> g.start(signal -> recurse(0))))));
  }

  private static Arguments row(
      String name, Class<? extends Throwable> expected, String messagePart, Row action) {
    return Arguments.of(name, expected, messagePart, action);
  }

  private static int recurse(int depth) {
    return recurse(depth + 1) + 1;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("rows")
  void misuseGetsAClearErrorAndLeavesNothingBehind(
      String name, Class<? extends Throwable> expected, String messagePart, Row action)
      throws Exception {
    for (ThreadKind kind : ThreadKind.values()) {
      Tracking threads = new Tracking(kind);
      TaskGroup group = Fixtures.group("bad-input", threads);
      Throwable thrown = action.run(group);
      assertThat(thrown).as(name).isInstanceOf(expected);
      assertThat(String.valueOf(thrown.getMessage())).as(name).contains(messagePart);
      threads.assertAllDone();
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileFactories")
  void hostileThreadFactoryIsRejectedAndTheGroupIsAsItWas(
      String name, java.util.concurrent.ThreadFactory factory) throws Exception {
    TaskGroup group = TaskGroup.builder().name("hostile").threadFactory(factory).build();
    Throwable[] rejected = new Throwable[1];
    String result =
        group.call(
            () -> {
              rejected[0] = catchThrowable(() -> group.fork(() -> "never"));
              CancelScope.checkpoint(); // the group is not cancelled by the rejection
              return "body finished";
            });
    assertThat(result).isEqualTo("body finished");
    assertThat(rejected[0])
        .isInstanceOf(RejectedExecutionException.class)
        .hasMessageContaining("hostile");
    assertThat(group.cancelCalled()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).isFalse();
  }

  static Stream<Arguments> hostileFactories() {
    return Stream.of(
        Arguments.of("returns null", (java.util.concurrent.ThreadFactory) r -> null),
        Arguments.of(
            "throws",
            (java.util.concurrent.ThreadFactory)
                r -> {
                  throw new IllegalStateException("no threads today");
                }),
        Arguments.of(
            "returns a started thread",
            (java.util.concurrent.ThreadFactory)
                r -> {
                  Thread t = Thread.ofVirtual().start(() -> {});
                  return t;
                }));
  }

  @ParameterizedTest(name = "timeout {0}")
  @MethodSource("badTimeouts")
  void negativeTimeoutsAreRejectedEverywhere(Duration timeout) {
    for (Function<Duration, Object> use :
        java.util.List.<Function<Duration, Object>>of(
            CancelScope::withTimeout,
            d -> TaskGroup.builder().timeout(d),
            d -> {
              CancelScope.create().setTimeout(d);
              return null;
            })) {
      assertThat(catchThrowable(() -> use.apply(timeout)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("negative");
    }
  }

  static Stream<Duration> badTimeouts() {
    return Stream.of(Duration.ofNanos(-1), Duration.ofSeconds(-5), Duration.ofDays(-1));
  }
}
