package dev.tokenlease.vault;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;

/**
 * Asks a provider's OAuth 2.0 token endpoint for a new access token (RFC 6749 §6 refresh, or §4.4
 * client credentials). Failure messages describe what went wrong without repeating any secret or
 * any part of the provider's answer that could hold one.
 */
final class ProviderClient {
  /** What the provider issued; {@code refreshToken} is null when it did not rotate it. */
  record Issued(String accessToken, Duration expiresIn, String refreshToken) {}

  /** A refresh that did not produce a usable token; the message holds no secret. */
  static final class RefreshFailed extends RuntimeException {
    RefreshFailed(String message) {
      super(message, null, false, false);
    }
  }

  private final WebClient client;
  private final long timeoutMillis;

  ProviderClient(Vertx vertx, Duration timeout) {
    this.client = WebClient.create(vertx, new WebClientOptions().setConnectTimeout((int) timeout.toMillis())
        .setIdleTimeout((int) Math.max(1, timeout.toSeconds())).setUserAgent("token-service-vault"));
    this.timeoutMillis = timeout.toMillis();
  }

  Future<Issued> refresh(String tokenUrl, String grantType, String clientId, String clientSecret, String refreshToken,
      String scope) {
    MultiMap form = MultiMap.caseInsensitiveMultiMap().add("grant_type", grantType);
    if ("refresh_token".equals(grantType)) {
      form.add("refresh_token", refreshToken);
    }
    if (scope != null) {
      form.add("scope", scope);
    }
    var request = client.postAbs(tokenUrl).timeout(timeoutMillis).putHeader("Accept", "application/json");
    if (clientSecret != null) {
      String basic = Base64.getEncoder().encodeToString(
          (urlEncode(clientId) + ":" + urlEncode(clientSecret)).getBytes(StandardCharsets.UTF_8));
      request.putHeader("Authorization", "Basic " + basic);
    } else if (clientId != null) {
      form.add("client_id", clientId);
    }
    return request.sendForm(form)
        .recover(err -> Future.failedFuture(new RefreshFailed("token endpoint unreachable: " + describe(err))))
        .compose(ProviderClient::issued);
  }

  private static Future<Issued> issued(HttpResponse<io.vertx.core.buffer.Buffer> response) {
    JsonObject body;
    try {
      body = response.bodyAsJsonObject();
    } catch (RuntimeException e) {
      body = null;
    }
    if (response.statusCode() != 200) {
      String error = body == null ? null : body.getValue("error") instanceof String code && code.matches("[a-z_]{1,64}") ? code : null;
      return Future.failedFuture(new RefreshFailed("token endpoint answered " + response.statusCode()
          + (error == null ? "" : " (" + error + ")")));
    }
    if (body == null || !(body.getValue("access_token") instanceof String token) || token.isEmpty()) {
      return Future.failedFuture(new RefreshFailed("token endpoint answered 200 without an access_token"));
    }
    if (!(body.getValue("expires_in") instanceof Number expiresIn) || expiresIn.longValue() <= 0) {
      return Future.failedFuture(new RefreshFailed("token endpoint answered 200 without a positive expires_in"));
    }
    if (expiresIn.longValue() > Duration.between(Instant.now(), CredentialMessages.LATEST_EXPIRY).toSeconds()) {
      return Future.failedFuture(new RefreshFailed("token endpoint answered 200 with an expires_in beyond "
          + CredentialMessages.LATEST_EXPIRY));
    }
    String rotated = body.getValue("refresh_token") instanceof String next && !next.isEmpty() ? next : null;
    return Future.succeededFuture(new Issued(token, Duration.ofSeconds(expiresIn.longValue()), rotated));
  }

  private static String describe(Throwable err) {
    String name = err.getClass().getSimpleName();
    return err instanceof java.util.concurrent.TimeoutException || name.contains("Timeout") ? "timed out" : name;
  }

  /** RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding. */
  private static String urlEncode(String text) {
    return java.net.URLEncoder.encode(text, StandardCharsets.UTF_8);
  }

  void close() {
    client.close();
  }
}
