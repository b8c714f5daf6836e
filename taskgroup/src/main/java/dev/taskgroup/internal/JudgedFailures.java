package dev.taskgroup.internal;

import java.lang.ref.WeakReference;
import java.util.ArrayList;

/**
 * The exceptions that scope exits on one thread let through as failures (see {@link Cancellation},
 * "the judgment travels with the exception"). Confined to that thread, and touched only on
 * exception paths.
 *
 * <p>More than one can be travelling at once: a judged failure on its way out runs a {@code
 * finally} block whose own shielded cleanup fails, is judged, and is caught there. Keeping only the
 * last judgment would make the first exception look like the cancellation again at the next exit,
 * and a cancelled scope would absorb it: a lost failure. So every judgment is kept while its
 * exception lives.
 *
 * <p>Weak: a judgment matters only while its exception travels (then the frames that throw it hold
 * it), and a thread that lives on (a pool's) must not keep the failures that left its scopes.
 * Cleared entries are dropped on each addition; past {@link #LIMIT} live entries (exceptions that
 * someone else keeps, such as a log of handled failures) the oldest is dropped: the one travelling
 * now is the newest or close to it.
 */
final class JudgedFailures {
  /** Live judgments kept at most; far more than can be travelling on one thread at once. */
  static final int LIMIT = 16;

  private final ArrayList<WeakReference<Throwable>> judged = new ArrayList<>(2);

  /** Whether {@code t} itself was judged a failure on this thread. */
  boolean contains(Throwable t) {
    for (int i = 0, n = judged.size(); i < n; i++) {
      if (judged.get(i).get() == t) {
        return true;
      }
    }
    return false;
  }

  /** Records {@code t} as judged a failure. */
  void add(Throwable t) {
    judged.removeIf(ref -> ref.get() == null);
    if (contains(t)) {
      return;
    }
    if (judged.size() == LIMIT) {
      judged.remove(0);
    }
    judged.add(new WeakReference<>(t));
  }

  /** The number of live judgments (for tests). */
  int size() {
    judged.removeIf(ref -> ref.get() == null);
    return judged.size();
  }
}
