package dev.taskgroup.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The "Machine" table of RESULTS.md: date, cores, memory, CPU, OS, JDK and load. */
final class Machine {
  private Machine() {}

  static String markdown(String date, String loadStart, String loadEnd) {
    StringBuilder b = new StringBuilder();
    var os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    b.append("## Machine\n\n| | |\n| --- | --- |\n");
    row(b, "date", date);
    row(b, "cores", String.valueOf(Runtime.getRuntime().availableProcessors()));
    row(
        b,
        "memory",
        String.format(Locale.ROOT, "%.1f GiB", os.getTotalMemorySize() / 1073741824.0));
    row(b, "CPU", cpuModel());
    row(
        b,
        "OS",
        osRelease()
            + ", "
            + System.getProperty("os.name")
            + " "
            + System.getProperty("os.version")
            + " "
            + System.getProperty("os.arch"));
    row(
        b,
        "JDK",
        System.getProperty("java.vm.vendor")
            + " "
            + System.getProperty("java.vm.name")
            + " "
            + System.getProperty("java.runtime.version"));
    row(b, "load average (1, 5, 15 min) at start / at end", loadStart + " / " + loadEnd);
    b.append("\n");
    return b.toString();
  }

  private static void row(StringBuilder b, String k, String v) {
    b.append("| ").append(k).append(" | ").append(v).append(" |\n");
  }

  private static String cpuModel() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          return line.substring(line.indexOf(':') + 1).trim();
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux
    }
    return "unknown";
  }

  private static String osRelease() {
    try {
      for (String line : Files.readAllLines(Path.of("/etc/os-release"))) {
        if (line.startsWith("PRETTY_NAME=")) {
          return line.substring(12).replace("\"", "");
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux
    }
    return "unknown";
  }
}
