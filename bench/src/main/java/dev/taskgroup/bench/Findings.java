package dev.taskgroup.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What one comparison measured, by workload and implementation, and the verdicts on the targets:
 * the tables of {@link Report} and the rows of its "Targets" section.
 */
final class Findings {
  /** Workload key ("a1", "b/100000", ...) to implementation to number. */
  private final Map<String, Map<String, Measured>> data = new LinkedHashMap<>();

  /** The rows of the targets table: target, measured, verdict. */
  private final List<String[]> verdicts = new ArrayList<>();

  void put(String workload, String impl, Measured m) {
    data.computeIfAbsent(workload, k -> new LinkedHashMap<>()).put(impl, m);
  }

  /** The numbers of {@code workload}, by implementation; null if it did not run. */
  Map<String, Measured> get(String workload) {
    return data.get(workload);
  }

  /** Adds a row to the targets table. */
  void verdict(String target, String measured, String verdict) {
    verdicts.add(new String[] {target, measured, verdict});
  }

  /** Adds rows made elsewhere (the curves'). */
  void verdicts(List<String[]> rows) {
    verdicts.addAll(rows);
  }

  /** The "Targets" section: one row per verdict, in the order they were given. */
  String targets() {
    StringBuilder b = new StringBuilder("## Targets\n\n");
    b.append("| target | measured | verdict |\n| --- | --- | --- |\n");
    for (String[] v : verdicts) {
      b.append("| ")
          .append(v[0])
          .append(" | ")
          .append(v[1])
          .append(" | ")
          .append(v[2])
          .append(" |\n");
    }
    return b.append("\n").toString();
  }

  /** Appends the table of {@code workload}: each implementation's number and its ratio to raw. */
  void table(StringBuilder b, String workload) {
    Map<String, Measured> w = data.getOrDefault(workload, Map.of());
    Measured raw = w.get("raw");
    b.append("| implementation | time | ± | vs raw | ± |\n| --- | ---: | ---: | ---: | ---: |\n");
    for (String impl : Compare.ORDER) {
      Measured m = w.get(impl);
      if (m == null) {
        continue;
      }
      String unit = m.unit().equals("B/child") ? "bytes" : m.unit();
      b.append("| ")
          .append(impl)
          .append(" | ")
          .append(fmt(m.score()))
          .append(' ')
          .append(unit)
          .append(" | ")
          .append(fmt(m.error()));
      if (impl.equals("raw")) {
        b.append(" | 1 (baseline) | ");
      } else if (raw != null) {
        Measured r = m.over(raw);
        b.append(" | ")
            .append(String.format(Locale.ROOT, "%.2fx", r.score()))
            .append(" | ")
            .append(String.format(Locale.ROOT, "%.2f", r.error()));
      } else {
        b.append(" | | ");
      }
      b.append(" |\n");
    }
    b.append("\n");
  }

  /** {@code impl}'s number over raw's in {@code workload}, with its error; null if missing. */
  Measured ratio(String workload, String impl) {
    return ratio(workload, impl, "raw");
  }

  /** {@code impl}'s number over {@code base}'s in {@code workload}; null if either is missing. */
  Measured ratio(String workload, String impl, String base) {
    Map<String, Measured> w = data.get(workload);
    if (w == null || w.get(impl) == null || w.get(base) == null) {
      return null;
    }
    return w.get(impl).over(w.get(base));
  }

  /** A verdict: {@code m} at most {@code limit} (a "within error" note if its ± crosses it). */
  void atMost(String target, Measured m, double limit) {
    if (m == null) {
      verdict(target, "not measured", "MISS (not measured)");
      return;
    }
    boolean pass = m.score() <= limit;
    boolean straddles = m.score() - m.error() <= limit && m.score() + m.error() > limit;
    String unit = m.unit().equals("x") ? "x" : " " + m.unit();
    verdicts.add(
        new String[] {
          target,
          String.format(Locale.ROOT, "%s%s ± %s", fmt(m.score()), unit, fmt(m.error())),
          (pass ? "PASS" : "MISS") + (straddles ? " (within error)" : "")
        });
  }

  /** A verdict: taskgroup's number in {@code workload} below {@code other}'s. */
  void below(String target, String workload, String other) {
    Map<String, Measured> w = data.getOrDefault(workload, Map.of());
    Measured tg = w.get("taskgroup");
    Measured o = w.get(other);
    if (tg == null || o == null) {
      verdict(target, "not measured", "MISS (not measured)");
      return;
    }
    Measured r = tg.over(o);
    boolean pass = tg.score() < o.score();
    boolean overlap = Math.abs(tg.score() - o.score()) < tg.error() + o.error();
    verdicts.add(
        new String[] {
          target,
          String.format(
              Locale.ROOT,
              "%s %s vs %s %s (%.2fx ± %.2f)",
              fmt(tg.score()),
              tg.unit(),
              fmt(o.score()),
              o.unit(),
              r.score(),
              r.error()),
          (pass ? "PASS" : "MISS") + (overlap ? " (within error)" : "")
        });
  }

  /** {@code v} with three significant digits or so, as every table shows numbers. */
  static String fmt(double v) {
    double a = Math.abs(v);
    if (a >= 100) {
      return String.format(Locale.ROOT, "%.0f", v);
    } else if (a >= 10) {
      return String.format(Locale.ROOT, "%.1f", v);
    } else if (a >= 1) {
      return String.format(Locale.ROOT, "%.2f", v);
    }
    return String.format(Locale.ROOT, "%.3f", v);
  }
}
