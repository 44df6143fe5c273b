-- The log's foreign key to events is redundant and costly: the sequencer takes every
-- seq it numbers from `pending`, which coord_append fills in the same transaction as
-- the events rows, and events can be neither deleted nor truncated (the immutability
-- triggers). Its check, meanwhile, was most of the sequencer's work: a FOR KEY SHARE
-- lock on each event row (an index probe, a tuple header write and a WAL record per
-- event), about 7 us of the 9.5 us each event cost the single sequencing leader.
-- Whether every log entry names a real event is proven where it matters: the Merkle
-- tree hashes each position's event, and `coord verify` checks every leaf.
ALTER TABLE log DROP CONSTRAINT log_seq_fkey;
