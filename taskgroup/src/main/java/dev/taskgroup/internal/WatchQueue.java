package dev.taskgroup.internal;

/**
 * A first-in, first-out queue of the re-delivery watcher's watches: a ring of thread states, each
 * with one time (when the watcher took it, or when its next check is due). The watcher always adds
 * with a time no earlier than the last one added, so the first entry has the earliest time and a
 * pass takes from the front only what is due: a pass costs what it checks, not what it watches.
 *
 * <p>Not thread-safe: only the watcher thread touches a queue. An entry taken out is cleared at
 * once, so the queue keeps no thread state of a watch that was dropped (nor, through it, a finished
 * task's result or failure). The ring doubles when full and goes back to its first capacity once
 * emptied ({@link #shrinkIfEmpty}), so a mass cancellation of a million threads does not keep a
 * million slots for the life of the JVM.
 */
final class WatchQueue {
  /** The first capacity: a power of two, as every capacity is (an index is masked, not divided). */
  static final int INITIAL_CAPACITY = 64;

  private ThreadState[] watched = new ThreadState[INITIAL_CAPACITY];

  private long[] times = new long[INITIAL_CAPACITY];

  /** The slot of the first entry. */
  private int head;

  private int size;

  boolean isEmpty() {
    return size == 0;
  }

  int size() {
    return size;
  }

  /** The first entry's time; only when not empty. */
  long firstTime() {
    return times[head];
  }

  /** Takes the first entry out; only when not empty. */
  ThreadState removeFirst() {
    ThreadState ts = watched[head];
    watched[head] = null;
    head = (head + 1) & (watched.length - 1);
    size--;
    return ts;
  }

  /** Adds {@code ts} last, with a time no earlier than that of any entry already in. */
  void add(ThreadState ts, long time) {
    if (size == watched.length) {
      grow();
    }
    int i = (head + size) & (watched.length - 1);
    watched[i] = ts;
    times[i] = time;
    size++;
  }

  /** Lets go of a large ring once the queue is empty. */
  void shrinkIfEmpty() {
    if (size == 0 && watched.length > INITIAL_CAPACITY) {
      watched = new ThreadState[INITIAL_CAPACITY];
      times = new long[INITIAL_CAPACITY];
      head = 0;
    }
  }

  private void grow() {
    int n = watched.length;
    ThreadState[] w = new ThreadState[n * 2];
    long[] t = new long[n * 2];
    int firstPart = n - head; // from head to the end of the ring, then the wrapped rest
    System.arraycopy(watched, head, w, 0, firstPart);
    System.arraycopy(watched, 0, w, firstPart, head);
    System.arraycopy(times, head, t, 0, firstPart);
    System.arraycopy(times, 0, t, firstPart, head);
    watched = w;
    times = t;
    head = 0;
  }
}
