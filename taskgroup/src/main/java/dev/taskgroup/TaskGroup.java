package dev.taskgroup;

import dev.taskgroup.internal.CancelReason;
import dev.taskgroup.internal.Group;
import dev.taskgroup.internal.GroupConfig;
import dev.taskgroup.internal.GroupFailedException;
import dev.taskgroup.internal.StartFailedException;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadFactory;
import java.util.function.Consumer;

/**
 * A block of code and the tasks it forks, run and cancelled as one: structured concurrency with
 * first-class cancellation.
 *
 * <p>{@link #run(Body)} runs the body in the calling thread; the body (and any child) may {@link
 * #fork} children, each on its own thread (virtual by default). {@code run} returns only when the
 * body and every child have finished, whatever happens; no child's code outlives the group (a
 * child's thread, done with all of it, may take a moment more to terminate, as under {@code
 * StructuredTaskScope}), and no interrupt the group delivered is left on the caller.
 *
 * {@snippet :
 * var group = TaskGroup.named("search");
 * group.run(() -> {
 *   for (Path shard : shards) {
 *     group.fork(() -> {
 *       if (contains(shard, needle)) {   // blocking, interruptible work
 *         found.set(shard);
 *         group.cancel();                  // done: stop every sibling
 *       }
 *       return null;
 *     });
 *   }
 * });                                      // returns normally once all have stopped
 * assert found.get() == null || (group.cancelCalled() && group.cancelCaught());
 * }
 *
 * <h2>Cancellation</h2>
 *
 * {@link #cancel()} may be called from the body, from a child or from any other thread. It cancels
 * the group's {@linkplain #cancelScope() scope}: the body and every child not yet done are
 * interrupted, and keep being interrupted if they swallow the interrupt, until they finish; every
 * library checkpoint ({@link CancelScope#checkpoint()}, a {@link Task#get()} that has to wait)
 * throws {@link InterruptedException}, and {@code fork} no longer starts work. The group then waits
 * for every child and {@code run} returns normally, with {@link #cancelCalled()} and {@link
 * #cancelCaught()} true. A cancelled group composes with the scopes around it as {@link
 * CancelScope} describes: a cancellation of an enclosing scope passes through the group (its {@code
 * run} throws {@code InterruptedException}) to the outermost cancelled scope, which absorbs it.
 *
 * <h2>Failures</h2>
 *
 * Any exception or error a child or the body throws that is not the cancellation itself is a
 * failure. With the default policy {@link FailurePolicy#CANCEL_ALL} the first failure cancels the
 * body and the other children; when all have finished, {@code run} throws a {@link
 * TaskGroupException} holding every failure in the order they happened, including those raised
 * while being cancelled. Failures are never lost, whatever the order of failures and cancellations.
 * See {@link Builder#failurePolicy} for the supervisor style.
 *
 * <h2>When outcomes coincide</h2>
 *
 * {@code run} reports the first that applies: (1) failures: {@link TaskGroupException} (an
 * interrupt of the owner from outside stays set on the thread); (2) the owner was interrupted by
 * someone else: {@link InterruptedException}, after cancelling and waiting for the children, with
 * the exception the body left with (if it left with one) as its cause; (3) a cancelled scope above
 * the group: {@link InterruptedException}, absorbed by the outermost cancelled scope; (4) the
 * group's own cancel or deadline: {@code run} returns normally and {@link #cancelCaught()} is true.
 *
 * <h2>Context</h2>
 *
 * A child's thread inherits its forking thread's inheritable thread locals (the thread factory is
 * called on the forking thread, and virtual threads inherit them as {@code Thread.ofVirtual()}
 * does), but no plain {@link ThreadLocal}, logging MDC, trace context or {@code ScopedValue}
 * binding. {@link ContextPropagator}s carry those: configured per group ({@link
 * Builder#contextPropagator}) or for every group through {@link java.util.ServiceLoader}.
 *
 * <h2>Memory consistency</h2>
 *
 * Actions before a {@code fork} happen-before the forked work begins; everything the body and every
 * child did happens-before {@code run} returns or throws.
 *
 * <h2>Nulls, misuse and thread safety</h2>
 *
 * Every method may be called from any thread. Null arguments throw {@link NullPointerException}
 * naming the parameter. A group runs once: a second {@code run} or {@code call} throws {@link
 * IllegalStateException}, as does a {@code fork} before {@code run} or after it finished. A
 * rejected call leaves the group as it was.
 */
public final class TaskGroup {
  private final Group group;

  /** The view returned by cancelScope(); benign race on creation. */
  private CancelScope scopeView;

  private TaskGroup(GroupConfig config) {
    this.group = new Group(config);
  }

  /** A group with {@code config}, already validated by {@link GroupBuilder}. */
  static TaskGroup of(GroupConfig config) {
    return new TaskGroup(config);
  }

  /**
   * A group with the default configuration: virtual threads, unbounded concurrency, {@link
   * FailurePolicy#CANCEL_ALL}, no deadline.
   *
   * @return a new group, not yet running
   */
  public static TaskGroup create() {
    return new TaskGroup(GroupConfig.DEFAULT);
  }

  /**
   * A group with the default configuration and a name (used in messages and by {@link #name()}).
   *
   * @param name the group's name
   * @return a new group, not yet running
   * @throws NullPointerException if {@code name} is null
   */
  public static TaskGroup named(String name) {
    return builder().name(name).build();
  }

  /**
   * A builder for a group with a non-default configuration.
   *
   * {@snippet :
   * TaskGroup crawl = TaskGroup.builder()
   *     .name("crawler")
   *     .maxConcurrency(8)
   *     .timeout(Duration.ofSeconds(30))
   *     .build();
   * }
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new GroupBuilder();
  }

  /**
   * Configures a {@link TaskGroup}. Each setter returns the builder; a setter given a bad value
   * throws and leaves the builder as it was. A builder may build any number of groups, each with
   * the configuration as it stands at its {@code build()}; keeping one configured builder and
   * calling {@code build()} per batch of work is cheap (the configuration is made once, then
   * shared, until a setter changes it). Threads may share a builder that none of them changes any
   * more; a setter racing a {@code build()} on another thread needs outside ordering.
   */
  public interface Builder {
    /**
     * Sets the group's name.
     *
     * @param name the name
     * @return this builder
     * @throws NullPointerException if {@code name} is null
     */
    Builder name(String name);

    /**
     * Sets the factory that makes the children's threads (default: virtual threads).
     *
     * <p>The factory may configure the thread (name, daemon, priority, context class loader,
     * uncaught-exception handler). The group then installs its own uncaught-exception handler on
     * each child thread: that is how the thread finds its task. It passes everything it receives on
     * to the handler the factory set, so a factory's handler keeps working. Code running in a child
     * must not replace its own thread's handler: that detaches the thread from its group's
     * cancellation. The thread must run the {@code Runnable} it is given, once, on itself: a second
     * run is refused, and a run on another thread (handed to an executor) fails the child with an
     * {@link IllegalStateException}; a thread that never runs it leaves the group waiting for that
     * child, which {@link TaskTree} then shows running on a terminated thread.
     *
     * @param factory the factory; a factory that throws, returns null or returns a thread already
     *     started, or one whose uncaught-exception handler cannot be set and read back (a {@code
     *     Thread} subclass overriding those methods), makes {@code fork} throw {@link
     *     java.util.concurrent.RejectedExecutionException} (and leaves that thread as it was, but
     *     for its handler); a thread whose {@code start()} throws after the thread started keeps
     *     the child (the fork returns its task, and the group waits for it), and what it threw is a
     *     failure of the group, which under {@link FailurePolicy#CANCEL_ALL} cancels the group, so
     *     that the child's work may then never begin
     * @return this builder
     * @throws NullPointerException if {@code factory} is null
     */
    Builder threadFactory(ThreadFactory factory);

    /**
     * Limits how many children run at once (default: unbounded). A {@code fork} beyond the limit
     * waits, in FIFO order, for a child to finish. It stops waiting when the group is cancelled,
     * and starts nothing: {@code fork} returns a task already {@code CANCELLED} and {@code start}
     * throws {@link CancelledException}, whichever thread called it, even one outside the group
     * (not interrupted by the cancellation) while a child keeps its place through it. It stops as
     * well when the calling thread is cancelled (a scope of its own, or its deadline) or
     * interrupted: {@code fork} then returns a task already {@code CANCELLED}, with the thread's
     * interrupt status set, and {@code start} throws as for a caller that gives up waiting for the
     * signal. A fork waiting on a thread outside the group does not keep the group open: should the
     * group's body have returned and its last child end while the fork waits, the group finishes,
     * and the fork throws {@link IllegalStateException} as any fork into a finished group does (or
     * starts its child, if it took the place first).
     *
     * <p>A fork from inside one of the group's own children never waits: it returns at once, and
     * the new child waits for its place on its own thread, in the same FIFO order (its turn is
     * taken by the fork, so children forked one after the other run in that order). Nor does one
     * from the group's other work: its {@code onFailure} handler, and a {@link
     * CancelScope#onCancel} action registered inside the group (whose registrant may hold a place
     * and wait for the action). So forking cannot deadlock a bounded group, but waiting for what
     * you forked can: a child that waits for a child of the same group ({@code get()}, or {@code
     * start}, which waits for the signal) keeps its place while it waits, and once every place is
     * held that way nothing runs again. Give work that waits for its own sub-tasks a group of its
     * own, opened inside the child: its children do not count against this limit.
     *
     * @param max the limit, at least 1
     * @return this builder
     * @throws IllegalArgumentException if {@code max} is below 1
     */
    Builder maxConcurrency(int max);

    /**
     * Sets what a child failure does (default {@link FailurePolicy#CANCEL_ALL}).
     *
     * @param policy the policy
     * @return this builder
     * @throws NullPointerException if {@code policy} is null
     */
    Builder failurePolicy(FailurePolicy policy);

    /**
     * Hands each failure to {@code handler} as it happens instead of keeping it (policy {@link
     * FailurePolicy#COLLECT} only). The handler runs on the failing thread; an exception it throws
     * is a failure of the group, unless it is the cancellation of that thread (the body or the
     * failing child being cancelled, judged as if they had thrown it). A failing child is not done
     * until its handler returns: the group's cancellation reaches the handler as it reaches the
     * child's work, and a fork from the handler is a fork from that child. Under {@link
     * #maxConcurrency} a fork from the handler never waits for a place, wherever the handler runs.
     * A failing child's handler runs after the child's work and its {@linkplain #contextPropagator
     * context propagators}' code have ended: context they set around the work (a logging MDC, a
     * trace span) is no longer in place; pass what the handler needs in the failure. A failure of
     * the body goes to the handler too (it still cancels the children), and {@code run} then
     * returns normally.
     *
     * @param handler the handler
     * @return this builder
     * @throws NullPointerException if {@code handler} is null
     */
    Builder onFailure(Consumer<? super Throwable> handler);

    /**
     * Gives the group a deadline, {@code timeout} after its {@code run} starts: when it expires the
     * group is cancelled as by {@link #cancel()} (and {@code run} returns normally).
     *
     * @param timeout the timeout; zero cancels at once
     * @return this builder
     * @throws NullPointerException if {@code timeout} is null
     * @throws IllegalArgumentException if {@code timeout} is negative
     */
    Builder timeout(Duration timeout);

    /**
     * Adds a {@link ContextPropagator}: every child of the group runs inside what it returns, so
     * that context of the forking thread (MDC, a trace, {@code ScopedValue} bindings) reaches the
     * child. May be called several times: the propagators apply in the order given, after every
     * service-loaded one, and the last one applied runs outermost in the child.
     *
     * {@snippet :
     * TaskGroup group = TaskGroup.builder()
     *     .contextPropagator(new MdcPropagator())      // wraps first, runs inside
     *     .contextPropagator(new TracingPropagator())  // wraps last, runs outermost
     *     .build();
     * }
     *
     * @param propagator the propagator
     * @return this builder
     * @throws NullPointerException if {@code propagator} is null
     */
    Builder contextPropagator(ContextPropagator propagator);

    /**
     * Builds a new group.
     *
     * @return a new group, not yet running
     * @throws IllegalStateException if {@code onFailure} was set with a policy other than {@link
     *     FailurePolicy#COLLECT}
     */
    TaskGroup build();
  }

  /**
   * Runs {@code body} in the calling thread as the group's body, then waits for every child.
   *
   * @param body the body; it may fork children
   * @throws TaskGroupException if the body or any child failed
   * @throws InterruptedException if the calling thread was interrupted by someone else (its cause
   *     is the body's own exception, an interrupted blocking call's or one the body threw), or a
   *     cancelled scope above the group is visible (see the class description), or the body left
   *     with the cancellation of a scope further out that a shield it raised now hides (the
   *     exception is passed on unchanged, or as the cause of a {@link CancelledException} if it is
   *     another type an interrupt raises, after the children are cancelled and joined)
   * @throws IllegalStateException if the group has already run
   * @throws NullPointerException if {@code body} is null
   */
  public void run(Body body) throws InterruptedException {
    Objects.requireNonNull(body, "body");
    try {
      group.run(body);
    } catch (GroupFailedException failed) {
      throw new TaskGroupException(name(), failed.failures());
    }
  }

  /**
   * Like {@link #run(Body)}, returning the body's result.
   *
   * @param body the body
   * @param <T> the result type
   * @return the body's result, or {@code null} if the body was cut short by a cancellation
   * @throws TaskGroupException if the body or any child failed
   * @throws InterruptedException as for {@link #run(Body)}
   * @throws IllegalStateException if the group has already run
   * @throws NullPointerException if {@code body} is null
   */
  public <T> T call(Callable<T> body) throws InterruptedException {
    Objects.requireNonNull(body, "body");
    try {
      return group.call(body);
    } catch (GroupFailedException failed) {
      throw new TaskGroupException(name(), failed.failures());
    }
  }

  /**
   * Forks {@code work} as a child of this group, on a new thread.
   *
   * <p>If the group is effectively cancelled the work is not started and the returned task is
   * already {@code CANCELLED}. With {@link Builder#maxConcurrency} set, waits for a free place; if
   * the group is cancelled meanwhile, it stops waiting and returns such a task (even when called
   * from a thread outside the group, which the cancellation does not interrupt), and so it does if
   * the calling thread is cancelled or interrupted meanwhile, its interrupt status set.
   *
   * @param work the work
   * @param <T> its result type
   * @return the child's task
   * @throws IllegalStateException if the group has not started or has finished
   * @throws java.util.concurrent.RejectedExecutionException if the thread factory threw or returned
   *     null, or a {@link ContextPropagator} threw in {@code wrap} (the work does not run and the
   *     group is as it was)
   * @throws NullPointerException if {@code work} is null
   */
  public <T> Task<T> fork(Callable<T> work) {
    Objects.requireNonNull(work, "work");
    return group.fork(work, null);
  }

  /**
   * Forks {@code work}, which returns nothing, as a child of this group; see {@link
   * #fork(Callable)}.
   *
   * @param work the work
   * @return the child's task; its result is {@code null}
   * @throws IllegalStateException if the group has not started or has finished
   * @throws java.util.concurrent.RejectedExecutionException if the thread factory or a context
   *     propagator failed
   * @throws NullPointerException if {@code work} is null
   */
  public Task<Void> fork(Body work) {
    Objects.requireNonNull(work, "work");
    return group.fork(work, null);
  }

  /**
   * Forks {@code work} as a child of this group on a thread named {@code name}, whichever factory
   * made the thread; see {@link #fork(Callable)}.
   *
   * @param name the task's and its thread's name
   * @param work the work
   * @param <T> its result type
   * @return the child's task
   * @throws IllegalStateException if the group has not started or has finished
   * @throws java.util.concurrent.RejectedExecutionException if the thread factory or a context
   *     propagator failed
   * @throws NullPointerException if {@code name} or {@code work} is null
   */
  public <T> Task<T> fork(String name, Callable<T> work) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(work, "work");
    return group.fork(work, name);
  }

  /**
   * Forks {@code work}, which returns nothing, as a child of this group on a thread named {@code
   * name}, whichever factory made the thread; see {@link #fork(Callable)}.
   *
   * {@snippet :
   * group.fork("heartbeat", () -> {
   *   while (true) {
   *     peer.ping();
   *     Thread.sleep(1_000);   // ends when the group is cancelled
   *   }
   * });
   * }
   *
   * @param name the task's and its thread's name
   * @param work the work
   * @return the child's task; its result is {@code null}
   * @throws IllegalStateException if the group has not started or has finished
   * @throws java.util.concurrent.RejectedExecutionException if the thread factory failed
   * @throws NullPointerException if {@code name} or {@code work} is null
   */
  public Task<Void> fork(String name, Body work) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(work, "work");
    return group.fork(work, name);
  }

  /**
   * Runs {@code work} as a child and waits until it calls {@link StartSignal#started(Object)};
   * returns that value while the child keeps running in the group.
   *
   * <p>Until it signals, the child is cancelled with the caller's scope: if the caller is cancelled
   * or interrupted while waiting, the child is cancelled and waited for, then {@code start} throws
   * {@link InterruptedException} (also when the work swallowed that cancellation and returned
   * without signalling), or the work's failure if it failed meanwhile without signalling (in its
   * cleanup, say, or a {@code close()} that failed as the cancellation left a try-with-resources:
   * never lost; the interrupt status is then left set). A signal that comes after the caller saw
   * its cancellation is too late: the child is cancelled all the same and the value dropped. After
   * it signals, the child is cancelled with the group. If the work fails before signalling, {@code
   * start} throws that failure (a checked one inside a {@link TaskGroupException}) and it is not a
   * failure of the group; if it returns without signalling, {@code start} throws {@link
   * IllegalStateException}.
   *
   * @param work the work; it must call {@code signal.started(...)} once ready
   * @param <T> the type of the value it signals
   * @return the value passed to {@code started}
   * @throws InterruptedException if the caller is cancelled or interrupted first, or the group is
   *     effectively cancelled (then the work does not start)
   * @throws IllegalStateException if the group has not started or has finished, or the work
   *     returned without signalling
   * @throws java.util.concurrent.RejectedExecutionException if the thread factory or a context
   *     propagator failed (the work does not run and the group is as it was)
   * @throws NullPointerException if {@code work} is null
   */
  public <T> T start(Startable<T> work) throws InterruptedException {
    Objects.requireNonNull(work, "work");
    try {
      return group.start(work);
    } catch (StartFailedException failed) {
      throw TaskGroupException.failedBeforeStarted(name(), List.of(failed.getCause()));
    }
  }

  /**
   * Runs every task as a child of a new group and returns all their results, in the order given:
   * Java's {@code ExecutorService.invokeAll}, or asyncio's {@code gather}, with structured
   * lifetimes. The first failure cancels the others; every failure is then reported, the first one
   * first. The tasks run inside the {@link ContextPropagator}s that are service-loaded and those of
   * the innermost group around the caller. The call cancels the tasks, never the caller's thread,
   * so an interrupt of the caller from someone else is never absorbed: it is thrown as {@code
   * InterruptedException}, or left set when the call returns or throws a failure.
   *
   * {@snippet :
   * List<Page> pages = TaskGroup.invokeAll(List.of(
   *     () -> fetch(home), () -> fetch(about), () -> fetch(contact)));
   * }
   *
   * @param tasks the work, run concurrently
   * @param <T> the result type
   * @return the results, in the order of {@code tasks}
   * @throws TaskGroupException if any task failed, with every failure
   * @throws InterruptedException if the caller was cancelled or interrupted (the tasks are
   *     cancelled and waited for first)
   * @throws java.util.concurrent.RejectedExecutionException if a task could not be started (a
   *     {@link ContextPropagator} threw in {@code wrap}), as {@code ExecutorService.invokeAll}
   *     throws it: the tasks started before it are cancelled and waited for first, and failures
   *     they had meanwhile are suppressed in it
   * @throws NullPointerException if {@code tasks} or one of its elements is null
   */
  public static <T> List<T> invokeAll(Collection<? extends Callable<? extends T>> tasks)
      throws InterruptedException {
    return Invocations.all(tasks);
  }

  /**
   * Runs every task as a child of a new group and returns the first successful result; as soon as
   * one succeeds the others are cancelled and waited for: Java's {@code ExecutorService.invokeAny}
   * (or a race), with structured lifetimes. A task that fails does not stop the others. When two
   * succeed at the same moment exactly one result is returned, and the loser's cancellation is not
   * a failure. Failures are thrown only when every task failed: once one succeeds, or the caller is
   * cancelled first, the failures of the others are dropped, as {@code ExecutorService.invokeAny}
   * drops them (to keep every failure, use {@link #invokeAll} or a group). Context propagation and
   * an interrupt of the caller are as for {@link #invokeAll}.
   *
   * {@snippet :
   * Address fastest = TaskGroup.invokeAny(List.of(
   *     () -> resolve(primaryDns, host), () -> resolve(secondaryDns, host)));
   * }
   *
   * @param tasks the work, run concurrently; at least one
   * @param <T> the result type
   * @return the first successful result
   * @throws TaskGroupException if every task failed, with every failure in order
   * @throws InterruptedException if the caller was cancelled or interrupted (the tasks are
   *     cancelled and waited for first)
   * @throws java.util.concurrent.RejectedExecutionException as for {@link #invokeAll}
   * @throws IllegalArgumentException if {@code tasks} is empty
   * @throws NullPointerException if {@code tasks} or one of its elements is null
   */
  public static <T> T invokeAny(Collection<? extends Callable<? extends T>> tasks)
      throws InterruptedException {
    return Invocations.any(tasks);
  }

  /**
   * Cancels the group: see the class description. Returns at once (unless the JDK's own {@link
   * Thread#interrupt()} of a child blocks: a virtual thread reading a pipe through a {@code
   * FileChannel}, see the project's cancellation table); the caller, if it is in the group, is
   * cancelled too and its next checkpoint throws. Cancelling again has no further effect;
   * cancelling after the group finished only sets {@link #cancelCalled()}; cancelling before it
   * runs makes it start cancelled. (As for {@link CancelScope#cancel()}: after a call that threw an
   * {@link Error} part way, the next call interrupts the children it did not reach.)
   */
  public void cancel() {
    group.cancel(CancelReason.explicit("cancel() called"));
  }

  /**
   * Cancels the group, recording {@code reason} (the first reason given is kept).
   *
   * @param reason why, for {@link CancelScope#cancelReason()} and exception messages
   * @throws NullPointerException if {@code reason} is null
   */
  public void cancel(String reason) {
    Objects.requireNonNull(reason, "reason");
    group.cancel(CancelReason.explicit(reason));
  }

  /**
   * Whether {@link #cancel()} was called (at any time) or the group's deadline expired. A group
   * cancelling its children because of a failure or an outside interrupt does not set it.
   *
   * @return whether the group was cancelled on purpose
   */
  public boolean cancelCalled() {
    return group.cancelCalled();
  }

  /**
   * Whether the group absorbed its own cancellation: it was cancelled by {@link #cancel()} or its
   * deadline while running, and {@code run} returned normally because of it.
   *
   * @return whether the group caught its cancellation
   */
  public boolean cancelCaught() {
    return group.cancelCaught();
  }

  /**
   * The group's own cancel scope: its deadline, shield and cancel reason. It cannot be {@code run}
   * on its own.
   *
   * @return the group's scope
   */
  public CancelScope cancelScope() {
    CancelScope view = scopeView;
    if (view == null) {
      view = CancelScope.viewOf(group);
      scopeView = view;
    }
    return view;
  }

  /**
   * The group's name: the one given, otherwise a generated one.
   *
   * @return the name
   */
  public String name() {
    return group.name();
  }

  /**
   * The group's name and state, e.g. {@code TaskGroup[orders, joining]}: one of the states of
   * {@link TaskTree} ({@code running}, {@code cancelled}, {@code joining}, {@code done}), or {@code
   * new} before it runs.
   *
   * @return the name and state
   */
  @Override
  public String toString() {
    return group.toString();
  }
}
