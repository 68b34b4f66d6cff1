package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.EventStreamClient;
import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The pools API end to end over HTTP, on a real PostgreSQL. */
@DisplayName("Named pools over HTTP")
class PoolsApiTest extends FreshDatabase {
  private Http http;

  private Http start(JsonObject settings) throws Exception {
    http = startService(settings.put("TOKENS_POOL_SIZE", 3)).http();
    return http;
  }

  private static String user() {
    return UUID.randomUUID().toString();
  }

  private static String userBody(String user) {
    return new JsonObject().put("user_id", user).encode();
  }

  private JsonObject create(JsonObject body) {
    Http.Response created = http.post("/api/pools", body.encode());
    assertThat(created.status()).as("%s", created).isEqualTo(201);
    assertThat(created.header("Location")).isEqualTo("/api/pools/" + body.getString("name"));
    return created.json();
  }

  private JsonObject activate(String pool, String user) {
    Http.Response granted = http.post("/api/pools/" + pool + "/tokens/activate", userBody(user));
    assertThat(granted.status()).as("%s", granted).isEqualTo(200);
    return granted.json();
  }

  private static void assertError(Http.Response response, int status, String message) {
    assertThat(response.status()).as("%s", response).isEqualTo(status);
    assertThat(response.json().getString("message")).isEqualTo(message);
  }

  @Test
  @DisplayName("create, read, list, grow and change, delete: the whole lifecycle of a pool")
  void lifecycle() throws Exception {
    start(new JsonObject());
    JsonObject pool = create(new JsonObject().put("name", "seats").put("size", 2).put("lease_ttl", "PT5M")
        .put("overflow", "reject").put("max_leases_per_user", 1));
    assertThat(pool.fieldNames()).containsExactly("name", "size", "lease_ttl", "overflow", "max_wait", "max_hold",
        "max_leases_per_user", "active", "available", "waiting", "created_at");
    assertThat(pool.getString("lease_ttl")).isEqualTo("PT5M");
    assertThat(pool.getString("overflow")).isEqualTo("reject");
    assertThat(pool.getValue("max_wait")).isNull();
    assertThat(pool.getInteger("max_leases_per_user")).isEqualTo(1);
    assertThat(pool.getInteger("available")).isEqualTo(2);
    assertThat(pool.getString("created_at")).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");

    assertThat(http.get("/api/pools/seats").json()).isEqualTo(pool);
    JsonObject page = http.get("/api/pools").json();
    assertThat(page.getInteger("total")).isEqualTo(2);
    assertThat(page.getJsonArray("pools")).extracting(p -> ((JsonObject) p).getString("name"))
        .containsExactly("default", "seats");
    assertThat(http.get("/api/pools?page=2&limit=1").json().getJsonArray("pools"))
        .extracting(p -> ((JsonObject) p).getString("name")).containsExactly("seats");

    String holder = user();
    JsonObject lease = activate("seats", holder);
    assertThat(http.get("/api/pools/seats/tokens?state=active").array("tokens"))
        .extracting(t -> ((JsonObject) t).getString("token_id")).containsExactly(lease.getString("token_id"));
    assertThat(http.get("/api/tokens?state=active").array("tokens")).as("the seed's pool is apart").isEmpty();
    assertError(http.post("/api/pools/seats/tokens/activate", userBody(holder)), 409,
        "User already holds 1 tokens in pool seats.");
    activate("seats", user());
    assertError(http.post("/api/pools/seats/tokens/activate", userBody(user())), 409, "No token available in pool seats.");

    JsonObject grown = http.send("PATCH", "/api/pools/seats",
        new JsonObject().put("size", 4).put("overflow", "evict_oldest").put("max_leases_per_user", null).encode()).json();
    assertThat(grown.getInteger("size")).isEqualTo(4);
    assertThat(grown.getInteger("available")).isEqualTo(2);
    assertThat(grown.getString("overflow")).isEqualTo("evict_oldest");
    assertThat(grown.getValue("max_leases_per_user")).isNull();
    assertThat(http.get("/api/pools/seats/tokens").array("tokens")).hasSize(4);
    activate("seats", holder);

    assertError(http.delete("/api/pools/seats"), 409, "Pool seats has 3 active leases; delete with force=true to end them.");
    JsonObject deleted = http.delete("/api/pools/seats?force=true").json();
    assertThat(deleted).isEqualTo(new JsonObject().put("name", "seats").put("cleared_count", 3).put("status", "ok"));
    assertError(http.get("/api/pools/seats"), 404, "Pool not found");
    assertError(http.post("/api/pools/seats/tokens/activate", userBody(holder)), 404, "Pool not found");
    assertThat(http.get("/api/pools").json().getInteger("total")).isEqualTo(1);

    // History is kept, naming the pool; the name may be used again for a new pool.
    JsonArray history = http.get("/api/users/" + holder + "/usages?pool=seats").array("usages");
    assertThat(history).hasSize(2).allSatisfy(u -> {
      assertThat(((JsonObject) u).getString("pool")).isEqualTo("seats");
      assertThat(((JsonObject) u).getString("end_reason")).isEqualTo("cleared");
    });
    assertThat(http.get("/api/users/" + holder + "/usages?pool=default").array("usages")).isEmpty();
    JsonObject again = create(new JsonObject().put("name", "seats").put("size", 1).put("lease_ttl", "PT1M"));
    assertThat(again.getInteger("size")).isEqualTo(1);
    assertThat(again.getString("overflow")).isEqualTo("evict_oldest");
  }

  @Test
  @DisplayName("bad bodies and names get 400 naming the field; duplicates, the pool default and unknown pools are refused")
  void refusals() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "a").put("size", 1).put("lease_ttl", "PT1M"));
    assertError(http.post("/api/pools", "{\"size\":1,\"lease_ttl\":\"PT1M\"}"), 400, "Missing required parameter: name");
    assertError(http.post("/api/pools", "{\"name\":\"Bad Name\",\"size\":1,\"lease_ttl\":\"PT1M\"}"), 400,
        "Invalid name. Must match [a-z0-9][a-z0-9_-]{0,62}.");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"lease_ttl\":\"PT1M\"}"), 400, "Missing required parameter: size");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":0,\"lease_ttl\":\"PT1M\"}"), 400,
        "Invalid size. Must be an integer from 1 to 100000.");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"two minutes\"}"), 400,
        "Invalid lease_ttl. Must be an ISO-8601 duration such as PT2M.");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"PT0.5S\"}"), 400,
        "Invalid lease_ttl. Must be an ISO-8601 duration from PT1S to PT720H, such as PT2M.");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"PT1M\",\"overflow\":\"queue\"}"), 400,
        "Invalid overflow. Must be 'evict_oldest', 'reject' or 'wait'.");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"PT1M\",\"max_wait\":\"PT5S\"}"), 400,
        "max_wait applies only when overflow is 'wait'.");
    assertError(http.post("/api/pools",
        "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"PT1M\",\"overflow\":\"wait\",\"max_wait\":\"PT31S\"}"), 400,
        "Invalid max_wait. Must be an ISO-8601 duration above PT0S and at most PT30S, such as PT10S.");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"PT1M\",\"max_hold\":\"PT30S\"}"), 400,
        "Invalid max_hold. Must be at least lease_ttl (PT1M).");
    assertError(http.post("/api/pools", "{\"name\":\"b\",\"size\":1,\"lease_ttl\":\"PT1M\",\"colour\":\"red\"}"), 400,
        "Unknown field: colour");
    assertError(http.post("/api/pools", "{\"name\":\"a\",\"size\":1,\"lease_ttl\":\"PT1M\"}"), 409, "Pool a already exists.");
    assertError(http.send("PATCH", "/api/pools/a", "{\"size\":0}"), 400, "Invalid size. Must be an integer from 1 to 100000.");
    assertError(http.send("PATCH", "/api/pools/a", "{}"), 400,
        "Nothing to change. Send at least one of: size, lease_ttl, overflow, max_wait, max_hold, max_leases_per_user.");
    create(new JsonObject().put("name", "big").put("size", 3).put("lease_ttl", "PT1M"));
    assertError(http.send("PATCH", "/api/pools/big", "{\"size\":2}"), 400, "Invalid size. A pool can only grow: it has 3 tokens.");
    assertError(http.send("PATCH", "/api/pools/default", "{\"size\":5}"), 409,
        "The pool default is configured by the TOKENS_POOL_* settings; it cannot be changed or deleted here.");
    assertError(http.delete("/api/pools/default?force=true"), 409,
        "The pool default is configured by the TOKENS_POOL_* settings; it cannot be changed or deleted here.");
    assertError(http.delete("/api/pools/a?force=maybe"), 400, "Invalid force. Must be 'true' or 'false'.");
    for (String path : List.of("/api/pools/nope", "/api/pools/nope/stats", "/api/pools/nope/tokens", "/api/pools/NOPE/tokens",
        "/api/pools/nope/events")) {
      assertError(http.get(path), 404, "Pool not found");
    }
    assertError(http.send("PATCH", "/api/pools/nope", "{\"size\":5}"), 404, "Pool not found");
    assertError(http.delete("/api/pools/nope"), 404, "Pool not found");
    String tokenOfA = http.get("/api/pools/a/tokens").array("tokens").getJsonObject(0).getString("token_id");
    assertError(http.get("/api/tokens/" + tokenOfA), 404, "Token not found");
    assertError(http.get("/api/pools/big/tokens/" + tokenOfA), 404, "Token not found");
    assertError(http.get("/api/users/" + user() + "/usages?pool=Not%20A%20Pool"), 400,
        "Invalid pool. Must be a pool name: [a-z0-9][a-z0-9_-]{0,62}.");
  }

  @Test
  @DisplayName("TOKENS_MAX_POOLS bounds the pools, default included")
  void maxPools() throws Exception {
    start(new JsonObject().put("TOKENS_MAX_POOLS", 2));
    create(new JsonObject().put("name", "one").put("size", 1).put("lease_ttl", "PT1M"));
    assertError(http.post("/api/pools", "{\"name\":\"two\",\"size\":1,\"lease_ttl\":\"PT1M\"}"), 409,
        "The service has 2 pools, the most it may have (TOKENS_MAX_POOLS); delete one first.");
  }

  @Test
  @DisplayName("wait: a full pool holds the activation until a token is released, first come first served")
  void waitsForARelease() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "w").put("size", 1).put("lease_ttl", "PT1M").put("overflow", "wait")
        .put("max_wait", "PT20S"));
    String holder = user();
    JsonObject held = activate("w", holder);
    String first = user();
    String second = user();
    CompletableFuture<Http.Response> firstWait = http.sendAsync("POST", "/api/pools/w/tokens/activate", userBody(first));
    Eventually.await("the first waits", Duration.ofSeconds(5),
        () -> http.get("/api/pools/w").json().getInteger("waiting") == 1);
    CompletableFuture<Http.Response> secondWait = http.sendAsync("POST", "/api/pools/w/tokens/activate", userBody(second));
    Eventually.await("both wait", Duration.ofSeconds(5), () -> http.get("/api/pools/w").json().getInteger("waiting") == 2);
    assertThat(firstWait).isNotDone();

    assertThat(http.post("/api/pools/w/tokens/" + held.getString("token_id") + "/release", userBody(holder)).status())
        .isEqualTo(200);
    Http.Response granted = firstWait.get(5, TimeUnit.SECONDS);
    assertThat(granted.status()).isEqualTo(200);
    assertThat(granted.json().getString("user_id")).isEqualTo(first);
    assertThat(granted.json().getString("token_id")).isEqualTo(held.getString("token_id"));
    assertThat(secondWait).isNotDone();
    assertThat(http.post("/api/pools/w/tokens/" + held.getString("token_id") + "/release", userBody(first)).status())
        .isEqualTo(200);
    assertThat(secondWait.get(5, TimeUnit.SECONDS).json().getString("user_id")).isEqualTo(second);

    JsonObject stats = http.get("/api/pools/w/stats").json();
    assertThat(stats.getInteger("waiting")).isZero();
    assertThat(stats.getJsonObject("wait_ms").getLong("max")).isPositive();
  }

  @Test
  @DisplayName("wait: Prefer: wait=N asks for less than max_wait; on timeout the same 409 as reject, with Retry-After")
  void waitTimesOut() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "w").put("size", 1).put("lease_ttl", "PT1M").put("overflow", "wait"));
    activate("w", user());
    long started = System.nanoTime();
    Http.Response refused = http.request("POST", "/api/pools/w/tokens/activate", userBody(user()),
        "Content-Type", "application/json", "Prefer", "wait=1");
    long waitedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    assertError(refused, 409, "No token available in pool w.");
    assertThat(Long.parseLong(refused.header("Retry-After"))).isBetween(1L, 60L);
    assertThat(waitedMs).isBetween(900L, 5_000L);
    assertError(http.request("POST", "/api/pools/w/tokens/activate", userBody(user()),
        "Content-Type", "application/json", "Prefer", "wait=0"), 409, "No token available in pool w.");
    JsonObject counters = http.get("/api/pools/w/stats").json().getJsonObject("counters");
    assertThat(counters.getLong("timed_out")).isEqualTo(1);
    assertThat(counters.getLong("rejected")).isEqualTo(1);
    assertThat(http.get("/api/pools/w").json().getString("max_wait")).isEqualTo("PT10S");
  }

  @Test
  @DisplayName("wait: a waiter whose connection closes leaves the queue and is never granted the token")
  void disconnectedWaiter() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "w").put("size", 1).put("lease_ttl", "PT1M").put("overflow", "wait"));
    String holder = user();
    JsonObject held = activate("w", holder);
    String gone = user();
    byte[] body = userBody(gone).getBytes(StandardCharsets.UTF_8);
    try (Socket socket = new Socket("127.0.0.1", service.port())) {
      OutputStream out = socket.getOutputStream();
      out.write(("POST /api/pools/w/tokens/activate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
          + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      out.write(body);
      out.flush();
      Eventually.await("it waits", Duration.ofSeconds(5), () -> http.get("/api/pools/w").json().getInteger("waiting") == 1);
    }
    Eventually.await("its wait is cancelled", Duration.ofSeconds(5),
        () -> http.get("/api/pools/w").json().getInteger("waiting") == 0);
    http.post("/api/pools/w/tokens/" + held.getString("token_id") + "/release", userBody(holder));
    JsonObject token = http.get("/api/pools/w/tokens/" + held.getString("token_id")).json();
    assertThat(token.getString("state")).isEqualTo("available");
    assertThat(http.get("/api/users/" + gone + "/usages").array("usages")).isEmpty();
  }

  @Test
  @DisplayName("wait: deleting a pool answers its waiters 404 and grants them nothing")
  void deleteRefusesWaiters() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "w").put("size", 1).put("lease_ttl", "PT1M").put("overflow", "wait"));
    activate("w", user());
    CompletableFuture<Http.Response> waiter = http.sendAsync("POST", "/api/pools/w/tokens/activate", userBody(user()));
    Eventually.await("it waits", Duration.ofSeconds(5), () -> http.get("/api/pools/w").json().getInteger("waiting") == 1);
    assertThat(http.delete("/api/pools/w?force=true").json().getInteger("cleared_count")).isEqualTo(1);
    assertError(waiter.get(5, TimeUnit.SECONDS), 404, "Pool not found");
  }

  @Test
  @DisplayName("max_hold: a lease already at its cap cannot be renewed; revoke ends a lease and tells its holder")
  void maxHoldAndRevoke() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "h").put("size", 2).put("lease_ttl", "PT1M").put("max_hold", "PT1M"));
    String holder = user();
    JsonObject lease = activate("h", holder);
    String token = lease.getString("token_id");
    JsonObject leaseBody = new JsonObject().put("user_id", holder).put("generation", lease.getLong("generation"));
    assertError(http.post("/api/pools/h/tokens/" + token + "/renew", leaseBody.encode()), 409,
        "Lease reached its maximum hold time.");

    JsonObject revoked = http.post("/api/pools/h/tokens/" + token + "/revoke", null).json();
    assertThat(revoked.getString("state")).isEqualTo("available");
    assertThat(revoked.getLong("generation")).isEqualTo(lease.getLong("generation"));
    assertError(http.post("/api/pools/h/tokens/" + token + "/release", leaseBody.encode()), 409, "Token was revoked.");
    assertError(http.post("/api/pools/h/tokens/" + token + "/revoke", null), 409, "Token is not active.");
    JsonObject usage = http.get("/api/users/" + holder + "/usages").array("usages").getJsonObject(0);
    assertThat(usage.getString("end_reason")).isEqualTo("revoked");
    assertThat(usage.getString("pool")).isEqualTo("h");
    assertThat(http.get("/api/pools/h/tokens/" + token + "/usages").array("usages")).hasSize(1);
    assertThat(http.get("/api/pools/h/stats").json().getJsonObject("counters").getLong("revoked")).isEqualTo(1);

    // The notice survives a restart, as an eviction's does.
    start(new JsonObject());
    assertError(http.post("/api/pools/h/tokens/" + token + "/release", leaseBody.encode()), 409, "Token was revoked.");
  }

  @Test
  @DisplayName("a restart restores every pool with its settings and leases; fencing numbers go on across pools")
  void restart() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "a").put("size", 2).put("lease_ttl", "PT10M").put("overflow", "wait")
        .put("max_wait", "PT3S").put("max_hold", "PT1H").put("max_leases_per_user", 1));
    create(new JsonObject().put("name", "b").put("size", 1).put("lease_ttl", "PT1M").put("overflow", "reject"));
    String user = user();
    JsonObject inA = activate("a", user);
    JsonObject inB = activate("b", user);
    JsonObject inDefault = http.activate(user);
    assertThat(List.of(inA.getLong("generation"), inB.getLong("generation"), inDefault.getLong("generation")))
        .doesNotHaveDuplicates();
    JsonObject poolA = http.get("/api/pools/a").json();

    start(new JsonObject());
    JsonObject restored = http.get("/api/pools/a").json();
    assertThat(restored).isEqualTo(poolA);
    assertThat(http.get("/api/pools/a/tokens/" + inA.getString("token_id")).json().getString("current_user_id"))
        .isEqualTo(user);
    assertError(http.post("/api/pools/a/tokens/activate", userBody(user)), 409, "User already holds 1 tokens in pool a.");
    assertError(http.post("/api/pools/b/tokens/activate", userBody(user())), 409, "No token available in pool b.");
    JsonObject next = http.activate(user());
    assertThat(next.getLong("generation")).isGreaterThan(inDefault.getLong("generation"));
    assertThat(http.get("/api/users/" + user + "/usages").array("usages"))
        .extracting(u -> ((JsonObject) u).getString("pool")).containsExactlyInAnyOrder("a", "b", "default");
  }

  @Test
  @DisplayName("the stream of one pool carries only its changes, each naming its pool; the stream of all carries all")
  void perPoolEvents() throws Exception {
    start(new JsonObject());
    create(new JsonObject().put("name", "a").put("size", 1).put("lease_ttl", "PT1M"));
    create(new JsonObject().put("name", "b").put("size", 1).put("lease_ttl", "PT1M"));
    try (EventStreamClient onlyA = EventStreamClient.open(service.port(), "/api/pools/a/events");
        EventStreamClient all = EventStreamClient.open(service.port(), "/api/events")) {
      assertThat(onlyA.status()).isEqualTo(200);
      onlyA.next(Duration.ofSeconds(5));
      all.next(Duration.ofSeconds(5));
      activate("b", user());
      JsonObject inA = activate("a", user());
      EventStreamClient.Frame event = onlyA.nextEvent(Duration.ofSeconds(5));
      assertThat(event.event()).isEqualTo("granted");
      assertThat(event.json().getString("pool")).isEqualTo("a");
      assertThat(event.json().getString("token_id")).isEqualTo(inA.getString("token_id"));
      assertThat(all.events(2, Duration.ofSeconds(5))).extracting(f -> f.json().getString("pool")).containsExactly("b", "a");
      http.post("/api/pools/a/tokens/" + inA.getString("token_id") + "/revoke", null);
      assertThat(onlyA.nextEvent(Duration.ofSeconds(5)).event()).isEqualTo("revoked");
    }
  }
}
