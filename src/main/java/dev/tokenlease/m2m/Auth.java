package dev.tokenlease.m2m;

import dev.tokenlease.platform.config.AppConfig.AuthConfig;
import java.time.Clock;

/**
 * What the HTTP verticles of one process share for authentication: the in-memory set of live
 * access tokens, the rate limiters, and (once {@link AuthVerticle} has started) the service that
 * reads and writes clients and tokens.
 */
public final class Auth {
  private final AuthConfig config;
  private final Clock clock;
  private final ActiveTokens tokens = new ActiveTokens();
  private final RateLimiter general;
  private final RateLimiter oauth;
  private final String node = java.util.UUID.randomUUID().toString();
  private volatile AuthService service;

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

  /** This process's id in published changes. */
  String node() {
    return node;
  }

  AuthService service() {
    AuthService current = service;
    if (current == null) {
      throw new IllegalStateException("the auth service has not started");
    }
    return current;
  }

  void attach(AuthService service) {
    this.service = service;
  }
}
