package dev.taskgroup.examples.context;

import dev.taskgroup.ContextPropagator;
import io.opentelemetry.context.Context;

/**
 * Recipe: the OpenTelemetry {@link Context} (current span, baggage) of the forking thread, in every
 * child, so that spans a child starts are children of the span that was current where it was
 * forked. The context is made current around the work and the previous one restored after (the
 * scope is closed before the child leaves its group).
 *
 * <pre>{@code
 * TaskGroup group = TaskGroup.builder().contextPropagator(new OpenTelemetryPropagator()).build();
 * }</pre>
 */
public final class OpenTelemetryPropagator implements ContextPropagator {
  @Override
  public Runnable wrap(Runnable work) {
    return Context.current().wrap(work); // captured now, made current in the child
  }
}
