package dev.tokenlease.ops;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.BrowserTools;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.ServiceProcess;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * GET /dashboard in headless Chromium against the packaged service: src/test/dashboard/dashboard.e2e.mjs
 * drives the browser and this test drives the service, restarting it (SIGTERM, then the jar again on
 * the same port and database) when the script asks. Screenshots go to target/dashboard-*.png.
 */
class DashboardIT {
  private static final Duration SCRIPT_LIMIT = Duration.ofMinutes(2);
  private static final String ADMIN_ID = "dashboard-admin";
  private static final String ADMIN_SECRET = "dashboard-admin-secret-of-at-least-32-characters";

  private final List<String> lines = new java.util.ArrayList<>();
  private String database;
  private ServiceProcess service;
  private Process script;

  @AfterEach
  void stop() throws Exception {
    if (script != null && script.isAlive()) {
      script.destroyForcibly();
    }
    if (service != null) {
      service.close();
    }
    if (database != null) {
      TestDatabase.drop(database);
    }
  }

  @Test
  @DisplayName("the page loads cleanly, shows activations and evictions within a second, survives restarts and asks for a token when auth is on")
  void dashboardInChromium() throws Exception {
    Path node = BrowserTools.node();
    Path modules = BrowserTools.nodeModules();
    Path chromium = BrowserTools.chromium();
    database = TestDatabase.create();
    int port = RunningService.freePort();
    Map<String, String> settings = Map.of("TOKENS_PG_URL", database, "TOKENS_HTTP_PORT", Integer.toString(port),
        "TOKENS_POOL_SIZE", "20");
    service = ServiceProcess.launch(settings).awaitReady(Duration.ofSeconds(60));

    ProcessBuilder builder = new ProcessBuilder(node.toString(), Path.of("src", "test", "dashboard", "dashboard.e2e.mjs").toString())
        .redirectErrorStream(true);
    builder.environment().put("DASHBOARD_URL", "http://127.0.0.1:" + port);
    builder.environment().put("DASHBOARD_SHOTS", "target");
    builder.environment().put("TOKENS_E2E_NODE_MODULES", modules.toString());
    builder.environment().put("CHROMIUM", chromium.toString());
    script = builder.start();
    ScheduledExecutorService watchdog = Executors.newSingleThreadScheduledExecutor();
    watchdog.schedule(() -> script.destroyForcibly(), SCRIPT_LIMIT.toSeconds(), TimeUnit.SECONDS);
    try (BufferedReader out = new BufferedReader(new InputStreamReader(script.getInputStream(), StandardCharsets.UTF_8));
        Writer in = new java.io.OutputStreamWriter(script.getOutputStream(), StandardCharsets.UTF_8)) {
      for (String line = out.readLine(); line != null; line = out.readLine()) {
        lines.add(line);
        if (line.equals("@@restart")) {
          restart(settings);
          in.write("restarted\n");
          in.flush();
        } else if (line.equals("@@restart auth")) {
          Map<String, String> auth = new HashMap<>(settings);
          auth.put("TOKENS_AUTH_REQUIRED", "true");
          auth.put("TOKENS_ADMIN_CLIENT_ID", ADMIN_ID);
          auth.put("TOKENS_ADMIN_CLIENT_SECRET", ADMIN_SECRET);
          restart(auth);
          String admin = accessToken(ADMIN_ID, ADMIN_SECRET);
          // The dashboard needs only tokens:read; the script's own activations use the admin's token.
          JsonObject reader = service.http().request("POST", "/auth/m2m/clients", new JsonObject()
              .put("clientName", "dashboard").put("tenantId", "ops").put("scopes", new JsonArray().add("tokens:read")).encode(),
              "Authorization", "Bearer " + admin, "Content-Type", "application/json").json();
          in.write("restarted " + accessToken(reader.getString("clientId"), reader.getString("clientSecret")) + " " + admin + "\n");
          in.flush();
        }
      }
    } finally {
      watchdog.shutdownNow();
    }
    assertThat(script.waitFor(10, TimeUnit.SECONDS)).as("the script ended").isTrue();
    String output = String.join("\n", lines);
    assertThat(script.exitValue()).as("dashboard.e2e.mjs failed:\n%s\n\nservice log:\n%s", output, service.output()).isZero();
    assertThat(output).contains("step 1-loaded: ok", "step 3-evicted: ok", "step 4-restarted: ok", "step 7-signed-in: ok",
        "dashboard e2e: every step ok");
  }

  private void restart(Map<String, String> settings) throws Exception {
    assertThat(service.terminate(Duration.ofSeconds(30))).as("exit code after SIGTERM").isZero();
    service.close();
    service = ServiceProcess.launch(settings).awaitReady(Duration.ofSeconds(60));
  }

  private String accessToken(String id, String secret) {
    String basic = Base64.getEncoder().encodeToString((id + ":" + secret).getBytes(StandardCharsets.UTF_8));
    Http.Response answer = service.http().request("POST", "/oauth/token", "grant_type=client_credentials",
        "Authorization", "Basic " + basic, "Content-Type", "application/x-www-form-urlencoded");
    assertThat(answer.status()).as(answer.raw()).isEqualTo(200);
    return answer.json().getString("access_token");
  }
}
