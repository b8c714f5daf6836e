package dev.taskgroup.bench;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * One measured curve: for each carrier count and implementation, the size (children, parked
 * children or nesting depth) to the measured total time of one operation, in microseconds.
 *
 * @param key short name, used for the plot files ({@code plots/<key>-<carriers>.png})
 * @param title the section title in RESULTS.md
 * @param xName what the size counts ("children per group", ...)
 * @param perUnit whether tables and plots show the total divided by the size (per child, per scope)
 *     rather than the total
 * @param unit the unit shown in tables and plots
 * @param scale multiplies the total in microseconds (before the division by the size, if any) into
 *     {@code unit}
 * @param points carriers to implementation to size to total (microseconds)
 */
record Curve(
    String key,
    String title,
    String xName,
    boolean perUnit,
    String unit,
    double scale,
    Map<Integer, Map<String, TreeMap<Long, Measured>>> points) {

  Curve(String key, String title, String xName, boolean perUnit, String unit, double scale) {
    this(key, title, xName, perUnit, unit, scale, new TreeMap<>());
  }

  /** Records the total time of one operation at size {@code x}, in microseconds. */
  void put(int carriers, String impl, long x, Measured totalMicros) {
    points
        .computeIfAbsent(carriers, k -> new LinkedHashMap<>())
        .computeIfAbsent(impl, k -> new TreeMap<>())
        .put(x, totalMicros);
  }

  /** The value shown for a total of {@code totalMicros} at size {@code x}. */
  double shown(double totalMicros, long x) {
    return totalMicros * scale / (perUnit ? x : 1);
  }

  /** Converts a JMH or harness number to microseconds. */
  static Measured micros(Measured m) {
    String u = m.unit();
    double f =
        u.startsWith("ns")
            ? 1e-3
            : u.startsWith("us")
                ? 1
                : u.startsWith("ms") ? 1e3 : u.startsWith("s") ? 1e6 : Double.NaN;
    if (Double.isNaN(f)) {
      throw new IllegalArgumentException("not a time unit: " + u);
    }
    return new Measured(m.score() * f, m.error() * f, "us", m.samples());
  }
}
