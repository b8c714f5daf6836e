package dev.taskgroup.tools;

import com.sun.tools.attach.VirtualMachine;
import java.io.IOException;
import java.nio.charset.Charset;
import javax.management.InstanceNotFoundException;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * {@code taskgroup-tree PID [--text|--json]}: prints the task tree of a running JVM, like Python's
 * {@code python -m asyncio pstree PID}. It attaches to the JVM with the JDK's Attach API, starts
 * its local JMX agent, and calls the bean {@code dev.taskgroup:type=TaskTree} that the library
 * registers on its first use.
 *
 * <p>Exit status: 0 printed; 1 the JVM could not be attached to or has no taskgroup bean; 2 bad
 * arguments.
 */
public final class TreeTool {
  static final String BEAN = "dev.taskgroup:type=TaskTree";

  private TreeTool() {}

  /**
   * Runs the tool.
   *
   * @param args the PID, then optionally {@code --text} (the default) or {@code --json}
   */
  public static void main(String[] args) {
    if (args.length < 1 || args.length > 2 || !args[0].matches("[1-9]\\d*")) { // not 0, nor 00
      System.err.println(
          "usage: taskgroup-tree PID [--text|--json]\n"
              + "  prints the task tree of the running JVM PID (find it with jps or jcmd -l)");
      System.exit(2);
    }
    boolean json = args.length == 2 && args[1].equals("--json");
    if (args.length == 2 && !json && !args[1].equals("--text")) {
      System.err.println("unknown option " + args[1] + ": use --text or --json");
      System.exit(2);
    }
    try {
      String tree = fetch(args[0], json);
      Charset out = System.out.charset();
      System.out.print(json ? jsonForOutput(tree, out) : forOutput(tree, out));
      if (json) {
        System.out.println();
      }
    } catch (InstanceNotFoundException e) {
      System.err.println(
          "JVM "
              + args[0]
              + " has no "
              + BEAN
              + " bean: it has not used taskgroup yet (or not for a minute, no thread that"
              + " did being alive), or it runs on the module path without"
              + " java.management (add --add-modules java.management to its command line)");
      System.exit(1);
    } catch (Exception e) {
      System.err.println("could not read the task tree of JVM " + args[0] + ": " + e);
      System.exit(1);
    }
  }

  /**
   * The text as the output can show it: when its charset cannot encode the tree's box-drawing
   * characters (a terminal in the C or POSIX locale, whose charset is ASCII), they are drawn with
   * ASCII ({@code |-}, {@code `-}, {@code |}, {@code ...}) rather than printed as {@code ?}.
   *
   * @param text what {@link #fetch} returned
   * @param out the charset of the output
   * @return the text, drawn in ASCII if {@code out} cannot encode it
   */
  static String forOutput(String text, Charset out) {
    if (out.newEncoder().canEncode(text)) {
      return text;
    }
    return text.replace("\u251c\u2500", "|-")
        .replace("\u2514\u2500", "`-")
        .replace("\u2502", "|")
        .replace("\u2026", "...");
  }

  /**
   * The JSON as the output can encode it: when its charset cannot (the C or POSIX locale), every
   * character outside ASCII, which JSON has only inside strings, is written as a {@code \\uXXXX}
   * escape, which reads back as the same string (the text's ASCII drawing would change names).
   *
   * @param json what {@link #fetch} returned for JSON
   * @param out the charset of the output
   * @return the JSON, with escapes if {@code out} cannot encode it
   */
  static String jsonForOutput(String json, Charset out) {
    if (out.newEncoder().canEncode(json)) {
      return json;
    }
    StringBuilder sb = new StringBuilder(json.length() + 64);
    for (int i = 0; i < json.length(); i++) {
      char c = json.charAt(i);
      if (c < 0x80) {
        sb.append(c);
      } else {
        sb.append(String.format("\\u%04x", (int) c));
      }
    }
    return sb.toString();
  }

  /**
   * Attaches to JVM {@code pid} and returns its task tree.
   *
   * @param pid the process id
   * @param json JSON rather than text
   * @return what the bean's {@code format} or {@code toJson} returned
   * @throws Exception if the JVM cannot be attached to or has no bean
   */
  static String fetch(String pid, boolean json) throws Exception {
    VirtualMachine vm = VirtualMachine.attach(pid);
    String address;
    try {
      address = vm.startLocalManagementAgent();
    } finally {
      vm.detach();
    }
    try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
      return call(c.getMBeanServerConnection(), json);
    }
  }

  private static String call(MBeanServerConnection server, boolean json)
      throws IOException, javax.management.JMException {
    return (String) server.invoke(new ObjectName(BEAN), json ? "toJson" : "format", null, null);
  }
}
