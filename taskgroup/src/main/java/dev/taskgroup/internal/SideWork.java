package dev.taskgroup.internal;

import java.util.ArrayList;
import java.util.List;

/**
 * What works for a group outside its children, for the two places that must know it: the
 * cancel-hook actions running as the group's members (the stuck warning names them), and the
 * threads running the group's onFailure handler outside its children (the owner, for the body's
 * failure; a cancel-hook action's thread; a forking thread whose child's thread could not start). A
 * fork from either (an action's thread, a handler's) never waits for a place (Forks.fork).
 *
 * <pre>
 * Implementation overview
 *
 * Made by the group on first use (Group.side), so that a group whose hooks never fire and whose
 * handler runs only in its children allocates nothing for it; kept for the group's life, with
 * both lists empty once what they listed has ended (a group kept after its run keeps no thread
 * and no action through it). This object's monitor guards both lists, held only to add, remove
 * or copy, never across user code. `busy` is whether either list is not empty, for the bounded
 * fork's check, which reads it without the monitor first: a thread lists itself (and sets it)
 * before its handler runs, and an action is listed before its thread starts, so that the thread's
 * own forks see it.
 * </pre>
 */
final class SideWork {
  private final List<CancelHook> hooks = new ArrayList<>(2);

  /** One entry per running handler: a nested run on the same thread has its own. */
  private final List<Thread> handlerThreads = new ArrayList<>(2);

  private volatile boolean busy;

  synchronized void hookStarted(CancelHook hook) {
    hooks.add(hook);
    busy = true;
  }

  synchronized void hookEnded(CancelHook hook) {
    hooks.remove(hook);
    busy = !hooks.isEmpty() || !handlerThreads.isEmpty();
  }

  /** The running cancel-hook actions, oldest first. */
  synchronized List<CancelHook> runningHooks() {
    return List.copyOf(hooks);
  }

  synchronized void handlerStarts(Thread t) {
    handlerThreads.add(t);
    busy = true;
  }

  synchronized void handlerEnded(Thread t) {
    handlerThreads.remove(t);
    busy = !hooks.isEmpty() || !handlerThreads.isEmpty();
  }

  /**
   * Whether {@code t} works for the group outside its children now: it runs the group's onFailure
   * handler there, or one of the group's cancel-hook actions.
   */
  boolean worksOn(Thread t) {
    if (!busy) {
      return false;
    }
    synchronized (this) {
      if (handlerThreads.contains(t)) {
        return true;
      }
      for (CancelHook h : hooks) {
        if (h.runsOn(t)) {
          return true;
        }
      }
      return false;
    }
  }
}
