package dev.taskgroup;

/**
 * Carries context from the thread that forks to the child's thread: a logging context (SLF4J MDC),
 * a trace context (OpenTelemetry), {@code ScopedValue} bindings, a security context.
 *
 * <p>A child's thread starts with nothing of its forking thread's context but its inheritable
 * thread locals (as {@code Thread.ofVirtual()} gives; the group's {@link
 * java.util.concurrent.ThreadFactory} is called on the forking thread). A plain {@link
 * ThreadLocal}, the MDC, an OpenTelemetry {@code Context} and {@code ScopedValue} bindings are not
 * inherited. A propagator captures what it needs in {@link #wrap} and installs it around the work
 * in the child:
 *
 * {@snippet :
 * final class MdcPropagator implements ContextPropagator {
 *   @Override
 *   public Runnable wrap(Runnable work) {
 *     Map<String, String> captured = MDC.getCopyOfContextMap();   // on the forking thread
 *     return () -> {                                              // on the child's thread
 *       Map<String, String> before = MDC.getCopyOfContextMap();
 *       if (captured == null) MDC.clear(); else MDC.setContextMap(captured);
 *       try {
 *         work.run();
 *       } finally {
 *         if (before == null) MDC.clear(); else MDC.setContextMap(before);
 *       }
 *     };
 *   }
 * }
 *
 * TaskGroup group = TaskGroup.builder().contextPropagator(new MdcPropagator()).build();
 * }
 *
 * <h2>Where propagators come from, and in which order they apply</h2>
 *
 * A group applies, to every child it starts, first every propagator found by {@link
 * java.util.ServiceLoader} (in the loader's order; on the module path a module {@code provides
 * dev.taskgroup.ContextPropagator}, on the class path a {@code
 * META-INF/services/dev.taskgroup.ContextPropagator} file lists it; they are looked up once, with
 * the context class loader of the thread that first builds a group), then those given to {@link
 * TaskGroup.Builder#contextPropagator}, in the order given. Each {@code wrap} is called on the
 * {@code Runnable} the previous one returned, so the last one applied runs outermost in the child.
 *
 * <p>Children made by {@link TaskGroup#fork}, {@link TaskGroup#start}, {@link TaskGroup#invokeAll}
 * and {@link TaskGroup#invokeAny} are wrapped (the groups of {@code invokeAll} and {@code
 * invokeAny} apply the service-loaded propagators and those of the innermost group enclosing the
 * caller), and so are {@link CancelScope#onCancel} actions: by the service-loaded propagators and
 * those of the innermost group enclosing the registering thread, on that thread.
 *
 * <h2>Rules for an implementation</h2>
 *
 * <ul>
 *   <li>{@code wrap} is called on the forking thread before the child's thread exists (before the
 *       thread factory is called), once per child. If it throws, or returns null, the fork (or
 *       {@code start}, or {@code onCancel}) throws {@link
 *       java.util.concurrent.RejectedExecutionException} with that exception as its cause, the work
 *       does not run and the group is as it was.
 *   <li>The returned {@code Runnable} may never run: a fork into a bounded group wraps first and
 *       then waits for a place, and is cancelled if the group is meanwhile; a thread that cannot be
 *       made or started runs nothing. So {@code wrap} should only capture, and leave what must be
 *       undone (opening a span, taking a resource) to the {@code Runnable}.
 *   <li>The returned {@code Runnable} runs on the child's thread, and must call {@code work.run()}
 *       once, on that thread (a second call, or one from another thread, throws {@link
 *       IllegalStateException}). {@code work.run()} does not throw what the work throws: the work's
 *       outcome goes to the child's {@link Task} and the group as usual.
 *   <li>An exception thrown by the returned {@code Runnable} outside {@code work.run()} is a
 *       failure of the group, and the task fails with it unless the work failed first; so is
 *       returning without calling {@code work.run()} (an {@link IllegalStateException}), and then
 *       the work does not run. The cancellation the child is in is no failure there either: what
 *       the group's cancellation raised in that code (an {@link InterruptedException}, judged as
 *       the work's own would be, see {@link CancelScope}) ends the child quietly, before the work
 *       (the task is {@code CANCELLED}) or after it (the task's outcome stays the work's). For a
 *       {@link TaskGroup#start} child whose work has not signalled yet, a failure before the work
 *       is thrown by {@code start} instead.
 *   <li>Code the propagator runs after {@code work.run()} returns (restoring the MDC, closing a
 *       tracing scope) is part of the child, as the code before it is: it finishes before the child
 *       leaves its group (when the group's {@code run} returns, no propagator code of its children
 *       is still running), and the group's cancellation and deadline reach it (it is interrupted)
 *       until it returns. It may see the interrupt status a cancellation left, so it should not
 *       block: code that must, after a cancellation, runs in a {@linkplain CancelScope#shielded()
 *       shielded} scope.
 * </ul>
 *
 * <p>A group with no propagator (none configured, none service-loaded) pays nothing for the
 * feature.
 */
@FunctionalInterface
public interface ContextPropagator {
  /**
   * Captures the calling thread's context and returns what the child's thread runs in place of
   * {@code work}: typically install the context, run {@code work}, restore what was there.
   *
   * @param work what the child's thread would run without this propagator; to be run once, on the
   *     child's thread
   * @return the work wrapped in the captured context; never null
   */
  Runnable wrap(Runnable work);
}
