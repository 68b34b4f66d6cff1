-- The pooled tokens, in creation order; activated_at, released_at and usage_count mirror the pool.
CREATE TABLE tokens (
  id           uuid        PRIMARY KEY,
  seq          integer     NOT NULL UNIQUE CHECK (seq > 0),
  created_at   timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz,
  released_at  timestamptz,
  usage_count  bigint      NOT NULL DEFAULT 0 CHECK (usage_count >= 0)
);

-- Every lease ever granted, kept forever. The generation is the pool-wide fencing number of the
-- grant, unique and increasing, so it doubles as the key that makes batch writes idempotent.
CREATE TABLE usages (
  generation bigint      PRIMARY KEY CHECK (generation > 0),
  token_id   uuid        NOT NULL REFERENCES tokens (id),
  user_id    uuid        NOT NULL,
  started_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  ended_at   timestamptz,
  end_reason text        CHECK (end_reason IN ('released', 'expired', 'evicted', 'cleared')),
  CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);

-- The guard of last resort: at most one open usage per token.
CREATE UNIQUE INDEX usages_one_open_per_token ON usages (token_id) WHERE ended_at IS NULL;
CREATE INDEX usages_by_token ON usages (token_id, started_at DESC, generation DESC);
CREATE INDEX usages_by_user ON usages (user_id, generation DESC);

-- One row: whether a service instance is running on this database, in which acknowledgment mode,
-- and when it last proved alive. After an unclean stop in memory mode, acknowledged grants may
-- have been lost, so activations wait until any such grant must have expired.
CREATE TABLE service_state (
  id             smallint    PRIMARY KEY CHECK (id = 1),
  running        boolean     NOT NULL,
  ack_mode       text        NOT NULL CHECK (ack_mode IN ('durable', 'memory')),
  lease_ttl_ms   bigint      NOT NULL CHECK (lease_ttl_ms > 0),
  heartbeat_ms   bigint      NOT NULL CHECK (heartbeat_ms > 0),
  heartbeat_at   timestamptz NOT NULL
);
