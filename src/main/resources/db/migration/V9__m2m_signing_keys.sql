-- Keys that sign JWT access tokens (TOKENS_M2M_TOKEN_FORMAT=jwt, RFC 9068). Each signs from
-- activates_at to retires_at; a successor is made (and published) ahead of its activation, and a
-- retired key stays published for one token lifetime, so resource servers that verify offline
-- always find the key of a live token. private_jwk is the key as JWK JSON, sealed with the vault's
-- keyset when one is configured (sealed_with = the Tink key id), else stored as is.
CREATE TABLE m2m_signing_keys (
  kid           text        PRIMARY KEY,
  algorithm     text        NOT NULL,
  public_jwk    text        NOT NULL,
  private_jwk   bytea       NOT NULL,
  sealed_with   bigint,
  created_at    timestamptz NOT NULL,
  activates_at  timestamptz NOT NULL,
  retires_at    timestamptz NOT NULL,
  CHECK (retires_at > activates_at)
);

CREATE INDEX m2m_signing_keys_activation ON m2m_signing_keys (activates_at DESC);
