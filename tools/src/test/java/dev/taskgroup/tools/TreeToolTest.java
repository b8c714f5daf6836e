package dev.taskgroup.tools;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The tool against a real child JVM that runs a group. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TreeToolTest {

  /** Starts {@link TreeDemoMain} in a new JVM and waits until it says "ready". */
  private static Process startDemo() throws Exception {
    return startDemo(TreeDemoMain.class);
  }

  /**
   * Starts {@code main} (a class with a main method on this class path) in a new JVM and waits
   * until it says "ready"; {@link #stop} ends it with a line on its standard input.
   */
  static Process startDemo(Class<?> main) throws Exception {
    String java = ProcessHandle.current().info().command().orElseThrow();
    Process p =
        new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), main.getName())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    BufferedReader out =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    assertThat(out.readLine()).isEqualTo("ready");
    return p;
  }

  static void stop(Process p) throws Exception {
    try (OutputStream in = p.getOutputStream()) {
      in.write('\n');
    }
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).isZero();
  }

  @Test
  void printsTheTreeOfARunningJvm() throws Exception {
    Process p = startDemo();
    try {
      String pid = Long.toString(p.pid());
      String text = fetchWhenRegistered(pid, false);
      assertThat(text)
          .containsPattern("(?m)^group 'tool-demo' running #\\d+ \"main\"$")
          .containsPattern("(?m)^├─ task 'sleeper' running #\\d+ \"sleeper\"$")
          .containsPattern("(?m)^│  └─ scope running #\\d+ \"sleeper\" deadline=")
          .containsPattern("(?m)^└─ task 'waiter' running #\\d+ \"waiter\"$");
      assertThat(TreeTool.forOutput(text, StandardCharsets.UTF_8)).isEqualTo(text);
      // A terminal in the C locale: ASCII, where the box-drawing characters would print as '?'.
      assertThat(TreeTool.forOutput(text, StandardCharsets.US_ASCII))
          .containsPattern("(?m)^\\|- task 'sleeper' running #\\d+ \"sleeper\"$")
          .containsPattern("(?m)^\\|  `- scope running #\\d+ \"sleeper\" deadline=")
          .containsPattern("(?m)^`- task 'waiter' running #\\d+ \"waiter\"$")
          .doesNotContain("├", "└", "│");
      assertThat(TreeTool.fetch(pid, true))
          .startsWith("{\"roots\":[{\"kind\":\"group\",\"name\":\"tool-demo\"");
      // JSON in the C locale: names are data, escaped rather than drawn in ASCII.
      String json = "{\"name\":\"orders '\u00e9' \u2514\u2500 box \uD83D\uDE00\"}";
      assertThat(TreeTool.jsonForOutput(json, StandardCharsets.UTF_8)).isEqualTo(json);
      assertThat(TreeTool.jsonForOutput(json, StandardCharsets.US_ASCII))
          .isEqualTo("{\"name\":\"orders '\\u00e9' \\u2514\\u2500 box \\ud83d\\ude00\"}");
    } finally {
      stop(p);
    }
  }

  /** The library registers its bean in the background on first use: retry until it is there. */
  static String fetchWhenRegistered(String pid, boolean json) throws Exception {
    for (int attempt = 0; ; attempt++) {
      try {
        return TreeTool.fetch(pid, json);
      } catch (javax.management.InstanceNotFoundException notYet) {
        if (attempt > 200) {
          throw notYet;
        }
        Thread.onSpinWait();
      }
    }
  }
}
