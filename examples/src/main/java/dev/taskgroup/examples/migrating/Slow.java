package dev.taskgroup.examples.migrating;

/** Stand-ins for slow, blocking services, shared by the migration samples. */
final class Slow {
  private Slow() {}

  /** Answers {@code what} after {@code millis}; interruptible, like real blocking I/O. */
  static String fetch(String what, long millis) throws InterruptedException {
    Thread.sleep(millis);
    if (what.startsWith("broken")) {
      throw new IllegalStateException(what + " failed");
    }
    return what;
  }

  static String fetch(String what) throws InterruptedException {
    return fetch(what, 5);
  }
}
