package dev.taskgroup.bench;

import dev.taskgroup.TaskGroup;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Performance workload (a): fork + join of 100 trivial children per group, reported per child
 * ({@code @OperationsPerInvocation(100)}). Raw: the owner starts 100 virtual threads, each child
 * counts down ONE shared counter, and the owner parks until the last child unparks it. The {@code
 * StructuredTaskScope} peer is {@code dev.taskgroup.bench.sts.ForkJoinHundredSts}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 4, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 10, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@OperationsPerInvocation(ForkJoinHundred.CHILDREN)
public class ForkJoinHundred {
  public static final int CHILDREN = 100;

  /** Raw: 100 starts; each child counts down one shared counter; the owner parks until zero. */
  @Benchmark
  public void raw() {
    Countdown countdown = new Countdown(CHILDREN, Thread.currentThread());
    for (int i = 0; i < CHILDREN; i++) {
      Thread.ofVirtual().start(countdown);
    }
    countdown.await();
  }

  /**
   * Raw plus what every group of threads that hands back a handle per child needs and {@link #raw}
   * does without, so that the cost of structure itself is measured: a handle per child (a new
   * object, which is what its thread runs, and which the child marks done as it ends, with a
   * release store), found by code running on the child's thread (here, as in the library, as the
   * thread's uncaught-exception handler: a volatile store per child, the cheapest per-thread slot
   * the JDK offers), and a count of children not known in advance (each fork counts one in with an
   * atomic increment; the owner's own share keeps the count above zero until it joins). Not a peer:
   * the floor that {@code taskgroup} is read against.
   */
  @Benchmark
  public void rawWithBookkeeping() {
    Bookkeeping group = new Bookkeeping(Thread.currentThread());
    for (int i = 0; i < CHILDREN; i++) {
      Member member = new Member(group);
      Thread child = Thread.ofVirtual().unstarted(member);
      group.admit();
      child.setUncaughtExceptionHandler(member);
      child.start();
    }
    group.join();
  }

  /** A new group; the body forks 100 children; run returns when all are done. */
  @Benchmark
  public void taskgroup() throws InterruptedException {
    TaskGroup group = TaskGroup.create();
    group.run(
        () -> {
          for (int i = 0; i < CHILDREN; i++) {
            group.fork(ForkJoinOne.NOTHING_BODY);
          }
        });
  }

  /** Raw as {@link #raw}, with a new virtual thread per operation as the owner. */
  @Benchmark
  public void rawFreshOwner() throws InterruptedException {
    Thread.ofVirtual().start(() -> raw()).join();
  }

  /**
   * taskgroup as {@link #taskgroup}, with a new virtual thread per operation as the owner: it
   * registers in the task tree's registry of root threads once per group (no JFR recording on).
   */
  @Benchmark
  public void taskgroupFreshOwner() throws InterruptedException {
    Thread.ofVirtual()
        .start(
            () -> {
              try {
                taskgroup();
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            })
        .join();
  }

  /** As {@link #taskgroup()}, without the features' hooks: see {@link WithoutFeatures}. */
  @Benchmark
  @Fork(
      value = 2,
      jvmArgsAppend = {"-Xms2g", "-Xmx2g", WithoutFeatures.PROPERTY})
  public void taskgroupWithoutFeatures(WithoutFeatures control) throws InterruptedException {
    taskgroup();
  }

  /** As {@link #taskgroup()}, with one context propagator that does nothing. */
  @Benchmark
  public void taskgroupPropagator() throws InterruptedException {
    TaskGroup group = ForkJoinOne.PROPAGATED.build();
    group.run(
        () -> {
          for (int i = 0; i < CHILDREN; i++) {
            group.fork(ForkJoinOne.NOTHING_BODY);
          }
        });
  }

  /** A new {@code newVirtualThreadPerTaskExecutor()}: 100 submits, close (waits for all). */
  @Benchmark
  public void executor() {
    try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int i = 0; i < CHILDREN; i++) {
        executor.submit(ForkJoinOne.NOTHING);
      }
    }
  }

  /** {@code runBlocking { repeat(100) { launch(Dispatchers.Default) {} } }}. */
  @Benchmark
  public void kotlin() throws InterruptedException {
    Kotlin.forkJoin(CHILDREN);
  }

  /**
   * {@link #rawWithBookkeeping}'s group: a count of unfinished members (the owner's share and one
   * per child), counted in per fork; the member that takes it to zero unparks the owner.
   */
  static final class Bookkeeping {
    private final AtomicInteger left = new AtomicInteger(1);
    private final Thread owner;

    Bookkeeping(Thread owner) {
      this.owner = owner;
    }

    void admit() {
      left.incrementAndGet();
    }

    void leave() {
      if (left.decrementAndGet() == 0) {
        LockSupport.unpark(owner);
      }
    }

    /** Gives up the owner's share, then parks until every child has counted itself out. */
    void join() {
      if (left.decrementAndGet() == 0) {
        return;
      }
      while (left.get() != 0) {
        LockSupport.park(this);
      }
    }
  }

  /**
   * {@link #rawWithBookkeeping}'s handle on one child: what its thread runs, its uncaught-exception
   * handler, and the mark that it is done (which a handle's {@code isDone()} would read).
   */
  static final class Member implements Runnable, Thread.UncaughtExceptionHandler {
    private static final VarHandle DONE;

    static {
      try {
        DONE = MethodHandles.lookup().findVarHandle(Member.class, "done", boolean.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    private final Bookkeeping group;
    private boolean done;

    Member(Bookkeeping group) {
      this.group = group;
    }

    @Override
    public void run() {
      DONE.setRelease(this, true);
      group.leave();
    }

    @Override
    public void uncaughtException(Thread t, Throwable e) {
      t.getThreadGroup().uncaughtException(t, e);
    }
  }

  /** The raw peer's one shared counter; the child that takes it to zero unparks the owner. */
  static final class Countdown implements Runnable {
    private final AtomicInteger left;
    private final Thread owner;

    Countdown(int n, Thread owner) {
      this.left = new AtomicInteger(n);
      this.owner = owner;
    }

    @Override
    public void run() {
      if (left.decrementAndGet() == 0) {
        LockSupport.unpark(owner);
      }
    }

    void await() {
      while (left.get() != 0) {
        LockSupport.park(this);
      }
    }
  }
}
