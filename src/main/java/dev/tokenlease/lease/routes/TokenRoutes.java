package dev.tokenlease.lease.routes;

import dev.tokenlease.lease.bus.PoolClient;
import dev.tokenlease.lease.bus.PoolJson;
import dev.tokenlease.lease.bus.PoolMessages;
import dev.tokenlease.m2m.Guard;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.List;

/**
 * The HTTP API. Each handler turns the request into the JSON input shape the pool's parsers read
 * (path and query parameters merged over the body), sends the typed message, and writes the reply;
 * every failure goes to {@link ApiError}.
 */
public final class TokenRoutes {
  private static final String READ = "tokens:read";
  private static final String WRITE = "tokens:write";
  private static final String ADMIN = "admin";
  private static final String IDEMPOTENCY_KEY = "Idempotency-Key";

  private final PoolClient pool;
  private final List<RequestInput.Declared> declared;
  private final Guard guard;

  public TokenRoutes(PoolClient pool, List<RequestInput.Declared> declared, Guard guard) {
    this.pool = pool;
    this.declared = declared;
    this.guard = guard;
  }

  public void mount(Router router) {
    add(router, HttpMethod.POST, "/api/tokens/activate", WRITE, this::activate);
    add(router, HttpMethod.GET, "/api/tokens", READ, this::list);
    add(router, HttpMethod.DELETE, "/api/tokens/active", ADMIN, this::clear);
    add(router, HttpMethod.GET, "/api/tokens/:token_id", READ, this::get);
    add(router, HttpMethod.GET, "/api/tokens/:token_id/usages", READ, this::tokenUsages);
    add(router, HttpMethod.POST, "/api/tokens/:token_id/release", WRITE, this::release);
    add(router, HttpMethod.POST, "/api/tokens/:token_id/renew", WRITE, this::renew);
    add(router, HttpMethod.GET, "/api/users/:user_id/usages", READ, this::userUsages);
    add(router, HttpMethod.GET, "/api/pools/:pool/stats", READ, this::stats);
    // Health stays open: load balancers and orchestrators probe it without credentials.
    RequestInput.route(router, declared, HttpMethod.GET, "/api/health", this::health);
  }

  private void add(Router router, HttpMethod method, String path, String scope, Handler<RoutingContext> handler) {
    RequestInput.route(router, declared, method, path, guard.require(scope), handler);
  }

  private void activate(RoutingContext ctx) {
    pool.activate(PoolMessages.activate(RequestInput.body(ctx), ctx.request().headers().getAll(IDEMPOTENCY_KEY)))
        .onSuccess(view -> ctx.json(PoolJson.grant(view)))
        .onFailure(ctx::fail);
  }

  private void list(RoutingContext ctx) {
    pool.list(PoolMessages.listTokens(RequestInput.query(ctx, "state")))
        .onSuccess(list -> ctx.json(PoolJson.tokenList(list)))
        .onFailure(ctx::fail);
  }

  private void clear(RoutingContext ctx) {
    pool.clear(new PoolMessages.ClearActive())
        .onSuccess(cleared -> ctx.json(PoolJson.cleared(cleared)))
        .onFailure(ctx::fail);
  }

  private void get(RoutingContext ctx) {
    pool.get(PoolMessages.getToken(RequestInput.path(ctx, new JsonObject(), "token_id")))
        .onSuccess(view -> ctx.json(PoolJson.token(view)))
        .onFailure(ctx::fail);
  }

  private void tokenUsages(RoutingContext ctx) {
    pool.tokenUsages(PoolMessages.tokenUsages(RequestInput.path(ctx, new JsonObject(), "token_id")))
        .onSuccess(list -> ctx.json(PoolJson.tokenUsages(list)))
        .onFailure(ctx::fail);
  }

  private void release(RoutingContext ctx) {
    pool.release(PoolMessages.release(RequestInput.path(ctx, RequestInput.body(ctx), "token_id")))
        .onSuccess(view -> ctx.json(PoolJson.lease(view)))
        .onFailure(ctx::fail);
  }

  private void renew(RoutingContext ctx) {
    pool.renew(PoolMessages.renew(RequestInput.path(ctx, RequestInput.body(ctx), "token_id")))
        .onSuccess(view -> ctx.json(PoolJson.lease(view)))
        .onFailure(ctx::fail);
  }

  private void userUsages(RoutingContext ctx) {
    JsonObject input = RequestInput.path(ctx, RequestInput.query(ctx, "from", "to", "limit", "cursor"), "user_id");
    pool.userUsages(PoolMessages.userUsages(input))
        .onSuccess(page -> ctx.json(PoolJson.userUsages(page)))
        .onFailure(ctx::fail);
  }

  /** The one pool there is so far answers as {@code default}; any other name is not found. */
  private void stats(RoutingContext ctx) {
    if (!PoolJson.POOL.equals(ctx.pathParam("pool"))) {
      ctx.fail(new ApiException(ErrorCode.NOT_FOUND, "Pool not found"));
      return;
    }
    pool.stats().onSuccess(report -> ctx.json(PoolJson.stats(report))).onFailure(ctx::fail);
  }

  private void health(RoutingContext ctx) {
    pool.status().onSuccess(report -> {
      ctx.response().setStatusCode(report.healthy() ? 200 : 503);
      ctx.json(PoolJson.status(report));
    }).onFailure(ctx::fail);
  }
}
