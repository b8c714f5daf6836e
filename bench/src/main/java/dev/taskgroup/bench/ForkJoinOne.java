package dev.taskgroup.bench;

import dev.taskgroup.Body;
import dev.taskgroup.ContextPropagator;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Performance workload (a): fork + join of ONE trivial child per group (a new group, scope or
 * executor per operation). The owner is the JMH benchmark thread, a virtual thread when run with
 * {@code -Djmh.executor=VIRTUAL} (the comparison always does). The {@code StructuredTaskScope} peer
 * is {@code dev.taskgroup.bench.sts.ForkJoinOneSts} (JDK 25 preview, bench profile only).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 4, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 10, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
public class ForkJoinOne {
  static final Runnable NOTHING = () -> {};
  static final Body NOTHING_BODY = () -> {};

  /** A context propagator that does nothing: what one propagator costs by being there. */
  static final ContextPropagator NOOP_PROPAGATOR = work -> work;

  /** Builds groups with {@link #NOOP_PROPAGATOR}. */
  static final TaskGroup.Builder PROPAGATED =
      TaskGroup.builder().contextPropagator(NOOP_PROPAGATOR);

  /** Raw: {@code Thread.ofVirtual().start()} + {@code join()}. */
  @Benchmark
  public void raw() throws InterruptedException {
    Thread.ofVirtual().start(NOTHING).join();
  }

  /** A new group per operation: run, fork one child, run returns when the child is done. */
  @Benchmark
  public void taskgroup() throws InterruptedException {
    TaskGroup group = TaskGroup.create();
    group.run(() -> group.fork(NOTHING_BODY));
  }

  /**
   * As {@link #taskgroup()}, in a JVM where the hooks of the optional features (context
   * propagators, JFR, the test clock) are folded out: the control for "no propagator, no recording,
   * no test clock costs nothing" (target: {@code taskgroup} within 3% of it).
   */
  @Benchmark
  @Fork(
      value = 2,
      jvmArgsAppend = {"-Xms2g", "-Xmx2g", WithoutFeatures.PROPERTY})
  public void taskgroupWithoutFeatures(WithoutFeatures control) throws InterruptedException {
    taskgroup();
  }

  /**
   * As {@link #taskgroup()}, with one context propagator that does nothing (target: within 1.1x of
   * {@code taskgroup}, which has none).
   */
  @Benchmark
  public void taskgroupPropagator() throws InterruptedException {
    TaskGroup group = PROPAGATED.build();
    group.run(() -> group.fork(NOTHING_BODY));
  }

  /**
   * Raw with a fresh owner: a new virtual thread per operation starts and joins one child (the peer
   * of {@link #taskgroupFreshOwner}).
   */
  @Benchmark
  public void rawFreshOwner() throws InterruptedException {
    Thread.ofVirtual().start(RAW_OWNER).join();
  }

  /**
   * taskgroup with a fresh owner: a new virtual thread per operation runs the group, so every
   * operation pays what a thread pays once: its state, and its entry in the task tree's registry of
   * root threads. With no JFR recording on, this row against {@link #rawFreshOwner} is the cost of
   * the diagnostics' bookkeeping at its worst.
   */
  @Benchmark
  public void taskgroupFreshOwner() throws InterruptedException {
    Thread.ofVirtual().start(GROUP_OWNER).join();
  }

  static final Runnable RAW_OWNER =
      () -> {
        try {
          Thread.ofVirtual().start(NOTHING).join();
        } catch (InterruptedException e) {
          throw new IllegalStateException(e);
        }
      };

  static final Runnable GROUP_OWNER =
      () -> {
        try {
          TaskGroup group = TaskGroup.create();
          group.run(() -> group.fork(NOTHING_BODY));
        } catch (InterruptedException e) {
          throw new IllegalStateException(e);
        }
      };

  /** A new {@code newVirtualThreadPerTaskExecutor()} per operation: submit, close (waits). */
  @Benchmark
  public void executor() {
    try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
      executor.submit(NOTHING);
    }
  }

  /** {@code runBlocking { launch(Dispatchers.Default) {} }}. */
  @Benchmark
  public void kotlin() throws InterruptedException {
    Kotlin.forkJoin(1);
  }
}
