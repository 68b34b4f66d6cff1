package dev.tokenlease.vault;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.tokenlease.support.Http.Response;
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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

@DisplayName("Credential vault")
class CredentialVaultTest {
  private String database;
  private FakeProvider provider;
  private String keyset;
  private RunningService service;
  private Http http;

  @BeforeEach
  void setUp() throws Exception {
    database = TestDatabase.create();
    provider = new FakeProvider();
    keyset = VaultCipher.newKeysetJson();
    service = start(keyset, new JsonObject());
  }

  @AfterEach
  void tearDown() throws Exception {
    if (service != null) {
      service.close();
    }
    provider.close();
    TestDatabase.drop(database);
  }

  private RunningService start(String keysetJson, JsonObject extra) throws Exception {
    JsonObject overrides = new JsonObject()
        .put("TOKENS_VAULT_ROTATION_INTERVAL", "PT0.2S")
        .put("TOKENS_VAULT_ROTATION_BACKOFF", "PT0.2S")
        .put("TOKENS_VAULT_PROVIDER_TIMEOUT", "PT1S")
        .put("TOKENS_VAULT_ROTATION_MAX_ATTEMPTS", 3)
        .put("TOKENS_POOL_SIZE", 5);
    if (keysetJson != null) {
      overrides.put("TOKENS_VAULT_KEYSET", keysetJson);
    }
    RunningService started = RunningService.start(database, overrides.mergeIn(extra));
    http = started.http();
    return started;
  }

  private void restart(String keysetJson) throws Exception {
    restart(keysetJson, new JsonObject());
  }

  private void restart(String keysetJson, JsonObject extra) throws Exception {
    service.close();
    service = null;
    service = start(keysetJson, extra);
  }

  private JsonObject info(String id) {
    return http.get("/api/credentials/" + id).json();
  }

  private List<String> listed(String query) {
    JsonObject page = http.get("/api/credentials?" + query).json();
    List<String> ids = new ArrayList<>();
    page.getJsonArray("credentials").forEach(c -> ids.add(((JsonObject) c).getString("id")));
    assertThat(page.getLong("total")).as(query).isEqualTo(ids.size());
    return ids;
  }

  private static Instant instant(JsonObject info, String field) {
    String time = info.getString(field);
    return time == null ? null : Instant.parse(time);
  }

  private JsonObject create(String service, String value, Instant expiresAt, boolean refreshable) {
    JsonObject body = new JsonObject().put("service", service).put("environment", "production").put("value", value)
        .put("expires_at", expiresAt.toString());
    if (refreshable) {
      body.put("refresh", new JsonObject().put("token_url", provider.url()).put("grant_type", "refresh_token")
          .put("client_id", "our-client").put("client_secret", "client-secret-" + UUID.randomUUID())
          .put("refresh_token", "first-refresh-" + UUID.randomUUID()));
    }
    Response response = http.post("/api/credentials", body.encode());
    assertThat(response.status()).as(response.toString()).isEqualTo(201);
    return response.json();
  }

  private Response current(String service) {
    return http.get("/api/credentials/current?service=" + service + "&environment=production");
  }

  @Test
  @DisplayName("stores a credential sealed, lists its metadata without the value, and serves the value to callers")
  void createAndServe() throws Exception {
    String value = "pm-api-" + UUID.randomUUID();
    JsonObject created = create("parkmobile", value, Instant.now().plusSeconds(86_400 * 3), false);
    assertThat(created.encode()).doesNotContain(value);
    assertThat(created.getString("status")).isEqualTo("active");
    assertThat(created.getInteger("version")).isEqualTo(1);

    Response served = current("parkmobile");
    assertThat(served.status()).isEqualTo(200);
    assertThat(served.json().getString("value")).isEqualTo(value);
    assertThat(served.headers().firstValue("cache-control")).hasValue("no-store");
    current("parkmobile");
    JsonObject info = http.get("/api/credentials/" + created.getString("id")).json();
    assertThat(info.getLong("usage_count")).isEqualTo(2);
    assertThat(info.getString("last_used")).isNotNull();

    JsonObject page = http.get("/api/credentials?service=parkmobile&environment=production&status=active").json();
    assertThat(page.getLong("total")).isEqualTo(1);
    assertThat(page.encode()).doesNotContain(value);
    assertThat(http.get("/api/credentials?expiring_within=PT1H").json().getLong("total")).isZero();
    assertThat(http.get("/api/credentials?expiring_within=P4D").json().getLong("total")).isEqualTo(1);

    try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement();
        ResultSet rows = st.executeQuery("SELECT ciphertext, key_id FROM credential_versions")) {
      assertThat(rows.next()).isTrue();
      byte[] ciphertext = rows.getBytes("ciphertext");
      assertThat(new String(ciphertext, java.nio.charset.StandardCharsets.ISO_8859_1)).doesNotContain(value);
      assertThat(ciphertext.length).isGreaterThan(value.length());
    }
  }

  @Test
  @DisplayName("no two writes share a nonce")
  void freshNonces() throws Exception {
    for (int i = 0; i < 20; i++) {
      create("svc" + i, "same-value", Instant.now().plusSeconds(86_400 * 3), true);
    }
    Set<String> nonces = new HashSet<>();
    int count = 0;
    try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement();
        ResultSet rows = st.executeQuery(
            "SELECT ciphertext FROM credential_versions UNION ALL SELECT client_secret FROM credentials "
                + "UNION ALL SELECT refresh_token FROM credentials")) {
      while (rows.next()) {
        byte[] ciphertext = rows.getBytes(1);
        // Tink's AES-GCM ciphertext: 5-byte key prefix, 12-byte nonce, then the sealed data.
        nonces.add(java.util.HexFormat.of().formatHex(ciphertext, 5, 17));
        count++;
      }
    }
    assertThat(count).isEqualTo(60);
    assertThat(nonces).hasSize(60);
  }

  @Test
  @DisplayName("an operator's rotation makes the new value current and keeps the previous one readable")
  void manualRotation() throws Exception {
    String first = "first-" + UUID.randomUUID();
    JsonObject created = create("parkmobile", first, Instant.now().plusSeconds(86_400 * 3), true);
    String id = created.getString("id");
    Response rotated = http.post("/api/credentials/" + id + "/rotate", "");
    assertThat(rotated.status()).as(rotated.toString()).isEqualTo(200);
    assertThat(rotated.json().getInteger("version")).isEqualTo(2);
    assertThat(rotated.json().getString("last_refreshed")).isNotNull();

    String issued = provider.issued().get(0);
    assertThat(current("parkmobile").json().getString("value")).isEqualTo(issued);
    assertThat(http.get("/api/credentials/current?service=parkmobile&environment=production&stage=previous")
        .json().getString("value")).isEqualTo(first);
    assertThat(provider.requests().get(0)).contains("grant_type=refresh_token").contains("refresh_token=first-refresh-");
    assertThat(provider.authorizations().get(0)).startsWith("Basic ");

    JsonObject history = http.get("/api/credentials/" + id + "/history").json();
    assertThat(history.getJsonArray("versions")).extracting(v -> ((JsonObject) v).getString("stage"))
        .containsExactly("current", "previous");
    assertThat(history.getJsonArray("events")).extracting(e -> ((JsonObject) e).getString("type"))
        .containsExactly("rotated", "created");

    // The provider rotated the refresh token too: the next refresh presents the new one.
    http.post("/api/credentials/" + id + "/rotate", "");
    assertThat(provider.requests().get(1)).contains("refresh_token=" + provider.issued().get(1));
  }

  @Test
  @DisplayName("the schedule rotates a credential before it expires")
  void scheduledRotation() throws Exception {
    Instant expiry = Instant.now().plusSeconds(4);
    JsonObject created = create("parkmobile", "soon-expiring", expiry, true);
    Eventually.await("version 2", Duration.ofSeconds(4),
        () -> http.get("/api/credentials/" + created.getString("id")).json().getInteger("version") == 2);
    assertThat(Instant.now()).isBefore(expiry);
    assertThat(current("parkmobile").json().getString("value")).isEqualTo(provider.issued().get(0));
  }

  @Test
  @DisplayName("failures retry with backoff, then succeed")
  void retryThenSuccess() throws Exception {
    provider.failFirst(2);
    JsonObject created = create("parkmobile", "retry-me", Instant.now().plusSeconds(4), true);
    String id = created.getString("id");
    Eventually.await("version 2", Duration.ofSeconds(6), () -> http.get("/api/credentials/" + id).json().getInteger("version") == 2);
    JsonObject info = http.get("/api/credentials/" + id).json();
    assertThat(info.getString("status")).isEqualTo("active");
    assertThat(info.getInteger("rotation_attempts")).isZero();
    assertThat(http.get("/api/credentials/" + id + "/history").json().getJsonArray("events"))
        .extracting(e -> ((JsonObject) e).getString("type"))
        .containsExactly("rotated", "rotation_failed", "rotation_failed", "created");
  }

  @Test
  @DisplayName("failures retry, and only after the last attempt is the credential failed")
  void retryThenFailed() throws Exception {
    provider.mode(FakeProvider.Mode.REJECT);
    JsonObject created = create("parkmobile", "doomed", Instant.now().plusSeconds(4), true);
    String id = created.getString("id");
    Eventually.await("status failed", Duration.ofSeconds(6),
        () -> "failed".equals(http.get("/api/credentials/" + id).json().getString("status")));
    JsonObject info = http.get("/api/credentials/" + id).json();
    assertThat(info.getInteger("rotation_attempts")).isEqualTo(3);
    assertThat(info.getString("last_error")).isEqualTo("token endpoint answered 400 (invalid_grant)");
    assertThat(provider.calls()).isEqualTo(3);
    // A failed credential is served until its value expires; then callers get the documented 503.
    Eventually.await("503 once the value expired", Duration.ofSeconds(5), () -> current("parkmobile").status() == 503);
    Response none = current("parkmobile");
    assertThat(none.json()).isEqualTo(new JsonObject().put("status", "unavailable")
        .put("message", "No valid parkmobile API token available"));
    // An operator's rotation, once the provider works again, brings it back.
    provider.mode(FakeProvider.Mode.ISSUE);
    assertThat(http.post("/api/credentials/" + id + "/rotate", "").json().getString("status")).isEqualTo("active");
  }

  @Test
  @DisplayName("a credential whose refresh failed for good keeps being served until its value expires")
  void failedButUnexpiredIsServed() throws Exception {
    // The schedule retries a failed operator's rotation after the backoff: a long one keeps it out of the way here.
    restart(keyset, new JsonObject().put("TOKENS_VAULT_ROTATION_BACKOFF", "PT1M"));
    provider.mode(FakeProvider.Mode.REJECT);
    String value = "still-working-" + UUID.randomUUID();
    String id = create("parkmobile", value, Instant.now().plusSeconds(86_400 * 3), true).getString("id");
    for (int attempt = 0; attempt < 3; attempt++) {
      assertThat(http.post("/api/credentials/" + id + "/rotate", "").status()).isEqualTo(502);
    }
    assertThat(provider.calls()).isEqualTo(3);
    assertThat(info(id).getString("status")).isEqualTo("failed");
    // The schedule no longer retries a failed credential, and says so.
    assertThat(info(id).getString("next_attempt_at")).isNull();

    Response served = current("parkmobile");
    assertThat(served.status()).as(served.toString()).isEqualTo(200);
    assertThat(served.json().getString("value")).isEqualTo(value);
    assertThat(served.headers().firstValue("cache-control")).hasValue("no-store");
    assertThat(http.get("/api/credentials/" + id).json().getLong("usage_count")).isEqualTo(1);
  }

  @Test
  @DisplayName("status is computed from the clock; expiring_within lists what expires by then and widens status=expiring")
  void statusFollowsTheClock() {
    // The README's example: a credential expiring in two hours, just created, none of it written by the schedule.
    JsonObject created = create("parkmobile", "two-hours", Instant.now().plusSeconds(2 * 3600), true);
    String id = created.getString("id");
    assertThat(listed("service=parkmobile&status=expiring&expiring_within=PT24H&page=1&limit=20")).containsExactly(id);
    assertThat(listed("service=parkmobile&expiring_within=PT24H")).containsExactly(id);
    assertThat(listed("service=parkmobile&status=active&expiring_within=PT24H")).containsExactly(id);
    assertThat(listed("service=parkmobile&status=expiring&expiring_within=PT1H")).isEmpty();
    assertThat(listed("service=parkmobile&expiring_within=PT1H")).isEmpty();
    // A two-hour value is refreshed half-way through its life: it is active for its first hour, and says so.
    assertThat(created.getString("status")).isEqualTo("active");
    assertThat(listed("service=parkmobile&status=active")).containsExactly(id);
    assertThat(listed("service=parkmobile&status=expiring")).isEmpty();

    // Once inside the window it is expiring at once, in its own status and in the filter, with no run of the
    // schedule in between (a credential without refresh settings, which the schedule never touches).
    String plain = create("plain", "no-refresh", Instant.now().plusSeconds(2 * 3600), false).getString("id");
    assertThat(info(plain).getString("status")).isEqualTo("active");
    TestDatabase.execute(database, "UPDATE credentials SET created_at = now() - interval '3 hours' WHERE id = '"
        + plain + "'");
    assertThat(info(plain).getString("status")).isEqualTo("expiring");
    assertThat(listed("service=plain&status=expiring")).containsExactly(plain);
    assertThat(listed("service=plain&status=active")).isEmpty();
    assertThat(TestDatabase.query(database, "SELECT status FROM credentials WHERE id = '" + plain + "'"))
        .isEqualTo("active");
    // The window follows TOKENS_VAULT_ROTATION_WINDOW (24 h) for a long-lived value: three days out is active.
    String later = create("later", "three-days", Instant.now().plusSeconds(86_400 * 3), false).getString("id");
    assertThat(listed("service=later&status=active")).containsExactly(later);
    assertThat(listed("service=later&status=expiring&expiring_within=P4D")).containsExactly(later);

    // failed and retired are as stored; expiring_within alone leaves them out, with their status it narrows them.
    TestDatabase.execute(database, "UPDATE credentials SET status = 'failed' WHERE id = '" + later + "'");
    assertThat(info(later).getString("status")).isEqualTo("failed");
    assertThat(listed("service=later&expiring_within=P4D")).isEmpty();
    assertThat(listed("service=later&status=expiring&expiring_within=P4D")).isEmpty();
    assertThat(listed("service=later&status=failed&expiring_within=P4D")).containsExactly(later);
    assertThat(listed("service=later&status=failed&expiring_within=P1D")).isEmpty();
    http.post("/api/credentials/" + plain + "/retire", "");
    assertThat(listed("service=plain&status=retired")).containsExactly(plain);
    assertThat(listed("service=plain&status=expiring")).isEmpty();
    assertThat(listed("service=plain&expiring_within=PT24H")).isEmpty();
  }

  @Test
  @DisplayName("next_attempt_at is when the schedule will try: window entry, a failed rotation's retry time, or null")
  void nextAttemptIsTruthful() throws Exception {
    restart(keyset, new JsonObject().put("TOKENS_VAULT_ROTATION_BACKOFF", "PT2S"));
    // Fresh and outside the window: the schedule first tries when it enters the window, 24 h before expiry.
    JsonObject created = create("parkmobile", "first", Instant.now().plusSeconds(86_400 * 3), true);
    String id = created.getString("id");
    assertThat(instant(created, "next_attempt_at")).isEqualTo(instant(created, "expires_at").minusSeconds(86_400));
    // Not refreshable: the schedule never tries it.
    assertThat(create("plain", "v", Instant.now().plusSeconds(86_400 * 3), false).getString("next_attempt_at")).isNull();

    provider.mode(FakeProvider.Mode.REJECT);
    Response failed = http.post("/api/credentials/" + id + "/rotate", "");
    assertThat(failed.status()).isEqualTo(502);
    assertThat(failed.json()).isEqualTo(new JsonObject().put("status", "bad_gateway")
        .put("message", "Rotation failed: token endpoint answered 400 (invalid_grant)"));
    Instant answered = Instant.now();
    JsonObject afterFailure = info(id);
    Instant next = instant(afterFailure, "next_attempt_at");
    // The backoff's retry time, in the future (shown in whole seconds, so within a second of now + 2 s).
    assertThat(next).isAfter(answered).isBefore(answered.plusSeconds(3));
    assertThat(afterFailure.getString("status")).isEqualTo("active");
    assertThat(afterFailure.getInteger("rotation_attempts")).isEqualTo(1);
    assertThat(provider.calls()).isEqualTo(1);

    // The schedule honours it: the retry comes at or after next_attempt_at (and not long after), and succeeds.
    provider.mode(FakeProvider.Mode.ISSUE);
    Eventually.await("the scheduled retry", Duration.ofSeconds(8), () -> info(id).getInteger("version") == 2);
    Instant retried = provider.callTimes().get(1);
    assertThat(retried).isAfterOrEqualTo(next).isBefore(next.plusSeconds(3));
    assertThat(provider.calls()).isEqualTo(2);

    // Rotated: the new one-hour value is next tried half-way through its life.
    JsonObject rotated = info(id);
    assertThat(rotated.getInteger("rotation_attempts")).isZero();
    Instant halfLife = instant(rotated, "expires_at").minusSeconds(1_800);
    assertThat(instant(rotated, "next_attempt_at")).isBetween(halfLife.minusSeconds(2), halfLife.plusSeconds(2));

    // Retired: never again.
    http.post("/api/credentials/" + id + "/retire", "");
    assertThat(info(id).getString("next_attempt_at")).isNull();
  }

  @Test
  @DisplayName("expiry dates are accepted up to 9999-12-31T23:59:59Z and refused beyond, never stored as infinity")
  void expiryRange() {
    for (String tooLate : List.of("+300000-01-01T00:00:00Z", "+10000-01-01T00:00:00Z", "9999-12-31T23:59:59.001Z")) {
      Response refused = http.post("/api/credentials", new JsonObject().put("service", "pm").put("environment", "dr")
          .put("value", "v").put("expires_at", tooLate).encode());
      assertThat(refused.status()).as(tooLate).isEqualTo(400);
      assertThat(refused.json()).isEqualTo(new JsonObject().put("status", "bad_request")
          .put("message", "Invalid expires_at. Must be no later than 9999-12-31T23:59:59Z."));
    }
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM credentials")).isEqualTo("0");

    JsonObject latest = create("pm", "v", Instant.parse("9999-12-31T23:59:59Z"), false);
    assertThat(latest.getString("expires_at")).isEqualTo("9999-12-31T23:59:59Z");
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM credentials WHERE isfinite(expires_at)"))
        .isEqualTo("1");
  }

  @Test
  @DisplayName("a provider's expires_in beyond the accepted range is a failed rotation, and the old value stays")
  void providerExpiryOutOfRange() {
    provider.expiresIn(400_000L * 365 * 86_400);
    String value = "kept-" + UUID.randomUUID();
    String id = create("parkmobile", value, Instant.now().plusSeconds(86_400 * 3), true).getString("id");
    Response rotated = http.post("/api/credentials/" + id + "/rotate", "");
    assertThat(rotated.status()).isEqualTo(502);
    assertThat(rotated.json().getString("message"))
        .isEqualTo("Rotation failed: token endpoint answered 200 with an expires_in beyond 9999-12-31T23:59:59Z");
    assertThat(http.get("/api/credentials/" + id).json().getInteger("version")).isEqualTo(1);
    assertThat(current("parkmobile").json().getString("value")).isEqualTo(value);
  }

  @Test
  @DisplayName("a timed-out provider is a failed attempt, reported without secrets")
  void providerTimeout() throws Exception {
    provider.mode(FakeProvider.Mode.SILENT);
    JsonObject created = create("parkmobile", "slow-provider", Instant.now().plusSeconds(86_400 * 3), true);
    Response rotated = http.post("/api/credentials/" + created.getString("id") + "/rotate", "");
    assertThat(rotated.status()).isEqualTo(502);
    assertThat(rotated.json().getString("status")).isEqualTo("bad_gateway");
    assertThat(rotated.json().getString("message")).isEqualTo("Rotation failed: token endpoint unreachable: timed out");
  }

  @Test
  @DisplayName("callers keep getting a valid value while a slow rotation runs; only one rotation runs at a time")
  void noDisruption() throws Exception {
    provider.slow(700);
    String first = "still-valid-" + UUID.randomUUID();
    JsonObject created = create("parkmobile", first, Instant.now().plusSeconds(86_400 * 3), true);
    String id = created.getString("id");
    CompletableFuture<Response> rotation = http.sendAsync("POST", "/api/credentials/" + id + "/rotate", "");
    // The first rotation runs once the provider has its request; it answers 700 ms later.
    Eventually.await("the rotation to reach the provider", Duration.ofSeconds(5), () -> provider.calls() == 1);
    Response concurrent = http.post("/api/credentials/" + id + "/rotate", "");
    assertThat(concurrent.status()).isEqualTo(409);
    List<String> seen = new ArrayList<>();
    while (!rotation.isDone()) {
      Response served = current("parkmobile");
      assertThat(served.status()).isEqualTo(200);
      seen.add(served.json().getString("value"));
      // Deliberate: paces the reads that sample what callers get while the rotation runs.
      Thread.sleep(50);
    }
    assertThat(rotation.get().status()).isEqualTo(200);
    String second = provider.issued().get(0);
    // Every read got a valid value: the old one until the new one was stored, then the new one.
    assertThat(seen).isNotEmpty().allMatch(v -> v.equals(first) || v.equals(second));
    assertThat(seen.get(0)).isEqualTo(first);
    assertThat(seen.subList(seen.indexOf(second) < 0 ? seen.size() : seen.indexOf(second), seen.size()))
        .allMatch(second::equals);
    assertThat(current("parkmobile").json().getString("value")).isEqualTo(second);
    assertThat(provider.calls()).isEqualTo(1);
  }

  @Test
  @DisplayName("records uses with a correct running average of response time")
  void usage() {
    String id = create("parkmobile", "x", Instant.now().plusSeconds(86_400 * 3), false).getString("id");
    for (double ms : new double[] {100, 200, 600}) {
      assertThat(http.post("/api/credentials/" + id + "/usage",
          new JsonObject().put("response_time_ms", ms).put("success", ms < 500).encode()).status()).isEqualTo(200);
    }
    JsonObject info = http.get("/api/credentials/" + id).json();
    assertThat(info.getDouble("avg_response_ms")).isEqualTo(300.0);
    assertThat(info.getLong("failure_count")).isEqualTo(1);
  }

  @Test
  @DisplayName("bad input gets 400, unknown ids 404, retired credentials are no longer served")
  void errors() {
    assertThat(http.post("/api/credentials", "{}").json().getString("message")).isEqualTo("Missing required parameter: service");
    assertThat(http.post("/api/credentials", new JsonObject().put("service", "Park Mobile").encode()).json()
        .getString("message")).startsWith("Invalid service.");
    assertThat(http.post("/api/credentials", new JsonObject().put("service", "pm").put("environment", "prod").encode())
        .json().getString("message")).startsWith("Invalid environment.");
    assertThat(http.post("/api/credentials", new JsonObject().put("service", "pm").put("environment", "dr")
        .put("value", "v").put("expires_at", "2001-01-01T00:00:00Z").encode()).json().getString("message"))
        .isEqualTo("Invalid expires_at. Must be in the future.");
    assertThat(http.get("/api/credentials?limit=500").status()).isEqualTo(400);
    assertThat(http.get("/api/credentials/" + UUID.randomUUID()).status()).isEqualTo(404);
    assertThat(http.get("/api/credentials/nope").status()).isEqualTo(400);
    assertThat(http.get("/api/credentials/current?service=pm").json().getString("message"))
        .isEqualTo("Missing required parameter: environment");

    String id = create("pm", "v", Instant.now().plusSeconds(86_400 * 3), false).getString("id");
    assertThat(http.post("/api/credentials/" + id + "/rotate", "").status()).isEqualTo(400);
    assertThat(http.post("/api/credentials/" + id + "/retire", "").json().getString("status")).isEqualTo("retired");
    assertThat(current("pm").status()).isEqualTo(503);
  }

  @Test
  @DisplayName("a missing or wrong master key fails closed with a clear error")
  void wrongKey() throws Exception {
    create("parkmobile", "sealed-under-a", Instant.now().plusSeconds(86_400 * 3), true);
    restart(VaultCipher.newKeysetJson());
    Response locked = current("parkmobile");
    assertThat(locked.status()).isEqualTo(503);
    assertThat(locked.json().getString("message"))
        .startsWith("The credential vault is locked: stored credentials are sealed under key ids");
    assertThat(http.get("/api/credentials").status()).isEqualTo(503);
    restart(null);
    assertThat(current("parkmobile").json().getString("message"))
        .isEqualTo("The credential vault is locked: no TOKENS_VAULT_KEYSET or TOKENS_VAULT_KEYSET_FILE is configured.");
    // The rest of the service is not affected.
    assertThat(http.get("/api/tokens").status()).isEqualTo(200);
  }

  /** A fresh keyset whose one key has the id of {@code keysetJson}'s primary key, and other material. */
  private static String sameIdOtherMaterial(String keysetJson) throws Exception {
    long id = new JsonObject(keysetJson).getLong("primaryKeyId");
    JsonObject impostor = new JsonObject(VaultCipher.newKeysetJson()).put("primaryKeyId", id);
    impostor.getJsonArray("key").getJsonObject(0).put("keyId", id);
    return impostor.encode();
  }

  @Test
  @DisplayName("a keyset with the stored key ids but other key material is caught on a stored row; the vault stays locked")
  void otherKeyMaterialOnStoredRows() throws Exception {
    String value = "sealed-under-the-real-key-" + UUID.randomUUID();
    String id = create("parkmobile", value, Instant.now().plusSeconds(86_400 * 3), true).getString("id");
    long keyId = VaultCipher.fromKeysetJson(keyset).primaryKeyId();
    String impostor = sameIdOtherMaterial(keyset);
    assertThat(VaultCipher.fromKeysetJson(impostor).primaryKeyId()).isEqualTo(keyId);
    // A database from before the canary existed: only the stored rows can tell the keysets apart.
    TestDatabase.execute(database, "DELETE FROM vault_canary");
    restart(impostor);

    Response locked = current("parkmobile");
    assertThat(locked.status()).isEqualTo(503);
    assertThat(locked.json()).isEqualTo(new JsonObject().put("status", "unavailable").put("message",
        "The credential vault is locked: the configured keyset has key ids [" + keyId + "] but cannot decrypt the"
            + " stored credentials sealed under them; its key material is not theirs."));
    Response refused = http.post("/api/credentials", new JsonObject().put("service", "other").put("environment", "dr")
        .put("value", "v").put("expires_at", Instant.now().plusSeconds(86_400).toString()).encode());
    assertThat(refused.status()).isEqualTo(503);
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM credentials")).isEqualTo("1");
    assertThat(TestDatabase.query(database, "SELECT usage_count FROM credentials")).isEqualTo("0");
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM vault_canary")).isEqualTo("0");

    // The real keyset opens it again, and now leaves a canary behind.
    restart(keyset);
    assertThat(current("parkmobile").json().getString("value")).isEqualTo(value);
    assertThat(http.get("/api/credentials/" + id).json().getLong("usage_count")).isEqualTo(1);
    assertThat(TestDatabase.query(database, "SELECT key_id FROM vault_canary")).isEqualTo(String.valueOf(keyId));
  }

  @Test
  @DisplayName("the canary written at the first unlock catches other key material even before any credential is stored")
  void otherKeyMaterialOnCanary() throws Exception {
    long keyId = VaultCipher.fromKeysetJson(keyset).primaryKeyId();
    assertThat(TestDatabase.query(database, "SELECT key_id FROM vault_canary")).isEqualTo(String.valueOf(keyId));
    restart(sameIdOtherMaterial(keyset));

    String body = new JsonObject().put("service", "parkmobile").put("environment", "production").put("value", "v")
        .put("expires_at", Instant.now().plusSeconds(86_400).toString()).encode();
    Response refused = http.post("/api/credentials", body);
    assertThat(refused.status()).isEqualTo(503);
    assertThat(refused.json().getString("message")).isEqualTo("The credential vault is locked: the configured keyset"
        + " cannot decrypt the vault's canary, sealed under key id " + keyId
        + "; it is not the keyset this vault was first opened with.");
    assertThat(current("parkmobile").status()).isEqualTo(503);
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM credentials")).isEqualTo("0");

    restart(keyset);
    assertThat(http.post("/api/credentials", body).status()).isEqualTo(201);
  }

  @Test
  @DisplayName("a stored value that cannot be decrypted answers 503 and is not counted as a use")
  void undecryptableValue() {
    String id = create("parkmobile", "to-be-damaged", Instant.now().plusSeconds(86_400 * 3), false).getString("id");
    // Flips a bit of the authentication tag: the row can no longer be opened.
    TestDatabase.execute(database, "UPDATE credential_versions SET ciphertext ="
        + " set_byte(ciphertext, length(ciphertext) - 1, get_byte(ciphertext, length(ciphertext) - 1) # 1)");

    Response failed = current("parkmobile");
    assertThat(failed.status()).isEqualTo(503);
    assertThat(failed.json()).isEqualTo(new JsonObject().put("status", "unavailable")
        .put("message", "The credential vault cannot decrypt a stored secret with the configured keyset."));
    JsonObject info = http.get("/api/credentials/" + id).json();
    assertThat(info.getLong("usage_count")).isZero();
    assertThat(info.getString("last_used")).isNull();
  }

  @Test
  @DisplayName("a master-key rotation re-encrypts every row under the new key")
  void keyRotation() throws Exception {
    List<String> values = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      values.add("value-" + i + "-" + UUID.randomUUID());
      create("svc" + i, values.get(i), Instant.now().plusSeconds(86_400 * 3), true);
    }
    String rotatedKeyset = VaultCipher.rotateKeysetJson(keyset);
    long newPrimary = VaultCipher.fromKeysetJson(rotatedKeyset).primaryKeyId();
    restart(rotatedKeyset);
    Eventually.await("every secret resealed under the new primary key", Duration.ofSeconds(5),
        () -> keyIds().equals(Set.of(newPrimary)));
    Eventually.await("the canary resealed under the new primary key", Duration.ofSeconds(5),
        () -> String.valueOf(newPrimary).equals(TestDatabase.query(database, "SELECT key_id FROM vault_canary")));
    for (int i = 0; i < 5; i++) {
      assertThat(http.get("/api/credentials/current?service=svc" + i + "&environment=production").json()
          .getString("value")).isEqualTo(values.get(i));
    }
    assertThat(http.post("/api/credentials/reencrypt", "").json().getInteger("reencrypted")).isZero();
    // The refresh secrets were moved too: a rotation still authenticates with them.
    String id = http.get("/api/credentials?service=svc0").json().getJsonArray("credentials").getJsonObject(0).getString("id");
    assertThat(http.post("/api/credentials/" + id + "/rotate", "").status()).isEqualTo(200);
    // And the old keyset alone can no longer open the vault.
    restart(keyset);
    assertThat(current("svc1").status()).isEqualTo(503);
  }

  private Set<Long> keyIds() {
    Set<Long> ids = new HashSet<>();
    try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement();
        ResultSet rows = st.executeQuery("SELECT key_id FROM credential_versions UNION SELECT client_secret_key "
            + "FROM credentials UNION SELECT refresh_token_key FROM credentials")) {
      while (rows.next()) {
        ids.add(rows.getLong(1));
      }
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e);
    }
    return ids;
  }

  @Test
  @DisplayName("no value appears in logs, listings or events")
  void noLeaks() throws Exception {
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ListAppender<ILoggingEvent> logs = new ListAppender<>();
    logs.start();
    root.addAppender(logs);
    List<String> events = new CopyOnWriteArrayList<>();
    service.vertx().eventBus().<JsonObject>consumer(CredentialAddresses.EVENTS, m -> events.add(m.body().encode()));
    try {
      String value = "initial-secret-" + UUID.randomUUID();
      JsonObject created = create("parkmobile", value, Instant.now().plusSeconds(86_400 * 3), true);
      String id = created.getString("id");
      http.post("/api/credentials/" + id + "/rotate", "");
      provider.mode(FakeProvider.Mode.REJECT);
      http.post("/api/credentials/" + id + "/rotate", "");
      current("parkmobile");
      List<String> outputs = new ArrayList<>();
      outputs.add(http.get("/api/credentials").raw());
      outputs.add(http.get("/api/credentials/" + id).raw());
      outputs.add(http.get("/api/credentials/" + id + "/history").raw());
      Eventually.await("three vault events", Duration.ofSeconds(2), () -> events.size() >= 3);
      outputs.addAll(events);
      // The service may still be appending (an access line follows its answer): copy under the
      // appender's lock, which appends hold too.
      synchronized (logs) {
        logs.list.forEach(e -> outputs.add(e.getFormattedMessage()));
      }
      List<String> secrets = new ArrayList<>(provider.issued());
      secrets.add(value);
      for (String request : provider.requests()) {
        for (String part : request.split("&")) {
          if (part.startsWith("refresh_token=")) {
            secrets.add(part.substring("refresh_token=".length()));
          }
        }
      }
      assertThat(secrets).hasSizeGreaterThan(3);
      for (String output : outputs) {
        for (String secret : secrets) {
          assertThat(output).doesNotContain(secret);
        }
      }
      assertThat(new JsonArray(events.stream().map(JsonObject::new).toList()).encode()).contains("rotation_failed");
    } finally {
      root.detachAppender(logs);
    }
  }
}
