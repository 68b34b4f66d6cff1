package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Eviction and exact expiry over HTTP, on a pool of three tokens with a two-second TTL and a sweep
 * interval of an hour, so that only exact expiry (never the sweep) can end a lease in time.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("Lease lifecycle over HTTP")
class LeaseLifecycleTest {
  private static final Duration TTL = Duration.ofSeconds(2);

  private String database;
  private RunningService service;
  private Http http;

  @BeforeAll
  void start() throws Exception {
    database = TestDatabase.create();
    service = RunningService.start(database, new JsonObject()
        .put("TOKENS_POOL_SIZE", 3)
        .put("TOKENS_POOL_LEASE_TTL", "PT2S")
        .put("TOKENS_POOL_SWEEP_INTERVAL", "PT1H"));
    http = service.http();
  }

  @AfterAll
  void stop() {
    if (service != null) {
      service.close();
    }
    TestDatabase.drop(database);
  }

  @BeforeEach
  void clear() {
    http.delete("/api/tokens/active");
  }

  private static String newUser() {
    return UUID.randomUUID().toString();
  }

  @Test
  @DisplayName("when all tokens are active the oldest lease is evicted and its token goes to the newcomer")
  void eviction() throws Exception {
    String[] users = {newUser(), newUser(), newUser()};
    String[] tokens = new String[3];
    for (int i = 0; i < 3; i++) {
      tokens[i] = http.activate(users[i]).getString("token_id");
    }
    String newcomer = newUser();
    JsonObject grant = http.activate(newcomer);
    assertThat(grant.getString("token_id")).isEqualTo(tokens[0]);
    JsonArray active = http.get("/api/tokens?state=active").array("tokens");
    assertThat(active).hasSize(3);
    assertThat(http.get("/api/tokens/" + tokens[0]).json().getString("current_user_id")).isEqualTo(newcomer);

    JsonArray history = http.get("/api/tokens/" + tokens[0] + "/usages").array("usages");
    assertThat(history.getJsonObject(0).getString("user_id")).isEqualTo(newcomer);
    assertThat(history.getJsonObject(0).getValue("ended_at")).isNull();
    assertThat(history.getJsonObject(1).getString("user_id")).isEqualTo(users[0]);
    assertThat(history.getJsonObject(1).getString("ended_at")).isNotNull();
    JsonObject evicted = http.get("/api/users/" + users[0] + "/usages").json().getJsonArray("usages").getJsonObject(0);
    assertThat(evicted.getString("end_reason")).isEqualTo("evicted");
  }

  @Test
  @DisplayName("a lease reads as over exactly one TTL after activation, ended at that instant, without a sweep")
  void exactExpiry() throws Exception {
    String user = newUser();
    JsonObject grant = http.activate(user);
    String tokenId = grant.getString("token_id");
    JsonObject token = http.get("/api/tokens/" + tokenId).json();
    Instant activatedAt = Instant.parse(token.getString("activated_at"));

    // Reading the token retires its lease once the TTL has passed: no sweep runs (its interval is an hour).
    JsonObject after = Eventually.until("the lease to run out", TTL.plusSeconds(5),
        () -> http.get("/api/tokens/" + tokenId).json(), t -> "available".equals(t.getString("state")));
    assertThat(after.getValue("current_user_id")).isNull();
    assertThat(Instant.parse(after.getString("released_at"))).isEqualTo(activatedAt.plus(TTL));
    assertThat(http.get("/api/tokens?state=active").array("tokens")).isEmpty();

    JsonObject usage = http.get("/api/tokens/" + tokenId + "/usages").array("usages").getJsonObject(0);
    assertThat(usage.getString("user_id")).isEqualTo(user);
    assertThat(Instant.parse(usage.getString("ended_at")))
        .isEqualTo(Instant.parse(usage.getString("started_at")).plus(TTL));
    JsonObject mine = http.get("/api/users/" + user + "/usages").json().getJsonArray("usages").getJsonObject(0);
    assertThat(mine.getString("end_reason")).isEqualTo("expired");

    // In storage too, to the millisecond: ended_at is the expiry instant, not when it was noticed.
    try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement();
        ResultSet rows = st.executeQuery("SELECT ended_at - started_at AS held, end_reason FROM usages WHERE generation = "
            + grant.getLong("generation"))) {
      assertThat(rows.next()).isTrue();
      assertThat(rows.getString("held")).isEqualTo("00:00:02");
      assertThat(rows.getString("end_reason")).isEqualTo("expired");
    }
  }

  @Test
  @DisplayName("a renewed lease outlives its first TTL; a released one is over at once")
  void renewAndRelease() throws Exception {
    String user = newUser();
    String tokenId = http.activate(user).getString("token_id");
    // Deliberate, both: the renewal comes 1.2 s into the 2 s lease, and the check 2.4 s in, past its first TTL.
    Thread.sleep(1_200);
    assertThat(http.post("/api/tokens/" + tokenId + "/renew", new JsonObject().put("user_id", user).encode()).status())
        .isEqualTo(200);
    Thread.sleep(1_200);
    assertThat(http.get("/api/tokens/" + tokenId).json().getString("state")).isEqualTo("active");
    assertThat(http.post("/api/tokens/" + tokenId + "/release", new JsonObject().put("user_id", user).encode()).status())
        .isEqualTo(200);
    assertThat(http.get("/api/tokens/" + tokenId).json().getString("state")).isEqualTo("available");
    JsonObject mine = http.get("/api/users/" + user + "/usages").json().getJsonArray("usages").getJsonObject(0);
    assertThat(mine.getString("end_reason")).isEqualTo("released");
  }
}
