package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The README's example of the test kit is the code of {@link ReadmeExampleTest}, verbatim. */
class ReadmeTest {
  @Test
  void theReadmeQuotesTheExampleThatRuns() throws IOException {
    String source =
        Files.readString(Path.of("src/test/java/dev/taskgroup/test/ReadmeExampleTest.java"));
    String example = between(source, "// tag::example[]\n", "// end::example[]\n");
    String readme = Files.readString(Path.of("../README.md"));
    assertThat(readme).contains("```java\n" + example + "```\n");
  }

  private static String between(String text, String from, String to) {
    int start = text.indexOf(from);
    int end = text.indexOf(to);
    assertThat(start).as("marker %s", from).isNotNegative();
    assertThat(end).as("marker %s", to).isGreaterThan(start);
    return text.substring(start + from.length(), end);
  }
}
