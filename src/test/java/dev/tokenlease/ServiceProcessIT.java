package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Http;
import dev.tokenlease.support.ServiceProcess;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The packaged jar as a user runs it: configured by environment, stopped by signals. */
@DisplayName("The service as a process")
class ServiceProcessIT {
  private static final Duration START = Duration.ofSeconds(60);

  /** One acknowledged activation, as the caller saw it. */
  private record Grant(long generation, String tokenId, String userId) {}

  @Test
  @DisplayName("a bad environment value stops start-up with exit code 2 and a line naming the variable")
  void badEnvironment() throws Exception {
    try (ServiceProcess service = ServiceProcess.launch(Map.of("TOKENS_POOL_SIZE", "lots"))) {
      assertThat(service.awaitExit(Duration.ofSeconds(30))).isEqualTo(2);
      assertThat(service.output()).contains("TOKENS_POOL_SIZE: expected an integer");
    }
  }

  @Test
  @DisplayName("with nothing configured it runs on an embedded PostgreSQL whose data survives a restart")
  void embeddedDatabase() throws Exception {
    Path dataDir = Files.createTempDirectory("token-service-data");
    Map<String, String> env = Map.of("TOKENS_DATA_DIR", dataDir.toString());
    String user = UUID.randomUUID().toString();
    JsonObject grant;
    try (ServiceProcess service = ServiceProcess.launch(env).awaitReady(START)) {
      grant = service.http().activate(user);
      assertThat(service.terminate(Duration.ofSeconds(30))).isZero();
      assertThat(service.output()).contains("Embedded PostgreSQL").contains(dataDir.toString());
    }
    try (ServiceProcess service = ServiceProcess.launch(env).awaitReady(START)) {
      JsonObject token = service.http().get("/api/tokens/" + grant.getString("token_id")).json();
      assertThat(token.getString("current_user_id")).isEqualTo(user);
      service.terminate(Duration.ofSeconds(30));
    } finally {
      try (Stream<Path> files = Files.walk(dataDir)) {
        files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  @Test
  @DisplayName("SIGTERM under load: requests in flight are answered, every change is written, exit is clean")
  void sigtermUnderLoad() throws Exception {
    String database = TestDatabase.create();
    try (ServiceProcess service = ServiceProcess.launch(Map.of("TOKENS_PG_URL", database, "TOKENS_POOL_SIZE", "20"))
        .awaitReady(START)) {
      List<Grant> acknowledged = loadThen(service, () -> {
        try {
          assertThat(service.terminate(Duration.ofSeconds(30))).isZero();
        } catch (InterruptedException e) {
          throw new IllegalStateException(e);
        }
      });
      assertThat(service.output()).contains("stopped cleanly");
      assertThat(acknowledged).isNotEmpty();
      assertStored(database, acknowledged);
      assertConsistent(database);
    } finally {
      TestDatabase.drop(database);
    }
  }

  @Test
  @DisplayName("kill -9 under load in durable mode: every acknowledged activation survives and the restart is consistent")
  void killUnderLoad() throws Exception {
    String database = TestDatabase.create();
    Map<String, String> env = Map.of("TOKENS_PG_URL", database, "TOKENS_POOL_SIZE", "20");
    try {
      List<Grant> acknowledged;
      try (ServiceProcess service = ServiceProcess.launch(env).awaitReady(START)) {
        acknowledged = loadThen(service, () -> {
          try {
            service.kill();
          } catch (InterruptedException e) {
            throw new IllegalStateException(e);
          }
        });
      }
      assertThat(acknowledged).isNotEmpty();
      assertStored(database, acknowledged);
      try (ServiceProcess restarted = ServiceProcess.launch(env).awaitReady(START)) {
        Http http = restarted.http();
        // The newest acknowledged grant of each token that is still within its TTL is the holder now.
        Grant last = acknowledged.stream().max(Comparator.comparingLong(Grant::generation)).orElseThrow();
        JsonObject token = http.get("/api/tokens/" + last.tokenId()).json();
        assertThat(token.getString("current_user_id")).isEqualTo(last.userId());
        assertThat(http.activate(UUID.randomUUID().toString()).getLong("generation")).isGreaterThan(last.generation());
        http.get("/api/users/" + UUID.randomUUID() + "/usages");
        assertConsistent(database);
        restarted.terminate(Duration.ofSeconds(30));
      }
    } finally {
      TestDatabase.drop(database);
    }
  }

  /** Runs activations from several threads, then {@code stop} mid-load; returns what was acknowledged. */
  private static List<Grant> loadThen(ServiceProcess service, Runnable stop) throws Exception {
    ConcurrentLinkedQueue<Grant> acknowledged = new ConcurrentLinkedQueue<>();
    AtomicBoolean running = new AtomicBoolean(true);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    Http http = service.http();
    for (int i = 0; i < 8; i++) {
      pool.submit(() -> {
        while (running.get()) {
          String user = UUID.randomUUID().toString();
          try {
            Http.Response response = http.post("/api/tokens/activate", new JsonObject().put("user_id", user).encode());
            if (response.status() == 200) {
              JsonObject body = response.json();
              acknowledged.add(new Grant(body.getLong("generation"), body.getString("token_id"), user));
            }
          } catch (RuntimeException connectionLost) {
            // the process went away mid-request: not acknowledged
          }
        }
      });
    }
    // Deliberate: the load runs a while, so that the stop comes in the middle of it.
    Thread.sleep(1_500);
    stop.run();
    running.set(false);
    pool.shutdown();
    assertThat(pool.awaitTermination(60, TimeUnit.SECONDS)).isTrue();
    return new ArrayList<>(acknowledged);
  }

  private static void assertStored(String database, List<Grant> acknowledged) throws Exception {
    try (Connection conn = TestDatabase.connect(database);
        var query = conn.prepareStatement("SELECT token_id, user_id FROM usages WHERE generation = ?")) {
      for (Grant grant : acknowledged) {
        query.setLong(1, grant.generation());
        try (ResultSet rows = query.executeQuery()) {
          assertThat(rows.next()).as("acknowledged grant %s is stored", grant.generation()).isTrue();
          assertThat(rows.getString("token_id")).isEqualTo(grant.tokenId());
          assertThat(rows.getString("user_id")).isEqualTo(grant.userId());
        }
      }
    }
  }

  private static void assertConsistent(String database) throws Exception {
    try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement()) {
      assertThat(single(st, "SELECT count(*) FROM usages")).isEqualTo(single(st, "SELECT sum(usage_count) FROM tokens"));
      assertThat(single(st, """
          SELECT count(*) FROM (
            SELECT ended_at, lead(started_at) OVER (PARTITION BY token_id ORDER BY generation) AS next_start
              FROM usages) AS u
           WHERE next_start IS NOT NULL AND (ended_at IS NULL OR ended_at > next_start)
          """)).isZero();
      assertThat(single(st, "SELECT count(*) FROM usages WHERE ended_at IS NULL")).isLessThanOrEqualTo(20);
    }
  }

  private static long single(Statement st, String sql) throws Exception {
    try (ResultSet rows = st.executeQuery(sql)) {
      rows.next();
      return rows.getLong(1);
    }
  }
}
