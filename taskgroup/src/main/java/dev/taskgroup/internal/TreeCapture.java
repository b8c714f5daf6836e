package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Captures the tree of every live group, scope and task of the process, for {@code
 * dev.taskgroup.TaskTree}.
 *
 * <pre>
 * Implementation overview
 *
 * The walk starts at every registered thread that is not a task (TreeRoots) and follows the
 * same links a cancellation follows (see Scope): a thread's chain of scopes downward through
 * `inner`, a group's live children (ChildList.forEachLive), and each child's own chain. Nothing
 * is locked, so the tree is a best-effort picture of a moving target: a scope entered or left,
 * or a child forked or finished, during the walk may be missed or shown. The cost is
 * proportional to the live nodes (finished children are skipped). An explicit stack, never
 * recursion: a test nests 10 000 scopes.
 * </pre>
 */
public final class TreeCapture {
  private TreeCapture() {}

  /**
   * A node's state: for a task, {@code done} once its thread is done with it, else {@code
   * cancelled} or {@code running} (also before its thread starts), by the task's own scope and
   * those above it, as for a group (a cancelled scope or group nested in the task's code is a node
   * of its own, and says so); for a group or scope, {@code new} before it runs, {@code done} after,
   * {@code cancelled} while effectively cancelled, {@code joining} for a group whose body has ended
   * and whose owner waits for the children, otherwise {@code running}.
   */
  static String state(Scope s) {
    if (s instanceof TaskImpl<?> t) {
      if (t.isFinished()) {
        return "done";
      }
      return Scope.effectivelyCancelled(t) ? "cancelled" : "running";
    }
    int f = s.flags;
    if ((f & Scope.EXITED) != 0) {
      return "done";
    }
    if ((f & Scope.ENTERED) == 0) {
      return "new";
    }
    if (Scope.effectivelyCancelled(s)) {
      return "cancelled";
    }
    return s instanceof Group g && g.joining() ? "joining" : "running";
  }

  /**
   * When {@code cause} (a cancelled node) was first cancelled, on System.nanoTime, or 0 if that
   * cannot be told: its reason's time, or for an expired deadline the deadline itself.
   */
  static long cancelledAt(Scope cause) {
    CancelReason r = cause.reason();
    if (r == null) {
      return 0L;
    }
    if (r.atNanos() != 0L) {
      return r.atNanos();
    }
    Deadlines.Deadline d = cause.deadline();
    if (r.kind() != CancelReason.Kind.DEADLINE || d == null) {
      return 0L;
    }
    // The deadline is on the library's clock, which a test clock (or one closed before) shifts
    // away from System.nanoTime: carry it over, so that its age is neither negative nor stuck.
    long onSystemClock = d.nanos - LibraryClock.nanoTime() + System.nanoTime();
    return onSystemClock == 0L ? 1L : onSystemClock;
  }

  /** A chain of scopes still to walk, and the list its first node goes into. */
  private record Pending(Scope first, List<TreeNode> into) {}

  /** The roots of the tree, one per top-level scope or group of a thread that is not a task. */
  public static List<TreeNode> capture() {
    long now = System.nanoTime();
    List<TreeNode> roots = new ArrayList<>();
    ArrayDeque<Pending> stack = new ArrayDeque<>();
    for (ThreadState ts : TreeRoots.live()) {
      Scope first = ts.below();
      if (first != null) {
        stack.push(new Pending(first, roots));
      }
    }
    while (!stack.isEmpty()) {
      Pending p = stack.pop();
      List<TreeNode> into = p.into();
      for (Scope s = p.first(); s != null; s = s.below()) {
        TreeNode node = node(s, now);
        if (node.state.equals("done")) {
          break; // finished since it was reached (and so has all below it): a capture leaves it out
        }
        into.add(node);
        if (s instanceof Group g) {
          List<TreeNode> below = node.children;
          List<Pending> tasks = new ArrayList<>();
          g.children.forEachLive(t -> tasks.add(new Pending(t, below)));
          for (int i = tasks.size() - 1; i >= 0; i--) {
            stack.push(tasks.get(i)); // popped in fork order, after this chain
          }
        }
        into = node.children;
      }
    }
    return roots;
  }

  private static TreeNode node(Scope s, long now) {
    String kind;
    String name;
    Thread thread;
    ThreadState ts;
    if (s instanceof TaskImpl<?> t) {
      kind = "task";
      String n = t.name();
      name = n.isEmpty() ? null : n;
      thread = t.thread;
      ts = t;
    } else {
      kind = s instanceof Group ? "group" : "scope";
      name = s instanceof Group g ? g.name() : null;
      ts = s.home();
      thread = ts == null ? null : ts.thread;
    }
    String state = s.treeState();
    Instant deadline = null;
    if (s instanceof EnteredScope entered && entered.deadline != null) {
      deadline = Deadlines.deadline(entered).orElse(null);
    }
    String reason = null;
    long ago = -1L;
    int redeliveries = 0;
    if (state.equals("cancelled")) {
      Scope cause = Scope.cancelledAbove(s);
      if (cause != null) {
        CancelReason r = cause.reason();
        reason = r == null ? null : r.describe();
        long at = cancelledAt(cause);
        ago = at == 0L ? -1L : TimeUnit.NANOSECONDS.toMillis(Math.max(0L, now - at));
      }
      redeliveries = ts == null ? 0 : ts.redeliveries();
    }
    // JDK thread dumps print a park blocker as its identity string, never its toString(): give
    // it here too, so that a dump's "parking to wait for <...Group@hash>" finds its group.
    String parkedOn = s instanceof Group g && g.joining() ? Objects.toIdentityString(g) : null;
    return new TreeNode(kind, name, state, thread, deadline, reason, ago, redeliveries, parkedOn);
  }
}
