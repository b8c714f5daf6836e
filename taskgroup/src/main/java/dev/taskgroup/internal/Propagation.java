package dev.taskgroup.internal;

import dev.taskgroup.Body;
import dev.taskgroup.ContextPropagator;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.concurrent.RejectedExecutionException;

/**
 * Context propagation: which propagators apply to a fork or a cancel-hook action, and the child's
 * run when some do.
 *
 * <pre>
 * Implementation overview
 *
 * A group's propagators are fixed when it is built: the service-loaded ones (looked up once, in
 * the ServiceLoaded holder, when the first group is built), then its own, in one array; null
 * when there are none, so that a fork without propagation costs one null check
 * (Group.propagators) and allocates nothing more.
 *
 * With propagators, a child's thread does not run its TaskImpl but a Child:
 *
 *   thread runs Child.run()
 *     wrapped.run()               the outermost propagator's code, on the child's thread
 *       ... inner propagators ...
 *         Child.runWork()         TaskImpl.runWork: begin, the work, classify the outcome; the
 *                                 outcome is kept in the Child, not yet reported
 *     TaskImpl.report             the outcome (failures that rode on a cancellation first, then
 *                                 anything the propagators threw too) goes to the task and the
 *                                 group; the child leaves its group (its last act)
 *
 * So the propagators' code after the work (restoring the MDC, closing a trace scope) has ended
 * before the group can close: when run returns, none of it is still running; until then the
 * thread is still in its scopes (TaskImpl.end leaves them for report). The library's own
 * bookkeeping stays where it was: a TaskImpl is found through its thread's uncaught-exception
 * handler, not through the Runnable its thread runs.
 *
 * A cancel-hook action under propagators is an Action: the same rules (run once, on the thread
 * that runs the wrapped Runnable, or it is a failure), with nothing to report later.
 *
 * Invariant: a Child's work, and an Action's action, runs at most once, on its own thread.
 * Invariant: every Child reports exactly once, after its wrapped Runnable returned or threw.
 * </pre>
 */
public final class Propagation {
  private Propagation() {}

  /** The service-loaded propagators followed by {@code own}; null when both are empty. */
  static ContextPropagator[] forGroup(List<ContextPropagator> own) {
    ContextPropagator[] loaded = ServiceLoaded.ALL;
    if (loaded == null) {
      loaded = ServiceLoaded.NONE; // a provider built a group while being loaded
    }
    if (own.isEmpty()) {
      return loaded.length == 0 ? null : loaded;
    }
    ContextPropagator[] all = new ContextPropagator[loaded.length + own.size()];
    System.arraycopy(loaded, 0, all, 0, loaded.length);
    for (int i = 0; i < own.size(); i++) {
      all[loaded.length + i] = own.get(i);
    }
    return all;
  }

  /**
   * The own propagators of the innermost group enclosing the calling thread (for the groups of
   * invokeAll and invokeAny); empty when there is none.
   */
  public static List<ContextPropagator> ofEnclosingGroup() {
    ThreadState ts = ThreadState.currentOrNull();
    Scope in = ts == null ? null : ts.innermost();
    Group g = in == null ? null : Group.enclosing(in);
    return g == null ? List.of() : g.config.propagators();
  }

  /**
   * Wraps a cancel-hook action, on the registering thread, with the service-loaded propagators and
   * those of the innermost group enclosing {@code scope}.
   *
   * @throws RejectedExecutionException if a propagator threw or returned null
   */
  static Body wrapAction(Body action, Scope scope) {
    Group g = Group.enclosing(scope);
    ContextPropagator[] ps = g != null ? g.propagators : forGroup(List.of());
    if (ps == null) {
      return action;
    }
    Action run = new Action(action);
    Runnable wrapped = apply(ps, run::runAction, null, null);
    return () -> run.run(wrapped);
  }

  /**
   * A cancel-hook action under propagators: holds them to the rules a child's do
   * (ContextPropagator: the work runs once, on the thread that runs what wrap() returned, and not
   * running it is a failure). Used by one thread, the one that runs the action; a call from another
   * is refused.
   */
  private static final class Action {
    private final Body action;

    /** The thread running the wrapped action; set before the propagators' code runs. */
    private Thread runner;

    /** Whether the action ran; the runner's only. */
    private boolean ran;

    Action(Body action) {
      this.action = action;
    }

    void run(Runnable wrapped) throws Exception {
      runner = Thread.currentThread();
      wrapped.run();
      if (!ran) {
        throw new IllegalStateException(
            "a context propagator returned without running the onCancel action it was given");
      }
    }

    /** What the propagators wrap. */
    private void runAction() {
      if (Thread.currentThread() != runner) {
        throw new IllegalStateException(
            "a context propagator ran an onCancel action on another thread:"
                + " run it on the thread that runs the Runnable wrap() returned");
      }
      if (ran) {
        throw new IllegalStateException(
            "a context propagator ran an onCancel action twice: run it once");
      }
      ran = true;
      // The action may throw checked exceptions: they pass through the propagators' Runnables
      // unchanged (the same throwable), as the action's own.
      try {
        action.run();
      } catch (Exception e) {
        throw Cancellation.<RuntimeException>sneakyThrow(e);
      }
    }
  }

  /**
   * The Runnable a child's thread runs: {@code task} wrapped, on the forking thread, by {@code g}'s
   * propagators.
   *
   * @throws RejectedExecutionException if a propagator threw or returned null
   */
  static Runnable wrapChild(Group g, TaskImpl<?> task) {
    Child child = new Child(task);
    String call = task.isStartChild() ? "a start in " : "a fork into ";
    child.wrapped = apply(g.propagators, child::runWork, g, call);
    return child;
  }

  /**
   * Applies {@code ps} in order to {@code work}. {@code forkInto}: the group forked into, or null
   * for an onCancel action, and {@code call} what was called ("a fork into ", "a start in "); only
   * a message needs them (describing a group on every fork would cost more than the fork: an
   * identity hash and three strings).
   */
  private static Runnable apply(
      ContextPropagator[] ps, Runnable work, Group forkInto, String call) {
    Runnable r = work;
    for (ContextPropagator p : ps) {
      Runnable next;
      try {
        next = p.wrap(r);
      } catch (Throwable e) {
        throw new RejectedExecutionException(
            "the context propagator "
                + describe(p)
                + " threw in wrap(), so "
                + what(forkInto, call)
                + " was rejected",
            e);
      }
      if (next == null) {
        throw new RejectedExecutionException(
            "the context propagator "
                + describe(p)
                + " returned null from wrap(), so "
                + what(forkInto, call)
                + " was rejected: return a Runnable that runs the work it was given",
            new NullPointerException("wrap() returned null"));
      }
      r = next;
    }
    return r;
  }

  /**
   * {@code String.valueOf(p)} for a message, or its class and identity if its {@code toString()}
   * throws: describing a propagator must not replace what its {@code wrap()} threw (the fork would
   * throw that instead of the RejectedExecutionException carrying it).
   */
  private static String describe(ContextPropagator p) {
    try {
      return String.valueOf(p);
    } catch (Throwable broken) {
      return p.getClass().getName() + "@" + Integer.toHexString(System.identityHashCode(p));
    }
  }

  private static String what(Group forkInto, String call) {
    return forkInto == null ? "onCancel" : call + forkInto.describe();
  }

  /** A child's run under propagators; see the overview. */
  static final class Child implements Runnable {
    private final TaskImpl<?> task;

    /** What the thread runs; set before the thread exists, dropped when it has run. */
    Runnable wrapped;

    /** Whether the work was run; the task's thread only. */
    private boolean ran;

    /** Cancelled (or interrupted) while waiting for its place: the work does not run. */
    boolean placeRefused;

    /** The work's outcome, kept by TaskImpl.end on the task's thread until reported. */
    private Object value;

    private Throwable failure;
    private boolean cancelled;

    /**
     * Failures that rode on the work's cancellation (TaskImpl.end), reported before the outcome.
     */
    private List<Throwable> riding = List.of();

    private Child(TaskImpl<?> task) {
      this.task = task;
    }

    @Override
    public void run() {
      Runnable w = wrapped;
      if (w == null) {
        throw task.runAgain(); // run once already: the task has ended (or is ending)
      }
      if (Thread.currentThread() != task.thread) { // the factory's thread handed it on
        wrapped = null; // a later run, on the right thread, is refused too
        throw task.ranElsewhere();
      }
      // The propagators' code is part of the child's run, as for a child whose fork took its
      // place: a child forked from a sibling takes its place before that code runs, not inside it.
      placeRefused = !task.takePlace();
      Throwable outside = null;
      try {
        w.run();
      } catch (Throwable t) {
        outside = t;
      }
      wrapped = null;
      if (!ran) {
        ran = true; // a late call of the work from elsewhere is refused
        task.endWithoutWork(
            outside != null
                ? outside
                : new IllegalStateException(
                    "a context propagator of "
                        + task.group().describe()
                        + " returned without running the work it was given"));
        return;
      }
      List<Throwable> outsideRiding = List.of();
      if (outside != null && task.endsByCancellation(outside)) {
        // The propagators' code after the work is part of the child, which the group's
        // cancellation reaches: what it let out for that cancellation is no failure, as for the
        // work itself and the code before it. The outcome stays the work's; failures that rode on
        // the cancellation (a close() that failed) are reported, after the work's.
        outsideRiding = Cancellation.suppressedFailures(outside, task);
        outside = null;
      }
      task.leaveAgain(); // out of the root scope, which the work's end left it in (TaskImpl.end)
      Object v = value;
      Throwable f = failure;
      List<Throwable> r = riding;
      // The thread (which a held Task keeps) keeps this Runnable: the task keeps its outcome
      // itself, and a result or failure Task.cancel dropped must not be kept here instead.
      value = null;
      failure = null;
      riding = List.of();
      task.reportRiding(r);
      task.reportRiding(outsideRiding);
      task.report(v, f, cancelled, outside);
    }

    /** What the propagators wrap: the task's own run, minus reporting. */
    private void runWork() {
      if (ran) { // first: a finished task has dropped its thread
        throw new IllegalStateException(
            "a context propagator ran the work of " + task.describe() + " twice: run it once");
      }
      if (Thread.currentThread() != task.thread) {
        throw new IllegalStateException(
            "a context propagator ran the work of "
                + task.describe()
                + " on another thread:"
                + " run it on the thread that runs the Runnable wrap() returned");
      }
      ran = true;
      task.runWork(this);
    }

    /** Called by TaskImpl.end on the task's thread: keeps the outcome until reported. */
    void ended(Object value, Throwable failure, boolean cancelled, List<Throwable> riding) {
      this.value = value;
      this.failure = failure;
      this.cancelled = cancelled;
      this.riding = riding;
    }
  }

  /** Looked up once, when the first group is built (the holder idiom makes it lazy). */
  private static final class ServiceLoaded {
    static final ContextPropagator[] NONE = new ContextPropagator[0];
    static final ContextPropagator[] ALL = load();

    private static ContextPropagator[] load() {
      List<ContextPropagator> found = new ArrayList<>();
      try {
        for (ContextPropagator p : ServiceLoader.load(ContextPropagator.class)) {
          found.add(p);
        }
      } catch (ServiceConfigurationError e) {
        // A provider that cannot be loaded must not drop its context silently: forks fail.
        found.add(new Broken(e));
      }
      return found.isEmpty() ? NONE : found.toArray(NONE);
    }
  }

  /** Stands for a service-loaded propagator that could not be loaded. */
  private record Broken(ServiceConfigurationError error) implements ContextPropagator {
    @Override
    public Runnable wrap(Runnable work) {
      throw new IllegalStateException(
          "a service-loaded ContextPropagator could not be loaded; fix or remove its"
              + " META-INF/services entry or provides clause: "
              + error.getMessage(),
          error);
    }

    @Override
    public String toString() {
      return "(a service-loaded propagator that failed to load)";
    }
  }
}
