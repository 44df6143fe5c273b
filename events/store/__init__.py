"""The log store: append and read streams and the global log in PostgreSQL.

May import `events.domain`, never `events.audit` (see `events/__init__.py`).
"""
