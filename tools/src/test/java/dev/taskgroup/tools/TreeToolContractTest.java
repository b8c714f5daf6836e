package dev.taskgroup.tools;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The tree tool's contract, against real child JVMs: the exit statuses its javadoc lists (2 for bad
 * arguments, 1 for a JVM that cannot be attached to or has no bean), names with quotes, line breaks
 * and non-ASCII characters (every node on its own line in the text, valid JSON that gives the names
 * back unchanged), a large tree, and captures taken while groups start and finish all the time.
 * Closest upstream: CPython's {@code test_asyncio/test_tools.py} ({@code python -m asyncio
 * pstree}).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TreeToolContractTest {
  static final String ODD = "it's \"odd\"\\ name\nsecond line\u2028ünïcødé ✓ ├─ fake";
  static final int WIDE = 1000;

  // ---- child JVMs ------------------------------------------------------------------------------

  /** A JVM that never uses taskgroup: it has no bean. */
  public static final class NoTaskgroupMain {
    private NoTaskgroupMain() {}

    public static void main(String[] args) throws Exception {
      System.out.println("ready");
      System.out.flush();
      System.in.read();
    }
  }

  /** A group with an odd name and {@link #WIDE} children with odd names, one in a scope. */
  public static final class OddWideMain {
    private OddWideMain() {}

    public static void main(String[] args) throws Exception {
      CountDownLatch running = new CountDownLatch(WIDE);
      CountDownLatch release = new CountDownLatch(1);
      TaskGroup group = TaskGroup.named(ODD);
      group.run(
          () -> {
            for (int i = 0; i < WIDE; i++) {
              group.fork(
                  ODD + " #" + i,
                  () -> {
                    running.countDown();
                    release.await();
                  });
            }
            running.await();
            System.out.println("ready");
            System.out.flush();
            System.in.read();
            release.countDown();
          });
    }
  }

  /** Groups that start and finish without pause, on four threads, until stdin has a line. */
  public static final class ChurnMain {
    private ChurnMain() {}

    public static void main(String[] args) throws Exception {
      AtomicBoolean stop = new AtomicBoolean();
      List<Thread> churners = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        churners.add(
            Thread.ofPlatform()
                .start(
                    () -> {
                      while (!stop.get()) {
                        try {
                          TaskGroup g = TaskGroup.named("churn");
                          g.run(
                              () -> {
                                for (int i = 0; i < 5; i++) {
                                  g.fork(
                                      () ->
                                          CancelScope.withTimeout(Duration.ofMinutes(1))
                                              .run(CancelScope::checkpoint));
                                }
                              });
                        } catch (InterruptedException e) {
                          return;
                        }
                      }
                    }));
      }
      System.out.println("ready");
      System.out.flush();
      System.in.read();
      stop.set(true);
      for (Thread t : churners) {
        t.join();
      }
    }
  }

  // ---- exit statuses ---------------------------------------------------------------------------

  /** The javadoc: "2 bad arguments", with a usage line on standard error. */
  @Test
  void badArgumentsExitWithTwo() throws Exception {
    for (List<String> args :
        List.of(
            List.<String>of(),
            List.of("0"),
            List.of("00"),
            List.of("-5"),
            List.of("abc"),
            List.of("123", "--xml"),
            List.of("123", "--json", "extra"))) {
      Result r = runTool(args);
      assertThat(r.status).as("exit status for %s", args).isEqualTo(2);
      assertThat(r.err).as("stderr for %s", args).isNotBlank();
      assertThat(r.out).as("stdout for %s", args).isEmpty();
    }
  }

  /** The javadoc: "1 the JVM could not be attached to" (no such process). */
  @Test
  void aProcessThatDoesNotExistExitsWithOne() throws Exception {
    Process gone = new ProcessBuilder(javaCommand(), "-version").start();
    gone.getInputStream().transferTo(OutputStreamSink.INSTANCE);
    gone.getErrorStream().transferTo(OutputStreamSink.INSTANCE);
    gone.waitFor();
    Result r = runTool(List.of(Long.toString(gone.pid())));
    assertThat(r.status).isEqualTo(1);
    assertThat(r.err).contains("could not read the task tree of JVM " + gone.pid());
  }

  /** The javadoc: "1 ... has no taskgroup bean", saying why. */
  @Test
  void aJvmThatNeverUsedTaskgroupExitsWithOneAndSaysSo() throws Exception {
    Process p = TreeToolTest.startDemo(NoTaskgroupMain.class);
    try {
      Result r = runTool(List.of(Long.toString(p.pid())));
      assertThat(r.status).isEqualTo(1);
      assertThat(r.err).contains("has no dev.taskgroup:type=TaskTree bean");
    } finally {
      TreeToolTest.stop(p);
    }
  }

  // ---- odd names, a large tree -----------------------------------------------------------------

  /**
   * TaskTree's javadoc: in names, line breaks and other control characters are escaped "so that
   * every node stays on its own line"; the JSON gives every name back. Through the tool, a group
   * with an odd name and 1000 children with odd names: 1001 lines, each starting where a node line
   * starts, and JSON whose names, parsed, are the names given.
   */
  @Test
  void oddNamesAndAThousandChildrenSurviveTheToolInTextAndJson() throws Exception {
    Process p = TreeToolTest.startDemo(OddWideMain.class);
    try {
      String pid = Long.toString(p.pid());
      String text = TreeToolTest.fetchWhenRegistered(pid, false);
      List<String> lines = text.lines().toList();
      assertThat(lines).hasSize(1 + WIDE);
      assertThat(lines.get(0)).startsWith("group '");
      assertThat(lines.subList(1, lines.size()))
          .allSatisfy(l -> assertThat(l).matches("^(├─|└─) task '.*"));

      Object json = Json.parse(TreeToolTest.fetchWhenRegistered(pid, true));
      List<?> roots = (List<?>) ((Map<?, ?>) json).get("roots");
      Map<?, ?> group =
          roots.stream()
              .map(r -> (Map<?, ?>) r)
              .filter(r -> ODD.equals(r.get("name")))
              .findFirst()
              .orElseThrow(() -> new AssertionError("no group named ODD in " + roots));
      List<?> children = (List<?>) group.get("children");
      assertThat(children).hasSize(WIDE);
      for (int i = 0; i < WIDE; i++) {
        assertThat(((Map<?, ?>) children.get(i)).get("name")).isEqualTo(ODD + " #" + i);
      }
    } finally {
      TreeToolTest.stop(p);
    }
  }

  /**
   * TaskTree's javadoc: "a node that starts or ends during [a capture] may be missing or present",
   * nothing worse. Captures through the tool while groups start and finish all the time are every
   * one of them well-formed JSON and text whose lines are all nodes.
   */
  @Test
  void capturesWhileGroupsStartAndFinishAreWellFormed() throws Exception {
    Process p = TreeToolTest.startDemo(ChurnMain.class);
    try {
      String pid = Long.toString(p.pid());
      TreeToolTest.fetchWhenRegistered(pid, true);
      for (int i = 0; i < 10; i++) {
        Object json = Json.parse(TreeTool.fetch(pid, true));
        assertThat(json).isInstanceOf(Map.class);
        for (String line : TreeTool.fetch(pid, false).lines().toList()) {
          assertThat(line).matches("^([│ ]  |├─ |└─ )*(group|scope|task) .*");
        }
      }
    } finally {
      TreeToolTest.stop(p);
    }
  }

  /**
   * What the tool prints is the tree its bean returns, character for character, here in the JVM's
   * default locale (read as UTF-8: the tree's lines are drawn with box-drawing characters).
   */
  @Test
  void thePrintedTreeIsTheBeansTreeUnchanged() throws Exception {
    Process p = TreeToolTest.startDemo(OddWideMain.class);
    try {
      String pid = Long.toString(p.pid());
      String fetched = TreeToolTest.fetchWhenRegistered(pid, false);
      Result r = runTool(List.of(pid));
      assertThat(r.status).isZero();
      assertThat(r.out.lines().limit(3).toList()).isEqualTo(fetched.lines().limit(3).toList());
    } finally {
      TreeToolTest.stop(p);
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------

  record Result(int status, String out, String err) {}

  /** Runs the tool's main in a new JVM. */
  static Result runTool(List<String> args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(javaCommand());
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(TreeTool.class.getName());
    cmd.addAll(args);
    Process p = new ProcessBuilder(cmd).start();
    p.getOutputStream().close();
    String out = readAll(p.getInputStream());
    String err = readAll(p.getErrorStream());
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), out, err);
  }

  private static String readAll(InputStream in) throws Exception {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    in.transferTo(b);
    return b.toString(StandardCharsets.UTF_8);
  }

  private static String javaCommand() {
    return ProcessHandle.current().info().command().orElseThrow();
  }

  /** Discards what it is given. */
  static final class OutputStreamSink extends java.io.OutputStream {
    static final OutputStreamSink INSTANCE = new OutputStreamSink();

    @Override
    public void write(int b) {}

    @Override
    public void write(byte[] b, int off, int len) {}
  }

  /** A strict JSON reader (RFC 8259) for checking the tool's output: objects, arrays, strings... */
  static final class Json {
    private final String s;
    private int i;

    private Json(String s) {
      this.s = s;
    }

    static Object parse(String text) {
      Json j = new Json(text);
      Object v = j.value();
      j.ws();
      if (j.i != text.length()) {
        throw j.error("trailing text");
      }
      return v;
    }

    private Object value() {
      ws();
      if (i >= s.length()) {
        throw error("end of text");
      }
      char c = s.charAt(i);
      switch (c) {
        case '{' -> {
          i++;
          Map<String, Object> m = new LinkedHashMap<>();
          ws();
          if (peek('}')) {
            i++;
            return m;
          }
          do {
            ws();
            String k = string();
            ws();
            expect(':');
            m.put(k, value());
            ws();
          } while (take(','));
          expect('}');
          return m;
        }
        case '[' -> {
          i++;
          List<Object> l = new ArrayList<>();
          ws();
          if (peek(']')) {
            i++;
            return l;
          }
          do {
            l.add(value());
            ws();
          } while (take(','));
          expect(']');
          return l;
        }
        case '"' -> {
          return string();
        }
        default -> {
          for (String lit : List.of("null", "true", "false")) {
            if (s.startsWith(lit, i)) {
              i += lit.length();
              return lit.equals("null") ? null : Boolean.valueOf(lit);
            }
          }
          int start = i;
          while (i < s.length() && "-+.eE0123456789".indexOf(s.charAt(i)) >= 0) {
            i++;
          }
          if (start == i) {
            throw error("unexpected '" + c + "'");
          }
          return Double.parseDouble(s.substring(start, i));
        }
      }
    }

    private String string() {
      expect('"');
      StringBuilder b = new StringBuilder();
      while (true) {
        if (i >= s.length()) {
          throw error("unterminated string");
        }
        char c = s.charAt(i++);
        if (c == '"') {
          return b.toString();
        }
        if (c < 0x20) {
          throw error("raw control character in a string");
        }
        if (c != '\\') {
          b.append(c);
          continue;
        }
        char e = s.charAt(i++);
        switch (e) {
          case '"', '\\', '/' -> b.append(e);
          case 'b' -> b.append('\b');
          case 'f' -> b.append('\f');
          case 'n' -> b.append('\n');
          case 'r' -> b.append('\r');
          case 't' -> b.append('\t');
          case 'u' -> {
            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
            i += 4;
          }
          default -> throw error("bad escape \\" + e);
        }
      }
    }

    private void ws() {
      while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
        i++;
      }
    }

    private boolean peek(char c) {
      return i < s.length() && s.charAt(i) == c;
    }

    private boolean take(char c) {
      if (peek(c)) {
        i++;
        return true;
      }
      return false;
    }

    private void expect(char c) {
      if (!take(c)) {
        throw error("expected '" + c + "'");
      }
    }

    private IllegalArgumentException error(String what) {
      int from = Math.max(0, i - 40);
      int to = Math.min(s.length(), i + 40);
      return new IllegalArgumentException(
          what + " at " + i + ": ..." + s.substring(from, to) + "...");
    }
  }
}
