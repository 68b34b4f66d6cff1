package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Http.Response;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The seed's HTTP contract, black-box, against the running service and a real PostgreSQL. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("HTTP API")
class TokenApiTest {
  private static final Pattern TIMESTAMP = Pattern.compile("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z");
  private static final String NIL = "00000000-0000-0000-0000-000000000000";

  private String database;
  private RunningService service;
  private Http http;
  private Response initialList;

  @BeforeAll
  void start() throws Exception {
    database = TestDatabase.create();
    service = RunningService.start(database);
    http = service.http();
    initialList = http.get("/api/tokens");
  }

  @AfterAll
  void stop() {
    if (service != null) {
      service.close();
    }
    TestDatabase.drop(database);
  }

  @BeforeEach
  void clearLeases() {
    assertThat(http.delete("/api/tokens/active").status()).isEqualTo(200);
  }

  private static String newUser() {
    return UUID.randomUUID().toString();
  }

  private static String userBody(String userId) {
    return new JsonObject().put("user_id", userId).encode();
  }

  private static void assertError(Response response, int status, String code, String message) {
    assertThat(response.status()).as(response.toString()).isEqualTo(status);
    assertThat(response.contentType()).startsWith("application/json");
    JsonObject body = response.json();
    assertThat(body.fieldNames()).containsExactlyInAnyOrder("status", "message");
    assertThat(body.getString("status")).isEqualTo(code);
    if (message != null) {
      assertThat(body.getString("message")).isEqualTo(message);
    }
  }

  @Test
  @DisplayName("a fresh service serves 100 tokens, all available, with the contract's fields")
  void freshPool() {
    assertThat(initialList.status()).isEqualTo(200);
    assertThat(initialList.contentType()).startsWith("application/json");
    JsonArray tokens = initialList.array("tokens");
    assertThat(tokens).hasSize(100);
    for (Object item : tokens) {
      JsonObject token = (JsonObject) item;
      assertThat(token.fieldNames())
          .containsExactly("token_id", "state", "current_user_id", "activated_at", "released_at");
      assertThat(UUID.fromString(token.getString("token_id")).toString()).isEqualTo(token.getString("token_id"));
      assertThat(token.getString("state")).isEqualTo("available");
      assertThat(token.getValue("current_user_id")).isNull();
      assertThat(token.getValue("activated_at")).isNull();
      assertThat(token.getValue("released_at")).isNull();
    }
  }

  @Nested
  @DisplayName("POST /api/tokens/activate")
  class Activate {
    @Test
    @DisplayName("leases a token to the user and shows it active with a usage count")
    void activates() {
      String user = newUser();
      Response response = http.post("/api/tokens/activate", userBody(user));
      assertThat(response.status()).isEqualTo(200);
      assertThat(response.contentType()).startsWith("application/json");
      JsonObject body = response.json();
      assertThat(body.fieldNames()).containsExactly("token_id", "user_id", "generation", "expires_at");
      assertThat(body.getString("user_id")).isEqualTo(user);
      assertThat(body.getLong("generation")).isPositive();
      assertThat(body.getString("expires_at")).matches(TIMESTAMP);
      assertThat(body.containsKey("evicted")).as("a token was free").isFalse();
      String tokenId = body.getString("token_id");

      JsonObject token = http.get("/api/tokens/" + tokenId).json();
      assertThat(token.fieldNames()).containsExactly(
          "token_id", "state", "current_user_id", "activated_at", "released_at", "usage_count");
      assertThat(token.getString("token_id")).isEqualTo(tokenId);
      assertThat(token.getString("state")).isEqualTo("active");
      assertThat(token.getString("current_user_id")).isEqualTo(user);
      assertThat(token.getString("activated_at")).matches(TIMESTAMP);
      assertThat(token.getValue("released_at")).isNull();
      assertThat(token.getLong("usage_count")).isPositive();
    }

    @Test
    @DisplayName("on a full pool, evicts the oldest lease and names it; its holder's release and renew hear it was evicted")
    void evictionWithNotice() {
      String evictedUser = newUser();
      JsonObject oldest = http.activate(evictedUser);
      String tokenId = oldest.getString("token_id");
      for (int i = 1; i < 100; i++) {
        assertThat(http.activate(newUser()).containsKey("evicted")).isFalse();
      }
      String taker = newUser();
      JsonObject grant = http.activate(taker);
      assertThat(grant.getString("token_id")).isEqualTo(tokenId);
      JsonObject evicted = grant.getJsonObject("evicted");
      assertThat(evicted.fieldNames()).containsExactly("token_id", "user_id", "generation", "held_ms");
      assertThat(evicted.getString("token_id")).isEqualTo(tokenId);
      assertThat(evicted.getString("user_id")).isEqualTo(evictedUser);
      assertThat(evicted.getLong("generation")).isEqualTo(oldest.getLong("generation"));
      assertThat(evicted.getLong("held_ms")).isNotNegative().isLessThan(120_000);

      for (String action : List.of("release", "renew")) {
        assertError(http.post("/api/tokens/" + tokenId + "/" + action, userBody(evictedUser)), 409, "conflict",
            "Token was evicted.");
        assertError(http.post("/api/tokens/" + tokenId + "/" + action, new JsonObject().put("user_id", evictedUser)
            .put("generation", oldest.getLong("generation")).encode()), 409, "conflict", "Token was evicted.");
      }
      assertThat(http.get("/api/tokens/" + tokenId).json().getString("current_user_id")).isEqualTo(taker);
      JsonObject usage = http.get("/api/users/" + evictedUser + "/usages").array("usages").getJsonObject(0);
      assertThat(usage.getString("end_reason")).isEqualTo("evicted");
    }

    @Test
    @DisplayName("accepts a user id in any letter case and answers in canonical lower case")
    void upperCase() {
      String user = newUser();
      JsonObject body = http.post("/api/tokens/activate", userBody(user.toUpperCase())).json();
      assertThat(body.getString("user_id")).isEqualTo(user);
    }

    @Test
    @DisplayName("counts every activation of a token")
    void usageCount() {
      String user = newUser();
      String tokenId = http.activate(user).getString("token_id");
      long before = http.get("/api/tokens/" + tokenId).json().getLong("usage_count");
      http.post("/api/tokens/" + tokenId + "/release", userBody(user));
      // Release it and use every other token so that this one comes round again.
      String again = null;
      for (int i = 0; i < 100 && !tokenId.equals(again); i++) {
        again = http.activate(newUser()).getString("token_id");
      }
      assertThat(again).isEqualTo(tokenId);
      assertThat(http.get("/api/tokens/" + tokenId).json().getLong("usage_count")).isEqualTo(before + 1);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
        "{\"user_id\": \"invalid-uuid\"}", "{\"user_id\": 42}", "{\"user_id\": {}}", "{\"user_id\": []}",
        "{\"user_id\": true}", "{\"user_id\": \"550e8400e29b41d4a716446655440000\"}",
        "{\"user_id\": \"550e8400-e29b-41d4-a716-44665544000g\"}",
        "{\"user_id\": \" 550e8400-e29b-41d4-a716-446655440000\"}",
        "{\"user_id\": \"{550e8400-e29b-41d4-a716-446655440000}\"}"})
    @DisplayName("refuses a user id that is not a UUID string")
    void invalidUserId(String body) {
      assertError(http.post("/api/tokens/activate", body), 400, "bad_request",
          "Invalid user_id format. Must be a valid UUID.");
    }

    @ParameterizedTest(name = "body <{0}>")
    @ValueSource(strings = {"{}", "{\"user_id\": null}", "{\"user_id\": \"\"}", "{\"userId\": \"x\"}", ""})
    @DisplayName("refuses a missing user id")
    void missingUserId(String body) {
      assertError(http.post("/api/tokens/activate", body), 400, "bad_request", "Missing required parameter: user_id");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"{bad", "{\"user_id\": \"550e8400-e29b-41d4-a716-446655440000\"", "nope", "{\"a\":1}}"})
    @DisplayName("refuses a body that is not JSON")
    void malformedJson(String body) {
      assertError(http.post("/api/tokens/activate", body), 400, "bad_request", "Request body must be valid JSON.");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"[]", "[{\"user_id\": \"550e8400-e29b-41d4-a716-446655440000\"}]", "\"text\"", "12", "null"})
    @DisplayName("refuses JSON that is not an object")
    void notAnObject(String body) {
      Response response = http.post("/api/tokens/activate", body);
      assertThat(response.status()).isEqualTo(400);
      assertThat(response.json().getString("status")).isEqualTo("bad_request");
    }

    @Test
    @DisplayName("a refused activation changes nothing")
    void refusedChangesNothing() {
      String before = http.get("/api/tokens").raw();
      for (String body : List.of("{bad", "{}", "{\"user_id\": 1}", "[]")) {
        http.post("/api/tokens/activate", body);
      }
      assertThat(http.get("/api/tokens").raw()).isEqualTo(before);
    }
  }

  @Nested
  @DisplayName("POST /api/tokens/activate with an Idempotency-Key")
  class IdempotentActivate {
    private Response activate(String user, String key) {
      return http.request("POST", "/api/tokens/activate", userBody(user),
          "Content-Type", "application/json", "Idempotency-Key", key);
    }

    private String newKey() {
      return "lease-" + UUID.randomUUID();
    }

    @Test
    @DisplayName("a retry by the same user answers the same lease, renewed or not, and writes no new usage")
    void sameUser() {
      String user = newUser();
      String key = newKey();
      Response first = activate(user, key);
      assertThat(first.status()).isEqualTo(200);
      JsonObject grant = first.json();
      String tokenId = grant.getString("token_id");
      long uses = http.get("/api/tokens/" + tokenId).json().getLong("usage_count");
      Response retry = activate(user, key);
      assertThat(retry.status()).isEqualTo(200);
      assertThat(retry.json()).isEqualTo(grant);
      assertThat(http.get("/api/tokens/" + tokenId).json().getLong("usage_count")).isEqualTo(uses);
      assertThat(http.get("/api/users/" + user + "/usages").array("usages")).hasSize(1);
      assertThat(http.get("/api/tokens?state=active").array("tokens")).hasSize(1);

      JsonObject renewed = http.post("/api/tokens/" + tokenId + "/renew", userBody(user)).json();
      JsonObject afterRenewal = activate(user, key).json();
      assertThat(afterRenewal.getString("expires_at")).isEqualTo(renewed.getString("expires_at"));
      assertThat(afterRenewal.getLong("generation")).isEqualTo(grant.getLong("generation"));
      assertThat(afterRenewal.getString("token_id")).isEqualTo(tokenId);
    }

    @Test
    @DisplayName("the same key from another user is 422, and after the key's lease ended the retry is 409")
    void otherUserAndEndedLease() {
      String user = newUser();
      String key = newKey();
      JsonObject grant = activate(user, key).json();
      assertError(activate(newUser(), key), 422, "unprocessable", "Idempotency-Key was used by another user.");
      http.post("/api/tokens/" + grant.getString("token_id") + "/release", userBody(user));
      assertError(activate(user, key), 409, "conflict", "The lease for this Idempotency-Key has ended.");
      assertError(activate(newUser(), key), 422, "unprocessable", "Idempotency-Key was used by another user.");
      assertThat(http.get("/api/tokens?state=active").array("tokens")).isEmpty();
      assertThat(http.get("/api/users/" + user + "/usages").array("usages")).hasSize(1);
    }

    @ParameterizedTest(name = "<{0}>")
    @ValueSource(strings = {"", "with space", "tab\there"})
    @DisplayName("refuses a key that is not 1 to 255 visible ASCII characters, before anything changes")
    void invalidKey(String key) {
      String before = http.get("/api/tokens?state=active").raw();
      String body = userBody(newUser());
      Response response = http.raw("POST /api/tokens/activate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
          + "\r\nIdempotency-Key: " + key + "\r\nContent-Length: " + body.length() + "\r\nConnection: close\r\n\r\n"
          + body);
      assertError(response, 400, "bad_request", "Invalid Idempotency-Key header. Must be 1 to 255 visible ASCII characters.");
      assertThat(http.get("/api/tokens?state=active").raw()).isEqualTo(before);
    }

    @Test
    @DisplayName("refuses a key longer than 255 characters or not ASCII, and two keys; takes 255")
    void keyLengthAndCount() {
      String user = newUser();
      assertError(activate(user, "k".repeat(256)), 400, "bad_request",
          "Invalid Idempotency-Key header. Must be 1 to 255 visible ASCII characters.");
      String body = userBody(user);
      byte[] utf8 = ("POST /api/tokens/activate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
          + "\r\nIdempotency-Key: clé\r\nContent-Length: " + body.length() + "\r\nConnection: close\r\n\r\n" + body)
          .getBytes(java.nio.charset.StandardCharsets.UTF_8);
      assertError(http.raw(new String(utf8, java.nio.charset.StandardCharsets.ISO_8859_1)), 400, "bad_request",
          "Invalid Idempotency-Key header. Must be 1 to 255 visible ASCII characters.");
      assertError(http.request("POST", "/api/tokens/activate", body, "Content-Type", "application/json",
          "Idempotency-Key", newKey(), "Idempotency-Key", newKey()), 400, "bad_request",
          "Send at most one Idempotency-Key header.");
      assertThat(activate(user, "~".repeat(255)).status()).isEqualTo(200);
    }

    @Test
    @DisplayName("only the header counts: an idempotency_key field in the body is ignored like any other")
    void bodyFieldIgnored() {
      String body = new JsonObject().put("user_id", newUser()).put("idempotency_key", newKey()).encode();
      String first = http.post("/api/tokens/activate", body).json().getString("token_id");
      String second = http.post("/api/tokens/activate", body).json().getString("token_id");
      assertThat(second).isNotEqualTo(first);
    }
  }

  @Nested
  @DisplayName("GET /api/tokens")
  class ListTokens {
    @Test
    @DisplayName("filters by state and keeps a stable order")
    void filters() {
      String user = newUser();
      String tokenId = http.activate(user).getString("token_id");
      JsonArray all = http.get("/api/tokens").array("tokens");
      JsonArray allExplicit = http.get("/api/tokens?state=all").array("tokens");
      JsonArray active = http.get("/api/tokens?state=active").array("tokens");
      JsonArray available = http.get("/api/tokens?state=available").array("tokens");
      assertThat(all).hasSize(100);
      assertThat(allExplicit).isEqualTo(all);
      assertThat(active).hasSize(1);
      assertThat(active.getJsonObject(0).getString("token_id")).isEqualTo(tokenId);
      assertThat(active.getJsonObject(0).getString("current_user_id")).isEqualTo(user);
      assertThat(available).hasSize(99);
      assertThat(ids(all)).isEqualTo(ids(initialList.array("tokens")));
      List<String> merged = new ArrayList<>(ids(all));
      merged.retainAll(ids(available));
      assertThat(merged).isEqualTo(ids(available));
    }

    @ParameterizedTest(name = "state={0}")
    @ValueSource(strings = {"expired", "ACTIVE", "used", "1"})
    @DisplayName("refuses an unknown state filter")
    void invalidFilter(String state) {
      assertError(http.get("/api/tokens?state=" + state), 400, "bad_request",
          "Invalid state filter. Must be 'available', 'active', or 'all'.");
    }

    private List<String> ids(JsonArray tokens) {
      List<String> ids = new ArrayList<>();
      tokens.forEach(t -> ids.add(((JsonObject) t).getString("token_id")));
      return ids;
    }
  }

  @Nested
  @DisplayName("GET /api/tokens/:token_id")
  class GetToken {
    @Test
    @DisplayName("answers 404 with the contract's body for an unknown token")
    void unknown() {
      assertError(http.get("/api/tokens/" + NIL), 404, "not_found", "Token not found");
    }

    @Test
    @DisplayName("answers 400 for a token id that is not a UUID")
    void invalid() {
      assertError(http.get("/api/tokens/not-a-uuid"), 400, "bad_request",
          "Invalid token_id format. Must be a valid UUID.");
    }

    @Test
    @DisplayName("accepts an upper-case token id")
    void upperCase() {
      String tokenId = initialList.array("tokens").getJsonObject(0).getString("token_id");
      assertThat(http.get("/api/tokens/" + tokenId.toUpperCase()).json().getString("token_id")).isEqualTo(tokenId);
    }
  }

  @Nested
  @DisplayName("GET /api/tokens/:token_id/usages")
  class TokenUsages {
    @Test
    @DisplayName("lists the token's users newest first, open usage with a null end")
    void history() {
      String first = newUser();
      String tokenId = http.activate(first).getString("token_id");
      assertThat(http.post("/api/tokens/" + tokenId + "/release", userBody(first)).status()).isEqualTo(200);
      String second = null;
      for (int i = 0; i < 100 && second == null; i++) {
        String user = newUser();
        if (tokenId.equals(http.activate(user).getString("token_id"))) {
          second = user;
        }
      }
      assertThat(second).as("the released token comes round again").isNotNull();
      Response response = http.get("/api/tokens/" + tokenId + "/usages");
      assertThat(response.status()).isEqualTo(200);
      JsonObject body = response.json();
      assertThat(body.fieldNames()).containsExactly("token_id", "usages");
      assertThat(body.getString("token_id")).isEqualTo(tokenId);
      JsonArray usages = body.getJsonArray("usages");
      JsonObject newest = usages.getJsonObject(0);
      JsonObject previous = usages.getJsonObject(1);
      assertThat(newest.fieldNames()).containsExactly("user_id", "started_at", "ended_at");
      assertThat(newest.getString("user_id")).isEqualTo(second);
      assertThat(newest.getValue("ended_at")).isNull();
      assertThat(previous.getString("user_id")).isEqualTo(first);
      assertThat(previous.getString("ended_at")).matches(TIMESTAMP);
      assertThat(newest.getString("started_at").compareTo(previous.getString("started_at"))).isGreaterThanOrEqualTo(0);
    }

    @Test
    @DisplayName("answers 404 for an unknown token and 400 for a malformed id")
    void errors() {
      assertError(http.get("/api/tokens/" + NIL + "/usages"), 404, "not_found", "Token not found");
      assertError(http.get("/api/tokens/xyz/usages"), 400, "bad_request", "Invalid token_id format. Must be a valid UUID.");
    }
  }

  @Nested
  @DisplayName("GET /api/pools/:pool/stats")
  class Stats {
    private JsonObject stats() {
      Response response = http.get("/api/pools/default/stats");
      assertThat(response.status()).isEqualTo(200);
      return response.json();
    }

    @Test
    @DisplayName("counts what committed since start and shows the pool's occupancy now")
    void counts() throws Exception {
      JsonObject before = stats().getJsonObject("counters");
      String user = newUser();
      JsonObject grant = http.activate(user);
      assertThat(http.post("/api/tokens/" + grant.getString("token_id") + "/release", userBody(user)).status())
          .isEqualTo(200);
      http.activate(newUser());
      JsonObject after = dev.tokenlease.support.Eventually.until("the changes counted", java.time.Duration.ofSeconds(5),
          this::stats, s -> s.getJsonObject("counters").getLong("granted") >= before.getLong("granted") + 2
              && s.getJsonObject("counters").getLong("released") >= before.getLong("released") + 1);
      assertThat(after.getString("pool")).isEqualTo("default");
      assertThat(after.getInteger("size")).isEqualTo(100);
      assertThat(after.getInteger("active") + after.getInteger("available")).isEqualTo(100);
      assertThat(after.getInteger("waiting")).isZero();
      assertThat(after.getJsonObject("counters").fieldNames()).containsExactlyInAnyOrder(
          "granted", "released", "expired", "evicted", "revoked", "cleared", "rejected", "timed_out");
      assertThat(after.getJsonObject("hold_ms").getLong("max")).isGreaterThanOrEqualTo(0);
      assertThat(after.getJsonObject("hold_ms").fieldNames()).containsExactlyInAnyOrder("p50", "p90", "p99", "max");
    }

    @Test
    @DisplayName("an unknown pool is 404 Pool not found")
    void unknownPool() {
      Response response = http.get("/api/pools/other/stats");
      assertThat(response.status()).isEqualTo(404);
      assertThat(response.json()).isEqualTo(new JsonObject().put("status", "not_found").put("message", "Pool not found"));
    }
  }

  @Nested
  @DisplayName("DELETE /api/tokens/active")
  class Clear {
    @Test
    @DisplayName("ends every active lease and reports how many")
    void clears() {
      List<String> tokens = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        tokens.add(http.activate(newUser()).getString("token_id"));
      }
      Response response = http.delete("/api/tokens/active");
      assertThat(response.status()).isEqualTo(200);
      assertThat(response.json()).isEqualTo(new JsonObject().put("cleared_count", 5).put("status", "ok"));
      assertThat(http.get("/api/tokens?state=active").array("tokens")).isEmpty();
      for (String tokenId : tokens) {
        JsonObject token = http.get("/api/tokens/" + tokenId).json();
        assertThat(token.getString("state")).isEqualTo("available");
        assertThat(token.getString("released_at")).matches(TIMESTAMP);
        assertThat(http.get("/api/tokens/" + tokenId + "/usages").array("usages").getJsonObject(0)
            .getString("ended_at")).matches(TIMESTAMP);
      }
      assertThat(http.delete("/api/tokens/active").json().getInteger("cleared_count")).isZero();
    }
  }

  @Nested
  @DisplayName("release and renew")
  class ReleaseRenew {
    @Test
    @DisplayName("the holder releases early and gets the token object back")
    void release() {
      String user = newUser();
      JsonObject grant = http.activate(user);
      String tokenId = grant.getString("token_id");
      Response response = http.post("/api/tokens/" + tokenId + "/release",
          new JsonObject().put("user_id", user).put("generation", grant.getLong("generation")).encode());
      assertThat(response.status()).isEqualTo(200);
      JsonObject token = response.json();
      assertThat(token.getString("token_id")).isEqualTo(tokenId);
      assertThat(token.getString("state")).isEqualTo("available");
      assertThat(token.getValue("current_user_id")).isNull();
      assertThat(token.getString("released_at")).matches(TIMESTAMP);
      assertThat(token.getLong("generation")).isEqualTo(grant.getLong("generation"));
      assertError(http.post("/api/tokens/" + tokenId + "/release", userBody(user)), 409, "conflict", "Token is not active.");
    }

    @Test
    @DisplayName("the holder renews for one more TTL")
    void renew() {
      String user = newUser();
      JsonObject grant = http.activate(user);
      String tokenId = grant.getString("token_id");
      Response response = http.post("/api/tokens/" + tokenId + "/renew", userBody(user));
      assertThat(response.status()).isEqualTo(200);
      JsonObject token = response.json();
      assertThat(token.getString("state")).isEqualTo("active");
      assertThat(token.getString("current_user_id")).isEqualTo(user);
      assertThat(token.getString("expires_at").compareTo(grant.getString("expires_at"))).isGreaterThanOrEqualTo(0);
      assertThat(token.getLong("generation")).isEqualTo(grant.getLong("generation"));
    }

    @Test
    @DisplayName("another user, or a stale generation, gets 409 and changes nothing")
    void conflicts() {
      String user = newUser();
      JsonObject grant = http.activate(user);
      String tokenId = grant.getString("token_id");
      for (String action : List.of("release", "renew")) {
        assertError(http.post("/api/tokens/" + tokenId + "/" + action, userBody(newUser())), 409, "conflict",
            "Token is held by another user.");
        Response stale = http.post("/api/tokens/" + tokenId + "/" + action,
            new JsonObject().put("user_id", user).put("generation", grant.getLong("generation") + 1000).encode());
        assertThat(stale.status()).isEqualTo(409);
        assertThat(stale.json().getString("message")).contains("Stale generation");
      }
      assertThat(http.get("/api/tokens/" + tokenId).json().getString("current_user_id")).isEqualTo(user);
    }

    @Test
    @DisplayName("bad input is refused with 400, an unknown token with 404")
    void badInput() {
      String user = newUser();
      String tokenId = http.activate(user).getString("token_id");
      assertError(http.post("/api/tokens/" + tokenId + "/release", "{}"), 400, "bad_request",
          "Missing required parameter: user_id");
      assertError(http.post("/api/tokens/" + tokenId + "/renew",
          new JsonObject().put("user_id", user).put("generation", "one").encode()), 400, "bad_request",
          "Invalid generation. Must be a positive integer.");
      assertError(http.post("/api/tokens/nope/release", userBody(user)), 400, "bad_request",
          "Invalid token_id format. Must be a valid UUID.");
      assertError(http.post("/api/tokens/" + NIL + "/renew", userBody(user)), 404, "not_found", "Token not found");
    }
  }

  @Nested
  @DisplayName("GET /api/users/:user_id/usages")
  class UserUsages {
    @Test
    @DisplayName("lists the user's usages newest first with end reasons, page by page")
    void pages() {
      String user = newUser();
      List<String> tokens = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        tokens.add(0, http.activate(user).getString("token_id"));
      }
      http.post("/api/tokens/" + tokens.get(0) + "/release", userBody(user));

      JsonObject first = http.get("/api/users/" + user + "/usages?limit=2").json();
      assertThat(first.fieldNames()).containsExactly("user_id", "usages", "next_cursor");
      JsonArray page = first.getJsonArray("usages");
      assertThat(page).hasSize(2);
      JsonObject newest = page.getJsonObject(0);
      assertThat(newest.fieldNames()).containsExactly("token_id", "started_at", "ended_at", "end_reason", "pool");
      assertThat(newest.getString("pool")).isEqualTo("default");
      assertThat(newest.getString("token_id")).isEqualTo(tokens.get(0));
      assertThat(newest.getString("end_reason")).isEqualTo("released");
      assertThat(page.getJsonObject(1).getValue("end_reason")).isNull();
      assertThat(page.getJsonObject(1).getValue("ended_at")).isNull();

      List<String> seen = new ArrayList<>();
      String cursor = null;
      do {
        JsonObject body = http.get("/api/users/" + user + "/usages?limit=2" + (cursor == null ? "" : "&cursor=" + cursor)).json();
        body.getJsonArray("usages").forEach(u -> seen.add(((JsonObject) u).getString("token_id")));
        cursor = body.getString("next_cursor");
      } while (cursor != null);
      assertThat(seen).isEqualTo(tokens);

      JsonObject all = http.get("/api/users/" + user + "/usages").json();
      assertThat(all.getJsonArray("usages")).hasSize(5);
      assertThat(all.getValue("next_cursor")).isNull();
      assertThat(http.get("/api/users/" + newUser() + "/usages").json().getJsonArray("usages")).isEmpty();
    }

    @Test
    @DisplayName("filters by start time with from (inclusive) and to (exclusive)")
    void timeRange() {
      String user = newUser();
      http.activate(user);
      assertThat(http.get("/api/users/" + user + "/usages?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z")
          .json().getJsonArray("usages")).hasSize(1);
      assertThat(http.get("/api/users/" + user + "/usages?from=2999-01-01T00:00:00Z")
          .json().getJsonArray("usages")).isEmpty();
      assertThat(http.get("/api/users/" + user + "/usages?to=2000-01-01T00:00:00%2B01:00")
          .json().getJsonArray("usages")).isEmpty();
    }

    @Test
    @DisplayName("refuses bad parameters with 400")
    void badParameters() {
      String user = newUser();
      assertError(http.get("/api/users/nope/usages"), 400, "bad_request", "Invalid user_id format. Must be a valid UUID.");
      for (String limit : List.of("0", "501", "ten", "1.5", "-1")) {
        assertError(http.get("/api/users/" + user + "/usages?limit=" + limit), 400, "bad_request",
            "Invalid limit. Must be an integer from 1 to 500.");
      }
      assertError(http.get("/api/users/" + user + "/usages?from=yesterday"), 400, "bad_request",
          "Invalid from. Must be an ISO-8601 instant such as 2025-12-19T15:12:02Z.");
      assertError(http.get("/api/users/" + user + "/usages?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z"),
          400, "bad_request", "Invalid range: 'from' must be before 'to'.");
      assertThat(http.get("/api/users/" + user + "/usages?cursor=!!!").json().getString("message"))
          .startsWith("Invalid cursor.");
    }
  }

  @Nested
  @DisplayName("every other request")
  class Other {
    @Test
    @DisplayName("an unknown path gets 404 JSON")
    void unknownPath() {
      assertError(http.get("/api/nothing"), 404, "not_found", null);
      assertError(http.get("/"), 404, "not_found", null);
    }

    @Test
    @DisplayName("a wrong method gets 405 JSON with Allow")
    void wrongMethod() {
      Response response = http.send("PUT", "/api/tokens", "{}");
      assertError(response, 405, "method_not_allowed", null);
      assertThat(response.headers().firstValue("allow")).hasValue("GET");
      Response activate = http.get("/api/tokens/activate");
      // GET /api/tokens/activate reads as a token id, which is not a UUID.
      assertThat(activate.status()).isEqualTo(400);
      Response deleteOne = http.delete("/api/tokens/" + NIL);
      assertError(deleteOne, 405, "method_not_allowed", null);
      assertThat(deleteOne.headers().firstValue("allow")).hasValue("GET");
      Response active = http.send("POST", "/api/tokens/active", "{}");
      assertThat(active.headers().firstValue("allow")).hasValue("DELETE, GET");
    }

    @Test
    @DisplayName("a body over 64 KiB gets 413 JSON")
    void tooLarge() {
      String big = "{\"user_id\": \"" + "a".repeat(70_000) + "\"}";
      assertError(http.post("/api/tokens/activate", big), 413, "payload_too_large", null);
    }

    @Test
    @DisplayName("malformed percent-encoding gets 400 JSON")
    void badEncoding() {
      for (String target : List.of("/api/tokens/%zz", "/api/tokens?state=%zz", "/api/tokens/%E0%A4%A/usages")) {
        Response response = http.raw("GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        assertError(response, 400, "bad_request", null);
      }
      assertError(http.raw("GARBAGE\r\n\r\n"), 400, "bad_request", null);
    }

    @Test
    @DisplayName("form and multipart content types are read as JSON bodies, never decoded as forms")
    void formContentTypes() {
      for (String type : List.of("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain")) {
        for (String method : List.of("GET", "OPTIONS", "TRACE")) {
          Response response = http.raw(method + " /api/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: " + type
              + "\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b");
          assertThat(response.status()).as(method + " " + type).isIn(200, 405);
          assertThat(response.json().containsKey("status") || response.json().containsKey("tokens")).isTrue();
        }
        Response post = http.raw("POST /api/tokens/activate HTTP/1.1\r\nHost: x\r\nContent-Type: " + type
            + "\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b");
        assertError(post, 400, "bad_request", "Request body must be valid JSON.");
      }
    }

    @Test
    @DisplayName("a malformed query string is refused on every method, before anything changes")
    void malformedQueryOnPost() {
      String before = http.get("/api/tokens?state=active").raw();
      String body = userBody(newUser());
      Response response = http.raw("POST /api/tokens/activate?x=%ZZ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
          + "\r\nContent-Length: " + body.length() + "\r\nConnection: close\r\n\r\n" + body);
      assertError(response, 400, "bad_request", null);
      assertThat(http.get("/api/tokens?state=active").raw()).isEqualTo(before);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
        "{\"user_id\":\"bad\",\"user_id\":\"550e8400-e29b-41d4-a716-446655440000\"}",
        "{/*c*/\"user_id\":\"550e8400-e29b-41d4-a716-446655440000\"}",
        "{\"user_id\":\"550e8400-e29b-41d4-a716-446655440000\"} // trailing",
        "{'user_id':'550e8400-e29b-41d4-a716-446655440000'}"})
    @DisplayName("only strict JSON is accepted: no duplicate keys, comments or single quotes")
    void strictJson(String body) {
      assertError(http.post("/api/tokens/activate", body), 400, "bad_request", "Request body must be valid JSON.");
    }

    @Test
    @DisplayName("broken chunked framing never activates anything")
    void brokenChunks() {
      String before = http.get("/api/tokens?state=active").raw();
      try {
        Response response = http.raw("POST /api/tokens/activate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
            + "\r\nContent-Type: application/json\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
        assertError(response, 400, "bad_request", null);
      } catch (RuntimeException closedWithoutAnswer) {
        // Netty may close the connection on a framing error before a response can be written.
      }
      assertThat(http.get("/api/tokens?state=active").raw()).isEqualTo(before);
    }

    @Test
    @DisplayName("the health endpoint reports the pool and the write-behind queue")
    void health() {
      JsonObject health = http.get("/api/health").json();
      assertThat(health.getString("status")).isEqualTo("ok");
      assertThat(health.getInteger("pool_size")).isEqualTo(100);
    }
  }
}
