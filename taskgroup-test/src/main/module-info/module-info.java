/**
 * The taskgroup test kit: {@link dev.taskgroup.test.VirtualClock}, a virtual clock for the
 * library's deadlines and sleeps, and {@link dev.taskgroup.test.VirtualTime}, a JUnit Jupiter
 * annotation that installs one per test. JUnit is needed only for the annotation and its extension.
 */
module dev.taskgroup.test {
  requires transitive dev.taskgroup;
  requires java.management; // thread CPU time: auto-advance's sign that a platform thread ran
  requires static org.junit.jupiter.api;

  exports dev.taskgroup.test;
}
