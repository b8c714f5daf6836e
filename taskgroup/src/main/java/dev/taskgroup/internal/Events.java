package dev.taskgroup.internal;

/**
 * The library's JFR events, behind a door that works without {@code jdk.jfr}: every method is a
 * no-op when the module is absent (or not readable), and otherwise checks that its event is enabled
 * before it allocates anything. The event classes live in {@link JfrEvents}, which only this class
 * touches, and only when {@link #JFR} is true.
 *
 * <pre>
 * Implementation overview
 *
 * JFR is decided once, in the class initializer: loading JfrEvents links jdk.jfr.Event, and a
 * LinkageError (no jdk.jfr module, or not readable) turns every event off for good. Events that
 * need a start time (GroupEnd, CancelHook) return an opaque handle from their start method: null
 * when nothing records, so a group run with no recording writes no field and allocates nothing.
 * </pre>
 */
final class Events {
  /** Whether jdk.jfr is usable; decided once. */
  private static final boolean JFR = probe();

  private Events() {}

  private static boolean probe() {
    try {
      JfrEvents.touch();
      return true;
    } catch (LinkageError absent) {
      return false;
    }
  }

  /** A scope was first cancelled (on the cancelling thread). */
  static void cancel(Scope scope, CancelReason reason) {
    if (JFR) {
      JfrEvents.cancel(scope, reason);
    }
  }

  /** A deadline fired and cancelled {@code scope} (the lateness is measured inside). */
  static void deadlineExpired(Scope scope) {
    if (JFR) {
      JfrEvents.deadlineExpired(scope);
    }
  }

  /** The watcher or the thread itself interrupted {@code thread} again. */
  static void redelivery(Thread thread, int count) {
    if (JFR) {
      JfrEvents.redelivery(thread, count);
    }
  }

  /** A group starts: a handle for {@link #forked} and {@link #groupEnd}, or null. */
  static Object groupStart() {
    return JFR ? JfrEvents.groupStart() : null;
  }

  /** A child was admitted to a group whose start returned {@code handle} (not null). */
  static void forked(Object handle) {
    JfrEvents.forked(handle);
  }

  /** A child counted by {@link #forked} never started: its thread could not be started. */
  static void unforked(Object handle) {
    JfrEvents.unforked(handle);
  }

  /** A group ends; {@code handle} from {@link #groupStart} (not null). */
  static void groupEnd(Object handle, String name, String outcome) {
    JfrEvents.groupEnd(handle, name, outcome);
  }

  /** A cancel-hook action starts: a handle for {@link #hookEnd}, or null. */
  static Object hookStart() {
    return JFR ? JfrEvents.hookStart() : null;
  }

  /** A cancel-hook action ended; {@code handle} from {@link #hookStart} (may be null). */
  static void hookEnd(Object handle, boolean failed) {
    if (handle != null) {
      JfrEvents.hookEnd(handle, failed);
    }
  }
}
