package dev.taskgroup.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Keeps the Java samples in {@code docs/} identical to compiled code: every fenced {@code java}
 * block must follow a marker {@code <!-- sample: path/File.java#region -->} naming a region of a
 * source file (lines between {@code // region name} and {@code // endregion}), and must equal that
 * region, indentation removed. The tests of this module run those sources.
 */
class DocSamplesTest {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static final Pattern MARKER = Pattern.compile("<!--\\s*sample:\\s*(\\S+)#(\\S+)\\s*-->");

  /** One fenced java block: where it is, the marker line before it (or null), its text. */
  record Block(Path doc, int line, String marker, String text) {}

  @TestFactory
  Stream<DynamicTest> everyJavaBlockInTheDocsIsQuotedFromCompiledCode() throws IOException {
    List<Block> blocks = new ArrayList<>();
    for (Path doc : docs()) {
      blocks.addAll(javaBlocks(doc));
    }
    assertThat(blocks).as("java blocks found in docs/").hasSizeGreaterThan(10);
    return blocks.stream().map(b -> DynamicTest.dynamicTest(name(b), () -> check(b)));
  }

  private static String name(Block b) {
    return ROOT.relativize(b.doc()) + ":" + b.line();
  }

  @Test
  void aBlockThatDriftedFromItsSourceIsCaught() {
    String source = "class A {\n  // region r\n  int x = 1;\n  // endregion\n}\n";
    assertThat(region(source, "r")).isEqualTo("int x = 1;");
    assertThat(region(source, "r")).isNotEqualTo("int x = 2;");
    assertThat(region(source, "missing")).isNull();
  }

  private static void check(Block block) throws IOException {
    assertThat(block.marker())
        .as(
            "%s:%d: a java block needs <!-- sample: path#region --> on the line before it",
            block.doc(), block.line())
        .isNotNull();
    Matcher m = MARKER.matcher(block.marker());
    assertThat(m.find()).as("malformed marker %s", block.marker()).isTrue();
    Path source = ROOT.resolve(m.group(1));
    assertThat(source).as("%s:%d names a missing file", block.doc(), block.line()).exists();
    String region = region(Files.readString(source), m.group(2));
    assertThat(region).as("region %s in %s", m.group(2), source).isNotNull();
    assertThat(block.text())
        .as("%s:%d must equal %s#%s", block.doc(), block.line(), m.group(1), m.group(2))
        .isEqualTo(region);
  }

  private static List<Path> docs() throws IOException {
    List<Path> docs = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(ROOT.resolve("docs"))) {
      walk.filter(p -> p.toString().endsWith(".md")).sorted().forEach(docs::add);
    }
    return docs;
  }

  /** The fenced {@code java} blocks of a Markdown file with the marker line before each. */
  static List<Block> javaBlocks(Path doc) throws IOException {
    List<String> lines = Files.readAllLines(doc);
    List<Block> blocks = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      if (!lines.get(i).strip().equals("```java")) {
        continue;
      }
      int start = i;
      String marker = null;
      for (int j = i - 1; j >= 0; j--) {
        if (!lines.get(j).isBlank()) {
          marker = MARKER.matcher(lines.get(j)).find() ? lines.get(j) : null;
          break;
        }
      }
      StringBuilder text = new StringBuilder();
      for (i++; i < lines.size() && !lines.get(i).strip().equals("```"); i++) {
        text.append(lines.get(i)).append('\n');
      }
      blocks.add(new Block(doc, start + 1, marker, text.toString().stripTrailing()));
    }
    return blocks;
  }

  /** The lines between {@code // region name} and {@code // endregion}, dedented; null if none. */
  static String region(String source, String name) {
    List<String> lines = source.lines().toList();
    int from = -1;
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).strip().equals("// region " + name)) {
        from = i + 1;
      } else if (from >= 0 && lines.get(i).strip().equals("// endregion")) {
        List<String> body = lines.subList(from, i);
        int indent =
            body.stream()
                .filter(l -> !l.isBlank())
                .mapToInt(l -> l.length() - l.stripLeading().length())
                .min()
                .orElse(0);
        StringBuilder out = new StringBuilder();
        for (String l : body) {
          out.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
        }
        return out.toString().stripTrailing();
      }
    }
    return null;
  }
}
