package dev.taskgroup.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.HashMap;
import java.util.Map;
import javax.management.ObjectName;

/** Heap measurement for the harness mains: used heap after full GCs, and class histograms. */
final class Heap {
  private static final MemoryMXBean MEMORY = ManagementFactory.getMemoryMXBean();

  private Heap() {}

  /**
   * Used heap after a full GC, repeated until two readings in a row agree within 64 KiB (at most 20
   * GCs).
   */
  static long usedAfterFullGc() {
    long previous = -1L;
    for (int i = 0; i < 20; i++) {
      System.gc();
      long used = MEMORY.getHeapMemoryUsage().getUsed();
      if (previous >= 0L && Math.abs(used - previous) < 64 * 1024) {
        return used;
      }
      previous = used;
    }
    return previous;
  }

  /**
   * The live-object class histogram (it runs a full GC first): class name to {instances, bytes}.
   */
  static Map<String, long[]> histogram() {
    try {
      String text =
          (String)
              ManagementFactory.getPlatformMBeanServer()
                  .invoke(
                      new ObjectName("com.sun.management:type=DiagnosticCommand"),
                      "gcClassHistogram",
                      new Object[] {new String[0]},
                      new String[] {String[].class.getName()});
      Map<String, long[]> classes = new HashMap<>();
      for (String line : text.split("\n")) {
        String[] f = line.trim().split("\\s+");
        // "  1:   100000   12345678  java.lang.VirtualThread (java.base@25)"
        if (f.length >= 4 && f[0].endsWith(":") && Character.isDigit(f[0].charAt(0))) {
          classes.put(f[3], new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])});
        }
      }
      return classes;
    } catch (Exception e) {
      throw new IllegalStateException("class histogram failed", e);
    }
  }
}
