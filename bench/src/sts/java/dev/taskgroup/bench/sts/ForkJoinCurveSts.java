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

/** The fork + join curve (see {@code ForkJoinCurve}): one scope of N trivial children. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@State(Scope.Thread)
public class ForkJoinCurveSts {
  /** Children per scope. */
  @Param({"1", "10", "100", "1000", "10000", "100000"})
  public int n;

  @Benchmark
  public void sts() throws InterruptedException {
    try (var scope = StructuredTaskScope.open()) {
      for (int i = 0; i < n; i++) {
        scope.fork(ForkJoinOneSts.NOTHING);
      }
      scope.join();
    }
  }
}
