package dev.tokenlease.ops;

import dev.tokenlease.lease.bus.PoolClient;
import dev.tokenlease.m2m.Guard;
import dev.tokenlease.platform.http.RequestInput;
import dev.tokenlease.platform.metrics.Metrics;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.healthchecks.Status;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.healthchecks.HealthCheckHandler;

/**
 * What an operator's tools ask of the process: {@code /metrics} for Prometheus, and the probes
 * {@code /health/live} (the process and its event loops answer) and {@code /health/ready} (it can
 * take changes: start-up recovery done, which it is once the listener is open, and the database
 * confirming writes, within the backlog and lag bounds). {@code /api/health} stays as it is.
 */
public final class OpsRoutes {
  /** The scope a bearer token needs for {@code /metrics} when authentication is on ({@code admin} implies it). */
  public static final String METRICS_SCOPE = "metrics:read";
  /** How long a probe waits for the pool's event loop to answer. */
  private static final long PROBE_TIMEOUT_MILLIS = 2_000;
  private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

  private final Vertx vertx;
  private final PoolClient pool;
  private final Metrics metrics;
  private final java.util.List<RequestInput.Declared> declared;
  private final Guard guard;

  public OpsRoutes(Vertx vertx, PoolClient pool, Metrics metrics, java.util.List<RequestInput.Declared> declared,
      Guard guard) {
    this.vertx = vertx;
    this.pool = pool;
    this.metrics = metrics;
    this.declared = declared;
    this.guard = guard;
  }

  public void mount(Router router) {
    RequestInput.route(router, declared, HttpMethod.GET, "/metrics", guard.require(METRICS_SCOPE), this::scrape);
    // Probes stay open, as /api/health does: orchestrators call them without credentials.
    HealthCheckHandler live = HealthCheckHandler.create(vertx)
        .register("event-loops", PROBE_TIMEOUT_MILLIS, done -> {
          var cluster = pool.clusterView();
          if (cluster != null) {
            // A cluster's node is alive whoever owns the pools: its HTTP loop answered this.
            done.tryComplete(Status.OK(new JsonObject().put("node", cluster.node())));
            return;
          }
          pool.status()
              .onSuccess(report -> done.tryComplete(Status.OK()))
              .onFailure(err -> done.tryComplete(Status.KO(new JsonObject().put("reason", err.getMessage()))));
        });
    HealthCheckHandler ready = HealthCheckHandler.create(vertx)
        .register("pool", PROBE_TIMEOUT_MILLIS, done -> {
          var cluster = pool.clusterView();
          if (cluster != null && !cluster.ownerLive()) {
            done.tryComplete(Status.KO(new JsonObject().put("reason", "No node owns the pools now.")));
            return;
          }
          pool.status()
            .onSuccess(report -> done.tryComplete(report.healthy()
                ? Status.OK(new JsonObject().put("write_backlog", report.backlog()).put("write_lag_ms", report.writeLagMillis()))
                : Status.KO(new JsonObject().put("reason", report.degraded()))))
            .onFailure(err -> done.tryComplete(Status.KO(new JsonObject().put("reason", err.getMessage()))));
        });
    RequestInput.route(router, declared, HttpMethod.GET, "/health/live", live);
    RequestInput.route(router, declared, HttpMethod.GET, "/health/ready", ready);
  }

  /** The text is built on a worker: with many pools it is large, and the event loop has requests to answer. */
  private void scrape(RoutingContext ctx) {
    vertx.executeBlocking(metrics::scrape, false)
        .onSuccess(text -> ctx.response().putHeader(HttpHeaders.CONTENT_TYPE, PROMETHEUS_TEXT).end(text))
        .onFailure(ctx::fail);
  }
}
