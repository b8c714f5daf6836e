package dev.taskgroup;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A writer inserting rows into an H2 file database, one auto-committed row at a time, with a
 * checkpoint every {@link #CHECKPOINT_EVERY} rows; it counts the rows whose insert returned
 * (committed), so that the reopened database can be checked against it.
 */
final class H2FileWriter {
  static final int CHECKPOINT_EVERY = 1_000;

  /** Rows inserted before the writer says it is well under way. */
  static final long UNDER_WAY = 20_000;

  private final String url;
  final AtomicLong committed = new AtomicLong();
  final CountDownLatch underWay = new CountDownLatch(1);

  /** Set by a test to end a writer nothing else ends. */
  volatile boolean stop;

  H2FileWriter(Path dir) throws SQLException {
    this.url = "jdbc:h2:file:" + dir.resolve("db").toAbsolutePath() + ";CACHE_SIZE=256";
    try (Connection c = DriverManager.getConnection(url);
        Statement s = c.createStatement()) {
      s.execute("CREATE TABLE T(ID BIGINT PRIMARY KEY, V VARCHAR(100))");
    }
  }

  /**
   * Inserts rows until cancelled, or until H2 throws; what it throws is what user code saw.
   *
   * @param checkpoints whether to call {@code CancelScope.checkpoint()} every {@link
   *     #CHECKPOINT_EVERY} rows (without, only an interrupt reaching H2 stops it)
   */
  void write(boolean checkpoints) throws Exception {
    try (Connection c = DriverManager.getConnection(url);
        PreparedStatement insert = c.prepareStatement("INSERT INTO T VALUES (?, ?)")) {
      for (long i = 1; !stop; i++) {
        insert.setLong(1, i);
        insert.setString(2, "row " + i);
        insert.executeUpdate();
        committed.set(i);
        if (i == UNDER_WAY) {
          underWay.countDown();
        }
        if (checkpoints && i % CHECKPOINT_EVERY == 0) {
          CancelScope.checkpoint();
        }
      }
    }
  }

  /** The rows in the database, read through a fresh connection after the writer ended. */
  long rowsAfterReopen() throws SQLException {
    try (Connection c = DriverManager.getConnection(url);
        Statement s = c.createStatement();
        ResultSet r = s.executeQuery("SELECT COUNT(*) FROM T")) {
      r.next();
      return r.getLong(1);
    }
  }
}
