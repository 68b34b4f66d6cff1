package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.PrivatePostgres;
import dev.tokenlease.support.RunningService;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** A change of the pools while PostgreSQL is frozen is answered (never hangs) and changes nothing. */
@DisplayName("Pool changes against a frozen database")
class PoolChangeFaultTest {
  private static final String BODY = "{\"name\":\"frozen\",\"size\":3,\"lease_ttl\":\"PT1M\"}";

  @Test
  @DisplayName("a create while the server is frozen gets 503 within its bound; after the thaw nothing was made and it works")
  void createWhileFrozen() throws Exception {
    try (PrivatePostgres postgres = PrivatePostgres.start();
        RunningService service = RunningService.start(postgres.createDatabase(),
            new JsonObject().put("TOKENS_PERSISTENCE_ACK_TIMEOUT", "PT1S"))) {
      Http http = service.http();
      postgres.freeze();
      long started = System.nanoTime();
      Http.Response refused;
      try {
        refused = http.post("/api/pools", BODY);
      } finally {
        postgres.thaw();
      }
      long tookMs = (System.nanoTime() - started) / 1_000_000;
      assertThat(refused.status()).as("%s", refused).isEqualTo(503);
      assertThat(refused.header("Retry-After")).isNotNull();
      assertThat(tookMs).as("bounded: a 3 s transaction and a 1 s read-back").isLessThan(10_000);
      // Once the database answers again, the name is free and nothing was half made.
      Http.Response created = Eventually.until("the database is back", Duration.ofSeconds(30),
          () -> http.post("/api/pools", BODY), r -> r.status() != 503);
      assertThat(created.status()).as("%s", created).isEqualTo(201);
      assertThat(http.get("/api/pools/frozen/tokens").array("tokens")).hasSize(3);
    }
  }
}
