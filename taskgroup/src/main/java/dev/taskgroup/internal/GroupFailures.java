package dev.taskgroup.internal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * A group's failures: those it keeps for the exception {@code run} throws, in the order they
 * happened, and every one it has reported (kept, or handed to the {@code onFailure} handler), by
 * identity and weakly, so that a reported failure rethrown in the wrapper a read of it made is
 * known again (Group.reportFailure). Made on the group's first failure; not thread-safe: every
 * method is called under the group's monitor, which is never held while calling user code.
 */
final class GroupFailures {
  /** Kept failures, in order; null until the first. Emptied by {@link #take}. */
  private List<Throwable> kept;

  /**
   * The kept failures by identity, once there are more than {@link #SCAN_LIMIT}: looking for a
   * rethrown one by scanning the list made keeping n failures cost n<sup>2</sup> (80 000 failures
   * of a COLLECT group without a handler took 10 s, all under the group's monitor). Null until
   * then.
   */
  private Set<Throwable> keptIds;

  /** Up to this many kept failures, a scan of the list finds a rethrown one: no set to make. */
  private static final int SCAN_LIMIT = 8;

  /** Every failure reported; see the class comment. */
  private final JudgedFailures reported = new JudgedFailures();

  /**
   * Records a failure as reported (before it is kept or handed on), and the exceptions suppressed
   * on it then ({@code suppressed}, read outside the monitor), which are part of it: only those
   * suppressed on it later, as it is rethrown, are failures of their own (see rethrownAddition).
   */
  void reported(Throwable failure, Throwable[] suppressed) {
    reported.add(failure);
    for (Throwable part : suppressed) {
      reported.add(part);
    }
  }

  /** Keeps a failure, once: the same throwable rethrown (say, a task's exceptionNow()) is one. */
  void keep(Throwable failure) {
    if (kept == null) {
      kept = new ArrayList<>(2);
    } else if (keptIds != null) {
      if (!keptIds.add(failure)) {
        return;
      }
    } else {
      for (Throwable k : kept) {
        if (k == failure) {
          return;
        }
      }
      if (kept.size() == SCAN_LIMIT) {
        keptIds = Collections.newSetFromMap(new IdentityHashMap<>());
        keptIds.addAll(kept);
        keptIds.add(failure);
      }
    }
    kept.add(failure);
  }

  /** Whether a failure was ever kept (the group failed, even once they have been taken). */
  boolean anyKept() {
    return kept != null;
  }

  /** The kept failures, in order; the group lets go of them (its run is ending). */
  List<Throwable> take() {
    List<Throwable> all = List.copyOf(kept);
    kept.clear();
    keptIds = null;
    return all;
  }

  /**
   * If {@code failure} is a failure {@code g} has reported, rethrown in the wrappers that reading
   * an outcome makes (the FailedTaskException of {@code Task.get()} for one of g's children; an
   * ExecutionException or CompletionException, exactly those JDK classes, from a {@code
   * CompletableFuture}, one inside another included), the exceptions suppressed on those wrappers
   * and those suppressed on the failure since it was reported, which are new (a close() that failed
   * in a try-with-resources around the read); else null. The JDK classes' getCause are their own,
   * never a user's override, and Throwable.getSuppressed is final. A static method, as the group
   * may have no failures yet.
   */
  static List<Throwable> rethrownAddition(Throwable failure, Group g) {
    Throwable t = failure;
    for (int depth = 0; ; depth++) {
      if (depth == 8) {
        return null;
      }
      if (t instanceof FailedTaskException again) {
        if (!again.reportedBy(g)) {
          return null;
        }
        t = t.getCause(); // the failure of one of g's children, which g reported
        break;
      }
      Class<?> c = t.getClass();
      if (c != ExecutionException.class && c != CompletionException.class) {
        return null; // not a wrapper, or not only wrappers
      }
      t = t.getCause();
      if (t == null) {
        return null;
      }
      if (g.reportedBefore(t)) {
        break;
      }
    }
    List<Throwable> added = new ArrayList<>();
    for (Throwable w = failure; w != t; w = w.getCause()) {
      Throwable[] suppressed = w.getSuppressed();
      for (int i = 0; i < suppressed.length; i++) {
        if (i > 0 || !thrownDescribingCause(w, suppressed[0])) {
          added.add(suppressed[i]);
        }
      }
    }
    added.addAll(g.suppressedSinceReported(t));
    return added;
  }

  /**
   * Whether {@code s}, the first exception suppressed on the JDK wrapper {@code w}, is what the
   * wrapped failure's toString() threw when CompletableFuture made {@code w} (JDK 25 catches it,
   * gives the wrapper an empty message and the exception as its first suppressed): the failure's
   * own defect, not a failure on the way back. Told by the wrapper's empty message and a frame of
   * that JDK method on the exception's stack (without a stack trace it counts as a failure).
   */
  private static boolean thrownDescribingCause(Throwable w, Throwable s) {
    if (!"".equals(w.getMessage())) { // a JDK class: its getMessage is its own
      return false;
    }
    for (StackTraceElement e : s.getStackTrace()) {
      if (e.getClassName().equals("java.util.concurrent.CompletableFuture")
          && e.getMethodName().startsWith("wrapIn")) {
        return true;
      }
    }
    return false;
  }

  /**
   * Those of {@code suppressed} (the exceptions suppressed on a reported failure) not reported
   * before, neither as failures nor as part of one: suppressed on it since it was reported.
   */
  List<Throwable> notReported(Throwable[] suppressed) {
    List<Throwable> added = new ArrayList<>();
    for (Throwable s : suppressed) {
      if (!reported.contains(s)) {
        added.add(s);
      }
    }
    return added;
  }

  /** Whether {@code t} itself was reported. */
  boolean wasReported(Throwable t) {
    return reported.contains(t);
  }
}
