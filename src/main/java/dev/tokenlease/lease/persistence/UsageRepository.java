package dev.tokenlease.lease.persistence;

import dev.tokenlease.lease.core.EndReason;
import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.Overflow;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.core.PoolSnapshot;
import dev.tokenlease.platform.config.AckMode;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.config.ConfigException;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.net.NetClientOptions;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.pgclient.PgException;
import io.vertx.sqlclient.Cursor;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Reads and writes tokens and usages through the reactive PostgreSQL client, and holds the
 * instance lock that makes this the only service instance on the database.
 */
public final class UsageRepository implements PoolStore {
  private static final int LOAD_FETCH_SIZE = 10_000;

  private final Vertx vertx;
  private final Pool pg;
  /**
   * The connection the batches outstanding are written on, or null when none is: batches in flight
   * together are pipelined on it (the server runs each right after the one before, so a batch
   * applies on top of its predecessor without waiting for the predecessor's answer to travel back
   * first), and it goes back to the pool once the last of them has its answer. Touched only on the
   * pool's event loop, where every write is made and answered.
   */
  private BatchConnection batchConnection;
  private final InstanceLock lock;
  private final long attemptTimeoutMillis;
  private final long leaseTtlMillis;

  private UsageRepository(Vertx vertx, Pool pg, InstanceLock lock, long attemptTimeoutMillis, long leaseTtlMillis) {
    this.vertx = vertx;
    this.pg = pg;
    this.lock = lock;
    this.attemptTimeoutMillis = attemptTimeoutMillis;
    this.leaseTtlMillis = leaseTtlMillis;
  }

  /**
   * The pool's store on the database at {@code connectOptions}. Connects lazily: nothing is
   * contacted before {@link #takeInstanceLock()}.
   *
   * @param connections the most connections the pool's statements use at once
   * @param attemptTimeoutMillis how long one batch attempt may wait for the server's answer
   * @param leaseTtlMillis the lease TTL: how far back the keys of ended leases are loaded at start-up
   */
  public static UsageRepository open(Vertx vertx, PgConnectOptions connectOptions, int connections,
      long attemptTimeoutMillis, long leaseTtlMillis) {
    return open(vertx, connectOptions, connections, attemptTimeoutMillis, leaseTtlMillis, true);
  }

  /**
   * @param exclusive whether this must be the only instance on the database (the instance lock); a
   *     cluster's nodes share it, and the writer claim's takeover bound and epoch keep one owner
   */
  public static UsageRepository open(Vertx vertx, PgConnectOptions connectOptions, int connections,
      long attemptTimeoutMillis, long leaseTtlMillis, boolean exclusive) {
    PgConnectOptions options = new PgConnectOptions(connectOptions).setCachePreparedStatements(true)
        // The client caches only statements under 2,048 characters by default; the batch statement is
        // longer, and uncached it cost a parse and an extra round trip per batch (0.35 ms of server
        // time and a round trip of client time, seen in the server log). Our statements are a fixed set.
        .setPreparedStatementCacheSqlLimit(16_384)
        // PostgreSQL's default plan caching: the batch statement no longer joins usages (it upserts
        // them), so its generic plan stays right as the history grows; planning it anew for every
        // batch cost about 0.9 ms of server time per batch.
        // A batch waits for the writer row only behind a late attempt of its own; give up and retry.
        .addProperty("lock_timeout", "1000");
    Pool pg = PgBuilder.pool()
        // A connection that cannot be had soon is a failed attempt (certainly not written), not a hang.
        .with(new PoolOptions().setMaxSize(connections).setConnectionTimeout(2).setConnectionTimeoutUnit(TimeUnit.SECONDS))
        .with(new NetClientOptions().setConnectTimeout(2_000))
        .connectingTo(options)
        .using(vertx)
        .build();
    return new UsageRepository(vertx, pg, exclusive ? new InstanceLock(vertx, connectOptions) : null,
        attemptTimeoutMillis, leaseTtlMillis);
  }

  @Override
  public Future<Void> takeInstanceLock() {
    return lock == null ? Future.succeededFuture() : lock.take();
  }

  @Override
  public boolean instanceLockHeld() {
    return lock == null || lock.held();
  }

  @Override
  public Future<Void> close() {
    return Future.join(lock == null ? Future.succeededFuture() : lock.close(), pg.close()).<Void>mapEmpty()
        .recover(err -> Future.succeededFuture());
  }

  @Override
  public Future<Void> ensureDefaultPool(PoolSettings settings, int poolSize) {
    return pg.preparedQuery(Sql.UPDATE_POOL).execute(settingsTuple(Sql.DEFAULT_POOL_ID, settings))
        .compose(updated -> pg.preparedQuery(Sql.COUNT_TOKENS).execute(Tuple.of(Sql.DEFAULT_POOL_ID)))
        .compose(rows -> {
          Row row = rows.iterator().next();
          long count = row.getLong("n");
          int maxSeq = row.getInteger("max_seq");
          if (count > poolSize) {
            return Future.failedFuture(new ConfigException(AppConfig.POOL_SIZE + ": the database already holds "
                + count + " tokens; the pool cannot shrink to " + poolSize));
          }
          if (count == poolSize) {
            return Future.succeededFuture();
          }
          return pg.preparedQuery(Sql.CREATE_TOKENS)
              .execute(Tuple.of(maxSeq + 1, maxSeq + (int) (poolSize - count), Sql.DEFAULT_POOL_ID))
              // Fresh statistics, so that the first batches are planned for the real table size.
              .compose(created -> pg.query("ANALYZE tokens").execute())
              .mapEmpty();
        });
  }

  /** $1 the pool's id (or name, for an insert), then its settings as {@link Sql#UPDATE_POOL} takes them. */
  private static Tuple settingsTuple(Object idOrName, PoolSettings settings) {
    return Tuple.of(idOrName, settings.leaseTtl().toMillis(), settings.overflow().wireName(),
        settings.maxWait().toMillis(), settings.maxHold() == null ? null : settings.maxHold().toMillis(),
        settings.maxLeasesPerUser());
  }

  @Override
  public Future<StoredPool> createPool(long epoch, PoolSettings settings, int size) {
    return poolChange(conn -> conn.preparedQuery(Sql.INSERT_POOL).execute(settingsTuple(settings.name(), settings))
        .compose(inserted -> {
          Row row = inserted.iterator().next();
          int id = row.getInteger("id");
          Instant created = row.getOffsetDateTime("created_at").toInstant();
          return addTokens(conn, id, 0, size)
              .compose(tokens -> fence(conn, epoch, settings).map(v -> new StoredPool(id, settings, created,
                  new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME))));
        }));
  }

  @Override
  public Future<List<PoolSnapshot.StoredToken>> updatePool(long epoch, int poolId, PoolSettings settings, int size,
      int grow) {
    return poolChange(conn -> conn.preparedQuery(Sql.UPDATE_POOL).execute(settingsTuple(poolId, settings))
        .compose(updated -> grow == 0 ? Future.succeededFuture(List.<PoolSnapshot.StoredToken>of())
            : addTokens(conn, poolId, size, grow))
        .compose(tokens -> fence(conn, epoch, settings).map(v -> tokens)));
  }

  @Override
  public Future<Void> deletePool(long epoch, int poolId) {
    return poolChange(conn -> conn.preparedQuery(Sql.DELETE_POOL).execute(Tuple.of(poolId))
        .compose(deleted -> fence(conn, epoch, null)));
  }

  /**
   * One change of the pools in one transaction, bounded in time. A server that does not answer
   * (stalled, frozen) does not hold the caller: at the bound the change fails. Before its COMMIT is
   * sent, that failure is certain ({@link WriteBehindBatcher.NotSentException}: the transaction is
   * abandoned, and rolled back if the server ever answers); once the COMMIT is on its way it is in
   * doubt (the owner then reads the pool back). Closing a pooled connection does not interrupt a
   * statement in flight, so the bound is a race, not a close.
   */
  private <T> Future<T> poolChange(java.util.function.Function<SqlConnection, Future<T>> work) {
    long timeout = poolChangeTimeoutMillis();
    return connection(timeout)
        .recover(err -> Future.failedFuture(new WriteBehindBatcher.NotSentException("no database connection", err)))
        .compose(conn -> {
          // 0 running, 1 abandoned at the bound, 2 COMMIT sent: whichever comes first decides.
          java.util.concurrent.atomic.AtomicInteger state = new java.util.concurrent.atomic.AtomicInteger();
          Promise<T> answer = Promise.promise();
          long timer = vertx.setTimer(timeout, id -> {
            String why = "the database did not answer within " + timeout + " ms";
            answer.tryFail(state.compareAndSet(0, 1)
                ? new WriteBehindBatcher.NotSentException(why, null) : new IllegalStateException(why));
          });
          conn.begin()
              .compose(tx -> work.apply(conn)
                  .compose(result -> state.compareAndSet(0, 2) ? tx.commit().map(result)
                      : tx.rollback().transform(ignored -> Future.<T>failedFuture("abandoned")))
                  .recover(err -> tx.rollback().transform(ignored -> Future.<T>failedFuture(err))))
              .onComplete(done -> settle(answer, timer, done))
              .eventually(conn::close);
          return answer.future();
        });
  }

  /** Completes a bounded answer with the work's outcome, unless its bound came first. */
  private <T> void settle(Promise<T> answer, long timer, io.vertx.core.AsyncResult<T> done) {
    vertx.cancelTimer(timer);
    if (done.succeeded()) {
      answer.tryComplete(done.result());
    } else {
      answer.tryFail(done.cause());
    }
  }

  /** Creating 100,000 tokens takes a second or two; a stall is many times the attempt timeout. */
  private long poolChangeTimeoutMillis() {
    return Math.max(2_000, attemptTimeoutMillis * 3);
  }

  /**
   * A connection within {@code timeoutMillis}, or a failure: a server that accepts the socket but
   * never answers the handshake (frozen) must not hold the caller forever. One that arrives late is
   * closed at once.
   */
  private Future<SqlConnection> connection(long timeoutMillis) {
    Promise<SqlConnection> bounded = Promise.promise();
    long timer = vertx.setTimer(timeoutMillis, id -> bounded.tryFail("no database connection within " + timeoutMillis + " ms"));
    pg.getConnection().onComplete(done -> {
      vertx.cancelTimer(timer);
      if (done.failed()) {
        bounded.tryFail(done.cause());
      } else if (!bounded.tryComplete(done.result())) {
        done.result().close();
      }
    });
    return bounded.future();
  }

  @Override
  public Future<StoredPool> findPool(String name) {
    Promise<StoredPool> answer = Promise.promise();
    long timer = vertx.setTimer(attemptTimeoutMillis, id ->
        answer.tryFail("the database did not answer within " + attemptTimeoutMillis + " ms"));
    connection(attemptTimeoutMillis)
        .compose(conn -> findPool(conn, name).eventually(conn::close))
        .onComplete(done -> settle(answer, timer, done));
    return answer.future();
  }

  private Future<StoredPool> findPool(SqlConnection conn, String name) {
    return conn.preparedQuery(Sql.FIND_POOL).execute(Tuple.of(name)).compose(rows -> {
      if (rows.size() == 0) {
        return Future.succeededFuture(null);
      }
      Row row = rows.iterator().next();
      int id = row.getInteger("id");
      return conn.preparedQuery(Sql.POOL_TOKENS).execute(Tuple.of(id)).map(tokenRows -> {
        List<PoolSnapshot.StoredToken> tokens = new ArrayList<>(tokenRows.size());
        for (Row token : tokenRows) {
          tokens.add(PoolSnapshot.StoredToken.fresh(token.getUUID("id"), token.getInteger("seq")));
        }
        return new StoredPool(id, settings(row), row.getOffsetDateTime("created_at").toInstant(),
            new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME));
      });
    });
  }

  /** Fresh tokens at positions {@code after + 1} to {@code after + count}, in position order. */
  private static Future<List<PoolSnapshot.StoredToken>> addTokens(SqlConnection conn, int poolId, int after, int count) {
    return conn.preparedQuery(Sql.ADD_TOKENS).execute(Tuple.of(after + 1, after + count, poolId)).map(rows -> {
      List<PoolSnapshot.StoredToken> tokens = new ArrayList<>(rows.size());
      for (Row row : rows) {
        tokens.add(PoolSnapshot.StoredToken.fresh(row.getUUID("id"), row.getInteger("seq")));
      }
      tokens.sort(java.util.Comparator.comparingInt(PoolSnapshot.StoredToken::seq));
      return tokens;
    });
  }

  /**
   * Fails (and so rolls back the transaction) unless {@code epoch} is still the writer's.
   *
   * @param settings the pool's settings from now on, or null if it goes away
   */
  private static Future<Void> fence(SqlConnection conn, long epoch, PoolSettings settings) {
    return conn.preparedQuery(Sql.FENCE_POOLS)
        .execute(Tuple.of(epoch, settings == null ? 1L : settings.leaseTtl().toMillis())).compose(rows -> rows.size() == 1
        ? Future.succeededFuture() : Future.failedFuture(new FencedException()));
  }

  /**
   * Takes over as the only writer (a new epoch) and reads what the previous run proves: after an
   * unclean stop in memory mode, every acknowledgment it may have lost was given within
   * {@code max_lag} of its last confirmed write, so it has expired one lease TTL after that.
   */
  @Override
  public Future<WriterClaim> claim(AckMode mode, long leaseTtlMillis, long maxLagMillis, long reserveAhead) {
    return claim(mode, leaseTtlMillis, maxLagMillis, reserveAhead, null, -1);
  }

  @Override
  public Future<WriterClaim> claim(AckMode mode, long leaseTtlMillis, long maxLagMillis, long reserveAhead,
      String node, long takeoverAfterMillis) {
    return pg.withTransaction(conn -> conn.query(Sql.READ_WRITER).execute().compose(rows -> {
      if (takeoverAfterMillis >= 0 && rows.size() > 0) {
        Row current = rows.iterator().next();
        if (current.getBoolean("running") && current.getLong("silent_ms") < takeoverAfterMillis) {
          return Future.failedFuture(new OwnedElsewhereException(String.valueOf(current.getString("owner_node"))));
        }
      }
      return conn.query(Sql.MAX_GENERATION).execute().compose(generations -> {
          long lastGeneration = generations.iterator().next().getLong("g");
          OffsetDateTime blockedUntil = null;
          long blockedFor = 0;
          if (rows.size() > 0) {
            Row previous = rows.iterator().next();
            lastGeneration = Math.max(lastGeneration, previous.getLong("generation_reserved"));
            blockedUntil = previous.getOffsetDateTime("blocked_until");
            if (previous.getBoolean("running") && "memory".equals(previous.getString("ack_mode"))) {
              blockedUntil = later(blockedUntil, previous.getOffsetDateTime("lost_grants_end"));
            }
            if (blockedUntil != null) {
              blockedFor = Math.max(0, blockedUntil.toInstant().toEpochMilli()
                  - previous.getOffsetDateTime("now").toInstant().toEpochMilli());
            }
            if (blockedFor == 0) {
              blockedUntil = null;
            }
          }
          long last = lastGeneration;
          long wait = blockedFor;
          return conn.preparedQuery(Sql.CLAIM_WRITER)
              .execute(Tuple.of(mode.name().toLowerCase(Locale.ROOT), leaseTtlMillis, maxLagMillis,
                  lastGeneration + reserveAhead, blockedUntil, node))
              .map(claimed -> {
                Row row = claimed.iterator().next();
                return new WriterClaim(row.getLong("epoch"), row.getLong("last_batch"), last,
                    row.getLong("generation_reserved"), wait);
              });
      });
    }));
  }

  /** Who owns the pools, as the database says now. */
  public record Ownership(String owner, long epoch, boolean running, long silentMillis, long maxLagMillis,
      List<String> pools, long longestWaitMillis) {}

  /** Reads {@link Ownership} with one statement; fails when the service state was never written. */
  public static Future<Ownership> readOwnership(io.vertx.sqlclient.SqlClient client) {
    return client.query(Sql.READ_OWNER).execute().map(rows -> {
      if (rows.size() == 0) {
        return new Ownership(null, 0, false, Long.MAX_VALUE, 0, List.of(), 0);
      }
      Row row = rows.iterator().next();
      String[] pools = row.getArrayOfStrings("pools");
      return new Ownership(row.getString("owner_node"), row.getLong("epoch"), row.getBoolean("running"),
          row.getLong("silent_ms") == null ? Long.MAX_VALUE : row.getLong("silent_ms"), row.getLong("max_lag_ms"),
          pools == null ? List.of() : List.of(pools), row.getLong("longest_wait_ms"));
    });
  }

  private static OffsetDateTime later(OffsetDateTime a, OffsetDateTime b) {
    return a == null ? b : b == null || a.isAfter(b) ? a : b;
  }

  @Override
  public Future<Ownership> ownership() {
    return readOwnership(pg);
  }

  @Override
  public Future<Boolean> markAlive(long epoch) {
    return pg.preparedQuery(Sql.MARK_ALIVE).execute(Tuple.of(epoch)).map(rows -> rows.rowCount() == 1);
  }

  @Override
  public Future<Void> stopRun(long epoch, long lastGeneration) {
    return pg.preparedQuery(Sql.STOP_RUN).execute(Tuple.of(epoch, lastGeneration)).mapEmpty();
  }

  @Override
  public Future<List<StoredPool>> loadPools() {
    return pg.withTransaction(conn -> conn.query(Sql.LOAD_POOLS).execute().compose(poolRows -> {
      Map<Integer, PoolRows> pools = new LinkedHashMap<>();
      long longestTtl = leaseTtlMillis;
      for (Row row : poolRows) {
        PoolRows pool = new PoolRows(row.getInteger("id"), settings(row), row.getOffsetDateTime("created_at").toInstant());
        pools.put(pool.id, pool);
        longestTtl = Math.max(longestTtl, pool.settings.leaseTtl().toMillis());
      }
      long keysSince = longestTtl;
      return loadTokens(conn, pools).compose(poolOfToken -> conn.query(Sql.LOAD_OPEN_LEASES).execute()
          .compose(leaseRows -> {
            for (Row row : leaseRows) {
              UUID tokenId = row.getUUID("token_id");
              PoolRows pool = poolOfToken.get(tokenId);
              if (pool == null) {
                continue; // a token of a deleted pool: deletion ends every lease first, so none is open
              }
              UUID evictedUser = row.getUUID("evicted_user_id");
              Grant.Evicted evicted = evictedUser == null ? null : new Grant.Evicted(tokenId, evictedUser,
                  row.getLong("evicted_generation"), Math.max(0, millis(row.getOffsetDateTime("evicted_ended_at"))
                      - millis(row.getOffsetDateTime("evicted_started_at"))));
              pool.leases.add(new PoolSnapshot.StoredLease(row.getLong("generation"), tokenId,
                  row.getUUID("user_id"), millis(row.getOffsetDateTime("started_at")),
                  millis(row.getOffsetDateTime("expires_at")), row.getString("idempotency_key"), evicted));
            }
            return conn.preparedQuery(Sql.LOAD_RECENT_ENDED_KEYS).execute(Tuple.of(keysSince));
          })
          .map(keyRows -> {
            for (Row row : keyRows) {
              PoolRows pool = poolOfToken.get(row.getUUID("token_id"));
              if (pool != null) {
                pool.keys.add(new PoolSnapshot.EndedKey(row.getString("idempotency_key"), row.getUUID("user_id"),
                    row.getUUID("token_id"), row.getLong("generation"), millis(row.getOffsetDateTime("started_at"))));
              }
            }
            List<StoredPool> out = new ArrayList<>(pools.size());
            for (PoolRows pool : pools.values()) {
              out.add(new StoredPool(pool.id, pool.settings, pool.createdAt,
                  new PoolSnapshot(pool.tokens, pool.leases, 0, PoolChange.NO_TIME, pool.keys)));
            }
            return out;
          }));
    }));
  }

  /** One pool's rows while they are read. */
  private static final class PoolRows {
    final int id;
    final PoolSettings settings;
    final Instant createdAt;
    final List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
    final List<PoolSnapshot.StoredLease> leases = new ArrayList<>();
    final List<PoolSnapshot.EndedKey> keys = new ArrayList<>();

    PoolRows(int id, PoolSettings settings, Instant createdAt) {
      this.id = id;
      this.settings = settings;
      this.createdAt = createdAt;
    }
  }

  private static PoolSettings settings(Row row) {
    Long maxHold = row.getLong("max_hold_ms");
    return new PoolSettings(row.getString("name"), Duration.ofMillis(row.getLong("lease_ttl_ms")),
        Overflow.fromWireName(row.getString("overflow")), Duration.ofMillis(row.getLong("max_wait_ms")),
        maxHold == null ? null : Duration.ofMillis(maxHold), row.getInteger("max_leases_per_user"));
  }

  /** Reads every token into its pool; answers each token's pool. */
  private Future<Map<UUID, PoolRows>> loadTokens(SqlConnection conn, Map<Integer, PoolRows> pools) {
    return conn.prepare(Sql.LOAD_TOKENS).compose(statement -> {
      Cursor cursor = statement.cursor();
      Map<UUID, PoolRows> poolOfToken = new HashMap<>();
      Promise<Map<UUID, PoolRows>> done = Promise.promise();
      readTokens(cursor, pools, poolOfToken, done);
      return done.future().eventually(cursor::close);
    });
  }

  private void readTokens(Cursor cursor, Map<Integer, PoolRows> pools, Map<UUID, PoolRows> poolOfToken,
      Promise<Map<UUID, PoolRows>> done) {
    cursor.read(LOAD_FETCH_SIZE).onFailure(done::fail).onSuccess(rows -> {
      for (Row row : rows) {
        PoolRows pool = pools.get(row.getInteger("pool_id"));
        if (pool == null) {
          continue; // deleted after the pools were read: not possible in one transaction, but harmless
        }
        Long evictedGeneration = row.getLong("evicted_generation");
        PoolSnapshot.StoredToken token = new PoolSnapshot.StoredToken(row.getUUID("id"), row.getInteger("seq"),
            millis(row.getOffsetDateTime("activated_at")), millis(row.getOffsetDateTime("released_at")),
            row.getLong("usage_count"), row.getUUID("evicted_user_id"),
            evictedGeneration == null ? 0 : evictedGeneration, row.getBoolean("notice_revoked"));
        pool.tokens.add(token);
        poolOfToken.put(token.id(), pool);
      }
      if (cursor.hasMore()) {
        readTokens(cursor, pools, poolOfToken, done);
      } else {
        done.complete(poolOfToken);
      }
    });
  }

  /**
   * Writes a batch of changes in one statement, fenced by epoch and sequence (see
   * {@link WriteBehindBatcher}). Only the last change per usage and per token in the batch is
   * written. An attempt that the server does not answer within the attempt timeout has its
   * connection closed: it is then in doubt, and the fence keeps a late run of it harmless.
   */
  @Override
  public Future<WriteBehindBatcher.Outcome> write(long epoch, long prev, long seq, long reserveUpTo,
      List<PoolChange> changes) {
    Map<Long, PoolChange> usages = new LinkedHashMap<>();
    Map<UUID, PoolChange> tokens = new LinkedHashMap<>();
    for (PoolChange change : changes) {
      usages.put(change.generation(), change);
      tokens.put(change.tokenId(), change);
    }
    Tuple params = Tuple.tuple();
    addUsages(params, usages.values());
    addTokens(params, tokens.values());
    params.addLong(prev).addLong(seq).addLong(reserveUpTo).addLong(epoch);
    if (batchConnection == null) {
      batchConnection = new BatchConnection(pg.getConnection());
    }
    BatchConnection writer = batchConnection;
    writer.users++;
    return writer.connection
        .recover(err -> Future.failedFuture(new WriteBehindBatcher.NotSentException("no database connection", err)))
        .compose(conn -> bounded(conn, conn.preparedQuery(Sql.WRITE_BATCH).execute(params))
            .compose(rows -> rows.iterator().next().getLong("applied") == 1
                ? Future.succeededFuture(WriteBehindBatcher.Outcome.APPLIED)
                : bounded(conn, conn.query(Sql.WRITER_STATE).execute()).map(state -> fenceOutcome(state, epoch, seq)))
            .recover(err -> {
              if (err instanceof PgException) {
                // The server answered with an error: the statement, and so its transaction, did not commit.
                return Future.failedFuture(new WriteBehindBatcher.NotSentException("refused by the database", err));
              }
              // The connection broke or timed out: batches sent from now on get another one.
              writer.broken = true;
              return Future.failedFuture(err);
            }))
        .andThen(done -> writer.release());
  }

  /** A pooled connection shared by the batches outstanding on it. */
  private final class BatchConnection {
    final Future<SqlConnection> connection;
    int users;
    boolean broken;
    boolean closed;

    BatchConnection(Future<SqlConnection> connection) {
      this.connection = connection;
    }

    /**
     * One batch has its answer. Once the connection broke (or none could be had), batches sent from
     * then on get another one; the last batch's answer gives it back to the pool, and a break closes it.
     */
    void release() {
      users--;
      if (broken || connection.failed() || users == 0) {
        if (batchConnection == this) {
          batchConnection = null;
        }
        if (!closed && (broken || users == 0)) {
          closed = true;
          connection.onSuccess(SqlConnection::close);
        }
      }
    }
  }

  /**
   * Why a batch did not apply. Batches apply only in a chain, each on top of its predecessor, so a
   * last batch at or past this one's number means this one is in.
   */
  private static WriteBehindBatcher.Outcome fenceOutcome(RowSet<Row> state, long epoch, long seq) {
    Row row = state.iterator().next();
    if (row.getLong("epoch") != epoch) {
      return WriteBehindBatcher.Outcome.FENCED;
    }
    return row.getLong("last_batch") >= seq ? WriteBehindBatcher.Outcome.ALREADY_APPLIED
        : WriteBehindBatcher.Outcome.BEHIND;
  }

  /** Closes the connection if the server does not answer in time, so the attempt cannot hang forever. */
  private <T> Future<T> bounded(SqlConnection conn, Future<T> query) {
    long timer = vertx.setTimer(attemptTimeoutMillis, id -> conn.close());
    return query.andThen(done -> vertx.cancelTimer(timer));
  }

  /** Every usage the batch touches, in its last state: the batch statement's parameters $1 to $9. */
  private static void addUsages(Tuple params, Collection<PoolChange> changes) {
    int n = changes.size();
    Long[] generations = new Long[n];
    UUID[] tokenIds = new UUID[n];
    UUID[] userIds = new UUID[n];
    Long[] started = new Long[n];
    Long[] expires = new Long[n];
    Long[] ended = new Long[n];
    String[] reasons = new String[n];
    String[] keys = new String[n];
    Long[] evicted = new Long[n];
    int i = 0;
    for (PoolChange c : changes) {
      generations[i] = c.generation();
      tokenIds[i] = c.tokenId();
      userIds[i] = c.userId();
      started[i] = millis(c.startedAtMillis());
      expires[i] = millis(c.expiresAtMillis());
      ended[i] = millis(c.endedAtMillis());
      reasons[i] = c.endReason() == null ? null : c.endReason().wireName();
      keys[i] = c.idempotencyKey();
      evicted[i] = c.evictedGeneration() == 0 ? null : c.evictedGeneration();
      i++;
    }
    params.addArrayOfLong(generations).addArrayOfUUID(tokenIds).addArrayOfUUID(userIds)
        .addArrayOfLong(started).addArrayOfLong(expires).addArrayOfLong(ended).addArrayOfString(reasons)
        .addArrayOfString(keys).addArrayOfLong(evicted);
  }

  /** Every token the batch touches, in its last state: the batch statement's parameters $10 to $16. */
  private static void addTokens(Tuple params, Collection<PoolChange> changes) {
    int n = changes.size();
    UUID[] ids = new UUID[n];
    Long[] activated = new Long[n];
    Long[] released = new Long[n];
    Long[] counts = new Long[n];
    UUID[] noticeUsers = new UUID[n];
    Long[] noticeGenerations = new Long[n];
    Boolean[] revoked = new Boolean[n];
    int i = 0;
    for (PoolChange c : changes) {
      ids[i] = c.tokenId();
      activated[i] = millis(c.tokenActivatedAtMillis());
      released[i] = millis(c.tokenReleasedAtMillis());
      counts[i] = c.tokenUsageCount();
      noticeUsers[i] = c.tokenEvictedUserId();
      noticeGenerations[i] = c.tokenEvictedGeneration() == 0 ? null : c.tokenEvictedGeneration();
      revoked[i] = c.tokenNoticeRevoked();
      i++;
    }
    params.addArrayOfUUID(ids).addArrayOfLong(activated).addArrayOfLong(released).addArrayOfLong(counts)
        .addArrayOfUUID(noticeUsers).addArrayOfLong(noticeGenerations).addArrayOfBoolean(revoked);
  }

  /** Epoch millis, or null for {@link PoolChange#NO_TIME}. */
  private static Long millis(long value) {
    return value == PoolChange.NO_TIME ? null : value;
  }

  @Override
  public Future<History.TokenUsageList> tokenUsages(UUID tokenId, String pool) {
    return pg.preparedQuery(Sql.TOKEN_USAGES).execute(Tuple.of(tokenId)).map(rows -> {
      List<History.Usage> usages = new ArrayList<>(rows.size());
      for (Row row : rows) {
        usages.add(usage(row, tokenId, row.getUUID("user_id"), pool));
      }
      return new History.TokenUsageList(tokenId, usages);
    });
  }

  @Override
  public Future<History.UserUsagePage> userUsages(History.UserUsages query) {
    Tuple params = Tuple.of(query.userId(), offset(query.from()), offset(query.to()),
        query.beforeGeneration(), query.limit() + 1, query.pool());
    return pg.preparedQuery(Sql.USER_USAGES).execute(params).map(rows -> page(query, rows));
  }

  private static History.UserUsagePage page(History.UserUsages query, RowSet<Row> rows) {
    List<History.Usage> usages = new ArrayList<>(Math.min(rows.size(), query.limit()));
    for (Row row : rows) {
      if (usages.size() == query.limit()) {
        return new History.UserUsagePage(query.userId(), usages,
            usages.get(usages.size() - 1).generation());
      }
      usages.add(usage(row, row.getUUID("token_id"), query.userId(), row.getString("pool")));
    }
    return new History.UserUsagePage(query.userId(), usages, null);
  }

  private static History.Usage usage(Row row, UUID tokenId, UUID userId, String pool) {
    String reason = row.getString("end_reason");
    OffsetDateTime ended = row.getOffsetDateTime("ended_at");
    return new History.Usage(row.getLong("generation"), tokenId, userId,
        row.getOffsetDateTime("started_at").toInstant(), ended == null ? null : ended.toInstant(),
        reason == null ? null : EndReason.fromWireName(reason), pool);
  }

  private static OffsetDateTime offset(Instant instant) {
    return instant == null ? null : instant.atOffset(ZoneOffset.UTC);
  }

  private static long millis(OffsetDateTime time) {
    return time == null ? PoolChange.NO_TIME : time.toInstant().toEpochMilli();
  }
}
