package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonObject;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("TOKENS_POOL_OVERFLOW=reject")
class OverflowRejectTest extends FreshDatabase {
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
}
