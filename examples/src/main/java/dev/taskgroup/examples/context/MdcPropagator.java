package dev.taskgroup.examples.context;

import dev.taskgroup.ContextPropagator;
import java.util.Map;
import org.slf4j.MDC;

/**
 * Recipe: the SLF4J MDC (logging context) of the forking thread, in every child. A child starts
 * with a copy of the MDC its forking thread had when it forked; what the child changes stays in the
 * child, and its thread's MDC is restored when the work ends.
 *
 * <pre>{@code
 * TaskGroup group = TaskGroup.builder().contextPropagator(new MdcPropagator()).build();
 * }</pre>
 */
public final class MdcPropagator implements ContextPropagator {
  @Override
  public Runnable wrap(Runnable work) {
    Map<String, String> captured = MDC.getCopyOfContextMap(); // on the forking thread
    return () -> { // on the child's thread
      Map<String, String> before = MDC.getCopyOfContextMap();
      setContextMap(captured);
      try {
        work.run();
      } finally {
        setContextMap(before);
      }
    };
  }

  private static void setContextMap(Map<String, String> map) {
    if (map == null) {
      MDC.clear();
    } else {
      MDC.setContextMap(map);
    }
  }
}
