package dev.tokenlease.m2m;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.RoutingContext;

/**
 * Protects the pool and vault APIs. When {@code TOKENS_AUTH_REQUIRED} is true a request needs a
 * bearer token that is live (checked in memory: a hash and a map lookup) and carries the route's
 * scope; failures are 401 {@code unauthorized} or 403 {@code forbidden} in the pool API's
 * {@code {status, message}} shape. The general rate limit applies per client, or per IP address
 * for requests without a valid token.
 */
public final class Guard {
  /** Room for a JWT access token with many scopes; an opaque one is 43 characters. */
  private static final int MAX_TOKEN_LENGTH = 4096;
  private static final java.util.regex.Pattern TOKEN68 = java.util.regex.Pattern.compile("[A-Za-z0-9\\-._~+/]+=*");

  private final Auth auth;

  public Guard(Auth auth) {
    this.auth = auth;
  }

  /** Why {@link #authorize} refused a request; each API words it in its own error shape. */
  enum Refusal { TWO_HEADERS, RATE_LIMITED, MISSING_TOKEN, INVALID_TOKEN, INSUFFICIENT_SCOPE }

  /** A refused request; the challenge and Retry-After headers are already on the response. */
  static final class Refused extends RuntimeException {
    final Refusal reason;
    final long retryAfter;

    Refused(Refusal reason, long retryAfter) {
      super(reason.name(), null, false, false);
      this.reason = reason;
      this.retryAfter = retryAfter;
    }
  }

  /** A handler that lets the request through only with {@code scope} (when authentication is on). */
  public Handler<RoutingContext> require(String scope) {
    return ctx -> {
      if (!auth.config().required()) {
        long wait = auth.general().enabled() ? auth.general().acquire("ip:" + remote(ctx)) : 0;
        if (wait == 0) {
          ctx.next();
        } else {
          tooMany(ctx, wait);
        }
        return;
      }
      try {
        authorize(ctx, scope);
      } catch (Refused refused) {
        switch (refused.reason) {
          case TWO_HEADERS -> ctx.fail(new ApiException(ErrorCode.BAD_REQUEST, "Send one Authorization header."));
          case RATE_LIMITED -> tooMany(ctx, refused.retryAfter);
          case MISSING_TOKEN -> ctx.fail(new ApiException(ErrorCode.UNAUTHORIZED,
              "Missing bearer token: send 'Authorization: Bearer <access token>' (POST /oauth/token issues one)."));
          case INVALID_TOKEN -> ctx.fail(new ApiException(ErrorCode.UNAUTHORIZED,
              "Invalid access token: malformed, unknown, expired or revoked."));
          case INSUFFICIENT_SCOPE -> ctx.fail(new ApiException(ErrorCode.FORBIDDEN,
              "This operation needs the scope '" + scope + "'."));
        }
        return;
      }
      ctx.next();
    };
  }

  /**
   * Whether a request that {@link #require} let in would still be let in by its token: for answers
   * that last (a live stream), which must end once the token expires or is revoked. The scope of a
   * token never changes, so only its liveness is checked. Always true while authentication is off.
   */
  public boolean stillAuthorized(HttpServerRequest request) {
    if (!auth.config().required()) {
      return true;
    }
    String token = bearer(request.getHeader(HttpHeaders.AUTHORIZATION));
    return token != null && auth.tokens().find(token, auth.clock().instant()) != null;
  }

  private static void tooMany(RoutingContext ctx, long wait) {
    ctx.fail(new ApiException(ErrorCode.TOO_MANY_REQUESTS, "Rate limit exceeded; retry after " + wait + " s.", wait));
  }

  /**
   * The principal of a request that needs {@code scope}: one Authorization header, a live bearer
   * token (checked in memory), within the general rate limit (per client, or per IP without a valid
   * token), with the scope. Otherwise throws {@link Refused}, having put the RFC 6750 challenge or
   * {@code Retry-After} on the response.
   */
  Principal authorize(RoutingContext ctx, String scope) {
    if (ctx.request().headers().getAll(HttpHeaders.AUTHORIZATION).size() > 1) {
      throw new Refused(Refusal.TWO_HEADERS, 0);
    }
    String header = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    String token = bearer(header);
    Principal principal = token == null ? null : auth.tokens().find(token, auth.clock().instant());
    long wait = auth.general().acquire(principal == null ? "ip:" + remote(ctx) : "client:" + principal.clientId());
    if (wait > 0) {
      ctx.response().putHeader(HttpHeaders.RETRY_AFTER, Long.toString(wait));
      throw new Refused(Refusal.RATE_LIMITED, wait);
    }
    if (principal == null) {
      boolean presented = bearerScheme(header);
      ctx.response().putHeader("WWW-Authenticate",
          presented ? "Bearer realm=\"token-service\", error=\"invalid_token\"" : "Bearer realm=\"token-service\"");
      throw new Refused(presented ? Refusal.INVALID_TOKEN : Refusal.MISSING_TOKEN, 0);
    }
    if (!principal.allows(scope)) {
      ctx.response().putHeader("WWW-Authenticate",
          "Bearer realm=\"token-service\", error=\"insufficient_scope\", scope=\"" + scope + "\"");
      throw new Refused(Refusal.INSUFFICIENT_SCOPE, 0);
    }
    return principal;
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
