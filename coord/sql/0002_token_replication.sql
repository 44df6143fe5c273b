-- Token rows applied by replication (a regional node receiving the hub's
-- access_tokens) must drop cached grants in every coord process there, as a local
-- revocation does. REPLICA: fires only in replication apply workers.
CREATE FUNCTION coord_tokens_replicated() RETURNS trigger LANGUAGE plpgsql
-- Apply workers run with an empty search_path: pin the one the schema was made with.
SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('coord_tokens', NEW.token_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER access_tokens_replicated AFTER INSERT OR UPDATE ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION coord_tokens_replicated();
ALTER TABLE access_tokens ENABLE REPLICA TRIGGER access_tokens_replicated;
