package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The threads inside scopes and groups while a test clock is installed, and the library's helper
 * threads working for them: what the test clock's auto-advance looks at to decide that every one of
 * them is blocked.
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
 *
 * HELPERS holds the library's own helper threads that do a scope's work on its behalf: the thread
 * running an onCancel / closeOnCancel action (CancelHook.fire) and the one delivering a deadline
 * to a scope with a group below (Deadlines.deliverExpired). The scope's thread (or its group) may
 * wait for them while they run, and a clock that jumped then would fire the next deadline in the
 * middle of their work. startHelper, on the thread that starts one, registers it before it
 * starts (NEW: not blocked, as a forked child not yet started), under the same guard as scope
 * entry and fork, and the helper removes itself when its work ends (in a finally), so that a
 * clock moved by hand keeps none; snapshot() counts it while it is registered and not
 * TERMINATED, and drops a TERMINATED one (which can never count again).
 *
 * uninstall clears both sets (a helper that removes itself afterwards removes nothing).
 * </pre>
 */
public final class ClockedThreads {
  private static final Set<ThreadState> TRACKED = ConcurrentHashMap.newKeySet();

  /** The library's helper threads doing a scope's work while a test clock is installed. */
  private static final Set<Thread> HELPERS = ConcurrentHashMap.newKeySet();

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

  /**
   * Starts {@code work} on a new thread of {@code builder}, a library helper doing a scope's work
   * (a cancel hook's action, a deadline's delivery): while a test clock is installed, the thread
   * counts for its auto-advance from before it starts until {@code work} ends. With no test clock,
   * one static read more than {@code builder.start(work)}.
   *
   * @throws RuntimeException or Error as {@link Thread#start()} (nothing stays registered)
   */
  static Thread startHelper(Thread.Builder builder, Runnable work) {
    if (!(Features.ON && LibraryClock.testClockInstalled())) {
      return builder.start(work);
    }
    Thread helper =
        builder.unstarted(
            () -> {
              try {
                work.run();
              } finally {
                HELPERS.remove(Thread.currentThread()); // a clock moved by hand keeps no helper
              }
            });
    HELPERS.add(helper); // before start: the clock must not see the work's scope idle meanwhile
    try {
      helper.start();
    } catch (Throwable e) {
      HELPERS.remove(helper);
      throw e;
    }
    return helper;
  }

  /**
   * The threads now running code that is not the library's on its behalf, with how many times each
   * entered it: a channel's close that Thread.interrupt() runs, the default uncaught-exception
   * handler. A test clock's firing does not wait for a delivery whose thread is blocked there
   * (Deadlines.awaitDeliveriesElsewhere): that code may wait for the clock itself.
   */
  private static final Map<Thread, Integer> IN_USER_CODE = new ConcurrentHashMap<>();

  /**
   * The calling thread starts running code that is not the library's (see {@link #IN_USER_CODE});
   * with no test clock, one static read.
   *
   * @return whether it was marked (to hand to {@link #userCodeEnds})
   */
  static boolean userCodeBegins() {
    if (!(Features.ON && LibraryClock.testClockInstalled())) {
      return false;
    }
    IN_USER_CODE.merge(Thread.currentThread(), 1, Integer::sum);
    return true;
  }

  /** The code that {@link #userCodeBegins()} marked (if it did) has returned. */
  static void userCodeEnds(boolean marked) {
    if (marked) {
      IN_USER_CODE.computeIfPresent(Thread.currentThread(), (t, n) -> n == 1 ? null : n - 1);
    }
  }

  /** Whether {@code t} is blocked (not running) in code that is not the library's. */
  static boolean blockedInUserCode(Thread t) {
    Thread.State st = t.getState();
    return st != Thread.State.RUNNABLE && st != Thread.State.NEW && IN_USER_CODE.containsKey(t);
  }

  /** Forgets every registration (the test clock is being closed). */
  public static void clear() {
    TRACKED.clear();
    HELPERS.clear();
  }

  /**
   * The registered threads now inside a scope or a group, started or not, and the helpers doing a
   * scope's work.
   */
  public static List<Thread> snapshot() {
    List<Thread> inside = new ArrayList<>();
    for (Iterator<Thread> it = HELPERS.iterator(); it.hasNext(); ) {
      Thread t = it.next();
      if (t.getState() == Thread.State.TERMINATED) {
        it.remove();
      } else {
        inside.add(t);
      }
    }
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
