package dev.tokenlease.m2m;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlClient;
import io.vertx.sqlclient.Tuple;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;

/** The M2M tables: clients, tokens (by hash) and the audit trail. */
final class AuthStore {
  /** A registered client. The secret hash never leaves this package. */
  record Client(String clientId, String name, String tenantId, List<String> scopes, byte[] secretHash,
      Instant createdAt, Instant secretRotatedAt, boolean bootstrap) {}

  /** A token as stored, by the hex of its hash. */
  record StoredToken(UUID id, String hashHex, String clientId, String tenantId, List<String> scopes, Instant createdAt,
      Instant expiresAt) {
    Principal principal() {
      return new Principal(id, clientId, tenantId, java.util.Set.copyOf(scopes), createdAt, expiresAt);
    }
  }

  /** A row of the admin listing: metadata only, never the value or its hash. */
  record Listed(UUID id, String clientId, String clientName, String tenantId, List<String> scopes, Instant createdAt,
      Instant expiresAt, boolean active) {}

  record AuditEvent(long id, String event, String severity, Instant occurredAt, String actorClientId, String tenantId,
      JsonObject details) {}

  record Page<T>(List<T> items, long total) {}

  private static final String CLIENT_COLUMNS =
      "client_id, client_name, tenant_id, scopes, secret_hash, created_at, secret_rotated_at, bootstrap";

  private final Pool pg;

  AuthStore(Pool pg) {
    this.pg = pg;
  }

  /**
   * Makes the configured admin client (scope admin, tenant {@code system}) the only bootstrap
   * admin, in one transaction: it is created or updated; when its secret changed, the tokens issued
   * under the old one are revoked; any other bootstrap admin (a previous id, or all of them when
   * {@code clientId} is null) is deleted with its tokens. Changing or removing the configured admin
   * therefore cuts off the old one. Answers how many tokens were revoked.
   */
  Future<Integer> bootstrap(String clientId, byte[] secretHash, Instant now) {
    return pg.withTransaction(tx -> {
      Future<Integer> revoked = Future.succeededFuture(0);
      if (clientId != null) {
        revoked = tx.preparedQuery("SELECT secret_hash, deleted_at FROM m2m_clients WHERE client_id = $1 FOR UPDATE")
            .execute(Tuple.of(clientId))
            .compose(rows -> {
              boolean changed = rows.size() == 1
                  && !java.util.Arrays.equals(rows.iterator().next().getBuffer(0).getBytes(), secretHash);
              return tx.preparedQuery("INSERT INTO m2m_clients (" + CLIENT_COLUMNS + ") "
                      + "VALUES ($1, 'bootstrap admin', 'system', '{admin}', $2, $3, $3, true) "
                      + "ON CONFLICT (client_id) DO UPDATE SET scopes = '{admin}', tenant_id = 'system', bootstrap = true, "
                      + "deleted_at = NULL, secret_rotated_at = CASE WHEN m2m_clients.secret_hash = EXCLUDED.secret_hash "
                      + "THEN m2m_clients.secret_rotated_at ELSE EXCLUDED.secret_rotated_at END, "
                      + "secret_hash = EXCLUDED.secret_hash")
                  .execute(Tuple.of(clientId, Buffer.buffer(secretHash), time(now)))
                  .compose(v -> changed ? revokeWhere(tx, "client_id = $1", Tuple.of(clientId, time(now))).map(List::size)
                      : Future.succeededFuture(0));
            });
      }
      return revoked.compose(count -> tx.preparedQuery("UPDATE m2m_clients SET deleted_at = $2 WHERE bootstrap "
                  + "AND deleted_at IS NULL AND client_id IS DISTINCT FROM $1")
              .execute(Tuple.of(clientId, time(now)))
              .compose(v -> revokeWhere(tx, "client_id IN (SELECT client_id FROM m2m_clients WHERE bootstrap "
                  + "AND client_id IS DISTINCT FROM $1)", Tuple.of(clientId, time(now))))
              .map(more -> count + more.size()));
    });
  }

  Future<Void> insertClient(Client client) {
    return pg.preparedQuery("INSERT INTO m2m_clients (" + CLIENT_COLUMNS + ") VALUES ($1, $2, $3, $4, $5, $6, $7, false)")
        .execute(Tuple.of(client.clientId(), client.name(), client.tenantId(), client.scopes().toArray(String[]::new),
            Buffer.buffer(client.secretHash()), time(client.createdAt()), time(client.secretRotatedAt())))
        .mapEmpty();
  }

  /** A client that is not deleted, or null. */
  Future<Client> findClient(String clientId) {
    return pg.preparedQuery("SELECT " + CLIENT_COLUMNS + " FROM m2m_clients WHERE client_id = $1 AND deleted_at IS NULL")
        .execute(Tuple.of(clientId))
        .map(rows -> rows.size() == 0 ? null : client(rows.iterator().next()));
  }

  Future<Page<Client>> listClients(int page, int limit) {
    String where = " FROM m2m_clients WHERE deleted_at IS NULL";
    return pg.query("SELECT count(*)" + where).execute().compose(count -> {
      long total = count.iterator().next().getLong(0);
      return pg.preparedQuery("SELECT " + CLIENT_COLUMNS + where
              + " ORDER BY created_at DESC, client_id LIMIT $1 OFFSET $2")
          .execute(Tuple.of(limit, offset(page, limit)))
          .map(rows -> {
            List<Client> clients = new ArrayList<>();
            rows.forEach(row -> clients.add(client(row)));
            return new Page<>(clients, total);
          });
    });
  }

  /** The client's tenant, or null when there is no such client. */
  Future<String> rotateSecret(String clientId, byte[] secretHash, Instant now) {
    return pg.preparedQuery("UPDATE m2m_clients SET secret_hash = $2, secret_rotated_at = $3 "
            + "WHERE client_id = $1 AND deleted_at IS NULL RETURNING tenant_id")
        .execute(Tuple.of(clientId, Buffer.buffer(secretHash), time(now)))
        .map(rows -> rows.size() == 1 ? rows.iterator().next().getString(0) : null);
  }

  /**
   * Marks the client deleted and revokes its tokens, in one transaction. Answers its tenant and the
   * hashes of the tokens revoked, or null when there was no such client.
   */
  record Deleted(String tenantId, List<String> revokedHashes) {}

  Future<Deleted> deleteClient(String clientId, Instant now) {
    return pg.withTransaction(tx -> tx.preparedQuery(
            "UPDATE m2m_clients SET deleted_at = $2 WHERE client_id = $1 AND deleted_at IS NULL RETURNING tenant_id")
        .execute(Tuple.of(clientId, time(now)))
        .compose(deleted -> deleted.rowCount() == 0 ? Future.succeededFuture(null)
            : revokeWhere(tx, "client_id = $1", Tuple.of(clientId, time(now)))
                .map(hashes -> new Deleted(deleted.iterator().next().getString(0), hashes))));
  }

  /**
   * Stores a new token and revokes the client's oldest live tokens beyond {@code maxLive}, in one
   * transaction that first takes a share lock on the client row: a concurrent deletion either
   * waits for this issue (and then revokes the new token too) or wins, and then nothing is issued.
   * Answers the hashes of the tokens revoked by the cap, or null when the client is gone.
   */
  Future<List<String>> insertToken(StoredToken token, byte[] hash, int maxLive) {
    return pg.withTransaction(tx -> tx.preparedQuery(
            "SELECT 1 FROM m2m_clients WHERE client_id = $1 AND deleted_at IS NULL FOR SHARE")
        .execute(Tuple.of(token.clientId()))
        .compose(client -> client.size() == 0 ? Future.succeededFuture(null) : tx.preparedQuery("INSERT INTO m2m_tokens "
                + "(id, token_hash, client_id, tenant_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .execute(Tuple.of(token.id(), Buffer.buffer(hash), token.clientId(), token.tenantId(),
                token.scopes().toArray(String[]::new), time(token.createdAt()), time(token.expiresAt())))
            .compose(inserted -> revokeWhere(tx, "id IN (SELECT id FROM m2m_tokens WHERE client_id = $1 "
                + "AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC OFFSET " + maxLive + ")",
                Tuple.of(token.clientId(), time(token.createdAt()))))));
  }

  /** Revokes one token; answers whether it was live until now. */
  Future<Boolean> revokeToken(UUID id, Instant now) {
    return pg.preparedQuery("UPDATE m2m_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .execute(Tuple.of(id, time(now))).map(rows -> rows.rowCount() == 1);
  }

  private static Future<List<String>> revokeWhere(SqlClient client, String condition, Tuple args) {
    // $2 is always the revocation time.
    return client.preparedQuery("UPDATE m2m_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND " + condition
            + " RETURNING token_hash")
        .execute(args)
        .map(AuthStore::hashes);
  }

  /** Every token that is neither revoked nor expired, for the in-memory set at start-up. */
  Future<List<StoredToken>> loadLive(Instant now) {
    return pg.preparedQuery("SELECT t.id, t.token_hash, t.client_id, t.tenant_id, t.scopes, t.created_at, t.expires_at "
            + "FROM m2m_tokens t JOIN m2m_clients c ON c.client_id = t.client_id "
            + "WHERE t.revoked_at IS NULL AND t.expires_at > $1 AND c.deleted_at IS NULL")
        .execute(Tuple.of(time(now)))
        .map(rows -> {
          List<StoredToken> tokens = new ArrayList<>();
          for (Row row : rows) {
            tokens.add(new StoredToken(row.getUUID(0), Secrets.hex(row.getBuffer(1).getBytes()), row.getString(2),
                row.getString(3), Arrays.asList(row.getArrayOfStrings(4)), instant(row.getOffsetDateTime(5)),
                instant(row.getOffsetDateTime(6))));
          }
          return tokens;
        });
  }

  /** The admin listing, newest first; any filter may be null. */
  Future<Page<Listed>> listTokens(String tenantId, String clientId, Boolean active, int page, int limit, Instant now) {
    String where = " FROM m2m_tokens t JOIN m2m_clients c ON c.client_id = t.client_id "
        + "WHERE ($1::text IS NULL OR t.tenant_id = $1) AND ($2::text IS NULL OR t.client_id = $2) "
        + "AND ($3::boolean IS NULL OR (t.revoked_at IS NULL AND t.expires_at > $4) = $3)";
    Tuple filter = Tuple.of(tenantId, clientId, active, time(now));
    return pg.preparedQuery("SELECT count(*)" + where).execute(filter).compose(count -> {
      long total = count.iterator().next().getLong(0);
      return pg.preparedQuery("SELECT t.id, t.client_id, c.client_name, t.tenant_id, t.scopes, t.created_at, "
              + "t.expires_at, (t.revoked_at IS NULL AND t.expires_at > $4)" + where
              + " ORDER BY t.created_at DESC, t.id DESC LIMIT $5 OFFSET $6")
          .execute(Tuple.of(tenantId, clientId, active, time(now), limit, offset(page, limit)))
          .map(rows -> {
            List<Listed> items = new ArrayList<>();
            for (Row row : rows) {
              items.add(new Listed(row.getUUID(0), row.getString(1), row.getString(2), row.getString(3),
                  Arrays.asList(row.getArrayOfStrings(4)), instant(row.getOffsetDateTime(5)),
                  instant(row.getOffsetDateTime(6)), row.getBoolean(7)));
            }
            return new Page<>(items, total);
          });
    });
  }

  Future<Void> audit(String event, String severity, String actorClientId, String tenantId, JsonObject details,
      Instant now) {
    return pg.preparedQuery("INSERT INTO m2m_audit (event, severity, occurred_at, actor_client_id, tenant_id, details) "
            + "VALUES ($1, $2, $3, $4, $5, $6)")
        .execute(Tuple.of(event, severity, time(now), actorClientId, tenantId, details))
        .mapEmpty();
  }

  Future<Page<AuditEvent>> listAudit(String event, int page, int limit) {
    String where = " FROM m2m_audit WHERE ($1::text IS NULL OR event = $1)";
    return pg.preparedQuery("SELECT count(*)" + where).execute(Tuple.of(event)).compose(count -> {
      long total = count.iterator().next().getLong(0);
      return pg.preparedQuery("SELECT id, event, severity, occurred_at, actor_client_id, tenant_id, details" + where
              + " ORDER BY occurred_at DESC, id DESC LIMIT $2 OFFSET $3")
          .execute(Tuple.of(event, limit, offset(page, limit)))
          .map(rows -> {
            List<AuditEvent> events = new ArrayList<>();
            for (Row row : rows) {
              Object details = row.getValue(6);
              events.add(new AuditEvent(row.getLong(0), row.getString(1), row.getString(2),
                  instant(row.getOffsetDateTime(3)), row.getString(4), row.getString(5),
                  details instanceof JsonObject json ? json : new JsonObject()));
            }
            return new Page<>(events, total);
          });
    });
  }

  private static List<String> hashes(RowSet<Row> rows) {
    List<String> hashes = new ArrayList<>();
    rows.forEach(row -> hashes.add(Secrets.hex(row.getBuffer(0).getBytes())));
    return hashes;
  }

  private static Client client(Row row) {
    return new Client(row.getString(0), row.getString(1), row.getString(2), Arrays.asList(row.getArrayOfStrings(3)),
        row.getBuffer(4).getBytes(), instant(row.getOffsetDateTime(5)), instant(row.getOffsetDateTime(6)),
        row.getBoolean(7));
  }

  private static long offset(int page, int limit) {
    return (long) (page - 1) * limit;
  }

  private static OffsetDateTime time(Instant instant) {
    return instant.atOffset(ZoneOffset.UTC);
  }

  private static Instant instant(OffsetDateTime time) {
    return time == null ? null : time.toInstant();
  }
}
