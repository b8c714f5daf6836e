package dev.taskgroup.internal;

import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A group's places under {@code maxConcurrency}: a FIFO of tickets.
 *
 * <pre>
 * Implementation overview
 *
 * Why not a fair Semaphore: its queue is ordered by the moment each thread calls acquire(). A
 * fork from inside a child must not wait, so the new child asks for its place on its own thread,
 * and threads started one after the other reach acquire() in any order: forks made in order by
 * one child ran out of order. Here the place in the queue is taken by the forking thread itself,
 * without waiting (take), and the waiting (await), on whichever thread, keeps that turn.
 *
 * State, all under the lock: free (places nobody holds) and the queue of tickets not yet
 * granted, doubly linked (a mass cancellation withdraws its tickets in any order, each in O(1)).
 * take() grants at once if a place is free and nobody is queued, else queues at the tail.
 * release() hands the place to the head of the queue (a handoff: a later take() cannot barge
 * in), or counts it free. A ticket whose holder stops waiting is withdrawn; one that was granted
 * meanwhile holds the place, and its holder gives it back with release() (cancel() does either).
 * A ticket granted at once is a shared one (GRANTED_AT_ONCE: nothing to allocate on the
 * uncontended path). A fork from outside the group waits with the group in view: the group's
 * cancellation does not interrupt it, so the cancellation walk wakes every waiter (wakeWaiters),
 * and a fork that finds its group cancelled withdraws its ticket. A ticket is GRANTED by the
 * lock holder and read without the lock by its waiter: the waiter publishes itself (waiter)
 * before it looks at the state (and at the group), and the granter sets the state (the walk marks
 * the group cancelled) before it reads waiter, so one of them sees the other and no wake-up is
 * lost.
 * </pre>
 */
final class Places {
  /** A place asked for: queued, then granted (it holds the place) or withdrawn. */
  static final class Ticket {
    /** QUEUED, GRANTED or WITHDRAWN; written under the lock. */
    volatile int state;

    /** The thread to unpark on a grant; set by the waiting thread before it parks. */
    volatile Thread waiter;

    /** Neighbours in the queue while QUEUED; guarded by the lock. */
    Ticket prev;

    Ticket next;

    boolean granted() {
      return state == GRANTED;
    }
  }

  static final int QUEUED = 0;
  static final int GRANTED = 1;
  static final int WITHDRAWN = 2;

  private final ReentrantLock lock = new ReentrantLock();

  /** The queue, a doubly linked list so that a ticket withdrawn anywhere leaves in O(1). */
  private Ticket head;

  private Ticket tail;

  private int queued;
  private int free;

  Places(int places) {
    this.free = places;
  }

  /**
   * The ticket of every take() granted at once: shared, since a granted ticket is never changed
   * (withdraw leaves it alone, and nobody waits on it), so that a fork finding a free place
   * allocates nothing here.
   */
  private static final Ticket GRANTED_AT_ONCE = new Ticket();

  static {
    GRANTED_AT_ONCE.state = GRANTED;
  }

  /** A ticket, granted at once if a place is free and nobody waits, else queued. Never waits. */
  Ticket take() {
    lock.lock();
    try {
      if (free > 0 && head == null) {
        free--;
        return GRANTED_AT_ONCE;
      }
      Ticket t = new Ticket();
      t.prev = tail;
      if (tail == null) {
        head = t;
      } else {
        tail.next = t;
      }
      tail = t;
      queued++;
      return t;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits until {@code t} is granted, or {@code group} (if not null) is cancelled: then the ticket
   * is withdrawn and false returned ({@link #wakeWaiters} wakes the thread). If the thread is
   * interrupted first, withdraws the ticket and throws (the status cleared, as a JDK wait does). If
   * the place came first, keeps it and returns true (with the status set if interrupted).
   */
  boolean await(Ticket t, Scope group) throws InterruptedException {
    if (t.granted()) {
      return true;
    }
    t.waiter = Thread.currentThread(); // before looking at the group: see wakeWaiters
    while (!t.granted()) {
      if (Thread.interrupted()) {
        if (withdraw(t)) {
          throw new InterruptedException();
        }
        Thread.currentThread().interrupt(); // the place came first: the interrupt stays
        return true;
      }
      if (group != null && Scope.effectivelyCancelled(group)) {
        // Withdrawn; or granted meanwhile: the place came first and is kept. Not a park then:
        // the grant's unpark may have been taken by the lock's own wait in withdraw (a park
        // returns for any earlier unpark), and nothing else would come.
        return !withdraw(t);
      }
      LockSupport.park(this);
    }
    return true;
  }

  /**
   * Wakes every thread waiting for a ticket, so that each looks again: called by the cancellation
   * walk of the group. A waiter outside the group is not interrupted by that walk, and a fork into
   * a cancelled group starts nothing, so it stops waiting. The same Dekker pair as a grant's: the
   * walk marks the group cancelled and then reads each waiter here (under the lock); the waiter
   * publishes itself and then looks at the group, so one of them sees the other.
   */
  void wakeWaiters() {
    lock.lock();
    try {
      for (Ticket t = head; t != null; t = t.next) {
        Thread w = t.waiter;
        if (w != null) {
          LockSupport.unpark(w);
        }
      }
    } finally {
      lock.unlock();
    }
  }

  /** Parks until {@code t} is granted or the thread is unparked or interrupted. */
  void parkFor(Ticket t) {
    t.waiter = Thread.currentThread();
    if (!t.granted()) {
      LockSupport.park(this);
    }
  }

  /**
   * Withdraws {@code t} from the queue: true if it was still waiting (it never held the place);
   * false if it was granted (its holder must give the place back with {@link #release}).
   */
  boolean withdraw(Ticket t) {
    lock.lock();
    try {
      if (t.state == GRANTED) {
        return false;
      }
      if (t.state == QUEUED) {
        unlink(t);
        t.state = WITHDRAWN;
      }
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** Gives up {@code t} whatever it came to: withdrawn if waiting, its place given back if held. */
  void cancel(Ticket t) {
    if (!withdraw(t)) {
      release();
    }
  }

  /** Gives a place back: to the first ticket waiting, if any. */
  void release() {
    Ticket next;
    lock.lock();
    try {
      next = head;
      if (next == null) {
        free++;
        return;
      }
      unlink(next);
      next.state = GRANTED;
    } finally {
      lock.unlock();
    }
    Thread w = next.waiter;
    if (w != null) {
      LockSupport.unpark(w);
    }
  }

  /** Takes a queued ticket out of the queue; under the lock. */
  private void unlink(Ticket t) {
    Ticket p = t.prev;
    Ticket n = t.next;
    if (p == null) {
      head = n;
    } else {
      p.next = n;
    }
    if (n == null) {
      tail = p;
    } else {
      n.prev = p;
    }
    t.prev = null;
    t.next = null;
    queued--;
  }

  /** The places nobody holds (for tests and diagnostics). */
  int availablePermits() {
    lock.lock();
    try {
      return free;
    } finally {
      lock.unlock();
    }
  }

  /** The tickets waiting (for tests and diagnostics). */
  int getQueueLength() {
    lock.lock();
    try {
      return queued;
    } finally {
      lock.unlock();
    }
  }
}
