package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
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
    Path library =
        Path.of(TaskGroup.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Path tests =
        Path.of(
            ClassLoaderUnloadMain.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI());
    String java = ProcessHandle.current().info().command().orElseThrow();
    Process p =
        new ProcessBuilder(
                java,
                "-Ddev.taskgroup.keepAliveMillis=100",
                "-cp",
                tests.toString(),
                ClassLoaderUnloadMain.class.getName(),
                library.toString(),
                tests.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes()).strip();
    assertThat(p.waitFor()).as(out).isZero();
    assertThat(out).isEqualTo("collected 3 of 3 loaders\nthe bean moved to the copy in use");
  }
}
