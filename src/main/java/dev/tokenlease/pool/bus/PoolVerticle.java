package dev.tokenlease.pool.bus;

import dev.tokenlease.config.AckMode;
import dev.tokenlease.config.AppConfig;
import dev.tokenlease.persistence.PersistenceStatus;
import dev.tokenlease.pool.PoolChange;
import dev.tokenlease.pool.PoolError;
import dev.tokenlease.pool.PoolException;
import dev.tokenlease.pool.PoolSnapshot;
import dev.tokenlease.pool.TokenPool;
import dev.tokenlease.pool.TokenView;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The single owner of the token pool. Every operation arrives as an event-bus message and runs on
 * this verticle's event loop, one at a time, so no locks are needed and no token can be held by two
 * users. Replies come from memory; in durable mode a mutation's reply waits until the batch that
 * holds its changes has committed.
 *
 * <p>Deploy exactly one instance per database.
 */
public final class PoolVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(PoolVerticle.class);

  private final AppConfig config;
  private final PersistenceStatus persistence;
  private final Clock clock;
  private final LongSupplier nanoTime;
  private final boolean durable;
  private final List<MessageConsumer<?>> consumers = new ArrayList<>();
  private final List<PoolChange> outbox = new ArrayList<>();
  private final List<Promise<Void>> outboxWaiters = new ArrayList<>();
  private boolean outboxFlushScheduled;
  private TokenPool pool;
  private long sweepTimer = -1;

  public PoolVerticle(AppConfig config, PersistenceStatus persistence) {
    this(config, persistence, Clock.systemUTC(), System::nanoTime);
  }

  PoolVerticle(AppConfig config, PersistenceStatus persistence, Clock clock, LongSupplier nanoTime) {
    this.config = config;
    this.persistence = persistence;
    this.clock = clock;
    this.nanoTime = nanoTime;
    this.durable = config.ackMode() == AckMode.DURABLE;
  }

  @Override
  public Future<?> start() {
    EventBus bus = vertx.eventBus();
    return bus.<PoolSnapshot>request(PoolAddresses.PERSIST_SNAPSHOT, new PoolMessages.SnapshotRequest())
        .compose(reply -> {
          pool = new TokenPool(reply.body(), config.leaseTtl(), clock, nanoTime);
          write(pool.drainChanges());
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
          consumers.add(bus.<Object>localConsumer(PoolAddresses.STATUS, msg -> {
            if (msg.body() instanceof PoolMessages.LocalCall call) {
              call.complete(Future.succeededFuture(status()));
            } else {
              msg.reply(status());
            }
          }));
          sweepTimer = vertx.setPeriodic(config.sweepInterval().toMillis(), id -> sweep());
          LOG.info("Pool ready: {} tokens, {} active, lease TTL {}, {} acknowledgments", pool.size(),
              pool.activeCount(), config.leaseTtl(), config.ackMode().name().toLowerCase(java.util.Locale.ROOT));
          return Future.all(consumers.stream().map(MessageConsumer::completion).toList());
        });
  }

  @Override
  public Future<?> stop() {
    if (sweepTimer != -1) {
      vertx.cancelTimer(sweepTimer);
    }
    return Future.succeededFuture();
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
        respond(msg, handler.apply(request), Function.identity());
      }
    }));
    consumers.add(bus.<Object>consumer(json, msg -> {
      Future<R> result;
      if (msg.body() != null && !(msg.body() instanceof JsonObject)) {
        result = Future.failedFuture(new PoolException(PoolError.BAD_REQUEST, "Message body must be a JSON object."));
      } else {
        try {
          JsonObject input = msg.body() == null ? new JsonObject() : (JsonObject) msg.body();
          result = handler.apply(parse.apply(input));
        } catch (PoolException e) {
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
      if (cause instanceof PoolException e) {
        msg.fail(e.error().code(), e.getMessage());
      } else if (cause instanceof ReplyException e && e.failureType() == ReplyFailure.RECIPIENT_FAILURE) {
        msg.fail(e.failureCode(), e.getMessage());
      } else {
        msg.fail(PoolError.INTERNAL.code(), "Failed to process request: " + cause.getMessage());
      }
    });
  }

  private Future<TokenView> activate(PoolMessages.Activate request) {
    return mutate(() -> pool.activate(request.userId()));
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
   * History lives in PostgreSQL; leases that ran out are retired and their changes sent ahead of the
   * query, which the persistence answers only after everything sent before it is committed.
   */
  private Future<PoolMessages.TokenUsageList> tokenUsages(PoolMessages.TokenUsages request) {
    return read(() -> {
      if (!pool.contains(request.tokenId())) {
        throw new PoolException(PoolError.NOT_FOUND, "Token not found");
      }
      pool.expireDue();
      return request;
    }).compose(query -> {
      flushOutbox();
      return vertx.eventBus().<PoolMessages.TokenUsageList>request(PoolAddresses.PERSIST_TOKEN_USAGES, query)
          .map(Message::body);
    });
  }

  private Future<PoolMessages.UserUsagePage> userUsages(PoolMessages.UserUsages request) {
    return read(() -> {
      pool.expireDue();
      return request;
    }).compose(query -> {
      flushOutbox();
      return vertx.eventBus().<PoolMessages.UserUsagePage>request(PoolAddresses.PERSIST_USER_USAGES, query)
          .map(Message::body);
    });
  }

  private PoolMessages.StatusReport status() {
    return new PoolMessages.StatusReport(pool.size(), pool.activeCount(), pool.availableCount(),
        pool.lastGeneration(), persistence.backlog(), persistence.failure(), persistence.lockHeld());
  }

  private void sweep() {
    pool.expireDue();
    write(pool.drainChanges());
  }

  /**
   * Runs a mutation unless the write-behind queue cannot take it: a full queue, or (durable mode) a
   * failing database, refuses before anything changes.
   */
  private <R> Future<R> mutate(Supplier<R> operation) {
    if (!persistence.lockHeld()) {
      return Future.failedFuture(new PoolException(PoolError.INTERNAL,
          "Failed to process request: lost the database session that makes this the only instance"));
    }
    String failure = persistence.failure();
    if (durable && failure != null) {
      return Future.failedFuture(new PoolException(PoolError.INTERNAL, "Failed to process request: " + failure));
    }
    if (persistence.backlog() >= config.queueCapacity()) {
      return Future.failedFuture(new PoolException(PoolError.UNAVAILABLE,
          "Too many changes are waiting to be written to the database; try again shortly."));
    }
    R result;
    try {
      result = operation.get();
    } catch (PoolException e) {
      write(pool.drainChanges());
      return Future.failedFuture(e);
    }
    Future<Void> written = write(pool.drainChanges());
    return durable ? written.map(result) : Future.succeededFuture(result);
  }

  private <R> Future<R> read(Supplier<R> operation) {
    try {
      R result = operation.get();
      write(pool.drainChanges());
      return Future.succeededFuture(result);
    } catch (PoolException e) {
      write(pool.drainChanges());
      return Future.failedFuture(e);
    }
  }

  /**
   * Queues changes for the database; completes when they are committed. Changes made while this
   * event loop is busy are gathered and sent as one message once it has handled what is queued, so
   * under load the write-behind queue gets one message per burst rather than one per operation.
   */
  private Future<Void> write(List<PoolChange> changes) {
    if (changes.isEmpty()) {
      return Future.succeededFuture();
    }
    persistence.enqueued(changes.size());
    outbox.addAll(changes);
    Future<Void> committed = Future.succeededFuture();
    if (durable) {
      Promise<Void> promise = Promise.promise();
      outboxWaiters.add(promise);
      committed = promise.future();
    }
    if (!outboxFlushScheduled) {
      outboxFlushScheduled = true;
      context.runOnContext(v -> flushOutbox());
    }
    return committed;
  }

  /** Sends the gathered changes now; history reads call this first so that they see them. */
  private void flushOutbox() {
    outboxFlushScheduled = false;
    if (outbox.isEmpty()) {
      return;
    }
    PoolMessages.WriteChanges message = new PoolMessages.WriteChanges(List.copyOf(outbox));
    outbox.clear();
    EventBus bus = vertx.eventBus();
    if (!durable) {
      bus.send(PoolAddresses.PERSIST_WRITE, message);
      return;
    }
    List<Promise<Void>> waiters = List.copyOf(outboxWaiters);
    outboxWaiters.clear();
    bus.request(PoolAddresses.PERSIST_WRITE, message).onComplete(result -> {
      for (Promise<Void> waiter : waiters) {
        if (result.succeeded()) {
          waiter.complete();
        } else {
          waiter.fail(result.cause());
        }
      }
    });
  }

}
