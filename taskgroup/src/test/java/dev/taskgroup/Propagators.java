package dev.taskgroup;

import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadFactory;

/** Context propagators for the tests: one that records its trail, one that carries a value. */
final class Propagators {
  private Propagators() {}

  /** A plain (not inheritable) thread local, standing for a request context. */
  static final ThreadLocal<String> REQUEST = new ThreadLocal<>();

  /** An event trail shared by the threads of one test. */
  static Queue<String> trail() {
    return new ConcurrentLinkedQueue<>();
  }

  /**
   * Records "tag wrap on THREAD" on the forking thread, then "tag before" / "tag after" around the
   * work on the child's thread.
   */
  record Tagging(String tag, Queue<String> trail) implements ContextPropagator {
    @Override
    public Runnable wrap(Runnable work) {
      trail.add(tag + " wrap on " + Thread.currentThread().getName());
      return () -> {
        trail.add(tag + " before");
        try {
          work.run();
        } finally {
          trail.add(tag + " after");
        }
      };
    }
  }

  /** Carries {@link #REQUEST} from the forking thread to the child and restores it after. */
  static final class CarryRequest implements ContextPropagator {
    @Override
    public Runnable wrap(Runnable work) {
      String captured = REQUEST.get();
      return () -> {
        String before = REQUEST.get();
        REQUEST.set(captured);
        try {
          work.run();
        } finally {
          REQUEST.set(before);
        }
      };
    }
  }

  /** A propagator whose wrap throws {@code e}. */
  static ContextPropagator throwingInWrap(RuntimeException e) {
    return work -> {
      throw e;
    };
  }

  /** A thread factory that records "newThread on THREAD" in {@code trail}. */
  static ThreadFactory recordingFactory(Queue<String> trail) {
    ThreadFactory virtual = Thread.ofVirtual().factory();
    return r -> {
      trail.add("newThread on " + Thread.currentThread().getName());
      return virtual.newThread(r);
    };
  }
}
