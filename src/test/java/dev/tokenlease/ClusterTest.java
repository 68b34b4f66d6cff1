package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.lease.bus.PoolAddresses;
import dev.tokenlease.platform.ClusterSupport;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Clustered event bus")
class ClusterTest {

  @Test
  @DisplayName("a verticle on another node leases tokens through tokens.api.* and follows tokens.events")
  void otherNode() throws Exception {
    String database = TestDatabase.create();
    int servicePort = RunningService.freePort();
    String adminSecret = "cluster-admin-secret-" + UUID.randomUUID();
    try (RunningService service = RunningService.start(database, new JsonObject()
        .put("TOKENS_CLUSTER", true).put("TOKENS_CLUSTER_PORT", servicePort).put("TOKENS_POOL_SIZE", 5)
        .put("TOKENS_ADMIN_CLIENT_ID", "admin").put("TOKENS_ADMIN_CLIENT_SECRET", adminSecret))) {
      AppConfig.ClusterConfig peer = new AppConfig.ClusterConfig(true, "127.0.0.1", RunningService.freePort(),
          List.of("127.0.0.1:" + servicePort));
      Vertx node = ClusterSupport.vertx(peer, new dev.tokenlease.platform.metrics.Metrics()).toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
      try {
        String user = UUID.randomUUID().toString();
        CompletableFuture<JsonObject> event = new CompletableFuture<>();
        node.eventBus().<JsonObject>consumer(PoolAddresses.EVENTS, message -> message.body().getJsonArray("changes")
                .forEach(change -> {
                  if (user.equals(((JsonObject) change).getString("user_id"))) {
                    event.complete((JsonObject) change);
                  }
                }))
            .completion().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);

        JsonObject grant = node.eventBus().<JsonObject>request(PoolAddresses.JSON_ACTIVATE,
                new JsonObject().put("user_id", user))
            .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS).body();
        assertThat(grant.getString("user_id")).isEqualTo(user);
        assertThat(service.http().get("/api/tokens/" + grant.getString("token_id")).json()
            .getString("current_user_id")).isEqualTo(user);
        assertThat(event.get(30, TimeUnit.SECONDS).getString("type")).isEqualTo("granted");

        Throwable refused = node.eventBus().request(PoolAddresses.JSON_ACTIVATE, new JsonObject().put("user_id", 7))
            .toCompletionStage().toCompletableFuture().handle((ok, err) -> err).get(30, TimeUnit.SECONDS);
        assertThat(refused.getCause() == null ? refused : refused.getCause()).isInstanceOfSatisfying(ReplyException.class,
            e -> assertThat(e.failureCode()).isEqualTo(400));

        // Issued and revoked access tokens reach the other nodes as hashes, never as values.
        List<JsonObject> authChanges = new java.util.concurrent.CopyOnWriteArrayList<>();
        node.eventBus().<JsonObject>consumer("auth.m2m.changes", message -> authChanges.add(message.body()))
            .completion().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        String basic = java.util.Base64.getEncoder().encodeToString(("admin:" + adminSecret).getBytes());
        String token = service.http().request("POST", "/oauth/token", "grant_type=client_credentials",
            "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic " + basic)
            .json().getString("access_token");
        service.http().request("POST", "/oauth/revoke", "token=" + token,
            "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic " + basic);
        Eventually.await("two auth changes on the other node", Duration.ofSeconds(30), () -> authChanges.size() >= 2);
        assertThat(authChanges).extracting(c -> c.getString("type")).containsExactly("issued", "revoked");
        assertThat(authChanges.get(1).getJsonArray("hashes")).containsExactly(authChanges.get(0).getString("hash"));
        assertThat(authChanges.toString()).doesNotContain(token).doesNotContain(adminSecret);
      } finally {
        node.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      }
    } finally {
      TestDatabase.drop(database);
    }
  }
}
