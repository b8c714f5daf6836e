package dev.taskgroup.bench;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * Where the slow mode of the parked-children cancel comes from: not a workload of the comparison,
 * an experiment run by hand ({@code java ... CancelModeProbe raw|taskgroup|sts|executor N rounds
 * gcFirst}).
 *
 * <p>Each round starts N children, waits until all are parked and times one cancel, like workload
 * (b). It also counts the garbage collections that ran while the children were being started and
 * parked. With {@code gcFirst} the round begins with {@code System.gc()}, so that (with a heap
 * large enough for one round's set-up) none runs then. Output: one {@code RESULT round} line per
 * round: its number, the cancel in milliseconds, the collections during set-up.
 */
public final class CancelModeProbe {
  private CancelModeProbe() {}

  public static void main(String[] args) throws Exception {
    Harness.onVirtualThread(() -> run(args));
  }

  private static void run(String[] args) throws Exception {
    String impl = args[0];
    int n = Integer.parseInt(args[1]);
    int rounds = Integer.parseInt(args[2]);
    boolean gcFirst = Boolean.parseBoolean(args[3]);
    for (int r = 0; r < rounds; r++) {
      if (gcFirst) {
        System.gc();
      }
      long before = collections();
      Harness h = Harness.of(impl, n);
      h.start();
      h.parked.awaitAllParked();
      long during = collections() - before;
      long nanos = h.cancel();
      System.out.printf(
          Locale.ROOT,
          "RESULT round %d %.2f ms, collections during set-up %d%n",
          r,
          nanos / 1e6,
          during);
    }
  }

  private static long collections() {
    long n = 0;
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      n += Math.max(0L, gc.getCollectionCount());
    }
    return n;
  }
}
