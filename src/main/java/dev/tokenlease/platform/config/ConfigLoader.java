package dev.tokenlease.platform.config;

import io.vertx.config.ConfigRetriever;
import io.vertx.config.ConfigRetrieverOptions;
import io.vertx.config.ConfigStoreOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * Reads the configuration: {@code conf/config.json} (every default; from the working directory,
 * else the copy inside the jar), then system properties, then the environment, then overrides given
 * by the caller. Later stores win, so the environment overrides the file.
 */
public final class ConfigLoader {
  static final String CONFIG_FILE = "conf/config.json";

  private ConfigLoader() {}

  public static Future<AppConfig> load(Vertx vertx, JsonObject overrides) {
    JsonArray keys = new JsonArray(AppConfig.KEYS);
    ConfigRetrieverOptions options = new ConfigRetrieverOptions()
        .setIncludeDefaultStores(false)
        .setScanPeriod(-1)
        .addStore(new ConfigStoreOptions().setType("file").setFormat("json")
            .setConfig(new JsonObject().put("path", CONFIG_FILE)))
        .addStore(new ConfigStoreOptions().setType("sys")
            .setConfig(new JsonObject().put("keys", keys).put("raw-data", true)))
        .addStore(new ConfigStoreOptions().setType("env")
            .setConfig(new JsonObject().put("keys", keys).put("raw-data", true)))
        .addStore(new ConfigStoreOptions().setType("json").setConfig(overrides));
    ConfigRetriever retriever = ConfigRetriever.create(vertx, options);
    return retriever.getConfig()
        .eventually(() -> retriever.close())
        .recover(err -> Future.failedFuture(new ConfigException("cannot read " + CONFIG_FILE + ": " + err.getMessage())))
        .compose(json -> {
          try {
            return Future.succeededFuture(AppConfig.fromJson(json));
          } catch (ConfigException e) {
            return Future.failedFuture(e);
          }
        });
  }
}
