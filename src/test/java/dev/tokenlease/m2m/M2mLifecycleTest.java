package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("M2M tokens over time: expiry, restarts, and the per-client cap")
class M2mLifecycleTest extends FreshDatabase {
  /** With '+', '/' and '=' as in `openssl rand -base64 32` output. */
  private static final String ADMIN_SECRET = "admin+secret/" + UUID.randomUUID() + "==";
  private M2mClient start(String ttl) throws Exception {
    return start(ttl, "admin", ADMIN_SECRET);
  }

  private M2mClient start(String ttl, String adminId, String adminSecret) throws Exception {
    startService(new JsonObject()
        .put("TOKENS_AUTH_REQUIRED", true)
        .put("TOKENS_ADMIN_CLIENT_ID", adminId)
        .put("TOKENS_ADMIN_CLIENT_SECRET", adminSecret)
        .put("TOKENS_M2M_TOKEN_TTL", ttl)
        .put("TOKENS_OAUTH_RATE_LIMIT_PER_SECOND", 10_000)
        .put("TOKENS_OAUTH_RATE_LIMIT_BURST", 10_000)
        .put("TOKENS_POOL_SIZE", 5));
    return new M2mClient(service.http());
  }

  @Test
  @DisplayName("with the database gone, the token endpoint answers 503 temporarily_unavailable and the listing TOKEN_LIST_ERROR")
  void databaseGone() throws Exception {
    M2mClient m2m = start("PT1H");
    String admin = m2m.token("admin", ADMIN_SECRET, null);
    TestDatabase.drop(database);
    String basic = java.util.Base64.getEncoder().encodeToString(("admin:" + ADMIN_SECRET).getBytes());
    var refused = service.http().request("POST", "/oauth/token", "grant_type=client_credentials",
        "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic " + basic);
    assertThat(refused.status()).isEqualTo(503);
    assertThat(refused.json()).isEqualTo(new JsonObject().put("error", "temporarily_unavailable")
        .put("error_description", "The authorization server cannot answer now."));
    var listing = m2m.get("/auth/m2m/tokens", admin);
    assertThat(listing.status()).isEqualTo(500);
    assertThat(listing.json().getString("error")).isEqualTo("TOKEN_LIST_ERROR");
    assertThat(listing.json().getJsonObject("details").getString("reason"))
        .isEqualTo("Database unavailable");
  }

  @Test
  @DisplayName("an expired token is refused at once, by the pool API, introspection and the listing")
  void expiry() throws Exception {
    M2mClient m2m = start("PT1S");
    String admin = m2m.token("admin", ADMIN_SECRET, null);
    JsonObject client = m2m.register(admin, "short", "t1", "tokens:read");
    String token = m2m.token(client.getString("clientId"), client.getString("clientSecret"), null);
    assertThat(m2m.get("/api/tokens", token).status()).isEqualTo(200);
    // Deliberate: the token's TTL (1 s) must pass on the real clock.
    Thread.sleep(1_100);
    assertThat(m2m.get("/api/tokens", token).status()).isEqualTo(401);
    assertThat(m2m.introspect(client.getString("clientId"), client.getString("clientSecret"), token).json())
        .isEqualTo(new JsonObject().put("active", false));
    String freshAdmin = m2m.token("admin", ADMIN_SECRET, null);
    JsonObject listed = m2m.get("/auth/m2m/tokens?clientId=" + client.getString("clientId"), freshAdmin).json();
    assertThat(listed.getJsonArray("tokens").getJsonObject(0).getBoolean("active")).isFalse();
    assertThat(m2m.get("/auth/m2m/tokens?active=true&clientId=" + client.getString("clientId"), freshAdmin)
        .json().getLong("total")).isZero();
  }

  @Test
  @DisplayName("live tokens survive a restart; revoked ones stay revoked; secrets are only hashes in the database")
  void restart() throws Exception {
    M2mClient m2m = start("PT1H");
    String admin = m2m.token("admin", ADMIN_SECRET, null);
    JsonObject client = m2m.register(admin, "durable", "t1", "tokens:read");
    String kept = m2m.token(client.getString("clientId"), client.getString("clientSecret"), null);
    String revoked = m2m.token(client.getString("clientId"), client.getString("clientSecret"), null);
    m2m.revoke(client.getString("clientId"), client.getString("clientSecret"), revoked);
    stopService();

    m2m = start("PT1H");
    // Basic credentials sent without form-encoding the secret first (as curl -u does) work too.
    String raw = "Basic " + java.util.Base64.getEncoder().encodeToString(("admin:" + ADMIN_SECRET).getBytes());
    assertThat(service.http().request("POST", "/oauth/token", "grant_type=client_credentials",
        "Content-Type", M2mClient.FORM, "Authorization", raw).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", kept).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", revoked).status()).isEqualTo(401);
    assertThat(m2m.get("/api/tokens", admin).status()).isEqualTo(200);

    String dump = TestDatabase.query(database, "SELECT string_agg(t::text, ' ') FROM m2m_tokens t")
        + TestDatabase.query(database, "SELECT string_agg(c::text, ' ') FROM m2m_clients c");
    for (String value : List.of(kept, revoked, admin, client.getString("clientSecret"), ADMIN_SECRET)) {
      assertThat(dump).doesNotContain(value);
    }
  }

  @Test
  @DisplayName("a client holds at most 100 live tokens: the next one revokes its oldest")
  void perClientCap() throws Exception {
    M2mClient m2m = start("PT1H");
    String admin = m2m.token("admin", ADMIN_SECRET, null);
    JsonObject client = m2m.register(admin, "greedy", "t1", "tokens:read");
    List<String> tokens = new ArrayList<>();
    for (int i = 0; i < AuthService.MAX_LIVE_TOKENS_PER_CLIENT + 1; i++) {
      tokens.add(m2m.token(client.getString("clientId"), client.getString("clientSecret"), null));
    }
    assertThat(m2m.get("/api/tokens", tokens.get(0)).status()).isEqualTo(401);
    assertThat(m2m.get("/api/tokens", tokens.get(1)).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", tokens.get(tokens.size() - 1)).status()).isEqualTo(200);
    assertThat(m2m.get("/auth/m2m/tokens?active=true&clientId=" + client.getString("clientId"), admin)
        .json().getLong("total")).isEqualTo(AuthService.MAX_LIVE_TOKENS_PER_CLIENT);
    assertThat(m2m.get("/auth/m2m/audit?event=M2M_TOKEN_REVOKED", admin).json().getJsonArray("events").stream()
        .map(e -> ((JsonObject) e).getJsonObject("details"))
        .anyMatch(d -> client.getString("clientId").equals(d.getString("clientId")) && d.getInteger("count") == 1))
        .isTrue();
  }

  @Test
  @DisplayName("changing the admin's secret or id at restart cuts off the old admin and its tokens")
  void bootstrapAdminReplaced() throws Exception {
    M2mClient m2m = start("PT1H");
    String oldToken = m2m.token("admin", ADMIN_SECRET, null);
    stopService();

    String newSecret = "another-admin-secret-" + UUID.randomUUID();
    m2m = start("PT1H", "admin", newSecret);
    assertThat(m2m.get("/api/tokens", oldToken).status()).isEqualTo(401);
    assertThat(m2m.tokenRequest("admin", ADMIN_SECRET, "grant_type=client_credentials").status()).isEqualTo(401);
    String secondToken = m2m.token("admin", newSecret, null);
    stopService();

    m2m = start("PT1H", "ops-admin", newSecret);
    assertThat(m2m.tokenRequest("admin", newSecret, "grant_type=client_credentials").status()).isEqualTo(401);
    assertThat(m2m.get("/api/tokens", secondToken).status()).isEqualTo(401);
    String current = m2m.token("ops-admin", newSecret, null);
    assertThat(m2m.get("/auth/m2m/clients/admin", current).status()).isEqualTo(404);
  }
}
