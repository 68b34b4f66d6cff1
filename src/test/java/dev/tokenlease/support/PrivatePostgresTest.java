package dev.tokenlease.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("A private PostgreSQL server that a fault test may break")
class PrivatePostgresTest {
  private PrivatePostgres server;
  private String database;

  @BeforeEach
  void startServer() {
    server = PrivatePostgres.start();
    database = server.createDatabase();
  }

  @AfterEach
  void closeServer() {
    server.close();
  }

  @Test
  @DisplayName("starts a fresh PostgreSQL 15 that makes new empty databases")
  void startsFresh() throws SQLException {
    assertThat(query(server.url(), "SHOW server_version")).startsWith("15.");
    assertThat(database).isNotEqualTo(server.url()).startsWith("postgresql://postgres@localhost:");
    assertThat(query(database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).isEqualTo("0");
    assertThat(query(server.createDatabase(), "SELECT current_database()")).startsWith("fault_");
  }

  @Test
  @DisplayName("a committed row survives a clean stop and a restart, without crash recovery")
  void rowSurvivesStop() throws SQLException {
    insertRow("kept");
    server.stop();
    assertThatThrownBy(() -> query(database, "SELECT 1")).isInstanceOf(SQLException.class);

    server.restart();

    assertThat(query(database, "SELECT note FROM notes")).isEqualTo("kept");
    assertThat(server.serverLog()).doesNotContain("automatic recovery in progress");
  }

  @Test
  @DisplayName("kill ends every server process; a committed row survives and the restart recovers from the crash")
  void rowSurvivesKill() throws SQLException {
    insertRow("kept");
    try (Connection open = TestDatabase.connect(database)) {
      long backend = Long.parseLong(queryOn(open, "SELECT pg_backend_pid()"));

      server.kill();

      assertThat(exited(backend)).isTrue();
      assertThatThrownBy(() -> queryOn(open, "SELECT 1")).isInstanceOf(SQLException.class);
    }

    server.restart();

    assertThat(query(database, "SELECT note FROM notes")).isEqualTo("kept");
    assertThat(server.serverLog()).contains("automatic recovery in progress");
  }

  @Test
  @DisplayName("while frozen, a query and a new connection wait; after thaw both complete")
  void freezeHoldsEverything() throws Exception {
    ExecutorService threads = Executors.newCachedThreadPool();
    try (Connection open = TestDatabase.connect(database)) {
      server.freeze();
      Future<String> inFlight = threads.submit(() -> queryOn(open, "SELECT 42"));
      Future<String> newConnection = threads.submit(() -> query(database, "SELECT 43"));

      assertThatThrownBy(() -> inFlight.get(1, TimeUnit.SECONDS)).isInstanceOf(TimeoutException.class);
      assertThat(newConnection.isDone()).isFalse();

      server.thaw();

      assertThat(inFlight.get(10, TimeUnit.SECONDS)).isEqualTo("42");
      assertThat(newConnection.get(10, TimeUnit.SECONDS)).isEqualTo("43");
    } finally {
      threads.shutdownNow();
    }
  }

  @Test
  @DisplayName("after the postmaster alone is killed, its backends exit by themselves and the server restarts")
  void postmasterKilledAlone() throws Exception {
    insertRow("kept");
    try (Connection open = TestDatabase.connect(database)) {
      long backend = Long.parseLong(queryOn(open, "SELECT pg_backend_pid()"));

      server.killPostmasterOnly();

      Eventually.await("backend " + backend + " to exit", Duration.ofSeconds(10), () -> exited(backend));
      assertThatThrownBy(() -> queryOn(open, "SELECT 1")).isInstanceOf(SQLException.class);
    }

    server.restart();

    assertThat(query(database, "SELECT note FROM notes")).isEqualTo("kept");
  }

  private void insertRow(String note) throws SQLException {
    try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement()) {
      // The default, stated: the commit returns only once its WAL is written.
      st.execute("SET synchronous_commit = on");
      st.execute("CREATE TABLE notes (note text)");
      st.execute("INSERT INTO notes VALUES ('" + note + "')");
    }
  }

  private static String query(String url, String sql) throws SQLException {
    try (Connection conn = TestDatabase.connect(url)) {
      return queryOn(conn, sql);
    }
  }

  private static String queryOn(Connection conn, String sql) throws SQLException {
    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  private static boolean exited(long pid) {
    return ProcessHandle.of(pid).map(PrivatePostgres::exited).orElse(true);
  }
}
