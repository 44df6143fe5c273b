-- The event store: immutable events, a pending queue, and the dense global log.
--
-- Global order (see events/sequencer.py for the full why): writers never take a
-- global lock. Each append inserts its events into `events` (which has an
-- internal insertion number `seq`, with gaps and in no useful order) and one row into
-- `pending` in the same transaction. A single leader (advisory lock) moves
-- *committed* pending rows into `log`, giving them dense positions 1, 2, 3, ...
-- Because the leader only ever sees committed rows and commits each batch
-- before taking the next, positions become visible strictly in order: a reader
-- following `position > last_seen` can never skip an event.

CREATE TABLE events (
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    type           text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    region_code    text,
    node_id        text        NOT NULL DEFAULT 'local',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    category       text GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    CONSTRAINT events_pkey PRIMARY KEY (seq),
    -- idempotency guard: an event id is stored once in the whole store
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    -- optimistic-concurrency guard: one event per stream version
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_version_positive CHECK (version >= 1)
);

-- One row per committed-but-not-yet-sequenced append (not per event): the
-- sequencer drains it. `seqs` holds the append's event seqs in stream order.
CREATE TABLE pending (
    first_seq bigint PRIMARY KEY,
    seqs      bigint[] NOT NULL
);

-- The dense global log: position -> event. Insert-only, written by the sequencer.
CREATE TABLE log (
    position bigint PRIMARY KEY,
    seq      bigint NOT NULL,
    CONSTRAINT log_seq_key UNIQUE (seq),
    CONSTRAINT log_seq_fkey FOREIGN KEY (seq) REFERENCES events (seq),
    CONSTRAINT log_position_positive CHECK (position >= 1)
);

-- Immutability is enforced by the database, not by politeness.
CREATE FUNCTION coord_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'coord: % on % is forbidden: events are immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION coord_forbid_change();
CREATE TRIGGER log_immutable BEFORE UPDATE OR DELETE ON log
    FOR EACH ROW EXECUTE FUNCTION coord_forbid_change();
CREATE TRIGGER log_no_truncate BEFORE TRUNCATE ON log
    FOR EACH STATEMENT EXECUTE FUNCTION coord_forbid_change();

-- Append in one round trip. p_expected: >= 0 exact version, -1 "any", -2 "exists".
-- Returns ok=false with the actual version on a mismatch instead of raising, so
-- the caller can tell a conflict from an idempotent retry. Races between two
-- writers that both saw the same version end in events_stream_version_key.
CREATE FUNCTION coord_append(
    p_stream   text,
    p_expected bigint,
    p_ids      uuid[],
    p_types    text[],
    p_schemas  integer[],
    p_data     jsonb[],
    p_meta     jsonb[],
    p_region   text
) RETURNS TABLE (ok boolean, actual_version bigint, first_version bigint, seqs bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    cur  bigint;
    new_seqs bigint[];
BEGIN
    SELECT e.version INTO cur FROM events e
        WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1;
    cur := coalesce(cur, 0);
    IF (p_expected >= 0 AND cur <> p_expected) OR (p_expected = -2 AND cur = 0) THEN
        RETURN QUERY SELECT false, cur, NULL::bigint, NULL::bigint[];
        RETURN;
    END IF;
    WITH ins AS (
        INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata, region_code)
        SELECT u.id, p_stream, cur + u.ord, u.typ, u.sv, u.dat, u.met, p_region
        FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta)
             WITH ORDINALITY AS u(id, typ, sv, dat, met, ord)
        ORDER BY u.ord
        RETURNING events.seq, events.version
    )
    SELECT array_agg(ins.seq ORDER BY ins.version) INTO new_seqs FROM ins;
    INSERT INTO pending (first_seq, seqs) VALUES (new_seqs[1], new_seqs);
    RETURN QUERY SELECT true, cur + cardinality(p_ids), cur + 1, new_seqs;
END $$;

-- One sequencing step, run only by the leader (who holds the advisory lock):
-- drain committed pending appends, number their events densely after the
-- current head in (append, stream version) order, and wake subscribers.
CREATE FUNCTION coord_sequence(p_limit integer)
RETURNS TABLE (pos bigint, seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    head bigint;
    moved_count bigint;
BEGIN
    SELECT l.position INTO head FROM log l ORDER BY l.position DESC LIMIT 1;
    head := coalesce(head, 0);
    RETURN QUERY
    WITH moved AS (
        DELETE FROM pending p
        WHERE p.first_seq IN (SELECT q.first_seq FROM pending q ORDER BY q.first_seq LIMIT p_limit)
        RETURNING p.first_seq, p.seqs
    ), numbered AS (
        SELECT head + row_number() OVER (ORDER BY m.first_seq, s.ord) AS position, s.seq
        FROM moved m, unnest(m.seqs) WITH ORDINALITY AS s(seq, ord)
    )
    INSERT INTO log (position, seq)
    SELECT n.position, n.seq FROM numbered n ORDER BY n.position
    RETURNING log.position, log.seq;
    GET DIAGNOSTICS moved_count = ROW_COUNT;
    IF moved_count > 0 THEN
        -- One notifier only (the leader), so NOTIFY's commit-time queue lock
        -- never makes writers wait for each other.
        PERFORM pg_notify('coord_log', (head + moved_count)::text);
    END IF;
END $$;

CREATE INDEX events_category_idx ON events (category, seq);
