package dev.taskgroup;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
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
   * An H2 TCP server in this JVM on a free loopback port ({@code org.h2.tools.Server}, reached by
   * reflection: the tests' module does not read H2's), so that the driver talks to the database
   * over a socket as a network driver does. Closing it stops the server.
   */
  static final class TcpServer implements AutoCloseable {
    private final Object server;
    final int port;

    TcpServer() throws ReflectiveOperationException {
      Class<?> type = Class.forName("org.h2.tools.Server");
      Object created =
          type.getMethod("createTcpServer", String[].class)
              .invoke(null, (Object) new String[] {"-tcpPort", "0", "-ifNotExists"});
      server = type.getMethod("start").invoke(created);
      port = (int) type.getMethod("getPort").invoke(server);
    }

    /**
     * A connection over TCP to the in-memory database {@code name}, open while any connection is.
     */
    Connection connect(String name) throws SQLException {
      return DriverManager.getConnection(
          "jdbc:h2:tcp://localhost:" + port + "/mem:" + name + ";DB_CLOSE_DELAY=0");
    }

    @Override
    public void close() throws ReflectiveOperationException {
      server.getClass().getMethod("stop").invoke(server);
    }
  }

  /**
   * Cancels, from {@code observer}, every other session of its database that still executes
   * something (a query left running on the server by a client whose socket closed), and waits at
   * most 5 s for them to stop.
   */
  static void cancelOtherSessions(Connection observer) throws SQLException {
    String busy =
        "SELECT SESSION_ID FROM INFORMATION_SCHEMA.SESSIONS"
            + " WHERE EXECUTING_STATEMENT IS NOT NULL AND SESSION_ID <> SESSION_ID()";
    long until = System.nanoTime() + 5_000_000_000L;
    while (System.nanoTime() - until < 0L) {
      boolean any = false;
      try (Statement s = observer.createStatement();
          ResultSet r = s.executeQuery(busy)) {
        while (r.next()) {
          any = true;
          try (Statement c = observer.createStatement()) {
            c.execute("CALL CANCEL_SESSION(" + r.getInt(1) + ")");
          }
        }
      }
      if (!any) {
        return;
      }
      LockSupport.parkNanos(10_000_000L); // polling a condition, not ordering threads
    }
  }

  /** Whether {@code db} still answers a query (false once its connection is broken). */
  static boolean usable(Connection db) {
    try (Statement s = db.createStatement();
        ResultSet r = s.executeQuery("SELECT 1")) {
      return r.next();
    } catch (SQLException broken) {
      return false;
    }
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
