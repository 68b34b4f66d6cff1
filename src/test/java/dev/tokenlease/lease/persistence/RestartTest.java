package dev.tokenlease.lease.persistence;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenlease.platform.config.ConfigException;
import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Restarts")
class RestartTest {
  private String database;

  @BeforeEach
  void createDatabase() {
    database = TestDatabase.create();
  }

  @AfterEach
  void dropDatabase() {
    TestDatabase.drop(database);
  }

  private RunningService start(int poolSize, String ttl) throws Exception {
    return RunningService.start(database, new JsonObject()
        .put("TOKENS_POOL_SIZE", poolSize).put("TOKENS_POOL_LEASE_TTL", ttl));
  }

  private static List<String> ids(JsonArray tokens) {
    List<String> ids = new ArrayList<>();
    tokens.forEach(t -> ids.add(((JsonObject) t).getString("token_id")));
    return ids;
  }

  @Test
  @DisplayName("tokens, open leases, counters and history survive a restart")
  void survives() throws Exception {
    String alice = UUID.randomUUID().toString();
    String bob = UUID.randomUUID().toString();
    List<String> tokensBefore;
    JsonObject aliceGrant;
    JsonObject bobGrant;
    try (RunningService first = start(10, "PT1M")) {
      Http http = first.http();
      tokensBefore = ids(http.get("/api/tokens").array("tokens"));
      aliceGrant = http.activate(alice);
      bobGrant = http.activate(bob);
      http.post("/api/tokens/" + bobGrant.getString("token_id") + "/release", new JsonObject().put("user_id", bob).encode());
      http.activate(bob);
    }
    try (RunningService second = start(10, "PT1M")) {
      Http http = second.http();
      assertThat(ids(http.get("/api/tokens").array("tokens"))).isEqualTo(tokensBefore);
      JsonObject token = http.get("/api/tokens/" + aliceGrant.getString("token_id")).json();
      assertThat(token.getString("state")).isEqualTo("active");
      assertThat(token.getString("current_user_id")).isEqualTo(alice);
      assertThat(http.get("/api/tokens?state=active").array("tokens")).hasSize(2);
      assertThat(http.get("/api/tokens/" + bobGrant.getString("token_id")).json().getLong("usage_count")).isEqualTo(1);
      assertThat(http.get("/api/users/" + bob + "/usages").json().getJsonArray("usages")).hasSize(2);
      // The holder can still act on the lease it was granted before the restart.
      assertThat(http.post("/api/tokens/" + aliceGrant.getString("token_id") + "/release",
          new JsonObject().put("user_id", alice).put("generation", aliceGrant.getLong("generation")).encode()).status())
          .isEqualTo(200);
      // Generations keep going up across restarts.
      assertThat(http.activate(alice).getLong("generation")).isGreaterThan(aliceGrant.getLong("generation") + 1);
    }
  }

  private static Http.Response activate(Http http, String user, String key) {
    return http.request("POST", "/api/tokens/activate", new JsonObject().put("user_id", user).encode(),
        "Content-Type", "application/json", "Idempotency-Key", key);
  }

  @Test
  @DisplayName("an open lease's Idempotency-Key still answers that lease after a restart, and an eviction notice still holds")
  void keysAndNoticesSurvive() throws Exception {
    String evictedUser = UUID.randomUUID().toString();
    String holder = UUID.randomUUID().toString();
    String key = "order-" + UUID.randomUUID();
    JsonObject evictedGrant;
    JsonObject grant;
    try (RunningService first = start(1, "PT1M")) {
      Http http = first.http();
      evictedGrant = http.activate(evictedUser);
      Http.Response answer = activate(http, holder, key);
      assertThat(answer.status()).isEqualTo(200);
      grant = answer.json();
      assertThat(grant.getJsonObject("evicted").getString("user_id")).isEqualTo(evictedUser);
    }
    try (RunningService second = start(1, "PT1M")) {
      Http http = second.http();
      Http.Response retry = activate(http, holder, key);
      assertThat(retry.status()).as(retry.toString()).isEqualTo(200);
      JsonObject again = retry.json();
      assertThat(again.getString("token_id")).isEqualTo(grant.getString("token_id"));
      assertThat(again.getLong("generation")).isEqualTo(grant.getLong("generation"));
      assertThat(again.getString("expires_at")).isEqualTo(grant.getString("expires_at"));
      JsonObject evicted = again.getJsonObject("evicted");
      assertThat(evicted.getString("user_id")).isEqualTo(evictedUser);
      assertThat(evicted.getLong("generation")).isEqualTo(evictedGrant.getLong("generation"));
      // After a restart, from the stored start and end (milliseconds) rather than the monotonic clock.
      assertThat(evicted.getLong("held_ms")).isCloseTo(grant.getJsonObject("evicted").getLong("held_ms"),
          org.assertj.core.data.Offset.offset(50L));
      assertThat(http.get("/api/users/" + holder + "/usages").json().getJsonArray("usages")).hasSize(1);

      assertThat(activate(http, UUID.randomUUID().toString(), key).status()).isEqualTo(422);
      Http.Response stale = http.post("/api/tokens/" + grant.getString("token_id") + "/release",
          new JsonObject().put("user_id", evictedUser).encode());
      assertThat(stale.status()).isEqualTo(409);
      assertThat(stale.json().getString("message")).isEqualTo("Token was evicted.");
    }
  }

  @Test
  @DisplayName("a key whose lease ended less than one TTL ago is still refused 409 after a restart, not granted anew")
  void endedKeysSurvive() throws Exception {
    String holder = UUID.randomUUID().toString();
    String key = "order-" + UUID.randomUUID();
    try (RunningService first = start(2, "PT1M")) {
      Http http = first.http();
      JsonObject grant = activate(http, holder, key).json();
      assertThat(http.post("/api/tokens/" + grant.getString("token_id") + "/release",
          new JsonObject().put("user_id", holder).encode()).status()).isEqualTo(200);
      assertThat(activate(http, holder, key).status()).isEqualTo(409);
    }
    try (RunningService second = start(2, "PT1M")) {
      Http http = second.http();
      Http.Response retry = activate(http, holder, key);
      assertThat(retry.status()).as(retry.toString()).isEqualTo(409);
      assertThat(retry.json().getString("message")).isEqualTo("The lease for this Idempotency-Key has ended.");
      assertThat(activate(http, UUID.randomUUID().toString(), key).status()).isEqualTo(422);
      assertThat(http.get("/api/users/" + holder + "/usages").json().getJsonArray("usages")).hasSize(1);
    }
  }

  @Test
  @DisplayName("leases that ran out while the service was down are closed at their expiry instant")
  void expiredWhileDown() throws Exception {
    String user = UUID.randomUUID().toString();
    JsonObject grant;
    try (RunningService first = start(5, "PT2S")) {
      grant = first.http().activate(user);
    }
    // Deliberate: the lease (TTL 2 s) must run out on the real clock while no service runs to see it.
    Thread.sleep(2_500);
    try (RunningService second = start(5, "PT2S")) {
      Http http = second.http();
      String tokenId = grant.getString("token_id");
      JsonObject token = http.get("/api/tokens/" + tokenId).json();
      assertThat(token.getString("state")).isEqualTo("available");
      JsonObject usage = http.get("/api/tokens/" + tokenId + "/usages").array("usages").getJsonObject(0);
      assertThat(Instant.parse(usage.getString("ended_at")))
          .isEqualTo(Instant.parse(usage.getString("started_at")).plus(Duration.ofSeconds(2)));
      assertThat(token.getString("released_at")).isEqualTo(usage.getString("ended_at"));
      assertThat(http.get("/api/users/" + user + "/usages").json().getJsonArray("usages").getJsonObject(0)
          .getString("end_reason")).isEqualTo("expired");
    }
  }

  @Test
  @DisplayName("a larger pool size adds tokens; a smaller one stops start-up naming the variable")
  void resize() throws Exception {
    List<String> before;
    try (RunningService first = start(5, "PT1M")) {
      before = ids(first.http().get("/api/tokens").array("tokens"));
    }
    try (RunningService grown = start(8, "PT1M")) {
      List<String> after = ids(grown.http().get("/api/tokens").array("tokens"));
      assertThat(after).hasSize(8).startsWith(before.toArray(new String[0]));
    }
    assertThatThrownBy(() -> start(4, "PT1M"))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("TOKENS_POOL_SIZE:");
  }

  @Test
  @DisplayName("start-up waits for a writer row still locked by a late statement, then takes over with a new epoch")
  void claimWaitsForLockedWriterRow() throws Exception {
    try (RunningService first = start(5, "PT1M")) {
      first.http().activate(UUID.randomUUID().toString());
    }
    String epochBefore = TestDatabase.query(database, "SELECT epoch FROM service_state");
    try (java.sql.Connection late = TestDatabase.connect(database)) {
      late.setAutoCommit(false);
      try (var st = late.createStatement()) {
        st.execute("SELECT * FROM service_state FOR UPDATE");
      }
      String latePid;
      try (var st = late.createStatement(); var rows = st.executeQuery("SELECT pg_backend_pid()")) {
        rows.next();
        latePid = rows.getString(1);
      }
      // The late statement ends only once start-up has been seen blocked by it twice, by two
      // statements: its claim gave up at the lock timeout and was tried again.
      String blocked = "SELECT string_agg(pid || '@' || query_start, ',') FROM pg_stat_activity"
          + " WHERE " + latePid + " = ANY(pg_blocking_pids(pid))";
      Set<String> claimsSeenBlocked = ConcurrentHashMap.newKeySet();
      CompletableFuture<Void> release = CompletableFuture.runAsync(() -> {
        try {
          Eventually.await("start-up to claim twice against the locked row", Duration.ofSeconds(30), () -> {
            String now = TestDatabase.query(database, blocked);
            if (now != null) {
              claimsSeenBlocked.addAll(List.of(now.split(",")));
            }
            return claimsSeenBlocked.size() >= 2;
          });
          late.rollback();
        } catch (Exception e) {
          throw new CompletionException(e);
        }
      });
      try (RunningService second = start(5, "PT1M")) {
        release.get(30, TimeUnit.SECONDS);
        // Healthy as soon as a write is confirmed (the claim, or the first keep-alive after it).
        Eventually.await("health 200", Duration.ofSeconds(3), () -> second.http().get("/api/health").status() == 200);
        assertThat(Long.parseLong(TestDatabase.query(database, "SELECT epoch FROM service_state")))
            .isEqualTo(Long.parseLong(epochBefore) + 1);
      }
    }
  }

  @Test
  @DisplayName("a second instance on the same database refuses to start")
  void singleInstance() throws Exception {
    try (RunningService first = start(5, "PT1M")) {
      assertThatThrownBy(() -> start(5, "PT1M")).hasMessageContaining("another token-service instance");
      assertThat(first.http().get("/api/health").status()).isEqualTo(200);
    }
  }

  @Test
  @DisplayName("while the instance lock is lost (or held by another), changes are refused; they resume once it is regained")
  void lostInstanceLock() throws Exception {
    String name = io.vertx.pgclient.PgConnectOptions.fromUri(database).getDatabase();
    try (RunningService service = start(5, "PT1M");
        java.sql.Connection intruder = TestDatabase.connect(database)) {
      Http http = service.http();
      String holder = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
          + "(SELECT oid FROM pg_database WHERE datname = '" + name + "')";
      TestDatabase.execute(TestDatabase.adminUrl(), "SELECT pg_terminate_backend(pid) FROM (" + holder + ") h");
      // Another session takes the lock first: this instance must keep refusing.
      long deadline = System.currentTimeMillis() + 5_000;
      boolean taken = false;
      while (!taken && System.currentTimeMillis() < deadline) {
        try (var st = intruder.createStatement(); var rows = st.executeQuery("SELECT pg_try_advisory_lock(" + Sql.INSTANCE_LOCK_KEY + ")")) {
          rows.next();
          taken = rows.getBoolean(1);
        }
      }
      assertThat(taken).as("the test session took the lock").isTrue();
      Eventually.await("the service to notice it lost the lock", Duration.ofSeconds(5),
          () -> "lost".equals(http.get("/api/health").json().getString("instance_lock")));
      Http.Response refused = http.post("/api/tokens/activate", new JsonObject().put("user_id", UUID.randomUUID().toString()).encode());
      assertThat(refused.status()).isEqualTo(503);
      assertThat(refused.json().getString("status")).isEqualTo("unavailable");
      assertThat(refused.json().getString("message")).startsWith("Lost the database session that makes this the only instance");
      assertThat(http.get("/api/tokens").status()).isEqualTo(200);
      try (var st = intruder.createStatement()) {
        st.execute("SELECT pg_advisory_unlock(" + Sql.INSTANCE_LOCK_KEY + ")");
      }
      // Each refused attempt changes nothing, so trying until one is taken is harmless.
      Eventually.await("changes taken again", Duration.ofSeconds(10), () -> http.post("/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode()).status() == 200);
    }
  }
}
