-- One open usage per token, checked at commit instead of per row, so that a batch can close a
-- token's old usage and insert its new one in a single statement (one round trip per batch).
DROP INDEX usages_one_open_per_token;
ALTER TABLE usages
  ADD CONSTRAINT usages_one_open_per_token
  EXCLUDE USING btree (token_id WITH =) WHERE (ended_at IS NULL)
  DEFERRABLE INITIALLY DEFERRED;

-- Batch writes send times as epoch milliseconds; this turns one into a timestamptz, exactly.
CREATE FUNCTION tokens_ms_to_time(ms bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN timestamptz 'epoch' + ms * interval '1 millisecond';

-- Usages name only tokens of the pool, which never deletes one; the foreign-key check cost about a
-- third of every batch insert.
ALTER TABLE usages DROP CONSTRAINT usages_token_id_fkey;
