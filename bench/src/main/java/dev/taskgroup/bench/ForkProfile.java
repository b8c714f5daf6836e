package dev.taskgroup.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jdk.jfr.FlightRecorder;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordingFile;

/**
 * Where the time of fork + join goes: runs {@link ForkJoinHundred}'s {@code raw}, {@code
 * rawWithBookkeeping} and {@code taskgroup} bodies in turn under a JFR recording of execution
 * samples (one per millisecond; the library's own JFR events off, as when nothing records them),
 * and sums the samples of each by whose code was running. Not JMH, not part of the comparison:
 *
 * <pre>
 * java -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints \
 *   -Djdk.virtualThreadScheduler.parallelism=1 -Xms2g -Xmx2g \
 *   -cp bench/target/classes:taskgroup/target/classes dev.taskgroup.bench.ForkProfile 10
 * </pre>
 *
 * <p>(the argument: seconds per body, after as long again to warm up). The time per child is
 * measured while the recording runs, so it is slower than JMH's; compare the bodies, not the
 * numbers with other runs. A sample belongs to the first frame, from the top of its stack, that is
 * the library's ({@code dev.taskgroup} outside {@code bench}), the benchmark's, or the JDK's;
 * frames of {@code java.lang.invoke}, {@code jdk.internal.misc.Unsafe} and {@code LockSupport} are
 * skipped, so an atomic instruction counts for the code that asked for it. Without {@code
 * -XX:+DebugNonSafepoints} a sample is charged to the nearest safepoint, often in another method,
 * and the program says so.
 */
public final class ForkProfile {
  private ForkProfile() {}

  /** The library's JFR events; ForkProfileTest checks that the list is complete. */
  static final List<String> LIBRARY_EVENTS =
      List.of(
          "dev.taskgroup.GroupEnd",
          "dev.taskgroup.Cancel",
          "dev.taskgroup.DeadlineExpired",
          "dev.taskgroup.Redelivery",
          "dev.taskgroup.CancelHook");

  /** Who was running when a sample was taken; see the class comment. */
  enum Owner {
    LIBRARY("taskgroup library"),
    BENCHMARK("benchmark's own code"),
    JDK("JDK (thread creation, start, scheduling, end)");

    final String label;

    Owner(String label) {
      this.label = label;
    }
  }

  /** The samples of one body: by owner, and by the library's top frame (method and line). */
  record Profile(
      String body,
      double nanosPerChild,
      int samples,
      Map<Owner, Integer> byOwner,
      Map<String, Integer> lines) {
    double share(Owner o) {
      return samples == 0 ? 0 : 100.0 * byOwner.getOrDefault(o, 0) / samples;
    }
  }

  public static void main(String[] args) throws Exception {
    long seconds = args.length > 0 ? Long.parseLong(args[0]) : 10;
    if (!debugNonSafepoints()) {
      System.out.println(
          "warning: run with -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints, or samples"
              + " are charged to the nearest safepoint");
    }
    ForkJoinHundred bench = new ForkJoinHundred();
    List<Profile> profiles = new ArrayList<>();
    for (String body : new String[] {"raw", "rawWithBookkeeping", "taskgroup"}) {
      Harness.Work work = body(bench, body);
      Harness.onVirtualThread(() -> repeat(work, Duration.ofSeconds(seconds))); // warm-up
      profiles.add(record(body, work, Duration.ofSeconds(seconds)));
    }
    System.out.print(format(profiles));
  }

  static Harness.Work body(ForkJoinHundred bench, String name) {
    return switch (name) {
      case "raw" -> bench::raw;
      case "rawWithBookkeeping" -> bench::rawWithBookkeeping;
      case "taskgroup" -> bench::taskgroup;
      default -> throw new IllegalArgumentException("no body " + name);
    };
  }

  /** Runs {@code work} on a virtual thread for {@code time} under a recording; its samples. */
  static Profile record(String name, Harness.Work work, Duration time) throws Exception {
    // The library registers its event types at its first use after the flight recorder has
    // started (a JVM that never records pays nothing for them): start it and use the library
    // first, so that the registration (JFR building its metadata) is not sampled as the library's.
    FlightRecorder.getFlightRecorder();
    work.run();
    Path file = Files.createTempFile("fork-profile-", ".jfr");
    try (Recording recording = new Recording()) {
      recording.enable("jdk.ExecutionSample").withPeriod(Duration.ofMillis(1));
      // Off, or the library records every group, as for a user's recording: by name, since an
      // event class loaded before JFR started may not be registered yet, and an event type a
      // recording does not name is on by default.
      for (String event : LIBRARY_EVENTS) {
        recording.disable(event);
      }
      long[] nanosAndGroups = new long[2];
      recording.start();
      Harness.onVirtualThread(
          () -> {
            long start = System.nanoTime();
            nanosAndGroups[1] = repeat(work, time);
            nanosAndGroups[0] = System.nanoTime() - start;
          });
      recording.stop();
      recording.dump(file);
      double perChild = nanosAndGroups[0] / (double) (nanosAndGroups[1] * ForkJoinHundred.CHILDREN);
      return summarize(name, perChild, file);
    } finally {
      Files.deleteIfExists(file);
    }
  }

  /** Runs {@code work} in rounds of 100 until {@code time} has passed; how many times it ran. */
  private static long repeat(Harness.Work work, Duration time) throws Exception {
    long end = System.nanoTime() + time.toNanos();
    long runs = 0;
    while (System.nanoTime() < end) {
      for (int i = 0; i < 100; i++) {
        work.run();
      }
      runs += 100;
    }
    return runs;
  }

  static Profile summarize(String name, double nanosPerChild, Path file) throws IOException {
    Map<Owner, Integer> byOwner = new HashMap<>();
    Map<String, Integer> lines = new HashMap<>();
    int samples = 0;
    for (RecordedEvent e : RecordingFile.readAllEvents(file)) {
      if (!e.getEventType().getName().equals("jdk.ExecutionSample") || e.getStackTrace() == null) {
        continue;
      }
      List<RecordedFrame> frames = e.getStackTrace().getFrames();
      for (RecordedFrame f : frames) {
        String type = f.getMethod().getType().getName();
        if (skipped(type)) {
          continue;
        }
        Owner owner = ownerOf(type);
        byOwner.merge(owner, 1, Integer::sum);
        if (owner == Owner.LIBRARY) {
          String simple = type.substring(type.lastIndexOf('.') + 1);
          lines.merge(
              simple + "." + f.getMethod().getName() + ":" + f.getLineNumber(), 1, Integer::sum);
        }
        break;
      }
      samples++;
    }
    return new Profile(name, nanosPerChild, samples, byOwner, lines);
  }

  private static boolean skipped(String type) {
    return type.startsWith("java.lang.invoke.")
        || type.equals("jdk.internal.misc.Unsafe")
        || type.equals("java.util.concurrent.locks.LockSupport");
  }

  static Owner ownerOf(String type) {
    if (type.startsWith("dev.taskgroup.bench.")) {
      return Owner.BENCHMARK;
    }
    return type.startsWith("dev.taskgroup.") ? Owner.LIBRARY : Owner.JDK;
  }

  static String format(List<Profile> profiles) {
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "%-20s %12s %8s", "body", "ns per child", "samples"));
    for (Owner o : Owner.values()) {
      b.append(String.format(Locale.ROOT, "  %-10s", o.name().toLowerCase(Locale.ROOT)));
    }
    b.append('\n');
    for (Profile p : profiles) {
      b.append(
          String.format(Locale.ROOT, "%-20s %12.1f %8d", p.body(), p.nanosPerChild(), p.samples()));
      for (Owner o : Owner.values()) {
        b.append(String.format(Locale.ROOT, "  %9.1f%%", p.share(o)));
      }
      b.append('\n');
    }
    for (Owner o : Owner.values()) {
      b.append(o.name().toLowerCase(Locale.ROOT)).append(": ").append(o.label).append('\n');
    }
    for (Profile p : profiles) {
      if (p.lines().isEmpty()) {
        continue;
      }
      b.append("\nlibrary frames of ").append(p.body()).append(" (share of all its samples):\n");
      p.lines().entrySet().stream()
          .sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
          .limit(12)
          .forEach(
              e ->
                  b.append(
                      String.format(
                          Locale.ROOT,
                          "  %5.1f%%  %s%n",
                          100.0 * e.getValue() / p.samples(),
                          e.getKey())));
    }
    return b.toString();
  }

  private static boolean debugNonSafepoints() {
    return ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .anyMatch(a -> a.equals("-XX:+DebugNonSafepoints"));
  }
}
