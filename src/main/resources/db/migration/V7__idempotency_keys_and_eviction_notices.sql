-- Idempotent activation and eviction with notice (README, API).

-- The Idempotency-Key an activation was granted under, and the lease its grant evicted to take the
-- token (null when the token was free). A restart remembers the keys of open leases again, and a
-- retry's answer names the same eviction as the first.
ALTER TABLE usages
  ADD COLUMN idempotency_key text CHECK (idempotency_key ~ '^[!-~]{1,255}$'),
  ADD COLUMN evicted_generation bigint;

-- Each token's eviction notice, kept with the token's other counters so that start-up reads it for
-- free: the holder and generation of the token's last evicted lease, until the token is evicted
-- again or that holder is granted it again. Null when there is none.
ALTER TABLE tokens
  ADD COLUMN evicted_user_id uuid,
  ADD COLUMN evicted_generation bigint,
  ADD CONSTRAINT tokens_eviction_notice_whole CHECK ((evicted_user_id IS NULL) = (evicted_generation IS NULL));

UPDATE tokens AS t
   SET evicted_user_id = e.user_id, evicted_generation = e.generation
  FROM (SELECT DISTINCT ON (token_id) token_id, user_id, generation
          FROM usages WHERE end_reason = 'evicted'
         ORDER BY token_id, generation DESC) AS e
 WHERE t.id = e.token_id
   AND NOT EXISTS (SELECT 1 FROM usages AS later
                    WHERE later.token_id = e.token_id AND later.user_id = e.user_id
                      AND later.generation > e.generation);
