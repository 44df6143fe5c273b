-- Federation conflicts that never stop a link (issue 17).
--
-- A row a subscription applies could collide with one already here: an event id
-- another node already used (a client reusing a CloudEvents id or an event id), or
-- a stream id another home node already holds. Applying it would fail; PostgreSQL
-- would retry forever and the whole link would stall, so any client could stop
-- its region's link. Instead such a row is set aside here, whole and unchanged,
-- with a pointer to what it collided with: the link keeps flowing, nothing is
-- lost (the row is also still in its home node's log), and `coord federation
-- status` / `GET /v1/federation` / `coord_federation_conflicts` report it until an
-- operator resolves it (docs/deploy.md, "Conflicts").
CREATE TABLE federation_conflicts (
    conflict_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- why it was set aside: 'event_id' (the id is taken) or 'stream' (another home
    -- holds the stream, or this stream version is taken)
    kind           text NOT NULL CHECK (kind IN ('event_id', 'stream')),
    -- the received event, exactly as its home node recorded it
    event_id       uuid NOT NULL,
    stream_id      text NOT NULL,
    version        bigint NOT NULL,
    type           text NOT NULL,
    schema_version integer NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    region_code    text,
    node_id        text NOT NULL,
    recorded_at    timestamptz NOT NULL,
    -- the event already here that it collided with (the other version)
    held_event_id  uuid NOT NULL,
    held_node_id   text NOT NULL,
    detected_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    resolved_at    timestamptz,
    resolution     text
);
CREATE INDEX federation_conflicts_open ON federation_conflicts (node_id) WHERE resolved_at IS NULL;
CREATE INDEX federation_conflicts_stream ON federation_conflicts (stream_id);

CREATE FUNCTION coord_divert_conflicting() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    held events%ROWTYPE;
    kind text;
BEGIN
    SELECT * INTO held FROM events WHERE event_id = NEW.event_id;
    IF FOUND THEN
        IF held.stream_id = NEW.stream_id AND held.version = NEW.version
           AND held.node_id = NEW.node_id AND held.type = NEW.type
           AND held.data = NEW.data AND held.metadata = NEW.metadata THEN
            RETURN NULL;  -- the very same event again (a link re-created with copy_data)
        END IF;
        kind := 'event_id';
    ELSE
        -- The stream belongs to another home, or this version of it is taken.
        SELECT * INTO held FROM events
        WHERE stream_id = NEW.stream_id AND (node_id <> NEW.node_id OR version = NEW.version)
        ORDER BY version LIMIT 1;
        IF FOUND THEN
            kind := 'stream';
        ELSIF EXISTS (SELECT 1 FROM federation_conflicts c WHERE c.stream_id = NEW.stream_id
                      AND c.node_id = NEW.node_id AND c.resolved_at IS NULL) THEN
            -- Later events of a stream already set aside follow it, or they would
            -- land in a stream whose beginning is missing.
            SELECT * INTO held FROM events WHERE event_id = (
                SELECT c.held_event_id FROM federation_conflicts c
                WHERE c.stream_id = NEW.stream_id AND c.node_id = NEW.node_id
                ORDER BY c.conflict_id LIMIT 1);
            kind := 'stream';
        ELSE
            RETURN NEW;
        END IF;
    END IF;
    INSERT INTO federation_conflicts (kind, event_id, stream_id, version, type, schema_version,
        data, metadata, region_code, node_id, recorded_at, held_event_id, held_node_id)
    VALUES (kind, NEW.event_id, NEW.stream_id, NEW.version, NEW.type, NEW.schema_version,
        NEW.data, NEW.metadata, NEW.region_code, NEW.node_id, NEW.recorded_at,
        held.event_id, held.node_id);
    RETURN NULL;
END $$;

-- BEFORE, and REPLICA: only rows applied by a subscription, before PostgreSQL's own
-- conflict check (a skipped row is not a conflict to it).
CREATE TRIGGER events_divert_conflicting BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION coord_divert_conflicting();
ALTER TABLE events ENABLE REPLICA TRIGGER events_divert_conflicting;

-- Where each incoming link of this node connects (its publisher), for status: the
-- subscription's own conninfo is readable by superusers only. Local to this node.
CREATE TABLE federation_links (
    link     text PRIMARY KEY,
    conninfo text NOT NULL
);
