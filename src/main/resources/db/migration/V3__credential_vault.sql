-- The credential vault: third-party API credentials, encrypted at rest, rotated before they expire.
-- A credential is a slot (service, environment); its values are versions. Only ciphertext is
-- stored: AES-256-GCM under the master keyset, with the key id beside it and the credential id and
-- version as associated data (a ciphertext cannot be moved to another row).
CREATE TABLE credentials (
  id                 uuid        PRIMARY KEY,
  service            text        NOT NULL CHECK (service ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  environment        text        NOT NULL CHECK (environment IN ('development', 'staging', 'production', 'dr')),
  status             text        NOT NULL CHECK (status IN ('active', 'expiring', 'failed', 'retired')),
  current_version    integer     NOT NULL CHECK (current_version > 0),
  expires_at         timestamptz NOT NULL,
  -- How to refresh it (all null: not refreshable, it only expires).
  token_url          text,
  grant_type         text        CHECK (grant_type IN ('refresh_token', 'client_credentials')),
  client_id          text,
  scope              text,
  client_secret      bytea,
  client_secret_key  bigint,
  refresh_token      bytea,
  refresh_token_key  bigint,
  -- Rotation state.
  rotation_attempts  integer     NOT NULL DEFAULT 0,
  next_attempt_at    timestamptz,
  rotating_until     timestamptz,
  last_error         text,
  last_refreshed     timestamptz,
  -- Use by callers.
  last_used          timestamptz,
  usage_count        bigint      NOT NULL DEFAULT 0,
  failure_count      bigint      NOT NULL DEFAULT 0,
  response_count     bigint      NOT NULL DEFAULT 0,
  avg_response_ms    double precision,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK ((token_url IS NULL) = (grant_type IS NULL))
);
CREATE INDEX credentials_by_slot ON credentials (service, environment, status);
CREATE INDEX credentials_due ON credentials (expires_at) WHERE status IN ('active', 'expiring');

-- Every value a credential has had. 'current' is served; 'previous' stays readable until it
-- expires (callers holding it are not disrupted by a rotation); 'retired' is kept as history.
CREATE TABLE credential_versions (
  credential_id uuid        NOT NULL REFERENCES credentials (id),
  version       integer     NOT NULL CHECK (version > 0),
  stage         text        NOT NULL CHECK (stage IN ('current', 'previous', 'retired')),
  ciphertext    bytea       NOT NULL,
  key_id        bigint      NOT NULL,
  source        text        NOT NULL CHECK (source IN ('created', 'rotated')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (credential_id, version)
);
CREATE UNIQUE INDEX credential_versions_one_current ON credential_versions (credential_id) WHERE stage = 'current';
CREATE INDEX credential_versions_by_key ON credential_versions (key_id);

-- What happened to each credential: creation, rotations and their failures, retirement.
CREATE TABLE credential_events (
  id            bigserial   PRIMARY KEY,
  credential_id uuid        NOT NULL REFERENCES credentials (id),
  at            timestamptz NOT NULL DEFAULT now(),
  type          text        NOT NULL CHECK (type IN ('created', 'rotated', 'rotation_failed', 'failed', 'retired', 'reencrypted')),
  version       integer,
  attempt       integer,
  detail        text
);
CREATE INDEX credential_events_by_credential ON credential_events (credential_id, id DESC);
