package dev.taskgroup;

import dev.taskgroup.MatrixRigs.Rig;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/** The matrix's in-JVM waits and its database calls (see {@link MatrixRigs}). */
final class MatrixWaitRigs {
  private MatrixWaitRigs() {}

  static void awaitUninterruptibly(CountDownLatch latch) {
    boolean interrupted = false;
    while (latch.getCount() != 0L) {
      try {
        latch.await();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /** Condition.await, signalled by nobody. */
  static final class ConditionAwait extends Rig {
    final ReentrantLock lock = new ReentrantLock();
    final Condition never = lock.newCondition();
    volatile boolean forced;

    @Override
    void call(boolean remedy) throws Exception {
      lock.lock();
      try {
        while (!forced) {
          never.await();
        }
      } finally {
        lock.unlock();
      }
    }

    @Override
    void forceEnd() {
      lock.lock();
      try {
        forced = true;
        never.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  /** Object.wait, notified by nobody. */
  static final class ObjectWait extends Rig {
    final Object monitor = new Object();
    boolean forced; // guarded by monitor

    @Override
    void call(boolean remedy) throws Exception {
      synchronized (monitor) {
        while (!forced) {
          monitor.wait();
        }
      }
    }

    @Override
    void forceEnd() {
      synchronized (monitor) {
        forced = true;
        monitor.notifyAll();
      }
    }
  }

  /** CompletableFuture.get on a future nobody completes; the remedy is CancelScope.await. */
  static final class FutureGet extends Rig {
    final CompletableFuture<String> future = new CompletableFuture<>();

    @Override
    void call(boolean remedy) throws Exception {
      if (remedy) {
        CancelScope.await(future);
      } else {
        future.get();
      }
    }

    @Override
    void forceEnd() {
      future.complete("forced");
    }

    @Override
    String leftBehind() {
      if (future.isCancelled()) {
        return "future cancelled";
      }
      return future.isDone() ? "nothing" : "future still pending";
    }
  }

  /** A long H2 query (in memory); the remedy cancels the statement. */
  static final class Query extends Rig {
    final Connection db;
    final Connection observer;
    final Statement statement;

    Query(Path dir) throws Exception {
      String name = "matrix" + System.nanoTime();
      db = H2.memory(name);
      observer = H2.memory(name);
      statement = db.createStatement();
    }

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.onCancel(statement::cancel) : null) {
        statement.executeQuery(H2.LONG_QUERY).close();
      }
    }

    @Override
    void awaitBlocked(Thread child) throws Exception {
      H2.awaitLongQueryRunning(observer);
    }

    @Override
    void forceEnd() throws Exception {
      statement.cancel();
    }

    @Override
    String leftBehind() throws Exception {
      try (Statement s = db.createStatement();
          ResultSet r = s.executeQuery("SELECT 1")) {
        return r.next() ? "nothing (connection usable)" : "connection broken";
      } catch (Exception e) {
        return "connection broken";
      }
    }

    @Override
    public void close() throws Exception {
      statement.close();
      db.close();
      observer.close();
    }
  }

  /** An H2 file-database writer; the remedy is cooperative() with a checkpoint every 1000 rows. */
  static final class FileWriter extends Rig {
    final H2FileWriter writer;

    FileWriter(Path dir) throws Exception {
      writer = new H2FileWriter(dir);
    }

    @Override
    void call(boolean remedy) throws Exception {
      if (remedy) {
        CancelScope.cooperative().run(() -> writer.write(true));
      } else {
        writer.write(false);
      }
    }

    @Override
    void awaitBlocked(Thread child) throws Exception {
      writer.underWay.await();
    }

    @Override
    Duration bound() {
      return Duration.ofSeconds(10); // H2 may write on for a while before an interrupt hits it
    }

    @Override
    boolean varies(boolean remedy) {
      // Where the interrupt lands differs from run to run: the writer's exception may carry it
      // (a cancellation) or come from the store it already closed (a failure).
      return !remedy;
    }

    @Override
    void forceEnd() {
      writer.stop = true;
    }

    @Override
    String leftBehind() throws Exception {
      long lost = writer.committed.get() - writer.rowsAfterReopen();
      return lost > 0 ? "committed rows lost, store closed" : "nothing lost";
    }
  }

  /** BlockingQueue.take on an empty queue. */
  static final class Take extends Rig {
    final LinkedBlockingQueue<String> queue = new LinkedBlockingQueue<>();

    @Override
    void call(boolean remedy) throws Exception {
      queue.take();
    }

    @Override
    void forceEnd() {
      queue.add("x");
    }
  }

  /** Thread.sleep. */
  static final class Sleep extends Rig {
    volatile Thread sleeper;

    @Override
    void call(boolean remedy) throws Exception {
      sleeper = Thread.currentThread();
      Thread.sleep(30_000);
    }

    @Override
    void forceEnd() {
      sleeper.interrupt();
    }
  }

  /** A lock (ReentrantLock, or a monitor) held by another thread until released. */
  static final class Held extends Rig {
    final ReentrantLock lock = new ReentrantLock();
    final Object monitor = new Object();
    final CountDownLatch release = new CountDownLatch(1);
    final Thread holder;
    final String how;

    Held(String how) throws InterruptedException {
      this.how = how;
      CountDownLatch held = new CountDownLatch(1);
      holder = Thread.ofPlatform().start(() -> hold(held));
      held.await();
    }

    private void hold(CountDownLatch held) {
      lock.lock();
      try {
        synchronized (monitor) {
          held.countDown();
          awaitUninterruptibly(release);
        }
      } finally {
        lock.unlock();
      }
    }

    @Override
    void call(boolean remedy) throws Exception {
      if (how.equals("synchronized")) {
        synchronized (monitor) {
          return;
        }
      }
      if (remedy) {
        lock.lockInterruptibly();
      } else {
        lock.lock();
      }
      lock.unlock();
    }

    @Override
    void forceEnd() {
      release.countDown();
    }

    @Override
    public void close() throws InterruptedException {
      release.countDown();
      holder.join();
    }
  }
}
