package dev.taskgroup.bench;

import dev.taskgroup.TaskGroup;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Heap per held finished child (context, no target): what a caller pays for keeping the handle of
 * every child after they all finished, as code that collects results in a list does. Not JMH: run
 * once per implementation in a fresh JVM ({@code java ... HeldProbe taskgroup|executor|cf|sts N};
 * {@code sts} needs the bench profile's build).
 *
 * <p>The N results are made before the first reading and held in an array, so only the handles and
 * what they keep are counted: taskgroup's {@code Task} from {@code fork}, the executor's {@code
 * Future} from {@code submit} (a virtual thread per task), {@code CompletableFuture.supplyAsync} on
 * that executor, and STS's {@code Subtask} (the scope closed). The list that holds the handles is
 * sized before the first reading too. Used heap after full GCs before and after, divided by N, and
 * the bytes per handle by class (class histogram difference), as {@link MemoryProbe} does.
 *
 * <p>Output: lines {@code RESULT key value}, read by {@link Compare}.
 */
public final class HeldProbe {
  private HeldProbe() {}

  private static final int WARM_UP_ROUNDS = 10;

  public static void main(String[] args) throws Exception {
    Harness.onVirtualThread(() -> run(args));
  }

  private static void run(String[] args) throws Exception {
    String impl = args[0];
    int n = Integer.parseInt(args[1]);
    Integer[] results = new Integer[n];
    for (int i = 0; i < n; i++) {
      results[i] = 1_000 + i; // boxed above the Integer cache: one object per child, made here
    }
    for (int i = 0; i < WARM_UP_ROUNDS; i++) {
      hold(impl, results, Math.max(1, n / 5), new ArrayList<>());
    }
    List<Object> handles = new ArrayList<>(n);
    long before = Heap.usedAfterFullGc();
    Map<String, long[]> histBefore = Heap.histogram();
    hold(impl, results, n, handles);
    long after = Heap.usedAfterFullGc();
    Map<String, long[]> histAfter = Heap.histogram();
    check(impl, handles, results);
    Reference.reachabilityFence(handles);

    double perHandle = (after - before) / (double) n;
    System.out.printf(Locale.ROOT, "RESULT bytesPerHeld %.1f%n", perHandle);
    System.out.printf(
        Locale.ROOT,
        "%s, %d held finished children: %.1f bytes per handle; top classes:%n",
        impl,
        n,
        perHandle);
    histAfter.entrySet().stream()
        .map(
            e -> {
              long[] b = histBefore.getOrDefault(e.getKey(), new long[2]);
              return Map.entry(e.getKey(), (e.getValue()[1] - b[1]) / (double) n);
            })
        .filter(e -> e.getValue() >= 0.5)
        .sorted((x, y) -> Double.compare(y.getValue(), x.getValue()))
        .limit(10)
        .forEach(e -> System.out.printf(Locale.ROOT, "  %8.1f B  %s%n", e.getValue(), e.getKey()));
  }

  /**
   * Runs {@code n} children returning {@code results[i]}, all finished on return; keeps handles.
   */
  private static void hold(String impl, Integer[] results, int n, List<Object> into)
      throws Exception {
    switch (impl) {
      case "taskgroup" -> {
        TaskGroup g = TaskGroup.create();
        g.run(
            () -> {
              for (int i = 0; i < n; i++) {
                int k = i;
                into.add(g.fork(() -> results[k]));
              }
            });
      }
      case "executor" -> {
        try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
          for (int i = 0; i < n; i++) {
            int k = i;
            into.add(ex.submit(() -> results[k]));
          }
        }
      }
      case "cf" -> {
        try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
          for (int i = 0; i < n; i++) {
            int k = i;
            into.add(CompletableFuture.supplyAsync(() -> results[k], ex));
          }
        }
      }
      case "sts" -> stsHold(results, n, into);
      default -> throw new IllegalArgumentException("unknown implementation: " + impl);
    }
  }

  private static void stsHold(Integer[] results, int n, List<Object> into) throws Exception {
    if (!Harness.stsAvailable()) {
      throw new IllegalArgumentException(
          "sts: HarnessSts is not on the class path; build the bench module with -Pbench");
    }
    Class.forName(HeldProbe.class.getPackageName() + ".HeldSts")
        .getDeclaredMethod("hold", Integer[].class, int.class, List.class)
        .invoke(null, results, n, into);
  }

  /** Every handle gives its own result: the measurement held what it says. */
  private static void check(String impl, List<Object> handles, Integer[] results) throws Exception {
    for (int i = 0; i < handles.size(); i++) {
      Object h = handles.get(i);
      Object v =
          h instanceof Future<?> f
              ? f.resultNow()
              : Class.forName(HeldProbe.class.getPackageName() + ".HeldSts")
                  .getDeclaredMethod("value", Object.class)
                  .invoke(null, h); // an STS Subtask
      if (v != results[i]) {
        throw new IllegalStateException(impl + ": handle " + i + " gave " + v);
      }
    }
  }
}
