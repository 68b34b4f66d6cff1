package dev.tokenlease.ops;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.PrivatePostgres;
import dev.tokenlease.support.RunningService;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Probes: /health/live and /health/ready")
class ProbesTest {
  @Test
  @DisplayName("ready flips to 503 while the database is gone and back to 200 when it returns; live stays 200")
  void readyFollowsTheDatabase() throws Exception {
    try (PrivatePostgres postgres = PrivatePostgres.start();
        RunningService service = RunningService.start(postgres.createDatabase(),
            new JsonObject().put("TOKENS_PERSISTENCE_MAX_LAG", "PT0.5S"))) {
      Http http = service.http();
      Http.Response ready = http.get("/health/ready");
      assertThat(ready.status()).isEqualTo(200);
      assertThat(ready.json().getString("status")).isEqualTo("UP");
      assertThat(http.get("/health/live").status()).isEqualTo(200);

      postgres.stop();
      Http.Response down = Eventually.until("ready reports the database gone", Duration.ofSeconds(15),
          () -> http.get("/health/ready"), r -> r.status() == 503);
      assertThat(down.json().getString("status")).isEqualTo("DOWN");
      assertThat(down.json().getJsonArray("checks").getJsonObject(0).getJsonObject("data").getString("reason")).isNotBlank();
      assertThat(http.get("/health/live").status()).as("the process itself is fine").isEqualTo(200);

      postgres.restart();
      Eventually.until("ready again", Duration.ofSeconds(30), () -> http.get("/health/ready"), r -> r.status() == 200);
    }
  }
}
