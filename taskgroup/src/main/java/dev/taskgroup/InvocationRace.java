package dev.taskgroup;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The tasks of one {@link TaskGroup#invokeAny} or {@link TaskGroup#invokeAll}, and how the one that
 * ends the race (invokeAny: the first result; invokeAll: the first failure) stops the others.
 *
 * <p><b>Why not cancel the group.</b> The invoking group's body runs on the caller's thread, so the
 * group's own cancellation would interrupt the caller (as it leaves the shield it forks in). An
 * interrupt of the caller from someone else landing meanwhile could not be told from that one and
 * would be absorbed with it ({@link CancelScope}, "Interrupts"): invokeAny would return a result,
 * or invokeAll throw a failure, with the caller's interrupt lost. The task that ends the race
 * cancels its siblings one by one with {@link Task#cancel} instead; the library then never
 * interrupts the caller.
 *
 * <p><b>Stopping the forks.</b> The group does not refuse the forks that follow, so the body stops
 * by itself. Each side writes, then reads what the other wrote (a Dekker pair): the body adds a
 * task to {@code forked} (a monitor release) and then reads {@code first} (a volatile read); the
 * task that ends the race sets {@code first} (a CAS) and then reads {@code forked} (a monitor
 * acquire). In the synchronization order one of the two reads follows the other side's write, so
 * every task but the one that ended the race is cancelled by it, by the body once it sees it, or by
 * both (a second cancel returns false). A task is known by its index in the caller's list, which is
 * its index in {@code forked}: the body adds them in order and stops at the first refusal. A
 * refused fork ends the race too, on the caller's thread, with {@link #REFUSED}: every task forked
 * is then cancelled.
 */
final class InvocationRace {
  /** The index that ends the race when a fork was refused: no task has it. */
  static final int REFUSED = Integer.MAX_VALUE;

  private final AtomicInteger first = new AtomicInteger(-1); // the index that ended the race
  private final List<Task<?>> forked; // guarded by itself

  InvocationRace(int size) {
    forked = new ArrayList<>(size);
  }

  /**
   * Task {@code index} ends the race, if no task has yet: it cancels every other task forked so
   * far.
   *
   * @return true if this call ended the race
   */
  boolean end(int index) {
    if (!first.compareAndSet(-1, index)) {
      return false;
    }
    Task<?>[] all;
    synchronized (forked) {
      all = forked.toArray(new Task<?>[0]);
    }
    for (int i = 0; i < all.length; i++) {
      if (i != index) {
        all[i].cancel(true);
      }
    }
    return true;
  }

  /**
   * The body forked task {@code index} as {@code t}: true to go on forking; false once the race has
   * ended, with {@code t} cancelled unless it ended it.
   */
  boolean entered(int index, Task<?> t) {
    synchronized (forked) {
      forked.add(t);
    }
    int ended = first.get();
    if (ended < 0) {
      return true;
    }
    if (ended != index) {
      t.cancel(true);
    }
    return false;
  }

  /** The tasks forked, in order; read once the group has ended. */
  List<Task<?>> forked() {
    synchronized (forked) {
      return List.copyOf(forked);
    }
  }
}
