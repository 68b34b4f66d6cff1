package dev.tokenlease;

import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.config.ConfigException;
import dev.tokenlease.platform.config.ConfigLoader;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.ExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Reads the configuration, starts the service, and stops it cleanly on SIGTERM or Ctrl-C. */
public final class Main {
  static {
    // Before the first logger: logback picks its appender from this (see logback.xml). A value
    // that is neither is reported by the configuration check, in text.
    String format = System.getProperty(AppConfig.LOG_FORMAT, System.getenv(AppConfig.LOG_FORMAT));
    if ("json".equalsIgnoreCase(String.valueOf(format).trim())
        && System.getProperty("tokens.log.appender") == null) {
      System.setProperty("tokens.log.appender", "JSON");
    }
  }

  private static final Logger LOG = LoggerFactory.getLogger(Main.class);

  private Main() {}

  private static final String USAGE = """
      Usage: java -jar token-service.jar [--help]

      Runs the token lease service. Every setting is an environment variable (or a Java system
      property) named TOKENS_*; conf/config.json lists them all with their defaults, and the README
      explains each. For example:

        TOKENS_HTTP_PORT=4000                                  the HTTP port
        TOKENS_PG_URL=postgresql://user:pass@host:5432/db      PostgreSQL (unset: an embedded one)
        TOKENS_DATA_DIR=/var/lib/token-service                 the embedded PostgreSQL's data
        TOKENS_POOL_SIZE=100  TOKENS_POOL_LEASE_TTL=PT2M        the pool
        TOKENS_PERSISTENCE_ACK=durable|memory                  when a change is acknowledged

      Exit codes: 0 after a clean stop (SIGTERM), 1 if start-up failed, 2 for a bad setting.
      """;

  public static void main(String[] args) {
    for (String arg : args) {
      if (arg.equals("--help") || arg.equals("-h")) {
        // Help is the program's output, not a log line.
        System.out.print(USAGE);
        System.exit(0);
        return;
      }
      LOG.error("Unknown argument '{}'; the service takes its settings from TOKENS_* variables (see --help)", arg);
      System.exit(2);
      return;
    }
    AppConfig.unknownSettings(System.getenv()).forEach((name, meant) -> LOG.warn(
        "{} is not a setting of this service and is ignored{}", name, meant == null ? "" : "; did you mean " + meant + "?"));
    AppConfig config;
    try {
      config = loadConfig();
    } catch (ConfigException e) {
      LOG.error("Configuration error: {}", e.getMessage());
      System.exit(2);
      return;
    }
    TokenService service;
    try {
      service = TokenService.start(config);
    } catch (ConfigException e) {
      LOG.error("Configuration error: {}", e.getMessage());
      System.exit(2);
      return;
    } catch (Exception e) {
      // One line for the operator; the stack trace only for whoever debugs.
      LOG.error("Start-up failed: {}", e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
      LOG.debug("Start-up failure", e);
      System.exit(1);
      return;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      LOG.info("Shutting down");
      service.close();
      // Everything is written: report a clean stop (exit 0) rather than the JVM's 143 for SIGTERM.
      Runtime.getRuntime().halt(0);
    }, "shutdown"));
  }

  private static AppConfig loadConfig() {
    Vertx vertx = Vertx.vertx();
    try {
      return ConfigLoader.load(vertx, new JsonObject()).toCompletionStage().toCompletableFuture().get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof ConfigException config) {
        throw config;
      }
      throw new ConfigException(String.valueOf(e.getCause().getMessage()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ConfigException("interrupted while reading the configuration");
    } finally {
      vertx.close();
    }
  }
}
