package dev.taskgroup.internal;

/**
 * Writes a user's text (a group's or a task's name, a thread's name, a cancel reason) into a
 * diagnostic that is read line by line (TaskTree.format(), the stuck warning), so that it stays on
 * its line and inside its delimiter: a name of the user's must not make a line of its own that
 * looks like a node of the tree or a child of the warning.
 */
public final class OneLine {
  private OneLine() {}

  /**
   * Appends {@code text} on one line: as {@link #append(StringBuilder, String, char)}, with no
   * delimiter.
   */
  public static void append(StringBuilder sb, String text) {
    append(sb, text, '\n'); // escaped as a line break anyway: no delimiter of its own
  }

  /**
   * Appends {@code text}: line breaks, other control characters and line separators as Java escapes
   * ({@code \n}; U+2028 and other separators as {@code \\uXXXX}), invisible format characters too
   * (a right-to-left override makes a line read otherwise than it is), and a backslash or the
   * {@code delimiter} escaped with a backslash.
   */
  public static void append(StringBuilder sb, String text, char delimiter) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        case '\\' -> sb.append("\\\\");
        default -> {
          if (c == delimiter) {
            sb.append('\\').append(c);
          } else if (c < 0x20
              || c == 0x7f
              || c == '\u2028'
              || c == '\u2029'
              || c == '\u0085'
              || Character.getType(c) == Character.FORMAT) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
  }
}
