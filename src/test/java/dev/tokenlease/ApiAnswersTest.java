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
        .put("TOKENS_POOL_SIZE", 5));
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

  @Test
  @Order(5)
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
  @Order(6)
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
  @Order(7)
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
  @Order(8)
  @DisplayName("the API reference: the document, the page and one of its files")
  void reference() {
    expect(200, call("GET", "/openapi.json", null));
    expect(200, call("GET", "/docs", null));
    expect(200, call("GET", "/docs/swagger-ui.css", null));
    expect(404, call("GET", "/docs/no-such-file.css", null));
  }

  @Test
  @Order(9)
  @DisplayName("every operation of the document was answered and checked above")
  void everyOperationChecked() {
    Set<String> answered = new TreeSet<>();
    checked.forEach(seen -> answered.add(seen.substring(0, seen.lastIndexOf(' '))));
    List<String> missing = new ArrayList<>(ApiContract.operations(contract.raw()).keySet());
    missing.removeAll(answered);
    assertThat(missing).as("operations no call above reached (checked: %s)", checked).isEmpty();
  }
}
