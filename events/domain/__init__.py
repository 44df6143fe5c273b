"""The domain: event types, aggregates and the rules they enforce, pure and I/O-free.

Imports neither `events.store` nor `events.audit` (see `events/__init__.py`).
"""
