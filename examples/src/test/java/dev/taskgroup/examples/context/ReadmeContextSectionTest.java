package dev.taskgroup.examples.context;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The README's "Context" section quotes the recipes: every Java block in it must appear, as it is
 * (up to whitespace), in the sources of this module, which the tests here compile and run.
 */
class ReadmeContextSectionTest {
  private static final Pattern JAVA_BLOCK = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL);

  @Test
  void everyJavaBlockOfTheContextSectionIsQuotedFromTestedSources() throws IOException {
    String readme = Files.readString(Path.of("..", "README.md"));
    int start = readme.indexOf("\n## Context\n");
    assertThat(start).as("README has a Context section").isNotNegative();
    int end = readme.indexOf("\n## ", start + 1);
    String section = readme.substring(start, end < 0 ? readme.length() : end);
    String sources = normalized(allSources(Path.of("src")));
    List<String> blocks = new ArrayList<>();
    Matcher m = JAVA_BLOCK.matcher(section);
    while (m.find()) {
      blocks.add(m.group(1));
    }
    assertThat(blocks).as("Java blocks in the Context section").hasSizeGreaterThanOrEqualTo(4);
    for (String block : blocks) {
      assertThat(sources)
          .as("quoted from the examples' sources:%n%s", block)
          .contains(normalized(block));
    }
  }

  private static String allSources(Path root) throws IOException {
    StringBuilder all = new StringBuilder();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
        all.append(Files.readString(f)).append('\n');
      }
    }
    return all.toString();
  }

  private static String normalized(String code) {
    return code.replaceAll("\\s+", " ").trim();
  }
}
