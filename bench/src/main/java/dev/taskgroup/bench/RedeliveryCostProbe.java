package dev.taskgroup.bench;

import dev.taskgroup.TaskGroup;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The cost of level-triggered delivery in its worst case: N children of a cancelled group that
 * catch every {@code InterruptedException} and sleep again, so the library keeps interrupting them.
 * Not JMH, not part of the comparison: {@code java ... RedeliveryCostProbe N windowMs} (bound:
 * {@code -Ddev.taskgroup.redeliveryMillis}, default 20). Prints the process CPU over the window (in
 * cores) and the re-deliveries per second, in the steady state after the cancel.
 */
public final class RedeliveryCostProbe {
  private RedeliveryCostProbe() {}

  public static void main(String[] args) throws Exception {
    Harness.onVirtualThread(() -> run(Integer.parseInt(args[0]), Long.parseLong(args[1])));
  }

  private static void run(int n, long windowMs) throws Exception {
    var os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    AtomicLong caught = new AtomicLong();
    AtomicBoolean stop = new AtomicBoolean();
    CountDownLatch ready = new CountDownLatch(n);
    TaskGroup group = TaskGroup.create();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () -> {
                          for (int i = 0; i < n; i++) {
                            group.fork(() -> swallowAndSleep(ready, stop, caught));
                          }
                        });
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
    ready.await();
    group.cancel();
    Thread.sleep(500); // past the first deliveries, into the steady state
    long cpu0 = os.getProcessCpuTime();
    long caught0 = caught.get();
    long t0 = System.nanoTime();
    Thread.sleep(windowMs);
    long cpu1 = os.getProcessCpuTime();
    long caught1 = caught.get();
    double seconds = (System.nanoTime() - t0) / 1e9;
    stop.set(true);
    owner.join();
    System.out.printf(
        Locale.ROOT,
        "RESULT n=%d boundMs=%s cores=%.2f redeliveriesPerSecond=%.0f perThreadPerSecond=%.1f%n",
        n,
        System.getProperty("dev.taskgroup.redeliveryMillis", "20"),
        (cpu1 - cpu0) / 1e9 / seconds,
        (caught1 - caught0) / seconds,
        (caught1 - caught0) / seconds / n);
  }

  private static void swallowAndSleep(CountDownLatch ready, AtomicBoolean stop, AtomicLong caught) {
    ready.countDown();
    while (!stop.get()) {
      try {
        Thread.sleep(60_000);
      } catch (InterruptedException swallowed) {
        caught.incrementAndGet();
      }
    }
  }
}
