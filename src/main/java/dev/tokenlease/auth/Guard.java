package dev.tokenlease.auth;

import dev.tokenlease.http.ApiError;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpHeaders;
import io.vertx.ext.web.RoutingContext;

/**
 * Protects the pool and vault APIs. When {@code TOKENS_AUTH_REQUIRED} is true a request needs a
 * bearer token that is live (checked in memory: a hash and a map lookup) and carries the route's
 * scope; failures are 401 {@code unauthorized} or 403 {@code forbidden} in the pool API's
 * {@code {status, message}} shape. The general rate limit applies per client, or per IP address
 * for requests without a valid token.
 */
public final class Guard {
  /** Where the authenticated principal is kept on the routing context. */
  public static final String PRINCIPAL = Guard.class.getName() + ".principal";
  private static final int MAX_TOKEN_LENGTH = 512;
  private static final java.util.regex.Pattern TOKEN68 = java.util.regex.Pattern.compile("[A-Za-z0-9\\-._~+/]+=*");

  private final Auth auth;

  public Guard(Auth auth) {
    this.auth = auth;
  }

  /** A handler that lets the request through only with {@code scope} (when authentication is on). */
  public Handler<RoutingContext> require(String scope) {
    return ctx -> {
      if (!auth.config().required()) {
        if (!auth.general().enabled() || !limited(ctx, "ip:" + remote(ctx))) {
          ctx.next();
        }
        return;
      }
      if (ctx.request().headers().getAll(HttpHeaders.AUTHORIZATION).size() > 1) {
        ApiError.write(ctx, 400, "bad_request", "Send one Authorization header.");
        return;
      }
      String header = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
      String token = bearer(header);
      Principal principal = token == null ? null : auth.tokens().find(token, auth.clock().instant());
      if (principal == null) {
        if (limited(ctx, "ip:" + remote(ctx))) {
          return;
        }
        boolean presented = bearerScheme(header);
        ctx.response().putHeader("WWW-Authenticate",
            presented ? "Bearer realm=\"token-service\", error=\"invalid_token\"" : "Bearer realm=\"token-service\"");
        ApiError.write(ctx, 401, "unauthorized", !presented
            ? "Missing bearer token: send 'Authorization: Bearer <access token>' (POST /oauth/token issues one)."
            : "Invalid access token: malformed, unknown, expired or revoked.");
        return;
      }
      if (limited(ctx, "client:" + principal.clientId())) {
        return;
      }
      if (!principal.allows(scope)) {
        ctx.response().putHeader("WWW-Authenticate",
            "Bearer realm=\"token-service\", error=\"insufficient_scope\", scope=\"" + scope + "\"");
        ApiError.write(ctx, 403, "forbidden", "This operation needs the scope '" + scope + "'.");
        return;
      }
      ctx.put(PRINCIPAL, principal);
      ctx.next();
    };
  }

  private boolean limited(RoutingContext ctx, String key) {
    long wait = auth.general().acquire(key);
    if (wait == 0) {
      return false;
    }
    ctx.response().putHeader(HttpHeaders.RETRY_AFTER, Long.toString(wait));
    ApiError.write(ctx, 429, "too_many_requests", "Rate limit exceeded; retry after " + wait + " s.");
    return true;
  }

  /** Whether the header uses the Bearer scheme (RFC 6750 §3.1: only then is a token "invalid"). */
  static boolean bearerScheme(String header) {
    return header != null && header.length() >= 6 && header.regionMatches(true, 0, "Bearer", 0, 6)
        && (header.length() == 6 || header.charAt(6) == ' ');
  }

  /** The token of an {@code Authorization: Bearer} header (RFC 6750 §2.1), or null. */
  static String bearer(String header) {
    if (header == null || header.length() < 8 || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return null;
    }
    String token = header.substring(7).trim();
    if (token.isEmpty() || token.length() > MAX_TOKEN_LENGTH || !TOKEN68.matcher(token).matches()) {
      return null;
    }
    return token;
  }

  /** The peer's IP address. Proxies' forwarding headers are not trusted: a caller can forge them. */
  static String remote(RoutingContext ctx) {
    var address = ctx.request().remoteAddress();
    return address == null ? "unknown" : address.hostAddress() != null ? address.hostAddress() : address.host();
  }
}
