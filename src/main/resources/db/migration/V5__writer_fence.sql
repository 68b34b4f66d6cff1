-- The one writer of the pool and what the database proves about it (see README, "Durability").
--   epoch               raised by each instance when it takes over; every batch checks it, so a
--                       batch that a stalled server runs after a takeover writes nothing
--   last_batch          sequence number of the last batch written; a batch applies only on top of
--                       its predecessor, so a late duplicate of an old attempt writes nothing
--   marked_at           the server's clock at the last write (batch or keep-alive) of the writer;
--                       memory mode acknowledges only within max_lag_ms of a confirmed write, so
--                       after a crash every lost acknowledgment ended by marked_at + max_lag + ttl
--   generation_reserved no generation above it has been handed out; raised ahead of use
--   blocked_until       activations wait until then (kept across restarts until it has passed)
ALTER TABLE service_state
  ADD COLUMN epoch bigint NOT NULL DEFAULT 0,
  ADD COLUMN last_batch bigint NOT NULL DEFAULT 0,
  ADD COLUMN marked_at timestamptz,
  ADD COLUMN max_lag_ms bigint NOT NULL DEFAULT 1000 CHECK (max_lag_ms >= 0),
  ADD COLUMN generation_reserved bigint NOT NULL DEFAULT 0,
  ADD COLUMN blocked_until timestamptz;

-- The heartbeat of earlier versions proved liveness up to one heartbeat interval later.
UPDATE service_state SET marked_at = heartbeat_at + heartbeat_ms * interval '1 millisecond';
UPDATE service_state SET generation_reserved = (SELECT coalesce(max(generation), 0) FROM usages);

ALTER TABLE service_state
  ALTER COLUMN marked_at SET NOT NULL,
  DROP COLUMN heartbeat_ms,
  DROP COLUMN heartbeat_at;
