package dev.tokenlease;

import dev.tokenlease.config.AppConfig;
import dev.tokenlease.config.ConfigException;
import dev.tokenlease.config.ConfigLoader;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.ExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Reads the configuration, starts the service, and stops it cleanly on SIGTERM or Ctrl-C. */
public final class Main {
  private static final Logger LOG = LoggerFactory.getLogger(Main.class);

  private Main() {}

  public static void main(String[] args) {
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
      LOG.error("Start-up failed: {}", e.getMessage(), e);
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
