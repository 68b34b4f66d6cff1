package dev.tokenlease.m2m;

import dev.tokenlease.platform.config.AppConfig.AuthConfig;
import java.time.Clock;

/**
 * What every request's authentication reads in this process, without crossing to another
 * verticle: the settings, the in-memory set of live access tokens (written only by
 * {@link AuthVerticle}; read by the bearer check of every HTTP verticle, a hash and a lookup in a
 * concurrent map) and the rate limiters (one budget per client or IP for the whole process, not one
 * per HTTP verticle). Operations that read or write clients and tokens go to {@link AuthVerticle}
 * as messages ({@link AuthClient}).
 */
public final class Auth {
  private final AuthConfig config;
  private final Clock clock;
  private final ActiveTokens tokens = new ActiveTokens();
  private final RateLimiter general;
  private final RateLimiter oauth;
  private final String node = java.util.UUID.randomUUID().toString();
  /** The JWT verification keys as a JWK Set document (RFC 7517), kept current by {@link AuthVerticle}. */
  private volatile io.vertx.core.buffer.Buffer publishedKeys = new io.vertx.core.json.JsonObject()
      .put("keys", new io.vertx.core.json.JsonArray()).toBuffer();

  public Auth(AuthConfig config, Clock clock) {
    this.config = config;
    this.clock = clock;
    this.general = new RateLimiter(config.ratePerSecond(), config.rateBurst());
    this.oauth = new RateLimiter(config.oauthRatePerSecond(), config.oauthRateBurst());
  }

  public AuthConfig config() {
    return config;
  }

  public Clock clock() {
    return clock;
  }

  public ActiveTokens tokens() {
    return tokens;
  }

  /** The general limit: per client for authenticated calls, per IP otherwise. */
  public RateLimiter general() {
    return general;
  }

  /** The token endpoint's limit, per client id and per IP, against secret guessing. */
  public RateLimiter oauth() {
    return oauth;
  }

  /** The public keys that verify this service's JWT access tokens, as served at the JWKS endpoint. */
  public io.vertx.core.buffer.Buffer publishedKeys() {
    return publishedKeys;
  }

  void publishKeys(io.vertx.core.json.JsonObject jwks) {
    publishedKeys = jwks.toBuffer();
  }

  /** This process's id in published changes. */
  String node() {
    return node;
  }
}
