package dev.taskgroup.bench;

import dev.taskgroup.CancelScope;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The nesting curve: enter D uncancelled {@code CancelScope}s, one inside the other, then leave
 * them all, for D from 1 to 10 000. JMH reports the time for the whole nest; {@link Curves} divides
 * by D for the entry + exit of one scope. A scope's cost must not grow with the depth at which it
 * is entered. Raw virtual threads and the executor have no scope to nest; the {@code
 * StructuredTaskScope} peer (nested {@code open()}/{@code close()}) is {@code
 * dev.taskgroup.bench.sts.NestCurveSts}. The fork's {@code -Xss} gives the benchmark thread room
 * for 10 000 nested frames.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms1g", "-Xmx1g", "-Xss64m"})
@State(Scope.Thread)
public class NestCurve {
  /** Nesting depth. */
  @Param({"1", "10", "100", "1000", "10000"})
  public int depth;

  /** D nested {@code CancelScope.create().run(...)}, the innermost with an empty body. */
  @Benchmark
  public void taskgroup() throws InterruptedException {
    nest(depth);
  }

  private static void nest(int depth) throws InterruptedException {
    if (depth == 0) {
      return;
    }
    CancelScope.create().run(() -> nest(depth - 1));
  }
}
