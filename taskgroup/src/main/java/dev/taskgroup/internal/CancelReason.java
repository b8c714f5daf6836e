package dev.taskgroup.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;

/**
 * Why a scope was cancelled, and from which thread: kept with the scope (first reason wins) and
 * named in the message of every {@link CancelledException} it causes. Immutable, but for the text
 * of a failure's reason, made from the failure on first read: describing a failure runs its
 * toString(), which may be slow or block, and must not run on the failing thread before the rest of
 * the group is cancelled (nor at all when nobody asks). The reason holds the failure weakly: a
 * group keeps its reason after its run, and must not keep its failures (they are the caller's);
 * read after the failure is gone, the text names the failure's class only, as it does when read
 * from inside the failure's own toString() while the text is being made.
 */
public final class CancelReason {
  private final Kind kind;
  private final String threadName;
  private final long atNanos;

  /** The text, or for a failure's reason its first part (the failure's description follows). */
  private final String given;

  /** The failure a FAILURE reason describes, or null: then {@link #given} is the whole text. */
  private final WeakReference<Throwable> failure;

  /** The failure's class name, for a text made after the failure was collected. */
  private final String failureClass;

  /**
   * The failure's reason's whole text once made; set once (the first maker wins, so that every
   * reader sees one text even from a toString() that answers differently each time).
   */
  private volatile String made;

  /**
   * The reasons whose text the calling thread is making: a failure whose toString() reads its own
   * group's reason (or a sibling's CancelledException message) reads it while it is being made.
   */
  private static final ThreadLocal<List<CancelReason>> MAKING =
      ThreadLocal.withInitial(ArrayList::new);

  /**
   * A reason.
   *
   * @param kind what kind of event cancelled the scope
   * @param text the user's reason for an explicit cancel, otherwise a description
   * @param threadName the name of the thread that cancelled it
   * @param atNanos System.nanoTime when it was made (the first reason is the first cancel), or 0
   *     for the one shared reason of every expired deadline (the deadline tells the time)
   */
  public CancelReason(Kind kind, String text, String threadName, long atNanos) {
    this(kind, text, null, threadName, atNanos);
  }

  private CancelReason(
      Kind kind, String given, Throwable failure, String threadName, long atNanos) {
    this.kind = kind;
    this.given = given;
    this.failure = failure == null ? null : new WeakReference<>(failure);
    this.failureClass = failure == null ? null : failure.getClass().getName();
    this.threadName = threadName;
    this.atNanos = atNanos;
  }

  /** What kind of event cancelled the scope. */
  public Kind kind() {
    return kind;
  }

  /** The user's reason for an explicit cancel, otherwise a description. */
  public String text() {
    if (failure == null) {
      return given;
    }
    String t = made;
    if (t != null) {
      return t;
    }
    Throwable f = failure.get();
    if (f == null) {
      return madeOnce(given + failureClass);
    }
    List<CancelReason> making = MAKING.get();
    for (CancelReason r : making) {
      if (r == this) {
        // Read from inside the failure's own description: naming the class ends the recursion
        // (describing the failure again would read this again), and is not kept.
        return given + failureClass;
      }
    }
    making.add(this);
    try {
      t = given + Cancellation.describe(f);
    } finally {
      making.remove(making.size() - 1);
    }
    return madeOnce(t);
  }

  /**
   * Whether {@link #text()} will read the same from now on: false for a failure's reason whose text
   * is not made yet (a read from inside the failure's own toString() gives a stand-in, not kept).
   */
  public boolean textMade() {
    return failure == null || made != null;
  }

  private String madeOnce(String t) {
    String witness = (String) MADE.compareAndExchange(this, (String) null, t);
    return witness == null ? t : witness;
  }

  /** The name of the thread that cancelled the scope. */
  public String threadName() {
    return threadName;
  }

  /** System.nanoTime when it was made, or 0 for an expired deadline's. */
  public long atNanos() {
    return atNanos;
  }

  /**
   * The reason a failure gives the rest of its group, from the calling thread: {@code prefix}
   * followed by the failure's description, made when first read.
   */
  public static CancelReason failed(String prefix, Throwable failure) {
    return new CancelReason(
        Kind.FAILURE, prefix, failure, Thread.currentThread().getName(), System.nanoTime());
  }

  /** What cancelled a scope. */
  public enum Kind {
    /** {@code cancel()} or {@code cancel(reason)}. */
    EXPLICIT,
    /** The scope's deadline expired. */
    DEADLINE,
    /** A failure in the group (CANCEL_ALL) cancelled the rest of it. */
    FAILURE,
    /** The group's owner was interrupted from outside. */
    OWNER_INTERRUPTED,
    /** {@code Task.cancel()} cancelled one task. */
    TASK_CANCEL
  }

  /** An explicit cancel from the calling thread. */
  public static CancelReason explicit(String text) {
    return new CancelReason(
        Kind.EXPLICIT, text, Thread.currentThread().getName(), System.nanoTime());
  }

  /** A cancel of the given kind from the calling thread. */
  public static CancelReason of(Kind kind, String text) {
    return new CancelReason(kind, text, Thread.currentThread().getName(), System.nanoTime());
  }

  @Override
  public String toString() {
    return describe();
  }

  private static final VarHandle MADE;

  static {
    try {
      MADE = MethodHandles.lookup().findVarHandle(CancelReason.class, "made", String.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /** How the reason reads in an exception message. */
  public String describe() {
    return describe(text());
  }

  /**
   * How the reason reads, running no user code: a failure's reason not yet made names the failure's
   * class only. For what is written where user code must not run: a JFR event recorded as the scope
   * is marked, on the failing thread before the rest of its group is cancelled, or under the
   * deadlines' lock.
   */
  public String describeWithoutUserCode() {
    String t = failure == null ? given : made;
    return describe(t != null ? t : given + failureClass);
  }

  private String describe(String text) {
    String by = threadName.isEmpty() ? "an unnamed thread" : "thread \"" + threadName + "\"";
    return switch (kind) {
      case EXPLICIT -> "cancelled by " + by + ": " + given;
      case DEADLINE -> "deadline expired";
      case FAILURE -> "cancelled because of a failure (" + text + ")";
      case OWNER_INTERRUPTED -> "cancelled because its owner was interrupted";
      case TASK_CANCEL -> "cancelled by " + by + ": Task.cancel() called";
    };
  }
}
