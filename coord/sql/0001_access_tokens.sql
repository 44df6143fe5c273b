-- Synchronous projection of the `access-tokens` stream, written in the same
-- transaction as each TokenIssued / TokenRevoked event. Only token hashes are kept.
CREATE TABLE access_tokens (
    token_id   uuid PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('regional', 'national', 'auditor', 'admin')),
    regions    text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    revoked_at timestamptz,
    revoked_by text
);
