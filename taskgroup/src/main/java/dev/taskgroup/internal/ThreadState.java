package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * What the library knows about one thread: where it is in the scope tree, and whose interrupt its
 * interrupt status holds. It is also the root node of the thread's chain of scopes: never cancelled
 * for a thread that merely entered scopes, the task's own root scope for a forked task ({@link
 * TaskImpl} extends this class, so a child costs one object, not three).
 *
 * <pre>
 * Implementation overview
 *
 * `innermost` is the thread's innermost scope (this node when it is in none; null for a task
 * that has not started or has finished). Only the thread itself writes it.
 *
 * `status` is one atomic int:
 *   BUSY      a tiny spin lock, held around "decide and act on the interrupt status" by
 *             deliverers and by the thread itself; never held across anything that blocks.
 *             Released on every path, an error's too: a StackOverflowError thrown while it is
 *             held (a checkpoint, or a cancel(), called with nearly no stack left) must not
 *             leave every later settle() and delivery spinning for ever. Likewise an
 *             IN_FLIGHT count whose interrupt() threw is taken back
 *   DELIVERED the library interrupted the thread for a cancellation, and that interrupt may
 *             still be pending
 *   OUTSIDE   when a cancellation was delivered, the thread's interrupt status was already set
 *             by someone else: that interrupt must survive the cancelled region
 *   JOINING   the thread is a group owner waiting for its children: the library never
 *             interrupts it (so any interrupt it sees there is from outside)
 *   WATCHED   the thread is queued for, or under, the re-delivery watch (Redelivery)
 *   HOOK_FIRED an onCancel action the thread registered has started for the cancellation it is
 *             in: what it throws while it stays effectively cancelled is that action's effect
 *             (a cancelled statement's SQLException), a cancellation. Set under BUSY by the
 *             firer only while the thread is effectively cancelled; cleared by settle() when it
 *             is not. Invariant: HOOK_FIRED implies the thread has been effectively cancelled
 *             without a break since an action of its own started.
 *   HOOK_WAIT the thread waits for an onCancel action it fired (or closes) to end
 *             (CancelHook.awaitRan): the library neither delivers to it nor re-delivers, as to
 *             a joining owner. Its wait clears its interrupt status; when it ends it sets the
 *             status back, re-arms the watch and settles (endHookWait). Re-interrupting it
 *             instead woke every such waiter every few ms: 10 000 of them, on one carrier, left
 *             no time for the actions they waited for (a livelock)
 *   COOPERATIVE the thread is inside a CancelScope.cooperative() scope: the library never
 *             interrupts it; a deliverer unparks it instead (library waits re-check after a
 *             wake-up), settle() drops an interrupt of ours, Redelivery stops watching it. Set
 *             and cleared only by the thread itself, on entering and leaving its outermost
 *             cooperative scope (under BUSY, like every status change).
 *   IN_FLIGHT a count (bits 8-15) of first deliveries between their decision and the return
 *             of their Thread.interrupt() (see "In flight")
 *   bits 16-31 how many times the interrupt was delivered again after the thread swallowed it
 *             (saturating), in the cancelled region it is in: settle() clears the count when
 *             the thread is no longer effectively cancelled. Only counted, never decided on;
 *             kept here, not in a field per child
 *
 * Delivery (any thread): take BUSY, re-read `innermost`, and if the thread is effectively
 * cancelled and nothing is pending, interrupt it and set DELIVERED (or record OUTSIDE). The
 * thread's own side (settle) publishes its new `innermost` first, then takes BUSY: a deliverer
 * either sees the new position or its interrupt lands before the thread clears the status, so
 * no interrupt meant for a scope the thread has left can land after it left.
 *
 * In flight: a re-delivery holds BUSY across Thread.interrupt(). A first delivery to another
 * thread instead counts itself in IN_FLIGHT and calls interrupt() without the lock: the thread
 * it wakes runs at once, and interrupt() can take milliseconds to return (it wakes a carrier,
 * which may pre-empt the caller). While one is in flight no other delivery or re-delivery
 * interrupts the thread. A thread that leaves its cancelled region (or starts a group join)
 * while one is in flight, with an interrupt of ours to clear, waits (parking) until
 * interrupt() has returned, unless it leaves with an exception a JDK call raised for the
 * interrupt: no other library interrupt was possible meanwhile, so the in-flight one raised it
 * (or someone else's did, which then may be absorbed with it) and has landed. settle() does not
 * interrupt its own thread while one is in flight. Only the types a JDK call raises for an
 * interrupt count as that proof (PlainScope.raisedByInterrupt): a CancellationException, or an
 * exception judged by state, can be thrown by a body that saw the cancellation (isCancelled(), a
 * cancelled Future) before the interrupt landed. (Two windows remain: an exception raised by an
 * earlier interrupt still propagating when a new first delivery starts, for an outer scope, which
 * needs two cancellations racing the exit; and an InterruptedException the body makes itself on
 * seeing the cancellation while the interrupt is in flight. That interrupt can then land after
 * the exit.)
 *
 * settle() (the thread itself, after entering or leaving a scope and at checkpoints):
 *   effectively cancelled, status clear  -> interrupt itself (first delivery, or re-delivery
 *                                           after user code swallowed the interrupt)
 *   effectively cancelled, status set    -> nothing (record OUTSIDE if it is not ours)
 *   not cancelled, OUTSIDE               -> make sure the status is set again
 *   not cancelled, DELIVERED             -> clear the interrupt status: ours must not leak
 *   not cancelled (any status)           -> also forget HOOK_FIRED
 *   cancelled but COOPERATIVE            -> as "not cancelled" for the interrupt status (drop
 *                                           ours, restore an outsider's); HOOK_FIRED is kept
 * Leaving the outermost cooperative scope clears COOPERATIVE first, so the exit's settle()
 * delivers at once into a region that is still cancelled.
 * An outside interrupt that arrives while ours is pending cannot be told apart from it; it may
 * be absorbed with it (CancelScope's javadoc, "Interrupts").
 * </pre>
 */
public abstract class ThreadState extends Scope {
  static final int BUSY = 1;
  static final int DELIVERED = 1 << 1;
  static final int OUTSIDE = 1 << 2;
  static final int JOINING = 1 << 3;
  static final int WATCHED = 1 << 4;
  static final int HOOK_FIRED = 1 << 5;
  static final int COOPERATIVE = 1 << 6;
  static final int HOOK_WAIT = 1 << 7;

  /** Counts deliverers between "decided to interrupt" and "Thread.interrupt() returned". */
  static final int IN_FLIGHT_UNIT = 1 << 8;

  static final int IN_FLIGHT_MASK = 0xFF << 8;

  /** Bits 16-31 count re-deliveries (saturating), for TaskTree, the stuck warning and JFR. */
  static final int REDELIVERY_SHIFT = 16;

  private static final int REDELIVERY_MAX = 0xFFFF;

  private static final int REDELIVERY_MASK = REDELIVERY_MAX << REDELIVERY_SHIFT;

  static final int RECHECK_DROP = 0;
  static final int RECHECK_SWALLOWED = 1;
  static final int RECHECK_PENDING = 2;

  private static final int SPINS_BEFORE_YIELD = 64;
  private static final int SPINS_BEFORE_PARK = SPINS_BEFORE_YIELD + 8;
  private static final long BACK_OFF_NANOS = 20_000L;

  /**
   * The state of threads that are not tasks. A task's thread finds its state without a ThreadLocal:
   * the task is its thread's uncaught-exception handler (see {@link #lookup}).
   */
  private static final ThreadLocal<ThreadState> CURRENT = new ThreadLocal<>();

  /**
   * The thread; for a task, set before its thread starts and cleared (to null, with release) as it
   * finishes, so that a Task held afterwards keeps no dead thread (as FutureTask drops its runner).
   * Every reader but the task's own running thread reads it once and checks for null.
   */
  Thread thread;

  /** The thread's innermost scope; written only by the thread itself. */
  volatile Scope innermost;

  /** The flags and counts of the overview ("`status` is one atomic int"). */
  private volatile int status;

  /** The root of a thread that entered a scope: never cancelled, never shielded. */
  ThreadState(Thread thread) {
    super(ENTERED);
    this.thread = thread;
    initParent(null);
    INNERMOST.set(this, this);
  }

  /** The root scope of a forked task: its parent is the task's group. */
  ThreadState(Scope parent) {
    super(ENTERED);
    initParent(parent);
  }

  /**
   * The first scope the thread entered below its root, or null: derived by walking up from the
   * thread's innermost scope (a root keeps no `inner` field, so a forked child is a reference
   * lighter). Scopes are shallow; a walker racing with the thread's entries and exits gets a chain
   * as it was or is, which is all a walk ever gets (Scope's overview).
   */
  @Override
  final Scope below() {
    Scope s = innermost;
    if (s == this) {
      return null;
    }
    while (s != null) {
      Scope up = s.parent;
      if (up == this) {
        return s;
      }
      s = up;
    }
    return null;
  }

  /** The calling thread's state, created on first use. */
  public static ThreadState current() {
    ThreadState ts = lookup();
    if (ts == null) {
      ts = new OwnThread(Thread.currentThread());
      CURRENT.set(ts);
      TreeRoots.add(ts); // once per thread that is not a task: where TaskTree starts its walk
    }
    return ts;
  }

  /** The calling thread's state, or null if it never entered a scope. */
  public static ThreadState currentOrNull() {
    return lookup();
  }

  /**
   * The calling thread's state. A forked task installs itself as its thread's uncaught-exception
   * handler before the thread starts (TaskImpl catches everything its work throws, so the slot is
   * otherwise unused): finding the task there costs no ThreadLocal map per child, which on a parked
   * virtual thread is about a quarter of the thread's own footprint. Every other thread keeps its
   * state in a ThreadLocal. (Code that replaces the handler of a task's own thread detaches that
   * thread from its group's cancellation.)
   */
  private static ThreadState lookup() {
    Thread me = Thread.currentThread();
    if (me.getUncaughtExceptionHandler() instanceof TaskImpl<?> task
        && task.thread == me
        && task.innermost != null) {
      return task;
    }
    // Not a task's thread; or a task's thread after its work ended (innermost null), still running
    // its context propagators' code after work.run(): the thread is no longer in the task's scopes,
    // and a scope or group it enters there is the root of its own chain, as on any other thread
    // (entered under the ended task, it had no parent to link to: a NullPointerException).
    return CURRENT.get();
  }

  /**
   * The exception for a library wait that saw the calling thread's interrupt: a cancellation (the
   * interrupt status is set again, as every checkpoint leaves it) or a plain interrupt (the status
   * stays clear, as JDK blocking methods leave it).
   *
   * @param what what the thread was waiting for, for the message
   */
  public static InterruptedException interruptedWhileWaiting(String what) {
    ThreadState ts = lookup();
    if (ts != null) {
      Scope cancelled = cancelledAbove(ts.innermost);
      if (cancelled != null) {
        ts.settle();
        return new CancelledException(cancelled, null);
      }
    }
    return new InterruptedException("interrupted while waiting for " + what);
  }

  /** Times the thread's cancellation interrupt was delivered again after it was swallowed. */
  final int redeliveries() {
    return status >>> REDELIVERY_SHIFT;
  }

  /** {@code n} with one more re-delivery counted (saturating at 65 535). */
  private static int countRedelivery(int n) {
    return (n >>> REDELIVERY_SHIFT) == REDELIVERY_MAX ? n : n + (1 << REDELIVERY_SHIFT);
  }

  /** Whether the thread is a group owner waiting for its children. */
  final boolean joining() {
    return (status & JOINING) != 0;
  }

  /**
   * The exceptions scope exits on this thread let through as failures (see {@link Cancellation}),
   * or null if there were none. Read and written by the thread itself, only on exception paths.
   */
  JudgedFailures judgedFailures() {
    return null;
  }

  /** Records {@code t} as judged a failure (see {@link #judgedFailures()}). */
  void judgedFailure(Throwable t) {}

  @Override
  final ThreadState home() {
    return this; // a thread's root is its own home
  }

  /** The thread's innermost scope. */
  public final Scope innermost() {
    return innermost;
  }

  /** Whether an interrupt delivered for a cancellation (ours or an outsider's) is set now. */
  final boolean cancellationInterruptPending() {
    int s = status;
    while ((s & BUSY) != 0) { // a deliverer is deciding: wait for what it decides
      Thread.onSpinWait();
      s = status;
    }
    Thread t = thread;
    return (s & (DELIVERED | OUTSIDE)) != 0 && t != null && t.isInterrupted();
  }

  /**
   * An onCancel action this thread registered is about to start (called by the firer, before the
   * action runs): marks the thread, if it still is effectively cancelled.
   */
  final void ownHookFiring() {
    int s = lockStatus();
    Scope in = innermost;
    boolean cancelled;
    try {
      cancelled = in != null && effectivelyCancelled(in);
    } catch (Throwable error) {
      status = s; // (a StackOverflowError, see settle) released as it was
      throw error;
    }
    status = cancelled ? s | HOOK_FIRED : s;
  }

  /** Whether an action of this thread's started for the cancellation it is still in. */
  final boolean ownHookFired() {
    int s = status;
    while ((s & BUSY) != 0) { // a firer or deliverer is deciding: wait for what it decides
      Thread.onSpinWait();
      s = status;
    }
    return (s & HOOK_FIRED) != 0;
  }

  // ---- delivery ---------------------------------------------------------------------------

  /** Interrupts the thread if it is effectively cancelled and no interrupt is pending yet. */
  final void deliver() {
    int s0 = status;
    Thread t = thread;
    if (t == null
        || (s0 & (JOINING | HOOK_WAIT)) != 0
        || ((s0 & (DELIVERED | OUTSIDE)) != 0 && (s0 & WATCHED) != 0 && t.isInterrupted())) {
      return; // a finished task, an owner waiting for its children (or a thread for its onCancel
      // action), or an interrupt already pending and watched
    }
    deliverUnderLock();
  }

  /**
   * {@link #deliver()} past its quick check, out of line, as {@link #settleUnderLock}: the whole
   * would be too large for the JIT to inline into a cancellation's walk.
   */
  private void deliverUnderLock() {
    int s = lockStatus();
    Scope in = innermost;
    Thread t = thread;
    boolean cancelled;
    boolean pending;
    try {
      cancelled =
          (s & (JOINING | HOOK_WAIT)) == 0 && in != null && t != null && effectivelyCancelled(in);
      pending = cancelled && (s & (COOPERATIVE | IN_FLIGHT_MASK)) == 0 && t.isInterrupted();
    } catch (Throwable error) {
      // An error while holding BUSY (a StackOverflowError: a cancel() called with nearly no stack
      // left): release the lock as it was, or the thread's every later settle() would spin for
      // ever.
      status = s;
      throw error;
    }
    if (!cancelled) {
      status = s;
      return;
    }
    if ((s & COOPERATIVE) != 0) {
      status = s;
      LibraryClock.wake(t); // no interrupt: a library wait it may be in re-checks instead
      return;
    }
    if ((s & IN_FLIGHT_MASK) != 0) {
      status = s; // an interrupt of ours is on its way: never two at once (see the overview)
      return;
    }
    if (pending) {
      int n = s | WATCHED | ((s & (DELIVERED | OUTSIDE)) == 0 ? OUTSIDE : 0);
      status = n;
      watchIfNew(s, n);
      return;
    }
    // First delivery, or the thread swallowed an earlier one (a stale DELIVERED after a shield
    // came and went). DELIVERED is visible before the interrupt lands: the woken thread may look
    // at once (Cancellation.isCancellation) to tell ours from someone else's.
    int n = s | DELIVERED | WATCHED;
    if ((s & DELIVERED) == 0 && t != Thread.currentThread()) {
      // A first delivery to another thread: interrupt outside the lock ("in flight", see the
      // overview), so that the thread, woken by it, does not wait for interrupt() to return.
      int sent = n + IN_FLIGHT_UNIT;
      status = sent;
      Throwable closeFailed;
      try {
        watchIfNew(s, n);
        closeFailed = interruptOther(t);
      } catch (Throwable error) {
        // (A StackOverflowError, as above.) Take our count back: the thread would otherwise wait
        // for ever, leaving its scope, for an interrupt in flight.
        int a = lockStatus();
        status = a - IN_FLIGHT_UNIT;
        throw error;
      }
      int after;
      if (STATUS.compareAndSet(this, sent, n)) {
        after = sent; // nobody touched the status meanwhile: one atomic step, not lock and write
      } else {
        after = lockStatus();
        status = after - IN_FLIGHT_UNIT;
      }
      // Deliveries skipped while ours was in flight (the thread may since have left, and been
      // cancelled again in another scope) are made up for now.
      if ((after & IN_FLIGHT_MASK) == IN_FLIGHT_UNIT && innermost != in) {
        deliver();
      }
      reportAfterDelivery(closeFailed);
    } else {
      int count = 0;
      if ((s & DELIVERED) != 0) { // ours was swallowed: this is a re-delivery
        n = countRedelivery(n);
        count = n >>> REDELIVERY_SHIFT;
      }
      status = n | BUSY;
      Throwable closeFailed;
      try {
        closeFailed = interruptOther(t);
      } catch (Throwable error) {
        status = s | DELIVERED; // (a StackOverflowError, as above) ours may be set, not another's
        throw error;
      }
      status = n;
      watchIfNew(s, n);
      if (count != 0) {
        Events.redelivery(t, count);
      }
      reportAfterDelivery(closeFailed);
    }
  }

  /**
   * Reports what the interrupted thread's channel threw on close (interruptOther), once the
   * delivery is done: the default uncaught-exception handler is user code that may block, and the
   * thread would wait for it (its exit waits for a delivery in flight, and every look at its status
   * for the lock a delivery holds), as would the re-delivery watcher.
   */
  private static void reportAfterDelivery(Throwable closeFailed) {
    if (closeFailed != null) {
      boolean marked = ClockedThreads.userCodeBegins(); // the handler: see there
      try {
        Uncaught.report(closeFailed);
      } finally {
        ClockedThreads.userCodeEnds(marked);
      }
    }
  }

  /**
   * Interrupts {@code t}, another thread, for a cancellation. {@link Thread#interrupt()} of a
   * thread blocked in an interruptible channel closes the channel, and a channel whose close throws
   * an unchecked exception (a bug in its implementation) makes interrupt() throw it, after the
   * interrupt status was set but, for a virtual thread, before the thread was woken. That must
   * neither fail the cancellation (nor cut its walk short, nor kill the re-delivery watcher) nor
   * leave the thread asleep: interrupt() is called once more, which finds the channel closed and
   * now does the rest, and the exception is reported as uncaught ({@link Uncaught}), since no
   * caller can be handed it (StructuredTaskScope ignores it). A StackOverflowError is the caller's
   * to handle, as everywhere in delivery.
   */
  static Throwable interruptOther(Thread t) {
    boolean marked = ClockedThreads.userCodeBegins(); // a channel's close: see there
    try {
      return interruptOtherOnce(t);
    } finally {
      ClockedThreads.userCodeEnds(marked);
    }
  }

  private static Throwable interruptOtherOnce(Thread t) {
    try {
      t.interrupt();
      return null;
    } catch (StackOverflowError error) {
      throw error;
    } catch (Throwable closeFailed) {
      try {
        t.interrupt(); // the channel is closed now: its blocker returns at once
      } catch (StackOverflowError error) {
        throw error;
      } catch (Throwable again) { // (another channel, entered meanwhile) wake it at least
        closeFailed.addSuppressed(again);
        LockSupport.unpark(t);
      }
      return closeFailed; // reported by the caller once the delivery is done
    }
  }

  private void watchIfNew(int before, int after) {
    if ((after & WATCHED) != 0 && (before & WATCHED) == 0) {
      Redelivery.watch(this);
    }
  }

  /**
   * Called by the re-delivery watcher: interrupts the thread again if it swallowed a cancellation
   * and is still effectively cancelled.
   *
   * @return {@link #RECHECK_DROP} (stop watching: not cancelled any more, finished, or joining),
   *     {@link #RECHECK_SWALLOWED} (interrupted again) or {@link #RECHECK_PENDING}
   */
  final int recheck() {
    Scope in0 = innermost;
    Thread t = thread;
    if ((in0 == null && this instanceof TaskImpl<?>) || t == null) {
      return RECHECK_DROP; // a finished task: nothing will be delivered to it again
    }
    if (in0 != null && t.isInterrupted() && effectivelyCancelled(in0)) {
      return RECHECK_PENDING; // the usual case, decided without the lock
    }
    int s = lockStatus();
    if ((s & IN_FLIGHT_MASK) != 0) {
      status = s;
      return RECHECK_PENDING; // a delivery is on its way; never two at once
    }
    Throwable closeFailed = null;
    Scope in = innermost;
    int outcome;
    int n = s;
    if (in == null || (s & (JOINING | HOOK_WAIT | COOPERATIVE)) != 0 || !effectivelyCancelled(in)) {
      outcome = RECHECK_DROP;
      n &= ~WATCHED;
    } else if (!t.isInterrupted()) {
      n = countRedelivery(n | DELIVERED);
      status = n | BUSY; // visible before the interrupt lands, as in deliver()
      closeFailed = interruptOther(t); // throws nothing: the watcher has all the stack it needs
      outcome = RECHECK_SWALLOWED;
    } else {
      outcome = RECHECK_PENDING;
    }
    int count = n >>> REDELIVERY_SHIFT;
    status = n;
    if (outcome == RECHECK_SWALLOWED) {
      Events.redelivery(t, count); // after the lock: a recording costs the thread nothing
    }
    reportAfterDelivery(closeFailed);
    return outcome;
  }

  /**
   * Called by the thread itself: makes its interrupt status match where it is. See the overview.
   */
  public final void settle() {
    settle(false);
  }

  /**
   * As {@link #settle()}; {@code interruptLanded}: the caller is leaving a scope with an exception
   * a JDK call raised for the cancellation's interrupt, so an interrupt of ours in flight has
   * already landed (it is what woke the thread) and need not be waited for.
   */
  final void settle(boolean interruptLanded) {
    int s = status;
    if ((s & (BUSY | DELIVERED | OUTSIDE | HOOK_FIRED | IN_FLIGHT_MASK | REDELIVERY_MASK)) == 0
        && !effectivelyCancelled(innermost)) {
      return; // the common case: nothing cancelled, nothing of ours pending, landing or counted
    }
    settleUnderLock(interruptLanded);
  }

  /**
   * {@link #settle(boolean)} past its common case, out of line: the check above is inlined into
   * every scope entry, exit and checkpoint, and the whole method would be too large for the JIT to
   * inline (which cost a nested scope's entry and exit about 4 ns).
   */
  private void settleUnderLock(boolean interruptLanded) {
    Thread me = Thread.currentThread();
    int s = lockStatus();
    boolean held = true; // whether this thread holds BUSY (see the catch)
    int restore = s; // the status the catch releases BUSY with
    int n;
    int redelivered = 0;
    try {
      for (int waits = 0; (s & IN_FLIGHT_MASK) != 0; waits++) {
        boolean landing;
        if (effectivelyCancelled(innermost) && (s & COOPERATIVE) == 0) {
          landing = !me.isInterrupted(); // let it set the status (we must not set it too)
        } else {
          landing = (s & (DELIVERED | OUTSIDE)) != 0 && !interruptLanded; // leaving: wait to clear
        }
        if (!landing) {
          break;
        }
        status = s;
        held = false;
        waitBriefly(waits);
        s = lockStatus();
        restore = s;
        held = true;
      }
      n = s;
      boolean cancelled = effectivelyCancelled(innermost);
      if (!cancelled) {
        n &= ~(HOOK_FIRED | REDELIVERY_MASK); // out of the cancellation its hooks fired for and
        // its re-deliveries were counted in: the count is about the cancellation it is in
      }
      if (cancelled && (s & COOPERATIVE) == 0) {
        if ((s & IN_FLIGHT_MASK) != 0) {
          // ours has landed (the loop above) and the rest of interrupt() is still running
        } else if (!me.isInterrupted()) {
          restore = s | DELIVERED; // an error in interrupt(): ours may be set, never an outsider's
          me.interrupt();
          n |= DELIVERED | WATCHED;
          if ((s & DELIVERED) != 0) { // ours was swallowed: this is a re-delivery
            n = countRedelivery(n);
            redelivered = n >>> REDELIVERY_SHIFT;
          }
        } else if ((s & (DELIVERED | OUTSIDE)) == 0) {
          n |= OUTSIDE | WATCHED;
        }
      } else if ((s & OUTSIDE) != 0) {
        me.interrupt();
        n &= ~(DELIVERED | OUTSIDE);
      } else if ((s & DELIVERED) != 0) {
        Thread.interrupted();
        n &= ~DELIVERED;
      }
      status = n;
    } catch (Throwable error) {
      // An error while holding BUSY: a StackOverflowError, when a checkpoint or a scope's entry or
      // exit is called with nearly no stack left. Release the lock as it was, or this thread's
      // every later settle(), and every delivery to it, would spin for ever.
      if (held) {
        status = restore;
      }
      throw error;
    }
    watchIfNew(s, n);
    if (redelivered != 0) {
      Events.redelivery(me, redelivered);
    }
  }

  /**
   * The thread enters a cooperative scope (before its settle()): from now on the library does not
   * interrupt it.
   *
   * @return whether it already was in one (then leaving this one changes nothing)
   */
  final boolean beginCooperative() {
    int s = lockStatus();
    status = s | COOPERATIVE;
    return (s & COOPERATIVE) != 0;
  }

  /** The thread leaves its outermost cooperative scope (before that scope's exit). */
  final void endCooperative() {
    int s = lockStatus();
    status = s & ~COOPERATIVE;
  }

  /** Whether the thread is inside a cooperative scope. */
  final boolean isCooperative() {
    return (status & COOPERATIVE) != 0;
  }

  /**
   * Whether {@code ts} (the calling thread's state, or null) is in a cooperative scope and
   * effectively cancelled: a library wait that no interrupt will end must give up now.
   */
  static boolean cooperativelyCancelled(ThreadState ts) {
    return ts != null && (ts.status & COOPERATIVE) != 0 && effectivelyCancelled(ts.innermost);
  }

  /**
   * The thread starts waiting for an onCancel action to end (HOOK_WAIT): from now on the library
   * does not interrupt it (an interrupt already on its way may still land).
   *
   * @return false if it already was waiting so (a nested wait leaves the mark to the outer one)
   */
  final boolean beginHookWait() {
    int s = lockStatus();
    status = s | HOOK_WAIT;
    return (s & HOOK_WAIT) == 0;
  }

  /**
   * The wait that {@link #beginHookWait} began has ended: sets back the interrupt status the wait
   * took, if it took one, watches the thread again if it is still cancelled (the watcher dropped it
   * meanwhile), and settles, which delivers if it is cancelled with nothing pending.
   *
   * @param interrupted whether the wait took an interrupt status (it caught an
   *     InterruptedException)
   */
  final void endHookWait(boolean interrupted) {
    if (interrupted) {
      Thread.currentThread().interrupt(); // ours, or an outsider's: DELIVERED / OUTSIDE still say
    }
    int s = lockStatus();
    int n = s & ~HOOK_WAIT;
    if ((n & (DELIVERED | OUTSIDE)) != 0
        && (n & COOPERATIVE) == 0
        && effectivelyCancelled(innermost)) {
      n |= WATCHED;
    }
    status = n;
    watchIfNew(s, n);
    settle(false);
  }

  /**
   * A group owner starts waiting for its children: from now on the library does not interrupt it,
   * and an interrupt of ours still pending is cleared.
   *
   * @return whether the owner was interrupted from outside (an outsider's interrupt is pending, or
   *     was pending when a cancellation was delivered); the status is cleared either way
   */
  final boolean beginJoin() {
    int s = lockStatus();
    for (int waits = 0; (s & IN_FLIGHT_MASK) != 0; waits++) {
      status = s; // an interrupt of ours is on its way: let it land, then clear it
      waitBriefly(waits);
      s = lockStatus();
    }
    boolean interrupted;
    try {
      interrupted = Thread.interrupted();
    } catch (Throwable error) {
      status = s; // (a StackOverflowError, see settle) released as it was
      throw error;
    }
    boolean outside = (s & OUTSIDE) != 0 || (interrupted && (s & DELIVERED) == 0);
    status = (s & ~(DELIVERED | OUTSIDE)) | JOINING;
    return outside;
  }

  /** The owner stops waiting for its children. */
  final void endJoin() {
    int s = lockStatus();
    status = s & ~JOINING;
  }

  /**
   * Whether the library has interrupted this thread for a cancellation that the thread has not yet
   * settled (DELIVERED): an interrupt type the thread throws may then be the library's.
   */
  final boolean deliveredUnsettled() {
    return (status & DELIVERED) != 0;
  }

  /** Spins until BUSY is taken; returns the status without BUSY. */
  private int lockStatus() {
    for (int spins = 0; ; spins++) {
      int s = status;
      if ((s & BUSY) == 0) {
        if (STATUS.compareAndSet(this, s, s | BUSY)) {
          return s;
        }
      } else {
        waitBriefly(spins);
      }
    }
  }

  /**
   * One round of waiting for another thread's short step: spin, then yield, then park for a moment.
   * Parking matters on few cores: the other thread may be in Thread.interrupt(), which wakes a
   * carrier thread that can pre-empt it; a waiter that only spins or yields keeps its own carrier
   * busy, and the other may then not run for a whole scheduler slice (measured: 1 scope exit in 50
   * took 3-8 ms). The park's permit is handed back afterwards, in case it consumed one meant for
   * the caller's own code (a spurious wake-up is allowed).
   */
  static void waitBriefly(int round) {
    if (round < SPINS_BEFORE_YIELD) {
      Thread.onSpinWait();
    } else if (round < SPINS_BEFORE_PARK) {
      Thread.yield();
    } else {
      LockSupport.parkNanos(BACK_OFF_NANOS);
      LockSupport.unpark(Thread.currentThread());
    }
  }

  private static final VarHandle STATUS;
  static final VarHandle INNERMOST;
  static final VarHandle THREAD;

  static {
    try {
      STATUS = MethodHandles.lookup().findVarHandle(ThreadState.class, "status", int.class);
      INNERMOST = MethodHandles.lookup().findVarHandle(ThreadState.class, "innermost", Scope.class);
      THREAD = MethodHandles.lookup().findVarHandle(ThreadState.class, "thread", Thread.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
