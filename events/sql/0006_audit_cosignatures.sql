-- Cosignatures (C2SP tlog-cosignature/v1) on checkpoints, this node's own or a peer's.
--
-- A row says: cosigner `cosigner` checked the checkpoint of log `origin` at `tree_size`
-- against its own view of that log and signed it; `line` is the signature line to
-- append to the checkpoint's note (docs/audit-format.md §7). Receipts
-- (GET /v1/audit/receipt/{event_id}) hand out the lines stored for their checkpoint.
CREATE TABLE audit_cosignatures (
    origin      text        NOT NULL,
    tree_size   bigint      NOT NULL CHECK (tree_size >= 0),
    cosigner    text        NOT NULL,
    line        text        NOT NULL,
    cosigned_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_cosignatures_pkey PRIMARY KEY (origin, tree_size, cosigner)
);

-- Insert-only, like the checkpoints they cosign.
CREATE TRIGGER audit_cosignatures_immutable BEFORE UPDATE OR DELETE ON audit_cosignatures
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();
