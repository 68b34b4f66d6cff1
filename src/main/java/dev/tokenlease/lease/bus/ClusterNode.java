package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.persistence.PoolStore;
import dev.tokenlease.lease.persistence.UsageRepository;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.db.SharedPool;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One node of a cluster ({@code TOKENS_CLUSTER=true}): watches who owns the pools (the writer row in
 * PostgreSQL, a few times a second), takes them over when no owner is live, and gives them up when
 * its own ownership can no longer be held. The owner's {@link PoolVerticle} is deployed here only
 * while this node owns the pools; every node's routes reach it through {@link PoolForwarding}.
 *
 * <p>Ownership is a lease kept by the owner's own confirmed writes (it commits at least every
 * quarter of {@code TOKENS_PERSISTENCE_MAX_LAG}); another node claims only once the owner has
 * confirmed nothing for {@link #takeoverAfterMillis}, by which time the owner acknowledges nothing
 * more (it acknowledges only within the lag bound of a confirmed write, measured on its monotonic
 * clock), and the claim raises the epoch that fences out any batch the old owner still sends.
 */
public final class ClusterNode extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(ClusterNode.class);
  /** Room for clock-rate differences between the owner's monotonic clock and the database's. */
  static final long TAKEOVER_MARGIN_MILLIS = 500;
  private static final long WATCH_MILLIS = 200;
  /** The owner's announcements to the nodes: {@code {node, epoch, pools, longestWaitMillis}}. */
  static final String ANNOUNCEMENTS = "tokens.cluster.owner";
  /** A view or announcement older than this no longer counts. */
  private static final long STALE_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);

  /** What this node knows of the pools' ownership, as {@code /api/health} shows it. */
  public record View(String node, String owner, long epoch, List<String> pools, boolean ownerLive,
      long longestWaitMillis) {}

  private final AppConfig config;
  private final PgConnectOptions connect;
  private final MeterRegistry registry;
  private final PoolForwarding forwarding;
  private final long takeoverAfterMillis;
  private Pool pg;
  private long timer = -1;
  private boolean watching;
  private boolean deploying;
  private boolean stopping;
  private String deployment;
  private volatile View view;
  private io.vertx.core.eventbus.MessageConsumer<PoolForwarding.Committed> committed;
  private io.vertx.core.eventbus.MessageConsumer<Object> forwarded;
  private long readSentNanos;
  private io.vertx.core.json.JsonObject announced;
  private long announcedNanos;
  private io.vertx.core.eventbus.MessageConsumer<io.vertx.core.json.JsonObject> announcements;

  public ClusterNode(AppConfig config, PgConnectOptions connect, MeterRegistry registry, PoolForwarding forwarding) {
    this.config = config;
    this.connect = connect;
    this.registry = registry;
    this.forwarding = forwarding;
    this.takeoverAfterMillis = config.maxLag().toMillis() + TAKEOVER_MARGIN_MILLIS;
    this.view = new View(config.cluster().nodeId(), null, 0, List.of(), false, AppConfig.LONGEST_WAIT.toMillis());
    forwarding.viewSource(() -> view);
  }

  @Override
  public Future<?> start() {
    pg = SharedPool.handle(vertx, connect);
    announcements = vertx.eventBus().consumer(ANNOUNCEMENTS, message -> {
      // The newest owner wins: an old owner that has not yet heard it was fenced may still announce.
      io.vertx.core.json.JsonObject body = message.body();
      if (announced == null || body.getLong("epoch", 0L) >= announced.getLong("epoch", 0L)) {
        announced = body;
        announcedNanos = System.nanoTime();
      }
    });
    forwarded = PoolForwarding.serveNode(vertx, config.cluster().nodeId(), () -> deployment != null,
        config.cluster().forwardTimeout());
    // The owner's committed batches, for this node's live streams (the owner's own streams get them locally).
    committed = vertx.eventBus().<PoolForwarding.Committed>consumer(PoolForwarding.COMMITTED, message -> {
      if (deployment == null) {
        for (CommittedChanges batch : message.body().batches()) {
          vertx.eventBus().publish(PoolAddresses.COMMITTED, batch, PoolVerticle.TO_LOCAL_STREAMS);
        }
      }
    });
    timer = vertx.setPeriodic(WATCH_MILLIS, id -> watch());
    LOG.info("Cluster node {}: watching the pools' ownership (takeover after {} ms without a confirmed write)",
        config.cluster().nodeId(), takeoverAfterMillis);
    return Future.join(committed.completion(), forwarded.completion(), announcements.completion());
  }

  private void watch() {
    if (stopping) {
      return;
    }
    if (deployment != null && view.ownerLive() && config.cluster().nodeId().equals(view.owner())) {
      // The owner tells every node, over the cluster, so that a node cut off from the database still
      // knows where to forward.
      vertx.eventBus().publish(ANNOUNCEMENTS, new io.vertx.core.json.JsonObject().put("node", view.owner())
          .put("epoch", view.epoch()).put("pools", new io.vertx.core.json.JsonArray(view.pools()))
          .put("longestWaitMillis", view.longestWaitMillis()));
    }
    if (watching) {
      if (System.nanoTime() - readSentNanos > STALE_NANOS) {
        fromAnnouncement(); // the database does not answer
      }
      return;
    }
    watching = true;
    readSentNanos = System.nanoTime();
    UsageRepository.readOwnership(pg).onComplete(read -> {
      watching = false;
      if (read.failed()) {
        // This node cannot see the database: it cannot take over, and if it owns, its pool refuses by itself.
        fromAnnouncement();
        return;
      }
      UsageRepository.Ownership ownership = read.result();
      boolean live = ownership.running() && ownership.silentMillis() < takeoverAfterMillis;
      view = new View(config.cluster().nodeId(), ownership.running() ? ownership.owner() : null, ownership.epoch(),
          ownership.pools(), live, ownership.longestWaitMillis());
      if (deployment == null && !deploying && !live && !stopping) {
        takeOver();
      }
    });
  }

  /** Without the database: the owner as it last announced itself, if that was recent and not this node. */
  private void fromAnnouncement() {
    io.vertx.core.json.JsonObject last = announced;
    boolean fresh = last != null && System.nanoTime() - announcedNanos < STALE_NANOS
        && !config.cluster().nodeId().equals(last.getString("node"));
    if (fresh) {
      view = new View(config.cluster().nodeId(), last.getString("node"), last.getLong("epoch"),
          last.getJsonArray("pools").stream().map(String::valueOf).toList(), true, last.getLong("longestWaitMillis"));
    } else {
      view = new View(config.cluster().nodeId(), view.owner(), view.epoch(), view.pools(), false,
          view.longestWaitMillis());
    }
  }

  private void takeOver() {
    deploying = true;
    PoolVerticle pool = new PoolVerticle(config, connect, registry,
        new PoolVerticle.ClusterRole(config.cluster().nodeId(), takeoverAfterMillis,
            () -> context.runOnContext(v -> stepDown())));
    vertx.deployVerticle(pool).onComplete(done -> {
      deploying = false;
      if (done.succeeded()) {
        deployment = done.result();
        forwarding.local(true);
        LOG.info("Node {} owns the pools now", config.cluster().nodeId());
        if (stopping) {
          stepDown();
        }
      } else if (done.cause() instanceof PoolStore.OwnedElsewhereException
          || done.cause() instanceof PoolStore.FencedException) {
        LOG.debug("Another node took the pools first: {}", done.cause().getMessage());
      } else {
        LOG.warn("Could not take over the pools: {}", done.cause().toString());
      }
    });
  }

  /** Gives the pools up: the pool verticle writes what it can, then is undeployed; watching goes on. */
  private Future<Void> stepDown() {
    forwarding.local(false);
    String id = deployment;
    deployment = null;
    if (id == null) {
      return Future.succeededFuture();
    }
    return vertx.undeploy(id).onComplete(done -> LOG.info("Node {} no longer owns the pools",
        config.cluster().nodeId())).recover(err -> Future.succeededFuture());
  }

  /** A planned stop: the pools are written and handed over (the next owner claims at once). */
  @Override
  public Future<?> stop() {
    stopping = true;
    if (timer != -1) {
      vertx.cancelTimer(timer);
    }
    return stepDown()
        .eventually(() -> Future.join(committed.unregister(), forwarded.unregister(), announcements.unregister()))
        .eventually(() -> pg.close());
  }
}
