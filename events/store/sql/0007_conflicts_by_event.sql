-- The hub's cosigner mirrors a region's tree from the region's own copies of its events
-- (coord/cosigner.py): a copy set aside as a collision is found here by its event id.
CREATE INDEX federation_conflicts_event ON federation_conflicts (event_id, node_id);
