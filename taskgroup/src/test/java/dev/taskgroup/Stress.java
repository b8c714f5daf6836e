package dev.taskgroup;

/** The short (CI) and long (-Pstress) modes of stress tests. */
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
}
