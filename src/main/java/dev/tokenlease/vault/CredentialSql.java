package dev.tokenlease.vault;

/** The vault's SQL. Secrets travel only as ciphertext. */
final class CredentialSql {
  private CredentialSql() {}

  /** A credential the vault still serves and renews: its stored status is the lifecycle, not the clock. */
  private static final String LIVE = "c.status IN ('active', 'expiring')";

  /**
   * When a credential enters the refresh window: {@code window} seconds (TOKENS_VAULT_ROTATION_WINDOW)
   * before its value expires, or half-way through the value's lifetime when that is later, so that a
   * provider issuing one-hour tokens under a 24-hour window is refreshed at half-life rather than on
   * every run.
   */
  private static String windowStart(String window) {
    return "(c.expires_at - LEAST(" + window + "::double precision * interval '1 second',"
        + " (c.expires_at - coalesce(c.last_refreshed, c.created_at)) / 2))";
  }

  /**
   * When the schedule takes a live, refreshable credential: the retry time a failed attempt set
   * (after its backoff, inside the window or not), otherwise the time it enters the window. The
   * schedule's {@link #DUE} and the {@code next_attempt_at} callers read are this one expression.
   */
  private static String scheduledAt(String window) {
    return "coalesce(c.next_attempt_at, " + windowStart(window) + ")";
  }

  /**
   * The status as of now, not as of the last run of the schedule: a live credential is
   * {@code expiring} once it is inside the refresh window (or its value has expired), {@code active}
   * before; {@code failed} and {@code retired} are as stored.
   */
  private static String status(String window) {
    return "CASE WHEN " + LIVE + " THEN CASE WHEN " + windowStart(window) + " <= now() THEN 'expiring' ELSE 'active' END"
        + " ELSE c.status END";
  }

  /**
   * The next time the schedule will try a rotation, never in the past (a due one reads as now: the
   * next run takes it); null when the schedule will not try (not refreshable, failed, retired).
   */
  private static String nextAttempt(String window) {
    return "CASE WHEN " + LIVE + " AND c.token_url IS NOT NULL THEN greatest(now(), " + scheduledAt(window) + ") END";
  }

  /** What callers see of a credential; {@code window} is the parameter holding the window in seconds. */
  private static String metadataColumns(String window) {
    return """
        c.id, c.service, c.environment, %s AS status, c.current_version, c.expires_at, c.token_url, c.grant_type,
        c.client_id, c.scope, c.client_secret IS NOT NULL AS has_client_secret,
        c.refresh_token IS NOT NULL AS has_refresh_token, c.rotation_attempts, %s AS next_attempt_at, c.last_error,
        c.last_refreshed, c.last_used, c.usage_count, c.failure_count, c.response_count, c.avg_response_ms,
        c.created_at, c.updated_at""".formatted(status(window), nextAttempt(window));
  }

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

  /** {@code $2} is the refresh window in seconds. */
  static final String GET = "SELECT " + metadataColumns("$2") + " FROM credentials c WHERE c.id = $1";

  /**
   * Filters are optional (null); {@code $3} is compared with the status as of now, {@code $4} is the
   * end of the {@code expiring_within} horizon, {@code $5} the refresh window in seconds. The horizon
   * alone keeps active and expiring credentials whose value expires by then; with
   * {@code status=expiring} it takes the place of the refresh window as the horizon of "expiring"
   * (the same list); with another status it narrows that status to values expiring by then.
   */
  static final String LIST_WHERE = """
       WHERE ($1::text IS NULL OR c.service = $1)
         AND ($2::text IS NULL OR c.environment = $2)
         AND ($3::text IS NULL OR %1$s = $3 OR ($3 = 'expiring' AND $4::timestamptz IS NOT NULL AND %2$s))
         AND ($4::timestamptz IS NULL OR (c.expires_at <= $4 AND ($3::text IS NOT NULL OR %2$s)))
      """.formatted(status("$5"), LIVE);

  static final String LIST = "SELECT " + metadataColumns("$5") + " FROM credentials c" + LIST_WHERE
      + " ORDER BY c.created_at DESC, c.id LIMIT $6 OFFSET $7";

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
   * Live refreshable credentials whose next attempt is due ({@code $1} is the refresh window in
   * seconds): the same time {@code next_attempt_at} shows, so what callers read is what the schedule
   * does.
   */
  static final String DUE = """
      SELECT c.id FROM credentials c
       WHERE %s AND c.token_url IS NOT NULL AND %s <= now()
         AND (c.rotating_until IS NULL OR c.rotating_until < now())
       ORDER BY c.expires_at
       LIMIT $2
      """.formatted(LIVE, scheduledAt("$1"));

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
