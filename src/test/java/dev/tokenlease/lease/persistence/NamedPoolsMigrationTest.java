package dev.tokenlease.lease.persistence;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgConnectOptions;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A database written before named pools (schema version 7) is migrated into the pool {@code default}
 * with its tokens, open lease, eviction notice and history intact.
 */
@DisplayName("Migration into named pools")
class NamedPoolsMigrationTest extends FreshDatabase {
  private static final String T1 = "00000000-0000-4000-8000-000000000001";
  private static final String T2 = "00000000-0000-4000-8000-000000000002";
  private static final String ALICE = "aaaaaaaa-0000-4000-8000-000000000000";
  private static final String BOB = "bbbbbbbb-0000-4000-8000-000000000000";

  @Test
  @DisplayName("tokens, history, an open lease and an eviction notice of a version-7 database land in the pool default")
  void migratesIntoDefault() throws Exception {
    PgConnectOptions options = PgConnectOptions.fromUri(database);
    Flyway.configure()
        .dataSource("jdbc:postgresql://" + options.getHost() + ":" + options.getPort() + "/" + options.getDatabase(),
            options.getUser(), options.getPassword())
        .locations("classpath:db/migration").target("7").load().migrate();
    Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    Instant earlier = now.minus(10, ChronoUnit.MINUTES);
    // As a version-7 service left it after a clean stop: Alice's lease of T1 was evicted by Bob's, which is open.
    TestDatabase.execute(database, """
        INSERT INTO tokens (id, seq, activated_at, released_at, usage_count, evicted_user_id, evicted_generation) VALUES
          ('%1$s', 1, '%5$s', NULL, 2, '%3$s', 1),
          ('%2$s', 2, NULL, NULL, 0, NULL, NULL);
        INSERT INTO usages (generation, token_id, user_id, started_at, expires_at, ended_at, end_reason, evicted_generation) VALUES
          (1, '%1$s', '%3$s', '%6$s', '%6$s'::timestamptz + interval '2 minutes', '%5$s', 'evicted', NULL),
          (2, '%1$s', '%4$s', '%5$s', '%5$s'::timestamptz + interval '2 minutes', NULL, NULL, 1);
        INSERT INTO service_state (id, running, ack_mode, lease_ttl_ms, max_lag_ms, epoch, last_batch, marked_at,
                                   generation_reserved, blocked_until)
          VALUES (1, false, 'durable', 120000, 1000, 3, 17, now(), 2, NULL);
        """.formatted(T1, T2, ALICE, BOB, now, earlier));

    Http http = startService(new JsonObject().put("TOKENS_POOL_SIZE", 2)).http();

    JsonArray tokens = http.get("/api/pools/default/tokens").array("tokens");
    assertThat(tokens).extracting(t -> ((JsonObject) t).getString("token_id")).containsExactly(T1, T2);
    JsonObject held = http.get("/api/tokens/" + T1).json();
    assertThat(held.getString("current_user_id")).isEqualTo(BOB);
    assertThat(held.getLong("usage_count")).isEqualTo(2);
    assertThat(http.post("/api/tokens/" + T1 + "/release", new JsonObject().put("user_id", ALICE).encode()).json()
        .getString("message")).isEqualTo("Token was evicted.");
    JsonArray history = http.get("/api/users/" + ALICE + "/usages").array("usages");
    assertThat(history).singleElement().satisfies(u -> {
      assertThat(((JsonObject) u).getString("pool")).isEqualTo("default");
      assertThat(((JsonObject) u).getString("end_reason")).isEqualTo("evicted");
    });
    assertThat(http.get("/api/tokens/" + T1 + "/usages").array("usages")).hasSize(2);
    JsonObject pool = http.get("/api/pools/default").json();
    assertThat(pool.getInteger("size")).isEqualTo(2);
    assertThat(pool.getInteger("active")).isEqualTo(1);
    assertThat(pool.getString("created_at")).isNotNull();
    assertThat(http.activate(ALICE).getLong("generation")).as("fencing numbers go on").isGreaterThan(2);
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM tokens WHERE pool_id = 1")).isEqualTo("2");
  }
}
