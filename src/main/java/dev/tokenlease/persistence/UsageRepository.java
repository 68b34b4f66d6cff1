package dev.tokenlease.persistence;

import dev.tokenlease.config.AckMode;
import dev.tokenlease.config.AppConfig;
import dev.tokenlease.config.ConfigException;
import dev.tokenlease.pool.EndReason;
import dev.tokenlease.pool.PoolChange;
import dev.tokenlease.pool.PoolSnapshot;
import dev.tokenlease.pool.bus.PoolMessages;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.sqlclient.Cursor;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;

/** Reads and writes tokens and usages through the reactive PostgreSQL client. */
final class UsageRepository {
  private static final int LOAD_FETCH_SIZE = 10_000;

  private final Pool pg;

  UsageRepository(Pool pg) {
    this.pg = pg;
  }

  /** Creates tokens until the table holds {@code poolSize}; refuses to shrink. */
  Future<Void> ensureTokens(int poolSize) {
    return pg.query(Sql.COUNT_TOKENS).execute().compose(rows -> {
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
          .execute(Tuple.of(maxSeq + 1, maxSeq + (int) (poolSize - count)))
          // Fresh statistics, so that the first batches are planned for the real table size.
          .compose(created -> pg.query("ANALYZE tokens").execute())
          .mapEmpty();
    });
  }

  /**
   * Records that an instance runs now and returns until when activations must wait: after an
   * unclean stop in memory mode, one lease TTL past the last sign of life; otherwise no wait.
   */
  Future<Long> startRun(AckMode mode, long leaseTtlMillis, long heartbeatMillis) {
    return pg.query(Sql.READ_SERVICE_STATE).execute().compose(rows -> {
      long blockedUntil = PoolChange.NO_TIME;
      if (rows.size() > 0) {
        Row previous = rows.iterator().next();
        if (previous.getBoolean("running") && "memory".equals(previous.getString("ack_mode"))) {
          blockedUntil = millis(previous.getOffsetDateTime("lost_grants_end"));
        }
      }
      long result = blockedUntil;
      return pg.preparedQuery(Sql.START_RUN)
          .execute(Tuple.of(mode.name().toLowerCase(Locale.ROOT), leaseTtlMillis, heartbeatMillis))
          .map(result);
    });
  }

  Future<Void> heartbeat() {
    return pg.query(Sql.HEARTBEAT).execute().mapEmpty();
  }

  Future<Void> stopRun() {
    return pg.query(Sql.STOP_RUN).execute().mapEmpty();
  }

  Future<Void> ping() {
    return pg.query(Sql.PING).execute().mapEmpty();
  }

  Future<PoolSnapshot> loadSnapshot(long activationsBlockedUntil) {
    return pg.withTransaction(conn -> loadTokens(conn).compose(tokens ->
        conn.query(Sql.LOAD_OPEN_LEASES).execute().compose(leaseRows -> {
          List<PoolSnapshot.StoredLease> leases = new ArrayList<>(leaseRows.size());
          for (Row row : leaseRows) {
            leases.add(new PoolSnapshot.StoredLease(row.getLong("generation"), row.getUUID("token_id"),
                row.getUUID("user_id"), millis(row.getOffsetDateTime("started_at")),
                millis(row.getOffsetDateTime("expires_at"))));
          }
          return conn.query(Sql.LAST_GENERATION).execute().map(g -> new PoolSnapshot(tokens, leases,
              g.iterator().next().getLong("g"), activationsBlockedUntil));
        })));
  }

  private Future<List<PoolSnapshot.StoredToken>> loadTokens(SqlConnection conn) {
    return conn.prepare(Sql.LOAD_TOKENS).compose(statement -> {
      Cursor cursor = statement.cursor();
      List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
      Promise<List<PoolSnapshot.StoredToken>> done = Promise.promise();
      readTokens(cursor, tokens, done);
      return done.future().eventually(cursor::close);
    });
  }

  private void readTokens(Cursor cursor, List<PoolSnapshot.StoredToken> into, Promise<List<PoolSnapshot.StoredToken>> done) {
    cursor.read(LOAD_FETCH_SIZE).onFailure(done::fail).onSuccess(rows -> {
      for (Row row : rows) {
        into.add(new PoolSnapshot.StoredToken(row.getUUID("id"), row.getInteger("seq"),
            millis(row.getOffsetDateTime("activated_at")), millis(row.getOffsetDateTime("released_at")),
            row.getLong("usage_count")));
      }
      if (cursor.hasMore()) {
        readTokens(cursor, into, done);
      } else {
        done.complete(into);
      }
    });
  }

  /**
   * Writes a batch of changes in one statement. Only the last change per usage and per token in the
   * batch is written; all values are absolute, so replaying a batch is harmless.
   */
  Future<Void> write(List<PoolChange> changes) {
    Map<Long, PoolChange> usages = new LinkedHashMap<>();
    Map<Long, Boolean> granted = new HashMap<>();
    Map<UUID, PoolChange> tokens = new LinkedHashMap<>();
    for (PoolChange change : changes) {
      usages.put(change.generation(), change);
      if (change.kind() == PoolChange.Kind.GRANTED) {
        granted.put(change.generation(), Boolean.TRUE);
      }
      tokens.put(change.tokenId(), change);
    }
    List<PoolChange> updated = new ArrayList<>();
    List<PoolChange> inserted = new ArrayList<>();
    for (PoolChange change : usages.values()) {
      (granted.containsKey(change.generation()) ? inserted : updated).add(change);
    }
    Tuple params = Tuple.tuple();
    addUpdated(params, updated);
    addInserted(params, inserted);
    addTokens(params, tokens.values());
    return pg.preparedQuery(Sql.WRITE_BATCH).execute(params).mapEmpty();
  }

  private static void addUpdated(Tuple params, List<PoolChange> changes) {
    int n = changes.size();
    Long[] generations = new Long[n];
    Long[] expires = new Long[n];
    Long[] ended = new Long[n];
    String[] reasons = new String[n];
    for (int i = 0; i < n; i++) {
      PoolChange c = changes.get(i);
      generations[i] = c.generation();
      expires[i] = millis(c.expiresAtMillis());
      ended[i] = millis(c.endedAtMillis());
      reasons[i] = c.endReason() == null ? null : c.endReason().wireName();
    }
    params.addArrayOfLong(generations).addArrayOfLong(expires).addArrayOfLong(ended).addArrayOfString(reasons);
  }

  private static void addInserted(Tuple params, List<PoolChange> changes) {
    int n = changes.size();
    Long[] generations = new Long[n];
    UUID[] tokenIds = new UUID[n];
    UUID[] userIds = new UUID[n];
    Long[] started = new Long[n];
    Long[] expires = new Long[n];
    Long[] ended = new Long[n];
    String[] reasons = new String[n];
    for (int i = 0; i < n; i++) {
      PoolChange c = changes.get(i);
      generations[i] = c.generation();
      tokenIds[i] = c.tokenId();
      userIds[i] = c.userId();
      started[i] = millis(c.startedAtMillis());
      expires[i] = millis(c.expiresAtMillis());
      ended[i] = millis(c.endedAtMillis());
      reasons[i] = c.endReason() == null ? null : c.endReason().wireName();
    }
    params.addArrayOfLong(generations).addArrayOfUUID(tokenIds).addArrayOfUUID(userIds)
        .addArrayOfLong(started).addArrayOfLong(expires).addArrayOfLong(ended).addArrayOfString(reasons);
  }

  private static void addTokens(Tuple params, java.util.Collection<PoolChange> changes) {
    int n = changes.size();
    UUID[] ids = new UUID[n];
    Long[] activated = new Long[n];
    Long[] released = new Long[n];
    Long[] counts = new Long[n];
    int i = 0;
    for (PoolChange c : changes) {
      ids[i] = c.tokenId();
      activated[i] = millis(c.tokenActivatedAtMillis());
      released[i] = millis(c.tokenReleasedAtMillis());
      counts[i] = c.tokenUsageCount();
      i++;
    }
    params.addArrayOfUUID(ids).addArrayOfLong(activated).addArrayOfLong(released).addArrayOfLong(counts);
  }

  /** Epoch millis, or null for {@link PoolChange#NO_TIME}. */
  private static Long millis(long value) {
    return value == PoolChange.NO_TIME ? null : value;
  }

  Future<PoolMessages.TokenUsageList> tokenUsages(UUID tokenId) {
    return pg.preparedQuery(Sql.TOKEN_USAGES).execute(Tuple.of(tokenId)).map(rows -> {
      List<PoolMessages.Usage> usages = new ArrayList<>(rows.size());
      for (Row row : rows) {
        usages.add(usage(row, tokenId, row.getUUID("user_id")));
      }
      return new PoolMessages.TokenUsageList(tokenId, usages);
    });
  }

  Future<PoolMessages.UserUsagePage> userUsages(PoolMessages.UserUsages query) {
    Tuple params = Tuple.of(query.userId(), offset(query.from()), offset(query.to()),
        query.beforeGeneration(), query.limit() + 1);
    return pg.preparedQuery(Sql.USER_USAGES).execute(params).map(rows -> page(query, rows));
  }

  private static PoolMessages.UserUsagePage page(PoolMessages.UserUsages query, RowSet<Row> rows) {
    List<PoolMessages.Usage> usages = new ArrayList<>(Math.min(rows.size(), query.limit()));
    for (Row row : rows) {
      if (usages.size() == query.limit()) {
        return new PoolMessages.UserUsagePage(query.userId(), usages,
            usages.get(usages.size() - 1).generation());
      }
      usages.add(usage(row, row.getUUID("token_id"), query.userId()));
    }
    return new PoolMessages.UserUsagePage(query.userId(), usages, null);
  }

  private static PoolMessages.Usage usage(Row row, UUID tokenId, UUID userId) {
    String reason = row.getString("end_reason");
    OffsetDateTime ended = row.getOffsetDateTime("ended_at");
    return new PoolMessages.Usage(row.getLong("generation"), tokenId, userId,
        row.getOffsetDateTime("started_at").toInstant(), ended == null ? null : ended.toInstant(),
        reason == null ? null : EndReason.fromWireName(reason));
  }

  private static OffsetDateTime offset(Instant instant) {
    return instant == null ? null : instant.atOffset(ZoneOffset.UTC);
  }

  private static long millis(OffsetDateTime time) {
    return time == null ? PoolChange.NO_TIME : time.toInstant().toEpochMilli();
  }
}
