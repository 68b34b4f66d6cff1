package dev.tokenlease.lease.routes;

import dev.tokenlease.lease.bus.PoolClient;
import dev.tokenlease.lease.bus.PoolDefinitions;
import dev.tokenlease.lease.bus.PoolJson;
import dev.tokenlease.lease.bus.PoolMessages;
import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.m2m.Guard;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.function.Function;

/**
 * The HTTP API of the pools. Each handler turns the request into the JSON input shape the pool's
 * parsers read (path and query parameters merged over the body, the pool named by the path: the
 * seed's {@code /api/tokens/...} is the pool {@code default}), sends the typed message, and writes
 * the reply; every failure goes to {@link dev.tokenlease.platform.http.ApiError}.
 */
public final class TokenRoutes {
  private static final String READ = "tokens:read";
  private static final String WRITE = "tokens:write";
  private static final String ADMIN = "admin";
  private static final String IDEMPOTENCY_KEY = "Idempotency-Key";
  private static final String SEED = "/api/tokens";
  private static final String PER_POOL = "/api/pools/:pool/tokens";

  private final PoolClient pool;
  private final List<RequestInput.Declared> declared;
  private final Guard guard;

  public TokenRoutes(PoolClient pool, List<RequestInput.Declared> declared, Guard guard) {
    this.pool = pool;
    this.declared = declared;
    this.guard = guard;
  }

  public void mount(Router router) {
    for (String base : List.of(SEED, PER_POOL)) {
      add(router, HttpMethod.POST, base + "/activate", WRITE, this::activate);
      add(router, HttpMethod.GET, base, READ, this::list);
      add(router, HttpMethod.DELETE, base + "/active", ADMIN, this::clear);
      add(router, HttpMethod.GET, base + "/:token_id", READ, this::get);
      add(router, HttpMethod.GET, base + "/:token_id/usages", READ, this::tokenUsages);
      add(router, HttpMethod.POST, base + "/:token_id/release", WRITE, this::release);
      add(router, HttpMethod.POST, base + "/:token_id/renew", WRITE, this::renew);
    }
    add(router, HttpMethod.POST, PER_POOL + "/:token_id/revoke", ADMIN, this::revoke);
    add(router, HttpMethod.GET, "/api/users/:user_id/usages", READ, this::userUsages);
    add(router, HttpMethod.POST, "/api/pools", ADMIN, this::createPool);
    add(router, HttpMethod.GET, "/api/pools", READ, this::listPools);
    add(router, HttpMethod.GET, "/api/pools/:pool", READ, this::getPool);
    add(router, HttpMethod.PATCH, "/api/pools/:pool", ADMIN, this::updatePool);
    add(router, HttpMethod.DELETE, "/api/pools/:pool", ADMIN, this::deletePool);
    add(router, HttpMethod.GET, "/api/pools/:pool/stats", READ, this::stats);
    // Health stays open: load balancers and orchestrators probe it without credentials.
    RequestInput.route(router, declared, HttpMethod.GET, "/api/health", this::health);
  }

  private void add(Router router, HttpMethod method, String path, String scope, Handler<RoutingContext> handler) {
    RequestInput.route(router, declared, method, path, guard.require(scope), handler);
  }

  /** The pool the path names: {@code default} on the seed's paths; a name no pool could have is not found. */
  private static String poolOf(RoutingContext ctx) {
    String name = ctx.pathParam("pool");
    return name == null ? TokenPool.DEFAULT : PoolDefinitions.pathName(name);
  }

  /** The input with the path's pool, over any {@code pool} the body or query names. */
  private static JsonObject inPool(RoutingContext ctx, JsonObject input) {
    return input.put("pool", poolOf(ctx));
  }

  private <R> void reply(RoutingContext ctx, io.vertx.core.Future<R> answer, Function<R, JsonObject> encode) {
    answer.onSuccess(result -> ctx.json(encode.apply(result))).onFailure(ctx::fail);
  }

  /**
   * An activation. In a pool that makes callers wait it may be answered only when a token frees
   * up; if the caller goes away meanwhile its wait is cancelled, and a grant that still comes (the
   * two crossed) is released at once, so no token stays with a caller that never heard of it.
   */
  private void activate(RoutingContext ctx) {
    String name = poolOf(ctx);
    PoolMessages.WaitHandle wait = new PoolMessages.WaitHandle(Prefer.waitNanos(ctx.request().headers().getAll("Prefer")));
    PoolMessages.Activate request = PoolMessages.activate(name, RequestInput.body(ctx),
        ctx.request().headers().getAll(IDEMPOTENCY_KEY), wait);
    ctx.response().closeHandler(v -> {
      if (!ctx.response().ended()) {
        pool.cancelWait(new PoolMessages.CancelWait(name, wait));
      }
    });
    pool.activate(request).onSuccess(grant -> {
      if (ctx.response().closed() && wait.queued() && !grant.repeated()) {
        releaseUnheard(name, grant);
        return;
      }
      ctx.json(PoolJson.grant(grant));
    }).onFailure(ctx::fail);
  }

  private void releaseUnheard(String name, Grant grant) {
    pool.release(new PoolMessages.Release(name, grant.lease().tokenId(), grant.lease().currentUserId(),
        grant.lease().generation()));
  }

  private void list(RoutingContext ctx) {
    reply(ctx, pool.list(PoolMessages.listTokens(inPool(ctx, RequestInput.query(ctx, "state")))), PoolJson::tokenList);
  }

  private void clear(RoutingContext ctx) {
    reply(ctx, pool.clear(new PoolMessages.ClearActive(poolOf(ctx))), PoolJson::cleared);
  }

  private void get(RoutingContext ctx) {
    reply(ctx, pool.get(PoolMessages.getToken(inPool(ctx, RequestInput.path(ctx, new JsonObject(), "token_id")))),
        PoolJson::token);
  }

  private void tokenUsages(RoutingContext ctx) {
    reply(ctx, pool.tokenUsages(PoolMessages.tokenUsages(inPool(ctx, RequestInput.path(ctx, new JsonObject(), "token_id")))),
        PoolJson::tokenUsages);
  }

  private void release(RoutingContext ctx) {
    reply(ctx, pool.release(PoolMessages.release(inPool(ctx, RequestInput.path(ctx, RequestInput.body(ctx), "token_id")))),
        PoolJson::lease);
  }

  private void renew(RoutingContext ctx) {
    reply(ctx, pool.renew(PoolMessages.renew(inPool(ctx, RequestInput.path(ctx, RequestInput.body(ctx), "token_id")))),
        PoolJson::lease);
  }

  private void revoke(RoutingContext ctx) {
    reply(ctx, pool.revoke(PoolMessages.revoke(inPool(ctx, RequestInput.path(ctx, new JsonObject(), "token_id")))),
        PoolJson::lease);
  }

  private void userUsages(RoutingContext ctx) {
    JsonObject input = RequestInput.path(ctx, RequestInput.query(ctx, "from", "to", "limit", "cursor", "pool"), "user_id");
    reply(ctx, pool.userUsages(PoolMessages.userUsages(input)), PoolJson::userUsages);
  }

  private void createPool(RoutingContext ctx) {
    pool.createPool(PoolDefinitions.create(RequestInput.body(ctx)))
        .onSuccess(info -> {
          ctx.response().setStatusCode(201).putHeader("Location", "/api/pools/" + info.settings().name());
          ctx.json(PoolJson.pool(info));
        })
        .onFailure(ctx::fail);
  }

  private void listPools(RoutingContext ctx) {
    reply(ctx, pool.listPools(PoolDefinitions.list(RequestInput.query(ctx, "page", "limit"))), PoolJson::pools);
  }

  private void getPool(RoutingContext ctx) {
    reply(ctx, pool.getPool(new PoolMessages.GetPool(poolOf(ctx))), PoolJson::pool);
  }

  private void updatePool(RoutingContext ctx) {
    String name = poolOf(ctx);
    reply(ctx, pool.updatePool(new PoolMessages.UpdatePool(name, PoolDefinitions.patch(RequestInput.body(ctx)))),
        PoolJson::pool);
  }

  private void deletePool(RoutingContext ctx) {
    String name = poolOf(ctx);
    String force = RequestInput.query(ctx, "force").getString("force");
    if (force != null && !force.equals("true") && !force.equals("false")) {
      throw new ApiException(dev.tokenlease.platform.ErrorCode.BAD_REQUEST, "Invalid force. Must be 'true' or 'false'.");
    }
    reply(ctx, pool.deletePool(new PoolMessages.DeletePool(name, "true".equals(force))), PoolJson::deleted);
  }

  private void stats(RoutingContext ctx) {
    reply(ctx, pool.stats(new PoolMessages.GetStats(poolOf(ctx))), PoolJson::stats);
  }

  private void health(RoutingContext ctx) {
    dev.tokenlease.lease.bus.ClusterNode.View cluster = pool.clusterView();
    if (cluster != null && !cluster.ownerLive()) {
      // No live owner: answered at once, not after the forwarding timeout.
      ctx.response().setStatusCode(503).putHeader("Retry-After", "1");
      ctx.json(PoolJson.ownership(new JsonObject().put("status", "unavailable")
          .put("reason", "No node owns the pools now; a takeover is under way."), cluster));
      return;
    }
    pool.status().onSuccess(report -> {
      ctx.response().setStatusCode(report.healthy() ? 200 : 503);
      JsonObject body = PoolJson.status(report);
      ctx.json(cluster == null ? body : PoolJson.ownership(body, cluster));
    }).onFailure(ctx::fail);
  }
}
