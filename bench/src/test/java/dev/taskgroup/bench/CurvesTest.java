package dev.taskgroup.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongToDoubleFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * CI's check of the curves and the memory table (never measured in CI): the curve benchmarks'
 * bodies run, the fit tells linear from super-linear growth, and a tiny data set becomes tables and
 * PNG plots.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CurvesTest {

  @Test
  void curveBodiesRunOnAVirtualOwner() throws Exception {
    Harness.onVirtualThread(
        () -> {
          ForkJoinCurve forkJoin = new ForkJoinCurve();
          NestCurve nest = new NestCurve();
          for (int n : new int[] {1, 10, 1000}) {
            forkJoin.n = n;
            forkJoin.raw();
            forkJoin.taskgroup();
            forkJoin.executor();
            nest.depth = Math.min(n, 100);
            nest.taskgroup();
          }
        });
  }

  @Test
  void fitCallsLinearGrowthLinearAndQuadraticGrowthSuperLinear() {
    Fit linear = Fit.of(points(x -> 5 + 2.0 * x));
    assertThat(linear.perUnit()).isCloseTo(2.0, within(1e-9));
    assertThat(linear.fixed()).isCloseTo(5.0, within(1e-6));
    assertThat(linear.tailExponent()).isCloseTo(1.0, within(0.01));
    assertThat(linear.superLinear()).isFalse();

    Fit quadratic = Fit.of(points(x -> 3.0 * x + 0.01 * x * x));
    assertThat(quadratic.tailExponent()).isGreaterThan(1.8);
    assertThat(quadratic.superLinear()).isTrue();
  }

  @Test
  void aTinyDataSetBecomesTablesPlotsAndVerdicts(@TempDir Path dir) throws Exception {
    Curve c =
        new Curve(
            "forkjoin", "fork + join per child", "children per group", true, "ns per child", 1e3);
    for (int carriers : Curves.CARRIERS) {
      points(x -> 1 + 0.2 * x).forEach((x, m) -> c.put(carriers, "raw", x, m));
      points(x -> 2 + 0.25 * x).forEach((x, m) -> c.put(carriers, "taskgroup", x, m));
    }
    Curve nest =
        new Curve("nest", "scope entry + exit", "nesting depth", true, "ns per scope", 1e3);
    points(x -> 0.02 * x + 1e-5 * x * x).forEach((x, m) -> nest.put(1, "taskgroup", x, m));
    CurveReport report = new CurveReport(List.of(c, nest), Curves.Mode.SMOKE, dir.resolve("plots"));

    String md = report.markdown();

    assertThat(md)
        .contains(
            "![fork + join per child, 1 carrier(s)](plots/forkjoin-1.png)",
            "| 100 000 | 200 | 250 | 1.25x |",
            "MISS: super-linear");
    for (String png : new String[] {"forkjoin-1.png", "forkjoin-2.png", "nest-1.png"}) {
      byte[] bytes = Files.readAllBytes(dir.resolve("plots").resolve(png));
      assertThat(bytes).startsWith(0x89, 'P', 'N', 'G');
    }
    assertThat(report.verdicts()).extracting(v -> v[2]).containsExactly("PASS", "MISS");
  }

  @Test
  void theReportCarriesPointsCurvesAndTheCurvesVerdicts(@TempDir Path dir) {
    Curve c =
        new Curve("cancel", "cancel of N parked children", "parked children", false, "ms", 1e-3);
    points(x -> 10 + 0.3 * x).forEach((x, m) -> c.put(1, "taskgroup", x, m));
    Report report = new Report();
    report.environment("0.00 0.00 0.00");
    report.curves(new CurveReport(List.of(c), Curves.Mode.FULL, dir.resolve("plots")));
    report.finish(60_000_000_000L, "0.00 0.00 0.00", false, true);

    String md = report.markdown();

    assertThat(md)
        .contains(
            "-Dbench.curves=full`",
            "## (a) fork + join",
            "## Curves",
            "| (curves) cancel of N parked children: taskgroup grows at most linearly");
    assertThat(md.indexOf("(curves) cancel")).isLessThan(md.indexOf("## (a) fork + join"));
    assertThat(dir.resolve("plots").resolve("cancel-1.png")).exists();
  }

  @Test
  void memoryTableListsBytesPerChildByClassForEveryImplementation() {
    String md =
        MemoryTable.markdown(
            Map.of(
                "raw",
                    List.of(
                        "jdk.internal.vm.StackChunk 232.0 1.00",
                        "java.lang.VirtualThread$$Lambda/0x01 16.0 1.00"),
                "taskgroup",
                    List.of(
                        "jdk.internal.vm.StackChunk 280.0 1.00",
                        "dev.taskgroup.internal.TaskImpl 88.0 1.00",
                        "java.lang.VirtualThread$$Lambda/0x02 16.0 1.00")));

    assertThat(md)
        .contains(
            "| class | raw | taskgroup |",
            "| `jdk.internal.vm.StackChunk` | 232.0 (1.00) | 280.0 (1.00) |",
            "| `dev.taskgroup.internal.TaskImpl` | | 88.0 (1.00) |",
            "| `java.lang.VirtualThread$$Lambda` | 16.0 (1.00) | 16.0 (1.00) |",
            "| **sum of the classes** | **248.0** | **384.0** |");
  }

  @Test
  void executorHarnessStartsAndCancelsParkedChildren() throws Exception {
    Harness.onVirtualThread(
        () -> {
          Harness h = Harness.of("executor", 500);
          h.start();
          h.parked.awaitAllParked();
          assertThat(h.cancel()).isPositive();
        });
  }

  /** Sizes 1 to 100 000 with the total {@code f(x)} in microseconds. */
  private static Map<Long, Measured> points(LongToDoubleFunction f) {
    Map<Long, Measured> m = new TreeMap<>();
    for (long x = 1; x <= 100_000; x *= 10) {
      m.put(x, new Measured(f.applyAsDouble(x), 0, "us", 1));
    }
    return m;
  }
}
