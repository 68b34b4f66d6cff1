package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.Overflow;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolGroup;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.core.PoolStats;
import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.lease.core.TokenView;
import dev.tokenlease.lease.core.WaitOutcome;
import dev.tokenlease.lease.persistence.History;
import dev.tokenlease.lease.persistence.PoolStore;
import dev.tokenlease.lease.persistence.UsageRepository;
import dev.tokenlease.lease.persistence.WriteBehindBatcher;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.LocalBus;
import dev.tokenlease.platform.config.AckMode;
import dev.tokenlease.platform.config.AppConfig;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.TimeGauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
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
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The single owner of the token pools and of their writes. Every operation arrives as an event-bus
 * message naming its pool and runs on this verticle's event loop, one at a time, so no locks are
 * needed and no token can be held by two users. Replies come from memory; in durable mode a
 * mutation's reply waits until the batch that holds its changes has committed, and a change the
 * database did not take is undone here before its caller hears of it. The write-behind batches run
 * on the same event loop, so a change, its undo and its acknowledgment never race. Activations that
 * wait for a token are answered when a grant can be acknowledged: after each operation, if the pool
 * may take changes, the waiters of pools with free tokens are served, and their answers follow the
 * commit of the batch that holds their grants, as any mutation's do.
 *
 * <p>All pools of a process share this owner and one writer (one fencing sequence, one batch
 * stream); the pools API creates, changes and deletes them here, in the database first.
 *
 * <p>Deploy exactly one instance per database.
 */
public final class PoolVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(PoolVerticle.class);
  /** How far ahead of use generations are reserved in the database. */
  static final long GENERATIONS_RESERVED_AHEAD = 100_000;
  private static final long TICK_MILLIS = 20;
  private static final long METRICS_REFRESH_MILLIS = 1000;
  private static final int CLAIM_ATTEMPTS = 20;
  private static final Duration SHUTDOWN_FLUSH_LIMIT = Duration.ofSeconds(15);
  /** How long a node handing the pools over waits for another to claim them. */
  private static final Duration SUCCESSOR_WAIT = Duration.ofSeconds(10);
  /** Committed batches to this process's live streams: by reference, never over the cluster. */
  static final DeliveryOptions TO_LOCAL_STREAMS =
      new DeliveryOptions().setCodecName(CommittedChanges.BY_REFERENCE).setLocalOnly(true);

  private final AppConfig config;
  private final Function<Vertx, PoolStore> storeFactory;
  private final Clock clock;
  private final LongSupplier nanoTime;
  private final boolean durable;
  private final List<MessageConsumer<?>> consumers = new ArrayList<>();
  /** The pools' rows and stats, by name; a pool being deleted stays here, closing, until it is gone. */
  private final Map<String, PoolEntry> entries = new HashMap<>();
  private final MeterRegistry registry;
  private final List<Meter> writeMeters = new ArrayList<>();
  private DistributionSummary batchSizes;
  private Timer commits;
  /** The write path's figures for the gauges, refreshed with the pools'. */
  private volatile long backlog;
  private volatile long oldestUnwrittenNanos;
  private long metricsTimer = -1;
  /** The callers of activations waiting for a token, by their handles. */
  private final Map<PoolMessages.WaitHandle, Promise<Grant>> waiting = new HashMap<>();
  /** Names of pools being created, changed or deleted: one change of a pool at a time. */
  private final Set<String> changing = new HashSet<>();
  private PoolStore store;
  private WriteBehindBatcher batcher;
  private PoolGroup group;
  private long epoch;
  private ChangeIds changeIds;
  /** When the claim that the database confirmed was sent: the first proof that this writer is alive. */
  private long claimSentNanos;
  private long sweepTimer = -1;
  private long tickTimer = -1;

  /** What the owner keeps of one pool beside its {@link TokenPool}. */
  private static final class PoolEntry {
    final int id;
    final Instant createdAt;
    final TokenPool pool;
    /** Counted from committed batches only, on this loop. */
    final PoolStats stats = new PoolStats();
    final PoolMeters meters;
    /** Being deleted: its operations answer as for a pool that does not exist. */
    boolean closing;

    PoolEntry(int id, Instant createdAt, TokenPool pool, MeterRegistry registry) {
      this.id = id;
      this.createdAt = createdAt;
      this.pool = pool;
      this.meters = new PoolMeters(registry, pool.name());
      meters.refresh(pool, stats);
    }
  }

  /**
   * How this verticle owns the pools on a cluster's node: it claims as {@code node} only once no
   * other run is live (no write confirmed for {@code takeoverAfterMillis}), answers the operations
   * its node forwards to it ({@link PoolForwarding}), and calls {@code stepDown} once it can no longer
   * act as the owner (fenced out by a newer epoch, or its ownership unconfirmed past the bound).
   */
  public record ClusterRole(String node, long takeoverAfterMillis, Runnable stepDown) {}

  private ClusterRole role;
  /** Committed batches not yet sent to the other nodes, in commit order. */
  private List<CommittedChanges> toNodes = new ArrayList<>();
  private long nodesTimer = -1;
  private static final long TO_NODES_MILLIS = 50;
  private boolean steppedDown;
  private boolean handingOver;

  /** @param registry where the pools' meters and the write path's go */
  public PoolVerticle(AppConfig config, PgConnectOptions connectOptions, MeterRegistry registry) {
    this(config, vertx -> UsageRepository.open(vertx, connectOptions, config.pgPoolSize(), config.ackTimeout().toMillis(),
        config.leaseTtl().toMillis()),
        Clock.systemUTC(), System::nanoTime, registry);
  }

  /** The owner of the pools on a cluster's node: shares the database with the other nodes. */
  public PoolVerticle(AppConfig config, PgConnectOptions connectOptions, MeterRegistry registry, ClusterRole role) {
    this(config, vertx -> UsageRepository.open(vertx, connectOptions, config.pgPoolSize(), config.ackTimeout().toMillis(),
        config.leaseTtl().toMillis(), false),
        Clock.systemUTC(), System::nanoTime, registry);
    this.role = role;
  }

  /**
   * @param storeFactory makes the pool's store once the verticle has its Vert.x instance (the unit
   *     test passes one in memory)
   * @param nanoTime a monotonic clock, as {@link System#nanoTime()}
   */
  PoolVerticle(AppConfig config, Function<Vertx, PoolStore> storeFactory, Clock clock, LongSupplier nanoTime) {
    this(config, storeFactory, clock, nanoTime, new SimpleMeterRegistry());
  }

  PoolVerticle(AppConfig config, Function<Vertx, PoolStore> storeFactory, Clock clock, LongSupplier nanoTime,
      MeterRegistry registry) {
    this.registry = registry;
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
        .compose(v -> store.ensureDefaultPool(defaultSettings(config), config.poolSize()))
        .compose(v -> claim(role == null ? CLAIM_ATTEMPTS : 1))
        .compose(claim -> {
          // A cluster's other nodes take over from a writer that confirms nothing for long: keep the claim
          // live while the pools load (a large pool takes seconds).
          boolean[] lost = {false};
          long alive = role == null ? -1 : vertx.setPeriodic(Math.max(50, config.maxLag().toMillis() / 4), id -> {
            long sent = nanoTime.getAsLong();
            store.markAlive(claim.epoch()).onSuccess(held -> {
              if (held) {
                claimSentNanos = sent;
              } else {
                lost[0] = true;
              }
            });
          });
          return store.loadPools()
              .onComplete(done -> {
                if (alive != -1) {
                  vertx.cancelTimer(alive);
                }
              })
              .compose(pools -> {
                if (lost[0]) {
                  return Future.failedFuture(new PoolStore.FencedException());
                }
                begin(pools, claim, claimSentNanos);
                return Future.succeededFuture(claim);
              });
        })
        .compose(claim -> {
          Future<?> registered = Future.all(consumers.stream().map(MessageConsumer::completion).toList());
          if (role == null) {
            return registered;
          }
          // In a cluster the nodes reach this owner at their own forwarding addresses, registered when
          // they started; the cluster-wide registrations made here (the tokens.api.* addresses) wait for
          // Hazelcast, which cannot change its maps while a frozen member is not yet removed. Taking
          // over does not wait for them.
          registered.onFailure(err -> LOG.warn("Registering the event-bus API across the cluster failed: {}",
              err.toString()));
          return Future.succeededFuture();
        })
        .onFailure(err -> closeQuietly());
  }

  /**
   * Takes over as the writer. The writer row can still be locked by a late statement of a process
   * that died while the server was stalled; such a statement ends soon, so the claim is retried.
   */
  private Future<PoolStore.WriterClaim> claim(int attemptsLeft) {
    long sent = nanoTime.getAsLong();
    Future<PoolStore.WriterClaim> claimed = role == null
        ? store.claim(config.ackMode(), config.leaseTtl().toMillis(), config.maxLag().toMillis(), GENERATIONS_RESERVED_AHEAD)
        : store.claim(config.ackMode(), config.leaseTtl().toMillis(), config.maxLag().toMillis(), GENERATIONS_RESERVED_AHEAD,
            role.node(), role.takeoverAfterMillis());
    return claimed.onSuccess(c -> claimSentNanos = sent).recover(err -> {
          if (attemptsLeft <= 1 || !(err instanceof PgException pg && "55P03".equals(pg.getSqlState()))) {
            return Future.failedFuture(err);
          }
          LOG.warn("The writer row is locked by a late statement; claiming again in a second");
          return vertx.timer(1, TimeUnit.SECONDS).compose(t -> claim(attemptsLeft - 1));
        });
  }

  /** The pool {@code default} as the configuration describes it. */
  static PoolSettings defaultSettings(AppConfig config) {
    Overflow overflow = Overflow.fromWireName(config.overflow());
    return new PoolSettings(TokenPool.DEFAULT, config.leaseTtl(), overflow,
        overflow == Overflow.WAIT ? config.maxWait() : Duration.ZERO, config.maxHold(), config.maxLeasesPerUser());
  }

  private void begin(List<PoolStore.StoredPool> pools, PoolStore.WriterClaim claim, long claimSent) {
    epoch = claim.epoch();
    changeIds = new ChangeIds(epoch);
    registerWriteMeters();
    group = new PoolGroup(clock, nanoTime, durable, claim.lastGeneration(),
        claim.blockedForMillis() > 0 ? clock.millis() + claim.blockedForMillis() : PoolChange.NO_TIME,
        config.maxWaiters());
    for (PoolStore.StoredPool stored : pools) {
      TokenPool pool = group.add(stored.settings(), stored.snapshot());
      entries.put(pool.name(), new PoolEntry(stored.id(), stored.createdAt(), pool, registry));
    }
    group.limitGenerations(claim.reservedUpTo());
    batcher = new WriteBehindBatcher(store, new BatchListener(), nanoTime, durable, config.batchSize(),
        config.writesInFlight(), config.ackTimeout().toNanos(), config.maxLag().toNanos(), config.flushInterval().toNanos(),
        claim.epoch(), claim.lastBatch(), claimSent);
    // Leases that ran out while the service was down: closed from the snapshot, nothing to undo.
    settle(durable ? group.undoMark() : -1);
    serve(PoolAddresses.ACTIVATE, PoolAddresses.JSON_ACTIVATE, PoolMessages::activate, this::activate, PoolJson::grant);
    serve(PoolAddresses.RELEASE, PoolAddresses.JSON_RELEASE, PoolMessages::release, this::release, PoolJson::lease);
    serve(PoolAddresses.RENEW, PoolAddresses.JSON_RENEW, PoolMessages::renew, this::renew, PoolJson::lease);
    serve(PoolAddresses.REVOKE, PoolAddresses.JSON_REVOKE, PoolMessages::revoke, this::revoke, PoolJson::lease);
    serve(PoolAddresses.CREATE_POOL, PoolAddresses.JSON_CREATE_POOL, PoolDefinitions::create, this::createPool,
        PoolJson::pool);
    serve(PoolAddresses.GET_POOL, PoolAddresses.JSON_GET_POOL, in -> new PoolMessages.GetPool(PoolMessages.pool(in)),
        this::getPool, PoolJson::pool);
    serve(PoolAddresses.LIST_POOLS, PoolAddresses.JSON_LIST_POOLS, PoolDefinitions::list, this::listPools,
        PoolJson::pools);
    serve(PoolAddresses.UPDATE_POOL, PoolAddresses.JSON_UPDATE_POOL,
        in -> new PoolMessages.UpdatePool(PoolMessages.pool(in), PoolDefinitions.patch(withoutPool(in))),
        this::updatePool, PoolJson::pool);
    serve(PoolAddresses.DELETE_POOL, PoolAddresses.JSON_DELETE_POOL,
        in -> new PoolMessages.DeletePool(PoolMessages.pool(in), Boolean.TRUE.equals(in.getValue("force"))),
        this::deletePool, PoolJson::deleted);
    consumers.add(vertx.eventBus().<PoolMessages.CancelWait>localConsumer(PoolAddresses.CANCEL_WAIT,
        msg -> cancelWait(msg.body())));
    serve(PoolAddresses.GET, PoolAddresses.JSON_GET, PoolMessages::getToken, this::get, PoolJson::token);
    serve(PoolAddresses.LIST, PoolAddresses.JSON_LIST, PoolMessages::listTokens, this::list, PoolJson::tokenList);
    serve(PoolAddresses.CLEAR, PoolAddresses.JSON_CLEAR, PoolMessages::clearActive, this::clear, PoolJson::cleared);
    serve(PoolAddresses.TOKEN_USAGES, PoolAddresses.JSON_TOKEN_USAGES, PoolMessages::tokenUsages,
        this::tokenUsages, PoolJson::tokenUsages);
    serve(PoolAddresses.USER_USAGES, PoolAddresses.JSON_USER_USAGES, PoolMessages::userUsages,
        this::userUsages, PoolJson::userUsages);
    serve(PoolAddresses.STATS, PoolAddresses.JSON_STATS, in -> new PoolMessages.GetStats(PoolMessages.pool(in)),
        this::stats, PoolJson::stats);
    report(PoolAddresses.STATUS, this::status);
    sweepTimer = vertx.setPeriodic(config.sweepInterval().toMillis(), id -> sweep());
    tickTimer = vertx.setPeriodic(Math.max(1, Math.min(TICK_MILLIS, config.flushInterval().toMillis())), id -> {
      if (group.waiterCount() > 0) {
        read(() -> {
          group.expireWaits();
          return null;
        });
      }
      batcher.tick();
      checkOwnership();
    });
    metricsTimer = vertx.setPeriodic(METRICS_REFRESH_MILLIS, id -> refreshMeters());
    if (role != null) {
      nodesTimer = vertx.setPeriodic(TO_NODES_MILLIS, id -> sendToNodes());
    }
    TokenPool seed = group.get(TokenPool.DEFAULT);
    LOG.info("Pools ready: {} ({} tokens in all, {} active); default: {} tokens, lease TTL {}; {} acknowledgments, "
            + "writer epoch {}{}", group.poolCount(), group.pools().stream().mapToInt(TokenPool::size).sum(),
        group.pools().stream().mapToInt(TokenPool::activeCount).sum(), seed.size(), config.leaseTtl(),
        config.ackMode().name().toLowerCase(java.util.Locale.ROOT), epoch,
        claim.blockedForMillis() > 0
            ? ", activations wait " + claim.blockedForMillis() + " ms after an unclean stop in memory mode" : "");
  }

  private void registerWriteMeters() {
    writeMeters.add(Gauge.builder("tokens.write.backlog", this, v -> v.backlog)
        .description("Changes waiting to be written to PostgreSQL").register(registry));
    writeMeters.add(TimeGauge.builder("tokens.write.oldest.unwritten", this, TimeUnit.NANOSECONDS,
        v -> v.oldestUnwrittenNanos).description("How long the oldest unwritten change has waited").register(registry));
    batchSizes = DistributionSummary.builder("tokens.write.batch.changes").description("Changes per committed batch")
        .serviceLevelObjectives(1, 10, 100, 1000, 10_000).register(registry);
    commits = Timer.builder("tokens.write.commit").description("From sending a batch to its commit's answer")
        .register(registry);
    writeMeters.add(batchSizes);
    writeMeters.add(commits);
  }

  /** Every second, on this loop: the figures the gauges read. */
  private void refreshMeters() {
    backlog = batcher.pendingChanges();
    oldestUnwrittenNanos = batcher.oldestUnwrittenNanos();
    for (PoolEntry entry : entries.values()) {
      entry.meters.refresh(entry.pool, entry.stats);
    }
  }

  /** A PATCH body on the JSON address: the fields but the pool's name. */
  private static JsonObject withoutPool(JsonObject in) {
    JsonObject copy = in.copy();
    copy.remove("pool");
    return copy;
  }

  /** Writes everything still pending, then records a clean stop; a stop that cannot is left unclean. */
  @Override
  public Future<?> stop() {
    if (sweepTimer != -1) {
      vertx.cancelTimer(sweepTimer);
    }
    if (role != null) {
      // A planned move: changes are refused from now on with a refusal that other nodes retry until
      // the next owner takes them; what is pending is written, and the clean stop lets that owner claim.
      handingOver = true;
    }
    if (batcher == null) {
      return closeQuietly();
    }
    Promise<Void> drained = Promise.promise();
    batcher.closing();
    awaitIdle(drained, nanoTime.getAsLong() + SHUTDOWN_FLUSH_LIMIT.toNanos());
    return drained.future()
        .compose(v -> store.stopRun(epoch, group.lastGeneration()))
        .onSuccess(v -> LOG.info("All changes written; stopped cleanly"))
        .compose(v -> {
          if (role == null || steppedDown) {
            return Future.succeededFuture();
          }
          // Nothing more to write: no keep-alive may follow the clean stop (the successor's epoch would fence it).
          vertx.cancelTimer(tickTimer);
          tickTimer = -1;
          // The last batches reach the other nodes' streams before any of the successor's.
          sendToNodes();
          return awaitSuccessor();
        })
        .recover(err -> {
          LOG.error("Stopping with {} changes unwritten: {}", batcher.pendingChanges(), WriteBehindBatcher.describe(err));
          return Future.succeededFuture();
        })
        .eventually(this::closeQuietly);
  }

  /**
   * A planned hand-over: the clean stop lets another node claim; until it has (or for at most a few
   * seconds), this owner stays registered and refuses changes with the hand-over refusal, which the
   * other nodes send again, so that no forwarded operation is lost on a node that is going away.
   */
  private Future<Void> awaitSuccessor() {
    Promise<Void> done = Promise.promise();
    long deadline = nanoTime.getAsLong() + SUCCESSOR_WAIT.toNanos();
    long[] timer = {-1};
    timer[0] = vertx.setPeriodic(100, id -> store.ownership().onComplete(read -> {
      boolean claimed = read.succeeded() && read.result().running() && read.result().epoch() > epoch;
      if (claimed || nanoTime.getAsLong() - deadline > 0) {
        vertx.cancelTimer(timer[0]);
        if (claimed) {
          LOG.info("Node {} owns the pools now (epoch {})", read.result().owner(), read.result().epoch());
        }
        // The successor's registration reaches the other nodes within moments; then this one goes.
        vertx.setTimer(claimed ? 1_000 : 1, t -> done.tryComplete());
      }
    }));
    return done.future();
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
    if (nodesTimer != -1) {
      vertx.cancelTimer(nodesTimer);
      sendToNodes();
    }
    if (metricsTimer != -1) {
      vertx.cancelTimer(metricsTimer);
    }
    writeMeters.forEach(registry::remove);
    entries.values().forEach(entry -> entry.meters.remove());
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

  /** The pool of that name, unless it does not exist (or is being deleted). */
  private TokenPool pool(String name) {
    PoolEntry entry = entries.get(name);
    if (entry == null || entry.closing) {
      throw PoolDefinitions.notFound();
    }
    return entry.pool;
  }

  /**
   * An activation: answered at once, or, if it waits, once it is granted (and, durable, that grant
   * committed) or refused.
   */
  private Future<Grant> activate(PoolMessages.Activate request) {
    PoolMessages.WaitHandle wait = request.waitHandle();
    return mutate(() -> {
      Grant grant = pool(request.pool()).activate(request.userId(), request.idempotencyKey(), wait,
          wait == null ? 0 : wait.maxWaitNanos());
      if (grant != null) {
        return Future.succeededFuture(grant);
      }
      Promise<Grant> granted = Promise.promise();
      wait.markQueued();
      waiting.put(wait, granted);
      return granted.future();
    }).compose(answer -> answer).compose(grant -> committed(request, grant));
  }

  /** The caller of a waiting activation went away: it leaves the queue, never to be granted. */
  private void cancelWait(PoolMessages.CancelWait request) {
    Promise<Grant> caller = waiting.remove(request.handle());
    PoolEntry entry = entries.get(request.pool());
    if (caller != null && entry != null && entry.pool.cancelWait(request.handle())) {
      caller.tryFail(new ApiException(ErrorCode.CONFLICT, "The activation was cancelled."));
    } else if (caller != null) {
      // Granted or refused meanwhile, its answer on the way: the caller deals with it.
      waiting.put(request.handle(), caller);
    }
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
        .compose(v -> mutate(() -> pool(request.pool()).activate(request.userId(), request.idempotencyKey())))
        .compose(again -> again.repeated() && again.lease().generation() == grant.lease().generation()
            ? Future.succeededFuture(again) : committed(request, again));
  }

  private Future<TokenView> release(PoolMessages.Release request) {
    return mutate(() -> pool(request.pool()).release(request.tokenId(), request.userId(), request.generation()));
  }

  private Future<TokenView> renew(PoolMessages.Renew request) {
    return mutate(() -> pool(request.pool()).renew(request.tokenId(), request.userId(), request.generation()));
  }

  private Future<TokenView> revoke(PoolMessages.Revoke request) {
    return mutate(() -> pool(request.pool()).revoke(request.tokenId()));
  }

  private Future<PoolMessages.Cleared> clear(PoolMessages.ClearActive request) {
    return mutate(() -> new PoolMessages.Cleared(pool(request.pool()).clear()));
  }

  private Future<TokenView> get(PoolMessages.GetToken request) {
    return read(() -> pool(request.pool()).get(request.tokenId()));
  }

  private Future<PoolMessages.TokenList> list(PoolMessages.ListTokens request) {
    return read(() -> new PoolMessages.TokenList(pool(request.pool()).list(request.state())));
  }

  private Future<PoolMessages.StatsReport> stats(PoolMessages.GetStats request) {
    return read(() -> {
      TokenPool pool = pool(request.pool());
      pool.expireDue();
      return new PoolMessages.StatsReport(pool.name(), pool.size(), pool.activeCount(), pool.availableCount(),
          pool.waiterCount(), pool.rejectedCount(), pool.timedOutCount(), entries.get(pool.name()).stats.report());
    });
  }

  private PoolMessages.PoolInfo info(PoolEntry entry) {
    TokenPool pool = entry.pool;
    return new PoolMessages.PoolInfo(pool.settings(), pool.size(), pool.activeCount(), pool.availableCount(),
        pool.waiterCount(), entry.createdAt);
  }

  private Future<PoolMessages.PoolInfo> getPool(PoolMessages.GetPool request) {
    return read(() -> {
      TokenPool pool = pool(request.name());
      pool.expireDue();
      return info(entries.get(pool.name()));
    });
  }

  private Future<PoolMessages.PoolList> listPools(PoolMessages.ListPools request) {
    return read(() -> {
      group.expireDue();
      List<PoolMessages.PoolInfo> page = new ArrayList<>();
      int skip = (request.page() - 1) * request.limit();
      int total = 0;
      for (TokenPool pool : group.pools()) {
        PoolEntry entry = entries.get(pool.name());
        if (entry.closing) {
          continue;
        }
        if (total >= skip && page.size() < request.limit()) {
          page.add(info(entry));
        }
        total++;
      }
      return new PoolMessages.PoolList(page, total, request.page(), request.limit());
    });
  }

  /**
   * Creates a pool: its row and tokens are committed first (fenced by this writer's epoch), and
   * only then does it exist here.
   */
  private Future<PoolMessages.PoolInfo> createPool(PoolMessages.CreatePool request) {
    String name = request.settings().name();
    String refusal = refusal();
    if (refusal != null) {
      return Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE, refusal));
    }
    if (entries.containsKey(name) || changing.contains(name)) {
      return Future.failedFuture(new ApiException(ErrorCode.CONFLICT, "Pool " + name + " already exists."));
    }
    if (entries.size() + changing.size() >= config.maxPools()) {
      return Future.failedFuture(new ApiException(ErrorCode.CONFLICT, "The service has " + config.maxPools()
          + " pools, the most it may have (" + AppConfig.MAX_POOLS + "); delete one first."));
    }
    changing.add(name);
    return store.createPool(epoch, request.settings(), request.size())
        .recover(err -> {
          if (err instanceof PgException pg && "23505".equals(pg.getSqlState())) {
            // The name is taken in the database: by a create whose answer was lost, if not here.
            return reconcileOrInDoubt(name).compose(found -> Future.failedFuture(
                new ApiException(ErrorCode.CONFLICT, "Pool " + name + " already exists.")));
          }
          if (definitelyNotWritten(err)) {
            return Future.failedFuture(poolChangeFailed(err));
          }
          // The answer was lost: what the database holds says whether the pool was made.
          return reconcileOrInDoubt(name).compose(found -> found != null ? Future.succeededFuture(found)
              : Future.failedFuture(poolChangeFailed(err)));
        })
        .eventually(() -> {
          changing.remove(name);
          return Future.succeededFuture();
        })
        .map(stored -> {
          PoolEntry entry = entries.get(name);
          if (entry == null) {
            entry = adopt(stored);
            LOG.info("Pool {} created: {} tokens, lease TTL {}, overflow {}", name, entry.pool.size(),
                stored.settings().leaseTtl(), stored.settings().overflow().wireName());
          }
          return info(entry);
        });
  }

  private PoolEntry adopt(PoolStore.StoredPool stored) {
    TokenPool pool = group.add(stored.settings(), stored.snapshot());
    PoolEntry entry = new PoolEntry(stored.id(), stored.createdAt(), pool, registry);
    entries.put(pool.name(), entry);
    return entry;
  }

  /**
   * After a change of the pools whose outcome is not known (the connection broke before the
   * commit's answer), makes this process agree with the database: a pool it holds and this process
   * does not know is taken in (with its tokens), one this process knows gets the settings and the
   * tokens the database has, one the database deleted goes. Answers the pool as the database has
   * it, or null if it has none; fails if the database cannot be read either (the change then stays
   * in doubt here until a restart, which reads everything again).
   */
  private Future<PoolStore.StoredPool> reconcile(String name) {
    return store.findPool(name).map(found -> {
      PoolEntry entry = entries.get(name);
      if (found == null) {
        if (entry != null && entry.closing && entry.pool.activeCount() == 0) {
          read(() -> {
            group.remove(entry.pool, PoolDefinitions.notFound());
            return null;
          });
          entries.remove(name);
          entry.meters.remove();
        }
        return null;
      }
      if (entry == null) {
        adopt(found);
      } else if (entry.id == found.id()) {
        TokenPool pool = entry.pool;
        read(() -> {
          pool.settings(found.settings());
          pool.addTokens(found.snapshot().tokens().stream().filter(t -> t.seq() > pool.size()).toList());
          return null;
        });
      }
      return found;
    });
  }

  /** As {@link #reconcile}; if the database cannot be read back either, the caller hears the change is in doubt. */
  private Future<PoolStore.StoredPool> reconcileOrInDoubt(String name) {
    return reconcile(name).recover(err -> Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE,
        "The database did not answer; whether the change of pool " + name + " was made is not known yet. "
            + "Read the pool back (GET /api/pools/" + name + ") before retrying.")));
  }

  /** A failure after which the change certainly did not commit: the server refused it, or it was never sent. */
  private static boolean definitelyNotWritten(Throwable err) {
    return err instanceof PgException || err instanceof PoolStore.FencedException || err instanceof ApiException
        || err instanceof WriteBehindBatcher.NotSentException;
  }

  /**
   * Changes a pool's settings and grows it: in the database first, then here (for the activations,
   * renewals and waits that follow). Shrinking is refused: tokens are kept forever with their history.
   */
  private Future<PoolMessages.PoolInfo> updatePool(PoolMessages.UpdatePool request) {
    PoolEntry entry;
    PoolSettings next;
    int grow;
    try {
      entry = changeable(request.name());
      TokenPool pool = entry.pool;
      next = PoolDefinitions.apply(pool.settings(), request.patch());
      Integer size = request.patch().size();
      if (size != null && size < pool.size()) {
        throw new ApiException(ErrorCode.BAD_REQUEST, "Invalid size. A pool can only grow: it has " + pool.size()
            + " tokens.");
      }
      grow = size == null ? 0 : size - pool.size();
    } catch (ApiException e) {
      return Future.failedFuture(e);
    }
    String name = request.name();
    changing.add(name);
    TokenPool pool = entry.pool;
    int target = pool.size() + grow;
    return store.updatePool(epoch, entry.id, next, pool.size(), grow)
        // The database has it: applied here whatever else is refused now (waiters are served only if allowed).
        .compose(added -> read(() -> {
          pool.settings(next);
          pool.addTokens(added);
          LOG.info("Pool {} changed: {} tokens (+{}), lease TTL {}, overflow {}", name, pool.size(), added.size(),
              next.leaseTtl(), next.overflow().wireName());
          return info(entry);
        }))
        .recover(err -> definitelyNotWritten(err) ? Future.failedFuture(poolChangeFailed(err))
            // The answer was lost: the database says whether the change is in.
            : reconcileOrInDoubt(name).compose(found -> found != null && found.settings().equals(next) && pool.size() == target
                ? Future.succeededFuture(info(entry)) : Future.failedFuture(poolChangeFailed(err))))
        .eventually(() -> {
          changing.remove(name);
          return Future.succeededFuture();
        });
  }

  /**
   * Deletes a pool: its leases are ended ({@code force}) and written, its row marked deleted, and
   * only then is it gone here; meanwhile it answers as a pool that does not exist. Its history stays.
   */
  private Future<PoolMessages.Deleted> deletePool(PoolMessages.DeletePool request) {
    PoolEntry entry;
    try {
      entry = changeable(request.name());
      read(() -> entry.pool.expireDue());
      if (entry.pool.activeCount() > 0 && !request.force()) {
        throw new ApiException(ErrorCode.CONFLICT, "Pool " + request.name() + " has " + entry.pool.activeCount()
            + " active leases; delete with force=true to end them.");
      }
    } catch (ApiException e) {
      return Future.failedFuture(e);
    }
    String name = request.name();
    changing.add(name);
    entry.closing = true;
    // Nobody may be granted a token the clearing frees: the waiters are told the pool is gone.
    read(() -> {
      entry.pool.refuseWaiters(PoolDefinitions.notFound());
      return null;
    });
    return mutate(() -> entry.pool.clear())
        .compose(cleared -> batcher.barrier().map(cleared))
        .compose(cleared -> store.deletePool(epoch, entry.id).map(cleared)
            .recover(err -> definitelyNotWritten(err) ? Future.failedFuture(err)
                // The answer was lost: gone from the database means deleted.
                : reconcileOrInDoubt(name).compose(found -> found == null ? Future.succeededFuture(cleared)
                    : Future.failedFuture(err))))
        .recover(err -> {
          if (entries.get(name) == entry) {
            entry.closing = false;
          }
          return Future.failedFuture(err instanceof ApiException ? err : poolChangeFailed(err));
        })
        .map(cleared -> {
          if (entries.get(name) == entry) {
            read(() -> {
              group.remove(entry.pool, PoolDefinitions.notFound());
              return null;
            });
            entries.remove(name);
            entry.meters.remove();
          }
          LOG.info("Pool {} deleted ({} leases ended)", name, cleared);
          return new PoolMessages.Deleted(name, cleared);
        })
        .eventually(() -> {
          changing.remove(name);
          return Future.succeededFuture();
        });
  }

  /** A pool that the pools API may change: it exists, is not {@code default}, and no other change is under way. */
  private PoolEntry changeable(String name) {
    PoolEntry entry = entries.get(name);
    if (entry == null || entry.closing) {
      throw PoolDefinitions.notFound();
    }
    if (TokenPool.DEFAULT.equals(name)) {
      throw new ApiException(ErrorCode.CONFLICT,
          "The pool default is configured by the TOKENS_POOL_* settings; it cannot be changed or deleted here.");
    }
    if (changing.contains(name)) {
      throw new ApiException(ErrorCode.CONFLICT, "Pool " + name + " is being changed; try again shortly.", 1);
    }
    String refusal = refusal();
    if (refusal != null) {
      throw new ApiException(ErrorCode.UNAVAILABLE, refusal);
    }
    return entry;
  }

  private static ApiException poolChangeFailed(Throwable err) {
    if (err instanceof ApiException e) {
      return e;
    }
    return new ApiException(ErrorCode.UNAVAILABLE, err instanceof PoolStore.FencedException
        ? err.getMessage() : "The pool could not be changed: " + WriteBehindBatcher.describe(err));
  }

  /**
   * History lives in PostgreSQL; leases that ran out are retired and queued for writing ahead of
   * the query, which runs only once everything queued before it is committed.
   */
  private Future<History.TokenUsageList> tokenUsages(PoolMessages.TokenUsages request) {
    return read(() -> {
      TokenPool pool = pool(request.pool());
      if (!pool.contains(request.tokenId())) {
        throw new ApiException(ErrorCode.NOT_FOUND, "Token not found");
      }
      pool.expireDue();
      return request;
    }).compose(query -> history(() -> store.tokenUsages(query.tokenId(), query.pool())));
  }

  private Future<History.UserUsagePage> userUsages(History.UserUsages request) {
    return read(() -> {
      group.expireDue();
      return request;
    }).compose(query -> history(() -> store.userUsages(query)));
  }

  private <T> Future<T> history(Supplier<Future<T>> query) {
    return batcher.barrier().compose(v -> query.get()).recover(err -> Future.failedFuture(
        new ApiException(ErrorCode.UNAVAILABLE, "Failed to process request: " + WriteBehindBatcher.describe(err))));
  }

  /** Answered from memory as it is (a report runs outside {@link #read}, so it retires nothing). */
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
    TokenPool seed = group.get(TokenPool.DEFAULT);
    return new PoolMessages.StatusReport(seed.size(), seed.activeCount(), seed.availableCount(),
        group.lastGeneration(), batcher.pendingChanges(), lag, sinceConfirmed, batcher.failure(), store.instanceLockHeld(),
        degraded, changeIds.next());
  }

  /**
   * In a cluster, whether the database has confirmed no write of this owner for the lag bound: then
   * another node may take over at any moment (see the claim's takeover bound), so nothing more is
   * acknowledged, in either mode, and reads no longer speak for the pools. Measured on the monotonic clock.
   */
  private boolean ownershipUnconfirmed() {
    return batcher.sinceConfirmedNanos() >= config.maxLag().toNanos();
  }

  /** The committed batches since the last call, to every other node's live streams, in one message. */
  private void sendToNodes() {
    if (toNodes.isEmpty()) {
      return;
    }
    List<CommittedChanges> batches = toNodes;
    toNodes = new ArrayList<>();
    vertx.eventBus().publish(PoolForwarding.COMMITTED, new PoolForwarding.Committed(batches), PoolForwarding.TO_NODES);
  }

  /** In a cluster: steps down once fenced out, or once the ownership cannot still be held. */
  private void checkOwnership() {
    if (role == null || steppedDown || handingOver) {
      return;
    }
    boolean lost = batcher.fenced()
        || batcher.sinceConfirmedNanos() >= config.maxLag().toNanos() + role.takeoverAfterMillis() * 1_000_000L;
    if (lost) {
      steppedDown = true;
      LOG.warn("Stepping down as the owner of the pools (epoch {}): {}", epoch,
          batcher.fenced() ? "another node has taken over" : "the database has confirmed no write for too long");
      // Nothing more reaches this verticle: the consumers go first, then the verticle itself.
      consumers.forEach(MessageConsumer::unregister);
      sendToNodes();
      role.stepDown().run();
    }
  }

  private void sweep() {
    read(() -> {
      group.expireDue();
      return null;
    });
  }

  /** Why changes are refused now (the pool cannot promise to keep them), or null. */
  private String refusal() {
    if (!store.instanceLockHeld()) {
      return "Lost the database session that makes this the only instance; changes wait until it is back.";
    }
    if (role != null && (steppedDown || ownershipUnconfirmed())) {
      return "This node's ownership of the pools is not confirmed; another node may be taking over.";
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
    if (handingOver) {
      return Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE,
          "This node is handing the pools over to another; try again shortly.").named(PoolForwarding.HANDING_OVER, null));
    }
    String refusal = refusal();
    if (refusal != null) {
      return Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE, refusal));
    }
    long mark = durable ? group.undoMark() : -1;
    R result;
    try {
      result = operation.get();
    } catch (ApiException e) {
      settle(mark);
      return Future.failedFuture(e);
    } catch (RuntimeException e) {
      settle(mark);
      throw e;
    }
    Future<Void> committed = settle(mark);
    if (!durable) {
      return Future.succeededFuture(result);
    }
    return committed.transform(done -> done.succeeded() ? Future.succeededFuture(result)
        : Future.failedFuture(answerFor(done.cause())));
  }

  private static ApiException answerFor(Throwable failure) {
    if (failure instanceof ApiException e) {
      return e;
    }
    if (failure instanceof WriteBehindBatcher.OutcomeUnknownException) {
      return new ApiException(ErrorCode.OUTCOME_UNKNOWN, failure.getMessage());
    }
    return new ApiException(ErrorCode.UNAVAILABLE, failure.getMessage());
  }

  /** Runs an operation that changes nothing but the leases it finds expired (and waits it serves), and queues those. */
  private <R> Future<R> read(Supplier<R> operation) {
    long mark = durable ? group.undoMark() : -1;
    try {
      return Future.succeededFuture(operation.get());
    } catch (ApiException e) {
      return Future.failedFuture(e);
    } finally {
      settle(mark);
    }
  }

  /**
   * After every operation: serves the waiting activations if grants may be acknowledged now, queues
   * what changed since {@code mark} for writing, and answers the waits that ended. A granted
   * waiter hears once its grant is committed (durable) or at once (memory); a refused one at once.
   *
   * @return when the queued changes are committed (durable; at once if none, or in memory mode)
   */
  private Future<Void> settle(long mark) {
    if (group.waiterCount() > 0 && refusal() == null) {
      group.serveWaiters();
    }
    List<PoolChange> changes = group.drainChanges();
    List<WaitOutcome> outcomes = group.drainOutcomes();
    Future<Void> committed = Future.succeededFuture();
    if (!changes.isEmpty()) {
      Promise<Void> ack = durable ? Promise.promise() : null;
      batcher.add(changes, mark, ack);
      if (ack != null) {
        committed = ack.future();
      }
    }
    for (WaitOutcome outcome : outcomes) {
      answer(outcome, committed);
    }
    return committed;
  }

  private void answer(WaitOutcome outcome, Future<Void> committed) {
    Promise<Grant> caller = waiting.remove((PoolMessages.WaitHandle) outcome.handle());
    if (caller == null) {
      return;
    }
    PoolEntry entry = entries.get(outcome.pool());
    if (outcome.grant() == null) {
      if (entry != null) {
        entry.stats.waited(outcome.waitedMillis());
      }
      caller.fail(outcome.refusal());
      return;
    }
    committed.onComplete(done -> {
      if (done.succeeded()) {
        if (entry != null) {
          entry.stats.waited(outcome.waitedMillis());
        }
        caller.complete(outcome.grant());
      } else {
        caller.fail(answerFor(done.cause()));
      }
    });
  }

  /** What the batcher tells the pool; runs on this verticle's event loop. */
  private final class BatchListener implements WriteBehindBatcher.Listener {
    @Override
    public void undoTo(long mark) {
      group.undoTo(mark);
    }

    @Override
    public void committed(List<PoolChange> changes, long generationsReservedUpTo, long firstUnwrittenMark) {
      group.limitGenerations(generationsReservedUpTo);
      if (durable) {
        group.forgetBefore(firstUnwrittenMark == -1 ? group.undoMark() : firstUnwrittenMark);
      }
      if (!changes.isEmpty()) {
        countCommitted(changes);
        // Ids in commit order; this and a publish by reference are all the live streams cost here.
        CommittedChanges batch = new CommittedChanges(changes, changeIds.assign(changes.size()));
        // Locally the JSON is built only if someone receives it; across a cluster peers need plain JSON.
        vertx.eventBus().publish(PoolAddresses.EVENTS,
            vertx.isClustered() ? PoolJson.events(changes, batch.firstId()) : batch);
        if (batch.firstId() != CommittedChanges.NO_IDS) {
          vertx.eventBus().publish(PoolAddresses.COMMITTED, batch, TO_LOCAL_STREAMS);
          if (role != null) {
            // The other nodes' live streams get the batches a few times a second, several per message:
            // one message per commit cost the owner a third of its throughput (measured, durable).
            toNodes.add(batch);
          }
        }
      }
    }

    @Override
    public void written(int changes, long commitNanos) {
      batchSizes.record(changes);
      commits.record(commitNanos, TimeUnit.NANOSECONDS);
    }

    @Override
    public void fencedOut() {
      LOG.error("Writer epoch {} was fenced out: another instance owns the database now", epoch);
    }

    @Override
    public long generationsToReserve() {
      return group.lastGeneration() + GENERATIONS_RESERVED_AHEAD;
    }
  }

  /** Each pool's stats count its own committed changes; a deleted pool's are no longer counted. */
  private void countCommitted(List<PoolChange> changes) {
    PoolEntry entry = null;
    for (PoolChange change : changes) {
      if (entry == null || !entry.pool.name().equals(change.pool())) {
        entry = entries.get(change.pool());
      }
      if (entry != null) {
        entry.stats.committed(change);
        entry.meters.committed(change);
      }
    }
  }
}
