package dev.taskgroup.bench;

import dev.taskgroup.CancelScope;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Performance workload (f): nothing cancelled. A hot loop of {@value #LOOP} operations runs inside
 * one (uncancelled) {@code CancelScope}, so the operations see a real scope chain; the scope's own
 * entry and exit are amortised over the loop (about 0.1 ns per operation). Reported per operation.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@OperationsPerInvocation(CheckpointCost.LOOP)
public class CheckpointCost {
  static final int LOOP = 1024;

  private static final CancelScope.Block<RuntimeException> EMPTY = () -> {};

  /** Baseline: {@code Thread.currentThread().isInterrupted()}, the cheapest possible check. */
  @Benchmark
  public void baseline(Blackhole bh) throws InterruptedException {
    CancelScope.create()
        .run(
            () -> {
              for (int i = 0; i < LOOP; i++) {
                bh.consume(Thread.currentThread().isInterrupted());
              }
            });
  }

  /** {@code CancelScope.checkpoint()}, uncancelled. */
  @Benchmark
  public void checkpoint() throws InterruptedException {
    CancelScope.create()
        .run(
            () -> {
              for (int i = 0; i < LOOP; i++) {
                CancelScope.checkpoint();
              }
            });
  }

  /** An uncancelled nested {@code CancelScope.create().run(...)} with an empty body. */
  @Benchmark
  public void nestedScope() throws InterruptedException {
    CancelScope.create()
        .run(
            () -> {
              for (int i = 0; i < LOOP; i++) {
                CancelScope.create().run(EMPTY);
              }
            });
  }
}
