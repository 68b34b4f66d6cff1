package dev.tokenlease.lease.persistence;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
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
  @DisplayName("durable: with the database down, a change is undone and refused with 503, and the service recovers when it is back")
  void databaseDown() throws Exception {
    String name = io.vertx.pgclient.PgConnectOptions.fromUri(database).getDatabase();
    try (RunningService service = RunningService.start(database, new JsonObject().put("TOKENS_PERSISTENCE_ACK_TIMEOUT", "PT1S"))) {
      Http http = service.http();
      http.activate(UUID.randomUUID().toString());
      TestDatabase.execute(TestDatabase.adminUrl(), "ALTER DATABASE " + name + " ALLOW_CONNECTIONS false");
      TestDatabase.execute(TestDatabase.adminUrl(),
          // Every session but the one holding the instance lock (losing that refuses changes up front).
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'"
              + " AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')");
      // Wait until the service has noticed its pooled connections are gone and a write (the keep-alive
      // sent every quarter of the lag bound) was refused for want of a new one: a statement sent on a
      // connection the server had already closed would be in doubt (see the fault suite), not refused.
      Eventually.await("the service to see writes refused", Duration.ofSeconds(10), () -> String.valueOf(
          http.get("/api/health").json().getString("reason")).startsWith("The database is not accepting writes"));

      String refusedUser = UUID.randomUUID().toString();
      Http.Response failed = http.post("/api/tokens/activate", new JsonObject().put("user_id", refusedUser).encode());
      assertThat(failed.status()).isEqualTo(503);
      assertThat(failed.header("Retry-After")).isEqualTo("1");
      assertThat(failed.json().getString("status")).isEqualTo("unavailable");
      // Refused up front once the database is known to fail, or undone after the ack timeout.
      assertThat(failed.json().getString("message"))
          .matches("(The database is not accepting writes|The database did not confirm the change within 1000 ms).*");
      // Refused means unchanged: the grant was undone in memory too.
      assertThat(http.get("/api/tokens?state=active").array("tokens")).hasSize(1);
      Http.Response refusedAtOnce = http.post("/api/tokens/activate", new JsonObject().put("user_id", refusedUser).encode());
      assertThat(refusedAtOnce.status()).isEqualTo(503);
      assertThat(refusedAtOnce.json().getString("message")).startsWith("The database is not accepting writes");
      Http.Response history = http.get("/api/users/" + UUID.randomUUID() + "/usages");
      assertThat(history.status()).isEqualTo(503);
      assertThat(history.json().getString("message")).startsWith("Failed to process request: ");
      assertThat(http.get("/api/health").status()).isEqualTo(503);
      // Reads from memory still work.
      assertThat(http.get("/api/tokens").status()).isEqualTo(200);

      TestDatabase.execute(TestDatabase.adminUrl(), "ALTER DATABASE " + name + " ALLOW_CONNECTIONS true");
      Eventually.await("health back to 200", Duration.ofSeconds(15), () -> http.get("/api/health").status() == 200);
      JsonObject grant = http.activate(UUID.randomUUID().toString());
      assertThat(grant.getLong("generation")).isPositive();
      assertThat(http.get("/api/users/" + UUID.randomUUID() + "/usages").status()).isEqualTo(200);
      assertThat(http.get("/api/users/" + refusedUser + "/usages").json().getJsonArray("usages")).isEmpty();
    } finally {
      TestDatabase.execute(TestDatabase.adminUrl(), "ALTER DATABASE " + name + " ALLOW_CONNECTIONS true");
    }
  }

  @Test
  @DisplayName("durable: a change the database does not take within the ack timeout is undone in memory and refused")
  void undoneWhenNotCommitted() throws Exception {
    try (RunningService service = RunningService.start(database, new JsonObject()
            .put("TOKENS_PERSISTENCE_ACK_TIMEOUT", "PT2S").put("TOKENS_POOL_SIZE", 2));
        Connection blocker = TestDatabase.connect(database)) {
      Http http = service.http();
      JsonObject kept = http.activate(UUID.randomUUID().toString());
      JsonObject released = http.activate(UUID.randomUUID().toString());
      // Every batch updates the writer row; holding its lock makes each attempt fail (lock timeout).
      blocker.setAutoCommit(false);
      try (var st = blocker.createStatement()) {
        st.execute("SELECT * FROM service_state FOR UPDATE");
      }
      String user = released.getString("user_id");
      Http.Response refused = http.post("/api/tokens/" + released.getString("token_id") + "/release",
          new JsonObject().put("user_id", user).encode());
      assertThat(refused.status()).isEqualTo(503);
      assertThat(refused.json().getString("message"))
          .startsWith("The database did not confirm the change within 2000 ms").endsWith("nothing was changed. Try again shortly.");
      // The lease is held again, exactly as before.
      JsonObject token = http.get("/api/tokens/" + released.getString("token_id")).json();
      assertThat(token.getString("current_user_id")).isEqualTo(user);
      blocker.rollback();
      Eventually.await("health back to 200", Duration.ofSeconds(10), () -> http.get("/api/health").status() == 200);
      assertThat(http.post("/api/tokens/" + kept.getString("token_id") + "/renew",
          new JsonObject().put("user_id", kept.getString("user_id")).encode()).status()).isEqualTo(200);
      // Nothing of the refused release reached the database.
      assertThat(TestDatabase.query(database, "SELECT count(*) FROM usages WHERE ended_at IS NULL")).isEqualTo("2");
      assertThat(http.post("/api/tokens/" + released.getString("token_id") + "/release",
          new JsonObject().put("user_id", user).encode()).status()).isEqualTo(200);
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
      Eventually.await("the usage written", Duration.ofSeconds(2), () -> {
        try (ResultSet rows = usage.executeQuery()) {
          rows.next();
          return rows.getLong(1) == 1;
        }
      });
    }
  }

  @Test
  @DisplayName("memory: after an unclean stop, activations wait until the lag bound plus one TTL past the last confirmed write")
  void memoryUncleanStop() throws Exception {
    JsonObject memory = new JsonObject().put("TOKENS_PERSISTENCE_ACK", "memory").put("TOKENS_POOL_LEASE_TTL", "PT2S");
    try (RunningService service = RunningService.start(database, memory)) {
      service.http().activate(UUID.randomUUID().toString());
    }
    // What a crash leaves behind: the run was never marked stopped.
    TestDatabase.execute(database, "UPDATE service_state SET running = true, marked_at = now()");
    try (RunningService service = RunningService.start(database, memory)) {
      Http.Response refused = service.http().post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode());
      assertThat(refused.status()).isEqualTo(503);
      assertThat(refused.json().getString("status")).isEqualTo("unavailable");
      assertThat(refused.json().getString("message")).startsWith("The pool is recovering from an unclean stop");
      assertThat(Integer.parseInt(refused.header("Retry-After"))).isBetween(1, 3);
      // Each refused attempt changes nothing, so trying until one is taken is harmless.
      Eventually.await("activations to resume", Duration.ofSeconds(10), () -> service.http().post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode()).status() == 200);
    }
    // Durable mode never waits: nothing acknowledged can have been lost.
    TestDatabase.execute(database, "UPDATE service_state SET running = true, ack_mode = 'durable', marked_at = now()");
    try (RunningService service = RunningService.start(database, new JsonObject().put("TOKENS_POOL_LEASE_TTL", "PT2S"))) {
      assertThat(service.http().post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode()).status()).isEqualTo(200);
    }
  }
}
