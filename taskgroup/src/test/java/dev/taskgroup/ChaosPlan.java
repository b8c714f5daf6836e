package dev.taskgroup;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A random task tree, generated from a seed: nested groups and scopes (shields, deadlines,
 * policies, limits) whose bodies and children do random things: return, fail, block in various JDK
 * calls (bounded, so an uncancelled tree always ends), swallow interrupts, fork more children into
 * an enclosing group, cancel a random node, interrupt the root owner. The same seed gives the same
 * tree; timing is free.
 */
final class ChaosPlan {
  /** What a leaf does. */
  enum Act {
    RETURN,
    FAIL,
    SLEEP,
    PARK,
    LOCK,
    QUEUE,
    SOCKET,
    SWALLOW,
    CANCEL,
    FORK_INTO,
    INTERRUPT_ROOT,
    /** Block, then fail from shielded cleanup (in a finally, or after swallowing). */
    CLEANUP_FAIL,
    /** Fork a failing child into the innermost group, get() it, rethrow what get() threw. */
    GET_FAILED
  }

  /** How a CLEANUP_FAIL fails: the kind of exception thrown from the shield. */
  enum FailureKind {
    UNCHECKED,
    CHECKED,
    IO,
    SOCKET_TIMEOUT
  }

  /** Where a CLEANUP_FAIL's shield runs. */
  enum CleanupShape {
    FINALLY,
    AFTER_SWALLOWING,
    NESTED_SHIELDS
  }

  sealed interface Node permits GroupNode, ScopeNode, Leaf {}

  /** A task group: body items run in order on the owner; children are forked first. */
  record GroupNode(
      int id,
      boolean collect,
      boolean handler,
      int maxConcurrency,
      long timeoutMillis,
      boolean shielded,
      List<Node> children,
      List<Node> body)
      implements Node {}

  /** A plain cancel scope run inline. */
  record ScopeNode(int id, boolean shielded, long timeoutMillis, List<Node> body) implements Node {}

  /**
   * A leaf action. {@code millis}: how long it blocks; {@code target}: the node a CANCEL cancels,
   * or how many ancestors up a FORK_INTO forks into; {@code failureId}: the id of an injected
   * failure; {@code inner}: what a SWALLOW blocks in, {@code repeats} times; {@code forked}: what a
   * FORK_INTO forks; for CLEANUP_FAIL, {@code target} is the {@link FailureKind} and {@code
   * repeats} the {@link CleanupShape} (their ordinals).
   */
  record Leaf(Act act, int millis, int target, int failureId, Act inner, int repeats, Leaf forked)
      implements Node {
    static Leaf of(Act act, int millis) {
      return new Leaf(act, millis, 0, 0, null, 0, null);
    }

    FailureKind kind() {
      return FailureKind.values()[target];
    }

    CleanupShape shape() {
      return CleanupShape.values()[repeats];
    }
  }

  final long seed;
  final Node root;

  /** Number of groups and scopes (their ids are 0..nodes-1). */
  final int nodes;

  final int failures;
  final boolean interruptsRoot;

  private final SplittableRandom rnd;
  private int nextNode;
  private int nextFailure;
  private boolean interrupts;

  private ChaosPlan(long seed) {
    this.seed = seed;
    this.rnd = new SplittableRandom(seed);
    this.root = group(0);
    this.nodes = nextNode;
    this.failures = nextFailure;
    this.interruptsRoot = interrupts;
  }

  static ChaosPlan generate(long seed) {
    return new ChaosPlan(seed);
  }

  private GroupNode group(int depth) {
    int id = nextNode++;
    boolean collect = rnd.nextInt(5) == 0;
    boolean handler = collect && rnd.nextBoolean();
    int max = rnd.nextInt(5) == 0 ? 1 + rnd.nextInt(3) : 0;
    long timeout = rnd.nextInt(6) == 0 ? rnd.nextInt(40) : -1;
    boolean shielded = depth > 0 && rnd.nextInt(8) == 0;
    List<Node> children = new ArrayList<>();
    int nChildren = rnd.nextInt(depth == 0 ? 2 : 0, depth >= 3 ? 3 : 5);
    for (int i = 0; i < nChildren; i++) {
      children.add(item(depth + 1, true));
    }
    List<Node> body = new ArrayList<>();
    int nBody = rnd.nextInt(0, 3);
    for (int i = 0; i < nBody; i++) {
      body.add(item(depth + 1, false));
    }
    return new GroupNode(id, collect, handler, max, timeout, shielded, children, body);
  }

  private ScopeNode scope(int depth) {
    int id = nextNode++;
    boolean shielded = rnd.nextInt(5) == 0;
    // A shielded scope never gets cancelled from above: give it a deadline so it always ends.
    long timeout = shielded || rnd.nextInt(3) == 0 ? rnd.nextInt(40) : -1;
    List<Node> body = new ArrayList<>();
    int n = rnd.nextInt(1, 3);
    for (int i = 0; i < n; i++) {
      body.add(item(depth + 1, false));
    }
    return new ScopeNode(id, shielded, timeout, body);
  }

  private Node item(int depth, boolean isChild) {
    int roll = rnd.nextInt(100);
    if (depth < 4 && roll < 12) {
      return group(depth);
    }
    if (depth < 4 && roll < 22) {
      return scope(depth);
    }
    return leaf(depth);
  }

  private Leaf leaf(int depth) {
    int roll = rnd.nextInt(100);
    int ms = rnd.nextInt(1, 30);
    if (rnd.nextInt(100) < 12) {
      return specialLeaf(ms);
    }
    if (roll < 10) {
      return Leaf.of(Act.RETURN, 0);
    } else if (roll < 22) {
      return new Leaf(Act.FAIL, 0, 0, nextFailure++, null, 0, null);
    } else if (roll < 34) {
      return Leaf.of(Act.SLEEP, ms);
    } else if (roll < 42) {
      return Leaf.of(Act.PARK, ms);
    } else if (roll < 48) {
      return Leaf.of(Act.LOCK, ms);
    } else if (roll < 54) {
      return Leaf.of(Act.QUEUE, ms);
    } else if (roll < 60) {
      return Leaf.of(Act.SOCKET, ms);
    } else if (roll < 72) {
      Act inner = new Act[] {Act.SLEEP, Act.PARK, Act.QUEUE, Act.LOCK}[rnd.nextInt(4)];
      return new Leaf(Act.SWALLOW, ms, 0, 0, inner, 1 + rnd.nextInt(3), null);
    } else if (roll < 86) {
      int target = rnd.nextInt(Math.max(1, nextNode + 2)); // may name a node not made yet
      return new Leaf(Act.CANCEL, rnd.nextInt(10), target, 0, null, 0, null);
    } else if (roll < 97 || interrupts || depth > 6) {
      Leaf forked = depth > 6 ? Leaf.of(Act.RETURN, 0) : leaf(depth + 1);
      return new Leaf(Act.FORK_INTO, 0, rnd.nextInt(3), 0, null, 0, forked);
    } else {
      interrupts = true;
      return Leaf.of(Act.INTERRUPT_ROOT, rnd.nextInt(20));
    }
  }

  /** The shapes that once lost or doubled a failure: shielded cleanup, a body that get()s. */
  private Leaf specialLeaf(int ms) {
    if (rnd.nextInt(3) == 0) {
      return new Leaf(Act.GET_FAILED, 0, 0, nextFailure++, null, 0, null);
    }
    int kind = rnd.nextInt(FailureKind.values().length);
    int shape = rnd.nextInt(CleanupShape.values().length);
    return new Leaf(Act.CLEANUP_FAIL, ms, kind, nextFailure++, Act.SLEEP, shape, null);
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("seed ").append(seed).append('\n');
    describe(root, "", sb);
    return sb.toString();
  }

  private static void describe(Node n, String indent, StringBuilder sb) {
    switch (n) {
      case GroupNode g -> {
        sb.append(indent).append("group#").append(g.id());
        if (g.collect()) sb.append(g.handler() ? " COLLECT+handler" : " COLLECT");
        if (g.maxConcurrency() > 0) sb.append(" max=").append(g.maxConcurrency());
        if (g.timeoutMillis() >= 0) sb.append(" timeout=").append(g.timeoutMillis()).append("ms");
        if (g.shielded()) sb.append(" shielded");
        sb.append('\n');
        for (Node c : g.children()) {
          sb.append(indent).append("  child:\n");
          describe(c, indent + "    ", sb);
        }
        for (Node b : g.body()) {
          sb.append(indent).append("  body:\n");
          describe(b, indent + "    ", sb);
        }
      }
      case ScopeNode s -> {
        sb.append(indent).append("scope#").append(s.id());
        if (s.shielded()) sb.append(" shielded");
        if (s.timeoutMillis() >= 0) sb.append(" timeout=").append(s.timeoutMillis()).append("ms");
        sb.append('\n');
        for (Node b : s.body()) {
          describe(b, indent + "  ", sb);
        }
      }
      case Leaf l -> sb.append(indent).append(l).append('\n');
    }
  }
}
