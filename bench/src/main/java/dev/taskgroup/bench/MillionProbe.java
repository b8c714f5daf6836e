package dev.taskgroup.bench;

import java.util.Locale;

/**
 * Performance workload (d): one owner with N (1 000 000) concurrent parked children: the time to
 * start them all, and the time to cancel them all. Not JMH: {@code java -Xmx16g ... MillionProbe
 * raw|taskgroup N rounds}, one fresh JVM per implementation.
 *
 * <ul>
 *   <li>Start: from the owner's first fork (the owner stamps the time just before it starts
 *       forking, or before {@code group.run}) until the last child checks in; each child checks in
 *       right before its park loop. All threads are then checked to be {@code WAITING} before the
 *       cancel, and a full GC runs (not timed; see {@link CancelParked} for why).
 *   <li>Cancel: raw, the owner interrupts its threads in start order, then joins each; taskgroup,
 *       {@code group.cancel()} until {@code run} returns (stamped by the owner).
 * </ul>
 *
 * <p>Ten rounds at N/10 warm the JIT up first; round 0 at N is a warm-up too and not reported.
 * Output: {@code RESULT start|cancel round nanos}. The driver (which calls {@code cancel()}) and
 * every owner are virtual threads.
 */
public final class MillionProbe {
  private MillionProbe() {}

  public static void main(String[] args) throws Exception {
    Harness.onVirtualThread(() -> run(args));
  }

  private static void run(String[] args) throws Exception {
    String impl = args[0];
    int n = Integer.parseInt(args[1]);
    int rounds = Integer.parseInt(args[2]);
    // JIT warm-up on the whole path (start, park, cancel, exit) at a tenth of the size, so that
    // the rounds below compare compiled code. Without it the first 1 000 000 rounds run partly in
    // tier-3 code and their cancel took 8-10 s instead of about 1 s (for raw in its first round,
    // for taskgroup in its first three, until TaskImpl.run reached C2).
    for (int i = 0; i < 10; i++) {
      Harness w = Harness.of(impl, Math.max(1, n / 10));
      w.start();
      w.awaitStarted();
      w.parked.awaitAllParked();
      w.cancel();
    }
    for (int round = 0; round <= rounds; round++) {
      Heap.usedAfterFullGc();
      Harness h = Harness.of(impl, n);
      h.start();
      long start = h.awaitStarted();
      h.parked.awaitAllParked();
      if (Boolean.getBoolean("bench.gcBeforeCancel")) {
        Heap.usedAfterFullGc();
      }
      if (Boolean.getBoolean("bench.trace")) {
        System.err.println(
            "cancel "
                + round
                + " begins at uptime ms "
                + java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime());
      }
      long cancel = h.cancel();
      String tag = round == 0 ? "WARMUP" : "RESULT";
      System.out.printf(Locale.ROOT, "%s start %d %d%n", tag, round, start);
      System.out.printf(Locale.ROOT, "%s cancel %d %d%n", tag, round, cancel);
      if (Boolean.getBoolean("bench.trace")) {
        System.err.printf(
            Locale.ROOT,
            "%s start %d %d, cancel %d, ends at uptime ms %d%n",
            tag,
            round,
            start,
            cancel,
            java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime());
      }
    }
  }
}
