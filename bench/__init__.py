"""coord's benchmark harness: coord measured beside the raw PostgreSQL limit and a peer store.

Run `python -m bench` (quick, a few minutes) or `python -m bench --full` (1M events).
Every client runs in its own process; see docs/benchmarks.md.
"""
