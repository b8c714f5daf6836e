package dev.taskgroup.internal;

import dev.taskgroup.Body;
import dev.taskgroup.Startable;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BiFunction;

/**
 * The state behind one task group: its cancel scope (inherited), its children, its failures, and
 * the owner's run from start to close.
 *
 * <pre>
 * Implementation overview
 *
 * `live` is one atomic long: STARTED | count, where count is the body (1 while it runs) plus
 * every child thread that has not finished. 0 = not started; STARTED with count 0 = closed.
 * fork increments it by CAS unless the group is closed; a child decrements it as its very last
 * act (childDone), and the one that takes it to 0 unparks the owner. Because the body and every
 * child count, a child can always fork (its own share keeps the group open), and once the count
 * is 0 nothing can reopen it.
 *
 * Children form a singly linked list in fork order (head, TaskImpl.next), appended under
 * `lock`. Finished children are unlinked lazily by sweep(), under the lock, when they outnumber
 * the live ones (amortised O(1) per fork, so a long-running group does not grow). Cancellation
 * walks the list without the lock: an unlinked node keeps its `next`, so a walk standing on it
 * still reaches every later child; a child appended after the walk began sees the cancellation
 * itself when it starts.
 *
 * `lock` guards head/tail/listSize and `failures`. It is never held while calling user code or
 * while blocking on anything but itself.
 *
 * The owner's run (run):
 *   1. claim, enter the scope, run the body;
 *   2. classify the body's outcome: cancellation / outside interrupt / failure;
 *   3. beginJoin (the library stops interrupting the owner), give up the body's share and park
 *      until the count is 0; an interrupt seen here is from outside: cancel the children;
 *   4. endJoin, exit the scope, and report by the precedence of SPEC section 2.
 * </pre>
 */
public final class Group extends Scope {
  private static final long STARTED = 1L << 62;
  private static final long COUNT_MASK = STARTED - 1;
  private static final int SWEEP_SLACK = 64;

  /** Returned by {@link #run} when the group failed: see {@link #failures()}. */
  public static final Object FAILED = new Object();

  private static final ThreadFactory VIRTUAL_THREADS = Thread.ofVirtual().factory();

  private final GroupConfig config;
  private final ThreadFactory factory;

  /** STARTED | count of body and unfinished children; see the overview. */
  private volatile long live;
  /** The thread running run(); set once before the body starts. */
  private volatile Thread owner;
  /** Set by the owner only: it was interrupted from outside. */
  private boolean ownerInterrupted;

  private final ReentrantLock lock = new ReentrantLock();
  /** First child in fork order; written under lock, read by cancellation walks. */
  private volatile TaskImpl<?> head;
  /** Last child still linked; under lock. */
  private TaskImpl<?> tail;
  /** Children linked, finished or not; under lock. */
  private int listSize;
  /** Failures in order; under lock. */
  private final List<Throwable> failures = new ArrayList<>(2);

  public Group(GroupConfig config) {
    super(0);
    this.config = config;
    this.factory = config.factory() != null ? config.factory() : VIRTUAL_THREADS;
    if (config.maxConcurrency() != GroupConfig.UNBOUNDED) {
      throw new UnsupportedOperationException("maxConcurrency is not implemented yet");
    }
    if (config.policy() == dev.taskgroup.FailurePolicy.COLLECT) {
      throw new UnsupportedOperationException("FailurePolicy.COLLECT is not implemented yet");
    }
    if (config.timeout() != null) {
      Deadlines.setTimeout(this, config.timeout());
    }
  }

  /** The configured name, or one made from the identity hash (computed when asked). */
  public String name() {
    String n = config.name();
    return n != null ? n : "taskgroup-" + Integer.toHexString(System.identityHashCode(this));
  }

  @Override
  public String describe() {
    return "group '" + name() + "'";
  }

  TaskImpl<?> firstChild() {
    return head;
  }

  /** The failures, in the order they happened (after run returned {@link #FAILED}). */
  public List<Throwable> failures() {
    lock.lock();
    try {
      return List.copyOf(failures);
    } finally {
      lock.unlock();
    }
  }

  // ---- the owner ------------------------------------------------------------------------

  /**
   * Runs the group with a {@link Body} or a {@link Callable}.
   *
   * @return the body's result (null for a Body or when the body was cancelled), or {@link
   *     #FAILED}
   * @throws InterruptedException when the owner was interrupted from outside, or a cancelled
   *     scope above the group is visible
   */
  public Object run(Object body) throws InterruptedException {
    if (!LIVE.compareAndSet(this, 0L, STARTED | 1L) || !claim()) {
      throw new IllegalStateException(describe() + " has already run: a group runs once");
    }
    owner = Thread.currentThread();
    ThreadState ts = enter();
    Object result = null;
    Throwable thrown = null;
    try {
      if (body instanceof Body b) {
        b.run();
      } else {
        result = ((Callable<?>) body).call();
      }
    } catch (Throwable t) {
      thrown = t;
    }
    if (thrown != null) {
      if (effectivelyCancelled(this) && Cancellation.isCancellation(thrown, ts)) {
        result = null; // the body was cut short by a cancellation
      } else if (thrown instanceof InterruptedException) {
        ownerInterrupted(); // not cancelled: someone else interrupted the owner
      } else {
        childFailed(null, thrown);
        cancelChildren(CancelReason.Kind.FAILURE, String.valueOf(thrown));
      }
    }
    if (ts.beginJoin()) {
      ownerInterrupted();
    }
    if ((((long) LIVE.getAndAdd(this, -1L) - 1L) & COUNT_MASK) != 0L) {
      awaitChildren();
    }
    ts.endJoin();
    boolean aboveVisible = cancelledAboveVisible();
    int f = exit(ts);
    if (hasFailures()) {
      if (ownerInterrupted) {
        Thread.currentThread().interrupt(); // an outside interrupt stays set
      }
      return FAILED;
    }
    if (ownerInterrupted) {
      Thread.interrupted();
      throw new InterruptedException(describe() + ": owner interrupted");
    }
    if (aboveVisible) {
      throw thrown instanceof InterruptedException ie
          ? ie
          : new CancelledException(cancelledAbove(parent), thrown);
    }
    if ((f & CANCEL_CALLED) != 0) {
      setFlags(CAUGHT);
    }
    return result;
  }

  private void awaitChildren() {
    while ((live & COUNT_MASK) != 0L) {
      LockSupport.park(this);
      if (Thread.interrupted()) {
        ownerInterrupted();
      }
    }
  }

  private void ownerInterrupted() {
    ownerInterrupted = true;
    cancelChildren(CancelReason.Kind.OWNER_INTERRUPTED, "owner interrupted");
  }

  private void cancelChildren(CancelReason.Kind kind, String text) {
    cancel(CancelReason.of(kind, text), CANCEL_INTERNAL);
  }

  private boolean hasFailures() {
    lock.lock();
    try {
      return !failures.isEmpty();
    } finally {
      lock.unlock();
    }
  }

  /** Runs {@code work} as a child and waits for its readiness signal (SPEC item 17). */
  public <T> T start(
      Startable<T> work, BiFunction<String, List<Throwable>, RuntimeException> wrapChecked)
      throws InterruptedException {
    throw new UnsupportedOperationException("start() is not implemented yet");
  }

  // ---- children ---------------------------------------------------------------------------

  /**
   * Forks {@code work} (a Callable or a Body) as a new child.
   *
   * @throws IllegalStateException if the group has not started or has finished
   * @throws RejectedExecutionException if the thread factory fails
   */
  public <T> TaskImpl<T> fork(Object work, String taskName) {
    long s = live;
    if (s == 0L) {
      throw new IllegalStateException(
          "cannot fork into " + describe() + " before it runs: fork from its body or children");
    }
    if ((s & COUNT_MASK) == 0L) {
      throw new IllegalStateException("cannot fork into " + describe() + ": it has finished");
    }
    if (effectivelyCancelled(this)) {
      return TaskImpl.cancelledBeforeStart(this, taskName);
    }
    TaskImpl<T> task = new TaskImpl<>(this, work, taskName);
    Thread thread = newThread(task, taskName);
    task.thread = thread;
    register(task);
    try {
      thread.start();
    } catch (Throwable e) {
      task.abandon();
      childDone(task);
      throw new RejectedExecutionException(describe() + " could not start a thread", e);
    }
    return task;
  }

  private Thread newThread(Runnable task, String taskName) {
    Thread thread;
    try {
      thread = factory.newThread(task);
    } catch (Throwable e) {
      throw new RejectedExecutionException("the thread factory of " + describe() + " threw", e);
    }
    if (thread == null) {
      throw new RejectedExecutionException(
          "the thread factory of " + describe() + " returned null");
    }
    if (taskName != null) {
      thread.setName(taskName);
    }
    return thread;
  }

  /** Counts the child in and appends it, or throws if the group has closed meanwhile. */
  private void register(TaskImpl<?> task) {
    lock.lock();
    try {
      long s;
      do {
        s = live;
        if ((s & COUNT_MASK) == 0L) {
          throw new IllegalStateException("cannot fork into " + describe() + ": it has finished");
        }
      } while (!LIVE.compareAndSet(this, s, s + 1L));
      if (tail == null) {
        head = task;
      } else {
        tail.next = task;
      }
      tail = task;
      if (++listSize > 2 * (s & COUNT_MASK) + SWEEP_SLACK) {
        sweep();
      }
    } finally {
      lock.unlock();
    }
  }

  /** Unlinks finished children; under lock. Unlinked nodes keep `next` for running walks. */
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
    listSize = n;
  }

  /** A child (or, with task null, the body) failed: keep the failure, cancel the rest. */
  void childFailed(TaskImpl<?> task, Throwable failure) {
    lock.lock();
    try {
      failures.add(failure);
    } finally {
      lock.unlock();
    }
    if (task != null) {
      cancelChildren(CancelReason.Kind.FAILURE, task.describe() + " failed: " + failure);
    }
  }

  /** The child's thread is done with everything; its very last call into the group. */
  void childDone(TaskImpl<?> task) {
    long after = (long) LIVE.getAndAdd(this, -1L) - 1L;
    if ((after & COUNT_MASK) == 0L) {
      LockSupport.unpark(owner);
    }
  }

  private static final VarHandle LIVE;

  static {
    try {
      LIVE = MethodHandles.lookup().findVarHandle(Group.class, "live", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
