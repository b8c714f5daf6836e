package dev.taskgroup.examples.context;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The ScopedValue recipe (JDK 25+). This test is compiled for Java 21, where {@code ScopedValue} is
 * a preview API, so it runs {@link ScopedValueScenario} (compiled for 25) reflectively.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ScopedValueRecipeTest {

  @Test
  void listedScopedValuesAreBoundInChildrenAndGrandchildren() throws Exception {
    int jdk = Runtime.version().feature();
    assumeTrue(
        jdk >= 25,
        "ScopedValue is final only from JDK 25; the ScopedValue recipe is not built or tested on"
            + " JDK "
            + jdk);
    @SuppressWarnings("unchecked")
    Callable<List<String>> scenario =
        (Callable<List<String>>)
            Class.forName("dev.taskgroup.examples.context.ScopedValueScenario")
                .getDeclaredConstructor()
                .newInstance();
    assertThat(scenario.call())
        .containsExactly(
            "plain child: REQUEST_ID=unbound NOT_LISTED=unbound",
            "child: REQUEST_ID=r-7 NOT_LISTED=unbound",
            "grandchild: REQUEST_ID=r-7 NOT_LISTED=unbound",
            "owner after: REQUEST_ID=r-7 NOT_LISTED=secret");
  }
}
