package dev.taskgroup;

/**
 * Run by {@link JfrEventsTest} in a JVM without the jdk.jfr module: the library must still load and
 * run, with every event silently off. Prints "ok" when a group forked, cancelled and joined.
 */
public final class NoJfrMain {
  private NoJfrMain() {}

  public static void main(String[] args) throws Exception {
    TaskGroup g = TaskGroup.named("no-jfr");
    g.run(
        () -> {
          g.fork(() -> 1);
          g.cancel("done");
        });
    System.out.println(ModuleLayer.boot().findModule("jdk.jfr").isPresent() ? "jfr present" : "ok");
  }
}
