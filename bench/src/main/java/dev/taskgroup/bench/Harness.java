package dev.taskgroup.bench;

import dev.taskgroup.TaskGroup;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.locks.LockSupport;

/**
 * The N-parked-children set-ups shared by the memory and one-million harnesses: a raw owner and a
 * taskgroup owner, each on its own virtual thread, each holding N children parked in a {@code
 * LockSupport.park()} loop until it is told to cancel them.
 */
abstract class Harness {
  final ParkedChildren parked;
  final Thread driver = Thread.currentThread();
  Thread owner;

  /** System.nanoTime() stamps written by the owner. */
  volatile long startNanos;

  volatile long cancelNanos;
  volatile long doneNanos;
  volatile Throwable failure;

  Harness(int n) {
    this.parked = new ParkedChildren(n);
    parked.expectWaiter(driver);
  }

  static Harness of(String impl, int n) {
    return switch (impl) {
      case "raw" -> new Raw(n);
      case "taskgroup" -> new Group(n);
      case "executor" -> new Executor(n);
      case "sts" -> sts(n);
      default -> throw new IllegalArgumentException("unknown implementation: " + impl);
    };
  }

  /** Whether the StructuredTaskScope set-up is on the class path (built with -Pbench). */
  static boolean stsAvailable() {
    return Harness.class.getResource("HarnessSts.class") != null;
  }

  private static Harness sts(int n) {
    if (!stsAvailable()) {
      throw new IllegalArgumentException(
          "sts: HarnessSts is not on the class path; build the bench module with -Pbench");
    }
    try {
      return (Harness)
          Class.forName(Harness.class.getPackageName() + ".HarnessSts")
              .getDeclaredConstructor(int.class)
              .newInstance(n);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("sts: could not create HarnessSts", e);
    }
  }

  /** Work for {@link #onVirtualThread}. */
  interface Work {
    void run() throws Exception;
  }

  /** Runs a harness main on a virtual thread (every owner and driver is virtual) and waits. */
  static void onVirtualThread(Work work) throws Exception {
    Exception[] failed = new Exception[1];
    Thread t =
        Thread.ofVirtual()
            .name("driver")
            .start(
                () -> {
                  try {
                    work.run();
                  } catch (Exception e) {
                    failed[0] = e;
                  }
                });
    t.join();
    if (failed[0] != null) {
      throw failed[0];
    }
  }

  /** Starts the owner, which starts the N children. */
  abstract void start();

  /** Cancels every child and waits until the owner is done; returns the cancel time in ns. */
  abstract long cancel() throws InterruptedException;

  /** Waits until every child checked in; returns the start time (first start to last check-in). */
  long awaitStarted() {
    long last = parked.awaitAllCheckedIn();
    return last - startNanos;
  }

  void check() {
    if (failure != null) {
      throw new IllegalStateException("the owner failed", failure);
    }
  }

  /** Raw: the owner starts N virtual threads, keeps them in start order, interrupts and joins. */
  static final class Raw extends Harness {
    private volatile boolean cancelRequested;

    Raw(int n) {
      super(n);
    }

    @Override
    void start() {
      int n = parked.size();
      owner =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      Thread[] threads = new Thread[n];
                      startNanos = System.nanoTime();
                      for (int i = 0; i < n; i++) {
                        threads[i] = Thread.ofVirtual().start(parked.child());
                      }
                      while (!cancelRequested) {
                        LockSupport.park(this);
                      }
                      cancelNanos = System.nanoTime();
                      for (Thread t : threads) {
                        t.interrupt();
                      }
                      for (Thread t : threads) {
                        t.join();
                      }
                      doneNanos = System.nanoTime();
                    } catch (Throwable t) {
                      failure = t;
                    }
                  });
    }

    @Override
    long cancel() throws InterruptedException {
      cancelRequested = true;
      LockSupport.unpark(owner);
      owner.join();
      check();
      return doneNanos - cancelNanos;
    }
  }

  /** Executor: the owner submits N tasks to a virtual-thread-per-task executor; shutdownNow. */
  static final class Executor extends Harness {
    private volatile ExecutorService executor;

    Executor(int n) {
      super(n);
    }

    @Override
    void start() {
      int n = parked.size();
      ExecutorService e = Executors.newVirtualThreadPerTaskExecutor();
      executor = e;
      owner =
          Thread.ofVirtual()
              .start(
                  () -> {
                    startNanos = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                      e.submit(parked.child());
                    }
                  });
    }

    @Override
    long cancel() throws InterruptedException {
      owner.join();
      long t0 = System.nanoTime();
      executor.shutdownNow();
      executor.close();
      long done = System.nanoTime();
      check();
      return done - t0;
    }
  }

  /** taskgroup: the owner runs a group whose body forks N children; cancel() from the driver. */
  static final class Group extends Harness {
    private final TaskGroup group = TaskGroup.create();

    Group(int n) {
      super(n);
    }

    @Override
    void start() {
      int n = parked.size();
      owner =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      startNanos = System.nanoTime();
                      group.run(
                          () -> {
                            for (int i = 0; i < n; i++) {
                              group.fork(parked.body());
                            }
                          });
                      doneNanos = System.nanoTime();
                      if (!group.cancelCaught()) {
                        throw new IllegalStateException("the group did not catch its cancel");
                      }
                    } catch (Throwable t) {
                      failure = t;
                    }
                  });
    }

    @Override
    long cancel() throws InterruptedException {
      long t0 = System.nanoTime();
      group.cancel();
      owner.join();
      check();
      return doneNanos - t0;
    }
  }
}
