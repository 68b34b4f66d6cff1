package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonObject;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Pool policies from configuration: overflow reject, leases per user")
class PoolPoliciesTest extends FreshDatabase {
  private static String userBody() {
    return new JsonObject().put("user_id", UUID.randomUUID().toString()).encode();
  }

  @Test
  @DisplayName("a full pool answers 409 with Retry-After instead of evicting, counts it, and grants again once a token is free")
  void rejects() throws Exception {
    Http http = startService(new JsonObject().put("TOKENS_POOL_SIZE", 2).put("TOKENS_POOL_LEASE_TTL", "PT1M")
        .put("TOKENS_POOL_OVERFLOW", "reject")).http();
    String holder = UUID.randomUUID().toString();
    JsonObject first = http.activate(holder);
    http.activate(UUID.randomUUID().toString());
    Http.Response refused = http.post("/api/tokens/activate", userBody());
    assertThat(refused.status()).isEqualTo(409);
    assertThat(refused.json()).isEqualTo(new JsonObject().put("status", "conflict")
        .put("message", "No token available in pool default."));
    assertThat(Long.parseLong(refused.header("Retry-After"))).isBetween(1L, 60L);
    assertThat(http.get("/api/tokens?state=active").array("tokens")).hasSize(2);
    assertThat(http.get("/api/pools/default/stats").json().getJsonObject("counters").getLong("rejected")).isEqualTo(1);

    assertThat(http.post("/api/tokens/" + first.getString("token_id") + "/release",
        new JsonObject().put("user_id", holder).encode()).status()).isEqualTo(200);
    Http.Response granted = http.post("/api/tokens/activate", userBody());
    assertThat(granted.status()).isEqualTo(200);
    assertThat(granted.json().getString("token_id")).isEqualTo(first.getString("token_id"));
    assertThat(granted.json().containsKey("evicted")).isFalse();
  }

  @Test
  @DisplayName("TOKENS_POOL_MAX_LEASES_PER_USER: a user at the limit gets 409 until one of its leases ends, also after a restart")
  void leasesPerUser() throws Exception {
    JsonObject settings = new JsonObject().put("TOKENS_POOL_SIZE", 5).put("TOKENS_POOL_MAX_LEASES_PER_USER", 2);
    Http http = startService(settings).http();
    String user = UUID.randomUUID().toString();
    JsonObject first = http.activate(user);
    http.activate(user);
    Http.Response refused = http.post("/api/tokens/activate", new JsonObject().put("user_id", user).encode());
    assertThat(refused.status()).isEqualTo(409);
    assertThat(refused.json()).isEqualTo(new JsonObject().put("status", "conflict")
        .put("message", "User already holds 2 tokens in pool default."));
    assertThat(http.post("/api/tokens/activate", userBody()).status()).as("other users are not limited").isEqualTo(200);

    http = startService(settings).http();
    assertThat(http.post("/api/tokens/activate", new JsonObject().put("user_id", user).encode()).status())
        .as("the open leases count after a restart").isEqualTo(409);
    assertThat(http.post("/api/tokens/" + first.getString("token_id") + "/release",
        new JsonObject().put("user_id", user).encode()).status()).isEqualTo(200);
    assertThat(http.post("/api/tokens/activate", new JsonObject().put("user_id", user).encode()).status()).isEqualTo(200);
  }
}
