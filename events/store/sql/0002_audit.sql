-- Verifiable history (issue 5): the Merkle tree over the global log and its signed heads.
--
-- merkle_nodes holds only *complete* subtrees (events/merkle.py): node (level k, idx i)
-- is the RFC 9162 hash of leaves [i * 2^k, (i + 1) * 2^k); level 0 holds the leaf hashes
-- (leaf idx = log position - 1). A complete node never changes, so the table is
-- insert-only like the log, and any proof is a handful of primary-key lookups.
-- Written only by the tree builder (events/audit_log.py), one leader per database.
CREATE TABLE merkle_nodes (
    level smallint NOT NULL,
    idx   bigint   NOT NULL,
    hash  bytea    NOT NULL,
    CONSTRAINT merkle_nodes_pkey PRIMARY KEY (level, idx),
    CONSTRAINT merkle_nodes_level_range CHECK (level BETWEEN 0 AND 63),
    CONSTRAINT merkle_nodes_idx_nonneg CHECK (idx >= 0),
    CONSTRAINT merkle_nodes_hash_size CHECK (octet_length(hash) = 32)
);

-- Every signed checkpoint ever published (C2SP tlog-checkpoint as a signed note).
-- Kept forever: an auditor may ask for any earlier head to check consistency.
CREATE TABLE audit_checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    origin     text        NOT NULL,
    tree_size  bigint      NOT NULL,
    root_hash  bytea       NOT NULL,
    note       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (id),
    CONSTRAINT audit_checkpoints_origin_size_key UNIQUE (origin, tree_size),
    CONSTRAINT audit_checkpoints_size_nonneg CHECK (tree_size >= 0)
);

-- Insert-only, like the log (coord_forbid_change comes from 0001_event_store.sql).
CREATE TRIGGER merkle_nodes_immutable BEFORE UPDATE OR DELETE ON merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();
CREATE TRIGGER merkle_nodes_no_truncate BEFORE TRUNCATE ON merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION coord_forbid_change();
CREATE TRIGGER audit_checkpoints_immutable BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION coord_forbid_change();
