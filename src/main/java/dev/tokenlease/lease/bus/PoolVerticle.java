package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.Overflow;
import dev.tokenlease.lease.core.PoolSnapshot;
import dev.tokenlease.lease.core.PoolStats;
import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.lease.core.TokenView;
import dev.tokenlease.lease.persistence.History;
import dev.tokenlease.lease.persistence.PoolStore;
import dev.tokenlease.lease.persistence.UsageRepository;
import dev.tokenlease.lease.persistence.WriteBehindBatcher;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.LocalBus;
import dev.tokenlease.platform.config.AckMode;
import dev.tokenlease.platform.config.AppConfig;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.pgclient.PgException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The single owner of the token pool and of its writes. Every operation arrives as an event-bus
 * message and runs on this verticle's event loop, one at a time, so no locks are needed and no
 * token can be held by two users. Replies come from memory; in durable mode a mutation's reply
 * waits until the batch that holds its changes has committed, and a change the database did not
 * take is undone here before its caller hears of it. The write-behind batches run on the same event
 * loop, so a change, its undo and its acknowledgment never race.
 *
 * <p>Deploy exactly one instance per database.
 */
public final class PoolVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(PoolVerticle.class);
  /** How far ahead of use generations are reserved in the database. */
  static final long GENERATIONS_RESERVED_AHEAD = 100_000;
  private static final long TICK_MILLIS = 20;
  private static final int CLAIM_ATTEMPTS = 20;
  private static final Duration SHUTDOWN_FLUSH_LIMIT = Duration.ofSeconds(15);
  /** Committed batches to this process's live streams: by reference, never over the cluster. */
  private static final DeliveryOptions TO_LOCAL_STREAMS =
      new DeliveryOptions().setCodecName(CommittedChanges.BY_REFERENCE).setLocalOnly(true);

  private final AppConfig config;
  private final Function<Vertx, PoolStore> storeFactory;
  private final Clock clock;
  private final LongSupplier nanoTime;
  private final boolean durable;
  private final List<MessageConsumer<?>> consumers = new ArrayList<>();
  /** Counted from committed batches only, on this loop. */
  private final PoolStats stats = new PoolStats();
  private PoolStore store;
  private WriteBehindBatcher batcher;
  private TokenPool pool;
  private long epoch;
  private ChangeIds changeIds;
  /** When the claim that the database confirmed was sent: the first proof that this writer is alive. */
  private long claimSentNanos;
  private long sweepTimer = -1;
  private long tickTimer = -1;

  public PoolVerticle(AppConfig config, PgConnectOptions connectOptions) {
    this(config, vertx -> UsageRepository.open(vertx, connectOptions, config.pgPoolSize(), config.ackTimeout().toMillis(),
        config.leaseTtl().toMillis()),
        Clock.systemUTC(), System::nanoTime);
  }

  /**
   * @param storeFactory makes the pool's store once the verticle has its Vert.x instance (the unit
   *     test passes one in memory)
   * @param nanoTime a monotonic clock, as {@link System#nanoTime()}
   */
  PoolVerticle(AppConfig config, Function<Vertx, PoolStore> storeFactory, Clock clock, LongSupplier nanoTime) {
    this.config = config;
    this.storeFactory = storeFactory;
    this.clock = clock;
    this.nanoTime = nanoTime;
    this.durable = config.ackMode() == AckMode.DURABLE;
  }

  @Override
  public Future<?> start() {
    store = storeFactory.apply(vertx);
    return store.takeInstanceLock()
        .compose(v -> store.ensureTokens(config.poolSize()))
        .compose(v -> claim(CLAIM_ATTEMPTS))
        .compose(claim -> store.loadSnapshot(claim.lastGeneration(),
                claim.blockedForMillis() > 0 ? clock.millis() + claim.blockedForMillis() : PoolChange.NO_TIME)
            .map(snapshot -> {
              begin(snapshot, claim, claimSentNanos);
              return claim;
            }))
        .compose(claim -> Future.all(consumers.stream().map(MessageConsumer::completion).toList()))
        .onFailure(err -> closeQuietly());
  }

  /**
   * Takes over as the writer. The writer row can still be locked by a late statement of a process
   * that died while the server was stalled; such a statement ends soon, so the claim is retried.
   */
  private Future<PoolStore.WriterClaim> claim(int attemptsLeft) {
    long sent = nanoTime.getAsLong();
    return store.claim(config.ackMode(), config.leaseTtl().toMillis(), config.maxLag().toMillis(),
        GENERATIONS_RESERVED_AHEAD).onSuccess(claimed -> claimSentNanos = sent).recover(err -> {
          if (attemptsLeft <= 1 || !(err instanceof PgException pg && "55P03".equals(pg.getSqlState()))) {
            return Future.failedFuture(err);
          }
          LOG.warn("The writer row is locked by a late statement; claiming again in a second");
          return vertx.timer(1, TimeUnit.SECONDS).compose(t -> claim(attemptsLeft - 1));
        });
  }

  private void begin(PoolSnapshot snapshot, PoolStore.WriterClaim claim, long claimSent) {
    epoch = claim.epoch();
    changeIds = new ChangeIds(epoch);
    pool = new TokenPool(snapshot, config.leaseTtl(), clock, nanoTime, durable);
    pool.overflow(Overflow.fromWireName(config.overflow()));
    pool.maxLeasesPerUser(config.maxLeasesPerUser());
    pool.limitGenerations(claim.reservedUpTo());
    batcher = new WriteBehindBatcher(store, new BatchListener(), nanoTime, durable, config.batchSize(),
        config.ackTimeout().toNanos(), config.maxLag().toNanos(), config.flushInterval().toNanos(),
        claim.epoch(), claim.lastBatch(), claimSent);
    // Leases that ran out while the service was down: closed from the snapshot, nothing to undo.
    write(pool.drainChanges(), null, durable ? pool.undoMark() : -1);
    serve(PoolAddresses.ACTIVATE, PoolAddresses.JSON_ACTIVATE, PoolMessages::activate, this::activate, PoolJson::grant);
    serve(PoolAddresses.RELEASE, PoolAddresses.JSON_RELEASE, PoolMessages::release, this::release, PoolJson::lease);
    serve(PoolAddresses.RENEW, PoolAddresses.JSON_RENEW, PoolMessages::renew, this::renew, PoolJson::lease);
    serve(PoolAddresses.GET, PoolAddresses.JSON_GET, PoolMessages::getToken, this::get, PoolJson::token);
    serve(PoolAddresses.LIST, PoolAddresses.JSON_LIST, PoolMessages::listTokens, this::list, PoolJson::tokenList);
    serve(PoolAddresses.CLEAR, PoolAddresses.JSON_CLEAR, PoolMessages::clearActive, this::clear, PoolJson::cleared);
    serve(PoolAddresses.TOKEN_USAGES, PoolAddresses.JSON_TOKEN_USAGES, PoolMessages::tokenUsages,
        this::tokenUsages, PoolJson::tokenUsages);
    serve(PoolAddresses.USER_USAGES, PoolAddresses.JSON_USER_USAGES, PoolMessages::userUsages,
        this::userUsages, PoolJson::userUsages);
    report(PoolAddresses.STATUS, this::status);
    report(PoolAddresses.STATS, () -> new PoolMessages.StatsReport(pool.size(), pool.activeCount(),
        pool.availableCount(), pool.rejectedCount(), stats.report()));
    sweepTimer = vertx.setPeriodic(config.sweepInterval().toMillis(), id -> sweep());
    tickTimer = vertx.setPeriodic(Math.max(1, Math.min(TICK_MILLIS, config.flushInterval().toMillis())),
        id -> batcher.tick());
    LOG.info("Pool ready: {} tokens, {} active, lease TTL {}, {} acknowledgments, writer epoch {}{}", pool.size(),
        pool.activeCount(), config.leaseTtl(), config.ackMode().name().toLowerCase(java.util.Locale.ROOT), epoch,
        claim.blockedForMillis() > 0
            ? ", activations wait " + claim.blockedForMillis() + " ms after an unclean stop in memory mode" : "");
  }

  /** Writes everything still pending, then records a clean stop; a stop that cannot is left unclean. */
  @Override
  public Future<?> stop() {
    if (sweepTimer != -1) {
      vertx.cancelTimer(sweepTimer);
    }
    if (batcher == null) {
      return closeQuietly();
    }
    Promise<Void> drained = Promise.promise();
    batcher.closing();
    awaitIdle(drained, nanoTime.getAsLong() + SHUTDOWN_FLUSH_LIMIT.toNanos());
    return drained.future()
        .compose(v -> store.stopRun(epoch, pool.lastGeneration()))
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
    } else if (batcher.fenced() || nanoTime.getAsLong() - deadline > 0) {
      drained.fail(new IllegalStateException("the database did not accept the last changes in time"));
    } else {
      vertx.setTimer(20, id -> awaitIdle(drained, deadline));
    }
  }

  private Future<Void> closeQuietly() {
    if (tickTimer != -1) {
      vertx.cancelTimer(tickTimer);
    }
    return store == null ? Future.succeededFuture() : store.close();
  }

  /** Answers a local read of the verticle's own state, from memory. */
  private void report(String address, Supplier<?> state) {
    consumers.add(vertx.eventBus().<Object>localConsumer(address, msg -> {
      if (msg.body() instanceof PoolMessages.LocalCall call) {
        call.complete(Future.succeededFuture(state.get()));
      } else {
        msg.reply(state.get());
      }
    }));
  }

  /**
   * Registers one operation twice: on its local address (records in, records out) and on its JSON
   * address (the HTTP bodies in and out, for callers elsewhere in the cluster).
   */
  private <Q, R> void serve(String local, String json, Function<JsonObject, Q> parse,
      Function<Q, Future<R>> handler, Function<R, JsonObject> encode) {
    EventBus bus = vertx.eventBus();
    consumers.add(bus.<Object>localConsumer(local, msg -> {
      if (msg.body() instanceof PoolMessages.LocalCall call) {
        @SuppressWarnings("unchecked")
        Q request = (Q) call.request();
        handler.apply(request).onComplete(call::complete);
      } else {
        @SuppressWarnings("unchecked")
        Q request = (Q) msg.body();
        LocalBus.reply(msg, handler.apply(request));
      }
    }));
    consumers.add(bus.<Object>consumer(json, msg -> {
      Future<R> result;
      if (msg.body() != null && !(msg.body() instanceof JsonObject)) {
        result = Future.failedFuture(new ApiException(ErrorCode.BAD_REQUEST, "Message body must be a JSON object."));
      } else {
        try {
          JsonObject input = msg.body() == null ? new JsonObject() : (JsonObject) msg.body();
          result = handler.apply(parse.apply(input));
        } catch (ApiException e) {
          result = Future.failedFuture(e);
        }
      }
      respond(msg, result, encode);
    }));
  }

  private static <R, O> void respond(Message<?> msg, Future<R> result, Function<R, O> encode) {
    result.onComplete(done -> {
      if (done.succeeded()) {
        msg.reply(encode.apply(done.result()));
        return;
      }
      Throwable cause = done.cause();
      if (cause instanceof ApiException e && e.error() == ErrorCode.OUTCOME_UNKNOWN) {
        return; // no answer: the caller's own timeout tells it the outcome is unknown
      }
      if (cause instanceof ApiException e) {
        msg.fail(e.error().code(), e.getMessage());
      } else if (cause instanceof ReplyException e && e.failureType() == ReplyFailure.RECIPIENT_FAILURE) {
        msg.fail(e.failureCode(), e.getMessage());
      } else {
        msg.fail(ErrorCode.INTERNAL.code(), "Failed to process request: " + cause.getMessage());
      }
    });
  }

  private Future<Grant> activate(PoolMessages.Activate request) {
    return mutate(() -> pool.activate(request.userId(), request.idempotencyKey()))
        .compose(grant -> committed(request, grant));
  }

  /**
   * Durable mode: a retry under an Idempotency-Key writes nothing, but the grant it repeats may
   * still wait for its commit, and a 200 must not run ahead of it. Everything queued before a
   * barrier is committed or undone when the barrier completes; an undone grant takes its key with
   * it, so asking the pool again then either repeats a committed grant or activates anew.
   */
  private Future<Grant> committed(PoolMessages.Activate request, Grant grant) {
    if (!durable || !grant.repeated()) {
      return Future.succeededFuture(grant);
    }
    return batcher.barrier()
        .recover(err -> Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE, err.getMessage())))
        .compose(v -> mutate(() -> pool.activate(request.userId(), request.idempotencyKey())))
        .compose(again -> again.repeated() && again.lease().generation() == grant.lease().generation()
            ? Future.succeededFuture(again) : committed(request, again));
  }

  private Future<TokenView> release(PoolMessages.Release request) {
    return mutate(() -> pool.release(request.tokenId(), request.userId(), request.generation()));
  }

  private Future<TokenView> renew(PoolMessages.Renew request) {
    return mutate(() -> pool.renew(request.tokenId(), request.userId(), request.generation()));
  }

  private Future<PoolMessages.Cleared> clear(PoolMessages.ClearActive request) {
    return mutate(() -> new PoolMessages.Cleared(pool.clear()));
  }

  private Future<TokenView> get(PoolMessages.GetToken request) {
    return read(() -> pool.get(request.tokenId()));
  }

  private Future<PoolMessages.TokenList> list(PoolMessages.ListTokens request) {
    return read(() -> new PoolMessages.TokenList(pool.list(request.state())));
  }

  /**
   * History lives in PostgreSQL; leases that ran out are retired and queued for writing ahead of
   * the query, which runs only once everything queued before it is committed.
   */
  private Future<History.TokenUsageList> tokenUsages(PoolMessages.TokenUsages request) {
    return read(() -> {
      if (!pool.contains(request.tokenId())) {
        throw new ApiException(ErrorCode.NOT_FOUND, "Token not found");
      }
      pool.expireDue();
      return request;
    }).compose(query -> history(() -> store.tokenUsages(query.tokenId())));
  }

  private Future<History.UserUsagePage> userUsages(History.UserUsages request) {
    return read(() -> {
      pool.expireDue();
      return request;
    }).compose(query -> history(() -> store.userUsages(query)));
  }

  private <T> Future<T> history(Supplier<Future<T>> query) {
    return batcher.barrier().compose(v -> query.get()).recover(err -> Future.failedFuture(
        new ApiException(ErrorCode.UNAVAILABLE, "Failed to process request: " + WriteBehindBatcher.describe(err))));
  }

  private PoolMessages.StatusReport status() {
    long lag = TimeUnit.NANOSECONDS.toMillis(batcher.oldestUnwrittenNanos());
    long sinceConfirmed = TimeUnit.NANOSECONDS.toMillis(batcher.sinceConfirmedNanos());
    String degraded = refusal();
    if (degraded == null && batcher.failure() != null) {
      degraded = "Database writes are failing: " + batcher.failure();
    }
    if (degraded == null && sinceConfirmed >= config.maxLag().toMillis()) {
      degraded = "The database has confirmed no write for " + sinceConfirmed + " ms.";
    }
    return new PoolMessages.StatusReport(pool.size(), pool.activeCount(), pool.availableCount(),
        pool.lastGeneration(), batcher.pendingChanges(), lag, sinceConfirmed, batcher.failure(), store.instanceLockHeld(),
        degraded, changeIds.next());
  }

  private void sweep() {
    read(pool::expireDue);
  }

  /** Why changes are refused now (the pool cannot promise to keep them), or null. */
  private String refusal() {
    if (!store.instanceLockHeld()) {
      return "Lost the database session that makes this the only instance; changes wait until it is back.";
    }
    String refusal = batcher.refusal();
    if (refusal != null) {
      return refusal;
    }
    if (batcher.pendingChanges() >= config.queueCapacity()) {
      return "Too many changes are waiting to be written to the database; try again shortly.";
    }
    return null;
  }

  /**
   * Runs a mutation unless the pool cannot keep its promise about it: refused before anything
   * changes. In durable mode the answer waits for the commit; a change that cannot be committed is
   * undone before its caller is told.
   */
  private <R> Future<R> mutate(Supplier<R> operation) {
    String refusal = refusal();
    if (refusal != null) {
      return Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE, refusal));
    }
    long mark = durable ? pool.undoMark() : -1;
    R result;
    try {
      result = operation.get();
    } catch (ApiException e) {
      write(pool.drainChanges(), null, mark);
      return Future.failedFuture(e);
    }
    if (!durable) {
      write(pool.drainChanges(), null, mark);
      return Future.succeededFuture(result);
    }
    List<PoolChange> changes = pool.drainChanges();
    if (changes.isEmpty()) {
      return Future.succeededFuture(result);
    }
    Promise<Void> committed = Promise.promise();
    write(changes, committed, mark);
    return committed.future().transform(done -> done.succeeded() ? Future.succeededFuture(result)
        : Future.failedFuture(answerFor(done.cause())));
  }

  private static ApiException answerFor(Throwable failure) {
    if (failure instanceof WriteBehindBatcher.OutcomeUnknownException) {
      return new ApiException(ErrorCode.OUTCOME_UNKNOWN, failure.getMessage());
    }
    return new ApiException(ErrorCode.UNAVAILABLE, failure.getMessage());
  }

  /** Runs an operation that changes nothing but the leases it finds expired, and queues those. */
  private <R> Future<R> read(Supplier<R> operation) {
    long mark = durable ? pool.undoMark() : -1;
    try {
      return Future.succeededFuture(operation.get());
    } catch (ApiException e) {
      return Future.failedFuture(e);
    } finally {
      write(pool.drainChanges(), null, mark);
    }
  }

  private void write(List<PoolChange> changes, Promise<Void> committed, long mark) {
    if (!changes.isEmpty()) {
      batcher.add(changes, mark, committed);
    }
  }

  /** What the batcher tells the pool; runs on this verticle's event loop. */
  private final class BatchListener implements WriteBehindBatcher.Listener {
    @Override
    public void undoTo(long mark) {
      pool.undoTo(mark);
    }

    @Override
    public void committed(List<PoolChange> changes, long generationsReservedUpTo, long firstUnwrittenMark) {
      pool.limitGenerations(generationsReservedUpTo);
      if (durable) {
        pool.forgetBefore(firstUnwrittenMark == -1 ? pool.undoMark() : firstUnwrittenMark);
      }
      if (!changes.isEmpty()) {
        stats.committed(changes);
        // Ids in commit order; this and a publish by reference are all the live streams cost here.
        CommittedChanges batch = new CommittedChanges(changes, changeIds.assign(changes.size()));
        // Locally the JSON is built only if someone receives it; across a cluster peers need plain JSON.
        vertx.eventBus().publish(PoolAddresses.EVENTS,
            vertx.isClustered() ? PoolJson.events(changes, batch.firstId()) : batch);
        if (batch.firstId() != CommittedChanges.NO_IDS) {
          vertx.eventBus().publish(PoolAddresses.COMMITTED, batch, TO_LOCAL_STREAMS);
        }
      }
    }

    @Override
    public void fencedOut() {
      LOG.error("Writer epoch {} was fenced out: another instance owns the database now", epoch);
    }

    @Override
    public long generationsToReserve() {
      return pool.lastGeneration() + GENERATIONS_RESERVED_AHEAD;
    }
  }
}
