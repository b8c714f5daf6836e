package dev.taskgroup.internal;

import java.io.IOException;
import java.io.ObjectOutputStream;
import java.io.Serial;

/**
 * The exception the library throws for a cancellation (see the public {@link
 * dev.taskgroup.CancelledException}, which users catch): at a checkpoint, or when a cancellation
 * that arrived as another exception (a {@code ClosedByInterruptException}, an {@code IOException}
 * from a socket closed by the interrupt) propagates out of a scope that does not absorb it; then
 * that exception is its cause. The message names the scope and why it was cancelled (made when
 * first read). Being of this class (not merely the public one, which users may create) marks an
 * exception as the library's own, for the "In flight" rule in {@link PlainScope}.
 */
public final class CancelledException extends dev.taskgroup.CancelledException {
  @Serial private static final long serialVersionUID = 1L;

  /** The cancelled scope's description, or null (a message given, or no scope at hand). */
  private final String what;

  /** Why the scope was cancelled, or null. */
  private final transient CancelReason why;

  /**
   * The message, made on first read: a failure's reason describes the failure (its toString(), user
   * code that may be slow or block), which must not delay the thread that meets the cancellation,
   * and need not run when nobody reads the message. Made before the exception is serialized (the
   * reason is not serialized): the message travels whole.
   */
  private String made;

  /** For the cancellation of {@code cancelled}, with an optional original exception. */
  public CancelledException(Scope cancelled, Throwable cause) {
    super(null, cause);
    this.what = cancelled == null ? null : cancelled.describe();
    this.why = cancelled == null ? null : cancelled.reason();
  }

  /**
   * For a cancellation the library reports without the scope at hand ({@code invokeAll} whose tasks
   * a cancellation now hidden by a shield stopped), with {@code message} saying what happened.
   */
  public CancelledException(String message) {
    super(message, null);
    this.what = null;
    this.why = null;
  }

  @Serial
  private void writeObject(ObjectOutputStream out) throws IOException {
    ObjectOutputStream.PutField fields = out.putFields();
    fields.put("what", what);
    fields.put("made", getMessage()); // written whole; kept here only as getMessage() keeps it
    out.writeFields();
  }

  @Override
  public String getMessage() {
    String m = super.getMessage();
    if (m != null) {
      return m;
    }
    m = made;
    if (m == null) { // racy, as String.hashCode: every maker makes the same text
      m = what == null ? "cancelled" : what + " " + (why == null ? "cancelled" : why.describe());
      if (why == null || why.textMade()) {
        made = m; // not a stand-in the reason gave while its own text is being made
      }
    }
    return m;
  }
}
