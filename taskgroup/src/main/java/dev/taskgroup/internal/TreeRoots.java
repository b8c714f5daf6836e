package dev.taskgroup.internal;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Where a task tree starts: the state of every live thread that is not a task and has entered a
 * scope or group at some time. Everything else is reached from these by walking down: a thread's
 * chain of scopes (Scope.inner), a group's live children (ChildList.forEachLive), and each child's
 * own chain.
 *
 * <pre>
 * Implementation overview
 *
 * A thread registers once, when its ThreadState is made (ThreadState.current): forks, joins and
 * scope entries pay nothing, and a task's thread never registers (its group reaches it). The
 * set is a concurrent hash set of weak references: a live thread keeps its own state strongly
 * (ThreadState.CURRENT, in the thread's ThreadLocal map, which the JDK drops when the thread
 * ends), so an entry is cleared only after its thread has ended, and the set never keeps a dead
 * thread, nor through it the Runnable the JDK's Thread object still holds and what that
 * captured. The entries of threads that have ended are removed by a sweep, run by an adding
 * thread that finds the adds since the last sweep above the threshold (amortised O(1) per add),
 * and by every capture.
 *
 * `sweepAt` is the add count at which the next sweep runs; `adds` counts adds; both atomic.
 * Invariant: every live non-task thread that has a ThreadState is in `STATES`.
 * </pre>
 */
final class TreeRoots {
  private static final Set<WeakReference<ThreadState>> STATES = ConcurrentHashMap.newKeySet();
  private static final AtomicLong ADDS = new AtomicLong();
  private static final ReentrantLock SWEEPING = new ReentrantLock();
  private static volatile long sweepAt = 256L;

  /**
   * Whether the JMX bean has a keeper (TreeBean), or java.management is absent. Cleared by an
   * ending keeper, which then looks at STATES: add() writes STATES, then reads this.
   */
  static volatile boolean beanKept;

  private TreeRoots() {}

  /** Registers the state of the calling thread, just made. */
  static void add(ThreadState ts) {
    STATES.add(new WeakReference<>(ts)); // identity equality: one entry per registration
    if (!beanKept) {
      keepBean();
    }
    if (ADDS.incrementAndGet() >= sweepAt && SWEEPING.tryLock()) {
      try {
        sweep();
      } finally {
        SWEEPING.unlock();
      }
    }
  }

  /**
   * Serves the tree over JMX too, from the library's first use (the first thread to enter a scope
   * or group) for as long as it is used (see TreeBean). TreeBean is loaded only inside this guard:
   * java.management may be absent, and then the tree is still available through TaskTree.capture.
   */
  private static void keepBean() {
    try {
      TreeBean.keep();
    } catch (LinkageError noJmx) {
      beanKept = true; // for good
    }
  }

  /** How many threads have registered since the JVM started: grows whenever one starts using it. */
  static long adds() {
    return ADDS.get();
  }

  /** The registered states of live threads, in no particular order. */
  static List<ThreadState> live() {
    List<ThreadState> out = new ArrayList<>();
    for (WeakReference<ThreadState> ref : STATES) {
      ThreadState ts = ref.get();
      if (ts != null && ts.thread.isAlive()) {
        out.add(ts);
      } else {
        STATES.remove(ref);
      }
    }
    return out;
  }

  private static void sweep() {
    STATES.removeIf(
        ref -> {
          ThreadState ts = ref.get();
          return ts == null || !ts.thread.isAlive();
        });
    sweepAt = ADDS.get() + Math.max(256L, STATES.size());
  }
}
