package dev.taskgroup;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.concurrent.locks.LockSupport;

/** A real embedded H2 database for the blocking-call tests. */
final class H2 {
  /** About 77 ns a row here: a query of this many rows runs for minutes if nothing stops it. */
  static final String LONG_QUERY = "SELECT MAX(RAND()) FROM SYSTEM_RANGE(1, 2000000000)";

  private H2() {}

  /** A fresh private in-memory database, open while the connection is. */
  static Connection memory(String name) throws SQLException {
    return DriverManager.getConnection("jdbc:h2:mem:" + name + ";DB_CLOSE_DELAY=0");
  }

  /**
   * Waits until some session of the database runs {@link #LONG_QUERY} (seen from {@code observer},
   * another connection to it): the cancel must come while the query executes.
   */
  static void awaitLongQueryRunning(Connection observer) throws SQLException {
    String sql =
        "SELECT COUNT(*) FROM INFORMATION_SCHEMA.SESSIONS"
            + " WHERE EXECUTING_STATEMENT LIKE '%SYSTEM_RANGE(1, 2000000000)%'"
            + " AND SESSION_ID <> SESSION_ID()";
    try (PreparedStatement s = observer.prepareStatement(sql)) {
      while (true) {
        try (ResultSet r = s.executeQuery()) {
          r.next();
          if (r.getInt(1) > 0) {
            return;
          }
        }
        LockSupport.parkNanos(1_000_000L); // polling a condition, not ordering threads
      }
    }
  }
}
