package dev.taskgroup.bench.sts;

import dev.taskgroup.bench.CancelFrom;
import dev.taskgroup.bench.ParkedChildren;
import java.util.concurrent.StructuredTaskScope;
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
 * Workload (b) for {@code StructuredTaskScope}: an owner virtual thread opened a scope, forked N
 * parked children and waits in {@code join()}. The cancel is the scope's own way to be cancelled
 * from outside: the owner is interrupted, {@code join()} throws, and {@code close()} interrupts
 * every child and waits for them. Timed from the interrupt until {@code close()} has returned. Same
 * settings as {@code dev.taskgroup.bench.CancelParked}.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5)
@Measurement(iterations = 20)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms4g", "-Xmx4g"})
@State(Scope.Thread)
public class CancelParkedSts {
  @Param({"10000", "100000"})
  public int n;

  /** Whether set-up ends with a full GC; see CancelParked. */
  @Param({"false"})
  public boolean gcBeforeCancel;

  /** As CancelParked's: where the cancel is called from. */
  @Param({"virtual"})
  public String canceller;

  CancelFrom from;

  Thread owner;
  volatile Thread timer;
  volatile boolean returned;
  volatile boolean interruptedInJoin;

  @Setup(Level.Trial)
  public void openCanceller() {
    from = new CancelFrom(canceller);
  }

  @TearDown(Level.Trial)
  public void closeCanceller() {
    from.close();
  }

  @Setup(Level.Iteration)
  public void start() {
    System.gc(); // a fresh heap: no collection while the children park (see CancelParked)
    ParkedChildren parked = new ParkedChildren(n);
    parked.expectWaiter(Thread.currentThread());
    timer = Thread.currentThread();
    returned = false;
    interruptedInJoin = false;
    owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try (var scope = StructuredTaskScope.open()) {
                    for (int i = 0; i < n; i++) {
                      scope.fork(parked.child());
                    }
                    scope.join();
                  } catch (InterruptedException e) {
                    interruptedInJoin = true;
                  }
                  returned = true;
                  LockSupport.unpark(timer);
                });
    parked.awaitAllParked();
    if (gcBeforeCancel) {
      System.gc();
    }
  }

  @TearDown(Level.Iteration)
  public void check() throws InterruptedException {
    owner.join();
    if (!interruptedInJoin) {
      throw new IllegalStateException("sts: join() was not interrupted");
    }
  }

  @Benchmark
  public void sts() throws Exception {
    from.run(
        () -> {
          timer = Thread.currentThread(); // the owner wakes it once close() has returned
          owner.interrupt();
          while (!returned) {
            LockSupport.park(this);
          }
        });
  }
}
