package dev.tokenlease.ops;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("GET /metrics")
class MetricsTest extends FreshDatabase {
  /** {@code name{labels} value}: one sample of the Prometheus text format. */
  private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? (\\S+)$");
  private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"");

  record Sample(String name, Map<String, String> labels, double value) {}

  static List<Sample> parse(String text) {
    List<Sample> samples = new ArrayList<>();
    for (String line : text.split("\n")) {
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      Matcher m = SAMPLE.matcher(line);
      assertThat(m.matches()).as("a sample line: %s", line).isTrue();
      Map<String, String> labels = new HashMap<>();
      if (m.group(3) != null) {
        Matcher l = LABEL.matcher(m.group(3));
        while (l.find()) {
          labels.put(l.group(1), l.group(2));
        }
      }
      samples.add(new Sample(m.group(1), labels, Double.parseDouble(m.group(4).replace("+Inf", "Infinity"))));
    }
    return samples;
  }

  private static double value(List<Sample> samples, String name, Map<String, String> labels) {
    return samples.stream().filter(s -> s.name().equals(name) && s.labels().entrySet().containsAll(labels.entrySet()))
        .mapToDouble(Sample::value).sum();
  }

  @Test
  @DisplayName("after traffic: requests by route template and status, pool gauges and counters, write path, JVM; no ids in labels")
  void afterTraffic() throws Exception {
    Http http = startService(new JsonObject().put("TOKENS_POOL_SIZE", 3)).http();
    String user = UUID.randomUUID().toString();
    JsonObject lease = http.activate(user);
    http.activate(UUID.randomUUID().toString());
    http.post("/api/tokens/" + lease.getString("token_id") + "/release", new JsonObject().put("user_id", user).encode());
    http.get("/api/tokens/" + lease.getString("token_id"));
    http.get("/api/tokens/" + UUID.randomUUID());
    http.post("/api/pools", "{\"name\":\"seats\",\"size\":2,\"lease_ttl\":\"PT1M\",\"overflow\":\"reject\"}");
    http.post("/api/pools/seats/tokens/activate", new JsonObject().put("user_id", user).encode());
    http.post("/api/pools/seats/tokens/activate", new JsonObject().put("user_id", user).encode());
    http.post("/api/pools/seats/tokens/activate", new JsonObject().put("user_id", user).encode());
    Thread.sleep(1_500); // the pool's figures are refreshed every second

    Http.Response scraped = http.get("/metrics");
    assertThat(scraped.status()).isEqualTo(200);
    assertThat(scraped.header("Content-Type")).startsWith("text/plain; version=0.0.4");
    List<Sample> samples = parse(scraped.raw());

    assertThat(value(samples, "vertx_http_server_requests_total",
        Map.of("route", "/api/tokens/activate", "code", "200", "method", "POST"))).isEqualTo(2);
    assertThat(value(samples, "vertx_http_server_requests_total",
        Map.of("route", "/api/tokens/:token_id", "code", "404"))).isEqualTo(1);
    assertThat(samples).anyMatch(s -> s.name().equals("vertx_http_server_response_time_seconds_bucket"));
    assertThat(value(samples, "tokens_pool_active", Map.of("pool", "default"))).isEqualTo(1);
    assertThat(value(samples, "tokens_pool_size", Map.of("pool", "seats"))).isEqualTo(2);
    assertThat(value(samples, "tokens_pool_leases_total", Map.of("pool", "default", "event", "granted"))).isEqualTo(2);
    assertThat(value(samples, "tokens_pool_leases_total", Map.of("pool", "default", "event", "released"))).isEqualTo(1);
    assertThat(value(samples, "tokens_pool_activations_rejected_total", Map.of("pool", "seats"))).isEqualTo(1);
    assertThat(value(samples, "tokens_pool_lease_hold_seconds_count", Map.of("pool", "default"))).isEqualTo(1);
    assertThat(value(samples, "tokens_write_batch_changes_count", Map.of())).isPositive();
    assertThat(value(samples, "tokens_write_commit_seconds_count", Map.of())).isPositive();
    assertThat(samples).anyMatch(s -> s.name().equals("tokens_write_backlog"));
    assertThat(samples).anyMatch(s -> s.name().equals("tokens_write_oldest_unwritten_seconds"));
    assertThat(samples).as("database pool use").anyMatch(s -> s.name().equals("vertx_pool_in_use")
        && "sql".equals(s.labels().get("pool_type")));
    assertThat(samples).anyMatch(s -> s.name().equals("vertx_sql_processing_time_seconds_count"));
    assertThat(samples).anyMatch(s -> s.name().startsWith("jvm_gc_"));
    assertThat(samples).anyMatch(s -> s.name().startsWith("jvm_memory_used_bytes"));
    // Bounded labels: no token or user id anywhere, and routes are templates.
    assertThat(scraped.raw()).doesNotContain(lease.getString("token_id")).doesNotContain(user);
    assertThat(samples).filteredOn(s -> s.labels().containsKey("route"))
        .allSatisfy(s -> assertThat(s.labels().get("route")).doesNotContainPattern("[0-9a-f]{8}-[0-9a-f]{4}"));
  }
}
