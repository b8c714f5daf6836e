/**
 * Structured concurrency for Java 21+ with first-class cancellation.
 *
 * <p>The one exported package, {@link dev.taskgroup}, holds the whole public API: {@link
 * dev.taskgroup.TaskGroup}, {@link dev.taskgroup.CancelScope} and their helper types. The machinery
 * lives in {@code dev.taskgroup.internal}, which is not exported. The module has no dependencies
 * beyond {@code java.base}; it records JFR events when {@code jdk.jfr} is present and serves its
 * task tree over JMX when {@code java.management} is. It uses the service {@link
 * dev.taskgroup.ContextPropagator}: propagators that modules provide apply to every group. The
 * library's clock ({@code dev.taskgroup.internal.clock}) is exported only to the test kit, {@code
 * dev.taskgroup.test}, which installs a virtual clock in tests.
 */
module dev.taskgroup {
  // Optional: the library's JFR events are recorded only when jdk.jfr is present and readable.
  requires static jdk.jfr;
  // Optional: the JMX bean dev.taskgroup:type=TaskTree is registered only when it is readable.
  requires static java.management;

  exports dev.taskgroup;
  exports dev.taskgroup.internal.clock to
      dev.taskgroup.test;

  // Context propagators found by ServiceLoader apply to every fork of every group.
  uses dev.taskgroup.ContextPropagator;
}
