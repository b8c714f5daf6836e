package dev.taskgroup.internal;

import java.util.concurrent.locks.ReentrantLock;

/**
 * A group's children in fork order: appended under a lock, walked without one.
 *
 * <pre>
 * Implementation overview
 *
 * A singly linked list through TaskImpl.next. append() and sweep() run under `lock` (never
 * held across anything that blocks); cancellation walks from `head` without it. Finished
 * children are unlinked lazily, when they outnumber the live ones (amortised O(1) per append),
 * so a group that runs for days holds only its live children. An unlinked node keeps its
 * `next`, so a walk standing on it still reaches every later child; a child appended after a
 * walk began sees the cancellation itself when it starts (TaskImpl.run checks before running).
 * </pre>
 */
final class ChildList {
  private static final java.lang.invoke.VarHandle HEAD;

  static {
    try {
      HEAD =
          java.lang.invoke.MethodHandles.lookup()
              .findVarHandle(ChildList.class, "head", TaskImpl.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private static final int SWEEP_SLACK = 64;

  /** Guards the list's own fields, and also the group's failures (one lock per group). */
  final ReentrantLock lock = new ReentrantLock();
  /** First child; written under lock, read by walks. */
  private volatile TaskImpl<?> head;
  /** Last linked child; under lock. */
  private TaskImpl<?> tail;
  /** Linked children, finished or not; under lock. */
  private int size;

  TaskImpl<?> head() {
    return head;
  }

  /** Appends {@code task}; {@code live} is about how many children are unfinished. */
  void append(TaskImpl<?> task, long live) {
    lock.lock();
    try {
      // Release stores: a cancellation walk that reads the link sees a fully built child
      // (its own start check covers a walk that misses it); no full fence per fork.
      if (tail == null) {
        HEAD.setRelease(this, task);
      } else {
        TaskImpl.NEXT.setRelease(tail, task);
      }
      tail = task;
      if (++size > 2 * live + SWEEP_SLACK) {
        sweep();
      }
    } finally {
      lock.unlock();
    }
  }

  /** Unlinks finished children; under lock. */
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
