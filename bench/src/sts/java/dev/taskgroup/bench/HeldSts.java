package dev.taskgroup.bench;

import java.util.List;
import java.util.concurrent.StructuredTaskScope;

/** The {@code StructuredTaskScope} part of {@link HeldProbe} (bench profile only). */
final class HeldSts {
  private HeldSts() {}

  static void hold(Integer[] results, int n, List<Object> into) throws InterruptedException {
    try (var scope = StructuredTaskScope.open()) {
      for (int i = 0; i < n; i++) {
        int k = i;
        into.add(scope.fork(() -> results[k]));
      }
      scope.join();
    }
  }

  /** What a held subtask gives. */
  static Object value(Object subtask) {
    return ((StructuredTaskScope.Subtask<?>) subtask).get();
  }
}
