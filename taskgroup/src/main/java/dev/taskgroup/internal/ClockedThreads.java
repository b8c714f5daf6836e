package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The threads inside scopes and groups while a test clock is installed: what the test clock's
 * auto-advance looks at to decide that every one of them is blocked.
 *
 * <pre>
 * Implementation overview
 *
 * Registration happens only while LibraryClock.testClockInstalled(): on every scope entry
 * (Scope.enter: the thread's ThreadState) and on every fork, before the child's thread starts
 * (Forks.launch: the task). With no test clock nothing is registered, and the cost is the one
 * static read of that flag.
 *
 * A registered ThreadState counts while it is inside a scope: a task until it is finished (a
 * task not yet started counts: its thread is NEW, not blocked, and holds the clock still); any
 * other thread while its innermost scope is not its own root. Each leaves the set on its own
 * thread (untrack): a task when it finishes (TaskImpl.complete), any other thread when it leaves
 * its last scope (EnteredScope.exit), so that a clock moved by hand, which never takes a
 * snapshot, keeps no finished task and no thread that has left its scopes. Only the thread itself
 * adds and removes its own entry, so a removal cannot race with its next entry; snapshot() (the
 * auto-advance thread) only drops what can never count again: a finished task, a terminated
 * thread.
 * uninstall clears the set.
 * </pre>
 */
public final class ClockedThreads {
  private static final Set<ThreadState> TRACKED = ConcurrentHashMap.newKeySet();

  private ClockedThreads() {}

  /**
   * Registers a thread that enters a scope, or a child about to start. Called after reading that a
   * test clock is installed; if the clock was closed since (its clear() may have come before this
   * add), the registration is taken back: else the set kept the task, its result and its group
   * until some later clock's close, for nothing unregisters a task that finishes with no clock. The
   * add comes before the look, and uninstall clears the set after it stops the clock, so one of the
   * two sees the other.
   */
  static void track(ThreadState ts) {
    TRACKED.add(ts);
    if (!LibraryClock.testClockInstalled()) {
      TRACKED.remove(ts);
    }
  }

  /**
   * Forgets a task that has finished: it no longer counts, and the set must not keep it (nor its
   * result) for as long as the test clock stays installed.
   */
  static void untrack(ThreadState ts) {
    TRACKED.remove(ts);
  }

  /** Forgets every registration (the test clock is being closed). */
  public static void clear() {
    TRACKED.clear();
  }

  /** The registered threads now inside a scope or a group, started or not. */
  public static List<Thread> snapshot() {
    List<Thread> inside = new ArrayList<>();
    for (Iterator<ThreadState> it = TRACKED.iterator(); it.hasNext(); ) {
      ThreadState ts = it.next();
      Thread t = ts.thread;
      if (ts instanceof TaskImpl<?> task) {
        if (task.isFinished() || t == null || t.getState() == Thread.State.TERMINATED) {
          it.remove();
          continue;
        }
        inside.add(t);
      } else if (t.getState() == Thread.State.TERMINATED) {
        it.remove();
      } else if (ts.innermost() != ts) {
        inside.add(t);
      }
    }
    return inside;
  }
}
