package dev.taskgroup.internal;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;

/**
 * The exceptions that scope exits on one thread let through as failures (see {@link Cancellation},
 * "the judgment travels with the exception"). Confined to that thread, and touched only on
 * exception paths. (A group also keeps the failures it has reported in one, under its monitor: see
 * GroupFailures.)
 *
 * <p>More than one can be travelling at once: a judged failure on its way out runs a {@code
 * finally} block whose own shielded cleanups fail, are judged, and are caught there, often kept
 * (suppressed on the first, collected in a list). Forgetting any judgment while its exception lives
 * would make it look like the cancellation again at the next exit, and a cancelled scope would
 * absorb it: a lost failure. So every judgment is kept while its exception lives, however many
 * there are (an earlier version kept 16 and dropped the oldest: the one travelling).
 *
 * <p>Weak: a judgment matters only while its exception travels (then the frames that throw it hold
 * it), and a thread that lives on (a pool's) must not keep the failures that left its scopes. An
 * open-addressing table keyed by identity (an exception's own {@code equals} and {@code hashCode}
 * are the user's): cleared entries stay as tombstones until the table is rebuilt, which happens
 * when it fills up and sizes it from the live entries, or, when an add finds that the live entries
 * fill less than an eighth of a grown table, to shrink it. (Filling up alone never shrank it: a
 * supervisor whose children failed 100 000 times between two collections, each failure handed to
 * its handler and dropped, kept a table of 262 144 slots and its cleared references for good, since
 * the next failures never filled it again.) The collector tells which entries were cleared through
 * a reference queue, polled on add: no walk of the table.
 */
final class JudgedFailures {
  private static final int MIN_CAPACITY = 4;

  /** A power of two; null slots end a probe, cleared references do not. */
  @SuppressWarnings("unchecked")
  private WeakReference<Throwable>[] table = new WeakReference[MIN_CAPACITY];

  /** Slots not null (live or cleared). */
  private int used;

  /** Where the collector puts the entries it cleared (polled on add, to count the live ones). */
  private final ReferenceQueue<Throwable> cleared = new ReferenceQueue<>();

  /**
   * Entries added and not yet seen cleared: the live ones, or fewer (an entry cleared during a
   * rebuild is not counted there and may be polled again after; it only brings a rebuild earlier).
   */
  private int live;

  /** Whether {@code t} itself was judged a failure on this thread. */
  boolean contains(Throwable t) {
    WeakReference<Throwable>[] tab = table;
    int mask = tab.length - 1;
    for (int i = slot(t, mask); ; i = (i + 1) & mask) {
      WeakReference<Throwable> ref = tab[i];
      if (ref == null) {
        return false;
      }
      if (ref.get() == t) {
        return true;
      }
    }
  }

  /** Records {@code t} as judged a failure. */
  void add(Throwable t) {
    if (contains(t)) {
      return;
    }
    while (cleared.poll() != null) {
      live--;
    }
    if ((used + 1) * 4 > table.length * 3
        || (table.length > SHRINK_ABOVE && Math.max(live, 0) * 8 < table.length)) {
      rebuild();
    }
    insert(table, new WeakReference<>(t, cleared), t);
    used++;
    live++;
  }

  /** A table up to this capacity is never rebuilt only to shrink it. */
  private static final int SHRINK_ABOVE = 64;

  /** The number of live judgments (for tests). */
  int size() {
    int n = 0;
    for (WeakReference<Throwable> ref : table) {
      if (ref != null && ref.get() != null) {
        n++;
      }
    }
    return n;
  }

  /** The table's capacity (for tests: it shrinks again once its entries were cleared). */
  int capacity() {
    return table.length;
  }

  /** Drops the cleared entries, into a table sized for the live ones and as many more. */
  @SuppressWarnings("unchecked")
  private void rebuild() {
    while (cleared.poll() != null) {
      // counted again below
    }
    int live = size();
    int capacity = MIN_CAPACITY;
    while (capacity * 3 < (live + 1) * 2 * 4) { // at most 3/8 full after: room to grow
      capacity <<= 1;
    }
    WeakReference<Throwable>[] fresh = new WeakReference[capacity];
    int n = 0;
    for (WeakReference<Throwable> ref : table) {
      Throwable x = ref == null ? null : ref.get();
      if (x != null) {
        insert(fresh, ref, x);
        n++;
      }
    }
    table = fresh;
    used = n;
    this.live = n;
  }

  private static void insert(
      WeakReference<Throwable>[] tab, WeakReference<Throwable> ref, Throwable t) {
    int mask = tab.length - 1;
    int i = slot(t, mask);
    while (tab[i] != null) {
      i = (i + 1) & mask;
    }
    tab[i] = ref;
  }

  private static int slot(Throwable t, int mask) {
    int h = System.identityHashCode(t);
    return (h ^ (h >>> 16)) & mask;
  }
}
