package dev.tokenlease.persistence;

/** Every SQL statement the service runs at run time. Bulk writes pass arrays through unnest. */
final class Sql {
  private Sql() {}

  /** Held on a dedicated connection for the service's lifetime: one instance per database. */
  static final long INSTANCE_LOCK_KEY = 0x746f6b656e73L;

  static final String TRY_INSTANCE_LOCK = "SELECT pg_try_advisory_lock($1) AS locked";

  static final String COUNT_TOKENS = "SELECT count(*) AS n, coalesce(max(seq), 0) AS max_seq FROM tokens";

  static final String CREATE_TOKENS = """
      INSERT INTO tokens (id, seq)
      SELECT gen_random_uuid(), s FROM generate_series($1::int, $2::int) AS s
      """;

  static final String READ_SERVICE_STATE = """
      SELECT running, ack_mode,
             heartbeat_at + (heartbeat_ms + lease_ttl_ms) * interval '1 millisecond' AS lost_grants_end
        FROM service_state WHERE id = 1
      """;

  static final String START_RUN = """
      INSERT INTO service_state (id, running, ack_mode, lease_ttl_ms, heartbeat_ms, heartbeat_at)
      VALUES (1, true, $1, $2, $3, now())
      ON CONFLICT (id) DO UPDATE
         SET running = true, ack_mode = EXCLUDED.ack_mode, lease_ttl_ms = EXCLUDED.lease_ttl_ms,
             heartbeat_ms = EXCLUDED.heartbeat_ms, heartbeat_at = now()
      """;

  static final String HEARTBEAT = "UPDATE service_state SET heartbeat_at = now() WHERE id = 1";

  static final String STOP_RUN = "UPDATE service_state SET running = false, heartbeat_at = now() WHERE id = 1";

  static final String LOAD_TOKENS = """
      SELECT id, seq, activated_at, released_at, usage_count FROM tokens ORDER BY seq
      """;

  static final String LOAD_OPEN_LEASES = """
      SELECT generation, token_id, user_id, started_at, expires_at FROM usages WHERE ended_at IS NULL
      """;

  static final String LAST_GENERATION = "SELECT coalesce(max(generation), 0) AS g FROM usages";

  /**
   * One batch in one statement (one round trip, one commit). Usages from earlier batches are closed
   * or re-timed, usages granted in this batch are inserted in their final state, and the tokens'
   * counters are set. The one-open-usage-per-token guard is checked at commit, so the order in
   * which the parts run does not matter. Times travel as epoch milliseconds (null for "not set"),
   * which encode far cheaper than timestamp arrays.
   */
  static final String WRITE_BATCH = """
      WITH updated AS (
        UPDATE usages AS u
           SET expires_at = tokens_ms_to_time(c.expires_ms), ended_at = tokens_ms_to_time(c.ended_ms), end_reason = c.end_reason
          FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[])
               AS c (generation, expires_ms, ended_ms, end_reason)
         WHERE u.generation = c.generation
      ), inserted AS (
        INSERT INTO usages (generation, token_id, user_id, started_at, expires_at, ended_at, end_reason)
        SELECT c.generation, c.token_id, c.user_id, tokens_ms_to_time(c.started_ms), tokens_ms_to_time(c.expires_ms), tokens_ms_to_time(c.ended_ms),
               c.end_reason
          FROM unnest($5::bigint[], $6::uuid[], $7::uuid[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[])
               AS c (generation, token_id, user_id, started_ms, expires_ms, ended_ms, end_reason)
        ON CONFLICT (generation) DO UPDATE
           SET expires_at = EXCLUDED.expires_at, ended_at = EXCLUDED.ended_at, end_reason = EXCLUDED.end_reason
      ), counted AS (
        UPDATE tokens AS t
           SET activated_at = tokens_ms_to_time(c.activated_ms), released_at = tokens_ms_to_time(c.released_ms), usage_count = c.usage_count
          FROM unnest($12::uuid[], $13::bigint[], $14::bigint[], $15::bigint[])
               AS c (id, activated_ms, released_ms, usage_count)
         WHERE t.id = c.id
      )
      SELECT 1
      """;

  static final String TOKEN_USAGES = """
      SELECT generation, user_id, started_at, ended_at, end_reason
        FROM usages WHERE token_id = $1
       ORDER BY started_at DESC, generation DESC
      """;

  static final String USER_USAGES = """
      SELECT generation, token_id, started_at, ended_at, end_reason
        FROM usages
       WHERE user_id = $1
         AND ($2::timestamptz IS NULL OR started_at >= $2)
         AND ($3::timestamptz IS NULL OR started_at < $3)
         AND ($4::bigint IS NULL OR generation < $4)
       ORDER BY generation DESC
       LIMIT $5
      """;

  static final String PING = "SELECT 1";
}
