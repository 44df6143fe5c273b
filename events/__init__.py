"""The event log: what happened, how it is stored, and how anyone can check it.

Three layers, each a subpackage, listed from the top down:

    events.audit   the verifiable log: Merkle tree, signed notes, leaf encoding, the
                   tree builder (audit_log) and the offline verifiers
    events.store   the log store: append, sequencer, log head, log reader, group commit,
                   leadership, integrity checks, the SQL migrations (store/sql/)
    events.domain  the domain, pure and I/O-free: event types, aggregates (hearing,
                   issue, recommendation, cluster, access), rules, regions, ids, errors

The rule: a layer imports only the layers below it. Domain imports neither store nor
audit; store may import domain; audit may import store and domain. Nothing in events
imports projections or coord, and projections never imports coord. Region data lives in
events/data/. tests/unit/test_layers.py reads every module's imports and fails on an
arrow the rule forbids.
"""
