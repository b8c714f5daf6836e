package dev.taskgroup.internal;

import dev.taskgroup.Startable;
import dev.taskgroup.internal.clock.LibraryClock;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.LockSupport;

/**
 * Starting children: {@code fork} and the {@code start} handshake, including the wait for a place
 * under {@code maxConcurrency}.
 *
 * <pre>
 * Places (maxConcurrency): a FIFO of tickets (Places), so waiting forks are served in the order
 * they were made. A fork from the owner or from outside the group waits for a place before the
 * child exists (backpressure). A fork from inside one of the group's own children must not wait:
 * that child holds a place, and with every place held by children that fork, nobody would ever
 * free one. Such a fork takes its ticket at once, on the forking thread (so its turn is the
 * fork's, not the moment the new thread gets going), starts the child's thread, and the child
 * waits for that ticket on its own thread before running the work; a child that ends without
 * having waited (cancelled first) withdraws it. A child releases its place when its work
 * ends and its outcome is reported; the onFailure handler that a failing child runs on its thread
 * meanwhile runs inside the child's root scope (TaskImpl.reenterAfterWork), so a fork from it is
 * a fork from that child. A handler that runs elsewhere (on the owner, for the body's failure; on
 * a cancel-hook action's thread) is listed by the group while it runs (SideWork), and its forks
 * take their ticket the same way: the body's failure cancels the children only after its handler
 * returns, so a fork that waited there for a place would wait for ever. So do the forks of the
 * group's cancel-hook actions, which SideWork lists too: the child that registered one may hold a
 * place and wait for the action (its registration's close() does) before it frees the place.
 * </pre>
 */
final class Forks {
  private Forks() {}

  static <T> TaskImpl<T> fork(Group g, Object work, String taskName) {
    checkOpen(g, "fork into");
    if (Scope.effectivelyCancelled(g)) {
      settleCaller(); // a caller inside the cancelled group keeps its interrupt status set
      return TaskImpl.cancelledBeforeStart(g, taskName);
    }
    TaskImpl<T> task = new TaskImpl<>(g, work, taskName);
    // Wrapped before waiting for a place: a propagator that forks into g from wrap() must not wait
    // for a place this fork already holds (with maxConcurrency(1), for ever).
    Runnable run = wrap(g, task);
    int place = TaskImpl.PLACE_NONE;
    if (g.places != null) {
      if (insideChildOf(g) || g.worksOutsideChildrenHere()) {
        place = reserveInThread(g, task);
      } else {
        int waited = acquirePlace(g);
        if (waited == GRANTED) {
          place = TaskImpl.PLACE_HELD;
          if (Scope.effectivelyCancelled(g)) { // cancelled while this fork waited
            g.places.release();
            return TaskImpl.cancelledBeforeStart(g, taskName);
          }
        } else {
          if (waited == GROUP_CANCELLED) {
            settleCaller(); // as a fork into a cancelled group: a caller inside it keeps its status
          }
          return TaskImpl.cancelledBeforeStart(g, taskName);
        }
      }
    }
    return launch(g, task, run, taskName, place);
  }

  /**
   * For a fork from inside a child: takes the new child's ticket now, on the forking thread,
   * without waiting; the place if one is free, else a turn the child waits for on its own thread.
   */
  private static int reserveInThread(Group g, TaskImpl<?> task) {
    Places.Ticket ticket = g.places.take();
    if (ticket.granted()) {
      return TaskImpl.PLACE_HELD;
    }
    task.placeTicket(ticket);
    return TaskImpl.PLACE_ACQUIRE_IN_THREAD;
  }

  /** Gives back what a child that is not launched after all took: its place or its ticket. */
  private static void giveBack(Group g, TaskImpl<?> task, int place) {
    if (place == TaskImpl.PLACE_HELD) {
      g.places.release();
    } else if (place == TaskImpl.PLACE_ACQUIRE_IN_THREAD) {
      task.withdrawTicket();
    }
  }

  static <T> T start(Group g, Startable<T> work) throws InterruptedException, StartFailedException {
    checkOpen(g, "start in");
    if (Scope.effectivelyCancelled(g)) {
      settleCaller(); // a checkpoint: a caller inside the cancelled group leaves with its status
      // set
      throw new CancelledException(Scope.cancelledAbove(g), null);
    }
    ThreadState caller = ThreadState.current();
    StartSignalImpl<T> signal = new StartSignalImpl<>(work, Thread.currentThread());
    TaskImpl<Void> task = TaskImpl.startChild(g, signal, caller.innermost());
    signal.task = task;
    Runnable run = wrap(g, task); // before waiting for a place: see fork
    int place = TaskImpl.PLACE_NONE;
    if (g.places != null) {
      if (insideChildOf(g) || g.worksOutsideChildrenHere()) {
        place = reserveInThread(g, task);
      } else {
        int waited = acquirePlace(g);
        if (waited == GRANTED) {
          place = TaskImpl.PLACE_HELD;
          if (Scope.effectivelyCancelled(g)) { // cancelled while this start waited: as above
            g.places.release();
            settleCaller();
            throw new CancelledException(Scope.cancelledAbove(g), null);
          }
        } else if (waited == GROUP_CANCELLED) {
          settleCaller(); // woken by the walk, maybe before its delivery to a caller inside g
          throw new CancelledException(Scope.cancelledAbove(g), null); // as a start into it
        } else {
          Thread.interrupted(); // thrown instead; a cancellation sets it again
          throw ThreadState.interruptedWhileWaiting("a place in " + g.describe());
        }
      }
    }
    launch(g, task, run, null, place);

    while (signal.state() < StartSignalImpl.STARTED) {
      LockSupport.park(signal);
      boolean interrupted = Thread.interrupted();
      if ((interrupted || ThreadState.cooperativelyCancelled(caller))
          && signal.state() < StartSignalImpl.STARTED) {
        return abandonStart(g, task, signal);
      }
      if (interrupted) {
        // The work signalled (or ended) first: start does not throw, so the interrupt stays set.
        Thread.currentThread().interrupt();
      }
    }
    if (signal.state() == StartSignalImpl.STARTED) {
      return signal.takeValue();
    }
    Throwable failure = signal.failure();
    signal.forgetOutcome(); // thrown from here: a signal the work kept keeps none of it
    if (failure != null) {
      // Judged a failure at the child's exit: it stays one on this thread (see abandonStart).
      Cancellation.judgedFailure(failure, caller);
    }
    if (failure instanceof RuntimeException re) {
      throw re;
    }
    if (failure instanceof Error e) {
      throw e;
    }
    if (failure != null) {
      throw new StartFailedException(failure);
    }
    if (signal.endedByCancellation()) {
      throw new CancelledException(Scope.cancelledAbove(task), null);
    }
    if (Scope.effectivelyCancelled(caller.innermost())) {
      // The caller was cancelled while it waited, and the cancellation reached the work (below the
      // caller until it signals), which swallowed it and returned before this thread saw its own
      // interrupt: the cancellation, as abandonStart throws it, not a misuse (a cancelled body
      // would otherwise fail its group with this IllegalStateException).
      throw ThreadState.interruptedWhileWaiting("start() on " + g.describe());
    }
    throw new IllegalStateException(
        "the work passed to start() on " + g.describe() + " returned without calling started()");
  }

  /**
   * The caller of start was cancelled or interrupted before the work signalled: cancel the child,
   * wait for it, then throw.
   */
  private static <T> T abandonStart(Group g, TaskImpl<Void> task, StartSignalImpl<T> signal)
      throws InterruptedException, StartFailedException {
    // If it signals meanwhile it is cancelled all the same: the caller is leaving.
    task.cancel(
        CancelReason.of(CancelReason.Kind.OWNER_INTERRUPTED, "the caller of start() stopped"),
        Scope.CANCEL_INTERNAL);
    task.awaitDoneUninterruptibly();
    InterruptedException stopped =
        ThreadState.interruptedWhileWaiting("start() on " + g.describe());
    Throwable failure = signal.state() == StartSignalImpl.ENDED ? signal.failure() : null;
    signal.forgetOutcome(); // a value signalled meanwhile is nobody's: the caller is leaving
    if (failure == null) {
      throw stopped;
    }
    // The work failed before signalling, while being cancelled (say, in its cleanup): a failure
    // like any other, thrown by start as when the caller is not cancelled, never dropped for the
    // caller's InterruptedException. A cancellation's interrupt stays set (interruptedWhileWaiting
    // set it again); someone else's, which this wait consumed, is set again too.
    if (!(stopped instanceof CancelledException)) {
      Thread.currentThread().interrupt();
    }
    // Judged a failure at the child's exit: so it stays on the caller's thread, whose cancelled
    // scopes would otherwise take an IOException thrown while their interrupt is pending for
    // theirs.
    Cancellation.judgedFailure(failure, ThreadState.current());
    if (failure instanceof RuntimeException re) {
      throw re;
    }
    if (failure instanceof Error e) {
      throw e;
    }
    throw new StartFailedException(failure);
  }

  /**
   * Makes the thread for the child ({@code run}: the task, wrapped by the group's propagators if
   * any), admits the child, links it and starts it.
   */
  private static <T> TaskImpl<T> launch(
      Group g, TaskImpl<T> task, Runnable run, String taskName, int place) {
    Thread thread;
    try {
      thread = newThread(g, run, taskName);
    } catch (Throwable e) { // an Error too (out of memory, out of stack): the place goes back
      giveBack(g, task, place);
      throw e;
    }
    task.thread = thread;
    task.initPlace(place);
    task.initInnermost(); // before start: deliverers may interrupt it from now on
    if (g.usesDefaultFactory()) { // the library's own factory sets no handler to keep
      thread.setUncaughtExceptionHandler(task); // how the thread finds its task: ThreadState.lookup
    } else {
      try {
        task.keepReplacedHandler(thread); // the task passes uncaught exceptions on to it
        thread.setUncaughtExceptionHandler(task);
        if (thread.getUncaughtExceptionHandler() != task) {
          // Overridden to ignore the set, or to answer another handler: the thread could not
          // find its task (ThreadState.lookup), and would run detached from the group.
          throw new IllegalStateException("the handler set is not the handler read back");
        }
      } catch (Error e) { // a rejected call leaves the group as it was, its place included
        giveBack(g, task, place);
        throw e;
      } catch (RuntimeException e) { // a Thread subclass overriding either: refused, place back
        giveBack(g, task, place);
        throw new RejectedExecutionException(
            "the thread factory of "
                + g.describe()
                + " returned a thread whose uncaught-exception handler cannot be read or set",
            e);
      }
    }
    long before = g.admit(task); // counted and linked in one step
    if (before < 0L) {
      giveBack(g, task, place);
      throw finished(g, task.awaitingSignal() ? "start in" : "fork into");
    }
    if (!g.usesDefaultFactory()) {
      task.launched(); // a run of its Runnable elsewhere before now ends the task here
    }
    if (Features.ON) { // folded away by the JIT: see Features
      Object recording = g.recording;
      if (recording != null) {
        Events.forked(recording);
      }
      if (LibraryClock.testClockInstalled()) {
        ClockedThreads.track(task); // not started yet: holds the test clock's auto-advance still
      }
    }
    try {
      thread.start();
    } catch (Throwable e) {
      Thread.State state = thread.getState();
      // Never started (NEW), or ended without running the child: a virtual thread that its
      // scheduler refused ends TERMINATED at once, as does a thread whose run() ignored the task.
      if (state == Thread.State.NEW || (state == Thread.State.TERMINATED && !task.isFinished())) {
        Object recording = Features.ON ? g.recording : null;
        if (recording != null) {
          Events.unforked(recording); // counted above: GroupEnd counts children started
        }
        task.abandon(); // it leaves the group
        throw new RejectedExecutionException(g.describe() + " could not start a thread", e);
      }
      // Started, then threw (a Thread subclass whose start() fails after super.start()): the child
      // runs and leaves the group itself, with its place; abandoning it too would make it leave
      // twice (and give its place back while it runs). What start() threw is a failure.
      g.helperFailed(e, "starting the thread of " + task.describe());
    }
    return task;
  }

  /**
   * {@code thread.toString()} for a message, or the thread's class and id if a subclass's override
   * throws: describing the thread must not replace the rejection.
   */
  private static String describeThread(Thread thread) {
    try {
      return thread.toString();
    } catch (Throwable broken) {
      return thread.getClass().getName() + " #" + thread.threadId();
    }
  }

  /** Makes a new thread for {@code task} with {@code g}'s factory. */
  private static Thread newThread(Group g, Runnable task, String taskName) {
    Thread thread;
    try {
      thread = g.factory.newThread(task);
    } catch (Throwable e) {
      throw new RejectedExecutionException("the thread factory of " + g.describe() + " threw", e);
    }
    if (thread == null) {
      throw new RejectedExecutionException(
          "the thread factory of " + g.describe() + " returned null");
    }
    if (!g.usesDefaultFactory() && thread.getState() != Thread.State.NEW) {
      // Checked before the thread is touched (named, given a task as its handler): a thread that
      // runs, or ran, other work must keep its name and the task it belongs to. (The library's
      // own factory makes a new thread each time: the fork path pays nothing for the check.)
      throw new RejectedExecutionException(
          "the thread factory of "
              + g.describe()
              + " returned a thread that was already started ("
              + describeThread(thread)
              + "): a ThreadFactory must return a new, unstarted thread for each call");
    }
    if (taskName != null) {
      thread.setName(taskName);
    }
    return thread;
  }

  /**
   * What the child's thread runs: the task, wrapped on the forking thread by g's propagators.
   *
   * @throws java.util.concurrent.RejectedExecutionException if a propagator threw or returned null
   */
  private static Runnable wrap(Group g, TaskImpl<?> task) {
    return !Features.ON || g.propagators == null ? task : Propagation.wrapChild(g, task);
  }

  private static void checkOpen(Group g, String what) {
    if (!g.started()) {
      throw new IllegalStateException(
          "cannot "
              + what
              + " "
              + g.describe()
              + " before it runs: do it from its body or"
              + " its children");
    }
    if (g.closed()) {
      throw finished(g, what);
    }
  }

  private static IllegalStateException finished(Group g, String what) {
    return new IllegalStateException(
        "cannot "
            + what
            + " "
            + g.describe()
            + ": it has finished (its run returned or is"
            + " returning) and takes no new work; fork or start only while its run is open, or"
            + " use a new TaskGroup");
  }

  private static void settleCaller() {
    ThreadState ts = ThreadState.currentOrNull();
    if (ts != null) {
      ts.settle();
    }
  }

  /** Whether the calling thread runs inside one of {@code g}'s children (which holds a place). */
  private static boolean insideChildOf(Group g) {
    ThreadState ts = ThreadState.currentOrNull();
    if (ts == null) {
      return false;
    }
    for (Scope s = ts.innermost(); s != null && s != g; s = s.parent) {
      if (s instanceof TaskImpl<?> t && t.group() == g) {
        return true;
      }
    }
    return false;
  }

  /** {@link #acquirePlace}: the place is the caller's. */
  static final int GRANTED = 0;

  /**
   * {@link #acquirePlace}: the caller was cancelled or interrupted while it waited, and holds no
   * place; its interrupt status is set.
   */
  static final int CALLER_STOPPED = 1;

  /**
   * {@link #acquirePlace}: the group was cancelled while the caller waited (the caller itself is
   * not), and the caller holds no place; its interrupt status is as it was.
   */
  static final int GROUP_CANCELLED = 2;

  /**
   * Waits for a place in {@code g}: until one is granted, the caller is cancelled or interrupted,
   * or {@code g} is cancelled. The last matters for a caller outside the group, which the group's
   * cancellation does not interrupt: a fork into a cancelled group starts nothing, so it stops
   * waiting (the cancellation walk wakes it, Places.wakeWaiters) rather than wait until a child
   * that may ignore the cancellation gives a place back.
   *
   * @return {@link #GRANTED}, {@link #CALLER_STOPPED} or {@link #GROUP_CANCELLED}
   */
  static int acquirePlace(Group g) {
    try {
      ThreadState ts = ThreadState.currentOrNull();
      if (ts != null && ts.isCooperative()) {
        return acquirePlaceCooperatively(g, ts);
      }
      return g.places.await(g.places.take(), g) ? GRANTED : GROUP_CANCELLED;
    } catch (InterruptedException e) {
      ThreadState ts = ThreadState.currentOrNull();
      if (ts != null && Scope.effectivelyCancelled(ts.innermost())) {
        ts.settle();
      } else {
        Thread.currentThread().interrupt();
      }
      return CALLER_STOPPED;
    }
  }

  /**
   * Waits for a place in a cooperative scope, where no interrupt comes: the caller parks on its
   * ticket, woken by the grant or by an unpark (a deliverer's, ThreadState; the group's
   * cancellation walk, Places.wakeWaiters), and gives up when it is cancelled or interrupted, or
   * the group is cancelled: the ticket is withdrawn, or, if the place came first, kept.
   */
  private static int acquirePlaceCooperatively(Group g, ThreadState ts)
      throws InterruptedException {
    Places.Ticket ticket = g.places.take();
    while (!ticket.granted()) {
      boolean interrupted = Thread.interrupted();
      if ((interrupted || ThreadState.cooperativelyCancelled(ts)) && g.places.withdraw(ticket)) {
        if (interrupted) {
          throw new InterruptedException();
        }
        return CALLER_STOPPED;
      }
      if (interrupted) {
        Thread.currentThread().interrupt(); // the place came first: the interrupt stays
        break;
      }
      if (Scope.effectivelyCancelled(g) && g.places.withdraw(ticket)) {
        return GROUP_CANCELLED;
      }
      g.places.parkFor(ticket); // looked first: a cancellation before the park is not missed
    }
    return GRANTED;
  }
}
