package dev.taskgroup.bench;

import java.lang.reflect.Field;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The control row of "what is not used costs nothing": a benchmark that takes this state runs in a
 * fork started with {@link #PROPERTY}, where the library's hooks for context propagators, JFR
 * events and the test clock are folded out of the fork path (the library's internal {@code
 * Features}), so that fork + join runs the code a build without those features would run. The
 * set-up fails the run if the switch did not take.
 */
@State(Scope.Benchmark)
public class WithoutFeatures {
  /** The JVM option of the control row's forks. */
  public static final String PROPERTY = "-Ddev.taskgroup.internal.withoutFeatures=true";

  /** Fails unless the library in this JVM runs without the features' hooks. */
  @Setup(Level.Trial)
  public void check() throws ReflectiveOperationException {
    Field on = Class.forName("dev.taskgroup.internal.Features").getDeclaredField("ON");
    on.setAccessible(true);
    if (on.getBoolean(null)) {
      throw new IllegalStateException("the control row runs with the features' hooks on");
    }
  }
}
