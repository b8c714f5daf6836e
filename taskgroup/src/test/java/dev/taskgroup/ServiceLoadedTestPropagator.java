package dev.taskgroup;

import java.util.Queue;

/**
 * A context propagator found by ServiceLoader (listed in the test resources' {@code
 * META-INF/services}): it applies to every fork of every group in the test JVM, so it does nothing
 * unless the forking thread has turned it on by setting {@link #TRAIL}.
 */
public final class ServiceLoadedTestPropagator implements ContextPropagator {
  /** Where to record, per forking thread; unset: a no-op. */
  static final ThreadLocal<Queue<String>> TRAIL = new ThreadLocal<>();

  /** The constructor ServiceLoader calls. */
  public ServiceLoadedTestPropagator() {}

  @Override
  public Runnable wrap(Runnable work) {
    Queue<String> trail = TRAIL.get();
    if (trail == null) {
      return work;
    }
    trail.add("service wrap");
    return () -> {
      trail.add("service before");
      try {
        work.run();
      } finally {
        trail.add("service after");
      }
    };
  }
}
