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

  /**
   * CompletableFuture.get (or join) on a future nobody completes; the remedy is CancelScope.await.
   */
  static final class FutureGet extends Rig {
    final CompletableFuture<String> future = new CompletableFuture<>();
    final boolean join;

    FutureGet() {
      this(false);
    }

    FutureGet(boolean join) {
      this.join = join;
    }

    @Override
    void call(boolean remedy) throws Exception {
      if (remedy) {
        CancelScope.await(future);
      } else if (join) {
        future.join();
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
  static class Query extends Rig {
    final Connection db;
    final Connection observer;
    final Statement statement;

    Query(Path dir) throws Exception {
      this("matrix" + System.nanoTime());
    }

    private Query(String name) throws Exception {
      this(H2.memory(name), H2.memory(name));
    }

    /** The query runs on {@code db}; {@code observer} is another connection to its database. */
    Query(Connection db, Connection observer) throws Exception {
      this.db = db;
      this.observer = observer;
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
      return H2.usable(db) ? "nothing (connection usable)" : "connection broken";
    }

    @Override
    public void close() throws Exception {
      statement.close();
      db.close();
      observer.close();
    }
  }

  /**
   * A long H2 query sent over TCP to a server in this JVM, as to a database server. The remedy
   * cancels the statement; with {@code cooperative}, inside a {@link CancelScope#cooperative()}
   * scope, where the library does not interrupt the thread (and so leaves the driver's socket
   * open).
   */
  static final class TcpQuery extends Query {
    final H2.TcpServer server;
    final boolean cooperative;
    volatile boolean onVirtual;

    static TcpQuery open(boolean cooperative) throws Exception {
      H2.TcpServer server = new H2.TcpServer();
      String name = "matrix" + System.nanoTime();
      return new TcpQuery(server, server.connect(name), server.connect(name), cooperative);
    }

    private TcpQuery(H2.TcpServer server, Connection db, Connection observer, boolean cooperative)
        throws Exception {
      super(db, observer);
      this.server = server;
      this.cooperative = cooperative;
    }

    @Override
    void call(boolean remedy) throws Exception {
      onVirtual = Thread.currentThread().isVirtual();
      if (remedy && cooperative) {
        CancelScope.cooperative().run(() -> super.call(true));
      } else {
        super.call(remedy);
      }
    }

    /**
     * On a virtual thread the interrupt closes the driver's socket: the hook's {@code
     * statement.cancel()} then mostly throws ("Database is already closed", or an H2 "General
     * error"), a failure of the group; in some runs it does not, and {@code run} reports the
     * cancellation.
     */
    @Override
    boolean varies(boolean remedy) {
      return remedy && !cooperative && onVirtual;
    }

    @Override
    String variedFailure() {
      return "`SQLException` from `statement.cancel()`";
    }

    @Override
    public void close() throws Exception {
      try {
        H2.cancelOtherSessions(observer); // a query whose client socket closed runs on
        super.close();
      } finally {
        server.close();
      }
    }
  }

  /**
   * An UPDATE that waits for a row another connection holds locked (H2 in memory, lock timeout one
   * minute); the remedy cancels the statement.
   */
  static final class LockWait extends Rig {
    static final String UPDATE = "UPDATE T SET V = 2 WHERE ID = 1";
    final Connection holder;
    final Connection db;
    final Connection observer;
    final Statement statement;

    LockWait(Path dir) throws Exception {
      String url =
          "jdbc:h2:mem:matrix" + System.nanoTime() + ";DB_CLOSE_DELAY=0;LOCK_TIMEOUT=60000";
      holder = java.sql.DriverManager.getConnection(url);
      db = java.sql.DriverManager.getConnection(url);
      observer = java.sql.DriverManager.getConnection(url);
      try (Statement s = holder.createStatement()) {
        s.execute("CREATE TABLE T(ID INT PRIMARY KEY, V INT)");
        s.execute("INSERT INTO T VALUES (1, 0)");
        holder.setAutoCommit(false);
        s.executeUpdate("UPDATE T SET V = 1 WHERE ID = 1");
      }
      statement = db.createStatement();
    }

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.onCancel(statement::cancel) : null) {
        statement.executeUpdate(UPDATE);
      }
    }

    @Override
    void awaitBlocked(Thread child) throws Exception {
      String waiting =
          "SELECT COUNT(*) FROM INFORMATION_SCHEMA.SESSIONS WHERE BLOCKER_ID IS NOT NULL";
      try (Statement s = observer.createStatement()) {
        while (true) {
          try (ResultSet r = s.executeQuery(waiting)) {
            r.next();
            if (r.getInt(1) > 0) {
              break;
            }
          }
          Thread.sleep(1); // polling a condition, not ordering threads
        }
      }
      super.awaitBlocked(child); // and parked in the wait
    }

    @Override
    void forceEnd() throws Exception {
      holder.rollback();
    }

    @Override
    String leftBehind() throws Exception {
      return H2.usable(db) ? "nothing (connection usable)" : "connection broken";
    }

    @Override
    public void close() throws Exception {
      holder.rollback();
      statement.close();
      db.close();
      observer.close();
      holder.close();
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
