package dev.taskgroup.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * CI's check of the bench module (the full comparison never runs in CI): the JMH annotation
 * processor ran, every benchmark body and harness works on tiny inputs, and one tiny JMH iteration
 * runs in a fork on virtual threads.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SmokeTest {

  @Test
  void benchmarkListNamesEveryBenchmark() throws Exception {
    String list;
    try (InputStream in = getClass().getResourceAsStream("/META-INF/BenchmarkList")) {
      assertThat(in)
          .as("META-INF/BenchmarkList (is the JMH processor in annotationProcessorPaths?)")
          .isNotNull();
      list = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    for (String b :
        new String[] {
          "ForkJoinOne_raw",
          "ForkJoinOne_taskgroup",
          "ForkJoinOne_taskgroupPropagator",
          "ForkJoinOne_executor",
          "ForkJoinOne_kotlin",
          "ForkJoinHundred_raw",
          "ForkJoinHundred_rawWithBookkeeping",
          "ForkJoinHundred_taskgroup",
          "ForkJoinHundred_taskgroupPropagator",
          "ForkJoinHundred_executor",
          "ForkJoinOne_rawFreshOwner",
          "ForkJoinOne_taskgroupFreshOwner",
          "ForkJoinHundred_rawFreshOwner",
          "ForkJoinHundred_taskgroupFreshOwner",
          "ForkJoinHundred_kotlin",
          "CancelParked_raw",
          "CancelParked_taskgroup",
          "CancelParked_executor",
          "CheckpointCost_baseline",
          "CheckpointCost_checkpoint",
          "CheckpointCost_nestedScope",
          "ForkJoinCurve_raw",
          "ForkJoinCurve_taskgroup",
          "ForkJoinCurve_executor",
          "NestCurve_taskgroup"
        }) {
      assertThat(list).contains(b + "_jmhTest");
    }
  }

  @Test
  void forkJoinBodiesRunOnAVirtualOwner() throws Exception {
    Harness.onVirtualThread(
        () -> {
          ForkJoinOne one = new ForkJoinOne();
          ForkJoinHundred hundred = new ForkJoinHundred();
          for (int i = 0; i < 20; i++) {
            one.raw();
            one.taskgroup();
            one.taskgroupPropagator();
            one.executor();
            one.kotlin();
            hundred.raw();
            hundred.rawWithBookkeeping();
            hundred.taskgroup();
            hundred.taskgroupPropagator();
            hundred.executor();
            hundred.kotlin();
            one.rawFreshOwner();
            one.taskgroupFreshOwner();
            hundred.rawFreshOwner();
            hundred.taskgroupFreshOwner();
          }
        });
  }

  @Test
  void cancelBodiesCancelEveryParkedChild() throws Exception {
    Harness.onVirtualThread(
        () -> {
          CancelParked bench = new CancelParked();
          for (String canceller : new String[] {"virtual", "platform"}) {
            var raw = new CancelParked.RawState();
            var group = new CancelParked.GroupState();
            var executor = new CancelParked.ExecutorState();
            for (CancelParked.Size s : new CancelParked.Size[] {raw, group, executor}) {
              s.n = 500;
              s.canceller = canceller;
              s.openCanceller();
            }
            for (int i = 0; i < 2; i++) {
              raw.start();
              bench.raw(raw);
              raw.check();

              group.start();
              bench.taskgroup(group);
              group.check();

              executor.start();
              bench.executor(executor);
              executor.check();
            }
            for (CancelParked.Size s : new CancelParked.Size[] {raw, group, executor}) {
              s.closeCanceller();
            }
          }
        });
  }

  @Test
  void theControlRowFailsWhenItsSwitchDidNotTake() {
    // These tests run without -Ddev.taskgroup.internal.withoutFeatures=true: the features' hooks
    // are on, and the control row's set-up must refuse to measure.
    assertThatThrownBy(() -> new WithoutFeatures().check())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("hooks on");
  }

  @Test
  void checkpointBodiesRun() throws Exception {
    CheckpointCost bench = new CheckpointCost();
    var bh =
        new org.openjdk.jmh.infra.Blackhole(
            "Today's password is swordfish. I understand instantiating Blackholes directly is"
                + " dangerous.");
    bench.baseline(bh);
    bench.checkpoint();
    bench.nestedScope();
  }

  @Test
  void harnessesStartAndCancelParkedChildren() throws Exception {
    Harness.onVirtualThread(
        () -> {
          for (String impl : new String[] {"raw", "taskgroup"}) {
            Harness h = Harness.of(impl, 2000);
            h.start();
            assertThat(h.awaitStarted()).isPositive();
            h.parked.awaitAllParked();
            assertThat(h.cancel()).isPositive();
          }
        });
  }

  @Test
  void probesPrintResults() throws Exception {
    assertThat(capture(() -> MemoryProbe.main(new String[] {"taskgroup", "2000"})))
        .contains("RESULT bytesPerChild");
    for (String impl : new String[] {"taskgroup", "executor", "cf"}) {
      assertThat(capture(() -> HeldProbe.main(new String[] {impl, "2000"})))
          .contains("RESULT bytesPerHeld");
    }
    assertThat(capture(() -> MillionProbe.main(new String[] {"taskgroup", "2000", "1"})))
        .contains("RESULT start 1", "RESULT cancel 1");
    assertThat(capture(() -> DeadlineProbe.main(new String[] {"raw,taskgroup", "200", "100", "1"})))
        .contains(
            "RESULT taskgroup.returned.p99",
            "RESULT taskgroup.timedOut 200",
            "RESULT raw.timedOut 200");
  }

  @Test
  void oneTinyJmhIterationRunsInAForkOnVirtualThreads() throws Exception {
    Collection<RunResult> results =
        new Runner(
                new OptionsBuilder()
                    .include("^dev\\.taskgroup\\.bench\\.ForkJoinOne\\.taskgroup$")
                    .forks(1)
                    .warmupIterations(0)
                    .measurementIterations(1)
                    .measurementTime(TimeValue.milliseconds(200))
                    .jvmArgsPrepend("-Djmh.executor=VIRTUAL")
                    .shouldFailOnError(true)
                    .output(System.getProperty("java.io.tmpdir") + "/taskgroup-bench-smoke.txt")
                    .build())
            .run();
    assertThat(results).hasSize(1);
    assertThat(results.iterator().next().getPrimaryResult().getScore()).isPositive();
  }

  private static String capture(Harness.Work main) throws Exception {
    PrintStream old = System.out;
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
    try {
      main.run();
    } finally {
      System.setOut(old);
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }
}
