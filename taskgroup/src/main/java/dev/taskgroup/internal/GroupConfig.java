package dev.taskgroup.internal;

import dev.taskgroup.ContextPropagator;
import dev.taskgroup.FailurePolicy;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ThreadFactory;
import java.util.function.Consumer;

/**
 * A task group's configuration, validated by the public builder. Immutable (final fields only), so
 * one instance may configure any number of groups on any threads: a builder keeps the last one it
 * built and hands it to every group it builds until a setter changes something.
 *
 * <p>With context propagators of its own, the configuration also holds them merged after the
 * service-loaded ones, as every fork applies them, so that a group built from it allocates no
 * array. Without, the group asks {@link Propagation} at construction (no allocation either); that
 * keeps the service-loaded lookup out of this class's initialisation, which a provider that builds
 * a group while being loaded would otherwise re-enter.
 */
public final class GroupConfig {
  /** No limit on concurrent children. */
  public static final int UNBOUNDED = Integer.MAX_VALUE;

  /** Virtual threads, unbounded, CANCEL_ALL, no deadline, no propagator of its own. */
  public static final GroupConfig DEFAULT =
      new GroupConfig(null, null, UNBOUNDED, FailurePolicy.CANCEL_ALL, null, null, List.of());

  private final String name;
  private final ThreadFactory factory;
  private final int maxConcurrency;
  private final FailurePolicy policy;
  private final Consumer<? super Throwable> onFailure;
  private final Duration timeout;
  private final List<ContextPropagator> propagators;

  /** Service-loaded then own propagators; null when there are no own ones (see the class doc). */
  private final ContextPropagator[] merged;

  /**
   * A configuration.
   *
   * @param name the name, or null for a generated one
   * @param factory the thread factory, or null for virtual threads
   * @param maxConcurrency the most children running at once, or {@link #UNBOUNDED}
   * @param policy the failure policy
   * @param onFailure the failure handler (COLLECT only), or null
   * @param timeout the group's timeout counted from run, or null for none
   * @param propagators the group's own context propagators, in the order given (an unmodifiable
   *     list; the service-loaded ones are not in it)
   */
  public GroupConfig(
      String name,
      ThreadFactory factory,
      int maxConcurrency,
      FailurePolicy policy,
      Consumer<? super Throwable> onFailure,
      Duration timeout,
      List<ContextPropagator> propagators) {
    this.name = name;
    this.factory = factory;
    this.maxConcurrency = maxConcurrency;
    this.policy = policy;
    this.onFailure = onFailure;
    this.timeout = timeout;
    this.propagators = propagators;
    this.merged = propagators.isEmpty() ? null : Propagation.forGroup(propagators);
  }

  /** The name, or null for a generated one. */
  public String name() {
    return name;
  }

  /** The thread factory, or null for virtual threads. */
  public ThreadFactory factory() {
    return factory;
  }

  /** The most children running at once, or {@link #UNBOUNDED}. */
  public int maxConcurrency() {
    return maxConcurrency;
  }

  /** The failure policy. */
  public FailurePolicy policy() {
    return policy;
  }

  /** The failure handler (COLLECT only), or null. */
  public Consumer<? super Throwable> onFailure() {
    return onFailure;
  }

  /** The group's timeout counted from run, or null for none. */
  public Duration timeout() {
    return timeout;
  }

  /** The group's own context propagators, in the order given (unmodifiable). */
  public List<ContextPropagator> propagators() {
    return propagators;
  }

  /** What a group with this configuration applies to each fork: see {@link Propagation}. */
  ContextPropagator[] appliedPropagators() {
    return merged != null ? merged : Propagation.forGroup(List.of());
  }
}
