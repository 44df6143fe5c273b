-- Which node is home for each stream a federation's hub holds (issue 17: ids global).
--
-- Stream ids are chosen by clients (`hearing-<uuid>`), so two regions could start the
-- same one; at the hub the later copy would be a conflict. The hub records the home of
-- every stream it holds, its own and those replicated from the regions, and publishes
-- this table to every region (`coord_national_tables`): a region refuses (409
-- `stream-id-taken`, naming the home node) to start a stream another node holds,
-- before writing anything. Only the hub writes here; a region only receives it.
CREATE TABLE federation_streams (
    stream_id text PRIMARY KEY,
    home_node text NOT NULL
);

-- Registered when the hub's sequencer logs an event, not when a row arrives: a row a
-- subscription applies carries its replication origin, and so would anything a trigger
-- wrote in that transaction, which the regions' subscriptions (origin = none) would never
-- receive. The sequencer's own transaction has no origin. One statement per batch.
CREATE FUNCTION coord_register_streams() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO federation_streams (stream_id, home_node)
    SELECT e.stream_id, e.node_id FROM added a JOIN events e ON e.seq = a.seq
    WHERE e.version = 1
    ON CONFLICT (stream_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER log_register_streams AFTER INSERT ON log
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION coord_register_streams();
-- Off until `coord federation add-region` makes this database a hub: it enables the
-- trigger and registers the streams already there. A set-aside event (a conflict) is
-- never logged, so never registered.
ALTER TABLE log DISABLE TRIGGER log_register_streams;
