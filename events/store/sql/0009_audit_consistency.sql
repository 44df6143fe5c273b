-- Consistency proofs of the hub's log, for the regions that witness it (issue 17).
--
-- A region cannot rebuild the hub's tree (it is the union of every node's events; a
-- region receives only national events), so it witnesses the *sequence* of the hub's
-- checkpoints instead: it cosigns a hub checkpoint only with an RFC 9162 consistency
-- proof from the last hub checkpoint it cosigned (coord/cosigner.py, HubWitness). The
-- hub's cosigner computes the proofs from its stored tree and writes them here: one from
-- each hub checkpoint's predecessor, and one from a region's last cosigned checkpoint
-- to the hub's latest when that region is stuck below it. Published to the regions
-- (`coord_national_audit`) with the hub's checkpoints. `proof` is the list of hashes.
CREATE TABLE audit_consistency (
    origin    text     NOT NULL,
    from_size bigint   NOT NULL CHECK (from_size >= 1),
    to_size   bigint   NOT NULL,
    proof     bytea[]  NOT NULL,
    CONSTRAINT audit_consistency_pkey PRIMARY KEY (origin, from_size, to_size),
    CONSTRAINT audit_consistency_forward CHECK (to_size > from_size)
);

CREATE TRIGGER audit_consistency_immutable BEFORE UPDATE OR DELETE ON audit_consistency
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();

-- The regions' cosignatures of the hub's checkpoints. Kept apart from
-- `audit_cosignatures` (which the hub publishes to every region) and without a unique
-- key: a region publishes its rows to the hub (`coord_region_audit`), and a row the hub
-- already holds arriving again (a region that lost its table and cosigned anew, a
-- re-copied table) must never stop the link with a duplicate-key error. Receipts take
-- one line per cosigner.
CREATE TABLE audit_witness_cosignatures (
    origin      text        NOT NULL,
    tree_size   bigint      NOT NULL CHECK (tree_size >= 0),
    cosigner    text        NOT NULL,
    line        text        NOT NULL,
    cosigned_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_witness_cosignatures_idx
    ON audit_witness_cosignatures (origin, cosigner, tree_size);
-- A publication of an insert-only table needs no replica identity; say so explicitly.
ALTER TABLE audit_witness_cosignatures REPLICA IDENTITY FULL;

CREATE TRIGGER audit_witness_cosignatures_immutable
    BEFORE UPDATE OR DELETE ON audit_witness_cosignatures
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();
