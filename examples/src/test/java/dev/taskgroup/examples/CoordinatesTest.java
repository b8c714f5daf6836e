package dev.taskgroup.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The coordinates a user copies (README's Maven and Gradle snippets) and the version the consumer
 * check builds against name the version this build makes, so a release cannot leave them behind.
 */
class CoordinatesTest {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  @Test
  void readmeAndConsumerCheckNameTheVersionThisBuildMakes() throws IOException {
    String version = projectVersion();
    String readme = Files.readString(ROOT.resolve("README.md"));
    assertThat(readme)
        .contains(
            "<artifactId>taskgroup</artifactId>\n  <version>" + version + "</version>",
            "implementation(\"dev.taskgroup:taskgroup:" + version + "\")");
    assertThat(Files.readString(ROOT.resolve("consumer-check/pom.xml")))
        .contains("<taskgroup.version>" + version + "</taskgroup.version>");
  }

  /** The root POM's own version: the first <version> after its artifactId. */
  private static String projectVersion() throws IOException {
    String pom = Files.readString(ROOT.resolve("pom.xml"));
    Matcher m =
        Pattern.compile("<artifactId>taskgroup-parent</artifactId>\\s*<version>([^<]+)</version>")
            .matcher(pom);
    assertThat(m.find()).as("root pom version").isTrue();
    return m.group(1);
  }
}
