package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http.Response;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonObject;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Rate limits: token buckets per client, per IP, and on the token endpoint")
class RateLimitTest extends FreshDatabase {
  private static String form(String clientId) {
    String body = "grant_type=client_credentials&client_id=" + clientId + "&client_secret=wrong-secret";
    return "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + "Content-Length: " + body.length() + "\r\nConnection: close\r\n\r\n" + body;
  }

  @Test
  @DisplayName("unauthenticated pool calls are limited per IP: 429 too_many_requests with Retry-After")
  void perIp() throws Exception {
    startService(new JsonObject()
        .put("TOKENS_RATE_LIMIT_PER_SECOND", 1).put("TOKENS_RATE_LIMIT_BURST", 3).put("TOKENS_POOL_SIZE", 5));
    Http http = service.http();
    for (int i = 0; i < 3; i++) {
      assertThat(http.get("/api/tokens").status()).isEqualTo(200);
    }
    Response limited = http.get("/api/tokens");
    assertThat(limited.status()).isEqualTo(429);
    assertThat(limited.json().getString("status")).isEqualTo("too_many_requests");
    assertThat(limited.headers().firstValue("retry-after")).hasValue("1");
    // Another address has its own bucket.
    String request = "GET /api/tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assertThat(http.rawFrom("127.0.0.2", request).status()).isEqualTo(200);
    // Deliberate: a second on the real clock refills the bucket by one request (1 per second).
    Thread.sleep(1_100);
    assertThat(http.get("/api/tokens").status()).isEqualTo(200);
  }

  @Test
  @DisplayName("the token endpoint is limited per IP and per client id, against secret guessing")
  void tokenEndpoint() throws Exception {
    startService(new JsonObject()
        .put("TOKENS_OAUTH_RATE_LIMIT_PER_SECOND", 1).put("TOKENS_OAUTH_RATE_LIMIT_BURST", 3).put("TOKENS_POOL_SIZE", 5));
    Http http = service.http();
    // Per IP: three guesses for different clients from one address, then 429.
    for (int i = 0; i < 3; i++) {
      assertThat(http.rawFrom("127.0.0.2", form("client-" + i)).status()).isEqualTo(401);
    }
    Response limited = http.rawFrom("127.0.0.2", form("client-9"));
    assertThat(limited.status()).isEqualTo(429);
    assertThat(limited.json().getString("error")).isEqualTo("too_many_requests");
    assertThat(limited.headers().firstValue("retry-after")).isPresent();
    // Per client id: guesses for one client spread over addresses are limited too.
    String target = "victim-" + UUID.randomUUID();
    for (int i = 0; i < 3; i++) {
      assertThat(http.rawFrom("127.0.1." + (i + 1), form(target)).status()).isEqualTo(401);
    }
    assertThat(http.rawFrom("127.0.1.9", form(target)).status()).isEqualTo(429);
    assertThat(http.rawFrom("127.0.1.9", form("someone-else")).status()).isEqualTo(401);
  }

  @Test
  @DisplayName("authenticated calls are limited per client, not per IP")
  void perClient() throws Exception {
    String secret = "admin-secret-" + UUID.randomUUID();
    startService(new JsonObject()
        .put("TOKENS_AUTH_REQUIRED", true).put("TOKENS_ADMIN_CLIENT_ID", "admin").put("TOKENS_ADMIN_CLIENT_SECRET", secret)
        .put("TOKENS_RATE_LIMIT_PER_SECOND", 1).put("TOKENS_RATE_LIMIT_BURST", 3).put("TOKENS_POOL_SIZE", 5));
    M2mClient m2m = new M2mClient(service.http());
    String admin = m2m.token("admin", secret, null);
    JsonObject other = m2m.register(admin, "other", "t1", "tokens:read");
    String otherToken = m2m.token(other.getString("clientId"), other.getString("clientSecret"), null);
    // The admin used one request registering; two more pass, then 429.
    assertThat(m2m.get("/api/tokens", admin).status()).isEqualTo(200);
    assertThat(m2m.get("/api/tokens", admin).status()).isEqualTo(200);
    Response limited = m2m.get("/api/tokens", admin);
    assertThat(limited.status()).isEqualTo(429);
    assertThat(limited.json().getString("status")).isEqualTo("too_many_requests");
    assertThat(m2m.get("/auth/m2m/tokens", admin).json().getString("error")).isEqualTo("RATE_LIMITED");
    // Same IP, other client: its own bucket.
    assertThat(m2m.get("/api/tokens", otherToken).status()).isEqualTo(200);
  }
}
