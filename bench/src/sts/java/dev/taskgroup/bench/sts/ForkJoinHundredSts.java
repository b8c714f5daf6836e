package dev.taskgroup.bench.sts;

import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;

/** Workload (a), 100 trivial children per scope, reported per child. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 4, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 10, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@OperationsPerInvocation(ForkJoinHundredSts.CHILDREN)
public class ForkJoinHundredSts {
  static final int CHILDREN = 100;

  @Benchmark
  public void sts() throws InterruptedException {
    try (var scope = StructuredTaskScope.open()) {
      for (int i = 0; i < CHILDREN; i++) {
        scope.fork(ForkJoinOneSts.NOTHING);
      }
      scope.join();
    }
  }
}
