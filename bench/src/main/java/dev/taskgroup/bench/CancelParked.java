package dev.taskgroup.bench;

import dev.taskgroup.TaskGroup;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Performance workload (b): cancel a group of N children, each parked in a {@code
 * LockSupport.park()} loop ({@link ParkedChildren}), timed from the cancel until the owner's run
 * returns. Each iteration is one cancel (single shot); the set-up of every iteration starts N fresh
 * children and waits until each one is {@code WAITING}, outside the timing.
 *
 * <p>Stacks and the GC. A parked virtual thread's stack is a heap object; a collection that runs
 * while it is parked moves it, and the thread then thaws it on the JDK's slow path when it wakes.
 * Set-up therefore starts with a full GC, so that none runs while the children start and park: the
 * measured cancel then wakes children whose stacks no GC has touched, every iteration alike. (It
 * did not before: a young collection ran during about one set-up in ten, by chance, and that
 * iteration's cancel took 1.3 to 2.5 times as long, for raw and taskgroup alike; {@link
 * CancelModeProbe} counts the collections per iteration beside the time.) With {@code
 * gcBeforeCancel=true} set-up ends with a full GC instead, so that every parked child's stack has
 * been through one, as a long-parked thread's has: the slow path, for every child.
 *
 * <p>{@code canceller}: {@code virtual} calls the cancel from the benchmark thread (virtual in the
 * comparison), {@code platform} from a platform thread ({@link CancelFrom}).
 *
 * <ul>
 *   <li>raw: the owner (the benchmark thread) started N virtual threads; it interrupts them in
 *       start order, then joins each.
 *   <li>taskgroup: an owner virtual thread runs a group whose body forked N children; the benchmark
 *       thread calls {@code group.cancel()} and waits until {@code run} has returned (the owner
 *       stamps the moment and unparks it).
 *   <li>executor: the benchmark thread submitted N tasks to a {@code
 *       newVirtualThreadPerTaskExecutor()}; {@code shutdownNow()} (interrupts them) and {@code
 *       close()}.
 *   <li>StructuredTaskScope: {@code dev.taskgroup.bench.sts.CancelParkedSts} (bench profile).
 * </ul>
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5)
@Measurement(iterations = 20)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms4g", "-Xmx4g"})
public class CancelParked {

  /** The number of parked children. */
  @State(Scope.Thread)
  public abstract static class Size {
    @Param({"10000", "100000"})
    public int n;

    /** Whether set-up ends with a full GC; see the class comment. */
    @Param({"false"})
    public boolean gcBeforeCancel;

    /** {@code virtual}: the benchmark thread cancels; {@code platform}: a platform thread does. */
    @Param({"virtual"})
    public String canceller;

    CancelFrom from;

    @Setup(Level.Trial)
    public void openCanceller() {
      from = new CancelFrom(canceller);
    }

    @TearDown(Level.Trial)
    public void closeCanceller() {
      from.close();
    }

    /**
     * The first act of every iteration's set-up: a full GC, so that none runs while the children
     * start and park (the heap is large enough for one set-up). A collection that runs then moves
     * the stacks of the children parked so far, and the cancel thaws those on the JDK's slow path:
     * that was the slow mode of this workload (see the class comment).
     */
    void freshHeap() {
      System.gc();
    }

    void gcIfAsked() {
      if (gcBeforeCancel) {
        System.gc();
      }
    }
  }

  /** The owner's Thread[] in start order, all parked. */
  public static class RawState extends Size {
    Thread[] threads;

    @Setup(Level.Iteration)
    public void start() {
      freshHeap();
      ParkedChildren parked = new ParkedChildren(n);
      parked.expectWaiter(Thread.currentThread());
      threads = new Thread[n];
      for (int i = 0; i < n; i++) {
        threads[i] = Thread.ofVirtual().start(parked.child());
      }
      parked.awaitAllParked();
      gcIfAsked();
    }

    @TearDown(Level.Iteration)
    public void check() {
      for (Thread t : threads) {
        if (t.isAlive()) {
          throw new IllegalStateException("raw: a child outlived the cancel");
        }
      }
      threads = null;
    }
  }

  /** Raw: interrupt the threads in start order, then join each. */
  @Benchmark
  public void raw(RawState s) throws Exception {
    Thread[] threads = s.threads;
    s.from.run(
        () -> {
          for (Thread t : threads) {
            t.interrupt();
          }
          for (Thread t : threads) {
            t.join();
          }
        });
  }

  /** A group whose body forked N parked children; its owner is a virtual thread. */
  public static class GroupState extends Size {
    TaskGroup group;
    Thread owner;
    volatile Thread timer;
    volatile boolean returned;
    volatile Throwable failure;

    @Setup(Level.Iteration)
    public void start() {
      freshHeap();
      ParkedChildren parked = new ParkedChildren(n);
      parked.expectWaiter(Thread.currentThread());
      timer = Thread.currentThread();
      returned = false;
      TaskGroup g = TaskGroup.create();
      group = g;
      owner =
          Thread.ofVirtual()
              .start(
                  () -> {
                    try {
                      g.run(
                          () -> {
                            for (int i = 0; i < n; i++) {
                              g.fork(parked.body());
                            }
                          });
                    } catch (Throwable t) {
                      failure = t;
                    }
                    returned = true;
                    LockSupport.unpark(timer);
                  });
      parked.awaitAllParked();
      gcIfAsked();
    }

    void awaitReturn() {
      while (!returned) {
        LockSupport.park(this);
      }
    }

    @TearDown(Level.Iteration)
    public void check() throws InterruptedException {
      owner.join();
      if (failure != null) {
        throw new IllegalStateException("taskgroup: run threw", failure);
      }
      if (!group.cancelCaught()) {
        throw new IllegalStateException("taskgroup: the group did not catch its cancel");
      }
      group = null;
    }
  }

  /** taskgroup: {@code group.cancel()} until the owner's {@code run} returns. */
  @Benchmark
  public void taskgroup(GroupState s) throws Exception {
    s.from.run(
        () -> {
          s.timer = Thread.currentThread(); // the owner wakes it once run has returned
          s.group.cancel();
          s.awaitReturn();
        });
  }

  /** N tasks submitted to a virtual-thread-per-task executor. */
  public static class ExecutorState extends Size {
    ExecutorService executor;

    @Setup(Level.Iteration)
    public void start() {
      freshHeap();
      ParkedChildren parked = new ParkedChildren(n);
      parked.expectWaiter(Thread.currentThread());
      executor = Executors.newVirtualThreadPerTaskExecutor();
      for (int i = 0; i < n; i++) {
        executor.submit(parked.child());
      }
      parked.awaitAllParked();
      gcIfAsked();
    }

    @TearDown(Level.Iteration)
    public void check() {
      if (!executor.isTerminated()) {
        throw new IllegalStateException("executor: not terminated after close");
      }
      executor = null;
    }
  }

  /** Executor: {@code shutdownNow()} (interrupts every task), then {@code close()} (waits). */
  @Benchmark
  public void executor(ExecutorState s) throws Exception {
    ExecutorService executor = s.executor;
    s.from.run(
        () -> {
          executor.shutdownNow();
          executor.close();
        });
  }
}
