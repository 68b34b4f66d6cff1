package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@DisplayName("Concurrent activations")
class ConcurrencyTest {

  @ParameterizedTest(name = "{0} acknowledgments")
  @ValueSource(strings = {"durable", "memory"})
  @DisplayName("hundreds of parallel activations: no token twice, open usages equal active tokens, counters add up")
  void parallelActivations(String ack) throws Exception {
    String database = TestDatabase.create();
    int poolSize = 50;
    int requests = 600;
    try (RunningService service = RunningService.start(database, new JsonObject()
        .put("TOKENS_POOL_SIZE", poolSize).put("TOKENS_PERSISTENCE_ACK", ack))) {
      Http http = service.http();
      List<CompletableFuture<Http.Response>> replies = new ArrayList<>();
      for (int i = 0; i < requests; i++) {
        replies.add(http.sendAsync("POST", "/api/tokens/activate",
            new JsonObject().put("user_id", UUID.randomUUID().toString()).encode()));
      }
      Map<Long, String> tokenByGeneration = new HashMap<>();
      for (CompletableFuture<Http.Response> reply : replies) {
        Http.Response response = reply.get();
        assertThat(response.status()).as(response.toString()).isEqualTo(200);
        JsonObject body = response.json();
        assertThat(tokenByGeneration.put(body.getLong("generation"), body.getString("token_id"))).isNull();
      }
      List<JsonObject> active = new ArrayList<>();
      http.get("/api/tokens?state=active").array("tokens").forEach(t -> active.add((JsonObject) t));
      assertThat(active).hasSize(poolSize);
      Set<String> holders = new HashSet<>();
      active.forEach(t -> holders.add(t.getString("current_user_id")));
      assertThat(holders).as("each active token has its own holder").hasSize(poolSize);
      // Reading history waits for every queued change, so storage is complete from here on.
      http.get("/api/users/" + UUID.randomUUID() + "/usages");

      try (Connection conn = TestDatabase.connect(database); Statement st = conn.createStatement()) {
        assertThat(single(st, "SELECT count(*) FROM usages")).isEqualTo(requests);
        assertThat(single(st, "SELECT sum(usage_count) FROM tokens")).isEqualTo(requests);
        assertThat(single(st, "SELECT count(*) FROM usages WHERE ended_at IS NULL")).isEqualTo(poolSize);
        assertThat(single(st, "SELECT count(*) FROM usages WHERE end_reason = 'evicted'")).isEqualTo(requests - poolSize);
        // No two usages of one token overlap in time, in grant order.
        assertThat(single(st, """
            SELECT count(*) FROM (
              SELECT ended_at, lead(started_at) OVER (PARTITION BY token_id ORDER BY generation) AS next_start
                FROM usages) AS u
             WHERE next_start IS NOT NULL AND (ended_at IS NULL OR ended_at > next_start)
            """)).isZero();
        try (ResultSet rows = st.executeQuery("SELECT generation, token_id FROM usages")) {
          while (rows.next()) {
            assertThat(rows.getString("token_id")).isEqualTo(tokenByGeneration.get(rows.getLong("generation")));
          }
        }
      }
    } finally {
      TestDatabase.drop(database);
    }
  }

  private static long single(Statement st, String sql) throws Exception {
    try (ResultSet rows = st.executeQuery(sql)) {
      rows.next();
      return rows.getLong(1);
    }
  }
}
