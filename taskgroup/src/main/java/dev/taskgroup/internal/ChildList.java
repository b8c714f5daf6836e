package dev.taskgroup.internal;

import java.util.concurrent.locks.ReentrantLock;

/**
 * A group's live children, in fork order: a doubly linked list through {@link TaskImpl#next} and
 * {@link TaskImpl#prev}. A child is appended when it is forked and unlinks itself when its work
 * ends, so the group never holds a finished child (nor, through it, a result or failure that
 * nobody else holds).
 *
 * <pre>
 * Implementation overview
 *
 * Writers (append, remove) hold `lock`; walkers (the cancellation walk, Scope.propagateFrom)
 * read `head` and each `next` without it. `head` and `next` are volatile, so a cancellation
 * walk (which sets the group's flag, then reads them) and a fork (which links the child, then
 * starts it; the child checks the flag) cannot both miss each other.
 *
 * remove(t) links t's neighbours to each other and then points t.next at t itself (and clears
 * t.prev): an unlinked task holds nothing of the list, so a Task handle kept by the user does not
 * keep later children (and their outcomes) reachable. A walker that reads a self-link is standing
 * on a child that has finished: it restarts from the head (see next()). Only children finishing
 * at that very moment cause a restart, and the walk's deliveries are idempotent.
 *
 * `lock` guards head/tail/prev links, and also the group's failures (Group): one lock per group.
 * Invariant: every task reachable from `head` has been forked (its thread started, or about to
 * be) and has not finished its work.
 * </pre>
 */
final class ChildList {
  /** Guards the list's links (not `next` reads), and also the group's failures. */
  final ReentrantLock lock = new ReentrantLock();

  /** The first live child, or null; written under the lock. */
  private volatile TaskImpl<?> head;
  /** The last live child, or null; under the lock. */
  private TaskImpl<?> tail;

  /** The first live child, or null. */
  TaskImpl<?> head() {
    return head;
  }

  /**
   * The child after {@code t} for a walker without the lock: its successor, or, when {@code t}
   * has been unlinked meanwhile, the current first child (the walk starts over; see overview).
   */
  TaskImpl<?> next(TaskImpl<?> t) {
    TaskImpl<?> n = t.next;
    return n == t ? head : n;
  }

  /** Appends a child about to start. */
  void append(TaskImpl<?> task) {
    lock.lock();
    try {
      TaskImpl<?> last = tail;
      task.prev = last;
      if (last == null) {
        head = task;
      } else {
        last.next = task;
      }
      tail = task;
    } finally {
      lock.unlock();
    }
  }

  /** Unlinks a child whose work has ended; called once, by the child's own thread. */
  void remove(TaskImpl<?> task) {
    lock.lock();
    try {
      assert task.next != task : "a child is unlinked once";
      TaskImpl<?> before = task.prev;
      TaskImpl<?> after = task.next;
      if (before == null) {
        head = after;
      } else {
        before.next = after;
      }
      if (after == null) {
        tail = before;
      } else {
        after.prev = before;
      }
      task.prev = null;
      task.next = task;
    } finally {
      lock.unlock();
    }
  }
}
