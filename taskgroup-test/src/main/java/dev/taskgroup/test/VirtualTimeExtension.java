package dev.taskgroup.test;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * The JUnit Jupiter extension behind {@link VirtualTime}: installs a {@link VirtualClock} before
 * each test, injects it into parameters of type {@code VirtualClock} (of the test method and of
 * {@code @BeforeEach} / {@code @AfterEach} methods), and closes it after the test, whether it
 * passed or not. Prefer the {@link VirtualTime} annotation, which also keeps such tests from
 * running in parallel with any other: the library's clock is one per process.
 */
public final class VirtualTimeExtension
    implements BeforeEachCallback, AfterEachCallback, ParameterResolver {
  private static final ExtensionContext.Namespace NAMESPACE =
      ExtensionContext.Namespace.create(VirtualTimeExtension.class);
  private static final String KEY = "clock";

  /** Made by JUnit. */
  public VirtualTimeExtension() {}

  /**
   * Installs the test's clock.
   *
   * @param context the test's context
   * @throws IllegalStateException if another virtual clock is installed (a test running in parallel
   *     that registered the extension without {@link VirtualTime})
   */
  @Override
  public void beforeEach(ExtensionContext context) {
    context.getStore(NAMESPACE).put(KEY, VirtualClock.install());
  }

  /**
   * Closes the test's clock: the library is back on the system clock.
   *
   * @param context the test's context
   */
  @Override
  public void afterEach(ExtensionContext context) {
    VirtualClock clock = context.getStore(NAMESPACE).remove(KEY, VirtualClock.class);
    if (clock != null) {
      clock.close();
    }
  }

  /**
   * Whether the parameter is a {@link VirtualClock}.
   *
   * @param parameter the parameter
   * @param context the context
   * @return whether this extension supplies it
   */
  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    return parameter.getParameter().getType() == VirtualClock.class;
  }

  /**
   * The test's clock.
   *
   * @param parameter the parameter
   * @param context the context
   * @return the clock installed for the current test
   * @throws ParameterResolutionException outside a test (a constructor or a {@code @BeforeAll}
   *     method): there is one clock per test
   */
  @Override
  public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
    VirtualClock clock = context.getStore(NAMESPACE).get(KEY, VirtualClock.class);
    if (clock == null) {
      throw new ParameterResolutionException(
          "a VirtualClock exists only per test: take it as a parameter of the test method or of"
              + " a @BeforeEach / @AfterEach method, not of "
              + parameter.getDeclaringExecutable());
    }
    return clock;
  }
}
