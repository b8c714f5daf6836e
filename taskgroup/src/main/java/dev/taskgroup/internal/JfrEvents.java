package dev.taskgroup.internal;

import dev.taskgroup.internal.clock.LibraryClock;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * The JFR event types ({@code dev.taskgroup.*}) and their emitters. Only {@link Events} calls this
 * class, and only when {@code jdk.jfr} is usable. Each emitter asks a pre-made instance of its type
 * whether the type is enabled before it allocates the event.
 *
 * <p>No stack trace by default ({@code @StackTrace(false)}; a recording's settings can turn it on
 * per event): a group's end and a cancel are as frequent as forks, and JFR's stack walk cost 1.5 to
 * 3.3 us each, 15 times an empty group's run, where StructuredTaskScope pays nothing while a
 * recording runs. The events of the library's own threads (deadlines, re-deliveries, hooks) would
 * only show those threads' loops.
 */
final class JfrEvents {
  /**
   * Whether the types were registered by a thread holding the deadlines' lock, which every thread
   * setting a deadline waits for: registering makes JFR build its metadata (0.1 to 0.4 s), and
   * Events.prepare is there to keep it out of the lock. Read by a test.
   */
  static final boolean REGISTERED_UNDER_DEADLINES_LOCK = Deadlines.LOCK.isHeldByCurrentThread();

  private static final CancelEvent CANCEL = new CancelEvent();
  private static final DeadlineEvent DEADLINE = new DeadlineEvent();
  private static final RedeliveryEvent REDELIVERY = new RedeliveryEvent();
  private static final GroupEndEvent GROUP_END = new GroupEndEvent();
  private static final CancelHookEvent HOOK = new CancelHookEvent();

  private JfrEvents() {}

  /** Does nothing: calling it runs the class initializer, which registers the event types. */
  static void registered() {}

  static void cancel(Scope scope, CancelReason reason) {
    if (CANCEL.isEnabled()) {
      CancelEvent e = new CancelEvent();
      e.scope = scope.describe();
      e.reason = reason == null ? null : reason.describeWithoutUserCode();
      e.commit();
    }
  }

  static void deadlineExpired(Scope scope) {
    if (DEADLINE.isEnabled()) {
      Deadlines.Deadline d = scope.deadline();
      DeadlineEvent e = new DeadlineEvent();
      e.scope = scope.describe();
      e.lateness = d == null ? 0L : Math.max(0L, LibraryClock.nanoTime() - d.nanos);
      e.commit();
    }
  }

  static void redelivery(Thread thread, int count) {
    if (REDELIVERY.isEnabled()) {
      RedeliveryEvent e = new RedeliveryEvent();
      e.thread = thread;
      e.count = count;
      e.commit();
    }
  }

  static Object groupStart() {
    if (!GROUP_END.isEnabled()) {
      return null;
    }
    GroupRecord r = new GroupRecord();
    r.event.begin();
    return r;
  }

  static void forked(Object handle) {
    ((GroupRecord) handle).children.incrementAndGet();
  }

  static void unforked(Object handle) {
    ((GroupRecord) handle).children.decrementAndGet();
  }

  static void groupEnd(Object handle, String name, String outcome) {
    GroupRecord r = (GroupRecord) handle;
    GroupEndEvent e = r.event;
    e.name = name;
    e.children = r.children.get();
    e.outcome = outcome;
    e.commit();
  }

  static Object hookStart() {
    if (!HOOK.isEnabled()) {
      return null;
    }
    CancelHookEvent e = new CancelHookEvent();
    e.begin();
    return e;
  }

  static void hookEnd(Object handle, boolean failed) {
    CancelHookEvent e = (CancelHookEvent) handle;
    e.outcome = failed ? "failed" : "completed";
    e.commit();
  }

  /** A running group's event and its count of children. */
  private static final class GroupRecord {
    final GroupEndEvent event = new GroupEndEvent();
    final AtomicInteger children = new AtomicInteger();
  }

  @Name("dev.taskgroup.GroupEnd")
  @Label("Task Group End")
  @Category({"taskgroup"})
  @Description("A task group's run ended; the event's duration is the run's")
  @StackTrace(false) // see the class comment
  static final class GroupEndEvent extends Event {
    @Label("Name")
    @Description("The group's name, given or generated")
    String name;

    @Label("Children")
    @Description("Children started over the group's life")
    int children;

    @Label("Outcome")
    @Description("How run ended: completed, cancelled, failed or interrupted")
    String outcome;
  }

  @Name("dev.taskgroup.Cancel")
  @Label("Cancel")
  @Category({"taskgroup"})
  @Description("A cancel scope or group was first cancelled; the event thread cancelled it")
  @StackTrace(false) // see the class comment
  static final class CancelEvent extends Event {
    @Label("Scope")
    @Description("The scope cancelled: a cancel scope, a group or a task")
    String scope;

    @Label("Reason")
    @Description("Why it was cancelled")
    String reason;
  }

  @Name("dev.taskgroup.DeadlineExpired")
  @Label("Deadline Expired")
  @Category({"taskgroup"})
  @Description("A scope's deadline fired and cancelled it")
  @StackTrace(false) // see the class comment
  static final class DeadlineEvent extends Event {
    @Label("Scope")
    @Description("The scope whose deadline fired")
    String scope;

    @Label("Lateness")
    @Description("How long after the deadline the cancellation was made")
    @Timespan(Timespan.NANOSECONDS)
    long lateness;
  }

  @Name("dev.taskgroup.Redelivery")
  @Label("Interrupt Re-delivered")
  @Category({"taskgroup"})
  @Description("A cancelled thread swallowed the interrupt and was interrupted again")
  @StackTrace(false) // see the class comment
  static final class RedeliveryEvent extends Event {
    @Label("Thread")
    @Description("The thread interrupted again")
    Thread thread;

    @Label("Count")
    @Description("Re-deliveries so far to that thread in the cancellation it is in")
    int count;
  }

  @Name("dev.taskgroup.CancelHook")
  @Label("Cancel Hook")
  @Category({"taskgroup"})
  @Description("An onCancel or closeOnCancel action ran; the event's duration is the action's")
  @StackTrace(false) // see the class comment
  static final class CancelHookEvent extends Event {
    @Label("Outcome")
    @Description("completed, or failed when the action threw")
    String outcome;
  }
}
