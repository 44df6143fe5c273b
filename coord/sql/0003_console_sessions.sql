-- Web console sessions (coord/console/sessions.py). A session is bound to the token it
-- was opened with: every page joins access_tokens, so revoking the token ends the session
-- at once. Only hashes of session ids are kept; rows are deleted on sign-out and expiry.
CREATE TABLE console_sessions (
    session_hash text PRIMARY KEY,
    token_id     uuid NOT NULL REFERENCES access_tokens (token_id),
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
