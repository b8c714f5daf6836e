package dev.taskgroup.internal;

import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A group's children in fork order, in two lists: those forked by the group's owner (the body's
 * thread, the common case: appended without a lock, it is their only writer) and those forked
 * by any other thread (appended under the lock). Walked without a lock.
 *
 * <pre>
 * Implementation overview
 *
 * Each list is singly linked through TaskImpl.next; its head and links are volatile, so a
 * cancellation walk (which sets the group's flag, then reads them) and a fork (which links the
 * child, then starts it; the child checks the flag) cannot both miss each other. Finished
 * children are unlinked lazily by the list's writer, when they outnumber the live ones
 * (amortised O(1) per append), so a group that runs for days holds only its live children. An
 * unlinked node keeps its `next`, so a walk standing on it still reaches every later child; a
 * child appended after a walk passed sees the cancellation itself when it starts.
 *
 * `lock` guards the shared list's head/tail/size, and the group's failures (Group).
 * </pre>
 */
final class ChildList {
  private static final int SWEEP_SLACK = 64;

  /** Guards the shared list, and also the group's failures (one lock per group). */
  final ReentrantLock lock = new ReentrantLock();

  private final Chain owners = new Chain();
  private final Chain shared = new Chain();

  /** The first child forked by the owner, or null. */
  TaskImpl<?> ownerHead() {
    return owners.head;
  }

  /** The first child forked by another thread, or null. */
  TaskImpl<?> sharedHead() {
    return shared.head;
  }

  /**
   * Calls {@code action} for every child not yet finished, the owner's forks first, each list in
   * fork order. Without a lock: a child linked or finishing meanwhile may be missed or included.
   */
  void forEachLive(Consumer<TaskImpl<?>> action) {
    for (TaskImpl<?> t = owners.head; t != null; t = t.next) {
      if (!t.isFinished()) {
        action.accept(t);
      }
    }
    for (TaskImpl<?> t = shared.head; t != null; t = t.next) {
      if (!t.isFinished()) {
        action.accept(t);
      }
    }
  }

  /**
   * Appends {@code task}; {@code live} is about how many members are unfinished.
   *
   * @param byOwner whether the calling thread is the group's owner (the owners' list writer)
   */
  void append(TaskImpl<?> task, long live, boolean byOwner) {
    if (byOwner) {
      owners.append(task, live);
      return;
    }
    lock.lock();
    try {
      shared.append(task, live);
    } finally {
      lock.unlock();
    }
  }

  /** One list; its writer is the owner, or whoever holds the lock. */
  private static final class Chain {
    volatile TaskImpl<?> head;
    private TaskImpl<?> tail;
    private int size;

    void append(TaskImpl<?> task, long live) {
      if (tail == null) {
        head = task;
      } else {
        tail.next = task;
      }
      tail = task;
      if (++size > 2 * live + SWEEP_SLACK) {
        sweep();
      }
    }

    /** Unlinks finished children. */
    private void sweep() {
      TaskImpl<?> kept = null;
      int n = 0;
      for (TaskImpl<?> t = head; t != null; t = t.next) {
        if (t.isFinished()) {
          if (kept == null) {
            head = t.next;
          } else {
            kept.next = t.next;
          }
        } else {
          kept = t;
          n++;
        }
      }
      tail = kept;
      size = n;
    }
  }
}
