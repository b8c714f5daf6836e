package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Level-triggered delivery for threads that swallow the interrupt and block again without passing
 * a library checkpoint: the JVM has no hook for "this thread is about to block", so a background
 * thread looks at every thread the library interrupted and interrupts it again if its interrupt
 * status is clear while it is still effectively cancelled.
 *
 * <pre>
 * Implementation overview
 *
 * Registration: whoever delivers a cancellation interrupt (ThreadState.deliver or settle) pushes
 * the thread's state on `incoming`, a Treiber stack linked through ThreadState.watchNext, once
 * (the WATCHED status bit says it is queued or watched). The push that finds the stack empty
 * unparks the watcher. Nothing is registered, and nothing runs, while nothing is cancelled.
 *
 * The watcher (one daemon platform thread, started on first use) owns its list of watches. Each
 * watch is checked when due (ThreadState.recheck, under the thread's BUSY bit):
 *   no longer effectively cancelled, or finished -> dropped (WATCHED cleared)
 *   status clear (swallowed)                     -> interrupted again; next check after BASE
 *   status still set (not reacted yet)           -> next check after twice the last interval,
 *                                                   at most BOUND
 * so a thread that swallows is interrupted again within BOUND (default 20 ms; system property
 * dev.taskgroup.redeliveryMillis), while a mass cancellation of threads that simply end costs a
 * few checks each, not a full walk of the tree every period.
 * </pre>
 */
public final class Redelivery {
  /** The longest time a swallowed cancellation goes undelivered. */
  static final long BOUND_NANOS =
      TimeUnit.MILLISECONDS.toNanos(
          Math.max(1L, Long.getLong("dev.taskgroup.redeliveryMillis", 20L)));
  /** The first check after a delivery, and after each re-delivery. */
  static final long BASE_NANOS = Math.max(BOUND_NANOS / 4, 250_000L);

  /** Threads newly interrupted, not yet seen by the watcher. */
  private static volatile ThreadState incoming;
  /** The watcher thread; started once, under the class lock of startWatcher. */
  private static volatile Thread watcher;

  private Redelivery() {}

  /** Queues {@code ts}, whose WATCHED bit the caller just set, for watching. */
  static void watch(ThreadState ts) {
    ThreadState head;
    do {
      head = incoming;
      ts.watchNext = head;
    } while (!INCOMING.compareAndSet(head, ts));
    if (head == null) {
      Thread w = watcher;
      if (w == null) {
        w = startWatcher();
      }
      LockSupport.unpark(w);
    }
  }

  private static synchronized Thread startWatcher() {
    Thread w = watcher;
    if (w == null) {
      w = Thread.ofPlatform().daemon().name("taskgroup-redelivery").unstarted(Redelivery::loop);
      watcher = w;
      w.start();
    }
    return w;
  }

  /** One thread being watched. */
  private static final class Watch {
    final ThreadState ts;
    long due;
    long interval;

    Watch(ThreadState ts, long now) {
      this.ts = ts;
      this.interval = BASE_NANOS;
      this.due = now + BASE_NANOS;
    }
  }

  private static void loop() {
    List<Watch> watches = new ArrayList<>();
    for (;;) {
      long now = System.nanoTime();
      ThreadState ts = (ThreadState) INCOMING.getAndSet(null);
      while (ts != null) {
        ThreadState next = ts.watchNext;
        ts.watchNext = null;
        watches.add(new Watch(ts, now));
        ts = next;
      }
      long nextDue = Long.MAX_VALUE;
      int kept = 0;
      for (int i = 0, n = watches.size(); i < n; i++) {
        Watch w = watches.get(i);
        if (w.due - now <= 0L) {
          int outcome = w.ts.recheck();
          if (outcome == ThreadState.RECHECK_DROP) {
            continue;
          }
          w.interval =
              outcome == ThreadState.RECHECK_SWALLOWED
                  ? BASE_NANOS
                  : Math.min(w.interval * 2, BOUND_NANOS);
          w.due = now + w.interval;
        }
        nextDue = Math.min(nextDue, w.due);
        watches.set(kept++, w);
      }
      watches.subList(kept, watches.size()).clear();
      if (watches.isEmpty()) {
        if (incoming == null) {
          watches = new ArrayList<>(); // let go of a big array left by a mass cancellation
          LockSupport.park(Redelivery.class);
        }
      } else {
        long wait = nextDue - System.nanoTime();
        if (wait > 0L) {
          LockSupport.parkNanos(Redelivery.class, wait);
        }
      }
    }
  }

  private static final VarHandle INCOMING;

  static {
    try {
      INCOMING =
          MethodHandles.lookup().findStaticVarHandle(Redelivery.class, "incoming", ThreadState.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
