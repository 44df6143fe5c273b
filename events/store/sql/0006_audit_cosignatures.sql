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

-- Home positions: where each event sits in the log of node `log_node`. Each node's tree
-- builder writes the rows of its own log (log_node = its node id) in the transaction that
-- stores the leaves; a regional node's rows replicate to the hub with its events, so the
-- hub knows every event's home position and mirrors the region's tree from them
-- (coord/cosigner.py). An event's home position is its row with log_node = its node_id.
CREATE TABLE node_log (
    log_node text   NOT NULL,
    position bigint NOT NULL CHECK (position >= 1),
    event_id uuid   NOT NULL,
    CONSTRAINT node_log_pkey PRIMARY KEY (log_node, position)
);
CREATE INDEX node_log_event_idx ON node_log (event_id);
CREATE TRIGGER node_log_immutable BEFORE UPDATE OR DELETE ON node_log
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();

-- Leaves built before this table existed.
INSERT INTO node_log (log_node, position, event_id)
SELECT coalesce((SELECT node_id FROM coord_node), 'local'), l.position, e.event_id
FROM log l JOIN events e ON e.seq = l.seq
WHERE l.position <= (SELECT coalesce(max(idx) + 1, 0) FROM merkle_nodes WHERE level = 0);

-- The node's verifier key (published at start), and at the hub each region's, copied by
-- `coord federation add-region`: the key the hub checks that region's checkpoints with.
ALTER TABLE coord_node ADD COLUMN audit_vkey text;
ALTER TABLE federation_nodes ADD COLUMN audit_vkey text;

-- Region checkpoints the hub refused to cosign (a region that rewrote history, or a hub
-- missing events): the alert, kept. `reason` says which check failed.
CREATE TABLE audit_cosign_refusals (
    origin     text        NOT NULL,
    tree_size  bigint      NOT NULL,
    reason     text        NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_cosign_refusals_pkey PRIMARY KEY (origin, tree_size)
);
