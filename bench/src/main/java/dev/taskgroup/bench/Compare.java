package dev.taskgroup.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.util.Statistics;

/**
 * The quick comparison behind the README's benchmark command: runs every performance workload for
 * every implementation, side by side in one run, and writes the report (RESULTS.md). JMH workloads
 * (a), (b), (f) run in JMH forks; the harnesses (c), (d), (e) run as mains in fresh JVMs. Every JMH
 * fork gets {@code -Djmh.executor=VIRTUAL}, so every benchmark thread (the owner, for raw,
 * taskgroup, STS, executor and Kotlin alike) is a virtual thread; the harnesses run their owners
 * and drivers on virtual threads themselves.
 *
 * <p>Usage: {@code java [--enable-preview] -cp ... dev.taskgroup.bench.Compare RESULTS.md
 * [logDir]}. The {@code StructuredTaskScope} peers are included when their classes are on the class
 * path (bench profile); {@code --enable-preview} is passed on to every fork when this JVM has it.
 * System properties: {@code bench.curves} = {@code none} (default), {@code quick}, {@code full} or
 * {@code smoke} also measures the curves ({@link Curves}) and draws their plots into {@code plots/}
 * beside the report; {@code bench.points=false} skips the point workloads.
 */
public final class Compare {
  static final String PKG = "dev.taskgroup.bench.";

  /**
   * The point workloads run with the virtual-thread scheduler on one carrier, where the numbers are
   * unimodal on a 2-core machine; the curves show two carriers beside it.
   */
  static final String ONE_CARRIER = "-Djdk.virtualThreadScheduler.parallelism=1";

  /**
   * Every JMH fork touches its whole heap before it starts. On a virtual machine that hands memory
   * back to its host, the first touch of a page costs microseconds (measured here: 50 s to touch 20
   * GiB): without this, a fork allocating hundreds of MB per second paid for its first pass through
   * the heap during its warm-up and first measured iterations, and raw's 100-children time read
   * 1700 ns per child instead of 200.
   */
  static final String PRE_TOUCH = "-XX:+AlwaysPreTouch";

  static final List<String> ORDER =
      List.of(
          "raw",
          "rawWithBookkeeping",
          "taskgroup",
          "taskgroupPropagator",
          "sts",
          "executor",
          "kotlin",
          "rawFreshOwner",
          "taskgroupFreshOwner",
          "cf");

  private final Path out;
  private final Path logs;
  private final boolean preview;
  private final boolean sts;
  private final String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
  private final long t0 = System.nanoTime();
  private final Report report = new Report();

  private Compare(Path out, Path logs) {
    this.out = out;
    this.logs = logs;
    this.preview =
        ManagementFactory.getRuntimeMXBean().getInputArguments().contains("--enable-preview");
    this.sts = Compare.class.getResource("/dev/taskgroup/bench/sts/ForkJoinOneSts.class") != null;
  }

  public static void main(String[] args) throws Exception {
    Path out = Path.of(args.length > 0 ? args[0] : "RESULTS.md");
    Path logs = Path.of(args.length > 1 ? args[1] : "target/bench-logs");
    Files.createDirectories(logs);
    new Compare(out, logs).run();
  }

  private void run() throws Exception {
    if (sts && !preview) {
      throw new IllegalStateException(
          "the StructuredTaskScope peers are on the class path: run with --enable-preview");
    }
    report.environment(loadAverage());
    say(
        "taskgroup benchmark comparison: %d cores, JDK %s%s; JMH and harness logs in %s",
        Runtime.getRuntime().availableProcessors(),
        Runtime.version(),
        sts ? "" : " (no StructuredTaskScope peer: not built with -Pbench)",
        logs.toAbsolutePath());

    boolean points = !"false".equals(System.getProperty("bench.points"));
    String curves = System.getProperty("bench.curves", "none");
    if (points) {
      jmh("a1", "ForkJoinOne", "(a) fork + join, one trivial child per group", 80);
      jmh("a100", "ForkJoinHundred", "(a) fork + join, 100 trivial children per group", 80);
      jmh("b", "CancelParked", "(b) cancel of 10 000 / 100 000 parked children", 100);
      jmh(
          "bgc",
          "CancelParked",
          "(b) cancel of 100 000 parked children, full GC before cancel",
          60,
          "n",
          "100000",
          "gcBeforeCancel",
          "true");
      jmh(
          "bplat",
          "CancelParked",
          "(b) cancel of 100 000 parked children, called from a platform thread",
          60,
          "n",
          "100000",
          "canceller",
          "platform");
      memory();
      million();
      deadlines();
      jmh("f", "CheckpointCost", "(f) uncancelled checkpoint and nested scope", 30);
    }
    if (!curves.equals("none")) {
      Curves.Mode mode = Curves.Mode.parse(curves);
      List<Curve> measured = new Curves(this, mode).run();
      report.curves(new CurveReport(measured, mode, out.toAbsolutePath().resolveSibling("plots")));
    }

    long wall = System.nanoTime() - t0;
    report.finish(wall, loadAverage(), sts, points);
    Files.writeString(out, report.markdown(), StandardCharsets.UTF_8);
    say("wrote %s (%.1f min)", out.toAbsolutePath(), wall / 60e9);
  }

  // ---- JMH ------------------------------------------------------------------------------------

  private void jmh(String key, String simpleName, String title, int approxSeconds, String... params)
      throws RunnerException {
    say("%s: JMH, about %d s ...", title, approxSeconds);
    List<String> prepend =
        new ArrayList<>(
            List.of("-Djmh.executor=VIRTUAL", ONE_CARRIER, PRE_TOUCH)); // targets: one carrier
    if (preview) {
      prepend.add("--enable-preview");
    }
    OptionsBuilder builder = new OptionsBuilder();
    for (int i = 0; i + 1 < params.length; i += 2) {
      builder.param(params[i], params[i + 1]);
    }
    Options options =
        builder
            .include("^" + PKG.replace(".", "\\.") + "(sts\\.)?" + simpleName + "(Sts)?\\.")
            .jvmArgsPrepend(prepend.toArray(String[]::new))
            .shouldFailOnError(true)
            .output(logs.resolve("jmh-" + key + ".txt").toString())
            .build();
    Collection<RunResult> results = new Runner(options).run();
    if (results.isEmpty()) {
      throw new IllegalStateException("JMH ran no benchmark for " + simpleName);
    }
    for (RunResult r : results) {
      String bench = r.getParams().getBenchmark();
      String impl = bench.substring(bench.lastIndexOf('.') + 1);
      String n = r.getParams().getParam("n");
      var primary = r.getPrimaryResult();
      Measured m =
          new Measured(
              primary.getScore(),
              Double.isNaN(primary.getScoreError()) ? 0.0 : primary.getScoreError(),
              primary.getScoreUnit(),
              primary.getSampleCount());
      report.put(key + (n == null ? "" : "/" + n), impl, m);
      if (r.getParams().getMode() == Mode.SingleShotTime) { // the spread: its 75th percentile
        Statistics st = primary.getStatistics();
        report.put(
            key + (n == null ? "" : "/" + n) + "/p75",
            impl,
            new Measured(st.getPercentile(75.0), 0.0, primary.getScoreUnit(), st.getN()));
      }
      say(
          "  %-10s %-8s %10.3f ± %.3f %s",
          impl, n == null ? "" : "n=" + n, m.score(), m.error(), m.unit());
    }
  }

  // ---- harnesses in fresh JVMs ------------------------------------------------------------------

  private void memory() throws Exception {
    int n = 100_000;
    int jvms = 3;
    say("(c) memory per parked child, N=%d, %d JVMs per implementation, about 60 s ...", n, jvms);
    Map<String, List<Double>> perChild = new LinkedHashMap<>();
    for (int i = 0; i < jvms; i++) {
      for (String impl : memoryImpls()) {
        Map<String, List<String>> r =
            probe(
                "memory-" + impl + "-" + i,
                List.of("-Xms4g", "-Xmx4g", "-Xbatch"), // -Xbatch: see MemoryProbe
                "MemoryProbe",
                impl,
                String.valueOf(n));
        perChild
            .computeIfAbsent(impl, k -> new ArrayList<>())
            .add(Double.parseDouble(r.get("bytesPerChild").get(0)));
        if (i == 0) {
          report.memoryClasses(impl, r.getOrDefault("class", List.of()));
        }
      }
    }
    perChild.forEach(
        (impl, v) -> {
          Measured m = Measured.ofSamples(v, "B/child");
          report.put("c", impl, m);
          say("  %-10s %8.1f ± %.1f bytes per child", impl, m.score(), m.error());
        });
    held(n, jvms);
  }

  /** Beside (c), context with no target: heap per held handle of a finished child. */
  private void held(int n, int jvms) throws Exception {
    say("(c) heap per held finished child, N=%d, %d JVMs per implementation ...", n, jvms);
    List<String> impls = new ArrayList<>(List.of("taskgroup", "executor", "cf"));
    if (sts) {
      impls.add(2, "sts");
    }
    Map<String, List<Double>> perHandle = new LinkedHashMap<>();
    for (int i = 0; i < jvms; i++) {
      for (String impl : impls) {
        Map<String, List<String>> r =
            probe(
                "held-" + impl + "-" + i,
                List.of("-Xms4g", "-Xmx4g", "-Xbatch"),
                "HeldProbe",
                impl,
                String.valueOf(n));
        perHandle
            .computeIfAbsent(impl, k -> new ArrayList<>())
            .add(Double.parseDouble(r.get("bytesPerHeld").get(0)));
      }
    }
    perHandle.forEach(
        (impl, v) -> {
          Measured m = Measured.ofSamples(v, "B/child");
          report.put("c-held", impl, m);
          say("  %-10s %8.1f ± %.1f bytes per held handle", impl, m.score(), m.error());
        });
  }

  private List<String> memoryImpls() {
    return sts
        ? List.of("raw", "taskgroup", "sts", "executor")
        : List.of("raw", "taskgroup", "executor");
  }

  /**
   * Measured rounds of (d). Each round's start time swings by about a fifth with the collections
   * that run while a million stacks are allocated (raw's as much as taskgroup's), so the mean needs
   * more rounds than the other harnesses.
   */
  static final int MILLION_ROUNDS = 10;

  private void million() throws Exception {
    int n = 1_000_000;
    int rounds = MILLION_ROUNDS;
    say("(d) 1 000 000 parked children, %d rounds after a warm-up, about 90 s ...", rounds);
    for (String impl : List.of("raw", "taskgroup")) {
      Map<String, List<String>> r =
          probe(
              "million-" + impl,
              List.of("-Xms8g", "-Xmx16g"),
              "MillionProbe",
              impl,
              String.valueOf(n),
              String.valueOf(rounds));
      for (String what : List.of("start", "cancel")) {
        List<Double> ms = new ArrayList<>();
        for (String line : r.get(what)) {
          ms.add(Long.parseLong(line.split(" ")[1]) / 1e6);
        }
        Measured m = Measured.ofSamples(ms, "ms");
        report.put("d/" + what, impl, m);
        say("  %-10s %-6s %9.1f ± %.1f ms", impl, what, m.score(), m.error());
      }
    }
  }

  private void deadlines() throws Exception {
    int n = 10_000;
    int windowMs = 1000;
    int rounds = 5;
    say(
        "(e) deadline lateness, %d concurrent deadlines over %d ms, %d rounds each, about 20 s ...",
        n, windowMs, rounds);
    Map<String, List<String>> r =
        probe(
            "deadlines",
            List.of("-Xms2g", "-Xmx2g"),
            "DeadlineProbe",
            "raw,taskgroup",
            String.valueOf(n),
            String.valueOf(windowMs),
            String.valueOf(rounds));
    for (String impl : List.of("raw", "taskgroup")) {
      Map<String, String> flat = new LinkedHashMap<>();
      r.forEach(
          (k, v) -> {
            if (k.startsWith(impl + ".")) {
              flat.put(k.substring(impl.length() + 1), v.get(0));
            }
          });
      report.deadlines(impl, flat);
      say(
          "  %-10s median %s ms, p99 %s ms, max %s ms (returned)",
          impl, flat.get("returned.median"), flat.get("returned.p99"), flat.get("returned.max"));
    }
  }

  /**
   * Runs {@code main} in a fresh JVM (the JDK running this one, same class path) and returns its
   * {@code RESULT key rest} lines grouped by key. A non-zero exit fails the comparison.
   */
  Map<String, List<String>> probe(String name, List<String> jvmArgs, String main, String... args)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(javaBin);
    if (preview) {
      cmd.add("--enable-preview");
    }
    cmd.add(ONE_CARRIER); // the targets are judged on one carrier; a caller's own comes later
    cmd.addAll(jvmArgs);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(PKG + main);
    cmd.addAll(List.of(args));
    Path log = logs.resolve(name + ".txt");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    int exit = p.waitFor();
    List<String> lines = Files.readAllLines(log);
    if (exit != 0) {
      throw new IllegalStateException(name + " failed with exit code " + exit + ": see " + log);
    }
    Map<String, List<String>> results = new LinkedHashMap<>();
    for (String line : lines) {
      if (line.startsWith("RESULT ")) {
        String[] f = line.substring(7).split(" ", 2);
        results.computeIfAbsent(f[0], k -> new ArrayList<>()).add(f.length > 1 ? f[1] : "");
      }
    }
    return results;
  }

  // ---- helpers ------------------------------------------------------------------------------

  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      double l = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
      return String.format(Locale.ROOT, "%.2f", l);
    }
  }

  boolean preview() {
    return preview;
  }

  Path logs() {
    return logs;
  }

  void say(String format, Object... args) {
    double s = (System.nanoTime() - t0) / 1e9;
    System.out.printf(Locale.ROOT, "[%6.1f s] " + format + "%n", prepend(s, args));
    System.out.flush();
  }

  private static Object[] prepend(double s, Object[] args) {
    Object[] all = new Object[args.length + 1];
    all[0] = s;
    System.arraycopy(args, 0, all, 1, args.length);
    return all;
  }

  static String now() {
    return ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
  }
}
