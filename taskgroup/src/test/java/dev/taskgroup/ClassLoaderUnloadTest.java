package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An application server that drops the class loader of an application shipping the library (a
 * redeployment) can collect it once the application's threads have ended: the library's own threads
 * end when idle, and its JMX bean is unregistered once unused, then registered by the copy in use.
 * A JVM of its own ({@link ClassLoaderUnloadMain}), with a keep-alive of 100 ms.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ClassLoaderUnloadTest {
  @Test
  void aDroppedLoaderIsCollectedAndTheBeanMovesToTheCopyInUse() throws Exception {
    // Only the main class on the class path: it loads the library and the test classes (the
    // arguments) in class loaders of its own.
    String tests = Fixtures.locationOf(ClassLoaderUnloadMain.class).toString();
    String out =
        Fixtures.runJvm(
            List.of("-Ddev.taskgroup.keepAliveMillis=100"),
            tests,
            ClassLoaderUnloadMain.class,
            Fixtures.locationOf(TaskGroup.class).toString(),
            tests);
    assertThat(out)
        .isEqualTo(
            "collected 3 of 3 loaders\n"
                + "loaded by the library's threads after the end: []\n"
                + "what they begin with, loaded by themselves: []\n"
                + "the bean moved to the copy in use");
  }
}
