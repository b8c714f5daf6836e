package dev.taskgroup;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.management.MBeanServer;
import javax.management.MBeanServerBuilder;
import javax.management.MBeanServerDelegate;

/**
 * Run by {@link TaskTreeTest} in a JVM of its own, with one carrier for virtual threads and {@link
 * SlowStart} as the MBean server builder: the library's first use registers its JMX bean in the
 * background, and starting the platform MBean server takes CPU time that never parks. Here that
 * start spins until a child of the first group has run, or 10 s. Prints "child ran while the MBean
 * server started" when the child could run meanwhile, "the MBean server start held the only
 * carrier" when it could not.
 */
public final class OneCarrierFirstUseMain {
  private OneCarrierFirstUseMain() {}

  static final CountDownLatch SPINNING = new CountDownLatch(1);
  static volatile boolean childRan;

  public static void main(String[] args) throws Exception {
    TaskGroup g = TaskGroup.named("first-use");
    g.run(
        () -> {
          if (!SPINNING.await(20, TimeUnit.SECONDS)) {
            throw new AssertionError("the library's first use started no MBean server");
          }
          g.fork(() -> childRan = true); // a virtual thread: needs a carrier
        });
    if (!SlowStart.DONE.await(20, TimeUnit.SECONDS)) {
      throw new AssertionError("the MBean server start did not end");
    }
    System.out.println(
        SlowStart.released
            ? "child ran while the MBean server started"
            : "the MBean server start held the only carrier");
  }

  /** Starts the MBean server after a busy spin that a child of the first group ends. */
  public static final class SlowStart extends MBeanServerBuilder {
    static final CountDownLatch DONE = new CountDownLatch(1);
    static volatile boolean released;

    @Override
    public MBeanServer newMBeanServer(
        String defaultDomain, MBeanServer outer, MBeanServerDelegate delegate) {
      SPINNING.countDown();
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (!childRan && System.nanoTime() - end < 0L) {
        Thread.onSpinWait(); // CPU work, as the real start is: no park that frees a carrier
      }
      released = childRan;
      DONE.countDown();
      return super.newMBeanServer(defaultDomain, outer, delegate);
    }
  }
}
