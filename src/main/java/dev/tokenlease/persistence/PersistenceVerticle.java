package dev.tokenlease.persistence;

import dev.tokenlease.config.AckMode;
import dev.tokenlease.config.AppConfig;
import dev.tokenlease.pool.PoolError;
import dev.tokenlease.pool.PoolSnapshot;
import dev.tokenlease.pool.bus.PoolAddresses;
import dev.tokenlease.pool.bus.CommittedChanges;
import dev.tokenlease.pool.bus.PoolJson;
import dev.tokenlease.pool.bus.PoolMessages;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.pgclient.PgConnection;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns the database at run time: writes pool changes behind in batches, answers history reads once
 * every change queued before them is committed, and hands the pool its start-up snapshot.
 */
public final class PersistenceVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(PersistenceVerticle.class);
  static final long HEARTBEAT_MILLIS = 1_000;
  private static final Duration SHUTDOWN_FLUSH_LIMIT = Duration.ofSeconds(15);

  private final AppConfig config;
  private final PgConnectOptions connectOptions;
  private final PersistenceStatus status;
  private Pool pg;
  private SqlConnection lockConnection;
  private UsageRepository repository;
  private WriteBehindBatcher batcher;
  private PoolSnapshot snapshot;
  private long flushTimer = -1;
  private long heartbeatTimer = -1;
  private long relockTimer = -1;
  private boolean stopping;
  private List<MessageConsumer<?>> consumers = List.of();

  public PersistenceVerticle(AppConfig config, PgConnectOptions connectOptions, PersistenceStatus status) {
    this.config = config;
    this.connectOptions = connectOptions;
    this.status = status;
  }

  @Override
  public Future<?> start() {
    PgConnectOptions options = new PgConnectOptions(connectOptions).setCachePreparedStatements(true)
        // A generic plan made while usages was small seq-scans it for every batch once it is large
        // (throughput fell by half within a minute); a custom plan sees the table as it is now.
        .addProperty("plan_cache_mode", "force_custom_plan");
    if (config.ackMode() == AckMode.MEMORY) {
      // Memory mode already acknowledges before writing; waiting for the WAL flush buys nothing.
      options.addProperty("synchronous_commit", "off");
    }
    pg = PgBuilder.pool()
        .with(new PoolOptions().setMaxSize(config.pgPoolSize()))
        .connectingTo(options)
        .using(vertx)
        .build();
    repository = new UsageRepository(pg);
    boolean memory = config.ackMode() == AckMode.MEMORY;
    batcher = new WriteBehindBatcher(vertx, repository::write,
        // Locally the JSON is built only if someone receives it; across a cluster peers need plain JSON.
        committed -> vertx.eventBus().publish(PoolAddresses.EVENTS,
            vertx.isClustered() ? PoolJson.events(committed) : new CommittedChanges(committed)),
        status, config.batchSize(), !memory);
    return takeInstanceLock()
        .compose(v -> repository.ensureTokens(config.poolSize()))
        .compose(v -> repository.startRun(config.ackMode(), config.leaseTtl().toMillis(), HEARTBEAT_MILLIS))
        .compose(repository::loadSnapshot)
        .compose(loaded -> {
          snapshot = loaded;
          if (memory) {
            flushTimer = vertx.setPeriodic(config.flushInterval().toMillis(), id -> batcher.tick());
            heartbeatTimer = vertx.setPeriodic(HEARTBEAT_MILLIS, id -> repository.heartbeat()
                .onFailure(err -> LOG.warn("Heartbeat failed: {}", WriteBehindBatcher.describe(err))));
          }
          EventBus bus = vertx.eventBus();
          consumers = List.of(
              bus.<PoolMessages.WriteChanges>localConsumer(PoolAddresses.PERSIST_WRITE, this::onWrite),
              bus.<PoolMessages.SnapshotRequest>localConsumer(PoolAddresses.PERSIST_SNAPSHOT, this::onSnapshot),
              bus.<PoolMessages.TokenUsages>localConsumer(PoolAddresses.PERSIST_TOKEN_USAGES,
                  msg -> afterPendingWrites(msg, () -> repository.tokenUsages(msg.body().tokenId()))),
              bus.<PoolMessages.UserUsages>localConsumer(PoolAddresses.PERSIST_USER_USAGES,
                  msg -> afterPendingWrites(msg, () -> repository.userUsages(msg.body()))));
          return Future.all(consumers.stream().map(MessageConsumer::completion).toList());
        })
        .onFailure(err -> closeQuietly());
  }

  /**
   * One service instance per database: two would hand out the same tokens. The lock lives as long
   * as its connection; if that connection is lost, mutations are refused until the lock is held
   * again (another instance may have taken it meanwhile, and then this one must not write).
   */
  private Future<Void> takeInstanceLock() {
    return PgConnection.connect(vertx, connectOptions)
        .compose(conn -> conn.preparedQuery(Sql.TRY_INSTANCE_LOCK).execute(Tuple.of(Sql.INSTANCE_LOCK_KEY))
            .compose(rows -> {
              if (!rows.iterator().next().getBoolean("locked")) {
                return conn.close().transform(closed -> Future.<Void>failedFuture(new IllegalStateException(
                    "another token-service instance is running on this database")));
              }
              lockConnection = conn;
              conn.closeHandler(v -> lockLost());
              status.lockHeld(true);
              return Future.succeededFuture();
            }));
  }

  private void lockLost() {
    if (stopping) {
      return;
    }
    status.lockHeld(false);
    LOG.error("Lost the database instance lock; refusing changes until it is held again");
    relockTimer = vertx.setTimer(1_000, id -> takeInstanceLock()
        .onSuccess(v -> LOG.info("Database instance lock held again"))
        .onFailure(err -> lockLost()));
  }

  private void onSnapshot(Message<PoolMessages.SnapshotRequest> msg) {
    if (snapshot == null) {
      msg.fail(PoolError.INTERNAL.code(), "the snapshot was already handed over");
      return;
    }
    msg.reply(snapshot);
    snapshot = null;
  }

  private void onWrite(Message<PoolMessages.WriteChanges> msg) {
    Promise<Void> ack = null;
    if (msg.replyAddress() != null) {
      ack = Promise.promise();
      ack.future().onComplete(result -> {
        if (result.succeeded()) {
          msg.reply(null);
        } else {
          msg.fail(PoolError.INTERNAL.code(), "Failed to process request: " + result.cause().getMessage());
        }
      });
    }
    batcher.add(msg.body().changes(), ack);
  }

  private <T> void afterPendingWrites(Message<?> msg, Supplier<Future<T>> query) {
    batcher.barrier()
        .compose(v -> query.get())
        .onSuccess(msg::reply)
        .onFailure(err -> msg.fail(PoolError.INTERNAL.code(),
            "Failed to process request: " + WriteBehindBatcher.describe(err)));
  }

  @Override
  public Future<?> stop() {
    stopping = true;
    if (relockTimer != -1) {
      vertx.cancelTimer(relockTimer);
    }
    if (flushTimer != -1) {
      vertx.cancelTimer(flushTimer);
    }
    if (heartbeatTimer != -1) {
      vertx.cancelTimer(heartbeatTimer);
    }
    Promise<Void> drained = Promise.promise();
    batcher.closing();
    long deadline = System.nanoTime() + SHUTDOWN_FLUSH_LIMIT.toNanos();
    awaitIdle(drained, deadline);
    return drained.future()
        .compose(v -> repository.stopRun())
        .onSuccess(v -> LOG.info("All changes written; stopped cleanly"))
        .recover(err -> {
          LOG.error("Stopping with {} changes unwritten: {}", batcher.pendingChanges(), WriteBehindBatcher.describe(err));
          return Future.succeededFuture();
        })
        .eventually(this::closeQuietly);
  }

  private void awaitIdle(Promise<Void> drained, long deadline) {
    if (batcher.idle()) {
      drained.complete();
    } else if (System.nanoTime() - deadline > 0) {
      batcher.cancelTimers();
      drained.fail(new IllegalStateException("the database did not accept the last changes in time"));
    } else {
      vertx.setTimer(20, id -> awaitIdle(drained, deadline));
    }
  }

  private Future<Void> closeQuietly() {
    Future<Void> lock = lockConnection == null ? Future.succeededFuture() : lockConnection.close();
    return Future.join(lock, pg.close()).<Void>mapEmpty().recover(err -> Future.succeededFuture());
  }
}
