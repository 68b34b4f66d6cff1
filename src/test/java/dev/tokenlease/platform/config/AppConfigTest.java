package dev.tokenlease.platform.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@DisplayName("Configuration")
class AppConfigTest {

  private static JsonObject defaults() throws Exception {
    return new JsonObject(Files.readString(Path.of("conf/config.json")));
  }

  @Test
  @DisplayName("conf/config.json holds every default the service documents")
  void defaultsFile() throws Exception {
    assertThat(defaults().fieldNames()).containsExactlyInAnyOrderElementsOf(AppConfig.KEYS);
    AppConfig config = AppConfig.fromJson(defaults());
    assertThat(config.httpPort()).isEqualTo(4000);
    assertThat(config.pgUrl()).isNull();
    assertThat(config.poolSize()).isEqualTo(100);
    assertThat(config.leaseTtl()).isEqualTo(Duration.ofMinutes(2));
    assertThat(config.sweepInterval()).isEqualTo(Duration.ofSeconds(30));
    assertThat(config.ackMode()).isEqualTo(AckMode.DURABLE);
    assertThat(config.ackTimeout()).isEqualTo(Duration.ofSeconds(5));
    assertThat(config.maxLag()).isEqualTo(Duration.ofSeconds(1));
    assertThat(config.dataDir()).isEqualTo(AppConfig.defaultDataDir(System.getenv()));
    assertThat(config.events()).isEqualTo(new AppConfig.EventsConfig(10_000, Duration.ofSeconds(15), 256 * 1024, 1000));
  }

  @Test
  @DisplayName("the embedded database's data lives in the XDG data directory, from the environment, not Java's user.home")
  void dataDirFollowsXdg() {
    assertThat(AppConfig.defaultDataDir(java.util.Map.of("HOME", "/somewhere")))
        .isEqualTo(Path.of("/somewhere/.local/share/token-service"));
    assertThat(AppConfig.defaultDataDir(java.util.Map.of("HOME", "/somewhere", "XDG_DATA_HOME", "/data")))
        .isEqualTo(Path.of("/data/token-service"));
    // The XDG specification ignores a relative XDG_DATA_HOME.
    assertThat(AppConfig.defaultDataDir(java.util.Map.of("HOME", "/somewhere", "XDG_DATA_HOME", "data")))
        .isEqualTo(Path.of("/somewhere/.local/share/token-service"));
  }

  @Test
  @DisplayName("a TOKENS_ variable that no setting reads is reported, with the setting it probably meant")
  void unknownSettings() {
    java.util.Map<String, String> unknown = AppConfig.unknownSettings(java.util.Map.of("TOKENS_POOL_SIZ", "5",
        "TOKENS_POOL_SIZE", "5", "TOKENS_WHATEVER_ELSE", "x", "TOKENS_TEST_PG_URL", "y", "PATH", "/bin"));
    assertThat(unknown).containsOnlyKeys("TOKENS_POOL_SIZ", "TOKENS_WHATEVER_ELSE");
    assertThat(unknown.get("TOKENS_POOL_SIZ")).isEqualTo("TOKENS_POOL_SIZE");
    assertThat(unknown.get("TOKENS_WHATEVER_ELSE")).isNull();
  }

  @Test
  @DisplayName("the loader reads the file, and later stores (system properties, then overrides) win")
  void storeOrder() throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      System.setProperty("TOKENS_POOL_SIZE", "7");
      AppConfig config = ConfigLoader.load(vertx, new JsonObject().put("TOKENS_PERSISTENCE_ACK", "memory"))
          .toCompletionStage().toCompletableFuture().get();
      assertThat(config.poolSize()).isEqualTo(7);
      assertThat(config.ackMode()).isEqualTo(AckMode.MEMORY);
      assertThat(config.httpPort()).isEqualTo(4000);
    } finally {
      System.clearProperty("TOKENS_POOL_SIZE");
      vertx.close();
    }
  }

  @ParameterizedTest(name = "{0}={1}")
  @CsvSource({
      "TOKENS_HTTP_PORT, 70000", "TOKENS_HTTP_PORT, abc", "TOKENS_POOL_SIZE, 0", "TOKENS_POOL_SIZE, -5",
      "TOKENS_POOL_LEASE_TTL, 2 minutes", "TOKENS_POOL_LEASE_TTL, PT0S", "TOKENS_POOL_LEASE_TTL, -PT1M",
      "TOKENS_POOL_SWEEP_INTERVAL, soon", "TOKENS_PERSISTENCE_ACK, sometimes", "TOKENS_PG_URL, mysql://x",
      "TOKENS_PERSISTENCE_QUEUE_CAPACITY, 0", "TOKENS_AUTH_REQUIRED, yes", "TOKENS_M2M_TOKEN_TTL, P2D",
      "TOKENS_RATE_LIMIT_PER_SECOND, -1", "TOKENS_OAUTH_RATE_LIMIT_PER_SECOND, 0", "TOKENS_ADMIN_CLIENT_ID, bad id",
      "TOKENS_PERSISTENCE_ACK_TIMEOUT, PT0.01S", "TOKENS_PERSISTENCE_MAX_LAG, PT2M", "TOKENS_EVENTS_RING, 0",
      "TOKENS_EVENTS_KEEP_ALIVE, PT30S", "TOKENS_EVENTS_KEEP_ALIVE, PT0.001S", "TOKENS_EVENTS_WRITE_QUEUE, 100", "TOKENS_EVENTS_MAX_CLIENTS, 0", "TOKENS_POOL_OVERFLOW, queue", "TOKENS_LOG_FORMAT, xml", "TOKENS_PUBLIC_URL, ftp://tokens.example.com", "TOKENS_PUBLIC_URL, https://x.example/?a=b", "TOKENS_POOL_MAX_WAIT, PT31S", "TOKENS_POOL_MAX_HOLD, PT1S", "TOKENS_MAX_POOLS, 0", "TOKENS_MAX_WAITERS, -1", "TOKENS_POOL_MAX_LEASES_PER_USER, -1", "TOKENS_M2M_TOKEN_FORMAT, jws", "TOKENS_M2M_JWT_KEY_ROTATION, PT1S", "TOKENS_M2M_JWT_AUDIENCE, a b"})
  @DisplayName("a bad value stops start-up with one line naming the variable")
  void badValues(String key, String value) throws Exception {
    JsonObject json = defaults().put(key, value);
    assertThatThrownBy(() -> AppConfig.fromJson(json))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith(key + ": ")
        .hasMessageContaining(value.trim())
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
  }

  @Test
  @DisplayName("a vault keyset that is not valid stops start-up without echoing it")
  void badKeyset() throws Exception {
    String secretLooking = "{\"primaryKeyId\": 1, \"key\": \"not-a-real-key-material-1234\"}";
    assertThatThrownBy(() -> AppConfig.fromJson(defaults().put("TOKENS_VAULT_KEYSET", secretLooking)))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("TOKENS_VAULT_KEYSET: ")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("not-a-real-key-material"));
    assertThatThrownBy(() -> AppConfig.fromJson(defaults().put("TOKENS_VAULT_KEYSET_FILE", "/nonexistent/keyset.json")))
        .hasMessageStartingWith("TOKENS_VAULT_KEYSET_FILE: ");
    String valid = dev.tokenlease.vault.VaultCipher.newKeysetJson();
    AppConfig config = AppConfig.fromJson(defaults().put("TOKENS_VAULT_KEYSET", valid));
    assertThat(config.vault().keysetJson()).isEqualTo(valid.trim());
    assertThat(config.toString()).doesNotContain(valid.trim());
  }

  @Test
  @DisplayName("the bootstrap admin needs both id and a long secret, and the secret is never echoed")
  void adminClient() throws Exception {
    assertThatThrownBy(() -> AppConfig.fromJson(defaults().put("TOKENS_ADMIN_CLIENT_ID", "admin")))
        .hasMessageStartingWith("TOKENS_ADMIN_CLIENT_SECRET: ");
    assertThatThrownBy(() -> AppConfig.fromJson(defaults().put("TOKENS_ADMIN_CLIENT_SECRET", "x".repeat(40))))
        .hasMessageStartingWith("TOKENS_ADMIN_CLIENT_ID: ");
    assertThatThrownBy(() -> AppConfig.fromJson(defaults().put("TOKENS_ADMIN_CLIENT_ID", "admin")
        .put("TOKENS_ADMIN_CLIENT_SECRET", "short-secret-value")))
        .hasMessageStartingWith("TOKENS_ADMIN_CLIENT_SECRET: ")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("short-secret-value"));
    String secret = "a-long-enough-admin-secret-0123456789";
    AppConfig config = AppConfig.fromJson(defaults().put("TOKENS_ADMIN_CLIENT_ID", "admin")
        .put("TOKENS_ADMIN_CLIENT_SECRET", secret));
    assertThat(config.auth().adminClientSecret()).isEqualTo(secret);
    assertThat(config.auth().required()).isFalse();
    assertThat(config.toString()).doesNotContain(secret);
  }
}
