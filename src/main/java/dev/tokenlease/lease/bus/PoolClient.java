package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.TokenView;
import dev.tokenlease.lease.persistence.History;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.EventBus;

/**
 * Typed access to the pool over the local event bus, for verticles in the same process. This is the
 * one place that departs from {@link dev.tokenlease.platform.LocalBus}'s request/reply: the request
 * still travels on the bus to the pool's event loop, but the answer completes the caller's promise on
 * its own context instead of coming back as a reply message (no reply address to register, no timeout
 * timer per call). Every lease request crosses here, and the benchmark's {@code crossing} row measures
 * the difference. The pool also answers plain request/reply (records in, records out) at the same
 * addresses. There is no timeout: the pool answers every call it receives, and it is stopped only
 * after the HTTP verticles.
 */
public final class PoolClient {
  private final Vertx vertx;
  private final EventBus bus;

  /** Set on a cluster's node: operations go to whichever node owns the pools. */
  private final PoolForwarding forwarding;

  public PoolClient(Vertx vertx) {
    this.vertx = vertx;
    this.bus = vertx.eventBus();
    this.forwarding = PoolForwarding.of(vertx);
  }

  public Future<Grant> activate(PoolMessages.Activate request) {
    if (forwarding != null) {
      // A waiting activation may be held up to its wait, and then answered.
      ClusterNode.View view = forwarding.view();
      long poolsAllow = view == null ? dev.tokenlease.platform.config.AppConfig.LONGEST_WAIT.toNanos()
          : java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(view.longestWaitMillis());
      long wait = request.waitHandle() == null ? 0 : Math.min(request.waitHandle().maxWaitNanos(), poolsAllow);
      return forwarding.call(PoolAddresses.ACTIVATE, request, wait);
    }
    return call(PoolAddresses.ACTIVATE, request);
  }

  public Future<TokenView> release(PoolMessages.Release request) {
    return call(PoolAddresses.RELEASE, request);
  }

  public Future<TokenView> renew(PoolMessages.Renew request) {
    return call(PoolAddresses.RENEW, request);
  }

  public Future<TokenView> get(PoolMessages.GetToken request) {
    return call(PoolAddresses.GET, request);
  }

  public Future<PoolMessages.TokenList> list(PoolMessages.ListTokens request) {
    return call(PoolAddresses.LIST, request);
  }

  public Future<PoolMessages.Cleared> clear(PoolMessages.ClearActive request) {
    return call(PoolAddresses.CLEAR, request);
  }

  public Future<History.TokenUsageList> tokenUsages(PoolMessages.TokenUsages request) {
    return call(PoolAddresses.TOKEN_USAGES, request);
  }

  public Future<History.UserUsagePage> userUsages(History.UserUsages request) {
    return call(PoolAddresses.USER_USAGES, request);
  }

  public Future<PoolMessages.StatsReport> stats(PoolMessages.GetStats request) {
    return call(PoolAddresses.STATS, request);
  }

  public Future<TokenView> revoke(PoolMessages.Revoke request) {
    return call(PoolAddresses.REVOKE, request);
  }

  /** Tells the pool that a waiting activation's caller went away; no answer. */
  public void cancelWait(PoolMessages.CancelWait request) {
    // In a cluster the wait may be held by another node's pool, which cannot know this caller's
    // handle: it ends there at its deadline (and a token granted meanwhile expires with its lease).
    bus.send(PoolAddresses.CANCEL_WAIT, request);
  }

  public Future<PoolMessages.PoolInfo> createPool(PoolMessages.CreatePool request) {
    return call(PoolAddresses.CREATE_POOL, request);
  }

  public Future<PoolMessages.PoolInfo> getPool(PoolMessages.GetPool request) {
    return call(PoolAddresses.GET_POOL, request);
  }

  public Future<PoolMessages.PoolList> listPools(PoolMessages.ListPools request) {
    return call(PoolAddresses.LIST_POOLS, request);
  }

  public Future<PoolMessages.PoolInfo> updatePool(PoolMessages.UpdatePool request) {
    return call(PoolAddresses.UPDATE_POOL, request);
  }

  public Future<PoolMessages.Deleted> deletePool(PoolMessages.DeletePool request) {
    return call(PoolAddresses.DELETE_POOL, request);
  }

  /** On a cluster's node, who owns the pools as this node knows it; null when not clustered. */
  public ClusterNode.View clusterView() {
    return forwarding == null ? null : forwarding.view();
  }

  public Future<PoolMessages.StatusReport> status() {
    return call(PoolAddresses.STATUS, new PoolMessages.PoolStatus());
  }

  @SuppressWarnings("unchecked")
  private <R> Future<R> call(String address, Object request) {
    if (forwarding != null) {
      return forwarding.call(address, request, 0);
    }
    Promise<Object> result = Promise.promise();
    bus.send(address, new PoolMessages.LocalCall(request, result, vertx.getOrCreateContext()));
    return (Future<R>) result.future();
  }
}
