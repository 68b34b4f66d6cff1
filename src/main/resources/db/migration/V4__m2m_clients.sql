-- Machine-to-machine clients (OAuth 2.0 client credentials) and the opaque access tokens issued to
-- them. Secrets and tokens are stored only as SHA-256 hashes of 256-bit random values. A deleted
-- client is kept (deleted_at set) so that its tokens stay listed and audited; its tokens are revoked.
CREATE TABLE m2m_clients (
  client_id          text        PRIMARY KEY,
  client_name        text        NOT NULL,
  tenant_id          text        NOT NULL,
  scopes             text[]      NOT NULL,
  secret_hash        bytea       NOT NULL,
  bootstrap          boolean     NOT NULL DEFAULT false,
  created_at         timestamptz NOT NULL,
  secret_rotated_at  timestamptz NOT NULL,
  deleted_at         timestamptz
);

CREATE INDEX m2m_clients_created ON m2m_clients (created_at DESC, client_id) WHERE deleted_at IS NULL;

CREATE TABLE m2m_tokens (
  id          uuid        PRIMARY KEY,
  token_hash  bytea       NOT NULL UNIQUE,
  client_id   text        NOT NULL REFERENCES m2m_clients (client_id),
  tenant_id   text        NOT NULL,
  scopes      text[]      NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);

CREATE INDEX m2m_tokens_listing ON m2m_tokens (created_at DESC, id DESC);
CREATE INDEX m2m_tokens_tenant ON m2m_tokens (tenant_id, created_at DESC, id DESC);
CREATE INDEX m2m_tokens_client ON m2m_tokens (client_id, created_at DESC, id DESC);
-- Start-up loads what can still be used.
CREATE INDEX m2m_tokens_live ON m2m_tokens (expires_at) WHERE revoked_at IS NULL;

-- Audit trail of the M2M capability (listings, client changes, revocations).
CREATE TABLE m2m_audit (
  id               bigserial   PRIMARY KEY,
  event            text        NOT NULL,
  severity         text        NOT NULL,
  occurred_at      timestamptz NOT NULL,
  actor_client_id  text,
  tenant_id        text,
  details          jsonb       NOT NULL
);

CREATE INDEX m2m_audit_time ON m2m_audit (occurred_at DESC, id DESC);
