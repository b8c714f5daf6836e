package dev.taskgroup.test;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.CancelScope;
import java.lang.module.Configuration;
import java.lang.module.ModuleFinder;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The module descriptors: the test kit resolves as module {@code dev.taskgroup.test} without JUnit,
 * and reaches the library's clock through the export qualified to it, which no other module gets.
 * (The other tests run on the class path.)
 */
class ModuleTest {
  @Test
  void theTestKitRunsAsAModuleThroughTheQualifiedExport() throws Exception {
    ModuleFinder finder =
        ModuleFinder.of(locationOf(VirtualClock.class), locationOf(CancelScope.class));
    ModuleLayer boot = ModuleLayer.boot();
    Configuration cf =
        boot.configuration().resolve(finder, ModuleFinder.of(), Set.of("dev.taskgroup.test"));
    ModuleLayer layer = boot.defineModulesWithOneLoader(cf, ClassLoader.getPlatformClassLoader());
    Module kit = layer.findModule("dev.taskgroup.test").orElseThrow();
    Module library = layer.findModule("dev.taskgroup").orElseThrow();

    assertThat(library.isExported("dev.taskgroup")).isTrue();
    assertThat(library.isExported("dev.taskgroup.internal.clock", kit)).isTrue();
    assertThat(library.isExported("dev.taskgroup.internal.clock")).isFalse();
    assertThat(library.isExported("dev.taskgroup.internal", kit)).isFalse();

    // A clock of that layer's own copy of the library: install, advance, close.
    Class<?> type = layer.findLoader("dev.taskgroup.test").loadClass(VirtualClock.class.getName());
    assertThat(type.getModule()).isSameAs(kit);
    Object clock = type.getMethod("install").invoke(null);
    Instant start = (Instant) type.getMethod("instant").invoke(clock);
    type.getMethod("advance", Duration.class).invoke(clock, Duration.ofMinutes(5));
    type.getMethod("close").invoke(clock);
    assertThat(type.getMethod("instant").invoke(clock)).isEqualTo(start.plusSeconds(300));
  }

  private static Path locationOf(Class<?> c) throws Exception {
    return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
  }
}
