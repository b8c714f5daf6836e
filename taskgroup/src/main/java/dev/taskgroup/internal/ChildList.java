package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A group's members: their count, and its live children in fork order, a doubly linked list through
 * {@link TaskImpl#next} and {@link TaskImpl#prev}. A child is counted and appended in one step when
 * it is forked, and unlinked and uncounted in one step when it has finished, so the group never
 * holds a finished child (nor, through it, a result or failure that nobody else holds) for longer
 * than the child's last few instructions.
 *
 * <pre>
 * Implementation overview
 *
 * One word, `state` = STARTED | LOCKED | count, where count is the group's unfinished members:
 * the body (1 while it runs), every child, every cancel-hook action admitted (Group's overview).
 * 0 = not started; STARTED with count 0 = closed, for good: nothing is admitted at count 0.
 *
 * LOCKED makes the word a spin lock too: every change of the count, and every change of the
 * links, happens while holding it, and the sections are a few writes that never block. Taking it
 * is a CAS, which also admits a new member (admitAndAppend) or refuses a closed group; releasing
 * it is one store of the new count, with LOCKED clear. So a fork costs one atomic instruction for
 * both the count and the link, and so does a child's end.
 *
 * The releasing store is a release store (no fence), except the one that takes the count to 0:
 * that one is volatile. The member that takes the count to 0 then unparks the owner, and
 * LockSupport.unpark of a virtual thread first reads the thread's park permit and returns if it is
 * set, with no fence of its own. After a release store that read could pass the store (store-load
 * reordering): it sees an old permit that the owner is just consuming, the owner re-reads the count
 * before our store reaches it, parks again, and no unpark ever comes. (Measured: about one lost
 * wake-up per million groups on two carriers, JDK 25.0.3.) A volatile store orders the count before
 * the permit read.
 *
 * Links are written with release stores, and walkers (the cancellation walk, Scope.propagateFrom)
 * read them without the lock, with acquire (volatile) reads. A cancellation walk and a fork must
 * not both miss each other: the walk sets a flag and then looks for the group's children; the fork
 * links a child and then starts it, and the child's first act is to read that flag. With plain
 * links this needs a full fence on each side (the store-load pattern). The walk takes that fence
 * off the fork: it reads its first child under the lock (firstForWalk), after setting the flag.
 * Either the walk took the lock after the fork's section, and then sees the child (the fork's
 * release happens-before the walk's acquire), or before it, and then the fork's own acquire of the
 * lock comes after the walk released it, so the flag happens-before the thread start and the child
 * sees it. One lock round per group per walk, instead of one fence per fork.
 *
 * removeAndLeave(t) links t's neighbours to each other and then points t.next at t itself (and
 * clears t.prev): an unlinked task holds nothing of the list, so a Task handle kept by the user
 * does not keep later children (and their outcomes) reachable. A walker that reads a self-link is
 * standing on a child that has finished: it restarts from the head (see next()). Only children
 * finishing at that very moment cause a restart, and the walk's deliveries are idempotent.
 *
 * TaskTree's capture and the stuck warning walk the list the same way, through forEachLive,
 * which remembers the children it has seen so that a walk that starts over reports none twice.
 *
 * LOCKED guards the count, head, tail and every prev and next write.
 * Invariants: every task reachable from `head` has been forked (its thread started, or about to
 * be) and is counted; a task reachable from `head` that is FINISHED is being unlinked by its own
 * thread. The count never grows from 0.
 * </pre>
 */
final class ChildList {
  /** Set once the group's run has begun. */
  private static final long STARTED = 1L << 62;

  /** Set while a thread holds the list (see the overview). */
  private static final long LOCKED = 1L << 61;

  private static final long COUNT_MASK = LOCKED - 1;

  /** STARTED | LOCKED | count; see the overview. */
  private volatile long state;

  /** The first live child, or null; written under the lock (release stores). */
  private volatile TaskImpl<?> head;

  /** The last live child, or null; under the lock. */
  private TaskImpl<?> tail;

  // ---- the count ----------------------------------------------------------------------------

  /** Starts the group with one member, its body; false if it had started before. */
  boolean open() {
    for (int round = 0; ; ) {
      long s = state;
      if ((s & ~LOCKED) != 0L) {
        return false;
      }
      if (s != 0L) {
        ThreadState.waitBriefly(round++); // no walk reaches a group before its run: never seen
      } else if (STATE.compareAndSet(this, 0L, STARTED | 1L)) {
        return true;
      }
    }
  }

  /** Whether the group has started. */
  boolean started() {
    return (state & STARTED) != 0L;
  }

  /** Whether the group has closed: started, and every member has left. */
  boolean closed() {
    long s = state;
    return (s & STARTED) != 0L && (s & COUNT_MASK) == 0L;
  }

  /** The members that have not left (0 before the start and once closed). */
  long unfinished() {
    return state & COUNT_MASK;
  }

  /**
   * Admits a member that is not a child (a cancel-hook action).
   *
   * @return the unfinished members before it, or -1 if the group is not open
   */
  long admit() {
    long s = lock(true);
    if (s < 0L) {
      return -1L;
    }
    unlock(s + 1L);
    return s & COUNT_MASK;
  }

  /**
   * A member that is not a child leaves (the body, a cancel-hook action).
   *
   * @return the members still unfinished; at 0 the caller wakes the owner
   */
  long leave() {
    long s = lock(false);
    unlock(s - 1L);
    return (s - 1L) & COUNT_MASK;
  }

  // ---- the children -------------------------------------------------------------------------

  /**
   * Admits a child about to start and appends it, in one step. Release stores, no fence: a
   * cancellation walk that misses the child makes sure the child sees the cancellation instead
   * (firstForWalk, see the overview).
   *
   * @return the unfinished members before it, or -1 if the group is not open (not appended)
   */
  long admitAndAppend(TaskImpl<?> task) {
    long s = lock(true);
    if (s < 0L) {
      return -1L;
    }
    TaskImpl<?> last = tail;
    task.prev = last;
    if (last == null) {
      HEAD.setRelease(this, task);
    } else {
      TaskImpl.NEXT.setRelease(last, task);
    }
    tail = task;
    unlock(s + 1L);
    return s & COUNT_MASK;
  }

  /**
   * Unlinks a child that has finished and counts it out, in one step; called once, by the child's
   * own thread, as its last act on the group. Release stores, as append's: a walker that reads a
   * stale link reaches this child (finished: skipped) or its self-link (the walk starts over), and
   * never misses a live child, which only append links in.
   *
   * @return the members still unfinished; at 0 the caller wakes the owner
   */
  long removeAndLeave(TaskImpl<?> task) {
    long s = lock(false);
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
    unlock(s - 1L);
    return (s - 1L) & COUNT_MASK;
  }

  /**
   * The first live child, for a cancellation walk that has just set its flag: read under the lock,
   * so that a child the walk misses sees the flag (see the overview).
   */
  TaskImpl<?> firstForWalk() {
    long s = lock(false);
    TaskImpl<?> first = head;
    // Released by a volatile field write, not unlock(): a call can throw StackOverflowError (a
    // cancel() called with nearly no stack left, its VarHandle store not yet compiled), which left
    // the lock held for good: every later fork, end and walk of the group spun for ever. A field
    // write needs no frame. Once per group per walk, the fence it costs does not matter.
    state = s;
    return first;
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

  // ---- the lock -----------------------------------------------------------------------------

  /**
   * Takes the lock and, if {@code admitting}, counts one more member in the same CAS.
   *
   * @return the state before, without LOCKED; -1 (lock not taken) if admitting and the group is not
   *     open
   */
  private long lock(boolean admitting) {
    long s = state;
    if ((s & LOCKED) == 0L
        && (!admitting || (s & COUNT_MASK) != 0L)
        && STATE.compareAndSet(this, s, s | LOCKED)) {
      return s;
    }
    return lockContended(admitting);
  }

  /**
   * {@link #lock}'s loop, out of line: the fast path above is inlined into a child's run, whose
   * compiled frame stays on the stack of every parked child (heap memory), so it is kept small.
   */
  private long lockContended(boolean admitting) {
    for (int round = 0; ; ) {
      long s = state;
      if ((s & LOCKED) != 0L) {
        ThreadState.waitBriefly(round++);
      } else if (admitting && (s & COUNT_MASK) == 0L) {
        return -1L;
      } else if (STATE.compareAndSet(this, s, s | LOCKED)) {
        return s;
      }
    }
  }

  /**
   * Releases the lock with the count of {@code next} (LOCKED clear). A release store, but a
   * volatile one when the count reaches 0: see the overview.
   */
  private void unlock(long next) {
    if ((next & COUNT_MASK) == 0L) {
      state = next;
    } else {
      STATE.setRelease(this, next);
    }
  }

  private static final VarHandle STATE;
  private static final VarHandle HEAD;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      STATE = l.findVarHandle(ChildList.class, "state", long.class);
      HEAD = l.findVarHandle(ChildList.class, "head", TaskImpl.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
