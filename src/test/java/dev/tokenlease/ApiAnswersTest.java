package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.ApiContract;
import dev.tokenlease.support.EventStreamClient;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import dev.tokenlease.vault.VaultCipher;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The README's calls, made against the running service, and every answer held against the OpenAPI
 * document: its status must be one the document declares for that operation, its body must match
 * that response's schema (closed objects, so an undocumented field fails too) and its declared
 * headers theirs. Authentication is on, so the bearer answers are real; the admin's token stands in
 * for the README's unauthenticated calls.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@DisplayName("API answers against the document")
class ApiAnswersTest {
  private static final String ADMIN_ID = "ops-admin";
  private static final String ADMIN_SECRET = "admin-secret-" + UUID.randomUUID();
  private static final String FORM = "application/x-www-form-urlencoded";

  private String database;
  private RunningService service;
  private Http http;
  private ApiContract contract;
  private String admin;
  private final Set<String> checked = new TreeSet<>();

  @BeforeAll
  void start() throws Exception {
    database = TestDatabase.create();
    service = RunningService.start(database, new JsonObject()
        .put("TOKENS_AUTH_REQUIRED", true)
        .put("TOKENS_ADMIN_CLIENT_ID", ADMIN_ID)
        .put("TOKENS_ADMIN_CLIENT_SECRET", ADMIN_SECRET)
        .put("TOKENS_OAUTH_RATE_LIMIT_PER_SECOND", 10_000)
        .put("TOKENS_OAUTH_RATE_LIMIT_BURST", 10_000)
        .put("TOKENS_VAULT_KEYSET", VaultCipher.newKeysetJson())
        .put("TOKENS_VAULT_PROVIDER_TIMEOUT", "PT1S")
        .put("TOKENS_POOL_SIZE", 5)
        // One waiting activation at a time, so that a second one is refused (503).
        .put("TOKENS_MAX_WAITERS", 1));
    http = service.http();
    contract = ApiContract.load(service.vertx());
    admin = accessToken(ADMIN_ID, ADMIN_SECRET, null);
  }

  @AfterAll
  void stop() {
    if (service != null) {
      service.close();
    }
    TestDatabase.drop(database);
  }

  // ---- calls, each answer checked against the document

  private Http.Response call(String method, String uri, String body, String... headers) {
    Http.Response answer = http.request(method, uri, body, headers);
    checked.add(contract.check(method, uri, answer));
    return answer;
  }

  /** A call with the admin's bearer token and, if there is a body, as JSON. */
  private Http.Response api(String method, String uri, JsonObject body) {
    return as(admin, method, uri, body);
  }

  private Http.Response as(String token, String method, String uri, JsonObject body) {
    return body == null
        ? call(method, uri, null, "Authorization", "Bearer " + token)
        : call(method, uri, body.encode(), "Authorization", "Bearer " + token, "Content-Type", "application/json");
  }

  private Http.Response oauth(String path, String form, String clientId, String secret) {
    return call("POST", path, form, "Content-Type", FORM, "Authorization", basic(clientId, secret));
  }

  private static String basic(String id, String secret) {
    String pair = URLEncoder.encode(id, StandardCharsets.UTF_8) + ":" + URLEncoder.encode(secret, StandardCharsets.UTF_8);
    return "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
  }

  private String accessToken(String clientId, String secret, String scope) {
    String form = "grant_type=client_credentials" + (scope == null ? "" : "&scope=" + URLEncoder.encode(scope, StandardCharsets.UTF_8));
    return expect(200, oauth("/oauth/token", form, clientId, secret)).getString("access_token");
  }

  /** A client registered by the admin: its id and one-time secret. */
  private JsonObject register(String name, String... scopes) {
    return expect(201, api("POST", "/auth/m2m/clients", new JsonObject().put("clientName", name)
        .put("tenantId", "acme").put("scopes", new JsonArray(List.of(scopes)))));
  }

  /**
   * Opens the live stream of changes, reads its first frame and closes it; its status and head are
   * checked like any other answer (the document cannot describe the stream's body as a schema).
   */
  private Http.Response stream(String token, String uri) {
    try (EventStreamClient stream = EventStreamClient.open(service.port(), uri, "Authorization", "Bearer " + token)) {
      EventStreamClient.Frame first = stream.next(java.time.Duration.ofSeconds(10));
      Http.Response answer = new Http.Response(stream.status(), stream.headers(), ": " + first.comments().get(0) + "\n\n");
      checked.add(contract.check("GET", uri, answer));
      return answer;
    }
  }

  private static JsonObject expect(int status, Http.Response answer) {
    assertThat(answer.status()).as(answer.toString()).isEqualTo(status);
    return answer.contentType().startsWith("application/json") ? answer.json() : new JsonObject();
  }

  private static JsonObject userBody(String user) {
    return new JsonObject().put("user_id", user);
  }

  // ---- the README's calls

  @Test
  @Order(1)
  @DisplayName("the token pool: activate, list, get, renew, release, usages of a token and of a user, clear, health, live changes")
  void pool() {
    String user = UUID.randomUUID().toString();
    JsonObject grant = expect(200, api("POST", "/api/tokens/activate", userBody(user)));
    String token = grant.getString("token_id");
    long generation = grant.getLong("generation");

    expect(200, api("GET", "/api/tokens", null));
    expect(200, api("GET", "/api/tokens?state=active", null));
    expect(200, api("GET", "/api/tokens?state=available", null));
    expect(200, api("GET", "/api/tokens?state=all", null));
    expect(200, api("GET", "/api/tokens/" + token, null));

    JsonObject lease = userBody(user).put("generation", generation);
    expect(200, api("POST", "/api/tokens/" + token + "/renew", lease));
    expect(200, api("GET", "/api/tokens/" + token + "/usages", null));
    expect(200, api("POST", "/api/tokens/" + token + "/release", lease));
    expect(200, api("GET", "/api/tokens/" + token + "/usages", null));

    expect(200, api("POST", "/api/tokens/activate", userBody(user)));
    JsonObject first = expect(200, api("GET", "/api/users/" + user + "/usages?limit=1", null));
    assertThat(first.getString("next_cursor")).isNotNull();
    expect(200, api("GET", "/api/users/" + user + "/usages?limit=50&cursor=" + first.getString("next_cursor"), null));
    String from = Instant.now().minus(1, ChronoUnit.DAYS).truncatedTo(ChronoUnit.SECONDS).toString();
    String to = Instant.now().plus(1, ChronoUnit.DAYS).truncatedTo(ChronoUnit.SECONDS).toString();
    expect(200, api("GET", "/api/users/" + user + "/usages?from=" + from + "&to=" + to, null));

    expect(200, api("DELETE", "/api/tokens/active", null));
    expect(200, call("GET", "/api/health", null));
    expect(200, api("GET", "/api/pools/default/stats", null));
    assertThat(expect(404, api("GET", "/api/pools/nope/stats", null)).getString("message")).isEqualTo("Pool not found");
    expect(200, stream(admin, "/api/events"));
    expect(200, stream(admin, "/api/events?last_event_id=1"));
  }

  @Test
  @Order(2)
  @DisplayName("eviction with notice: a full pool's activation names the evicted lease, whose holder gets 409")
  void eviction() {
    expect(200, api("DELETE", "/api/tokens/active", null));
    String evictedUser = UUID.randomUUID().toString();
    JsonObject oldest = expect(200, api("POST", "/api/tokens/activate", userBody(evictedUser)));
    for (int i = 1; i < 5; i++) {
      expect(200, api("POST", "/api/tokens/activate", userBody(UUID.randomUUID().toString())));
    }
    JsonObject grant = expect(200, api("POST", "/api/tokens/activate", userBody(UUID.randomUUID().toString())));
    assertThat(grant.getJsonObject("evicted").getString("user_id")).isEqualTo(evictedUser);
    String token = oldest.getString("token_id");
    JsonObject lease = userBody(evictedUser).put("generation", oldest.getLong("generation"));
    assertThat(expect(409, api("POST", "/api/tokens/" + token + "/release", lease)).getString("message"))
        .isEqualTo("Token was evicted.");
    assertThat(expect(409, api("POST", "/api/tokens/" + token + "/renew", lease)).getString("message"))
        .isEqualTo("Token was evicted.");
    expect(200, api("DELETE", "/api/tokens/active", null));
  }

  private Http.Response activateWithKey(String user, String key) {
    return call("POST", "/api/tokens/activate", userBody(user).encode(), "Authorization", "Bearer " + admin,
        "Content-Type", "application/json", "Idempotency-Key", key);
  }

  @Test
  @Order(3)
  @DisplayName("idempotent activation: a retry, the key of another user, of an ended lease, and an invalid key")
  void idempotentActivation() {
    String user = UUID.randomUUID().toString();
    String key = "order-" + UUID.randomUUID();
    JsonObject grant = expect(200, activateWithKey(user, key));
    assertThat(expect(200, activateWithKey(user, key))).isEqualTo(grant);
    assertThat(expect(422, activateWithKey(UUID.randomUUID().toString(), key)).getString("status"))
        .isEqualTo("unprocessable");
    expect(200, api("POST", "/api/tokens/" + grant.getString("token_id") + "/release", userBody(user)));
    expect(409, activateWithKey(user, key));
    expect(400, activateWithKey(user, "x".repeat(256)));
  }

  @Test
  @Order(4)
  @DisplayName("the pool's errors: 400, 401, 403, 404 and 409, the live stream's too")
  void poolErrors() {
    expect(400, api("GET", "/api/tokens?state=bogus", null));
    expect(400, call("POST", "/api/tokens/activate", "{not json", "Authorization", "Bearer " + admin));
    expect(404, api("GET", "/api/tokens/" + UUID.randomUUID(), null));
    String token = expect(200, api("POST", "/api/tokens/activate", userBody(UUID.randomUUID().toString())))
        .getString("token_id");
    expect(409, api("POST", "/api/tokens/" + token + "/release", userBody(UUID.randomUUID().toString())));
    expect(401, call("GET", "/api/tokens", null));
    expect(401, call("GET", "/api/tokens", null, "Authorization", "Bearer not-a-live-token"));
    JsonObject reader = register("reader", "tokens:read");
    String readToken = accessToken(reader.getString("clientId"), reader.getString("clientSecret"), null);
    expect(403, as(readToken, "POST", "/api/tokens/activate", userBody(UUID.randomUUID().toString())));
    expect(401, call("GET", "/api/events", null));
    JsonObject writer = register("writer", "tokens:write");
    String writeToken = accessToken(writer.getString("clientId"), writer.getString("clientSecret"), null);
    expect(403, as(writeToken, "GET", "/api/events", null));
  }

  // ---- named pools

  private Http.Response createPool(JsonObject body) {
    return api("POST", "/api/pools", body);
  }

  private static JsonObject poolBody(String name, int size, String leaseTtl) {
    return new JsonObject().put("name", name).put("size", size).put("lease_ttl", leaseTtl);
  }

  private static String message(JsonObject error) {
    return error.getString("message");
  }

  /** An activation in a pool with a {@code Prefer} header. */
  private Http.Response activatePreferring(String pool, String user, String prefer) {
    return call("POST", "/api/pools/" + pool + "/tokens/activate", userBody(user).encode(), "Authorization",
        "Bearer " + admin, "Content-Type", "application/json", "Prefer", prefer);
  }

  @Test
  @Order(5)
  @DisplayName("named pools: create, list, read, change and delete; each per-pool token endpoint, revoke, and their errors")
  void pools() {
    String path = "/api/pools/reports";
    Http.Response made = createPool(poolBody("reports", 2, "PT2M").put("max_hold", "PT2M").put("max_leases_per_user", 1));
    JsonObject pool = expect(201, made);
    assertThat(made.header("Location")).isEqualTo(path);
    assertThat(pool.getString("overflow")).isEqualTo("evict_oldest");
    assertThat(pool.getValue("max_wait")).isNull();
    assertThat(pool.getString("max_hold")).isEqualTo("PT2M");
    assertThat(pool.getInteger("max_leases_per_user")).isEqualTo(1);
    assertThat(pool.getInteger("available")).isEqualTo(2);

    assertThat(message(expect(409, createPool(poolBody("reports", 1, "PT1M"))))).isEqualTo("Pool reports already exists.");
    assertThat(message(expect(409, createPool(poolBody("default", 1, "PT1M"))))).isEqualTo("Pool default already exists.");
    assertThat(message(expect(400, createPool(poolBody("Not a name", 1, "PT1M")))))
        .isEqualTo("Invalid name. Must match [a-z0-9][a-z0-9_-]{0,62}.");
    assertThat(message(expect(400, createPool(new JsonObject().put("name", "sizeless")))))
        .isEqualTo("Missing required parameter: size");
    assertThat(message(expect(400, createPool(poolBody("colours", 1, "PT1M").put("colour", "red")))))
        .isEqualTo("Unknown field: colour");
    assertThat(message(expect(400, createPool(poolBody("hasty", 1, "PT1M").put("max_wait", "PT5S")))))
        .isEqualTo("max_wait applies only when overflow is 'wait'.");
    expect(400, createPool(poolBody("brief", 1, "PT0.5S")));
    expect(400, call("POST", "/api/pools", "{not json", "Authorization", "Bearer " + admin));
    JsonObject reader = register("pool reader", "tokens:read");
    String readToken = accessToken(reader.getString("clientId"), reader.getString("clientSecret"), null);
    expect(403, as(readToken, "POST", "/api/pools", poolBody("readers", 1, "PT1M")));
    expect(401, call("GET", "/api/pools", null));

    JsonObject page = expect(200, as(readToken, "GET", "/api/pools", null));
    assertThat(page.getJsonArray("pools").stream().map(p -> ((JsonObject) p).getString("name")))
        .containsExactly("default", "reports");
    assertThat(page.getLong("total")).isEqualTo(2);
    JsonObject second = expect(200, api("GET", "/api/pools?page=2&limit=1", null));
    assertThat(second.getJsonArray("pools").getJsonObject(0).getString("name")).isEqualTo("reports");
    assertThat(second.getLong("totalPages")).isEqualTo(2);
    expect(400, api("GET", "/api/pools?limit=0", null));
    expect(200, as(readToken, "GET", path, null));
    expect(200, api("GET", "/api/pools/default", null));
    assertThat(message(expect(404, api("GET", "/api/pools/nope", null)))).isEqualTo("Pool not found");
    expect(404, api("GET", "/api/pools/Not_A_Name", null));

    // Each token endpoint of the pool.
    String user = UUID.randomUUID().toString();
    JsonObject grant = expect(200, api("POST", path + "/tokens/activate", userBody(user)));
    String token = grant.getString("token_id");
    JsonObject lease = userBody(user).put("generation", grant.getLong("generation"));
    assertThat(message(expect(409, api("POST", path + "/tokens/activate", userBody(user)))))
        .isEqualTo("User already holds 1 tokens in pool reports.");
    expect(200, api("GET", path + "/tokens", null));
    assertThat(expect(200, api("GET", path + "/tokens?state=active", null)).getJsonArray("tokens")).hasSize(1);
    expect(400, api("GET", path + "/tokens?state=bogus", null));
    expect(200, api("GET", path + "/tokens/" + token, null));
    String seedToken = expect(200, api("GET", "/api/tokens", null)).getJsonArray("tokens").getJsonObject(0)
        .getString("token_id");
    assertThat(message(expect(404, api("GET", path + "/tokens/" + seedToken, null)))).isEqualTo("Token not found");
    expect(400, api("GET", path + "/tokens/not-a-uuid", null));
    // max_hold equals lease_ttl: the lease already ends at its cap.
    assertThat(message(expect(409, api("POST", path + "/tokens/" + token + "/renew", lease))))
        .isEqualTo("Lease reached its maximum hold time.");
    JsonObject uncapped = expect(200, api("PATCH", path, new JsonObject().putNull("max_hold")));
    assertThat(uncapped.getValue("max_hold")).isNull();
    assertThat(uncapped.getInteger("max_leases_per_user")).isEqualTo(1);
    expect(200, api("POST", path + "/tokens/" + token + "/renew", lease));
    expect(400, api("POST", path + "/tokens/" + token + "/renew", new JsonObject()));
    expect(200, api("GET", path + "/tokens/" + token + "/usages", null));
    expect(404, api("GET", path + "/tokens/" + UUID.randomUUID() + "/usages", null));
    expect(200, api("POST", path + "/tokens/" + token + "/release", lease));
    expect(409, api("POST", path + "/tokens/" + token + "/release", lease));
    expect(400, api("POST", path + "/tokens/" + token + "/release", new JsonObject()));

    // Revocation: the holder hears "revoked".
    JsonObject again = expect(200, api("POST", path + "/tokens/activate", userBody(user)));
    String revokedToken = again.getString("token_id");
    JsonObject revokedLease = userBody(user).put("generation", again.getLong("generation"));
    JsonObject revoked = expect(200, api("POST", path + "/tokens/" + revokedToken + "/revoke", null));
    assertThat(revoked.getString("state")).isEqualTo("available");
    assertThat(revoked.getLong("generation")).isEqualTo(again.getLong("generation"));
    assertThat(message(expect(409, api("POST", path + "/tokens/" + revokedToken + "/release", revokedLease))))
        .isEqualTo("Token was revoked.");
    assertThat(message(expect(409, api("POST", path + "/tokens/" + revokedToken + "/renew", revokedLease))))
        .isEqualTo("Token was revoked.");
    assertThat(message(expect(409, api("POST", path + "/tokens/" + revokedToken + "/revoke", null))))
        .isEqualTo("Token is not active.");
    expect(404, api("POST", path + "/tokens/" + UUID.randomUUID() + "/revoke", null));
    expect(400, api("POST", path + "/tokens/not-a-uuid/revoke", null));
    expect(403, as(readToken, "POST", path + "/tokens/" + revokedToken + "/revoke", null));

    // A user's history names the pools, and can keep one.
    JsonObject history = expect(200, api("GET", "/api/users/" + user + "/usages?pool=reports", null));
    assertThat(history.getJsonArray("usages").stream().map(u -> ((JsonObject) u).getString("pool"))).containsOnly("reports");
    assertThat(history.getJsonArray("usages").stream().map(u -> ((JsonObject) u).getString("end_reason")))
        .containsExactly("revoked", "released");
    assertThat(expect(200, api("GET", "/api/users/" + user + "/usages?pool=default", null)).getJsonArray("usages"))
        .isEmpty();
    assertThat(message(expect(400, api("GET", "/api/users/" + user + "/usages?pool=Not!", null))))
        .isEqualTo("Invalid pool. Must be a pool name: [a-z0-9][a-z0-9_-]{0,62}.");

    // Every per-pool endpoint of a pool that does not exist.
    String unknown = "/api/pools/nope/tokens";
    assertThat(message(expect(404, api("POST", unknown + "/activate", userBody(user))))).isEqualTo("Pool not found");
    expect(404, api("GET", unknown, null));
    expect(404, api("DELETE", unknown + "/active", null));
    expect(404, api("GET", unknown + "/" + token, null));
    expect(404, api("GET", unknown + "/" + token + "/usages", null));
    expect(404, api("POST", unknown + "/" + token + "/release", lease));
    expect(404, api("POST", unknown + "/" + token + "/renew", lease));
    expect(404, api("POST", unknown + "/" + token + "/revoke", null));
    expect(404, api("PATCH", "/api/pools/nope", new JsonObject().put("size", 3)));
    expect(404, api("DELETE", "/api/pools/nope", null));

    // Changes: grow, refuse when full, and what cannot be changed.
    JsonObject grown = expect(200, api("PATCH", path, new JsonObject().put("size", 3).put("overflow", "reject")));
    assertThat(grown.getInteger("size")).isEqualTo(3);
    assertThat(grown.getString("overflow")).isEqualTo("reject");
    assertThat(message(expect(400, api("PATCH", path, new JsonObject().put("size", 1)))))
        .isEqualTo("Invalid size. A pool can only grow: it has 3 tokens.");
    assertThat(message(expect(400, api("PATCH", path, new JsonObject())))).startsWith("Nothing to change.");
    assertThat(message(expect(400, api("PATCH", path, new JsonObject().put("name", "renamed")))))
        .isEqualTo("Unknown field: name");
    assertThat(message(expect(409, api("PATCH", "/api/pools/default", new JsonObject().put("size", 10)))))
        .isEqualTo("The pool default is configured by the TOKENS_POOL_* settings; it cannot be changed or deleted here.");
    expect(403, as(readToken, "PATCH", path, new JsonObject().put("size", 4)));
    for (int i = 0; i < 3; i++) {
      expect(200, api("POST", path + "/tokens/activate", userBody(UUID.randomUUID().toString())));
    }
    Http.Response full = api("POST", path + "/tokens/activate", userBody(UUID.randomUUID().toString()));
    assertThat(message(expect(409, full))).isEqualTo("No token available in pool reports.");
    assertThat(Integer.parseInt(full.header("Retry-After"))).isPositive();

    JsonObject stats = expect(200, api("GET", path + "/stats", null));
    assertThat(stats.getInteger("active")).isEqualTo(3);
    assertThat(stats.getJsonObject("counters").getLong("revoked")).isEqualTo(1);
    assertThat(stats.getJsonObject("counters").getLong("rejected")).isEqualTo(1);

    // Deletion: refused with active leases unless forced; default never.
    assertThat(message(expect(409, api("DELETE", path, null))))
        .isEqualTo("Pool reports has 3 active leases; delete with force=true to end them.");
    assertThat(message(expect(400, api("DELETE", path + "?force=maybe", null))))
        .isEqualTo("Invalid force. Must be 'true' or 'false'.");
    expect(409, api("DELETE", "/api/pools/default?force=true", null));
    expect(403, as(readToken, "DELETE", path + "?force=true", null));
    JsonObject deleted = expect(200, api("DELETE", path + "?force=true", null));
    assertThat(deleted).isEqualTo(new JsonObject().put("name", "reports").put("cleared_count", 3).put("status", "ok"));
    expect(404, api("GET", path, null));
    expect(404, api("GET", path + "/stats", null));
    assertThat(expect(200, api("GET", "/api/users/" + user + "/usages?pool=reports", null)).getJsonArray("usages"))
        .hasSize(2);

    expect(201, createPool(poolBody("scratch", 1, "PT1M")));
    expect(200, api("DELETE", "/api/pools/scratch/tokens/active", null));
    assertThat(expect(200, api("DELETE", "/api/pools/scratch?force=false", null)).getInteger("cleared_count")).isZero();
  }

  @Test
  @Order(6)
  @DisplayName("a pool that makes callers wait: Prefer: wait=0, a wait that runs out, one granted on release, too many waiting")
  void waitingPool() throws Exception {
    String path = "/api/pools/queue";
    JsonObject pool = expect(201, createPool(poolBody("queue", 1, "PT1M").put("overflow", "wait").put("max_wait", "PT5S")));
    assertThat(pool.getString("max_wait")).isEqualTo("PT5S");
    String holder = UUID.randomUUID().toString();
    JsonObject held = expect(200, api("POST", path + "/tokens/activate", userBody(holder)));

    Http.Response declined = activatePreferring("queue", UUID.randomUUID().toString(), "wait=0");
    assertThat(message(expect(409, declined))).isEqualTo("No token available in pool queue.");
    assertThat(Integer.parseInt(declined.header("Retry-After"))).isPositive();
    long start = System.nanoTime();
    assertThat(message(expect(409, activatePreferring("queue", UUID.randomUUID().toString(), "wait=1"))))
        .isEqualTo("No token available in pool queue.");
    assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(900_000_000L);

    String waiter = UUID.randomUUID().toString();
    CompletableFuture<Http.Response> waiting = CompletableFuture.supplyAsync(() -> http.request("POST",
        path + "/tokens/activate", userBody(waiter).encode(), "Authorization", "Bearer " + admin,
        "Content-Type", "application/json", "Prefer", "wait=20"));
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (expect(200, api("GET", path, null)).getInteger("waiting") == 0) {
      assertThat(System.nanoTime()).as("the activation waits").isLessThan(deadline);
      Thread.sleep(20);
    }
    Http.Response tooMany = activatePreferring("queue", UUID.randomUUID().toString(), "wait=5");
    assertThat(message(expect(503, tooMany))).isEqualTo("Too many activations are waiting for a token; try again shortly.");
    assertThat(waiting).isNotDone();
    expect(200, api("POST", path + "/tokens/" + held.getString("token_id") + "/release", userBody(holder)));
    Http.Response granted = waiting.get(10, TimeUnit.SECONDS);
    checked.add(contract.check("POST", path + "/tokens/activate", granted));
    JsonObject grant = expect(200, granted);
    assertThat(grant.getString("token_id")).isEqualTo(held.getString("token_id"));
    assertThat(grant.getString("user_id")).isEqualTo(waiter);

    JsonObject stats = expect(200, api("GET", path + "/stats", null));
    assertThat(stats.getInteger("waiting")).isZero();
    assertThat(stats.getJsonObject("counters").getLong("timed_out")).isEqualTo(1);
    assertThat(stats.getJsonObject("counters").getLong("rejected")).isEqualTo(1);
    assertThat(stats.getJsonObject("wait_ms").getLong("max")).isGreaterThanOrEqualTo(900);

    // The seed's pool evicts: a preference to wait changes nothing there.
    expect(200, call("POST", "/api/tokens/activate", userBody(UUID.randomUUID().toString()).encode(), "Authorization",
        "Bearer " + admin, "Content-Type", "application/json", "Prefer", "wait=0"));

    JsonObject rejecting = expect(200, api("PATCH", path, new JsonObject().put("overflow", "reject")));
    assertThat(rejecting.getValue("max_wait")).isNull();
    assertThat(message(expect(400, api("PATCH", path, new JsonObject().put("max_wait", "PT3S")))))
        .isEqualTo("max_wait applies only when overflow is 'wait'.");
    assertThat(expect(200, api("PATCH", path, new JsonObject().put("overflow", "wait"))).getString("max_wait"))
        .isEqualTo("PT10S");
    assertThat(expect(200, api("DELETE", path + "?force=true", null)).getInteger("cleared_count")).isEqualTo(1);
  }

  @Test
  @Order(7)
  @DisplayName("a pool's live changes: only its own, each naming the pool; 404 for a pool that does not exist")
  void poolEvents() {
    String path = "/api/pools/watched";
    expect(201, createPool(poolBody("watched", 1, "PT1M")));
    expect(200, stream(admin, path + "/events"));
    assertThat(message(expect(404, api("GET", "/api/pools/nope/events", null)))).isEqualTo("Pool not found");
    JsonObject writer = register("pool writer", "tokens:write");
    String writeToken = accessToken(writer.getString("clientId"), writer.getString("clientSecret"), null);
    expect(403, as(writeToken, "GET", path + "/events", null));

    JsonArray required = contract.raw().getJsonObject("components").getJsonObject("schemas")
        .getJsonObject("PoolChangeEvent").getJsonArray("required");
    try (EventStreamClient events = EventStreamClient.open(service.port(), path + "/events",
        "Authorization", "Bearer " + admin)) {
      assertThat(events.next(java.time.Duration.ofSeconds(10)).comments()).containsExactly("live changes of pool watched");
      long start = events.next(java.time.Duration.ofSeconds(10)).idNumber();
      String user = UUID.randomUUID().toString();
      expect(200, api("POST", "/api/tokens/activate", userBody(user)));
      JsonObject grant = expect(200, api("POST", path + "/tokens/activate", userBody(user)));
      expect(200, api("POST", path + "/tokens/" + grant.getString("token_id") + "/revoke", null));
      List<EventStreamClient.Frame> two = events.events(2, java.time.Duration.ofSeconds(10));
      assertThat(two).extracting(EventStreamClient.Frame::event).containsExactly("granted", "revoked");
      for (EventStreamClient.Frame frame : two) {
        JsonObject data = frame.json();
        assertThat(data.fieldNames()).containsExactlyInAnyOrderElementsOf(required.stream().map(String.class::cast).toList());
        assertThat(data.getString("pool")).isEqualTo("watched");
        assertThat(data.getString("token_id")).isEqualTo(grant.getString("token_id"));
        assertThat(data.getLong("id")).isEqualTo(frame.idNumber());
      }
      // The ids are the service's: the default pool's grant, which came first, took one that this stream skips.
      assertThat(two.get(0).idNumber()).isGreaterThan(start + 1);
    }
    expect(200, api("DELETE", path, null));
  }

  @Test
  @Order(8)
  @DisplayName("OAuth: an admin token, a client's token, introspection, revocation, and their errors")
  void oauthFlow() {
    expect(200, oauth("/oauth/token", "grant_type=client_credentials", ADMIN_ID, ADMIN_SECRET));
    JsonObject client = register("billing worker", "tokens:read", "tokens:write");
    String id = client.getString("clientId");
    String secret = client.getString("clientSecret");
    String token = accessToken(id, secret, "tokens:write");
    expect(200, as(token, "POST", "/api/tokens/activate", userBody(UUID.randomUUID().toString())));

    assertThat(expect(200, oauth("/oauth/introspect", "token=" + token, id, secret)).getBoolean("active")).isTrue();
    assertThat(expect(200, oauth("/oauth/revoke", "token=" + token, id, secret))).isEqualTo(new JsonObject());
    assertThat(expect(200, oauth("/oauth/introspect", "token=" + token, id, secret)).getBoolean("active")).isFalse();

    expect(401, oauth("/oauth/token", "grant_type=client_credentials", id, "wrong-secret"));
    expect(400, oauth("/oauth/token", "grant_type=password", id, secret));
    expect(400, oauth("/oauth/token", "grant_type=client_credentials&scope=admin", id, secret));
    expect(400, oauth("/oauth/revoke", "", id, secret));
    expect(401, call("POST", "/oauth/introspect", "token=" + token, "Content-Type", FORM));
  }

  @Test
  @Order(9)
  @DisplayName("M2M administration: register, list, read, the seed 003 listing, audit, new secret, delete, and errors")
  void m2m() {
    JsonObject client = register("billing worker", "tokens:read", "tokens:write");
    String id = client.getString("clientId");
    String token = accessToken(id, client.getString("clientSecret"), "tokens:read");
    expect(200, oauth("/oauth/revoke", "token=" + token, id, client.getString("clientSecret")));

    expect(200, api("GET", "/auth/m2m/clients", null));
    expect(200, api("GET", "/auth/m2m/clients?page=1&limit=20", null));
    expect(200, api("GET", "/auth/m2m/clients/" + id, null));
    JsonObject listing = expect(200, api("GET", "/auth/m2m/tokens?clientId=" + id + "&active=false&page=1&limit=20", null));
    assertThat(listing.getJsonArray("tokens")).hasSize(1);
    expect(200, api("GET", "/auth/m2m/tokens", null));
    expect(200, api("GET", "/auth/m2m/audit?event=M2M_TOKENS_LISTED", null));
    expect(200, api("GET", "/auth/m2m/audit", null));
    expect(200, api("POST", "/auth/m2m/clients/" + id + "/secret", null));
    expect(200, api("DELETE", "/auth/m2m/clients/" + id, null));

    expect(404, api("GET", "/auth/m2m/clients/" + id, null));
    expect(404, api("POST", "/auth/m2m/clients/no-such-client/secret", null));
    expect(409, api("DELETE", "/auth/m2m/clients/" + ADMIN_ID, null));
    expect(409, api("POST", "/auth/m2m/clients/" + ADMIN_ID + "/secret", null));
    expect(400, api("GET", "/auth/m2m/tokens?active=maybe", null));
    expect(400, api("GET", "/auth/m2m/audit?event=lower-case", null));
    expect(400, api("POST", "/auth/m2m/clients", new JsonObject().put("clientName", "x")));
    expect(401, call("GET", "/auth/m2m/clients", null));
    JsonObject reader = register("reader", "tokens:read");
    String readToken = accessToken(reader.getString("clientId"), reader.getString("clientSecret"), null);
    expect(403, as(readToken, "GET", "/auth/m2m/clients", null));
    expect(200, as(readToken, "GET", "/auth/m2m/tokens", null));
  }

  @Test
  @Order(10)
  @DisplayName("the credential vault: create, current, usage, rotate, history, list, read, re-encrypt, retire, and errors")
  void vault() {
    String expires = Instant.now().plus(2, ChronoUnit.HOURS).truncatedTo(ChronoUnit.SECONDS).toString();
    JsonObject created = expect(201, api("POST", "/api/credentials", new JsonObject()
        .put("service", "parkmobile").put("environment", "production")
        .put("value", "current-access-token").put("expires_at", expires)
        // A provider that refuses connections, so the rotation below fails at once (502).
        .put("refresh", new JsonObject().put("token_url", "http://127.0.0.1:1/oauth/token")
            .put("grant_type", "refresh_token").put("client_id", "our-client").put("client_secret", "secret")
            .put("refresh_token", "refresh-token"))));
    String id = created.getString("id");

    expect(200, api("GET", "/api/credentials/current?service=parkmobile&environment=production", null));
    expect(200, api("POST", "/api/credentials/" + id + "/usage",
        new JsonObject().put("response_time_ms", 120).put("success", true)));
    expect(502, api("POST", "/api/credentials/" + id + "/rotate", null));
    expect(200, api("GET", "/api/credentials/" + id + "/history", null));
    expect(200, api("GET", "/api/credentials?service=parkmobile&status=active&expiring_within=PT24H&page=1&limit=20",
        null));
    expect(200, api("GET", "/api/credentials", null));
    expect(200, api("GET", "/api/credentials/" + id, null));
    expect(200, api("POST", "/api/credentials/reencrypt", null));
    expect(200, api("POST", "/api/credentials/" + id + "/retire", null));
    expect(200, api("GET", "/api/credentials/" + id + "/history", null));

    expect(503, api("GET", "/api/credentials/current?service=parkmobile&environment=production", null));
    expect(404, api("GET", "/api/credentials/" + UUID.randomUUID(), null));
    expect(400, api("GET", "/api/credentials/current?service=parkmobile", null));
    String plain = expect(201, api("POST", "/api/credentials", new JsonObject().put("service", "plain")
        .put("environment", "staging").put("value", "v").put("expires_at", expires))).getString("id");
    expect(400, api("POST", "/api/credentials/" + plain + "/rotate", null));
    expect(401, call("GET", "/api/credentials", null));
  }

  @Test
  @Order(11)
  @DisplayName("operations: metrics need metrics:read (or admin); the probes and the OAuth metadata are open")
  void operations() {
    assertThat(expect(200, api("GET", "/metrics", null))).isEmpty();
    expect(401, call("GET", "/metrics", null));
    JsonObject reader = register("dashboards", "tokens:read");
    expect(403, as(accessToken(reader.getString("clientId"), reader.getString("clientSecret"), null), "GET", "/metrics", null));
    JsonObject scraper = register("prometheus", "metrics:read");
    Http.Response scraped = as(accessToken(scraper.getString("clientId"), scraper.getString("clientSecret"), null),
        "GET", "/metrics", null);
    expect(200, scraped);
    assertThat(scraped.raw()).contains("tokens_pool_size{pool=\"default\"}");
    JsonObject metadata = expect(200, call("GET", "/.well-known/oauth-authorization-server", null));
    assertThat(metadata.getString("token_endpoint")).isEqualTo(metadata.getString("issuer") + "/oauth/token");
    Http.Response jwks = call("GET", "/oauth/jwks", null);
    assertThat(jwks.status()).isEqualTo(200);
    assertThat(new JsonObject(jwks.raw()).getJsonArray("keys")).isEmpty(); // opaque tokens here
    expect(200, call("GET", "/health/live", null));
    expect(200, call("GET", "/health/ready", null));
  }

  @Test
  @Order(12)
  @DisplayName("the API reference: the document, the page and one of its files")
  void reference() {
    expect(200, call("GET", "/openapi.json", null));
    expect(200, call("GET", "/docs", null));
    expect(200, call("GET", "/docs/swagger-ui.css", null));
    expect(404, call("GET", "/docs/no-such-file.css", null));
  }

  @Test
  @Order(12)
  @DisplayName("the dashboard: the page and its files are open, though every call it makes needs a token")
  void dashboard() {
    Http.Response page = call("GET", "/dashboard", null);
    expect(200, page);
    assertThat(page.raw()).contains("<script type=\"module\" src=\"/dashboard/dashboard.js\"></script>");
    String policy = page.headers().firstValue("Content-Security-Policy").orElseThrow();
    assertThat(policy).contains("default-src 'none'", "script-src 'self'", "connect-src 'self'").doesNotContain("unsafe");
    assertThat(page.headers().firstValue("Cache-Control")).hasValue("no-cache");
    Http.Response script = call("GET", "/dashboard/dashboard.js", null);
    expect(200, script);
    assertThat(script.contentType()).startsWith("text/javascript");
    assertThat(script.headers().firstValue("Content-Security-Policy")).hasValue(policy);
    expect(200, call("GET", "/dashboard/dashboard.css", null));
    expect(200, call("GET", "/dashboard/icon.svg", null));
    expect(404, call("GET", "/dashboard/no-such-file.js", null));
  }

  @Test
  @Order(13)
  @DisplayName("every operation of the document was answered and checked above")
  void everyOperationChecked() {
    Set<String> answered = new TreeSet<>();
    checked.forEach(seen -> answered.add(seen.substring(0, seen.lastIndexOf(' '))));
    List<String> missing = new ArrayList<>(ApiContract.operations(contract.raw()).keySet());
    missing.removeAll(answered);
    assertThat(missing).as("operations no call above reached (checked: %s)", checked).isEmpty();
  }
}
