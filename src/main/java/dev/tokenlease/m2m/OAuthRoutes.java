package dev.tokenlease.m2m;

import dev.tokenlease.m2m.AuthStore.Client;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.http.ErrorShape;
import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The OAuth 2.0 endpoints: {@code POST /oauth/token} (client credentials grant, RFC 6749 §4.4),
 * {@code POST /oauth/revoke} (RFC 7009) and {@code POST /oauth/introspect} (RFC 7662). Requests are
 * form-encoded; clients authenticate with HTTP Basic or with {@code client_id}/{@code client_secret}
 * form fields (not both). Errors are RFC 6749 §5.2 bodies {@code {error, error_description}}. All
 * three endpoints are rate-limited per IP address and per client id, against secret guessing.
 */
public final class OAuthRoutes {
  private static final Logger LOG = LoggerFactory.getLogger(OAuthRoutes.class);
  static final Pattern SCOPE = Pattern.compile("[A-Za-z0-9:._-]{1,64}");
  private static final Pattern CLIENT_ID = Pattern.compile(dev.tokenlease.platform.config.AppConfig.CLIENT_ID_PATTERN);
  private static final int MAX_PARAMS = 32;
  static final int MAX_SCOPES = 32;
  private static final int MAX_SECRET_LENGTH = 512;

  /** An RFC 6749 §5.2 error. */
  /** Where these routes live; errors under it take {@link #ERRORS}' shape. */
  public static final String PREFIX = "/oauth";
  public static final String METADATA_PATH = "/.well-known/oauth-authorization-server";
  /** The JWK Set (RFC 7517) that verifies JWT access tokens; named as {@code jwks_uri} in the metadata. */
  public static final String JWKS_PATH = "/oauth/jwks";
  /** A Host header as a browser or library sends it: a DNS name, IPv4 or bracketed IPv6, and a port. */
  private static final java.util.regex.Pattern HOST =
      java.util.regex.Pattern.compile("(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\\[[0-9A-Fa-f:.]{2,45}\\])(?::[0-9]{1,5})?");

  /** An RFC 6749 error: {@code error} is its code, {@code description} its {@code error_description}. */
  static ApiException oauthError(int status, String error, String description) {
    return new ApiException(ErrorCode.fromCode(status), description).named(error, null);
  }

  /**
   * RFC 6749 §5.2 bodies on the OAuth endpoints, never cached; a failed client authentication
   * carries the Basic challenge. The router's own errors under /oauth read as {@code invalid_request}.
   */
  public static final ErrorShape ERRORS = (response, e) -> {
    response.putHeader(HttpHeaders.CACHE_CONTROL, "no-store").putHeader("Pragma", "no-cache");
    if (e.error() == ErrorCode.UNAUTHORIZED) {
      response.putHeader("WWW-Authenticate", "Basic realm=\"token-service\"");
    }
    String error = e.code() != null ? e.code()
        : e.error() == ErrorCode.BAD_REQUEST || e.error() == ErrorCode.PAYLOAD_TOO_LARGE ? "invalid_request" : e.error().status();
    return new JsonObject().put("error", error).put("error_description", e.getMessage());
  };

  /**
   * A client's credentials. {@code undecoded} is the Basic secret as sent when form-decoding changed
   * it: RFC 6749 §2.3.1 asks clients to form-encode before Basic encoding, but many (curl -u among
   * them) do not, so a secret with '+' or '%' in it is tried both ways.
   */
  private record Credentials(String clientId, String secret, String undecoded) {}

  private final Auth auth;
  private final AuthClient service;
  private final List<RequestInput.Declared> declared;

  public OAuthRoutes(Auth auth, EventBus bus, List<RequestInput.Declared> declared) {
    this.auth = auth;
    this.service = new AuthClient(bus);
    this.declared = declared;
  }

  public void mount(Router router) {
    RequestInput.route(router, declared, HttpMethod.POST, "/oauth/token", this::token);
    RequestInput.route(router, declared, HttpMethod.POST, "/oauth/revoke", this::revoke);
    RequestInput.route(router, declared, HttpMethod.POST, "/oauth/introspect", this::introspect);
    RequestInput.route(router, declared, HttpMethod.GET, METADATA_PATH, this::metadata);
    RequestInput.route(router, declared, HttpMethod.GET, JWKS_PATH, this::jwks);
  }

  /**
   * The public keys of JWT access tokens: the signing key, its announced successor, and retired
   * keys whose tokens may still be live. Empty while tokens are opaque and no key was ever made.
   */
  private void jwks(RoutingContext ctx) {
    // Short enough that a verifier's cached copy holds a successor before it signs.
    long maxAge = Math.min(300, Math.max(0, auth.config().jwt().keyRotation().toSeconds() / 8));
    ctx.response().putHeader(HttpHeaders.CONTENT_TYPE, "application/jwk-set+json")
        .putHeader(HttpHeaders.CACHE_CONTROL, "public, max-age=" + maxAge)
        .end(auth.publishedKeys());
  }

  /**
   * The issuer: {@code TOKENS_PUBLIC_URL}, else this request's scheme and Host (which a client
   * controls: set the public URL wherever the answer must be trusted); null for a malformed Host.
   */
  private String issuer(RoutingContext ctx) {
    String issuer = auth.config().publicUrl();
    if (issuer != null) {
      return issuer;
    }
    String host = ctx.request().getHeader(HttpHeaders.HOST);
    if (host == null || !HOST.matcher(host).matches()) {
      return null;
    }
    return (ctx.request().isSSL() ? "https" : "http") + "://" + host.toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * RFC 8414 authorization server metadata, so that OAuth libraries find the endpoints by discovery.
   */
  private void metadata(RoutingContext ctx) {
    String issuer = issuer(ctx);
    if (issuer == null) {
      ctx.fail(new ApiException(ErrorCode.BAD_REQUEST, "Invalid Host header."));
      return;
    }
    List<String> methods = List.of("client_secret_basic", "client_secret_post");
    JsonObject body = new JsonObject()
        .put("issuer", issuer)
        .put("token_endpoint", issuer + "/oauth/token")
        .put("revocation_endpoint", issuer + "/oauth/revoke")
        .put("introspection_endpoint", issuer + "/oauth/introspect")
        .put("jwks_uri", issuer + JWKS_PATH)
        .put("grant_types_supported", new io.vertx.core.json.JsonArray().add("client_credentials"))
        // No authorization endpoint, so no response type: clients get tokens only with their own credentials.
        .put("response_types_supported", new io.vertx.core.json.JsonArray())
        .put("token_endpoint_auth_methods_supported", new io.vertx.core.json.JsonArray(methods))
        .put("revocation_endpoint_auth_methods_supported", new io.vertx.core.json.JsonArray(methods))
        .put("introspection_endpoint_auth_methods_supported", new io.vertx.core.json.JsonArray(methods))
        .put("scopes_supported", new io.vertx.core.json.JsonArray(new java.util.TreeSet<>(Principal.SERVICE_SCOPES)
            .stream().toList()))
        .put("service_documentation", issuer + "/docs");
    ctx.response().putHeader("Cache-Control", "public, max-age=3600");
    ctx.json(body);
  }

  private void token(RoutingContext ctx) {
    run(ctx, form -> {
      String grant = form.get("grant_type");
      if (grant == null) {
        throw oauthError(400, "invalid_request", "Missing grant_type.");
      }
      Credentials credentials = credentials(ctx, form);
      if (!grant.equals("client_credentials")) {
        throw oauthError(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported.");
      }
      String requested = form.get("scope");
      // A JWT names its issuer; an opaque token needs none (and then the Host is not judged here).
      String issuer = auth.config().jwt().enabled() ? issuer(ctx) : null;
      if (auth.config().jwt().enabled() && issuer == null) {
        throw oauthError(400, "invalid_request", "Invalid Host header.");
      }
      return authenticated(credentials).compose(client -> {
        List<String> scopes = scopes(requested, client);
        return service.issue(client, scopes, issuer).map(issued -> new JsonObject()
            .put("access_token", issued.accessToken())
            .put("token_type", "Bearer")
            .put("expires_in", auth.config().tokenTtl().toSeconds())
            .put("scope", String.join(" ", scopes)));
      });
    });
  }

  private void revoke(RoutingContext ctx) {
    // token_type_hint is optional and only a hint (RFC 7009 §2.1): every token here is an access token.
    withToken(ctx, (client, token) -> service.revoke(client, token).map(v -> new JsonObject()));
  }

  private void introspect(RoutingContext ctx) {
    withToken(ctx, (client, token) -> service.introspect(client, token).map(principal -> {
      if (principal == null) {
        return new JsonObject().put("active", false);
      }
      return new JsonObject()
          .put("active", true)
          .put("scope", String.join(" ", new java.util.TreeSet<>(principal.scopes())))
          .put("client_id", principal.clientId())
          .put("token_type", "Bearer")
          .put("exp", principal.expiresAt().getEpochSecond())
          .put("iat", principal.issuedAt().getEpochSecond())
          .put("sub", principal.clientId())
          .put("jti", principal.tokenId().toString())
          .put("tenant_id", principal.tenantId());
    }));
  }

  /** Revocation and introspection: an authenticated client and the {@code token} it asks about. */
  private void withToken(RoutingContext ctx,
      java.util.function.BiFunction<Client, String, Future<JsonObject>> handler) {
    run(ctx, form -> {
      Credentials credentials = credentials(ctx, form);
      String token = form.get("token");
      if (token == null) {
        throw oauthError(400, "invalid_request", "Missing token.");
      }
      return authenticated(credentials).compose(client -> handler.apply(client, token));
    });
  }

  /** Parses the form, applies the per-IP limit, runs {@code handler}, and writes its answer or error. */
  private void run(RoutingContext ctx, java.util.function.Function<Map<String, String>, Future<JsonObject>> handler) {
    Future<JsonObject> answer;
    try {
      limit("ip:" + Guard.remote(ctx));
      answer = handler.apply(form(ctx));
    } catch (ApiException e) {
      answer = Future.failedFuture(e);
    }
    answer.onComplete(result -> {
      if (result.succeeded()) {
        noStore(ctx).setStatusCode(200).end(result.result().toBuffer());
      } else if (result.cause() instanceof ApiException e) {
        ctx.fail(e);
      } else {
        LOG.error("OAuth request {} failed", ctx.request().path(), result.cause());
        ctx.fail(oauthError(503, "temporarily_unavailable", "The authorization server cannot answer now."));
      }
    });
  }

  private void limit(String key) {
    long wait = auth.oauth().acquire(key);
    if (wait > 0) {
      throw rateLimited(wait);
    }
  }

  /** Over a rate limit: 429 with {@code Retry-After}. */
  static ApiException rateLimited(long seconds) {
    return new ApiException(ErrorCode.TOO_MANY_REQUESTS, "Rate limit exceeded; retry after " + seconds + " s.", seconds)
        .named("too_many_requests", null);
  }

  private Future<Client> authenticated(Credentials credentials) {
    return service.authenticate(credentials.clientId(), credentials.secret(), credentials.undecoded())
        .map(client -> {
          if (client == null) {
            throw oauthError(401, "invalid_client", "Client authentication failed.");
          }
          return client;
        });
  }

  /** The client's credentials from exactly one of the Basic header and the form (RFC 6749 §2.3.1). */
  private Credentials credentials(RoutingContext ctx, Map<String, String> form) {
    if (ctx.request().headers().getAll(HttpHeaders.AUTHORIZATION).size() > 1) {
      throw oauthError(400, "invalid_request", "Send one Authorization header.");
    }
    String header = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    boolean inForm = form.containsKey("client_id") || form.containsKey("client_secret");
    Credentials credentials;
    if (header != null) {
      if (inForm) {
        throw oauthError(400, "invalid_request", "Use one client authentication method: Basic or form fields, not both.");
      }
      credentials = basic(header);
    } else if (inForm) {
      String id = form.get("client_id");
      String secret = form.get("client_secret");
      if (id == null || secret == null) {
        throw oauthError(401, "invalid_client", "Both client_id and client_secret are required.");
      }
      credentials = new Credentials(id, secret, null);
    } else {
      throw oauthError(401, "invalid_client", "Client authentication is required (HTTP Basic or form fields).");
    }
    if (!CLIENT_ID.matcher(credentials.clientId()).matches() || credentials.secret().length() > MAX_SECRET_LENGTH) {
      throw oauthError(401, "invalid_client", "Client authentication failed.");
    }
    limit("client:" + credentials.clientId());
    return credentials;
  }

  private static Credentials basic(String header) {
    if (header.length() < 7 || !header.regionMatches(true, 0, "Basic ", 0, 6)) {
      throw oauthError(401, "invalid_client", "Unsupported authentication scheme: use HTTP Basic.");
    }
    try {
      String decoded = new String(Base64.getDecoder().decode(header.substring(6).trim()), StandardCharsets.UTF_8);
      int colon = decoded.indexOf(':');
      if (colon < 0) {
        throw new IllegalArgumentException("no colon");
      }
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
      String raw = decoded.substring(colon + 1);
      String secret = formDecode(raw);
      return new Credentials(formDecode(decoded.substring(0, colon)), secret, secret.equals(raw) ? null : raw);
    } catch (IllegalArgumentException e) {
      throw oauthError(401, "invalid_client", "Malformed HTTP Basic credentials.");
    }
  }

  private static String formDecode(String value) {
    try {
      return URLDecoder.decode(value, StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return value; // not form-encoded after all ('%' without two hex digits)
    }
  }

  /**
   * The requested scopes, which must all be the client's (or the service's own, for an admin
   * client); none requested
   * means all of the client's.
   */
  private static List<String> scopes(String requested, Client client) {
    if (requested == null) {
      return List.copyOf(client.scopes());
    }
    Set<String> scopes = new LinkedHashSet<>();
    String[] names = requested.split(" ", -1);
    if (names.length > MAX_SCOPES) {
      throw oauthError(400, "invalid_scope", "At most " + MAX_SCOPES + " scopes may be requested.");
    }
    for (String scope : names) {
      if (!SCOPE.matcher(scope).matches()) {
        throw oauthError(400, "invalid_scope", "Malformed scope: scopes are separated by single spaces.");
      }
      // admin implies the service's scopes, so an admin client may ask for a narrower token.
      boolean adminMay = client.scopes().contains(Principal.ADMIN) && Principal.SERVICE_SCOPES.contains(scope);
      if (!client.scopes().contains(scope) && !adminMay) {
        throw oauthError(400, "invalid_scope", "Scope '" + scope + "' is not granted to this client.");
      }
      scopes.add(scope);
    }
    return new ArrayList<>(scopes);
  }

  /** The form body: each parameter at most once (RFC 6749 §3.2); empty values count as absent. */
  private static Map<String, String> form(RoutingContext ctx) {
    String type = ctx.request().getHeader(HttpHeaders.CONTENT_TYPE);
    String mime = type == null ? "" : type.split(";", 2)[0].trim();
    if (!mime.equalsIgnoreCase("application/x-www-form-urlencoded")) {
      throw oauthError(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.");
    }
    Map<String, List<String>> decoded;
    try {
      decoded = FormDecoder.decode(RequestInput.rawBody(ctx).toString(StandardCharsets.UTF_8), MAX_PARAMS);
    } catch (FormDecoder.Malformed e) {
      throw oauthError(400, "invalid_request", "Malformed form body: " + e.getMessage() + ".");
    }
    Map<String, String> form = new HashMap<>();
    for (Map.Entry<String, List<String>> entry : decoded.entrySet()) {
      if (entry.getValue().size() > 1) {
        throw oauthError(400, "invalid_request", "Parameter '" + printable(entry.getKey()) + "' is given more than once.");
      }
      String value = entry.getValue().get(0);
      if (!value.isEmpty()) {
        form.put(entry.getKey(), value);
      }
    }
    return form;
  }

  /** A parameter or field name safe to echo in an error, else a placeholder. */
  static String printable(String name) {
    return name.length() <= 40 && name.matches("[A-Za-z0-9_.-]*") ? name : "(unprintable)";
  }

  private static io.vertx.core.http.HttpServerResponse noStore(RoutingContext ctx) {
    return ctx.response()
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        .putHeader("Pragma", "no-cache");
  }

}
