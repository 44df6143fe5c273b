-- Token expiry (issue 15). `expires_at` comes from the TokenIssued event, so it is part of
-- the replicated access_tokens row: every node refuses an expired token by itself.
ALTER TABLE access_tokens ADD COLUMN expires_at timestamptz;

-- When each token was last used on THIS node. Kept apart from access_tokens on purpose:
-- access_tokens is published hub -> regions, and a use is local state (a regional node's
-- callers are not the hub's). Not in any publication. Written in batches, at most once a
-- minute per token per process (coord/auth.py UsageRecorder), never per request.
CREATE TABLE token_usage (
    token_id     uuid PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);
