package dev.taskgroup.bench;

import dev.taskgroup.TaskGroup;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
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
 * The fork + join curve: one group of N trivial children per operation, for N from 1 to 100 000.
 * JMH reports the time per group; {@link Curves} divides by N for the time per child. The same
 * workload as {@link ForkJoinHundred} (raw: N starts, each child counts down one shared counter and
 * the owner parks until zero), with the group size as a parameter. The {@code StructuredTaskScope}
 * peer is {@code dev.taskgroup.bench.sts.ForkJoinCurveSts}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@State(Scope.Thread)
public class ForkJoinCurve {
  /** Children per group. */
  @Param({"1", "10", "100", "1000", "10000", "100000"})
  public int n;

  /** Raw: N starts; each child counts down one shared counter; the owner parks until zero. */
  @Benchmark
  public void raw() {
    ForkJoinHundred.Countdown countdown = new ForkJoinHundred.Countdown(n, Thread.currentThread());
    for (int i = 0; i < n; i++) {
      Thread.ofVirtual().start(countdown);
    }
    countdown.await();
  }

  /** A new group; the body forks N children; run returns when all are done. */
  @Benchmark
  public void taskgroup() throws InterruptedException {
    int children = n;
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            group.fork(ForkJoinOne.NOTHING_BODY);
          }
        });
  }

  /** A new {@code newVirtualThreadPerTaskExecutor()}: N submits, close (waits for all). */
  @Benchmark
  public void executor() {
    try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int i = 0; i < n; i++) {
        executor.submit(ForkJoinOne.NOTHING);
      }
    }
  }
}
