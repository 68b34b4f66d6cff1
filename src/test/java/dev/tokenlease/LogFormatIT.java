package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.Http;
import dev.tokenlease.support.ServiceProcess;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonObject;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The packaged jar's log, in each format: every request has an id, echoed back and in its access
 * line; JSON lines parse; no secret, access token or vault value appears, whatever was sent.
 */
class LogFormatIT {
  private static final String ADMIN = "log-admin";

  @ParameterizedTest(name = "TOKENS_LOG_FORMAT={0}")
  @ValueSource(strings = {"json", "text"})
  void requestIdsAndNoSecrets(String format) throws Exception {
    String database = TestDatabase.create();
    String secret = "s3cr3t-" + UUID.randomUUID() + "-" + UUID.randomUUID();
    String output;
    String accessToken;
    String id;
    try (ServiceProcess service = ServiceProcess.launch(Map.of("TOKENS_PG_URL", database, "TOKENS_LOG_FORMAT", format,
        "TOKENS_ADMIN_CLIENT_ID", ADMIN, "TOKENS_ADMIN_CLIENT_SECRET", secret, "TOKENS_AUTH_REQUIRED", "true"))
        .awaitReady(Duration.ofSeconds(120))) {
      Http http = service.http();
      String basic = Base64.getEncoder().encodeToString((ADMIN + ":" + secret).getBytes(StandardCharsets.UTF_8));
      Http.Response issued = http.request("POST", "/oauth/token", "grant_type=client_credentials",
          "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic " + basic);
      assertThat(issued.status()).isEqualTo(200);
      accessToken = issued.json().getString("access_token");
      // A wrong secret in a form body, and the token in a query string: neither may be logged.
      http.request("POST", "/oauth/token", "grant_type=client_credentials&client_id=" + ADMIN + "&client_secret="
          + URLEncoder.encode(secret + "x", StandardCharsets.UTF_8), "Content-Type", "application/x-www-form-urlencoded");
      Http.Response activated = http.request("POST", "/api/tokens/activate?access_token=" + accessToken,
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode(), "Content-Type", "application/json",
          "Authorization", "Bearer " + accessToken, "X-Request-Id", "req-4711");
      assertThat(activated.status()).isEqualTo(200);
      assertThat(activated.header("X-Request-Id")).isEqualTo("req-4711");
      Http.Response generated = http.request("GET", "/api/tokens/" + UUID.randomUUID(), null,
          "Authorization", "Bearer " + accessToken, "X-Request-Id", "not a valid id");
      id = generated.header("X-Request-Id");
      assertThat(id).matches("[0-9a-f]{16}");
      assertThat(service.terminate(Duration.ofSeconds(60))).isZero();
      output = service.output();
    } finally {
      TestDatabase.drop(database);
    }
    assertThat(output).doesNotContain(secret).doesNotContain(accessToken);
    List<String> lines = output.lines().filter(line -> !line.isBlank()).toList();
    if (format.equals("json")) {
      List<JsonObject> records = new ArrayList<>();
      for (String line : lines) {
        records.add(new JsonObject(line)); // every line is one JSON object
      }
      JsonObject access = records.stream().filter(r -> "dev.tokenlease.access".equals(r.getString("loggerName"))
          && r.getString("formattedMessage", "").contains("req-4711")).findFirst().orElseThrow();
      assertThat(access.getString("level")).isEqualTo("INFO");
      assertThat(access.getString("formattedMessage")).startsWith("POST /api/tokens/activate 200 ");
      assertThat(access.getJsonArray("kvpList").encode()).contains("\"route\":\"/api/tokens/activate\"")
          .contains("\"request_id\":\"req-4711\"").contains("\"status\":\"200\"");
      assertThat(records).anyMatch(r -> r.getString("formattedMessage", "").startsWith("GET /api/tokens/:token_id 404 ")
          && r.getString("formattedMessage").contains(id));
    } else {
      assertThat(lines).anyMatch(l -> l.contains("POST /api/tokens/activate 200 ") && l.contains("request req-4711"));
      assertThat(lines).anyMatch(l -> l.contains("GET /api/tokens/:token_id 404 ") && l.contains("request " + id));
    }
  }
}
