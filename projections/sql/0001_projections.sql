-- Projection bookkeeping: one row per read model, with its checkpoint.
--
-- A runner updates a projection's tables and its `position` in ONE transaction
-- (exactly-once in effect), and it locks this row FOR UPDATE at the start of each
-- batch, so a rebuild's switch (which takes the same row lock) and a runner can
-- never interleave. The read models themselves live in one schema per projection
-- (`proj_<name>`), created by the projection's own DDL (projections/*.py), because
-- rebuild and verify create the same tables again under other schema names.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE projections (
    name             text PRIMARY KEY,
    position         bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    state            text   NOT NULL DEFAULT 'running'
                     CHECK (state IN ('running', 'rebuilding', 'failed')),
    last_error       text,
    failed_position  bigint,
    ddl_checksum     text   NOT NULL DEFAULT '',
    rebuild_position bigint,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
