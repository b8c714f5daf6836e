package dev.taskgroup.bench;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The memory-by-object table of RESULTS.md: one row per class, one column per implementation, bytes
 * (and instances) per parked child, from {@link MemoryProbe}'s class histogram difference between N
 * parked children and none.
 */
final class MemoryTable {
  /** At most this many classes are listed; the rest are summed in one row. */
  static final int TOP = 15;

  private MemoryTable() {}

  /**
   * @param classes implementation to its {@code RESULT class} lines ("name bytes instances")
   */
  static String markdown(Map<String, List<String>> classes) {
    List<String> impls = new ArrayList<>();
    for (String impl : Compare.ORDER) {
      if (classes.containsKey(impl)) {
        impls.add(impl);
      }
    }
    // class -> impl -> {bytes, instances} per child
    Map<String, Map<String, double[]>> rows = new LinkedHashMap<>();
    Map<String, Double> total = new HashMap<>();
    for (String impl : impls) {
      for (String line : classes.get(impl)) {
        String[] f = line.split(" ");
        double bytes = Double.parseDouble(f[1]);
        rows.computeIfAbsent(shortName(f[0]), k -> new HashMap<>())
            .merge(
                impl,
                new double[] {bytes, Double.parseDouble(f[2])},
                (a, c) -> new double[] {a[0] + c[0], a[1] + c[1]});
        total.merge(impl, bytes, Double::sum);
      }
    }
    List<String> order = new ArrayList<>(rows.keySet());
    order.sort((a, c) -> Double.compare(largest(rows.get(c)), largest(rows.get(a))));
    StringBuilder b = new StringBuilder("| class |");
    impls.forEach(i -> b.append(' ').append(i).append(" |"));
    b.append("\n| ---").append(" | ---:".repeat(impls.size())).append(" |\n");
    Map<String, Double> rest = new HashMap<>();
    for (int r = 0; r < order.size(); r++) {
      Map<String, double[]> row = rows.get(order.get(r));
      if (r >= TOP) {
        row.forEach((impl, v) -> rest.merge(impl, v[0], Double::sum));
        continue;
      }
      b.append("| `").append(order.get(r)).append("` |");
      for (String impl : impls) {
        double[] v = row.get(impl);
        b.append(v == null ? " |" : String.format(Locale.ROOT, " %.1f (%.2f) |", v[0], v[1]));
      }
      b.append('\n');
    }
    if (!rest.isEmpty()) {
      b.append("| ").append(order.size() - TOP).append(" other classes |");
      impls.forEach(
          i -> b.append(String.format(Locale.ROOT, " %.1f |", rest.getOrDefault(i, 0.0))));
      b.append('\n');
    }
    b.append("| **sum of the classes** |");
    impls.forEach(i -> b.append(String.format(Locale.ROOT, " **%.1f** |", total.get(i))));
    return b.append("\n\n").toString();
  }

  private static double largest(Map<String, double[]> row) {
    double m = 0;
    for (double[] v : row.values()) {
      m = Math.max(m, v[0]);
    }
    return m;
  }

  /** Hidden-class suffixes differ per JVM ("$$Lambda/0x..."): one row for all of them. */
  static String shortName(String cls) {
    int lambda = cls.indexOf("$$Lambda");
    return lambda < 0 ? cls : cls.substring(0, lambda) + "$$Lambda";
  }
}
