package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.tokenlease.support.Http.Response;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.LoggerFactory;

@DisplayName("M2M client credentials, bearer protection of the pool API, and the seed 003 listing")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class M2mAuthTest {
  static final String ADMIN_ID = "bootstrap-admin";
  static final String ADMIN_SECRET = "admin-secret-" + UUID.randomUUID();

  private String database;
  private RunningService service;
  private Http http;
  private M2mClient m2m;
  private String admin;

  @BeforeAll
  void start() throws Exception {
    database = TestDatabase.create();
    service = RunningService.start(database, new JsonObject()
        .put("TOKENS_AUTH_REQUIRED", true)
        .put("TOKENS_ADMIN_CLIENT_ID", ADMIN_ID)
        .put("TOKENS_ADMIN_CLIENT_SECRET", ADMIN_SECRET)
        .put("TOKENS_OAUTH_RATE_LIMIT_PER_SECOND", 10_000)
        .put("TOKENS_OAUTH_RATE_LIMIT_BURST", 10_000)
        .put("TOKENS_POOL_SIZE", 10));
    http = service.http();
    m2m = new M2mClient(http);
    admin = m2m.token(ADMIN_ID, ADMIN_SECRET, null);
  }

  @AfterAll
  void stop() {
    if (service != null) {
      service.close();
    }
    TestDatabase.drop(database);
  }

  private String tenant() {
    return "tenant-" + UUID.randomUUID().toString().substring(0, 8);
  }

  private static String activateBody() {
    return new JsonObject().put("user_id", UUID.randomUUID().toString()).encode();
  }

  @Test
  @DisplayName("register a client, get a token by Basic or form, use it, introspect it, revoke it: rejected at once")
  void wholeFlow() {
    JsonObject client = m2m.register(admin, "billing worker", tenant(), "tokens:read", "tokens:write");
    String id = client.getString("clientId");
    String secret = client.getString("clientSecret");
    assertThat(secret).hasSize(43);
    assertThat(client.getJsonArray("scopes")).containsExactly("tokens:read", "tokens:write");

    Response issued = m2m.tokenRequest(id, secret, "grant_type=client_credentials");
    assertThat(issued.status()).isEqualTo(200);
    assertThat(issued.headers().firstValue("cache-control")).hasValue("no-store");
    JsonObject body = issued.json();
    assertThat(body.fieldNames()).containsExactlyInAnyOrder("access_token", "token_type", "expires_in", "scope");
    assertThat(body.getString("token_type")).isEqualTo("Bearer");
    assertThat(body.getLong("expires_in")).isEqualTo(3600);
    assertThat(body.getString("scope")).isEqualTo("tokens:read tokens:write");
    String token = body.getString("access_token");
    assertThat(token).hasSize(43);

    Response byForm = http.request("POST", "/oauth/token",
        "grant_type=client_credentials&scope=tokens%3Aread&client_id=" + id + "&client_secret=" + secret,
        "Content-Type", M2mClient.FORM);
    assertThat(byForm.status()).isEqualTo(200);
    assertThat(byForm.json().getString("scope")).isEqualTo("tokens:read");

    assertThat(m2m.send("POST", "/api/tokens/activate", token, activateBody()).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", token).status()).isEqualTo(200);

    JsonObject introspection = m2m.introspect(id, secret, token).json();
    assertThat(introspection.getBoolean("active")).isTrue();
    assertThat(introspection.getString("client_id")).isEqualTo(id);
    assertThat(introspection.getString("scope")).isEqualTo("tokens:read tokens:write");
    assertThat(introspection.getString("token_type")).isEqualTo("Bearer");
    assertThat(introspection.getLong("exp") - introspection.getLong("iat")).isEqualTo(3600);

    Response revoked = m2m.revoke(id, secret, token);
    assertThat(revoked.status()).isEqualTo(200);
    Response after = m2m.get("/api/tokens", token);
    assertThat(after.status()).isEqualTo(401);
    assertThat(after.json().getString("status")).isEqualTo("unauthorized");
    assertThat(m2m.introspect(id, secret, token).json()).isEqualTo(new JsonObject().put("active", false));
    assertThat(m2m.revoke(id, secret, token).status()).isEqualTo(200);
    assertThat(m2m.revoke(id, secret, "never-issued-token").status()).isEqualTo(200);
  }

  @Test
  @DisplayName("token endpoint errors follow RFC 6749 §5.2")
  void tokenEndpointErrors() {
    JsonObject client = m2m.register(admin, "errors", tenant(), "tokens:read");
    String id = client.getString("clientId");
    String secret = client.getString("clientSecret");
    String grant = "grant_type=client_credentials";

    Response wrongSecret = m2m.tokenRequest(id, secret + "x", grant);
    assertOAuthError(wrongSecret, 401, "invalid_client");
    assertThat(wrongSecret.headers().firstValue("www-authenticate")).hasValueSatisfying(v -> assertThat(v).startsWith("Basic"));
    assertOAuthError(m2m.tokenRequest("m2m_unknown", secret, grant), 401, "invalid_client");
    assertOAuthError(http.request("POST", "/oauth/token", grant, "Content-Type", M2mClient.FORM), 401, "invalid_client");
    assertOAuthError(http.request("POST", "/oauth/token", grant + "&client_id=" + id, "Content-Type", M2mClient.FORM),
        401, "invalid_client");
    assertOAuthError(http.request("POST", "/oauth/token", grant, "Content-Type", M2mClient.FORM,
        "Authorization", "Basic !!!"), 401, "invalid_client");
    assertOAuthError(http.request("POST", "/oauth/token", grant + "&client_id=" + id + "&client_secret=" + secret,
        "Content-Type", M2mClient.FORM, "Authorization", M2mClient.basic(id, secret)), 400, "invalid_request");
    assertOAuthError(m2m.tokenRequest(id, secret, ""), 400, "invalid_request");
    assertOAuthError(m2m.tokenRequest(id, secret, grant + "&grant_type=client_credentials"), 400, "invalid_request");
    assertOAuthError(m2m.tokenRequest(id, secret, "grant_type=password"), 400, "unsupported_grant_type");
    assertOAuthError(m2m.tokenRequest(id, secret, grant + "&scope=admin"), 400, "invalid_scope");
    assertOAuthError(m2m.tokenRequest(id, secret, grant + "&scope=tokens%3Aread++x"), 400, "invalid_scope");
    assertOAuthError(m2m.tokenRequest(id, secret, grant + "&scope=%zz"), 400, "invalid_request");
    assertOAuthError(http.request("POST", "/oauth/token", "{\"grant_type\":\"client_credentials\"}",
        "Content-Type", "application/json", "Authorization", M2mClient.basic(id, secret)), 400, "invalid_request");
    Response get = http.get("/oauth/token");
    assertThat(get.status()).isEqualTo(405);
    assertThat(get.json().getString("error")).isEqualTo("method_not_allowed");
  }

  private static void assertOAuthError(Response response, int status, String error) {
    assertThat(response.status()).as(response.toString()).isEqualTo(status);
    assertThat(response.contentType()).startsWith("application/json");
    assertThat(response.headers().firstValue("cache-control")).hasValue("no-store");
    assertThat(response.json().getString("error")).isEqualTo(error);
    assertThat(response.json().getString("error_description")).isNotBlank();
    assertThat(response.json().fieldNames()).containsExactlyInAnyOrder("error", "error_description");
  }

  @Test
  @DisplayName("with TOKENS_AUTH_REQUIRED the pool API needs a live bearer token with the right scope")
  void poolApiScopes() {
    JsonObject client = m2m.register(admin, "scoped", tenant(), "tokens:read", "tokens:write", "credentials:use");
    String reader = m2m.token(client.getString("clientId"), client.getString("clientSecret"), "tokens:read");
    String writer = m2m.token(client.getString("clientId"), client.getString("clientSecret"), "tokens:write");

    Response none = http.post("/api/tokens/activate", activateBody());
    assertThat(none.status()).isEqualTo(401);
    assertThat(none.json().getString("status")).isEqualTo("unauthorized");
    assertThat(none.json().getString("message")).contains("Missing bearer token");
    assertThat(none.headers().firstValue("www-authenticate")).hasValue("Bearer realm=\"token-service\"");
    Response garbage = m2m.send("POST", "/api/tokens/activate", "not-a-token", activateBody());
    assertThat(garbage.status()).isEqualTo(401);
    assertThat(garbage.headers().firstValue("www-authenticate").orElse("")).contains("invalid_token");
    assertThat(http.request("GET", "/api/tokens", null, "Authorization", "Basic abc").status()).isEqualTo(401);

    Response forbidden = m2m.send("POST", "/api/tokens/activate", reader, activateBody());
    assertThat(forbidden.status()).isEqualTo(403);
    assertThat(forbidden.json()).isEqualTo(new JsonObject().put("status", "forbidden")
        .put("message", "This operation needs the scope 'tokens:write'."));
    JsonObject lease = m2m.send("POST", "/api/tokens/activate", writer, activateBody()).json();
    String tokenId = lease.getString("token_id");
    assertThat(m2m.get("/api/tokens/" + tokenId, writer).status()).isEqualTo(403);
    assertThat(m2m.get("/api/tokens/" + tokenId, reader).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens/" + tokenId + "/usages", reader).status()).isEqualTo(200);
    assertThat(m2m.get("/api/users/" + lease.getString("user_id") + "/usages", reader).status()).isEqualTo(200);
    assertThat(m2m.send("POST", "/api/tokens/" + tokenId + "/renew", writer,
        new JsonObject().put("user_id", lease.getString("user_id")).encode()).status()).isEqualTo(200);
    assertThat(m2m.send("DELETE", "/api/tokens/active", writer, null).status()).isEqualTo(403);
    assertThat(m2m.send("DELETE", "/api/tokens/active", admin, null).status()).isEqualTo(200);
    // An admin client may take a narrower token, which then has only that scope.
    String narrowed = m2m.token(ADMIN_ID, ADMIN_SECRET, "tokens:read");
    assertThat(m2m.get("/api/tokens", narrowed).status()).isEqualTo(200);
    assertThat(m2m.send("DELETE", "/api/tokens/active", narrowed, null).status()).isEqualTo(403);
    assertThat(http.get("/api/health").status()).isEqualTo(200);

    // The vault: management needs admin, the calling side credentials:use.
    assertThat(m2m.get("/api/credentials", reader).status()).isEqualTo(403);
    assertThat(m2m.get("/api/credentials", admin).status()).isNotIn(401, 403);
    String user = m2m.token(client.getString("clientId"), client.getString("clientSecret"), "credentials:use");
    assertThat(m2m.get("/api/credentials/current?service=x&environment=production", reader).status()).isEqualTo(403);
    assertThat(m2m.get("/api/credentials/current?service=x&environment=production", user).status()).isNotIn(401, 403);
  }

  @Test
  @DisplayName("the listing has seed 003's shape, pages, filters, and shows each tenant only its own tokens")
  void listingAndTenantIsolation() {
    String tenantA = tenant();
    String tenantB = tenant();
    JsonObject a = m2m.register(admin, "Client A", tenantA, "tokens:read");
    JsonObject b = m2m.register(admin, "Client B", tenantB, "tokens:read");
    List<String> aTokens = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      aTokens.add(m2m.token(a.getString("clientId"), a.getString("clientSecret"), null));
    }
    String bToken = m2m.token(b.getString("clientId"), b.getString("clientSecret"), null);
    m2m.revoke(a.getString("clientId"), a.getString("clientSecret"), aTokens.get(0));

    Response listed = m2m.get("/auth/m2m/tokens", aTokens.get(1));
    assertThat(listed.status()).isEqualTo(200);
    JsonObject page = listed.json();
    assertThat(page.fieldNames()).containsExactlyInAnyOrder("tokens", "total", "page", "totalPages");
    assertThat(page.getLong("total")).isEqualTo(3);
    assertThat(page.getInteger("page")).isEqualTo(1);
    assertThat(page.getInteger("totalPages")).isEqualTo(1);
    JsonArray tokens = page.getJsonArray("tokens");
    assertThat(tokens).hasSize(3);
    for (Object item : tokens) {
      JsonObject token = (JsonObject) item;
      assertThat(token.fieldNames()).containsExactlyInAnyOrder("id", "clientId", "clientName", "tenantId", "scopes",
          "createdAt", "expiresAt", "active");
      assertThat(token.getString("tenantId")).isEqualTo(tenantA);
      assertThat(token.getString("clientName")).isEqualTo("Client A");
      assertThat(token.getString("createdAt")).matches("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z");
    }
    assertThat(tokens.stream().filter(t -> !((JsonObject) t).getBoolean("active")).count()).isEqualTo(1);
    for (String value : aTokens) {
      assertThat(listed.raw()).doesNotContain(value);
    }

    // Tenant B sees only B, even when it filters by A's client.
    JsonObject bView = m2m.get("/auth/m2m/tokens", bToken).json();
    assertThat(bView.getLong("total")).isEqualTo(1);
    assertThat(bView.getJsonArray("tokens").getJsonObject(0).getString("tenantId")).isEqualTo(tenantB);
    assertThat(m2m.get("/auth/m2m/tokens?clientId=" + a.getString("clientId"), bToken).json().getLong("total")).isZero();

    // Filters and pages.
    assertThat(m2m.get("/auth/m2m/tokens?active=true", aTokens.get(1)).json().getLong("total")).isEqualTo(2);
    assertThat(m2m.get("/auth/m2m/tokens?active=false", aTokens.get(1)).json().getLong("total")).isEqualTo(1);
    JsonObject second = m2m.get("/auth/m2m/tokens?limit=2&page=2", aTokens.get(1)).json();
    assertThat(second.getJsonArray("tokens")).hasSize(1);
    assertThat(second.getInteger("totalPages")).isEqualTo(2);
    JsonObject adminView = m2m.get("/auth/m2m/tokens?clientId=" + b.getString("clientId"), admin).json();
    assertThat(adminView.getLong("total")).isEqualTo(1);

    // Every listing is audited, with filters, count, page, caller and tenant.
    JsonObject audit = m2m.get("/auth/m2m/audit?event=M2M_TOKENS_LISTED&limit=100", admin).json();
    JsonObject filtered = audit.getJsonArray("events").stream().map(JsonObject.class::cast)
        .filter(e -> b.getString("clientId").equals(e.getJsonObject("details").getJsonObject("filters").getString("clientId"))
            && a.getString("clientId").equals(e.getString("actorClientId")) == false
            && ADMIN_ID.equals(e.getString("actorClientId")))
        .findFirst().orElseThrow();
    assertThat(filtered.getString("severity")).isEqualTo("low");
    assertThat(filtered.getJsonObject("details").getInteger("resultCount")).isEqualTo(1);
    assertThat(filtered.getJsonObject("details").getInteger("page")).isEqualTo(1);
    assertThat(filtered.getString("tenantId")).isEqualTo("system");
  }

  @Test
  @DisplayName("bad listing queries get 400 in seed 003's error shape; missing or weak tokens 401/403")
  void listingErrors() {
    JsonObject reader = m2m.register(admin, "reader", tenant(), "tokens:read");
    String token = m2m.token(reader.getString("clientId"), reader.getString("clientSecret"), null);
    for (String query : List.of("page=0", "page=abc", "page=-1", "limit=0", "limit=101", "limit=x", "active=yes",
        "active=TRUE", "clientId=bad%20id", "page=1&page=2", "sort=desc", "page=99999999999")) {
      Response response = m2m.get("/auth/m2m/tokens?" + query, token);
      assertThat(response.status()).as(query).isEqualTo(400);
      JsonObject body = response.json();
      assertThat(body.getString("error")).isEqualTo("TOKEN_LIST_ERROR");
      assertThat(body.getString("message")).isEqualTo("Failed to retrieve tokens");
      assertThat(body.getJsonObject("details").getString("reason")).isNotBlank();
    }
    assertThat(m2m.get("/auth/m2m/tokens?clientId=bad%20id", token).json().getJsonObject("details").getString("reason"))
        .isEqualTo("Invalid client ID");

    Response missing = http.get("/auth/m2m/tokens");
    assertThat(missing.status()).isEqualTo(401);
    assertThat(missing.json().getString("error")).isEqualTo("UNAUTHORIZED");
    assertThat(missing.json().getJsonObject("details").getString("reason")).isEqualTo("Missing bearer token");
    JsonObject writer = m2m.register(admin, "writer", tenant(), "tokens:write");
    Response weak = m2m.get("/auth/m2m/tokens", m2m.token(writer.getString("clientId"), writer.getString("clientSecret"), null));
    assertThat(weak.status()).isEqualTo(403);
    assertThat(weak.json().getString("error")).isEqualTo("FORBIDDEN");
    assertThat(m2m.get("/auth/m2m/audit", token).status()).isEqualTo(403);
    assertThat(m2m.get("/auth/m2m/clients", token).status()).isEqualTo(403);
  }

  @Test
  @DisplayName("admins list, read, rotate and delete clients; deleting revokes the client's tokens at once")
  void clientAdministration() {
    Response registered = m2m.send("POST", "/auth/m2m/clients", admin, new JsonObject().put("clientName", "rotating")
        .put("tenantId", tenant()).put("scopes", new JsonArray().add("tokens:read")).encode());
    assertThat(registered.status()).isEqualTo(201);
    // Answers carrying a client secret are never cached.
    assertThat(registered.headers().firstValue("cache-control")).hasValue("no-store");
    JsonObject client = registered.json();
    String id = client.getString("clientId");
    String oldSecret = client.getString("clientSecret");
    String token = m2m.token(id, oldSecret, null);

    JsonObject read = m2m.get("/auth/m2m/clients/" + id, admin).json();
    assertThat(read.getString("clientName")).isEqualTo("rotating");
    assertThat(read.containsKey("clientSecret")).isFalse();
    JsonObject list = m2m.get("/auth/m2m/clients?limit=100", admin).json();
    assertThat(list.getJsonArray("clients").stream().map(c -> ((JsonObject) c).getString("clientId"))).contains(id, ADMIN_ID);
    assertThat(list.encode()).doesNotContain(oldSecret);

    Response rotated = m2m.send("POST", "/auth/m2m/clients/" + id + "/secret", admin, null);
    assertThat(rotated.headers().firstValue("cache-control")).hasValue("no-store");
    String newSecret = rotated.json().getString("clientSecret");
    assertThat(newSecret).isNotEqualTo(oldSecret).hasSize(43);
    assertThat(m2m.tokenRequest(id, oldSecret, "grant_type=client_credentials").status()).isEqualTo(401);
    String fresh = m2m.token(id, newSecret, null);

    Response deleted = m2m.send("DELETE", "/auth/m2m/clients/" + id, admin, null);
    assertThat(deleted.status()).isEqualTo(200);
    assertThat(deleted.json().getInteger("revokedTokens")).isEqualTo(2);
    assertThat(m2m.get("/api/tokens", token).status()).isEqualTo(401);
    assertThat(m2m.get("/api/tokens", fresh).status()).isEqualTo(401);
    assertThat(m2m.tokenRequest(id, newSecret, "grant_type=client_credentials").status()).isEqualTo(401);
    Response gone = m2m.get("/auth/m2m/clients/" + id, admin);
    assertThat(gone.status()).isEqualTo(404);
    assertThat(gone.json().getString("error")).isEqualTo("NOT_FOUND");
    assertThat(m2m.send("DELETE", "/auth/m2m/clients/" + id, admin, null).status()).isEqualTo(404);
    assertThat(m2m.send("DELETE", "/auth/m2m/clients/" + ADMIN_ID, admin, null).status()).isEqualTo(409);
    // Deleted clients' tokens stay listed, inactive.
    JsonObject listed = m2m.get("/auth/m2m/tokens?clientId=" + id, admin).json();
    assertThat(listed.getLong("total")).isEqualTo(2);
    assertThat(listed.getJsonArray("tokens").stream().noneMatch(t -> ((JsonObject) t).getBoolean("active"))).isTrue();
  }

  @Test
  @DisplayName("client registration refuses bad input with 400 and changes nothing")
  void registrationValidation() {
    long before = m2m.get("/auth/m2m/clients", admin).json().getLong("total");
    for (String body : List.of("", "not json", "[]", "{\"tenantId\":\"t\",\"scopes\":[\"a\"]}",
        "{\"clientName\":\"x\",\"tenantId\":\"bad tenant\",\"scopes\":[\"a\"]}",
        "{\"clientName\":\"x\",\"tenantId\":\"t\",\"scopes\":[]}",
        "{\"clientName\":\"x\",\"tenantId\":\"t\",\"scopes\":\"admin\"}",
        "{\"clientName\":\"x\",\"tenantId\":\"t\",\"scopes\":[\"has space\"]}",
        "{\"clientName\":\"x\",\"tenantId\":\"t\",\"scopes\":[\"a\"],\"extra\":1}",
        "{\"clientName\":7,\"tenantId\":\"t\",\"scopes\":[\"a\"]}",
        "{\"clientName\":\"   \",\"tenantId\":\"t\",\"scopes\":[\"a\"]}")) {
      Response response = m2m.send("POST", "/auth/m2m/clients", admin, body);
      assertThat(response.status()).as(body).isEqualTo(400);
      assertThat(response.json().getString("error")).isEqualTo("INVALID_REQUEST");
      assertThat(response.json().getJsonObject("details").getString("reason")).isNotBlank();
    }
    assertThat(m2m.get("/auth/m2m/clients", admin).json().getLong("total")).isEqualTo(before);
  }

  @Test
  @DisplayName("introspection and revocation need an authenticated client and respect ownership and tenants")
  void introspectionAndRevocationRules() {
    String tenantA = tenant();
    JsonObject a = m2m.register(admin, "A", tenantA, "tokens:read");
    JsonObject a2 = m2m.register(admin, "A2", tenantA, "tokens:read");
    JsonObject b = m2m.register(admin, "B", tenant(), "tokens:read");
    String aToken = m2m.token(a.getString("clientId"), a.getString("clientSecret"), null);

    assertThat(m2m.introspect(a2.getString("clientId"), a2.getString("clientSecret"), aToken).json().getBoolean("active")).isTrue();
    assertThat(m2m.introspect(b.getString("clientId"), b.getString("clientSecret"), aToken).json())
        .isEqualTo(new JsonObject().put("active", false));
    assertOAuthError(http.request("POST", "/oauth/introspect", "token=" + aToken, "Content-Type", M2mClient.FORM),
        401, "invalid_client");
    assertOAuthError(m2m.introspect(b.getString("clientId"), "wrong", aToken), 401, "invalid_client");
    assertOAuthError(http.request("POST", "/oauth/revoke", "", "Content-Type", M2mClient.FORM,
        "Authorization", M2mClient.basic(a.getString("clientId"), a.getString("clientSecret"))), 400, "invalid_request");

    // Another client's revocation is accepted (RFC 7009 reveals nothing) but does not revoke.
    assertThat(m2m.revoke(b.getString("clientId"), b.getString("clientSecret"), aToken).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", aToken).status()).isEqualTo(200);
    // An admin may revoke any token.
    assertThat(m2m.revoke(ADMIN_ID, ADMIN_SECRET, aToken).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", aToken).status()).isEqualTo(401);
  }

  @Test
  @DisplayName("no client secret or access token value appears in the log output")
  void noSecretsInLogs() {
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ListAppender<ILoggingEvent> logs = new ListAppender<>();
    logs.start();
    root.addAppender(logs);
    try {
      JsonObject client = m2m.register(admin, "logged", tenant(), "tokens:read", "tokens:write");
      String id = client.getString("clientId");
      String secret = client.getString("clientSecret");
      String token = m2m.token(id, secret, null);
      m2m.tokenRequest(id, secret + "wrong", "grant_type=client_credentials");
      m2m.tokenRequest(secret, "", "grant_type=client_credentials"); // the secret sent as the client id
      m2m.send("POST", "/api/tokens/activate", token, activateBody());
      m2m.get("/auth/m2m/tokens", token);
      m2m.introspect(id, secret, token);
      String rotated = m2m.send("POST", "/auth/m2m/clients/" + id + "/secret", admin, null).json().getString("clientSecret");
      m2m.revoke(id, rotated, token);
      m2m.send("DELETE", "/auth/m2m/clients/" + id, admin, null);
      // An access line is written when its answer has been sent, so the service may still be
      // appending: read a copy taken under the appender's lock (appends hold it too).
      List<ILoggingEvent> seen;
      synchronized (logs) {
        seen = new java.util.ArrayList<>(logs.list);
      }
      assertThat(seen).isNotEmpty();
      for (ILoggingEvent event : seen) {
        String line = event.getFormattedMessage() + (event.getThrowableProxy() == null ? "" : event.getThrowableProxy().getMessage());
        for (String value : List.of(secret, rotated, token, admin, ADMIN_SECRET)) {
          assertThat(line).doesNotContain(value);
        }
      }
    } finally {
      root.detachAppender(logs);
    }
  }

  @Test
  @DisplayName("hostile input: form and header edge cases, reserved tenant, unprintable names, invented scopes")
  void hostileInput() {
    JsonObject client = m2m.register(admin, "edge", tenant(), "tokens:read");
    String id = client.getString("clientId");
    String secret = client.getString("clientSecret");
    String grant = "grant_type=client_credentials";
    // ';' is part of a scope, not a separator; parameters beyond the limit are refused, not dropped.
    assertOAuthError(m2m.tokenRequest(id, secret, grant + "&scope=tokens:read;admin"), 400, "invalid_scope");
    StringBuilder many = new StringBuilder(grant);
    for (int i = 0; i < 40; i++) {
      many.append("&p").append(i).append("=1");
    }
    assertOAuthError(m2m.tokenRequest(id, secret, many + "&scope=admin"), 400, "invalid_request");
    // An admin may narrow its token to the service's scopes, not invent others.
    assertOAuthError(m2m.tokenRequest(ADMIN_ID, ADMIN_SECRET, grant + "&scope=x0"), 400, "invalid_scope");

    // One Authorization header only.
    String token = m2m.token(id, secret, null);
    assertThat(http.request("GET", "/api/tokens", null, "Authorization", "Bearer " + token,
        "Authorization", "Bearer " + admin).status()).isEqualTo(400);
    assertThat(http.request("GET", "/auth/m2m/tokens", null, "Authorization", "Bearer " + token,
        "Authorization", "Bearer " + admin).json().getString("error")).isEqualTo("INVALID_REQUEST");
    assertOAuthError(http.request("POST", "/oauth/token", grant, "Content-Type", M2mClient.FORM,
        "Authorization", M2mClient.basic(id, secret), "Authorization", M2mClient.basic(ADMIN_ID, ADMIN_SECRET)),
        400, "invalid_request");
    // A non-Bearer scheme is a missing token, not an invalid one (RFC 6750 §3.1).
    Response basic = http.request("GET", "/api/tokens", null, "Authorization", "Basic Zm9vOmJhcg==");
    assertThat(basic.headers().firstValue("www-authenticate")).hasValue("Bearer realm=\"token-service\"");

    // Reserved tenant, unprintable names.
    for (String body : List.of("{\"clientName\":\"x\",\"tenantId\":\"system\",\"scopes\":[\"tokens:read\"]}",
        "{\"clientName\":\"\\ud800\",\"tenantId\":\"t\",\"scopes\":[\"a\"]}",
        "{\"clientName\":\"\\u202egnp.exe\",\"tenantId\":\"t\",\"scopes\":[\"a\"]}")) {
      assertThat(m2m.send("POST", "/auth/m2m/clients", admin, body).status()).as(body).isEqualTo(400);
    }
  }

  @Test
  @DisplayName("router errors have each API's own shape: seed 003 under /auth/m2m, RFC 6749 under /oauth")
  void errorShapes() {
    Response missing = m2m.get("/auth/m2m/nope", admin);
    assertThat(missing.status()).isEqualTo(404);
    assertThat(missing.json().getString("error")).isEqualTo("NOT_FOUND");
    assertThat(missing.json().getJsonObject("details").getString("reason")).isNotBlank();
    Response method = m2m.send("PATCH", "/auth/m2m/tokens", admin, null);
    assertThat(method.status()).isEqualTo(405);
    assertThat(method.json().getString("error")).isEqualTo("METHOD_NOT_ALLOWED");
    Response onClient = m2m.send("PUT", "/auth/m2m/clients/m2m_abc", admin, null);
    assertThat(onClient.status()).isEqualTo(405);
    assertThat(onClient.header("Allow")).isEqualTo("GET, DELETE");
    Response query = http.raw("GET /auth/m2m/tokens?clientId=%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin
        + "\r\nConnection: close\r\n\r\n");
    assertThat(query.status()).isEqualTo(400);
    assertThat(query.json().getJsonObject("details").getString("reason")).isNotBlank();
    String body = "grant_type=client_credentials";
    assertOAuthError(http.raw("POST /oauth/token?x=%zz HTTP/1.1\r\nHost: x\r\nContent-Type: " + M2mClient.FORM
        + "\r\nContent-Length: " + body.length() + "\r\nConnection: close\r\n\r\n" + body), 400, "invalid_request");
    assertOAuthError(http.request("POST", "/oauth/token", "a=" + "b".repeat(70_000), "Content-Type", M2mClient.FORM),
        413, "invalid_request");
    Response get = http.get("/oauth/token");
    assertThat(get.status()).isEqualTo(405);
    assertThat(get.json().getString("error")).isEqualTo("method_not_allowed");
  }

  @Test
  @DisplayName("a client deleted while tokens are being issued keeps no usable token")
  void deleteRacesWithIssue() throws Exception {
    JsonObject client = m2m.register(admin, "racing", tenant(), "tokens:read");
    String id = client.getString("clientId");
    String secret = client.getString("clientSecret");
    java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(16);
    try {
      List<java.util.concurrent.Future<Response>> issues = new ArrayList<>();
      for (int i = 0; i < 30; i++) {
        issues.add(pool.submit(() -> m2m.tokenRequest(id, secret, "grant_type=client_credentials")));
        if (i == 10) {
          issues.add(pool.submit(() -> m2m.send("DELETE", "/auth/m2m/clients/" + id, admin, null)));
        }
      }
      List<String> tokens = new ArrayList<>();
      for (java.util.concurrent.Future<Response> issue : issues) {
        Response response = issue.get();
        if (response.status() == 200 && response.json().containsKey("access_token")) {
          tokens.add(response.json().getString("access_token"));
        }
      }
      for (String token : tokens) {
        assertThat(m2m.get("/api/tokens", token).status()).isEqualTo(401);
      }
      assertThat(m2m.get("/auth/m2m/tokens?active=true&clientId=" + id, admin).json().getLong("total")).isZero();
    } finally {
      pool.shutdownNow();
    }
  }
}
