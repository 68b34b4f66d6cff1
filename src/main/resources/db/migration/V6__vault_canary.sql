-- A known value sealed under the vault keyset at the vault's first unlock and opened at every unlock
-- after it. Key ids alone cannot tell two keysets apart (a keyset can be rebuilt with the same ids and
-- other key material); this row can, even before any credential is stored. One row at most.
CREATE TABLE vault_canary (
  id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
  ciphertext bytea       NOT NULL,
  key_id     bigint      NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
