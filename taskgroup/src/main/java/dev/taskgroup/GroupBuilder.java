package dev.taskgroup;

import dev.taskgroup.internal.GroupConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ThreadFactory;
import java.util.function.Consumer;

/**
 * Collects a configuration; each setter validates before it changes anything. {@link #build} reuses
 * the configuration it made last until a setter runs (it is immutable), so that building many
 * groups from one builder allocates only the groups.
 */
final class GroupBuilder implements TaskGroup.Builder {
  private String name;
  private ThreadFactory factory;
  private int maxConcurrency = GroupConfig.UNBOUNDED;
  private FailurePolicy policy = FailurePolicy.CANCEL_ALL;
  private Consumer<? super Throwable> onFailure;
  private Duration timeout;
  private final List<ContextPropagator> propagators = new ArrayList<>(0);

  /**
   * The configuration the last build made, or null after a setter ran. A benign race when one
   * builder is shared: a GroupConfig has only final fields, so a thread that reads it sees it
   * whole.
   */
  private GroupConfig built;

  @Override
  public TaskGroup.Builder name(String name) {
    this.name = Objects.requireNonNull(name, "name");
    built = null;
    return this;
  }

  @Override
  public TaskGroup.Builder threadFactory(ThreadFactory factory) {
    this.factory = Objects.requireNonNull(factory, "factory");
    built = null;
    return this;
  }

  @Override
  public TaskGroup.Builder maxConcurrency(int max) {
    if (max < 1) {
      throw new IllegalArgumentException("maxConcurrency must be at least 1, was " + max);
    }
    this.maxConcurrency = max;
    built = null;
    return this;
  }

  @Override
  public TaskGroup.Builder failurePolicy(FailurePolicy policy) {
    this.policy = Objects.requireNonNull(policy, "policy");
    built = null;
    return this;
  }

  @Override
  public TaskGroup.Builder onFailure(Consumer<? super Throwable> handler) {
    this.onFailure = Objects.requireNonNull(handler, "handler");
    built = null;
    return this;
  }

  @Override
  public TaskGroup.Builder timeout(Duration timeout) {
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative()) {
      throw new IllegalArgumentException("timeout must not be negative, was " + timeout);
    }
    this.timeout = timeout;
    built = null;
    return this;
  }

  @Override
  public TaskGroup.Builder contextPropagator(ContextPropagator propagator) {
    propagators.add(Objects.requireNonNull(propagator, "propagator"));
    built = null;
    return this;
  }

  @Override
  public TaskGroup build() {
    if (onFailure != null && policy != FailurePolicy.COLLECT) {
      throw new IllegalStateException(
          "onFailure needs failurePolicy(COLLECT): with "
              + policy
              + " failures are reported by run() in a TaskGroupException");
    }
    GroupConfig config = built;
    if (config == null) {
      config =
          new GroupConfig(
              name, factory, maxConcurrency, policy, onFailure, timeout, List.copyOf(propagators));
      built = config;
    }
    return TaskGroup.of(config);
  }
}
