package dev.taskgroup;

import dev.taskgroup.internal.OneLine;
import dev.taskgroup.internal.TreeCapture;
import dev.taskgroup.internal.TreeNode;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.List;

/**
 * A picture of every live task group, cancel scope and task of the process, as a tree: what runs,
 * what is cancelled, and which thread does not finish. Like {@code pstree}, or Python's {@code
 * python -m asyncio pstree PID}.
 *
 * {@snippet :
 * TaskTree tree = TaskTree.capture();
 * System.out.print(tree.format());
 * // group 'orders' cancelled #3 "main" parked on <dev.taskgroup.internal.Group@31b70d0b> (...)
 * // └─ task 'fetch-prices' cancelled #24 "fetch-prices" redeliveries=974 (cancelled by
 * //    thread "main": client went away, 7411 ms ago)
 * }
 *
 * <p>Each node says its kind ({@code group}, {@code scope} or {@code task}), its name (a group's
 * given or generated name, a task's name; a cancel scope has none), its state, the thread that runs
 * it, its deadline, and, while it is cancelled, why, how long ago, and how many times the
 * cancellation interrupt was delivered again to its thread after being swallowed. The states:
 *
 * <ul>
 *   <li>{@code running}: running and not cancelled;
 *   <li>{@code cancelled}: running while cancelled (also while a cancelled group's owner waits for
 *       its children);
 *   <li>{@code joining}: a group whose body has ended and whose owner waits for its children;
 *   <li>{@code done}: finished (seen only in {@code toString()} of a finished group, scope or task;
 *       a capture leaves finished nodes out). A group or scope that has not run yet says {@code
 *       new} in its {@code toString()}.
 * </ul>
 *
 * <p>The roots are the outermost groups and scopes of the threads that are not tasks; each node's
 * children are the scopes and groups nested in it on the same thread, then, for a group, its
 * running children in fork order. A capture is taken without stopping anything: a node that starts
 * or ends during it may be missing or present. Its cost is proportional to the live nodes; keeping
 * the tree costs a fork or join nothing.
 *
 * <p>From outside the process, the same tree is served by the JMX bean {@code
 * dev.taskgroup:type=TaskTree} (operations {@code format} and {@code toJson}), registered when a
 * thread first uses the library. It is unregistered once no thread that has used the library is
 * alive and none has started using it for a minute (system property {@code
 * dev.taskgroup.keepAliveMillis}), so that a class loader that loaded the library can be collected;
 * the next thread to use it registers the bean again.
 */
public final class TaskTree {
  /** Deeper than this, a line gives its depth instead of more indentation. */
  private static final int DRAWN_DEPTH = 64;

  private final List<TreeNode> roots;

  private TaskTree(List<TreeNode> roots) {
    this.roots = roots;
  }

  /**
   * Captures every live group, scope and task of the process.
   *
   * @return the tree as it is now
   */
  public static TaskTree capture() {
    return new TaskTree(TreeCapture.capture());
  }

  /**
   * The tree as text, one line per node, indented like {@code pstree}: kind, name (quoted), state,
   * {@code #} thread id and the thread's name (quoted), then, when they apply, {@code deadline=},
   * {@code redeliveries=N} (when not zero), for a group whose owner waits for its children {@code
   * parked on <dev.taskgroup.internal.Group@1b6d3586>} (the object a JDK thread dump shows the
   * owner "parking to wait for"), and the cancel reason and age. Below 64 levels a line says its
   * depth ({@code … 65 └─ scope ...}) instead of indenting further. In names and reasons, line
   * breaks and other control characters are written as Java escapes ({@code \n}), and a backslash
   * or a quote that would end the quoted text is escaped with a backslash, so that every node stays
   * on its own line.
   *
   * {@snippet :
   * System.out.print(TaskTree.capture().format());
   * }
   *
   * @return the text, ending in a line break; empty when nothing runs
   */
  public String format() {
    StringBuilder sb = new StringBuilder();
    ArrayDeque<Object[]> stack = new ArrayDeque<>(); // {node, prefix, isLast, depth}
    for (int i = roots.size() - 1; i >= 0; i--) {
      stack.push(new Object[] {roots.get(i), "", Boolean.TRUE, 0});
    }
    while (!stack.isEmpty()) {
      Object[] e = stack.pop();
      TreeNode n = (TreeNode) e[0];
      String prefix = (String) e[1];
      boolean last = (Boolean) e[2];
      int depth = (Integer) e[3];
      if (depth > DRAWN_DEPTH) {
        sb.append(prefix).append("… ").append(depth).append(last ? " └─ " : " ├─ ");
      } else if (depth > 0) {
        sb.append(prefix).append(last ? "└─ " : "├─ ");
      }
      line(sb, n);
      String childPrefix =
          depth == 0 || depth >= DRAWN_DEPTH ? prefix : prefix + (last ? "   " : "│  ");
      List<TreeNode> c = n.children();
      for (int i = c.size() - 1; i >= 0; i--) {
        stack.push(new Object[] {c.get(i), childPrefix, i == c.size() - 1, depth + 1});
      }
    }
    return sb.toString();
  }

  private static void line(StringBuilder sb, TreeNode n) {
    sb.append(n.kind);
    if (n.name != null) {
      sb.append(" '");
      OneLine.append(sb, n.name, '\'');
      sb.append('\'');
    }
    sb.append(' ').append(n.state);
    if (n.threadId >= 0) {
      sb.append(" #").append(n.threadId).append(" \"");
      OneLine.append(sb, n.threadName, '"');
      sb.append('"');
    }
    if (n.deadline != null) {
      sb.append(" deadline=").append(n.deadline);
    }
    if (n.redeliveries != 0) {
      sb.append(" redeliveries=").append(n.redeliveries);
    }
    if (n.parkedOn != null) {
      sb.append(" parked on <").append(n.parkedOn).append('>');
    }
    if (n.cancelReason != null) {
      sb.append(" (");
      OneLine.append(sb, n.cancelReason, ')');
      if (n.cancelledMillisAgo >= 0) {
        sb.append(", ").append(n.cancelledMillisAgo).append(" ms ago");
      }
      sb.append(')');
    }
    sb.append('\n');
  }

  /**
   * The tree as JSON: {@code {"roots":[node...]}}, each node {@code {"kind", "name", "state",
   * "threadId", "threadName", "deadline", "cancelReason", "cancelledMillisAgo", "redeliveries",
   * "children":[node...]}}. {@code threadId} is a number, the {@link Thread#threadId()} that {@code
   * jcmd <pid> Thread.dump_to_file -format=json} lists as a thread's {@code "tid"}; {@code
   * deadline} is ISO-8601; {@code name}, {@code threadName}, {@code deadline}, {@code cancelReason}
   * and {@code cancelledMillisAgo} are null when they do not apply.
   *
   * {@snippet :
   * String json = TaskTree.capture().toJson(); // {"roots":[{"kind":"group",...}]}
   * }
   *
   * @return the JSON text
   */
  public String toJson() {
    StringBuilder sb = new StringBuilder("{\"roots\":[");
    // Explicit stack of iterators: a node's children are written between its "[" and "]".
    ArrayDeque<Iterator<TreeNode>> stack = new ArrayDeque<>();
    stack.push(roots.iterator());
    boolean first = true;
    while (!stack.isEmpty()) {
      Iterator<TreeNode> it = stack.peek();
      if (!it.hasNext()) {
        stack.pop();
        sb.append("]}"); // a node's children and the node; or the roots and the whole
        first = false;
        continue;
      }
      TreeNode n = it.next();
      if (!first) {
        sb.append(',');
      }
      node(sb, n);
      sb.append(",\"children\":[");
      stack.push(n.children().iterator());
      first = true;
    }
    return sb.toString();
  }

  private static void node(StringBuilder sb, TreeNode n) {
    sb.append("{\"kind\":");
    str(sb, n.kind);
    sb.append(",\"name\":");
    str(sb, n.name);
    sb.append(",\"state\":");
    str(sb, n.state);
    sb.append(",\"threadId\":");
    sb.append(n.threadId < 0 ? "null" : Long.toString(n.threadId));
    sb.append(",\"threadName\":");
    str(sb, n.threadName);
    sb.append(",\"deadline\":");
    str(sb, n.deadline == null ? null : n.deadline.toString());
    sb.append(",\"cancelReason\":");
    str(sb, n.cancelReason);
    sb.append(",\"cancelledMillisAgo\":");
    sb.append(n.cancelledMillisAgo < 0 ? "null" : Long.toString(n.cancelledMillisAgo));
    sb.append(",\"redeliveries\":").append(n.redeliveries);
  }

  private static void str(StringBuilder sb, String s) {
    if (s == null) {
      sb.append("null");
      return;
    }
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20 || (Character.isSurrogate(c) && !pairedAt(s, i))) {
            // A lone surrogate (a name cut in the middle of a character) cannot be encoded in
            // UTF-8: escaped, it still reads back as the same string.
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    sb.append('"');
  }

  /** Whether the surrogate at {@code i} is half of a pair (a character beyond 16 bits). */
  private static boolean pairedAt(String s, int i) {
    char c = s.charAt(i);
    return Character.isHighSurrogate(c)
        ? i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))
        : i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
  }

  /**
   * The same as {@link #format()}.
   *
   * @return the tree as text
   */
  @Override
  public String toString() {
    return format();
  }
}
