package dev.taskgroup.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The curves' part of RESULTS.md: per curve, a plot and a table per carrier count, and the fitted
 * growth of every series (see {@link Fit}); draws the PNGs into the plots folder.
 */
final class CurveReport {
  private final List<Curve> curves;
  private final Curves.Mode mode;
  private final Path plots;
  private final List<String[]> verdicts = new ArrayList<>();

  CurveReport(List<Curve> curves, Curves.Mode mode, Path plots) {
    this.curves = curves;
    this.mode = mode;
    this.plots = plots;
  }

  Curves.Mode mode() {
    return mode;
  }

  /** Target rows ({target, measured, verdict}); filled by {@link #markdown()}. */
  List<String[]> verdicts() {
    return verdicts;
  }

  /** Draws the plots and returns the markdown. */
  String markdown() throws IOException {
    StringBuilder b = new StringBuilder("## Curves\n\n");
    b.append(intro());
    for (Curve c : curves) {
      b.append("### ").append(c.title()).append("\n\n").append(describe(c.key())).append("\n\n");
      for (int carriers : Curves.CARRIERS) {
        if (!c.points().containsKey(carriers)) {
          continue;
        }
        String file = c.key() + "-" + carriers + ".png";
        Plot.draw(c, carriers, plots.resolve(file));
        b.append("#### ")
            .append(carriers == 1 ? "One carrier (judged)" : "Two carriers (context)")
            .append("\n\n");
        b.append("![")
            .append(c.title())
            .append(", ")
            .append(carriers)
            .append(" carrier(s)](")
            .append(plots.getFileName())
            .append('/')
            .append(file)
            .append(")\n\n");
        table(b, c, carriers);
      }
      fits(b, c);
    }
    return b.toString();
  }

  private String intro() {
    return "Each curve is measured with the virtual-thread scheduler on one carrier "
        + "(`-Djdk.virtualThreadScheduler.parallelism=1`, judged) and on two (context); every "
        + "owner is a virtual thread (JMH forks with `-Djmh.executor=VIRTUAL`). Mode: "
        + mode.name().toLowerCase(Locale.ROOT)
        + (mode == Curves.Mode.FULL
            ? " (the benchmarks' own JMH settings; the 1 000 000 point from `MillionProbe`, "
                + "3 rounds after its warm-up, raw and taskgroup only)"
            : mode == Curves.Mode.QUICK
                ? " (short JMH runs, one fork, no 1 000 000 point: for a first look only)"
                : " (a check of the pipeline, no warm-up: the numbers mean nothing)")
        + ". Tables give the value ± its error (JMH's 99.9% half-width, or the standard "
        + "deviation of the rounds). Growth is fitted on the total time of one operation "
        + "against its size by least squares: the straight line `total = fixed + size x "
        + "marginal` gives the cost of one more child or scope; the log-log slope (1 = linear) is "
        + "fitted over all points and over the three largest, where a fixed cost can no longer "
        + "hide a super-linear term. A slope above "
        + Fit.SUPER_LINEAR
        + " on either is flagged MISS.\n\n";
  }

  private static String describe(String key) {
    return switch (key) {
      case "forkjoin" ->
          "`ForkJoinCurve` (and `ForkJoinCurveSts`): a new group per operation "
              + "with N trivial children, as (a) with 100. Shown per child (time per group / N); the "
              + "cost per child should stay flat.";
      case "cancel" ->
          "`CancelParked` (and `CancelParkedSts`) with N from 1 to 100 000, as (b): "
              + "single shot, one cancel per iteration, every child parked before the timing. "
              + "Shown as the whole cancel; it should grow linearly in N (slope 1 on the log-log "
              + "plot). The 1 000 000 point comes from `MillionProbe`, as (d).";
      case "nest" ->
          "`NestCurve` (and `NestCurveSts`): D uncancelled scopes entered one inside "
              + "the other, then all left (taskgroup: nested `CancelScope.create().run(...)`; STS: "
              + "nested `open()`, `join()`, `close()` with no children). Raw threads and the executor "
              + "have no scope to nest. Shown per scope (time per nest / D); it should stay flat.";
      default -> "";
    };
  }

  private static void table(StringBuilder b, Curve c, int carriers) {
    Map<String, TreeMap<Long, Measured>> series = c.points().get(carriers);
    List<String> impls = new ArrayList<>();
    for (String impl : Compare.ORDER) {
      if (series.containsKey(impl)) {
        impls.add(impl);
      }
    }
    TreeSet<Long> sizes = new TreeSet<>();
    series.values().forEach(s -> sizes.addAll(s.keySet()));
    b.append("| ").append(c.xName());
    impls.forEach(i -> b.append(" | ").append(i).append(" (").append(c.unit()).append(")"));
    boolean ratio = impls.contains("raw") && impls.contains("taskgroup");
    b.append(ratio ? " | taskgroup vs raw |\n" : " |\n");
    b.append("| ---:").append(" | ---:".repeat(impls.size() + (ratio ? 1 : 0))).append(" |\n");
    for (long x : sizes) {
      b.append("| ").append(String.format(Locale.ROOT, "%,d", x).replace(',', ' '));
      for (String impl : impls) {
        Measured m = series.get(impl).get(x);
        b.append(" | ");
        if (m != null) {
          b.append(Findings.fmt(c.shown(m.score(), x)));
          if (m.error() > 0) {
            b.append(" ± ").append(Findings.fmt(c.shown(m.error(), x)));
          }
        }
      }
      if (ratio) {
        Measured r = series.get("raw").get(x);
        Measured t = series.get("taskgroup").get(x);
        b.append(" | ")
            .append(
                r == null || t == null
                    ? ""
                    : String.format(Locale.ROOT, "%.2fx", t.score() / r.score()));
      }
      b.append(" |\n");
    }
    b.append("\n");
  }

  private void fits(StringBuilder b, Curve c) {
    b.append("Growth (least squares on the total time per operation):\n\n");
    b.append("| implementation | carriers | marginal cost per ")
        .append(unitNoun(c))
        .append(" | fixed cost | log-log slope, all points | log-log slope, three largest | ")
        .append("growth |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (var byCarriers : c.points().entrySet()) {
      for (String impl : Compare.ORDER) {
        TreeMap<Long, Measured> points = byCarriers.getValue().get(impl);
        if (points == null) {
          continue;
        }
        Fit f = Fit.of(points);
        String growth = f.superLinear() ? "MISS: super-linear" : "linear or better";
        b.append("| ")
            .append(impl)
            .append(" | ")
            .append(byCarriers.getKey())
            .append(" | ")
            .append(Findings.fmt(f.perUnit() * 1e3))
            .append(" ns | ")
            .append(Findings.fmt(f.fixed()))
            .append(" us | ")
            .append(String.format(Locale.ROOT, "%.3f | %.3f", f.exponent(), f.tailExponent()))
            .append(" | ")
            .append(growth)
            .append(" |\n");
        if (impl.equals("taskgroup") && byCarriers.getKey() == 1) {
          verdicts.add(
              new String[] {
                "(curves) "
                    + c.title()
                    + ": taskgroup grows at most linearly (log-log slope at "
                    + "most "
                    + Fit.SUPER_LINEAR
                    + ", one carrier)",
                String.format(
                    Locale.ROOT,
                    "slope %.3f (all), %.3f (three largest); %s ns per %s",
                    f.exponent(),
                    f.tailExponent(),
                    Findings.fmt(f.perUnit() * 1e3),
                    unitNoun(c)),
                f.superLinear() ? "MISS" : "PASS"
              });
        }
      }
    }
    b.append("\n");
  }

  private static String unitNoun(Curve c) {
    return c.key().equals("nest") ? "scope" : "child";
  }
}
