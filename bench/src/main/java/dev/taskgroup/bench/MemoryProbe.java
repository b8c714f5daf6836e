package dev.taskgroup.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Performance workload (c): heap per parked child. Not JMH: run once per implementation in a fresh
 * JVM ({@code java ... MemoryProbe raw|taskgroup|sts|executor N}; {@code sts} needs the bench
 * profile's build).
 *
 * <p>Measures the used heap after full GCs (repeated until stable) before and after N children are
 * started and parked, and divides the difference by N. A parked virtual thread's stack lives on the
 * heap (its frames are copied into {@code jdk.internal.vm.StackChunk} objects when it unmounts), so
 * this counts the whole child: thread object, continuation, stack chunk and the library's
 * bookkeeping. Ten warm-up rounds of N/5 children first load and compile everything involved, so
 * that the children park in compiled frames. Also lists the bytes per parked child by class: the
 * difference of two live-object class histograms (the {@code gcClassHistogram} diagnostic command,
 * as {@code jcmd GC.class_histogram}), one with the N children parked and one before they started;
 * the top classes are printed readably too.
 *
 * <p>The comparison runs it with {@code -Xbatch} (compilation in the foreground), for every
 * implementation. Without it the measured round could catch the JIT between discarding a method's
 * compiled code (an uncommon trap: a branch taken for the first time, such as the last child of a
 * round checking in) and compiling it again; the children started meanwhile parked in interpreted
 * or C1 frames, and their stack chunks were 248 to 368 bytes instead of 232, from one JVM to the
 * next (taskgroup in two JVMs of three, even after thirty warm-up rounds). With it, every
 * implementation measured the same chunk size in every JVM.
 *
 * <p>Output: lines {@code RESULT key value}, read by {@link Compare}.
 */
public final class MemoryProbe {
  private MemoryProbe() {}

  /** Warm-up rounds before the measured one; see the class comment for -Xbatch. */
  private static final int WARM_UP_ROUNDS = 10;

  public static void main(String[] args) throws Exception {
    Harness.onVirtualThread(() -> run(args));
  }

  private static void run(String[] args) throws Exception {
    String impl = args[0];
    int n = Integer.parseInt(args[1]);

    // Warm-up: load every class on the path and let the JIT compile it, so that the children
    // below park in compiled frames. A parked child's stack chunk holds its frames as they were
    // when it parked: interpreted and C1 frames are larger, and with a short warm-up on a busy
    // machine the chunks (and so the result) grew by up to half.
    for (int i = 0; i < WARM_UP_ROUNDS; i++) {
      Harness warm = Harness.of(impl, Math.max(1, n / 5));
      warm.start();
      warm.parked.awaitAllParked();
      warm.cancel();
    }

    long before = Heap.usedAfterFullGc();
    Map<String, long[]> histBefore = Heap.histogram();
    Harness h = Harness.of(impl, n);
    h.start();
    h.parked.awaitAllParked();
    long after = Heap.usedAfterFullGc();
    Map<String, long[]> histAfter = Heap.histogram();
    h.cancel();

    double perChild = (after - before) / (double) n;
    System.out.printf(Locale.ROOT, "RESULT bytesPerChild %.1f%n", perChild);
    System.out.printf(Locale.ROOT, "RESULT heapBefore %d%nRESULT heapAfter %d%n", before, after);

    // Classes that grew by at least 0.5 byte per child, largest first.
    List<String[]> grown = new ArrayList<>();
    for (Map.Entry<String, long[]> e : histAfter.entrySet()) {
      long[] b = histBefore.getOrDefault(e.getKey(), new long[2]);
      double bytes = (e.getValue()[1] - b[1]) / (double) n;
      double count = (e.getValue()[0] - b[0]) / (double) n;
      if (bytes >= 0.5) {
        grown.add(
            new String[] {
              e.getKey(),
              String.format(Locale.ROOT, "%.1f", bytes),
              String.format(Locale.ROOT, "%.2f", count)
            });
      }
    }
    grown.sort((x, y) -> Double.compare(Double.parseDouble(y[1]), Double.parseDouble(x[1])));
    for (String[] g : grown) {
      System.out.println("RESULT class " + g[0] + " " + g[1] + " " + g[2]);
    }
    System.out.printf(
        Locale.ROOT,
        "%s, %d parked children: %.1f bytes per child; top classes:%n",
        impl,
        n,
        perChild);
    for (String[] g : grown.subList(0, Math.min(10, grown.size()))) {
      System.out.printf(Locale.ROOT, "  %8s B %6s per child  %s%n", g[1], g[2], g[0]);
    }
  }
}
