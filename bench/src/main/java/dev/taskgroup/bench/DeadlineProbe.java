package dev.taskgroup.bench;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Performance workload (e): deadline lateness with N (10 000) concurrent deadlines. Not JMH: {@code
 * java ... DeadlineProbe raw,taskgroup N windowMs rounds}: the implementations named take turns,
 * round by round, in the same JVM.
 *
 * <p>N virtual threads start and check in; then all are released at once and each computes its
 * deadline {@code base + lead + i * window / N} (deadlines spread evenly over the window; the lead,
 * 500 ms, lets every scope open before the first deadline) and enters {@code
 * CancelScope.moveOnAfter(deadline - now, body)} whose body blocks in {@code Thread.sleep} far past
 * the deadline. Two latenesses per thread, both {@code - deadline}:
 *
 * <ul>
 *   <li>observed: when the body caught the cancellation's {@code InterruptedException};
 *   <li>returned: when {@code moveOnAfter} returned (null).
 * </ul>
 *
 * The library computes its own deadline from its own clock read, a little after ours, so both
 * numbers slightly overstate the lateness (by the scope's entry cost). The {@code raw} peer is the
 * JDK's own timer under the same load: each thread does {@code Thread.sleep(deadline - now)} and
 * its lateness is when it woke. Round 0 is a warm-up. Output: {@code RESULT impl.key value}
 * (milliseconds), over all measured rounds pooled.
 */
public final class DeadlineProbe {
  private static final long LEAD_NANOS = 500_000_000L;

  /** The body blocks in a park loop instead of Thread.sleep (-Dbench.deadlineBody=park). */
  private static final boolean PARK = "park".equals(System.getProperty("bench.deadlineBody"));

  private DeadlineProbe() {}

  public static void main(String[] args) throws Exception {
    Harness.onVirtualThread(() -> run(args));
  }

  private static void run(String[] args) throws Exception {
    String[] impls = args[0].split(",");
    int n = Integer.parseInt(args[1]);
    long windowNanos = Long.parseLong(args[2]) * 1_000_000L;
    int rounds = Integer.parseInt(args[3]);
    int k = impls.length;
    long[][] observed = new long[k][n * rounds];
    long[][] returned = new long[k][n * rounds];
    long[] latestEntry = new long[k];
    int[] timedOut = new int[k];
    Arrays.fill(latestEntry, Long.MIN_VALUE);
    for (int round = 0; round <= rounds; round++) {
      // The implementations take turns, round by round, so that they share the machine's state.
      for (int j = 0; j < k; j++) {
        Round r = new Round(impls[j], n, windowNanos);
        r.run();
        if (Boolean.getBoolean("bench.trace")) {
          trace(impls[j], round, r, n);
        }
        if (round > 0) {
          System.arraycopy(r.observed, 0, observed[j], (round - 1) * n, n);
          System.arraycopy(r.returned, 0, returned[j], (round - 1) * n, n);
          latestEntry[j] = Math.max(latestEntry[j], r.latestEntryBeforeFirstDeadline);
          timedOut[j] += r.timedOut.get();
        }
        Heap.usedAfterFullGc();
      }
    }
    for (int j = 0; j < k; j++) {
      String p = impls[j] + ".";
      report(p + "observed", observed[j]);
      report(p + "returned", returned[j]);
      System.out.printf(Locale.ROOT, "RESULT %stimedOut %d%n", p, timedOut[j]);
      System.out.printf(Locale.ROOT, "RESULT %ssamples %d%n", p, observed[j].length);
      // Negative: every scope was open before the first deadline (all deadlines concurrent).
      System.out.printf(
          Locale.ROOT, "RESULT %slastEntryVsFirstDeadlineMs %.3f%n", p, latestEntry[j] / 1e6);
    }
  }

  private static void trace(String impl, int round, Round r, int n) {
    long[] s = r.returned.clone();
    Arrays.sort(s);
    StringBuilder b = new StringBuilder();
    b.append(
        String.format(
            Locale.ROOT,
            "%s round %d: returned median %.3f ms, p99 %.3f ms, max %.3f ms; max per tenth:",
            impl,
            round,
            pct(s, 0.5) / 1e6,
            pct(s, 0.99) / 1e6,
            s[s.length - 1] / 1e6));
    for (int d = 0; d < 10; d++) {
      long max = 0;
      for (int i = d * n / 10; i < (d + 1) * n / 10; i++) {
        max = Math.max(max, r.returned[i]);
      }
      b.append(String.format(Locale.ROOT, " %.1f", max / 1e6));
    }
    System.err.println(b);
  }

  private static void report(String what, long[] latenessNanos) {
    long[] s = latenessNanos.clone();
    Arrays.sort(s);
    System.out.printf(Locale.ROOT, "RESULT %s.median %.3f%n", what, pct(s, 0.50) / 1e6);
    System.out.printf(Locale.ROOT, "RESULT %s.p99 %.3f%n", what, pct(s, 0.99) / 1e6);
    System.out.printf(Locale.ROOT, "RESULT %s.max %.3f%n", what, s[s.length - 1] / 1e6);
  }

  private static long pct(long[] sorted, double p) {
    int i = (int) Math.ceil(p * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  /** One round: N threads, N deadlines spread over the window. */
  private static final class Round {
    final String impl;
    final int n;
    final long windowNanos;
    final long[] observed;
    final long[] returned;
    final AtomicInteger checkedIn = new AtomicInteger();
    final AtomicInteger timedOut = new AtomicInteger();
    final CountDownLatch go = new CountDownLatch(1);
    final Thread driver = Thread.currentThread();
    volatile long base;
    final long[] entered;
    long latestEntryBeforeFirstDeadline;

    Round(String impl, int n, long windowNanos) {
      this.impl = impl;
      this.n = n;
      this.windowNanos = windowNanos;
      this.observed = new long[n];
      this.returned = new long[n];
      this.entered = new long[n];
    }

    void run() throws InterruptedException {
      Thread[] threads = new Thread[n];
      for (int i = 0; i < n; i++) {
        int id = i;
        threads[i] = Thread.ofVirtual().start(() -> child(id));
      }
      while (checkedIn.get() < n) {
        LockSupport.park(this);
      }
      base = System.nanoTime();
      go.countDown();
      for (Thread t : threads) {
        t.join();
      }
      long firstDeadline = base + LEAD_NANOS;
      long latest = Long.MIN_VALUE;
      for (long e : entered) {
        latest = Math.max(latest, e - firstDeadline);
      }
      latestEntryBeforeFirstDeadline = latest;
    }

    private void child(int id) {
      try {
        if (checkedIn.incrementAndGet() == n) {
          LockSupport.unpark(driver);
        }
        go.await();
        long deadline = base + LEAD_NANOS + id * windowNanos / n;
        long now = System.nanoTime();
        entered[id] = now;
        if (impl.equals("raw")) {
          Thread.sleep(Duration.ofNanos(deadline - now));
          long woke = System.nanoTime() - deadline;
          observed[id] = woke;
          returned[id] = woke;
          timedOut.incrementAndGet();
          return;
        }
        Object r =
            CancelScope.moveOnAfter(
                Duration.ofNanos(deadline - now),
                () -> {
                  if (PARK) {
                    // Blocked in park until the cancellation's interrupt; no JDK timer involved.
                    Thread me = Thread.currentThread();
                    while (!me.isInterrupted()) {
                      LockSupport.park();
                    }
                    observed[id] = System.nanoTime() - deadline;
                    throw new InterruptedException("cancelled");
                  }
                  try {
                    Thread.sleep(Duration.ofSeconds(60));
                  } catch (InterruptedException e) {
                    observed[id] = System.nanoTime() - deadline;
                    throw e;
                  }
                  return "slept";
                });
        returned[id] = System.nanoTime() - deadline;
        if (r == null) {
          timedOut.incrementAndGet();
        }
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
