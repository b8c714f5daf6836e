package dev.taskgroup.internal;

import dev.taskgroup.FailurePolicy;
import java.time.Duration;
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
 */
public record GroupConfig(
    String name,
    ThreadFactory factory,
    int maxConcurrency,
    FailurePolicy policy,
    Consumer<? super Throwable> onFailure,
    Duration timeout) {

  /** No limit on concurrent children. */
  public static final int UNBOUNDED = Integer.MAX_VALUE;

  /** Virtual threads, unbounded, CANCEL_ALL, no deadline. */
  public static final GroupConfig DEFAULT =
      new GroupConfig(null, null, UNBOUNDED, FailurePolicy.CANCEL_ALL, null, null);
}
