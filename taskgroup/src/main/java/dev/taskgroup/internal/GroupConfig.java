package dev.taskgroup.internal;

import dev.taskgroup.ContextPropagator;
import dev.taskgroup.FailurePolicy;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ThreadFactory;
import java.util.function.Consumer;

/**
 * A task group's configuration, validated by the public builder.
 *
 * @param name the name, or null for a generated one
 * @param factory the thread factory, or null for virtual threads
 * @param maxConcurrency the most children running at once, or {@link #UNBOUNDED}
 * @param policy the failure policy
 * @param onFailure the failure handler (COLLECT only), or null
 * @param timeout the group's timeout counted from run, or null for none
 * @param propagators the group's own context propagators, in the order given (an unmodifiable list;
 *     the service-loaded ones are not in it)
 */
public record GroupConfig(
    String name,
    ThreadFactory factory,
    int maxConcurrency,
    FailurePolicy policy,
    Consumer<? super Throwable> onFailure,
    Duration timeout,
    List<ContextPropagator> propagators) {

  /** No limit on concurrent children. */
  public static final int UNBOUNDED = Integer.MAX_VALUE;

  /** Virtual threads, unbounded, CANCEL_ALL, no deadline, no propagator of its own. */
  public static final GroupConfig DEFAULT =
      new GroupConfig(null, null, UNBOUNDED, FailurePolicy.CANCEL_ALL, null, null, List.of());
}
