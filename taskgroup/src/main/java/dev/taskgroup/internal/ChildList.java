package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A group's live children, in fork order: a doubly linked list through {@link TaskImpl#next} and
 * {@link TaskImpl#prev}. A child is appended when it is forked and unlinks itself when its work
 * ends, so the group never holds a finished child (nor, through it, a result or failure that nobody
 * else holds).
 *
 * <pre>
 * Implementation overview
 *
 * Writers (append, remove) hold `locked`, a spin lock: its sections are a few writes and never
 * block, and releasing it needs no fence (a ReentrantLock's release is a volatile write: two
 * more fences per child on the fork/join path). Walkers (the cancellation walk, Scope.propagateFrom)
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
 * TaskTree's capture and the stuck warning walk the list the same way, through forEachLive,
 * which remembers the children it has seen so that a walk that starts over reports none twice.
 *
 * `locked` guards head, tail and every prev and next write.
 * Invariant: every task reachable from `head` has been forked (its thread started, or about to
 * be) and has not finished its work.
 * </pre>
 */
final class ChildList {
  /** 1 while a writer holds the list; see the overview. */
  private volatile int locked;

  /** The first live child, or null; written under the lock. */
  private volatile TaskImpl<?> head;

  /** The last live child, or null; under the lock. */
  private TaskImpl<?> tail;

  /**
   * The group's member count (STARTED | count), kept here rather than on the Group: see Group's
   * overview. Only Group reads and writes it.
   */
  volatile long members;

  /** The first live child, or null. */
  TaskImpl<?> head() {
    return head;
  }

  /**
   * Calls {@code action} for every live child, in fork order, without the lock (for TaskTree and
   * the stuck warning): a child forked or finishing meanwhile may be missed or included, none twice
   * (a walk that starts over, see {@link #next}, skips the children it has seen).
   */
  void forEachLive(Consumer<TaskImpl<?>> action) {
    Set<TaskImpl<?>> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    for (TaskImpl<?> t = head; t != null; t = next(t)) {
      if (seen.add(t) && !t.isFinished()) {
        action.accept(t);
      }
    }
  }

  /**
   * The child after {@code t} for a walker without the lock: its successor, or, when {@code t} has
   * been unlinked meanwhile, the current first child (the walk starts over; see overview).
   */
  TaskImpl<?> next(TaskImpl<?> t) {
    TaskImpl<?> n = t.next;
    return n == t ? head : n;
  }

  /** Appends a child about to start. */
  void append(TaskImpl<?> task) {
    lock();
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
      unlock();
    }
  }

  /**
   * Unlinks a child whose work has ended; called once, by the child's own thread. Its writes are
   * release writes, not volatile ones (two fewer fences per child): a walker that reads a stale
   * link reaches this child (finished: skipped) or its self-link (the walk starts over), and never
   * misses a live child, which only append links in.
   */
  void remove(TaskImpl<?> task) {
    lock();
    try {
      assert task.next != task : "a child is unlinked once";
      TaskImpl<?> before = task.prev;
      TaskImpl<?> after = task.next;
      if (before == null) {
        HEAD.setRelease(this, after);
      } else {
        TaskImpl.NEXT.setRelease(before, after);
      }
      if (after == null) {
        tail = before;
      } else {
        after.prev = before;
      }
      task.prev = null;
      TaskImpl.NEXT.setRelease(task, task);
    } finally {
      unlock();
    }
  }

  private void lock() {
    if (!LOCKED.compareAndSet(this, 0, 1)) {
      for (int round = 0; locked != 0 || !LOCKED.compareAndSet(this, 0, 1); round++) {
        ThreadState.waitBriefly(round);
      }
    }
  }

  private void unlock() {
    LOCKED.setRelease(this, 0);
  }

  private static final VarHandle LOCKED;
  private static final VarHandle HEAD;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      LOCKED = l.findVarHandle(ChildList.class, "locked", int.class);
      HEAD = l.findVarHandle(ChildList.class, "head", TaskImpl.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
