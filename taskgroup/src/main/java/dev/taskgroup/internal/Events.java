package dev.taskgroup.internal;

import jdk.jfr.FlightRecorder;

/**
 * The library's JFR events, behind a door that works without {@code jdk.jfr}: every method is a
 * no-op when the module is absent (or not readable), and otherwise checks that its event is enabled
 * before it allocates anything. The event classes live in {@link JfrEvents}, which only this class
 * touches, and only once a recording may exist ({@link #on}).
 *
 * <pre>
 * Implementation overview
 *
 * Whether jdk.jfr is usable is decided once, in the class initializer, by a call to
 * FlightRecorder.isInitialized() (a static flag: it loads one small class and starts nothing): a
 * LinkageError (no jdk.jfr module, or not readable) turns every event off for good. The event
 * classes themselves (JfrEvents) are not touched until the flight recorder has been initialized
 * (a recording was started, by -XX:StartFlightRecording, jcmd, or the API): registering them
 * makes JFR build its metadata, which took 0.3 to 0.4 s in a JVM that never records, and it fell
 * on whichever thread first ran a group or cancelled a scope (a cancel() that returns at once, a
 * deadline due in 1 ms, were that late). Once initialized, the recorder stays so: the check is
 * one read of a volatile boolean. Events that need a start time (GroupEnd, CancelHook) return an
 * opaque handle from their start method: null when nothing records, so a group run with no
 * recording writes no field and allocates nothing.
 * </pre>
 */
final class Events {
  /** Whether jdk.jfr is usable; decided once. */
  private static final boolean JFR = probe();

  private Events() {}

  private static boolean probe() {
    try {
      FlightRecorder.isInitialized(); // links jdk.jfr, registers nothing
      return true;
    } catch (LinkageError absent) {
      return false;
    }
  }

  /** Whether an event may be recorded: jdk.jfr is usable and the recorder has been started. */
  private static boolean on() {
    return JFR && FlightRecorder.isInitialized();
  }

  /**
   * Registers the event types now if a recording may exist: for a caller about to record events
   * while it holds a lock that other threads wait for (the deadlines' lock, whose holders mark
   * scopes cancelled), so that the registration (JFR builds its metadata: 0.1 to 0.4 s, once) does
   * not fall inside it. A recorder first started between this and the events still registers there;
   * that window is the lock's hold, microseconds.
   */
  static void prepare() {
    if (on()) {
      JfrEvents.registered();
    }
  }

  /** A scope was first cancelled (on the cancelling thread). */
  static void cancel(Scope scope, CancelReason reason) {
    if (on()) {
      JfrEvents.cancel(scope, reason);
    }
  }

  /** A deadline fired and cancelled {@code scope} (the lateness is measured inside). */
  static void deadlineExpired(Scope scope) {
    if (on()) {
      JfrEvents.deadlineExpired(scope);
    }
  }

  /** The watcher or the thread itself interrupted {@code thread} again. */
  static void redelivery(Thread thread, int count) {
    if (on()) {
      JfrEvents.redelivery(thread, count);
    }
  }

  /** A group starts: a handle for {@link #forked} and {@link #groupEnd}, or null. */
  static Object groupStart() {
    return on() ? JfrEvents.groupStart() : null;
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
    return on() ? JfrEvents.hookStart() : null;
  }

  /** A cancel-hook action ended; {@code handle} from {@link #hookStart} (may be null). */
  static void hookEnd(Object handle, boolean failed) {
    if (handle != null) {
      JfrEvents.hookEnd(handle, failed);
    }
  }
}
