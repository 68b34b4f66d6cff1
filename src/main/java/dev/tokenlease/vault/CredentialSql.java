package dev.tokenlease.vault;

/** The vault's SQL. Secrets travel only as ciphertext. */
final class CredentialSql {
  private CredentialSql() {}

  static final String METADATA_COLUMNS = """
      c.id, c.service, c.environment, c.status, c.current_version, c.expires_at, c.token_url, c.grant_type,
      c.client_id, c.scope, c.client_secret IS NOT NULL AS has_client_secret,
      c.refresh_token IS NOT NULL AS has_refresh_token, c.rotation_attempts, c.next_attempt_at, c.last_error,
      c.last_refreshed, c.last_used, c.usage_count, c.failure_count, c.response_count, c.avg_response_ms,
      c.created_at, c.updated_at""";

  static final String INSERT_CREDENTIAL = """
      INSERT INTO credentials (id, service, environment, status, current_version, expires_at, token_url, grant_type,
                               client_id, scope, client_secret, client_secret_key, refresh_token, refresh_token_key)
      VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $12, $13)
      """;

  static final String INSERT_VERSION = """
      INSERT INTO credential_versions (credential_id, version, stage, ciphertext, key_id, source, expires_at)
      VALUES ($1, $2, 'current', $3, $4, $5, $6)
      """;

  static final String INSERT_EVENT = """
      INSERT INTO credential_events (credential_id, type, version, attempt, detail) VALUES ($1, $2, $3, $4, $5)
      """;

  static final String GET = "SELECT " + METADATA_COLUMNS + " FROM credentials c WHERE c.id = $1";

  /** Filters are optional (null); {@code $4} is the end of the expiry window. */
  static final String LIST_WHERE = """
       WHERE ($1::text IS NULL OR c.service = $1)
         AND ($2::text IS NULL OR c.environment = $2)
         AND ($3::text IS NULL OR c.status = $3)
         AND ($4::timestamptz IS NULL OR (c.expires_at <= $4 AND c.status IN ('active', 'expiring')))
      """;

  static final String LIST = "SELECT " + METADATA_COLUMNS + " FROM credentials c" + LIST_WHERE
      + " ORDER BY c.created_at DESC, c.id LIMIT $5 OFFSET $6";

  static final String COUNT = "SELECT count(*) AS n FROM credentials c" + LIST_WHERE;

  /**
   * The newest unexpired value of a credential of the slot in the asked stage. A failed credential is
   * still served while its value lasts: the status tells operators that refreshing gave up, callers
   * keep a working value until it expires. Retired ones are never served.
   */
  static final String CURRENT_VALUE = """
      SELECT v.credential_id, v.version, v.ciphertext, v.key_id, v.expires_at, c.service, c.environment
        FROM credential_versions v JOIN credentials c ON c.id = v.credential_id
       WHERE c.service = $1 AND c.environment = $2 AND c.status IN ('active', 'expiring', 'failed')
         AND v.stage = $3 AND v.expires_at > now()
       ORDER BY v.created_at DESC, v.version DESC
       LIMIT 1
      """;

  /** Counted only once the value was decrypted, so a read that served nothing is no use. */
  static final String COUNT_USE = """
      UPDATE credentials SET usage_count = usage_count + 1, last_used = now() WHERE id = $1
      """;

  /** A correct running mean: the new mean moves toward the sample by 1/n. */
  static final String RECORD_USAGE = """
      UPDATE credentials
         SET response_count = response_count + 1,
             avg_response_ms = coalesce(avg_response_ms, 0) + ($2 - coalesce(avg_response_ms, 0)) / (response_count + 1),
             failure_count = failure_count + CASE WHEN $3 THEN 0 ELSE 1 END,
             last_used = now(), updated_at = now()
       WHERE id = $1
      RETURNING usage_count, failure_count, response_count, avg_response_ms
      """;

  static final String RETIRE = """
      WITH retired AS (
        UPDATE credentials SET status = 'retired', next_attempt_at = NULL, updated_at = now()
         WHERE id = $1 AND status <> 'retired' RETURNING id
      ), versions AS (
        UPDATE credential_versions SET stage = 'retired' WHERE credential_id IN (SELECT id FROM retired)
      )
      SELECT id FROM retired
      """;

  /**
   * Inside the look-ahead window: within {@code $1} seconds of expiry, or within half its lifetime
   * when that is shorter, so that a provider issuing one-hour tokens under a 24-hour window is
   * refreshed at half-life rather than on every run.
   */
  private static final String IN_WINDOW = " expires_at <= now()"
      + " + LEAST($1::double precision * interval '1 second', (expires_at - coalesce(last_refreshed, created_at)) / 2)";

  /** Marks credentials entering the look-ahead window as expiring. */
  static final String MARK_EXPIRING = """
      UPDATE credentials SET status = 'expiring', updated_at = now()
       WHERE status = 'active' AND """ + IN_WINDOW + """

      RETURNING id
      """;

  /** Refreshable credentials inside the window whose next attempt is due. */
  static final String DUE = """
      SELECT id FROM credentials
       WHERE status IN ('active', 'expiring') AND token_url IS NOT NULL AND """ + IN_WINDOW + """

         AND (next_attempt_at IS NULL OR next_attempt_at <= now())
         AND (rotating_until IS NULL OR rotating_until < now())
       ORDER BY expires_at
       LIMIT $2
      """;

  /**
   * Claims a credential for one rotation (across instances too); returns what the rotation needs.
   * The claim lapses by itself if its holder dies. A failed credential can be claimed (an operator's
   * rotation is how it recovers); the schedule never picks failed ones.
   */
  static final String CLAIM = """
      UPDATE credentials c SET rotating_until = $2
       WHERE c.id = $1 AND c.status IN ('active', 'expiring', 'failed') AND c.token_url IS NOT NULL
         AND (c.rotating_until IS NULL OR c.rotating_until < now())
      RETURNING c.id, c.service, c.environment, c.status, c.current_version, c.expires_at, c.token_url, c.grant_type,
                c.client_id, c.scope, c.client_secret, c.refresh_token, c.rotation_attempts
      """;

  static final String DEMOTE_PREVIOUS = """
      UPDATE credential_versions SET stage = 'retired' WHERE credential_id = $1 AND stage = 'previous'
      """;

  static final String DEMOTE_CURRENT = """
      UPDATE credential_versions SET stage = 'previous' WHERE credential_id = $1 AND stage = 'current'
      """;

  static final String ROTATED = """
      UPDATE credentials
         SET current_version = $2, expires_at = $3, status = 'active', rotation_attempts = 0, next_attempt_at = NULL,
             rotating_until = NULL, last_error = NULL, last_refreshed = now(), updated_at = now(),
             refresh_token = coalesce($4, refresh_token), refresh_token_key = coalesce($5, refresh_token_key)
       WHERE id = $1
      """;

  static final String ROTATION_FAILED = """
      UPDATE credentials
         SET rotation_attempts = $2, next_attempt_at = $3, status = $4, rotating_until = NULL, last_error = $5,
             updated_at = now()
       WHERE id = $1
      """;

  static final String HISTORY_VERSIONS = """
      SELECT version, stage, key_id, source, created_at, expires_at FROM credential_versions
       WHERE credential_id = $1 ORDER BY version DESC
      """;

  static final String HISTORY_EVENTS = """
      SELECT at, type, version, attempt, detail FROM credential_events
       WHERE credential_id = $1 ORDER BY id DESC LIMIT 200
      """;

  /**
   * One stored ciphertext for each key id the vault's rows use, to prove at unlock that the keyset
   * holds each of those keys with the right material. {@code version} is set for values,
   * {@code field} for refresh secrets.
   */
  static final String SEALED_SAMPLES = """
      SELECT DISTINCT ON (key_id) key_id, credential_id, version, field, ciphertext FROM (
        SELECT key_id, credential_id, version, NULL AS field, ciphertext FROM credential_versions
        UNION ALL SELECT client_secret_key, id, NULL, 'client_secret', client_secret FROM credentials
                   WHERE client_secret IS NOT NULL
        UNION ALL SELECT refresh_token_key, id, NULL, 'refresh_token', refresh_token FROM credentials
                   WHERE refresh_token IS NOT NULL
      ) sealed
      ORDER BY key_id
      """;

  /** The first unlock's canary; a later unlock (or another instance) keeps the one already stored. */
  static final String INSERT_CANARY = """
      INSERT INTO vault_canary (ciphertext, key_id) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING
      """;

  static final String CANARY = "SELECT ciphertext, key_id FROM vault_canary";

  static final String RESEAL_CANARY = """
      UPDATE vault_canary SET ciphertext = $1, key_id = $2, updated_at = now() WHERE key_id <> $2
      """;

  static final String STALE_VERSIONS = """
      SELECT credential_id, version, ciphertext FROM credential_versions WHERE key_id <> $1 LIMIT $2
      """;

  static final String REWRAP_VERSION = """
      UPDATE credential_versions SET ciphertext = $3, key_id = $4 WHERE credential_id = $1 AND version = $2
      """;

  static final String STALE_SECRETS = """
      SELECT id, client_secret, client_secret_key, refresh_token, refresh_token_key FROM credentials
       WHERE client_secret_key <> $1 OR refresh_token_key <> $1 LIMIT $2
      """;

  static final String REWRAP_SECRETS = """
      UPDATE credentials SET client_secret = $2, client_secret_key = $3, refresh_token = $4, refresh_token_key = $5
       WHERE id = $1
      """;
}
