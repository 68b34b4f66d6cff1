package dev.tokenlease.lease.persistence;

/** Every SQL statement the service runs at run time. Bulk writes pass arrays through unnest. */
final class Sql {
  private Sql() {}

  /** Held on a dedicated connection for the service's lifetime: one instance per database. */
  static final long INSTANCE_LOCK_KEY = 0x746f6b656e73L;

  static final String TRY_INSTANCE_LOCK = "SELECT pg_try_advisory_lock($1) AS locked";

  /** The pool the seed's tokens form, created by the migration that brought named pools. */
  static final int DEFAULT_POOL_ID = 1;

  static final String COUNT_TOKENS =
      "SELECT count(*) AS n, coalesce(max(seq), 0) AS max_seq FROM tokens WHERE pool_id = $1";

  /** Fresh tokens at positions $1 to $2 of pool $3, with random ids (PostgreSQL's own generator). */
  static final String CREATE_TOKENS = """
      INSERT INTO tokens (id, seq, pool_id)
      SELECT gen_random_uuid(), s, $3 FROM generate_series($1::int, $2::int) AS s
      """;

  /** As {@link #CREATE_TOKENS}, answering the tokens made. */
  static final String ADD_TOKENS = CREATE_TOKENS + " RETURNING id, seq";

  /** A pool's settings; $1 is its id. */
  static final String UPDATE_POOL = """
      UPDATE pools SET lease_ttl_ms = $2, overflow = $3, max_wait_ms = $4, max_hold_ms = $5, max_leases_per_user = $6
       WHERE id = $1 AND deleted_at IS NULL
      """;

  static final String INSERT_POOL = """
      INSERT INTO pools (name, lease_ttl_ms, overflow, max_wait_ms, max_hold_ms, max_leases_per_user)
      VALUES ($1, $2, $3, $4, $5, $6)
      RETURNING id, created_at
      """;

  static final String DELETE_POOL = "UPDATE pools SET deleted_at = clock_timestamp() WHERE id = $1 AND deleted_at IS NULL";

  /**
   * The last statement of a change of the pools: it applies only while $1 is still the writer's
   * epoch (no row otherwise, and the transaction is rolled back), as a batch's fence does. A pool
   * with a longer lease TTL ($2) than any so far raises the TTL a crash in memory mode waits for.
   */
  static final String FENCE_POOLS = """
      UPDATE service_state SET marked_at = greatest(marked_at, clock_timestamp()), lease_ttl_ms = greatest(lease_ttl_ms, $2)
       WHERE id = 1 AND epoch = $1
      RETURNING epoch
      """;

  static final String FIND_POOL = """
      SELECT id, name, lease_ttl_ms, overflow, max_wait_ms, max_hold_ms, max_leases_per_user, created_at
        FROM pools WHERE name = $1 AND deleted_at IS NULL
      """;

  static final String POOL_TOKENS = "SELECT id, seq FROM tokens WHERE pool_id = $1 ORDER BY seq";

  static final String LOAD_POOLS = """
      SELECT id, name, lease_ttl_ms, overflow, max_wait_ms, max_hold_ms, max_leases_per_user, created_at
        FROM pools WHERE deleted_at IS NULL ORDER BY id
      """;

  /** What the previous run left: whether it stopped cleanly, and what its writes prove. */
  static final String READ_WRITER = """
      SELECT running, ack_mode, generation_reserved, blocked_until, clock_timestamp() AS now,
             marked_at + (max_lag_ms + lease_ttl_ms) * interval '1 millisecond' AS lost_grants_end,
             owner_node, (extract(epoch FROM clock_timestamp() - marked_at) * 1000)::bigint AS silent_ms
        FROM service_state WHERE id = 1
         FOR UPDATE
      """;

  /** Who owns the pools now, as every node of a cluster watches it, and the pools' names. */
  static final String READ_OWNER = """
      SELECT owner_node, epoch, running, max_lag_ms,
             (extract(epoch FROM clock_timestamp() - marked_at) * 1000)::bigint AS silent_ms,
             ARRAY(SELECT name FROM pools WHERE deleted_at IS NULL ORDER BY id) AS pools,
             (SELECT coalesce(max(max_wait_ms), 0) FROM pools WHERE deleted_at IS NULL AND overflow = 'wait')
               AS longest_wait_ms
        FROM service_state WHERE id = 1
      """;

  static final String MAX_GENERATION = "SELECT coalesce(max(generation), 0) AS g FROM usages";

  /**
   * Takes over as the writer: a new epoch fences out every batch of an earlier process that a
   * stalled server might still run. The lease TTL it records (what a crash in memory mode makes
   * start-up wait for) is the longest of every pool's.
   */
  static final String CLAIM_WRITER = """
      INSERT INTO service_state (id, running, ack_mode, lease_ttl_ms, max_lag_ms, epoch, last_batch, marked_at,
                                 generation_reserved, blocked_until, owner_node)
      VALUES (1, true, $1, greatest($2, (SELECT max(lease_ttl_ms) FROM pools WHERE deleted_at IS NULL)), $3, 1, 0,
              clock_timestamp(), $4, $5, $6)
      ON CONFLICT (id) DO UPDATE
         SET running = true, ack_mode = EXCLUDED.ack_mode, lease_ttl_ms = EXCLUDED.lease_ttl_ms,
             max_lag_ms = EXCLUDED.max_lag_ms, epoch = service_state.epoch + 1, marked_at = clock_timestamp(),
             generation_reserved = greatest(service_state.generation_reserved, EXCLUDED.generation_reserved),
             blocked_until = EXCLUDED.blocked_until, owner_node = $6
      RETURNING epoch, last_batch, generation_reserved
      """;

  static final String WRITER_STATE = "SELECT epoch, last_batch FROM service_state WHERE id = 1";

  /** Keeps a new owner's claim live while it loads the pools (it writes no batch before it has them). */
  static final String MARK_ALIVE = "UPDATE service_state SET marked_at = clock_timestamp() WHERE id = 1 AND epoch = $1";

  /** A clean stop: everything is written, so no generation above the last one handed out is in use. */
  static final String STOP_RUN = """
      UPDATE service_state SET running = false, generation_reserved = $2, marked_at = clock_timestamp(),
             owner_node = NULL
       WHERE id = 1 AND epoch = $1
      """;

  /** The tokens of every pool that is not deleted, pool by pool, in creation order. */
  static final String LOAD_TOKENS = """
      SELECT pool_id, id, seq, activated_at, released_at, usage_count, evicted_user_id, evicted_generation,
             notice_revoked
        FROM tokens
       WHERE pool_id IN (SELECT id FROM pools WHERE deleted_at IS NULL)
       ORDER BY pool_id, seq
      """;

  /**
   * The open leases, and for those granted under an Idempotency-Key the lease their grant evicted
   * (a retry's answer names it). Lateral, so that each is one primary-key probe, never a scan.
   */
  static final String LOAD_OPEN_LEASES = """
      SELECT u.generation, u.token_id, u.user_id, u.started_at, u.expires_at, u.idempotency_key,
             u.evicted_generation, e.user_id AS evicted_user_id, e.started_at AS evicted_started_at,
             e.ended_at AS evicted_ended_at
        FROM usages AS u
        LEFT JOIN LATERAL (
          SELECT user_id, started_at, ended_at FROM usages
           WHERE u.idempotency_key IS NOT NULL AND generation = u.evicted_generation) AS e ON true
       WHERE u.ended_at IS NULL
      """;

  /**
   * Keys of leases granted less than {@code $1} milliseconds (one lease TTL) ago that have ended:
   * a retry under one must still be told its lease ended. Served by a partial index on the few
   * keyed usages, never a scan of the history.
   */
  static final String LOAD_RECENT_ENDED_KEYS = """
      SELECT generation, token_id, user_id, started_at, idempotency_key
        FROM usages
       WHERE idempotency_key IS NOT NULL AND ended_at IS NOT NULL
         AND started_at > now() - $1 * interval '1 millisecond'
      """;

  /**
   * One batch in one statement (one round trip, one commit). The fence applies it only on top of
   * its predecessor ($17, the last batch the database must hold) and only for the current writer's
   * epoch ($20); otherwise every part joins an empty fence and nothing is written. It also stamps
   * the server's clock as proof of life, records the batch's number ($18) and raises the generation
   * reservation ($19).
   *
   * <p>Usages ($1 to $9) are upserted: new ones inserted in their final state (with their
   * Idempotency-Key and the lease they evicted), earlier ones closed or re-timed. An upsert rather
   * than an update joined to {@code usages} keeps the statement's plan independent of the history's
   * size, so PostgreSQL's cached generic plan serves every batch (a join's generic plan made while
   * the table was small scanned it whole once it was large, and planning each batch anew cost
   * about 0.9 ms of server time). The tokens' counters and notices ($10 to $16) are updated by key.
   * The one-open-usage-per-token guard is checked at commit, so the order in which the parts run
   * does not matter. Times travel as epoch milliseconds (null for "not set"), which encode far
   * cheaper than timestamp arrays.
   *
   * <p>A batch whose predecessor has not committed when its statement starts does not see the
   * predecessor's number, so its fence matches nothing (it does not wait) and it writes nothing;
   * the batcher sends it again. Batches in flight therefore share one connection, on which the
   * server runs each after the one before.
   */
  static final String WRITE_BATCH = """
      WITH fence AS (
        UPDATE service_state
           SET last_batch = $18, marked_at = greatest(marked_at, clock_timestamp()),
               generation_reserved = greatest(generation_reserved, $19)
         WHERE id = 1 AND epoch = $20 AND last_batch = $17
        RETURNING 1 AS ok
      ), usage_rows AS (
        INSERT INTO usages (generation, token_id, user_id, started_at, expires_at, ended_at, end_reason,
                            idempotency_key, evicted_generation)
        SELECT c.generation, c.token_id, c.user_id, tokens_ms_to_time(c.started_ms), tokens_ms_to_time(c.expires_ms),
               tokens_ms_to_time(c.ended_ms), c.end_reason, c.idempotency_key, c.evicted_generation
          FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[],
                      $8::text[], $9::bigint[])
               AS c (generation, token_id, user_id, started_ms, expires_ms, ended_ms, end_reason, idempotency_key,
                     evicted_generation), fence
        ON CONFLICT (generation) DO UPDATE
           SET expires_at = EXCLUDED.expires_at, ended_at = EXCLUDED.ended_at, end_reason = EXCLUDED.end_reason
      ), counted AS (
        UPDATE tokens AS t
           SET activated_at = tokens_ms_to_time(c.activated_ms), released_at = tokens_ms_to_time(c.released_ms), usage_count = c.usage_count,
               evicted_user_id = c.evicted_user_id, evicted_generation = c.evicted_generation,
               notice_revoked = c.notice_revoked
          FROM unnest($10::uuid[], $11::bigint[], $12::bigint[], $13::bigint[], $14::uuid[], $15::bigint[],
                      $16::boolean[])
               AS c (id, activated_ms, released_ms, usage_count, evicted_user_id, evicted_generation, notice_revoked),
               fence
         WHERE t.id = c.id
      )
      SELECT count(*) AS applied FROM fence
      """;

  static final String TOKEN_USAGES = """
      SELECT generation, user_id, started_at, ended_at, end_reason
        FROM usages WHERE token_id = $1
       ORDER BY started_at DESC, generation DESC
      """;

  /**
   * A page of a user's usages over all pools, newest first, each naming its token's pool; $6 keeps
   * only the pools of one name. The user's index gives the order; each row's pool is two key probes.
   */
  static final String USER_USAGES = """
      SELECT u.generation, u.token_id, u.started_at, u.ended_at, u.end_reason, p.name AS pool
        FROM usages AS u
        JOIN tokens AS t ON t.id = u.token_id
        JOIN pools AS p ON p.id = t.pool_id
       WHERE u.user_id = $1
         AND ($2::timestamptz IS NULL OR u.started_at >= $2)
         AND ($3::timestamptz IS NULL OR u.started_at < $3)
         AND ($4::bigint IS NULL OR u.generation < $4)
         AND ($6::text IS NULL OR p.name = $6)
       ORDER BY u.generation DESC
       LIMIT $5
      """;
}
