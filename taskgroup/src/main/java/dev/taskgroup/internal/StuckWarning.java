package dev.taskgroup.internal;

import java.lang.System.Logger.Level;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The warning for a cancelled group whose children do not finish: logged once per group, by its
 * owner, when the owner has waited {@code dev.taskgroup.stuckWarningMillis} (default 10 000, 0
 * turns it off; read once, when this class is first used) since it saw the group cancelled. One
 * record of the {@link System.Logger} named {@code dev.taskgroup}, at WARNING.
 *
 * <pre>
 * Implementation overview
 *
 * The owner's wait (Group.awaitMembers) is an untimed park unless the warning is on and the
 * group is effectively cancelled; then it parks until the warning is due. A cancellation that
 * arrives while the owner is parked wakes it (Scope.propagateFrom calls
 * Group.wakeJoiningOwner, only when the warning is on), so that it starts the timed park.
 * `thresholdNanos` is written by the class initializer and, in tests, by setThresholdMillis.
 * </pre>
 */
final class StuckWarning {
  /** The logger's name. */
  static final String LOGGER = "dev.taskgroup";

  private static volatile long thresholdNanos =
      TimeUnit.MILLISECONDS.toNanos(
          Math.max(0L, Long.getLong("dev.taskgroup.stuckWarningMillis", 10_000L)));

  private StuckWarning() {}

  static boolean enabled() {
    return thresholdNanos != 0L;
  }

  static long thresholdNanos() {
    return thresholdNanos;
  }

  /** For tests: sets the threshold (0 turns the warning off). */
  static void setThresholdMillis(long millis) {
    thresholdNanos = TimeUnit.MILLISECONDS.toNanos(millis);
  }

  /** Logs the warning for {@code g}, whose owner still waits for the members. */
  static void log(Group g) {
    try {
      System.Logger logger = System.getLogger(LOGGER);
      if (logger.isLoggable(Level.WARNING)) {
        logger.log(Level.WARNING, message(g));
      }
    } catch (Throwable brokenLogging) {
      // A diagnostic must never change how the group ends: the owner goes on waiting for its
      // members. An error (a logging backend missing a class) is worth a report; out of the wait,
      // it made run() return with the children still running.
      if (!(brokenLogging instanceof RuntimeException)) {
        Uncaught.report(brokenLogging);
      }
    }
  }

  /** The warning's text. */
  static String message(Group g) {
    StringBuilder sb = new StringBuilder();
    Scope cause = Scope.cancelledAbove(g);
    long since = cause == null ? 0L : TreeCapture.cancelledAt(cause);
    sb.append("group '");
    OneLine.append(sb, g.name(), '\'');
    sb.append("' was cancelled");
    if (since != 0L) {
      sb.append(' ')
          .append(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since))
          .append(" ms ago");
    }
    CancelReason r = cause == null ? null : cause.reason();
    if (r != null) {
      sb.append(" (");
      OneLine.append(sb, r.describe(), ')');
      sb.append(')');
    }
    sb.append(", and its owner still waits for these children:");
    int[] count = {0};
    g.children.forEachLive(
        t -> {
          count[0]++;
          Thread th = t.thread;
          String n = t.name();
          sb.append("\n  task ");
          if (n.isEmpty()) {
            sb.append("(unnamed)");
          } else {
            sb.append('\'');
            OneLine.append(sb, n, '\'');
            sb.append('\'');
          }
          if (th != null) {
            sb.append(" on thread #").append(th.threadId()).append(" \"");
            OneLine.append(sb, th.getName(), '"');
            sb.append("\" (").append(th.getState()).append(')');
          }
          sb.append(", interrupt re-delivered ").append(t.redeliveries()).append(" times");
          if (th != null) {
            for (StackTraceElement e : th.getStackTrace()) {
              sb.append("\n      at ").append(e);
            }
          }
        });
    if (count[0] == 0) {
      sb.append("\n  (none left now)");
    }
    List<CancelHook> hooks = g.runningHooks();
    if (!hooks.isEmpty()) {
      sb.append("\nand for these cancel-hook actions (onCancel, closeOnCancel), which the group");
      sb.append(" waits for too:");
      long now = System.nanoTime();
      for (CancelHook h : hooks) {
        h.describeRunning(sb, now);
      }
    }
    sb.append(
        "\nA child that does not end when cancelled usually catches InterruptedException and"
            + " carries on (in a loop), or is blocked in a call that an interrupt cannot reach"
            + " (synchronized, socket or file I/O on a platform thread, JDBC, a busy loop)."
            + " Let the exception propagate, call CancelScope.checkpoint() in loops, or register"
            + " a remedy with CancelScope.onCancel(...) (e.g. statement::cancel) or"
            + " CancelScope.closeOnCancel(resource); such an action must itself end promptly."
            + " This warning is logged once per group after"
            + " dev.taskgroup.stuckWarningMillis (0 turns it off).");
    return sb.toString();
  }
}
