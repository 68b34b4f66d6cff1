package dev.tokenlease.vault;

import dev.tokenlease.vault.CredentialMessages.Event;
import dev.tokenlease.vault.CredentialMessages.Info;
import dev.tokenlease.vault.CredentialMessages.VersionInfo;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/** Reads and writes vault rows. Secrets arrive here already sealed and leave still sealed. */
final class CredentialRepository {
  /** A credential claimed for rotation, with its sealed refresh secrets. */
  record Claimed(UUID id, String service, String environment, String status, int currentVersion, Instant expiresAt,
      String tokenUrl, String grantType, String clientId, String scope, byte[] clientSecret, byte[] refreshToken,
      int attempts) {}

  /** A sealed value as stored. */
  record SealedValue(UUID id, String service, String environment, int version, byte[] ciphertext, long keyId,
      Instant expiresAt) {}

  /** One stored ciphertext under {@code keyId}: a value ({@code version}) or a refresh secret ({@code field}). */
  record SealedSample(long keyId, UUID id, Integer version, String field, byte[] ciphertext) {}

  /** A version sealed under a key that is no longer primary. */
  record StaleVersion(UUID id, int version, byte[] ciphertext) {}

  /** A new credential, sealed. */
  record NewCredential(UUID id, String service, String environment, Instant expiresAt, byte[] value, long valueKey,
      String tokenUrl, String grantType, String clientId, String scope, byte[] clientSecret, Long clientSecretKey,
      byte[] refreshToken, Long refreshTokenKey) {}

  private final Pool pg;
  /** TOKENS_VAULT_ROTATION_WINDOW in seconds: what a status and a next attempt are computed against. */
  private final double windowSeconds;

  CredentialRepository(Pool pg, Duration rotationWindow) {
    this.pg = pg;
    this.windowSeconds = rotationWindow.toMillis() / 1000.0;
  }

  Future<Info> create(NewCredential c) {
    return pg.withTransaction(conn -> conn.preparedQuery(CredentialSql.INSERT_CREDENTIAL)
            .execute(Tuple.tuple().addUUID(c.id()).addString(c.service()).addString(c.environment()).addString("active")
                .addOffsetDateTime(time(c.expiresAt())).addString(c.tokenUrl()).addString(c.grantType())
                .addString(c.clientId()).addString(c.scope()).addBuffer(buffer(c.clientSecret()))
                .addLong(c.clientSecretKey()).addBuffer(buffer(c.refreshToken())).addLong(c.refreshTokenKey()))
            .compose(v -> conn.preparedQuery(CredentialSql.INSERT_VERSION).execute(Tuple.of(c.id(), 1,
                Buffer.buffer(c.value()), c.valueKey(), "created", time(c.expiresAt()))))
            .compose(v -> event(conn, c.id(), "created", 1, null, null)))
        .compose(v -> get(c.id()));
  }

  Future<Info> get(UUID id) {
    return pg.preparedQuery(CredentialSql.GET).execute(Tuple.of(id, windowSeconds))
        .map(rows -> rows.size() == 0 ? null : info(rows.iterator().next()));
  }

  Future<CredentialMessages.Page> list(CredentialMessages.ListQuery q) {
    OffsetDateTime windowEnd = q.expiringWithin() == null ? null : time(Instant.now().plus(q.expiringWithin()));
    Tuple filters = Tuple.of(q.service(), q.environment(), q.status(), windowEnd, windowSeconds);
    Tuple paged = Tuple.of(q.service(), q.environment(), q.status(), windowEnd, windowSeconds, q.limit(),
        (q.page() - 1) * q.limit());
    return pg.preparedQuery(CredentialSql.COUNT).execute(filters).compose(count ->
        pg.preparedQuery(CredentialSql.LIST).execute(paged).map(rows -> {
          List<Info> items = new ArrayList<>(rows.size());
          rows.forEach(row -> items.add(info(row)));
          return new CredentialMessages.Page(items, count.iterator().next().getLong("n"), q.page(), q.limit());
        }));
  }

  /** The value a caller gets, still sealed; null when the slot has no valid value. */
  Future<SealedValue> current(String service, String environment, String stage) {
    return pg.preparedQuery(CredentialSql.CURRENT_VALUE).execute(Tuple.of(service, environment, stage)).map(rows -> {
      if (rows.size() == 0) {
        return null;
      }
      Row row = rows.iterator().next();
      return new SealedValue(row.getUUID("credential_id"), row.getString("service"), row.getString("environment"),
          row.getInteger("version"), row.getBuffer("ciphertext").getBytes(), row.getLong("key_id"),
          instant(row.getOffsetDateTime("expires_at")));
    });
  }

  Future<Void> countUse(UUID id) {
    return pg.preparedQuery(CredentialSql.COUNT_USE).execute(Tuple.of(id)).mapEmpty();
  }

  Future<CredentialMessages.UsageStats> recordUsage(CredentialMessages.Usage usage) {
    return pg.preparedQuery(CredentialSql.RECORD_USAGE)
        .execute(Tuple.of(usage.id(), usage.responseTimeMs(), usage.success()))
        .map(rows -> {
          if (rows.size() == 0) {
            return null;
          }
          Row row = rows.iterator().next();
          return new CredentialMessages.UsageStats(usage.id(), row.getLong("usage_count"), row.getLong("failure_count"),
              row.getLong("response_count"), row.getDouble("avg_response_ms"));
        });
  }

  /** Retires a credential and all its versions; false when it was not found or already retired. */
  Future<Boolean> retire(UUID id) {
    return pg.withTransaction(conn -> conn.preparedQuery(CredentialSql.RETIRE).execute(Tuple.of(id))
        .compose(rows -> rows.size() == 0 ? Future.succeededFuture(false)
            : event(conn, id, "retired", null, null, null).map(true)));
  }

  /** Up to {@code limit} credentials whose next scheduled attempt is due. */
  Future<List<UUID>> due(int limit) {
    return pg.preparedQuery(CredentialSql.DUE).execute(Tuple.of(windowSeconds, limit)).map(rows -> {
      List<UUID> ids = new ArrayList<>();
      rows.forEach(row -> ids.add(row.getUUID("id")));
      return ids;
    });
  }

  /** Claims a credential for one rotation until {@code until}; null if it cannot be claimed now. */
  Future<Claimed> claim(UUID id, Instant until) {
    return pg.preparedQuery(CredentialSql.CLAIM).execute(Tuple.of(id, time(until))).map(rows -> {
      if (rows.size() == 0) {
        return null;
      }
      Row row = rows.iterator().next();
      return new Claimed(row.getUUID("id"), row.getString("service"), row.getString("environment"),
          row.getString("status"), row.getInteger("current_version"), instant(row.getOffsetDateTime("expires_at")), row.getString("token_url"),
          row.getString("grant_type"), row.getString("client_id"), row.getString("scope"),
          bytes(row.getBuffer("client_secret")), bytes(row.getBuffer("refresh_token")), row.getInteger("rotation_attempts"));
    });
  }

  /**
   * Makes a new value current in one transaction: the old current becomes previous (still served
   * to those who ask for it until it expires), an older previous is retired.
   */
  Future<Void> rotated(UUID id, int version, byte[] value, long valueKey, Instant expiresAt, byte[] refreshToken,
      Long refreshTokenKey) {
    return pg.withTransaction(conn -> conn.preparedQuery(CredentialSql.DEMOTE_PREVIOUS).execute(Tuple.of(id))
        .compose(v -> conn.preparedQuery(CredentialSql.DEMOTE_CURRENT).execute(Tuple.of(id)))
        .compose(v -> conn.preparedQuery(CredentialSql.INSERT_VERSION)
            .execute(Tuple.of(id, version, Buffer.buffer(value), valueKey, "rotated", time(expiresAt))))
        .compose(v -> conn.preparedQuery(CredentialSql.ROTATED).execute(Tuple.tuple().addUUID(id).addInteger(version)
            .addOffsetDateTime(time(expiresAt)).addBuffer(buffer(refreshToken)).addLong(refreshTokenKey)))
        .compose(v -> event(conn, id, "rotated", version, null, null)));
  }

  /** Records a failed attempt; {@code status} is 'failed' when retries are exhausted. */
  Future<Void> rotationFailed(UUID id, int attempts, Instant nextAttempt, String status, String error) {
    return pg.withTransaction(conn -> conn.preparedQuery(CredentialSql.ROTATION_FAILED)
        .execute(Tuple.of(id, attempts, time(nextAttempt), status, error))
        .compose(v -> event(conn, id, "rotation_failed", null, attempts, error))
        .compose(v -> "failed".equals(status) ? event(conn, id, "failed", null, attempts, error)
            : Future.succeededFuture()));
  }

  Future<CredentialMessages.HistoryReply> history(UUID id) {
    return pg.preparedQuery(CredentialSql.HISTORY_VERSIONS).execute(Tuple.of(id)).compose(versionRows ->
        pg.preparedQuery(CredentialSql.HISTORY_EVENTS).execute(Tuple.of(id)).map(eventRows -> {
          List<VersionInfo> versions = new ArrayList<>();
          versionRows.forEach(r -> versions.add(new VersionInfo(r.getInteger("version"), r.getString("stage"),
              r.getLong("key_id"), r.getString("source"), instant(r.getOffsetDateTime("created_at")),
              instant(r.getOffsetDateTime("expires_at")))));
          List<Event> events = new ArrayList<>();
          eventRows.forEach(r -> events.add(new Event(instant(r.getOffsetDateTime("at")), r.getString("type"),
              r.getInteger("version"), r.getInteger("attempt"), r.getString("detail"))));
          return new CredentialMessages.HistoryReply(id, versions, events);
        }));
  }

  Future<List<SealedSample>> sealedSamples() {
    return pg.query(CredentialSql.SEALED_SAMPLES).execute().map(rows -> {
      List<SealedSample> samples = new ArrayList<>();
      rows.forEach(r -> samples.add(new SealedSample(r.getLong("key_id"), r.getUUID("credential_id"),
          r.getInteger("version"), r.getString("field"), r.getBuffer("ciphertext").getBytes())));
      return samples;
    });
  }

  /** Stores {@code first} as the canary unless one exists, and answers the stored one. */
  Future<VaultCipher.Sealed> canary(VaultCipher.Sealed first) {
    return pg.preparedQuery(CredentialSql.INSERT_CANARY)
        .execute(Tuple.of(Buffer.buffer(first.ciphertext()), first.keyId()))
        .compose(v -> pg.query(CredentialSql.CANARY).execute())
        .map(rows -> {
          Row row = rows.iterator().next();
          return new VaultCipher.Sealed(row.getBuffer("ciphertext").getBytes(), row.getLong("key_id"));
        });
  }

  /** Replaces the canary with {@code resealed} if it was sealed under another key. */
  Future<Void> resealCanary(VaultCipher.Sealed resealed) {
    return pg.preparedQuery(CredentialSql.RESEAL_CANARY)
        .execute(Tuple.of(Buffer.buffer(resealed.ciphertext()), resealed.keyId())).mapEmpty();
  }

  /** Up to {@code limit} versions sealed under another key than {@code primaryKey}. */
  Future<List<StaleVersion>> staleVersions(long primaryKey, int limit) {
    return pg.preparedQuery(CredentialSql.STALE_VERSIONS).execute(Tuple.of(primaryKey, limit)).map(rows -> {
      List<StaleVersion> stale = new ArrayList<>();
      rows.forEach(r -> stale.add(new StaleVersion(r.getUUID("credential_id"), r.getInteger("version"),
          r.getBuffer("ciphertext").getBytes())));
      return stale;
    });
  }

  Future<Void> rewrapVersion(UUID id, int version, byte[] ciphertext, long keyId) {
    return pg.withTransaction(conn -> conn.preparedQuery(CredentialSql.REWRAP_VERSION)
        .execute(Tuple.of(id, version, Buffer.buffer(ciphertext), keyId))
        .compose(v -> event(conn, id, "reencrypted", version, null, "key " + keyId)));
  }

  /** Rows whose refresh secrets are sealed under another key: id, secret, refresh token. */
  Future<List<Row>> staleSecrets(long primaryKey, int limit) {
    return pg.preparedQuery(CredentialSql.STALE_SECRETS).execute(Tuple.of(primaryKey, limit)).map(rows -> {
      List<Row> stale = new ArrayList<>();
      rows.forEach(stale::add);
      return stale;
    });
  }

  Future<Void> rewrapSecrets(UUID id, byte[] clientSecret, Long clientSecretKey, byte[] refreshToken, Long refreshTokenKey) {
    return pg.preparedQuery(CredentialSql.REWRAP_SECRETS).execute(Tuple.tuple().addUUID(id)
        .addBuffer(buffer(clientSecret)).addLong(clientSecretKey).addBuffer(buffer(refreshToken)).addLong(refreshTokenKey))
        .mapEmpty();
  }

  private static Future<Void> event(SqlConnection conn, UUID id, String type, Integer version, Integer attempt,
      String detail) {
    return conn.preparedQuery(CredentialSql.INSERT_EVENT).execute(Tuple.of(id, type, version, attempt, detail)).mapEmpty();
  }

  private static Info info(Row r) {
    return new Info(r.getUUID("id"), r.getString("service"), r.getString("environment"), r.getString("status"),
        r.getInteger("current_version"), instant(r.getOffsetDateTime("expires_at")), r.getString("token_url"),
        r.getString("grant_type"), r.getString("client_id"), r.getString("scope"), r.getBoolean("has_client_secret"),
        r.getBoolean("has_refresh_token"), r.getInteger("rotation_attempts"), instant(r.getOffsetDateTime("next_attempt_at")),
        r.getString("last_error"), instant(r.getOffsetDateTime("last_refreshed")), instant(r.getOffsetDateTime("last_used")),
        r.getLong("usage_count"), r.getLong("failure_count"), r.getLong("response_count"), r.getDouble("avg_response_ms"),
        instant(r.getOffsetDateTime("created_at")), instant(r.getOffsetDateTime("updated_at")));
  }

  static Instant instant(OffsetDateTime time) {
    return time == null ? null : time.toInstant();
  }

  static OffsetDateTime time(Instant instant) {
    return instant == null ? null : instant.atOffset(ZoneOffset.UTC);
  }

  private static Buffer buffer(byte[] bytes) {
    return bytes == null ? null : Buffer.buffer(bytes);
  }

  private static byte[] bytes(Buffer buffer) {
    return buffer == null ? null : buffer.getBytes();
  }
}
