package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.Overflow;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.core.PoolStats;
import dev.tokenlease.lease.core.TokenView;
import dev.tokenlease.lease.persistence.History;
import dev.tokenlease.platform.Paging;
import dev.tokenlease.platform.Timestamps;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;

/**
 * The JSON bodies of the API, shared by HTTP and the {@code tokens.api.*} addresses. Field names and
 * the timestamp format ({@code 2025-12-19T15:12:02Z}, UTC, whole seconds) follow the contract.
 */
public final class PoolJson {
  private PoolJson() {}

  /** The token object of {@code GET /api/tokens/:id}. */
  public static JsonObject token(TokenView view) {
    return listItem(view).put("usage_count", view.usageCount());
  }

  /** One entry of {@code GET /api/tokens}: the token object without its usage count. */
  public static JsonObject listItem(TokenView view) {
    return new JsonObject()
        .put("token_id", view.tokenId().toString())
        .put("state", view.state().wireName())
        .put("current_user_id", view.currentUserId() == null ? null : view.currentUserId().toString())
        .put("activated_at", timestamp(view.activatedAt()))
        .put("released_at", timestamp(view.releasedAt()));
  }

  /**
   * The reply to an activation: the contract's two fields plus the lease's fencing number and end,
   * and, only when it took the token from someone, the lease it evicted. Without an eviction the
   * answer stays the seed's shape plus {@code generation} and {@code expires_at}.
   */
  public static JsonObject grant(Grant grant) {
    TokenView view = grant.lease();
    Grant.Evicted evicted = grant.evicted();
    JsonObject json = new JsonObject()
        .put("token_id", view.tokenId().toString())
        .put("user_id", view.currentUserId().toString())
        .put("generation", view.generation())
        .put("expires_at", timestamp(view.expiresAt()));
    if (evicted != null) {
      json.put("evicted", new JsonObject()
          .put("token_id", evicted.tokenId().toString())
          .put("user_id", evicted.userId().toString())
          .put("generation", evicted.generation())
          .put("held_ms", evicted.heldMillis()));
    }
    return json;
  }

  /**
   * {@code GET /api/pools/:pool/stats}: size and occupancy now; counters, hold times and wait times
   * since start, from committed changes, and the refusals of a full pool and waits that ran out.
   */
  public static JsonObject stats(PoolMessages.StatsReport report) {
    PoolStats.Report since = report.since();
    return new JsonObject()
        .put("pool", report.pool())
        .put("size", report.size())
        .put("active", report.active())
        .put("available", report.available())
        .put("waiting", report.waiting())
        .put("counters", new JsonObject()
            .put("granted", since.granted())
            .put("released", since.released())
            .put("expired", since.expired())
            .put("evicted", since.evicted())
            .put("revoked", since.revoked())
            .put("cleared", since.cleared())
            .put("rejected", report.rejected())
            .put("timed_out", report.timedOut()))
        .put("hold_ms", new JsonObject()
            .put("p50", since.holdP50()).put("p90", since.holdP90()).put("p99", since.holdP99()).put("max", since.holdMax()))
        .put("wait_ms", new JsonObject().put("p50", since.waitP50()).put("p99", since.waitP99()).put("max", since.waitMax()));
  }

  /** The pool object of the pools API: its settings (durations in ISO-8601, null for none) and occupancy now. */
  public static JsonObject pool(PoolMessages.PoolInfo info) {
    PoolSettings settings = info.settings();
    return new JsonObject()
        .put("name", settings.name())
        .put("size", info.size())
        .put("lease_ttl", settings.leaseTtl().toString())
        .put("overflow", settings.overflow().wireName())
        .put("max_wait", settings.overflow() == Overflow.WAIT ? settings.maxWait().toString() : null)
        .put("max_hold", settings.maxHold() == null ? null : settings.maxHold().toString())
        .put("max_leases_per_user", settings.maxLeasesPerUser() == 0 ? null : settings.maxLeasesPerUser())
        .put("active", info.active())
        .put("available", info.available())
        .put("waiting", info.waiting())
        .put("created_at", timestamp(info.createdAt()));
  }

  /** A page of {@code GET /api/pools}, in the service's page shape. */
  public static JsonObject pools(PoolMessages.PoolList list) {
    JsonArray items = new JsonArray();
    list.pools().forEach(info -> items.add(pool(info)));
    return Paging.page("pools", items, list.total(), list.page(), list.limit());
  }

  public static JsonObject deleted(PoolMessages.Deleted deleted) {
    return new JsonObject().put("name", deleted.name()).put("cleared_count", deleted.cleared()).put("status", "ok");
  }

  /** The reply to release and renew: the token object, the lease's generation and (if open) its end. */
  public static JsonObject lease(TokenView view) {
    return token(view).put("generation", view.generation()).put("expires_at", timestamp(view.expiresAt()));
  }

  public static JsonObject tokenList(PoolMessages.TokenList list) {
    JsonArray tokens = new JsonArray();
    for (TokenView view : list.tokens()) {
      tokens.add(listItem(view));
    }
    return new JsonObject().put("tokens", tokens);
  }

  public static JsonObject cleared(PoolMessages.Cleared cleared) {
    return new JsonObject().put("cleared_count", cleared.count()).put("status", "ok");
  }

  public static JsonObject tokenUsages(History.TokenUsageList list) {
    JsonArray usages = new JsonArray();
    for (History.Usage usage : list.usages()) {
      usages.add(new JsonObject()
          .put("user_id", usage.userId().toString())
          .put("started_at", timestamp(usage.startedAt()))
          .put("ended_at", timestamp(usage.endedAt())));
    }
    return new JsonObject().put("token_id", list.tokenId().toString()).put("usages", usages);
  }

  public static JsonObject userUsages(History.UserUsagePage page) {
    JsonArray usages = new JsonArray();
    for (History.Usage usage : page.usages()) {
      usages.add(new JsonObject()
          .put("token_id", usage.tokenId().toString())
          .put("started_at", timestamp(usage.startedAt()))
          .put("ended_at", timestamp(usage.endedAt()))
          .put("end_reason", usage.endReason() == null ? null : usage.endReason().wireName())
          .put("pool", usage.pool()));
    }
    Long next = page.nextBeforeGeneration();
    return new JsonObject()
        .put("user_id", page.userId().toString())
        .put("usages", usages)
        .put("next_cursor", next == null ? null : PoolMessages.encodeCursor(next));
  }

  public static JsonObject status(PoolMessages.StatusReport report) {
    return new JsonObject()
        .put("status", report.healthy() ? "ok" : "degraded")
        .put("pool_size", report.size())
        .put("active", report.active())
        .put("available", report.available())
        .put("last_generation", report.lastGeneration())
        .put("write_backlog", report.backlog())
        .put("write_lag_ms", report.writeLagMillis())
        .put("last_confirmed_write_ms", report.sinceConfirmedWriteMillis())
        .put("persistence_error", report.persistenceFailure())
        .put("instance_lock", report.instanceLockHeld() ? "held" : "lost")
        .put("reason", report.degraded());
  }

  /**
   * A cluster node's health adds {@code node} (this node's id) and {@code pools: [{pool, owner,
   * epoch}]}: every pool has the pools' owner (null while none is live) and the writer epoch.
   */
  public static JsonObject ownership(JsonObject body, ClusterNode.View view) {
    JsonArray pools = new JsonArray();
    String owner = view.ownerLive() ? view.owner() : null;
    for (String pool : view.pools()) {
      pools.add(new JsonObject().put("pool", pool).put("owner", owner).put("epoch", view.epoch()));
    }
    return body.put("node", view.node()).put("pools", pools);
  }

  /**
   * Committed changes as published on {@code tokens.events}: {@code {changes: [...]}} in commit order,
   * the first with id {@code firstId} and each next one the id after (no ids if {@link CommittedChanges#NO_IDS}).
   */
  public static JsonObject events(java.util.List<PoolChange> changes, long firstId) {
    JsonArray array = new JsonArray(new java.util.ArrayList<>(changes.size()));
    long id = firstId;
    for (PoolChange change : changes) {
      array.add(event(change, id));
      if (id != CommittedChanges.NO_IDS) {
        id++;
      }
    }
    return new JsonObject().put("changes", array);
  }

  /** One committed change as on {@code tokens.events}; {@code id} is left out if {@link CommittedChanges#NO_IDS}. */
  public static JsonObject event(PoolChange change, long id) {
    JsonObject event = new JsonObject();
    if (id != CommittedChanges.NO_IDS) {
      event.put("id", id);
    }
    return event
        .put("type", change.eventType())
        .put("pool", change.pool())
        .put("token_id", change.tokenId().toString())
        .put("user_id", change.userId().toString())
        .put("generation", change.generation())
        .put("started_at", timestamp(change.startedAtMillis()))
        .put("expires_at", timestamp(change.expiresAtMillis()))
        .put("ended_at", timestamp(change.endedAtMillis()));
  }

  public static String timestamp(Instant instant) {
    return instant == null ? null : Timestamps.format(instant.toEpochMilli());
  }

  private static String timestamp(long millis) {
    return millis == PoolChange.NO_TIME ? null : Timestamps.format(millis);
  }
}
