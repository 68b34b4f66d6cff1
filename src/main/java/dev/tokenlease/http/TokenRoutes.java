package dev.tokenlease.http;

import dev.tokenlease.pool.PoolError;
import dev.tokenlease.pool.PoolException;
import dev.tokenlease.pool.bus.PoolClient;
import dev.tokenlease.pool.bus.PoolJson;
import dev.tokenlease.pool.bus.PoolMessages;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;

/**
 * The HTTP API. Each handler turns the request into the JSON input shape the pool's parsers read
 * (path and query parameters merged over the body), sends the typed message, and writes the reply;
 * every failure goes to {@link ApiError}.
 */
final class TokenRoutes {
  /** A route as declared; {@link ApiError} uses these to answer 405 with an {@code Allow} header. */
  record Declared(HttpMethod method, String path) {}

  private final PoolClient pool;
  private final List<Declared> declared = new ArrayList<>();

  TokenRoutes(PoolClient pool) {
    this.pool = pool;
  }

  List<Declared> mount(Router router) {
    add(router, HttpMethod.POST, "/api/tokens/activate", this::activate);
    add(router, HttpMethod.GET, "/api/tokens", this::list);
    add(router, HttpMethod.DELETE, "/api/tokens/active", this::clear);
    add(router, HttpMethod.GET, "/api/tokens/:token_id", this::get);
    add(router, HttpMethod.GET, "/api/tokens/:token_id/usages", this::tokenUsages);
    add(router, HttpMethod.POST, "/api/tokens/:token_id/release", this::release);
    add(router, HttpMethod.POST, "/api/tokens/:token_id/renew", this::renew);
    add(router, HttpMethod.GET, "/api/users/:user_id/usages", this::userUsages);
    add(router, HttpMethod.GET, "/api/health", this::health);
    return List.copyOf(declared);
  }

  private void add(Router router, HttpMethod method, String path, Handler<RoutingContext> handler) {
    router.route(method, path).handler(handler);
    declared.add(new Declared(method, path));
  }

  private void activate(RoutingContext ctx) {
    pool.activate(PoolMessages.activate(body(ctx)))
        .onSuccess(view -> ctx.json(PoolJson.grant(view)))
        .onFailure(ctx::fail);
  }

  private void list(RoutingContext ctx) {
    pool.list(PoolMessages.listTokens(query(ctx, "state")))
        .onSuccess(list -> ctx.json(PoolJson.tokenList(list)))
        .onFailure(ctx::fail);
  }

  private void clear(RoutingContext ctx) {
    pool.clear(new PoolMessages.ClearActive())
        .onSuccess(cleared -> ctx.json(PoolJson.cleared(cleared)))
        .onFailure(ctx::fail);
  }

  private void get(RoutingContext ctx) {
    pool.get(PoolMessages.getToken(path(ctx, new JsonObject(), "token_id")))
        .onSuccess(view -> ctx.json(PoolJson.token(view)))
        .onFailure(ctx::fail);
  }

  private void tokenUsages(RoutingContext ctx) {
    pool.tokenUsages(PoolMessages.tokenUsages(path(ctx, new JsonObject(), "token_id")))
        .onSuccess(list -> ctx.json(PoolJson.tokenUsages(list)))
        .onFailure(ctx::fail);
  }

  private void release(RoutingContext ctx) {
    pool.release(PoolMessages.release(path(ctx, body(ctx), "token_id")))
        .onSuccess(view -> ctx.json(PoolJson.lease(view)))
        .onFailure(ctx::fail);
  }

  private void renew(RoutingContext ctx) {
    pool.renew(PoolMessages.renew(path(ctx, body(ctx), "token_id")))
        .onSuccess(view -> ctx.json(PoolJson.lease(view)))
        .onFailure(ctx::fail);
  }

  private void userUsages(RoutingContext ctx) {
    JsonObject input = path(ctx, query(ctx, "from", "to", "limit", "cursor"), "user_id");
    pool.userUsages(PoolMessages.userUsages(input))
        .onSuccess(page -> ctx.json(PoolJson.userUsages(page)))
        .onFailure(ctx::fail);
  }

  private void health(RoutingContext ctx) {
    pool.status().onSuccess(report -> {
      ctx.response().setStatusCode(report.persistenceFailure() == null ? 200 : 503);
      ctx.json(PoolJson.status(report));
    }).onFailure(ctx::fail);
  }

  /** The request body as a JSON object; an empty body counts as {@code {}}. */
  private static JsonObject body(RoutingContext ctx) {
    Buffer buffer = JsonBodyHandler.body(ctx);
    if (buffer.length() == 0 || buffer.toString().isBlank()) {
      return new JsonObject();
    }
    return StrictJson.object(buffer);
  }

  private static JsonObject path(RoutingContext ctx, JsonObject input, String name) {
    return input.put(name, ctx.pathParam(name));
  }

  /** Query parameters by name: one value as a string, repeated values as an array (never valid). */
  private static JsonObject query(RoutingContext ctx, String... names) {
    JsonObject input = new JsonObject();
    for (String name : names) {
      List<String> values;
      try {
        values = ctx.queryParam(name);
      } catch (IllegalArgumentException e) {
        throw new PoolException(PoolError.BAD_REQUEST, "Malformed query string.");
      }
      if (values.size() == 1) {
        input.put(name, values.get(0));
      } else if (values.size() > 1) {
        input.put(name, new JsonArray(new ArrayList<Object>(values)));
      }
    }
    return input;
  }
}
