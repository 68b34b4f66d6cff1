package dev.tokenlease.m2m;

import dev.tokenlease.m2m.AuthStore.Client;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.Paging;
import dev.tokenlease.platform.Timestamps;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.http.ErrorShape;
import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The M2M admin API under {@code /auth/m2m}: clients (register, list, read, delete, rotate the
 * secret), the token listing of seed 003 and the audit trail. Every request needs a bearer token,
 * whatever {@code TOKENS_AUTH_REQUIRED} says. Errors are seed 003's {@code {error, message,
 * details: {reason}}}.
 */
public final class M2mRoutes {
  private static final Logger LOG = LoggerFactory.getLogger(M2mRoutes.class);
  private static final Pattern CLIENT_ID = Pattern.compile(AppConfig.CLIENT_ID_PATTERN);
  private static final Pattern TENANT_ID = Pattern.compile("[A-Za-z0-9._:-]{1,64}");
  private static final Pattern PAGE = Pattern.compile("[1-9][0-9]{0,8}");
  private static final Pattern EVENT = Pattern.compile("[A-Z0-9_]{1,64}");
  private static final int MAX_NAME_LENGTH = 100;
  private static final String READ_SCOPE = "tokens:read";
  private static final String SYSTEM_TENANT = "system";

  /** An error in seed 003's shape. */
  /** Where these routes live; errors under it take {@link #ERRORS}' shape. */
  public static final String PREFIX = "/auth/m2m";

  /** A seed 003 error: {@code error} is its code, {@code reason} its {@code details.reason}. */
  static ApiException m2mError(int status, String error, String message, String reason) {
    return new ApiException(ErrorCode.fromCode(status), message).named(error, reason);
  }

  /**
   * Seed 003's {@code {error, message, details: {reason}}}, never cached. An error raised without
   * seed 003's words (the router's, the guard's) gets its status as {@code error}, a general
   * message, and its own message as the reason.
   */
  public static final ErrorShape ERRORS = (response, e) -> {
    response.putHeader(HttpHeaders.CACHE_CONTROL, "no-store");
    boolean worded = e.reason() != null;
    return new JsonObject()
        .put("error", (e.code() != null ? e.code() : e.error().status()).toUpperCase(java.util.Locale.ROOT))
        .put("message", worded ? e.getMessage() : e.error().code() >= 500 ? "Failed to process request" : "Request refused")
        .put("details", new JsonObject().put("reason", worded ? e.reason() : e.getMessage()));
  };

  private static ApiException invalid(String reason) {
    return m2mError(400, "INVALID_REQUEST", "Invalid request", reason);
  }

  private static ApiException listError(String reason) {
    return m2mError(400, "TOKEN_LIST_ERROR", "Failed to retrieve tokens", reason);
  }

  private static ApiException clientNotFound(String clientId) {
    return m2mError(404, "NOT_FOUND", "Client not found", "No client with id '" + clientId + "'");
  }

  private final Auth auth;
  private final AuthClient service;
  private final List<RequestInput.Declared> declared;
  private final Guard guard;

  public M2mRoutes(Auth auth, EventBus bus, List<RequestInput.Declared> declared, Guard guard) {
    this.auth = auth;
    this.service = new AuthClient(bus);
    this.declared = declared;
    this.guard = guard;
  }

  public void mount(Router router) {
    add(router, HttpMethod.POST, "/auth/m2m/clients", this::register);
    add(router, HttpMethod.GET, "/auth/m2m/clients", this::clients);
    add(router, HttpMethod.GET, "/auth/m2m/clients/:clientId", this::client);
    add(router, HttpMethod.DELETE, "/auth/m2m/clients/:clientId", this::delete);
    add(router, HttpMethod.POST, "/auth/m2m/clients/:clientId/secret", this::rotate);
    add(router, HttpMethod.GET, "/auth/m2m/tokens", this::tokens);
    add(router, HttpMethod.GET, "/auth/m2m/audit", this::audit);
  }

  private void add(Router router, HttpMethod method, String path, Handler<RoutingContext> handler) {
    RequestInput.route(router, declared, method, path, handler);
  }

  private void register(RoutingContext ctx) {
    run(ctx, Principal.ADMIN, false, caller -> {
      JsonObject body = body(ctx);
      for (String field : body.fieldNames()) {
        if (!Set.of("clientName", "tenantId", "scopes").contains(field)) {
          throw invalid("Unknown field '" + OAuthRoutes.printable(field) + "'; expected clientName, tenantId, scopes");
        }
      }
      String name = string(body, "clientName");
      if (name.isBlank() || name.length() > MAX_NAME_LENGTH || name.codePoints().anyMatch(M2mRoutes::unprintable)) {
        throw invalid("clientName must be 1 to " + MAX_NAME_LENGTH + " printable characters");
      }
      String tenant = string(body, "tenantId");
      if (!TENANT_ID.matcher(tenant).matches()) {
        throw invalid("tenantId must be 1 to 64 letters, digits or . _ : -");
      }
      if (tenant.equals(SYSTEM_TENANT)) {
        throw invalid("tenantId 'system' is reserved for the bootstrap admin");
      }
      List<String> scopes = scopes(body.getValue("scopes"));
      return service.register(name.strip(), tenant, scopes, caller).map(registered -> {
        ctx.response().setStatusCode(201);
        return client(registered.client()).put("clientSecret", registered.secret());
      });
    });
  }

  private void clients(RoutingContext ctx) {
    run(ctx, Principal.ADMIN, false, caller -> {
      JsonObject query = query(ctx, false, "page", "limit");
      int page = page(query, M2mRoutes::invalid);
      int limit = limit(query, M2mRoutes::invalid);
      return service.clients(page, limit).map(result -> {
        JsonArray items = new JsonArray();
        result.items().forEach(c -> items.add(client(c)));
        return Paging.page("clients", items, result.total(), page, limit);
      });
    });
  }

  private void client(RoutingContext ctx) {
    run(ctx, Principal.ADMIN, false, caller -> {
      String clientId = clientId(ctx);
      return service.client(clientId).map(client -> {
        if (client == null) {
          throw clientNotFound(clientId);
        }
        return client(client);
      });
    });
  }

  private void delete(RoutingContext ctx) {
    run(ctx, Principal.ADMIN, false, caller -> {
      String clientId = clientId(ctx);
      if (clientId.equals(auth.config().adminClientId())) {
        throw m2mError(409, "CONFLICT", "Cannot delete the bootstrap admin",
            "It comes from TOKENS_ADMIN_CLIENT_ID / TOKENS_ADMIN_CLIENT_SECRET; change those instead");
      }
      return service.delete(clientId, caller).map(revoked -> {
        if (revoked == null) {
          throw clientNotFound(clientId);
        }
        return new JsonObject().put("clientId", clientId).put("deleted", true).put("revokedTokens", revoked);
      });
    });
  }

  private void rotate(RoutingContext ctx) {
    run(ctx, Principal.ADMIN, false, caller -> {
      String clientId = clientId(ctx);
      if (clientId.equals(auth.config().adminClientId())) {
        throw m2mError(409, "CONFLICT", "Cannot rotate the bootstrap admin's secret",
            "It comes from TOKENS_ADMIN_CLIENT_SECRET; change that and restart");
      }
      return service.rotateSecret(clientId, caller).map(secret -> {
        if (secret == null) {
          throw clientNotFound(clientId);
        }
        return new JsonObject().put("clientId", clientId).put("clientSecret", secret);
      });
    });
  }

  /** Seed 003: {@code GET /auth/m2m/tokens?clientId&active&page&limit}. */
  private void tokens(RoutingContext ctx) {
    run(ctx, READ_SCOPE, true, caller -> {
      JsonObject query = query(ctx, true, "clientId", "active", "page", "limit");
      String clientId = query.getString("clientId");
      if (clientId != null && !CLIENT_ID.matcher(clientId).matches()) {
        throw listError("Invalid client ID");
      }
      Boolean active = null;
      String flag = query.getString("active");
      if (flag != null) {
        if (!flag.equals("true") && !flag.equals("false")) {
          throw listError("Invalid active status: expected true or false");
        }
        active = Boolean.valueOf(flag);
      }
      int page = page(query, M2mRoutes::listError);
      int limit = limit(query, M2mRoutes::listError);
      return service.listTokens(caller, clientId, active, page, limit).map(result -> {
        JsonArray items = new JsonArray();
        for (AuthStore.Listed token : result.items()) {
          items.add(new JsonObject()
              .put("id", token.id().toString())
              .put("clientId", token.clientId())
              .put("clientName", token.clientName())
              .put("tenantId", token.tenantId())
              .put("scopes", new JsonArray(token.scopes()))
              .put("createdAt", time(token.createdAt()))
              .put("expiresAt", time(token.expiresAt()))
              .put("active", token.active()));
        }
        return Paging.page("tokens", items, result.total(), page, limit);
      });
    });
  }

  private void audit(RoutingContext ctx) {
    run(ctx, Principal.ADMIN, false, caller -> {
      JsonObject query = query(ctx, false, "event", "page", "limit");
      String event = query.getString("event");
      if (event != null && !EVENT.matcher(event).matches()) {
        throw invalid("Invalid event name: expected upper-case letters, digits and _");
      }
      int page = page(query, M2mRoutes::invalid);
      int limit = limit(query, M2mRoutes::invalid);
      return service.audit(event, page, limit).map(result -> {
        JsonArray items = new JsonArray();
        for (AuthStore.AuditEvent e : result.items()) {
          items.add(new JsonObject()
              .put("id", e.id())
              .put("event", e.event())
              .put("severity", e.severity())
              .put("occurredAt", time(e.occurredAt()))
              .put("actorClientId", e.actorClientId())
              .put("tenantId", e.tenantId())
              .put("details", e.details()));
        }
        return Paging.page("events", items, result.total(), page, limit);
      });
    });
  }

  /**
   * Authenticates the caller (bearer token, in memory), checks {@code scope} and the rate limit,
   * runs {@code handler} and writes its answer or error.
   */
  private void run(RoutingContext ctx, String scope, boolean listing, Function<Principal, Future<JsonObject>> handler) {
    Future<JsonObject> answer;
    try {
      answer = handler.apply(caller(ctx, scope));
    } catch (ApiException e) {
      answer = Future.failedFuture(e);
    }
    answer.onComplete(result -> {
      if (result.succeeded()) {
        ctx.response().putHeader(HttpHeaders.CACHE_CONTROL, "no-store");
        ctx.json(result.result());
      } else if (result.cause() instanceof ApiException e) {
        ctx.fail(e);
      } else {
        LOG.error("M2M request {} {} failed", ctx.request().method(), ctx.request().path(), result.cause());
        ctx.fail(listing
            ? m2mError(500, "TOKEN_LIST_ERROR", "Failed to retrieve tokens", "Database unavailable")
            : m2mError(500, "INTERNAL_ERROR", "Failed to process request", "Database unavailable"));
      }
    });
  }

  /** Control, format (bidirectional overrides, zero-width), surrogate, private and unassigned characters. */
  private static boolean unprintable(int codePoint) {
    int type = Character.getType(codePoint);
    return type == Character.CONTROL || type == Character.FORMAT || type == Character.SURROGATE
        || type == Character.PRIVATE_USE || type == Character.UNASSIGNED || type == Character.LINE_SEPARATOR
        || type == Character.PARAGRAPH_SEPARATOR;
  }

  private Principal caller(RoutingContext ctx, String scope) {
    try {
      return guard.authorize(ctx, scope);
    } catch (Guard.Refused refused) {
      throw switch (refused.reason) {
        case TWO_HEADERS -> invalid("Send one Authorization header");
        case RATE_LIMITED -> m2mError(429, "RATE_LIMITED", "Too many requests", "Retry after " + refused.retryAfter + " s");
        case MISSING_TOKEN -> m2mError(401, "UNAUTHORIZED", "Authentication required", "Missing bearer token");
        case INVALID_TOKEN -> m2mError(401, "UNAUTHORIZED", "Authentication required",
            "Invalid, expired or revoked bearer token");
        case INSUFFICIENT_SCOPE -> m2mError(403, "FORBIDDEN", "Insufficient permissions",
            scope.equals(READ_SCOPE) ? "Requires scope admin or tokens:read" : "Requires scope admin");
      };
    }
  }


  private static JsonObject body(RoutingContext ctx) {
    try {
      return RequestInput.body(ctx);
    } catch (ApiException e) {
      throw invalid(e.getMessage());
    }
  }

  /** Named query parameters, each at most once; any other parameter is refused. */
  private static JsonObject query(RoutingContext ctx, boolean listing, String... names) {
    Function<String, ApiException> error = listing ? M2mRoutes::listError : M2mRoutes::invalid;
    java.util.Map<String, List<String>> params;
    try {
      params = FormDecoder.decode(ctx.request().query(), 16);
    } catch (FormDecoder.Malformed e) {
      throw error.apply("Malformed query string: " + e.getMessage());
    }
    JsonObject query = new JsonObject();
    for (var param : params.entrySet()) {
      String name = param.getKey();
      if (!List.of(names).contains(name)) {
        throw error.apply("Unknown query parameter '" + OAuthRoutes.printable(name) + "'");
      }
      if (param.getValue().size() > 1) {
        throw error.apply("Query parameter '" + name + "' is given more than once");
      }
      query.put(name, param.getValue().get(0));
    }
    return query;
  }

  private static int page(JsonObject query, Function<String, ApiException> error) {
    String page = query.getString("page");
    if (page == null) {
      return 1;
    }
    if (!PAGE.matcher(page).matches()) {
      throw error.apply("Invalid page number: expected an integer of at least 1");
    }
    return Integer.parseInt(page);
  }

  private static int limit(JsonObject query, Function<String, ApiException> error) {
    String limit = query.getString("limit");
    if (limit == null) {
      return 20;
    }
    if (!PAGE.matcher(limit).matches() || Integer.parseInt(limit) > 100) {
      throw error.apply("Invalid limit: expected an integer from 1 to 100");
    }
    return Integer.parseInt(limit);
  }

  private static String clientId(RoutingContext ctx) {
    String clientId = ctx.pathParam("clientId");
    if (clientId == null || !CLIENT_ID.matcher(clientId).matches()) {
      throw invalid("Invalid client ID");
    }
    return clientId;
  }

  private static String string(JsonObject body, String field) {
    Object value = body.getValue(field);
    if (value == null) {
      throw invalid("Missing required field '" + field + "'");
    }
    if (!(value instanceof String text)) {
      throw invalid("Field '" + field + "' must be a string");
    }
    return text;
  }

  private static List<String> scopes(Object value) {
    if (value == null) {
      throw invalid("Missing required field 'scopes'");
    }
    if (!(value instanceof JsonArray array) || array.isEmpty() || array.size() > OAuthRoutes.MAX_SCOPES) {
      throw invalid("scopes must be a non-empty array of at most " + OAuthRoutes.MAX_SCOPES + " strings");
    }
    Set<String> scopes = new LinkedHashSet<>();
    for (Object scope : array) {
      if (!(scope instanceof String text) || !OAuthRoutes.SCOPE.matcher(text).matches()) {
        throw invalid("Each scope must be 1 to 64 letters, digits or : . _ -");
      }
      scopes.add(text);
    }
    return new ArrayList<>(scopes);
  }

  private static JsonObject client(Client client) {
    return new JsonObject()
        .put("clientId", client.clientId())
        .put("clientName", client.name())
        .put("tenantId", client.tenantId())
        .put("scopes", new JsonArray(client.scopes()))
        .put("createdAt", time(client.createdAt()))
        .put("secretRotatedAt", time(client.secretRotatedAt()))
        .put("bootstrap", client.bootstrap());
  }

  private static String time(Instant instant) {
    return Timestamps.format(instant.toEpochMilli());
  }

}
