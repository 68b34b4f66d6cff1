package dev.tokenlease.support;

import io.vertx.pgclient.PgConnectOptions;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Locale;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.postgresql.PostgreSQLContainer;

/**
 * A real PostgreSQL server for tests, chosen in this order: {@code TOKENS_TEST_PG_URL}; the local
 * server at 127.0.0.1:5432 if it answers; a Testcontainers container if a Docker engine answers;
 * else an embedded server. Each test class asks for a fresh database of its own.
 */
public final class TestDatabase {
  private static final Logger LOG = LoggerFactory.getLogger(TestDatabase.class);
  private static String serverUrl;

  private TestDatabase() {}

  /** Creates an empty database and returns its {@code postgresql://} URL. */
  public static synchronized String create() {
    String name = "tokens_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 16);
    admin("CREATE DATABASE " + name);
    return withDatabase(server(), name);
  }

  /** Drops a database made by {@link #create()}, closing any connection still open on it. */
  public static synchronized void drop(String url) {
    String name = PgConnectOptions.fromUri(url).getDatabase();
    admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }

  /** Runs SQL on a test database over JDBC, outside the service. */
  public static void execute(String url, String sql) {
    try (Connection conn = connect(url); Statement st = conn.createStatement()) {
      st.execute(sql);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The first column of the first row of a query, as text (null if none). */
  public static String query(String url, String sql) {
    try (Connection conn = connect(url); Statement st = conn.createStatement(); java.sql.ResultSet rs = st.executeQuery(sql)) {
      return rs.next() ? rs.getString(1) : null;
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  public static Connection connect(String url) throws SQLException {
    PgConnectOptions o = PgConnectOptions.fromUri(url);
    return DriverManager.getConnection("jdbc:postgresql://" + o.getHost() + ":" + o.getPort() + "/" + o.getDatabase(),
        o.getUser(), o.getPassword());
  }

  /** The URL of the server's maintenance database, for statements about other databases. */
  public static synchronized String adminUrl() {
    return server();
  }

  private static void admin(String sql) {
    execute(server(), sql);
  }

  private static String server() {
    if (serverUrl != null) {
      return serverUrl;
    }
    String configured = System.getenv("TOKENS_TEST_PG_URL");
    if (configured != null && !configured.isBlank()) {
      serverUrl = configured;
    } else if (answers("127.0.0.1", 5432)) {
      serverUrl = "postgresql://postgres@127.0.0.1:5432/postgres";
    } else if (DockerClientFactory.instance().isDockerAvailable()) {
      PostgreSQLContainer container = new PostgreSQLContainer("postgres:15-alpine");
      container.start();
      serverUrl = "postgresql://" + container.getUsername() + ":" + container.getPassword() + "@"
          + container.getHost() + ":" + container.getMappedPort(5432) + "/" + container.getDatabaseName();
    } else {
      try {
        EmbeddedPostgres embedded = EmbeddedPostgres.builder().start();
        serverUrl = "postgresql://postgres@localhost:" + embedded.getPort() + "/postgres";
      } catch (java.io.IOException e) {
        throw new IllegalStateException("no PostgreSQL for tests: " + e.getMessage(), e);
      }
    }
    LOG.info("Tests use PostgreSQL at {}", PgConnectOptions.fromUri(serverUrl).getHost());
    return serverUrl;
  }

  private static String withDatabase(String url, String database) {
    int slash = url.lastIndexOf('/');
    int query = url.indexOf('?', slash);
    return url.substring(0, slash + 1) + database.toLowerCase(Locale.ROOT) + (query < 0 ? "" : url.substring(query));
  }

  private static boolean answers(String host, int port) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress(host, port), 500);
      return true;
    } catch (java.io.IOException e) {
      return false;
    }
  }
}
