package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Cancel hooks against real blocking calls: an exception the thread throws after an action it
 * registered has started for the current cancellation is that cancellation (a cancelled H2
 * statement's SQLException, a closed socket's SocketException), not a failure.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BlockingCallsTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  @RepeatedTest(3)
  void jdbcQueryCancelledThroughStatementCancelEndsTheGroupNormally() throws Exception {
    try (Connection db = H2.memory("hook-body");
        Connection observer = H2.memory("hook-body");
        Statement statement = db.createStatement()) {
      TaskGroup group = TaskGroup.named("query");
      long start = System.nanoTime();
      group.run(
          () -> {
            group.fork(
                () -> {
                  H2.awaitLongQueryRunning(observer);
                  group.cancel("enough");
                });
            try (var hook = CancelScope.onCancel(statement::cancel)) {
              statement.executeQuery(H2.LONG_QUERY);
            }
          });
      long ms = Probes.millis(System.nanoTime() - start);
      System.out.printf("H2 query cancelled through onCancel(statement::cancel): %d ms%n", ms);
      assertThat(group.cancelCaught()).isTrue();
      assertThat(ms).isLessThan(10_000);
    }
  }

  @RepeatedTest(3)
  void jdbcQueryInAChildEndsCancelledNotFailed() throws Exception {
    try (Connection db = H2.memory("hook-child");
        Connection observer = H2.memory("hook-child");
        Statement statement = db.createStatement()) {
      TaskGroup group = TaskGroup.named("query");
      AtomicReference<Task<Void>> child = new AtomicReference<>();
      group.run(
          () -> {
            child.set(
                group.fork(
                    () -> {
                      try (var hook = CancelScope.onCancel(statement::cancel)) {
                        statement.executeQuery(H2.LONG_QUERY);
                      }
                    }));
            H2.awaitLongQueryRunning(observer);
            group.cancel();
          });
      assertThat(group.cancelCaught()).isTrue();
      assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
    }
  }

  /**
   * A driver that talks to its server over a socket, on a virtual thread: in a cooperative scope
   * the interrupt does not close the driver's socket, the hook cancels the statement, the child
   * ends cancelled and the connection stays usable (README, Blocking calls).
   */
  @RepeatedTest(3)
  void jdbcQueryOverTcpOnAVirtualThreadEndsThroughTheCooperativeForm() throws Exception {
    try (H2.TcpServer server = new H2.TcpServer();
        Connection db = server.connect("coop-run");
        Connection observer = server.connect("coop-run");
        Statement statement = db.createStatement()) {
      TaskGroup group = TaskGroup.named("query");
      AtomicReference<Task<Void>> child = new AtomicReference<>();
      group.run(
          () -> {
            child.set(
                group.fork(
                    () -> {
                      CancelScope.cooperative()
                          .run(
                              () -> {
                                try (var hook = CancelScope.onCancel(statement::cancel)) {
                                  statement.executeQuery(H2.LONG_QUERY);
                                }
                              });
                    }));
            H2.awaitLongQueryRunning(observer);
            group.cancel();
          });
      assertThat(group.cancelCaught()).isTrue();
      assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(H2.usable(db)).isTrue();
    }
  }

  /** The same with the form of the onCancel javadoc, which returns the result set. */
  @RepeatedTest(3)
  void jdbcQueryOverTcpReturnedFromACooperativeScopeEndsCancelled() throws Exception {
    try (H2.TcpServer server = new H2.TcpServer();
        Connection db = server.connect("coop-call");
        Connection observer = server.connect("coop-call");
        Statement statement = db.createStatement()) {
      TaskGroup group = TaskGroup.named("query");
      AtomicReference<Task<ResultSet>> child = new AtomicReference<>();
      group.run(
          () -> {
            child.set(group.fork(() -> query(statement, H2.LONG_QUERY)));
            H2.awaitLongQueryRunning(observer);
            group.cancel();
          });
      assertThat(group.cancelCaught()).isTrue();
      assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
      assertThat(H2.usable(db)).isTrue();
    }
  }

  private static ResultSet query(Statement statement, String sql)
      throws SQLException, InterruptedException {
    return CancelScope.cooperative()
        .call(
            () -> {
              try (var hook = CancelScope.onCancel(statement::cancel)) {
                return statement.executeQuery(sql);
              }
            });
  }

  @RepeatedTest(3)
  void socketReadOnAPlatformThreadEndsThroughCloseOnCancel() throws Exception {
    Tracking threads = new Tracking(ThreadKind.PLATFORM);
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
        Socket silent = server.accept()) {
      TaskGroup group = Fixtures.group("reader", threads);
      CountDownLatch reading = new CountDownLatch(1);
      AtomicReference<Task<Integer>> child = new AtomicReference<>();
      group.run(
          () -> {
            child.set(
                group.fork(
                    () -> {
                      try (var hook = CancelScope.onCancel(client::close)) {
                        reading.countDown();
                        return client.getInputStream().read(); // the peer never writes
                      }
                    }));
            reading.await();
            group.cancel();
          });
      assertThat(group.cancelCaught()).isTrue();
      assertThat(child.get().state()).isEqualTo(Future.State.CANCELLED);
      threads.assertAllDone();
    }
  }

  @Test
  void anExceptionAfterTheHookStartedIsTheCancellation() throws Exception {
    TaskGroup group = TaskGroup.named("effect");
    group.run(() -> throwAfterOwnHookRan(group, new IllegalStateException("the hook's effect")));
    assertThat(group.cancelCaught()).isTrue();
  }

  @Test
  void anErrorAfterTheHookStartedIsStillAFailure() {
    TaskGroup group = TaskGroup.named("error");
    Throwable thrown =
        catchThrowable(() -> group.run(() -> throwAfterOwnHookRan(group, new AssertionError())));
    assertThat(thrown)
        .isInstanceOf(TaskGroupException.class)
        .hasCauseInstanceOf(AssertionError.class);
  }

  @Test
  void anExceptionWithNoHookOfTheThreadIsAFailure() {
    TaskGroup group = TaskGroup.named("plain");
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.cancel();
                      throw new IllegalStateException("no hook registered: a failure");
                    }));
    assertThat(thrown)
        .isInstanceOf(TaskGroupException.class)
        .hasCauseInstanceOf(IllegalStateException.class);
  }

  @RepeatedTest(3)
  void anotherThreadsHookDoesNotMakeMyExceptionACancellation() {
    TaskGroup group = TaskGroup.named("other");
    CountDownLatch registered = new CountDownLatch(1);
    CountDownLatch fired = new CountDownLatch(1);
    Throwable thrown =
        catchThrowable(
            () ->
                group.run(
                    () -> {
                      group.fork(
                          () -> {
                            try (var hook = CancelScope.onCancel(fired::countDown)) {
                              registered.countDown();
                              Thread.sleep(30_000);
                            }
                          });
                      registered.await();
                      group.cancel();
                      while (fired.getCount() != 0L) {
                        Thread.onSpinWait();
                      }
                      throw new IllegalStateException("the body's own failure");
                    }));
    assertThat(thrown)
        .isInstanceOf(TaskGroupException.class)
        .hasCauseInstanceOf(IllegalStateException.class);
  }

  /** Registers a hook, cancels, waits (not interruptibly) until the hook ran, then throws. */
  private static void throwAfterOwnHookRan(TaskGroup group, Throwable t) throws Exception {
    CountDownLatch fired = new CountDownLatch(1);
    try (var hook = CancelScope.onCancel(fired::countDown)) {
      group.cancel();
      while (fired.getCount() != 0L) {
        Thread.onSpinWait();
      }
      if (t instanceof Exception e) {
        throw e;
      }
      throw (Error) t;
    }
  }
}
