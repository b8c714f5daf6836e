package dev.taskgroup.examples;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.CountDownLatch;

/**
 * A long JDBC query (embedded H2) in a group that is cancelled 200 ms in: an interrupt does not
 * reach a running query, so without a hook {@code run} waits for the whole query; with {@code
 * onCancel(statement::cancel)} the statement is cancelled and {@code run} returns in milliseconds,
 * the query's {@code SQLException} counting as the cancellation.
 */
final class JdbcCancel {
  /** About 2 s of work for H2 here (it sums random numbers over 25 million rows). */
  static final String QUERY = "SELECT MAX(RAND()) FROM SYSTEM_RANGE(1, 25000000)";

  private JdbcCancel() {}

  /** Runs the query in a group cancelled after 200 ms; returns how long run took, in ms. */
  static double cancelQuery(boolean withHook) throws SQLException, InterruptedException {
    try (Connection db = DriverManager.getConnection("jdbc:h2:mem:demo" + withHook);
        Statement statement = db.createStatement()) {
      TaskGroup group = TaskGroup.named("query");
      CountDownLatch started = new CountDownLatch(1);
      long t0 = System.nanoTime();
      group.run(
          () -> {
            group.fork(
                () -> {
                  started.await();
                  Thread.sleep(200); // let the query run a little, then give up on it
                  group.cancel("the user gave up");
                });
            if (withHook) {
              try (var hook = CancelScope.onCancel(statement::cancel)) {
                started.countDown();
                statement.executeQuery(QUERY).close();
              }
            } else {
              started.countDown();
              statement.executeQuery(QUERY).close();
            }
          });
      double ms = (System.nanoTime() - t0) / 1e6;
      System.out.printf(
          "  %-36s run() returned after %7.1f ms; cancelCaught=%s%n",
          withHook ? "with onCancel(statement::cancel):" : "without a hook:",
          ms,
          group.cancelCaught());
      return ms;
    }
  }
}
