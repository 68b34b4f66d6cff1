package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.http.HttpApiVerticle;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The bearer guard alone, in front of one route on the real HTTP server and failure handler: no
 * database, tokens put straight into the in-memory set.
 */
@DisplayName("Guard")
@ExtendWith(VertxExtension.class)
class GuardTest {
  private static final String TOKEN = "reader-token-0123456789abcdefghijklmnopqrstuv";

  private record Answer(int status, MultiMap headers, JsonObject body) {}

  /** Serves GET /api/thing and GET /auth/m2m/thing, both needing tokens:write; a reader token is live. */
  private static Future<HttpClient> serve(Vertx vertx, boolean required) {
    Auth auth = new Auth(new AppConfig.AuthConfig(required, null, null, Duration.ofHours(1), 0, 200, 5, 20),
        Clock.systemUTC());
    auth.tokens().put(Secrets.hex(Secrets.hash(TOKEN)), new Principal(UUID.randomUUID(), "m2m_reader", "acme",
        Set.of("tokens:read"), Instant.now(), Instant.now().plusSeconds(3600)));
    Guard guard = new Guard(auth);
    HttpApiVerticle server = new HttpApiVerticle(0, List.of((vx, router, declared) -> {
      router.get("/api/thing").handler(guard.require("tokens:write")).handler(ctx -> ctx.json(new JsonObject()));
      router.get("/auth/m2m/thing").handler(guard.require("tokens:write")).handler(ctx -> ctx.json(new JsonObject()));
    }), Map.of(M2mRoutes.PREFIX, M2mRoutes.ERRORS));
    return vertx.deployVerticle(server).map(id -> vertx.createHttpClient(
        new io.vertx.core.http.HttpClientOptions().setDefaultPort(server.actualPort()).setDefaultHost("127.0.0.1")));
  }

  private static Future<Answer> get(HttpClient client, String path, String... authorization) {
    return client.request(new RequestOptions().setMethod(HttpMethod.GET).setURI(path)).compose(request -> {
      for (String value : authorization) {
        request.headers().add("Authorization", value);
      }
      return request.send().compose(response -> response.body()
          .map(body -> new Answer(response.statusCode(), response.headers(), body.toJsonObject())));
    });
  }

  @Test
  @DisplayName("lets every request through when authentication is off")
  void off(Vertx vertx, VertxTestContext test) {
    serve(vertx, false).compose(client -> get(client, "/api/thing"))
        .onComplete(test.succeeding(answer -> test.verify(() -> {
          assertThat(answer.status()).isEqualTo(200);
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("refuses a missing, an unknown, an under-scoped and a doubled bearer token, each with its challenge")
  void refusals(Vertx vertx, VertxTestContext test) {
    List<Answer> all = new java.util.ArrayList<>();
    serve(vertx, true).compose(client -> get(client, "/api/thing").map(all::add)
        .compose(v -> get(client, "/api/thing", "Bearer not-a-live-token")).map(all::add)
        .compose(v -> get(client, "/api/thing", "Bearer " + TOKEN)).map(all::add)
        .compose(v -> get(client, "/api/thing", "Bearer " + TOKEN, "Bearer " + TOKEN)).map(all::add))
        .onComplete(test.succeeding(done -> test.verify(() -> {
          Answer missing = all.get(0);
          assertThat(missing.status()).isEqualTo(401);
          assertThat(missing.headers().get("WWW-Authenticate")).isEqualTo("Bearer realm=\"token-service\"");
          assertThat(missing.body()).isEqualTo(new JsonObject().put("status", "unauthorized").put("message",
              "Missing bearer token: send 'Authorization: Bearer <access token>' (POST /oauth/token issues one)."));
          Answer unknown = all.get(1);
          assertThat(unknown.status()).isEqualTo(401);
          assertThat(unknown.headers().get("WWW-Authenticate")).contains("error=\"invalid_token\"");
          assertThat(unknown.body().getString("message"))
              .isEqualTo("Invalid access token: malformed, unknown, expired or revoked.");
          Answer scoped = all.get(2);
          assertThat(scoped.status()).isEqualTo(403);
          assertThat(scoped.headers().get("WWW-Authenticate"))
              .contains("error=\"insufficient_scope\"", "scope=\"tokens:write\"");
          assertThat(scoped.body()).isEqualTo(new JsonObject().put("status", "forbidden")
              .put("message", "This operation needs the scope 'tokens:write'."));
          Answer doubled = all.get(3);
          assertThat(doubled.status()).isEqualTo(400);
          assertThat(doubled.body().getString("message")).isEqualTo("Send one Authorization header.");
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("words the same refusal in seed 003's shape under /auth/m2m")
  void m2mShape(Vertx vertx, VertxTestContext test) {
    serve(vertx, true).compose(client -> get(client, "/auth/m2m/thing", "Bearer " + TOKEN))
        .onComplete(test.succeeding(answer -> test.verify(() -> {
          assertThat(answer.status()).isEqualTo(403);
          assertThat(answer.headers().get("Cache-Control")).isEqualTo("no-store");
          assertThat(answer.body()).isEqualTo(new JsonObject().put("error", "FORBIDDEN").put("message", "Request refused")
              .put("details", new JsonObject().put("reason", "This operation needs the scope 'tokens:write'.")));
          test.completeNow();
        })));
  }
}
