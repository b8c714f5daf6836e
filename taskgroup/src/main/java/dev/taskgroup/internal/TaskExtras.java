package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * What few tasks have, kept out of the task itself (every forked child pays for a field, and most
 * tasks use none of these). Made by CAS on first use (TaskImpl.extras()), or with the task when it
 * has an explicit name.
 *
 * <pre>
 * Fields:
 *   name, replacedHandler, startGroup
 *                          written before the thread starts (name also by the task's thread as
 *                          it finishes, before it drops the thread with release)
 *   future                 toCompletableFuture()'s, by CAS; see TaskFuture
 *   judgedFailures         the task's thread only (ThreadState.judgedFailures)
 *   reason                 the task root's cancel reason, by CAS once from null, any thread
 *   waiters                threads in get(), a Treiber stack (TaskImpl's overview)
 *   hooks                  cancel hooks on the task's root scope; written by the task's thread,
 *                          which drops them when it completes (they can no longer fire)
 *   placeTicket            under maxConcurrency, a child forked from a sibling: the turn its fork
 *                          took (Places), written before the thread starts, cleared by the task's
 *                          thread as it waits for it or by whoever gives it up (releasePlace)
 * </pre>
 */
final class TaskExtras {
  /**
   * The explicit name, or null: then the thread's name; the task's thread keeps that here too as it
   * finishes and drops the thread (TaskImpl.forgetThread).
   */
  String name;

  /** The handler the thread factory set on the thread, which the task replaced; or null. */
  Thread.UncaughtExceptionHandler replacedHandler;

  /** A start() child's group (TaskImpl.group()); null for any other task. */
  Group startGroup;

  /**
   * The ticket for the place a child forked from a sibling waits for on its own thread (Forks,
   * Places); set by the forking thread before the child's thread starts, cleared by the child's
   * thread once the ticket is granted or given up.
   */
  Places.Ticket placeTicket;

  /** The future of toCompletableFuture(), by CAS; see TaskFuture. */
  volatile TaskFuture<?> future;

  /**
   * See ThreadState.judgedFailures(); only the task's thread uses it. Its entries are weak: a Task
   * held after it finished keeps its outcome, not an exception its work caught and handled; and the
   * table itself is dropped as the task completes (TaskImpl.complete).
   */
  JudgedFailures judgedFailures;

  /** See Scope.reason(); CAS once from null, by any thread. */
  volatile CancelReason reason;

  /** Threads waiting in get(), a Treiber stack; see the overview. */
  volatile Waiter waiters;

  /** Cancel hooks registered on the task's root scope; see Scope.hooks(). */
  volatile CancelHook hooks;

  TaskExtras(String name) {
    this.name = name;
  }

  /**
   * Pushes a waiter in get(). The waiter re-checks the task's state after this: the push and the
   * completer's state change are both atomic, so either the completer sees the waiter or the waiter
   * sees the state.
   */
  void pushWaiter(Waiter node) {
    Waiter head;
    do {
      head = waiters;
      node.next = head;
    } while (!WAITERS.compareAndSet(this, head, node));
  }

  /**
   * The task's outcome was just set: wakes every waiter in get(), then completes its future. In
   * that order: completing the future runs its dependent stages on this thread, user code that may
   * block, and even wait for a thread parked in get() (as FutureTask wakes its waiters before
   * done() runs). Called by whoever set the outcome and again by the task's thread as it finishes
   * (see TaskImpl.complete); a second call does nothing more (the stack is taken once, the future
   * completes once).
   */
  void outcomeSet() {
    if (waiters != null) { // else a waiter that pushes itself later sees the state before it parks
      Waiter w = (Waiter) WAITERS.getAndSet(this, null);
      while (w != null) {
        Thread t = w.thread;
        if (t != null) {
          LockSupport.unpark(t);
        }
        w = w.next;
      }
    }
    TaskFuture<?> f = future;
    if (f != null) {
      f.taskDone();
    }
  }

  /**
   * Unlinks the waiters whose thread stopped waiting (thread set to null). Lock-free: a node is
   * unlinked by pointing its live predecessor past it, or the head past it by CAS; when the
   * predecessor turns out to have been abandoned meanwhile, or the CAS fails, the walk starts over
   * (as FutureTask does). The completer's getAndSet of the whole stack may race it: unpark(null) of
   * an abandoned node is harmless, and a node unlinked from a stack already taken is garbage.
   */
  void removeAbandonedWaiters() {
    retry:
    for (; ; ) {
      Waiter pred = null;
      for (Waiter q = waiters; q != null; ) {
        Waiter next = q.next;
        if (q.thread != null) {
          pred = q;
        } else if (pred != null) {
          pred.next = next;
          if (pred.thread == null) {
            continue retry; // the predecessor left too: its link may be stale
          }
        } else if (!WAITERS.compareAndSet(this, q, next)) {
          continue retry;
        }
        q = next;
      }
      return;
    }
  }

  /** A thread waiting in get(); {@code thread} is null once it stopped waiting. */
  static final class Waiter {
    volatile Thread thread;
    volatile Waiter next;

    Waiter(Thread thread) {
      this.thread = thread;
    }
  }

  static final VarHandle FUTURE;
  static final VarHandle REASON;
  static final VarHandle WAITERS;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      FUTURE = l.findVarHandle(TaskExtras.class, "future", TaskFuture.class);
      REASON = l.findVarHandle(TaskExtras.class, "reason", CancelReason.class);
      WAITERS = l.findVarHandle(TaskExtras.class, "waiters", Waiter.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
