"""Which failures stop a projection, and which are only waited out.

A projection is marked ``failed`` (and stays stopped until a fix, a rebuild or a
``coord projections skip``) only when *the event* is the cause: its payload does not
decode, the handler has a bug that this event triggers, or the event's data breaks a
constraint of the view's tables. Everything about the database or the connection (disk
full, connection lost, a server shutting down, serialization failures, deadlocks, lock
and statement timeouts, too many connections, a closed pool, timeouts) says nothing
about the event: the runner retries it with backoff, and the same event applies once
the database is well again. Marking those ``failed`` blamed innocent events (issue 13).
"""

from __future__ import annotations

from typing import Literal

import asyncpg

Cause = Literal["transient", "event"]

#: SQLSTATEs (a class prefix or a full code) of errors that pass with time.
#: https://www.postgresql.org/docs/current/errcodes-appendix.html
_TRANSIENT_SQLSTATES = (
    "08",  # connection exception
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "40003",  # statement_completion_unknown
    "53",  # insufficient resources: disk_full, out_of_memory, too_many_connections
    "55P03",  # lock_not_available (lock_timeout)
    "57",  # operator intervention: query_canceled (statement_timeout), admin/crash
    #        shutdown, cannot_connect_now, database_dropped, idle_session_timeout
    "58",  # system error: io_error, undefined_file (the server's own files)
    "25006",  # read_only_sql_transaction: connected to a standby during a failover
)


def classify(error: BaseException, *, connection_closed: bool = False) -> Cause:
    """``"transient"`` for a fault of the database or the connection, else ``"event"``.

    ``connection_closed``: the connection the error came from is closed, which makes any
    error transient (a killed backend surfaces in several shapes). Causes chained with
    ``raise ... from`` are looked at too (a wrapped ``OSError`` stays transient).
    """
    if connection_closed:
        return "transient"
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient(current):
            return "transient"
        current = current.__cause__
    return "event"


def is_transient(error: BaseException, *, connection_closed: bool = False) -> bool:
    """``classify(...) == "transient"``."""
    return classify(error, connection_closed=connection_closed) == "transient"


def _transient(error: BaseException) -> bool:
    if isinstance(error, asyncpg.exceptions._base.DataError):
        # asyncpg's own encoder refused a value the handler took from the event
        # ("invalid UUID"): the event's data, not the database.
        return False
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None) or ""
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    if isinstance(error, asyncpg.InterfaceError):
        # Closed connection or pool, "connection was released": the plumbing.
        return True
    if isinstance(
        error,
        asyncpg.exceptions.OutdatedSchemaCacheError | asyncpg.exceptions.InternalClientError,
    ):
        # A statement cached before a rebuild swapped the tables; a new connection clears it.
        # A killed backend also surfaces as InternalClientError.
        return True
    # OSError covers ConnectionError, TimeoutError (asyncio's too) and the log reader's
    # LogReadFailed.
    return isinstance(error, OSError)
