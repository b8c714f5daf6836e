package dev.taskgroup.bench;

import dev.taskgroup.Body;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * N children that each check in and then park until interrupted: the child of the cancel, memory
 * and one-million workloads (the performance targets of bench/RESULTS.md), the same for every
 * implementation.
 *
 * <p>A child records its thread (for the "all parked" check only), checks in, and then runs {@code
 * while (!Thread.currentThread().isInterrupted()) LockSupport.park();}. The last child to check in
 * unparks the waiter. {@link #awaitAllParked()} then waits until every recorded thread is in state
 * {@code WAITING}, so timing starts only once every child is really parked. No shared latch is used
 * for the parked children: interrupting many threads parked on one latch is quadratic.
 */
public final class ParkedChildren {
  private final int n;
  private final AtomicInteger slots = new AtomicInteger();
  private final AtomicInteger checkedIn = new AtomicInteger();
  private volatile Thread[] threads;
  private volatile Thread waiter;

  /** System.nanoTime() when the last child checked in. */
  private volatile long allCheckedInNanos;

  /** One shared body for every child: no per-child lambda. */
  private final Runnable child = this::runChild;

  private final Body body = this::runChild;

  public ParkedChildren(int n) {
    this.n = n;
    this.threads = new Thread[n];
  }

  /** The children's work, the same object for all of them. */
  public Runnable child() {
    return child;
  }

  /** The children's work as a taskgroup {@link Body}, the same object for all of them. */
  public Body body() {
    return body;
  }

  /** The number of children expected. */
  public int size() {
    return n;
  }

  private void runChild() {
    Thread me = Thread.currentThread();
    Thread[] ts = threads;
    if (ts != null) {
      ts[slots.getAndIncrement()] = me;
    }
    if (checkedIn.incrementAndGet() == n) {
      allCheckedInNanos = System.nanoTime();
      LockSupport.unpark(waiter);
    }
    while (!me.isInterrupted()) {
      LockSupport.park();
    }
  }

  /** Sets the thread that {@link #awaitAllCheckedIn()} will unpark; call before forking. */
  public void expectWaiter(Thread t) {
    waiter = t;
  }

  /**
   * Parks until every child checked in (the caller must have called {@link #expectWaiter} with
   * itself before the children were started).
   *
   * @return System.nanoTime() when the last child checked in
   */
  public long awaitAllCheckedIn() {
    while (checkedIn.get() < n) {
      LockSupport.park(this);
    }
    return allCheckedInNanos;
  }

  /**
   * Waits until every child checked in and every child's thread is {@code WAITING} (parked), then
   * forgets the threads (so that a memory measurement does not count the harness's array).
   */
  public void awaitAllParked() {
    awaitAllCheckedIn();
    Thread[] ts = threads;
    if (ts == null) {
      throw new IllegalStateException("awaitAllParked called twice");
    }
    for (Thread t : ts) {
      while (t.getState() != Thread.State.WAITING) {
        Thread.yield(); // the child is between check-in and park: let it run
      }
    }
    threads = null;
  }
}
