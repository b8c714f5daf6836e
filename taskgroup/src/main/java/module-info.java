/**
 * Structured concurrency for Java 21+ with first-class cancellation.
 *
 * <p>The one exported package, {@link dev.taskgroup}, holds the whole public API: {@link
 * dev.taskgroup.TaskGroup}, {@link dev.taskgroup.CancelScope} and their helper types. The
 * machinery lives in {@code dev.taskgroup.internal}, which is not exported. The module has no
 * dependencies beyond {@code java.base}; it records JFR events when {@code jdk.jfr} is present.
 */
module dev.taskgroup {
  // Optional: the library's JFR events are recorded only when jdk.jfr is present and readable.
  requires static jdk.jfr;
  // Optional: the JMX bean dev.taskgroup:type=TaskTree is registered only when it is readable.
  requires static java.management;

  exports dev.taskgroup;
}
