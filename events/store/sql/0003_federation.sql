-- Multi-region federation (see coord/federation.py and docs/deploy.md).
--
-- Every event records its home node (events.node_id): the node whose clients wrote
-- it. Nodes exchange events by PostgreSQL logical replication; each node gives the
-- events it receives its own positions, so its log, projections and Merkle tree
-- work exactly as for events written locally.

-- Who this database is. One row; written when a node starts. The column default
-- of events.node_id follows it, so every process writing here (server, CLI)
-- stamps the same home node without being told.
CREATE TABLE coord_node (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    node_id    text NOT NULL CHECK (node_id ~ '^[a-z0-9][a-z0-9_]{0,40}$'),
    mode       text NOT NULL CHECK (mode IN ('standalone', 'regional', 'hub')),
    regions    text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The federation's directory: which node is home for which regions. Written at
-- the hub by `coord federation add-region` and replicated to every regional node,
-- so any node can name the home of a write it must refuse (421).
CREATE TABLE federation_nodes (
    node_id  text PRIMARY KEY,
    mode     text NOT NULL CHECK (mode IN ('regional', 'hub')),
    regions  text[] NOT NULL DEFAULT '{}',
    link     text,
    added_at timestamptz NOT NULL DEFAULT now()
);

-- Per peer node: what arrived last over replication (for status and lag).
CREATE TABLE federation_received (
    node_id          text PRIMARY KEY,
    events           bigint NOT NULL,
    last_event_id    uuid NOT NULL,
    last_recorded_at timestamptz NOT NULL,
    received_at      timestamptz NOT NULL
);

-- Rows applied by a subscription bypass coord_append: queue them for this node's
-- sequencer here. REPLICA: fires only in replication apply workers
-- (session_replication_role = replica), never for local writes.
CREATE FUNCTION coord_enqueue_replicated() RETURNS trigger LANGUAGE plpgsql
-- Apply workers run with an empty search_path: pin the one the schema was made with.
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO pending (first_seq, seqs) VALUES (NEW.seq, ARRAY[NEW.seq]);
    INSERT INTO federation_received AS r
        (node_id, events, last_event_id, last_recorded_at, received_at)
    VALUES (NEW.node_id, 1, NEW.event_id, NEW.recorded_at, clock_timestamp())
    ON CONFLICT (node_id) DO UPDATE SET
        events = r.events + 1,
        last_event_id = EXCLUDED.last_event_id,
        last_recorded_at = EXCLUDED.last_recorded_at,
        received_at = EXCLUDED.received_at;
    -- Wake the sequencer (notifications are delivered at commit, one per channel).
    PERFORM pg_notify('coord_pending', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_replicated AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION coord_enqueue_replicated();
ALTER TABLE events ENABLE REPLICA TRIGGER events_replicated;
