package dev.tokenlease.persistence;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Acknowledgment modes")
class DurabilityTest {
  private String database;

  @BeforeEach
  void createDatabase() {
    database = TestDatabase.create();
  }

  @AfterEach
  void dropDatabase() {
    TestDatabase.drop(database);
  }

  @Test
  @DisplayName("durable: what was acknowledged is in the database when the reply arrives")
  void durableAcknowledgment() throws Exception {
    try (RunningService service = RunningService.start(database, new JsonObject().put("TOKENS_PERSISTENCE_ACK", "durable"));
        Connection conn = TestDatabase.connect(database);
        PreparedStatement usage = conn.prepareStatement(
            "SELECT u.user_id, u.ended_at, t.usage_count FROM usages u JOIN tokens t ON t.id = u.token_id WHERE u.generation = ?")) {
      Http http = service.http();
      for (int i = 0; i < 50; i++) {
        String user = UUID.randomUUID().toString();
        JsonObject grant = http.activate(user);
        usage.setLong(1, grant.getLong("generation"));
        try (ResultSet rows = usage.executeQuery()) {
          assertThat(rows.next()).as("usage %s stored before the reply", grant.getLong("generation")).isTrue();
          assertThat(rows.getString("user_id")).isEqualTo(user);
          assertThat(rows.getObject("ended_at")).isNull();
          assertThat(rows.getLong("usage_count")).isPositive();
        }
      }
    }
  }

  @Test
  @DisplayName("durable: with the database down, mutations fail with 500 and the service recovers when it is back")
  void databaseDown() throws Exception {
    String name = io.vertx.pgclient.PgConnectOptions.fromUri(database).getDatabase();
    try (RunningService service = RunningService.start(database)) {
      Http http = service.http();
      http.activate(UUID.randomUUID().toString());
      TestDatabase.execute(TestDatabase.adminUrl(), "ALTER DATABASE " + name + " ALLOW_CONNECTIONS false");
      TestDatabase.execute(TestDatabase.adminUrl(),
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'");

      Http.Response failed = http.post("/api/tokens/activate", new JsonObject().put("user_id", UUID.randomUUID().toString()).encode());
      assertThat(failed.status()).isEqualTo(500);
      assertThat(failed.json().getString("status")).isEqualTo("internal_server_error");
      assertThat(failed.json().getString("message")).startsWith("Failed to process request: ");
      Http.Response history = http.get("/api/users/" + UUID.randomUUID() + "/usages");
      assertThat(history.status()).isEqualTo(500);
      assertThat(history.json().getString("message")).startsWith("Failed to process request: ");
      assertThat(http.get("/api/health").status()).isEqualTo(503);
      // Reads from memory still work.
      assertThat(http.get("/api/tokens").status()).isEqualTo(200);

      TestDatabase.execute(TestDatabase.adminUrl(), "ALTER DATABASE " + name + " ALLOW_CONNECTIONS true");
      long deadline = System.currentTimeMillis() + 15_000;
      while (http.get("/api/health").status() != 200 && System.currentTimeMillis() < deadline) {
        Thread.sleep(100);
      }
      assertThat(http.get("/api/health").status()).isEqualTo(200);
      JsonObject grant = http.activate(UUID.randomUUID().toString());
      assertThat(grant.getLong("generation")).isPositive();
      assertThat(http.get("/api/users/" + UUID.randomUUID() + "/usages").status()).isEqualTo(200);
    } finally {
      TestDatabase.execute(TestDatabase.adminUrl(), "ALTER DATABASE " + name + " ALLOW_CONNECTIONS true");
    }
  }

  @Test
  @DisplayName("memory: replies at once and writes within the flush interval")
  void memoryAcknowledgment() throws Exception {
    try (RunningService service = RunningService.start(database, new JsonObject()
            .put("TOKENS_PERSISTENCE_ACK", "memory").put("TOKENS_PERSISTENCE_FLUSH_INTERVAL", "PT0.05S"));
        Connection conn = TestDatabase.connect(database);
        PreparedStatement usage = conn.prepareStatement("SELECT count(*) FROM usages WHERE generation = ?")) {
      JsonObject grant = service.http().activate(UUID.randomUUID().toString());
      usage.setLong(1, grant.getLong("generation"));
      long deadline = System.currentTimeMillis() + 2_000;
      long found = 0;
      while (found == 0 && System.currentTimeMillis() < deadline) {
        try (ResultSet rows = usage.executeQuery()) {
          rows.next();
          found = rows.getLong(1);
        }
        Thread.sleep(10);
      }
      assertThat(found).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("memory: after an unclean stop, activations wait one TTL so no lost grant is handed out twice")
  void memoryUncleanStop() throws Exception {
    JsonObject memory = new JsonObject().put("TOKENS_PERSISTENCE_ACK", "memory").put("TOKENS_POOL_LEASE_TTL", "PT2S");
    try (RunningService service = RunningService.start(database, memory)) {
      service.http().activate(UUID.randomUUID().toString());
    }
    // What a crash leaves behind: the run was never marked stopped.
    TestDatabase.execute(database, "UPDATE service_state SET running = true, heartbeat_at = now()");
    try (RunningService service = RunningService.start(database, memory)) {
      Http.Response refused = service.http().post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode());
      assertThat(refused.status()).isEqualTo(503);
      assertThat(refused.json().getString("status")).isEqualTo("unavailable");
      assertThat(refused.json().getString("message")).startsWith("The pool is recovering from an unclean stop");
      Thread.sleep(3_200);
      assertThat(service.http().post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode()).status()).isEqualTo(200);
    }
    // Durable mode never waits: nothing acknowledged can have been lost.
    TestDatabase.execute(database, "UPDATE service_state SET running = true, ack_mode = 'durable', heartbeat_at = now()");
    try (RunningService service = RunningService.start(database, new JsonObject().put("TOKENS_POOL_LEASE_TTL", "PT2S"))) {
      assertThat(service.http().post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode()).status()).isEqualTo(200);
    }
  }
}
