package dev.taskgroup.internal;

import dev.taskgroup.internal.Deadlines.Deadline;
import java.util.Arrays;

/**
 * The pending deadlines of the process: a binary min-heap of {@link Deadline} entries ordered by
 * {@code nanos} (compared by difference, so that the order holds across the wrap of {@code
 * nanoTime}). Each entry keeps its own index, so a scope that exits takes its entry out in O(log
 * n).
 *
 * <p>Not thread-safe: every method is called under Deadlines.LOCK, which also guards each entry's
 * {@code index} and {@code queued}. The array doubles when full and halves when a quarter full
 * (never below {@link #INITIAL_CAPACITY}), so a burst of 100 000 concurrent deadlines does not keep
 * a 100 000-slot array for the life of the JVM, and an entry added and removed at the boundary
 * costs no copy each time (the next copy is at least a quarter of the capacity of operations away).
 */
final class DeadlineHeap {
  /** The smallest (and first) capacity. */
  static final int INITIAL_CAPACITY = 64;

  private Deadline[] heap = new Deadline[INITIAL_CAPACITY];

  private int size;

  /** The earliest entry, or null when none is pending. */
  Deadline peek() {
    return size == 0 ? null : heap[0];
  }

  /**
   * Adds an entry that is not in the heap.
   *
   * @return whether it is now the earliest (the timer must wake to wait for it)
   */
  boolean add(Deadline d) {
    if (size == heap.length) {
      heap = Arrays.copyOf(heap, size * 2);
    }
    d.index = size;
    d.queued = true;
    heap[size++] = d;
    siftUp(d.index);
    return d.index == 0;
  }

  /** Takes an entry out; nothing if it is not in the heap. */
  void remove(Deadline d) {
    int i = d.index;
    if (i < 0) {
      return;
    }
    d.index = -1;
    d.queued = false;
    Deadline last = heap[--size];
    heap[size] = null;
    if (last != d) {
      heap[i] = last;
      last.index = i;
      siftDown(i);
      siftUp(last.index);
    }
    if (heap.length > INITIAL_CAPACITY && size < heap.length / 4) {
      heap = Arrays.copyOf(heap, heap.length / 2);
    }
  }

  /** The array's length now. */
  int capacity() {
    return heap.length;
  }

  private void siftUp(int i) {
    Deadline d = heap[i];
    while (i > 0) {
      int p = (i - 1) >>> 1;
      Deadline parent = heap[p];
      if (parent.nanos - d.nanos <= 0L) {
        break;
      }
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = d;
    d.index = i;
  }

  private void siftDown(int i) {
    Deadline d = heap[i];
    int half = size >>> 1;
    while (i < half) {
      int c = 2 * i + 1;
      int r = c + 1;
      if (r < size && heap[r].nanos - heap[c].nanos < 0L) {
        c = r;
      }
      if (d.nanos - heap[c].nanos <= 0L) {
        break;
      }
      heap[i] = heap[c];
      heap[i].index = i;
      i = c;
    }
    heap[i] = d;
    d.index = i;
  }
}
