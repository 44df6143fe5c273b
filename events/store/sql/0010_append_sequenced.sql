-- Appends that are sequenced in their own statement (events/store/sequencer.py,
-- "Direct appends"). Run only on the sequencer leader's connection, one statement at a
-- time, like coord_sequence: the append and the sequencing of everything pending (its
-- own rows with the rest) commit together, in one round trip instead of two
-- transactions. Each returns the append's own result, then one row per event it gave a
-- position (o_pos, o_seq), as coord_sequence does.

-- An append to one stream (coord_append), sequenced.
CREATE FUNCTION coord_append_sequenced(
    p_stream   text,
    p_expected bigint,
    p_ids      uuid[],
    p_types    text[],
    p_schemas  integer[],
    p_data     jsonb[],
    p_meta     jsonb[],
    p_region   text,
    p_limit    integer
) RETURNS TABLE (ok boolean, actual_version bigint, first_version bigint, seqs bigint[],
                 o_pos bigint, o_seq bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT a.ok, a.actual_version, a.first_version, a.seqs, NULL::bigint, NULL::bigint
    FROM coord_append(p_stream, p_expected, p_ids, p_types, p_schemas, p_data, p_meta,
                      p_region) a;
    RETURN QUERY
    SELECT NULL::boolean, NULL::bigint, NULL::bigint, NULL::bigint[], s.pos, s.seq
    FROM coord_sequence(p_limit) s;
END $$;

-- New streams' appends of one group commit (events/store/group_commit.py), sequenced:
-- one row (o_stream, o_seqs) per stream, in any order, before the positions.
CREATE FUNCTION coord_append_new_sequenced(
    p_ids      uuid[],
    p_streams  text[],
    p_versions bigint[],
    p_types    text[],
    p_schemas  integer[],
    p_data     jsonb[],
    p_meta     jsonb[],
    p_regions  text[],
    p_limit    integer
) RETURNS TABLE (o_stream text, o_seqs bigint[], o_pos bigint, o_seq bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH ins AS (
        INSERT INTO events (event_id, stream_id, version, type, schema_version, data,
                            metadata, region_code)
        SELECT u.id, u.sid, u.ver, u.typ, u.sv, u.dat, u.met, u.reg
        FROM unnest(p_ids, p_streams, p_versions, p_types, p_schemas, p_data, p_meta,
                    p_regions) WITH ORDINALITY AS u(id, sid, ver, typ, sv, dat, met, reg, ord)
        ORDER BY u.ord
        RETURNING events.seq, events.stream_id, events.version
    ), grouped AS (
        SELECT ins.stream_id, min(ins.seq) AS first_seq,
               array_agg(ins.seq ORDER BY ins.version) AS all_seqs
        FROM ins GROUP BY ins.stream_id
    ), queued AS (
        INSERT INTO pending (first_seq, seqs) SELECT g.first_seq, g.all_seqs FROM grouped g
    )
    SELECT g.stream_id, g.all_seqs, NULL::bigint, NULL::bigint FROM grouped g;
    RETURN QUERY
    SELECT NULL::text, NULL::bigint[], s.pos, s.seq FROM coord_sequence(p_limit) s;
END $$;
