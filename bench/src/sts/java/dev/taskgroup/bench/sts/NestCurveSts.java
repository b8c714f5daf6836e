package dev.taskgroup.bench.sts;

import java.util.concurrent.StructuredTaskScope;
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
 * The nesting curve (see {@code NestCurve}) for {@code StructuredTaskScope}: D scopes opened one
 * inside the other on the same thread, each joined (no children) and closed.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms1g", "-Xmx1g", "-Xss64m"})
@State(Scope.Thread)
public class NestCurveSts {
  /** Nesting depth. */
  @Param({"1", "10", "100", "1000", "10000"})
  public int depth;

  @Benchmark
  public void sts() throws InterruptedException {
    nest(depth);
  }

  private static void nest(int depth) throws InterruptedException {
    if (depth == 0) {
      return;
    }
    try (var scope = StructuredTaskScope.open()) {
      nest(depth - 1);
      scope.join();
    }
  }
}
