package dev.taskgroup;

/** The short (CI) and long (-Pstress) modes of stress tests, and heap measurement. */
final class Stress {
  private Stress() {}

  /** Whether the long mode was asked for ({@code ./mvnw -Pstress verify}). */
  static boolean longMode() {
    return "long".equals(System.getProperty("taskgroup.stress.mode", "short"));
  }

  /** {@code shortValue} in CI, {@code longValue} with -Pstress. */
  static int scaled(int shortValue, int longValue) {
    return longMode() ? longValue : shortValue;
  }

  /** Used heap after the collector has settled (several full collections). */
  static long usedHeapAfterGc() {
    Runtime rt = Runtime.getRuntime();
    long used = Long.MAX_VALUE;
    for (int i = 0; i < 5; i++) {
      System.gc();
      long now = rt.totalMemory() - rt.freeMemory();
      if (Math.abs(now - used) < (1L << 20)) {
        return now;
      }
      used = now;
    }
    return used;
  }

  /**
   * Collects until every reference is cleared or 10 s have passed (finished threads may still
   * be ending), and returns how many referents are still reachable.
   */
  static int awaitCleared(java.util.List<? extends java.lang.ref.WeakReference<?>> refs)
      throws InterruptedException {
    long end = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
    int alive;
    do {
      System.gc();
      alive = (int) refs.stream().filter(r -> r.get() != null).count();
      if (alive == 0) {
        return 0;
      }
      Thread.sleep(20); // let finished threads terminate between collections (not an ordering)
    } while (System.nanoTime() < end);
    return alive;
  }
}
