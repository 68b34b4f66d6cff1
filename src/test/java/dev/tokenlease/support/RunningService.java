package dev.tokenlease.support;

import dev.tokenlease.TokenService;
import dev.tokenlease.platform.config.AppConfig;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;

/** The whole service started in-process on a free port against a test database. */
public final class RunningService implements AutoCloseable {
  private final TokenService service;
  private final Http http;
  private final AppConfig config;

  private RunningService(TokenService service, AppConfig config) {
    this.service = service;
    this.config = config;
    this.http = new Http(service.port());
  }

  /** The defaults of {@code conf/config.json}, pointed at {@code databaseUrl}, with overrides. */
  public static AppConfig config(String databaseUrl, JsonObject overrides) {
    try {
      JsonObject json = new JsonObject(Files.readString(Path.of("conf/config.json")))
          .put(AppConfig.PG_URL, databaseUrl)
          .put(AppConfig.HTTP_PORT, freePort())
          .put(AppConfig.HTTP_INSTANCES, 2)
          .mergeIn(overrides);
      return AppConfig.fromJson(json);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public static RunningService start(String databaseUrl, JsonObject overrides) throws Exception {
    AppConfig config = config(databaseUrl, overrides);
    return new RunningService(TokenService.start(config), config);
  }

  public static RunningService start(String databaseUrl) throws Exception {
    return start(databaseUrl, new JsonObject());
  }

  public Http http() {
    return http;
  }

  public AppConfig config() {
    return config;
  }

  public int port() {
    return service.port();
  }

  public io.vertx.core.Vertx vertx() {
    return service.vertx();
  }

  /** Live-changes clients the service disconnected for not keeping up. */
  public long droppedStreams() {
    return service.droppedStreams();
  }

  @Override
  public void close() {
    service.close();
  }

  public static int freePort() {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
