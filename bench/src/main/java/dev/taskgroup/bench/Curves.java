package dev.taskgroup.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Measures the curves (README, "Benchmarks"): fork + join per child for 1 to 100 000 children,
 * cancel time for 1 to 1 000 000 parked children, and scope entry + exit at nesting depth 1 to 10
 * 000, for every implementation the workload translates to, each with the virtual-thread scheduler
 * on one carrier (judged) and on two (context). Every JMH fork gets {@code -Djmh.executor=VIRTUAL},
 * so every owner is a virtual thread; the 1 000 000 point runs in {@link MillionProbe} (raw and
 * taskgroup, full mode only), whose owners and driver are virtual too.
 *
 * <p>Quick mode (about 5 minutes on 2 cores) cuts every JMH run to one short fork (2 x 250 ms
 * warm-up and 4 x 250 ms measurement, or 3 + 10 single shots) and skips the 1 000 000 point; full
 * mode (about 20 minutes) uses the benchmarks' own settings in one fork (30 single shots for the
 * cancel) and adds the 1 000 000 point. Smoke mode only checks the pipeline.
 */
final class Curves {
  /** How long to measure. */
  enum Mode {
    QUICK,
    FULL,
    /** A few milliseconds per point: only to check the pipeline (the smoke test). */
    SMOKE;

    static Mode parse(String s) {
      return valueOf(s.toUpperCase(Locale.ROOT));
    }
  }

  static final List<Integer> CARRIERS = List.of(1, 2);
  static final String[] SIZES = {"1", "10", "100", "1000", "10000", "100000"};
  static final String[] DEPTHS = {"1", "10", "100", "1000", "10000"};

  private final Compare compare;
  private final Mode mode;

  Curves(Compare compare, Mode mode) {
    this.compare = compare;
    this.mode = mode;
  }

  /** The three curves, measured. */
  List<Curve> run() throws Exception {
    Curve forkJoin =
        new Curve(
            "forkjoin", "fork + join per child", "children per group", true, "ns per child", 1e3);
    Curve cancel =
        new Curve("cancel", "cancel of N parked children", "parked children", false, "ms", 1e-3);
    Curve nest =
        new Curve(
            "nest",
            "scope entry + exit at nesting depth D",
            "nesting depth",
            true,
            "ns per scope",
            1e3);
    for (int carriers : CARRIERS) {
      jmh(forkJoin, carriers, "ForkJoinCurve", "n", SIZES, false);
      jmh(cancel, carriers, "CancelParked", "n", SIZES, true);
      jmh(nest, carriers, "NestCurve", "depth", DEPTHS, false);
      if (mode != Mode.QUICK) {
        million(cancel, carriers);
      }
    }
    return List.of(forkJoin, cancel, nest);
  }

  private void jmh(
      Curve curve,
      int carriers,
      String simpleName,
      String param,
      String[] sizes,
      boolean singleShot)
      throws RunnerException {
    compare.say(
        "curve %s, %d carrier(s): JMH %s, %s mode ...",
        curve.key(), carriers, simpleName, mode.name().toLowerCase(Locale.ROOT));
    List<String> prepend =
        new ArrayList<>(
            List.of(
                "-Djmh.executor=VIRTUAL",
                "-Djdk.virtualThreadScheduler.parallelism=" + carriers,
                Compare.PRE_TOUCH));
    if (compare.preview()) {
      prepend.add("--enable-preview");
    }
    ChainedOptionsBuilder b =
        new OptionsBuilder()
            .include("^" + Compare.PKG.replace(".", "\\.") + "(sts\\.)?" + simpleName + "(Sts)?\\.")
            .param(param, sizes)
            .jvmArgsPrepend(prepend.toArray(String[]::new))
            .shouldFailOnError(true)
            .output(
                compare
                    .logs()
                    .resolve("curve-" + curve.key() + "-" + carriers + ".txt")
                    .toString());
    if (singleShot) {
      // Cancel: one cancel per iteration; only the gcBeforeCancel=false variant.
      b.param("gcBeforeCancel", "false");
      switch (mode) {
        case QUICK -> b.forks(1).warmupIterations(3).measurementIterations(10);
        case SMOKE -> b.forks(1).warmupIterations(0).measurementIterations(1);
        case FULL -> b.forks(1).warmupIterations(5).measurementIterations(30);
      }
    } else {
      switch (mode) {
        case QUICK ->
            b.forks(1)
                .warmupIterations(2)
                .warmupTime(TimeValue.milliseconds(250))
                .measurementIterations(4)
                .measurementTime(TimeValue.milliseconds(250));
        case SMOKE ->
            b.forks(1)
                .warmupIterations(0)
                .measurementIterations(1)
                .measurementTime(TimeValue.milliseconds(20));
        case FULL -> {} // the benchmark's own annotations
      }
    }
    for (RunResult r : new Runner(b.build()).run()) {
      String bench = r.getParams().getBenchmark();
      String impl = bench.substring(bench.lastIndexOf('.') + 1);
      long x = Long.parseLong(r.getParams().getParam(param));
      var p = r.getPrimaryResult();
      Measured m =
          Curve.micros(
              new Measured(
                  p.getScore(),
                  Double.isNaN(p.getScoreError()) ? 0.0 : p.getScoreError(),
                  p.getScoreUnit(),
                  p.getSampleCount()));
      curve.put(carriers, impl, x, m);
      compare.say(
          "  %-10s %s=%-7d %12.3f ± %.3f us per operation", impl, param, x, m.score(), m.error());
    }
  }

  /**
   * The 1 000 000 point of the cancel curve, from {@link MillionProbe} (3 measured rounds); in
   * smoke mode a 200 000 point of one round, to check the path.
   */
  private void million(Curve cancel, int carriers) throws Exception {
    int n = mode == Mode.FULL ? 1_000_000 : 200_000;
    String rounds = mode == Mode.FULL ? "3" : "1";
    for (String impl : List.of("raw", "taskgroup")) {
      compare.say(
          "curve cancel, %d carrier(s): %s, %d parked children (MillionProbe) ...",
          carriers, impl, n);
      Map<String, List<String>> r =
          compare.probe(
              "curve-million-" + impl + "-" + carriers,
              List.of("-Xms8g", "-Xmx16g", "-Djdk.virtualThreadScheduler.parallelism=" + carriers),
              "MillionProbe",
              impl,
              String.valueOf(n),
              rounds);
      List<Double> ms = new ArrayList<>();
      for (String line : r.get("cancel")) {
        ms.add(Long.parseLong(line.split(" ")[1]) / 1e6);
      }
      Measured m = Curve.micros(Measured.ofSamples(ms, "ms"));
      cancel.put(carriers, impl, n, m);
      compare.say("  %-10s n=%-7d %12.3f ± %.3f us", impl, n, m.score(), m.error());
    }
  }
}
