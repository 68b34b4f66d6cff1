-- Idempotent activation and eviction with notice (README, API).

-- The Idempotency-Key an activation was granted under, and the lease its grant evicted to take the
-- token (null when the token was free). A restart remembers the keys of open leases again, and a
-- retry's answer names the same eviction as the first.
ALTER TABLE usages
  ADD COLUMN idempotency_key text,
  ADD COLUMN evicted_generation bigint;
-- NOT VALID: every existing row is NULL, so there is nothing to check, and a validating scan of a
-- history kept forever would hold the table's lock for as long as it takes. New rows are checked.
ALTER TABLE usages
  ADD CONSTRAINT usages_idempotency_key_format CHECK (idempotency_key ~ '^[!-~]{1,255}$') NOT VALID;

-- Start-up reads the keys of recently ended keyed leases (one TTL back) through this, not the history.
CREATE INDEX usages_recent_keys ON usages (started_at) WHERE idempotency_key IS NOT NULL;

-- Each token's eviction notice, kept with the token's other counters so that start-up reads it for
-- free: the holder and generation of the token's last evicted lease, until the token is evicted
-- again or that holder is granted it again. Null when there is none.
ALTER TABLE tokens
  ADD COLUMN evicted_user_id uuid,
  ADD COLUMN evicted_generation bigint,
  ADD CONSTRAINT tokens_eviction_notice_whole CHECK ((evicted_user_id IS NULL) = (evicted_generation IS NULL));

-- One index walk per token (usages_by_token, newest first, stopping at the first eviction), not a
-- sort of the whole history.
UPDATE tokens AS t
   SET evicted_user_id = e.user_id, evicted_generation = e.generation
  FROM tokens AS k
  CROSS JOIN LATERAL (SELECT u.user_id, u.generation
                        FROM usages AS u
                       WHERE u.token_id = k.id AND u.end_reason = 'evicted'
                       ORDER BY u.started_at DESC, u.generation DESC
                       LIMIT 1) AS e
 WHERE t.id = k.id
   AND NOT EXISTS (SELECT 1 FROM usages AS later
                    WHERE later.token_id = k.id AND later.user_id = e.user_id
                      AND later.generation > e.generation);
