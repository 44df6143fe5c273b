"""The event store: a narrow port over PostgreSQL with SQL-shaped verbs.

Guarantees:

* `append` is atomic (all events of a call or none) and takes one round trip;
  the version check and the `UNIQUE (stream_id, version)` constraint make racing
  writers on one stream end with exactly one winner.
* An event id is stored once; an idempotent retry returns the original result.
* `read_all` (and the SSE feed on it) walks the dense global log in order and can never
  skip, repeat or reorder an event (see events/store/sequencer.py for why).
* Nothing is ever updated or deleted: the database refuses it (triggers).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import structlog

from events.domain.errors import DuplicateEventId, WrongExpectedVersion
from events.domain.streams import validate_stream_id
from events.store import logged
from events.store.group_commit import GoAlone, GroupCommit
from events.store.log_head import LogHead, committed_head
from events.store.records import AppendResult, ExpectedVersion, NewEvent, RecordedEvent
from events.store.sequencer import Sequencer

log = structlog.get_logger("coord.store")

_ANY = -1
_EXISTS = -2

_APPEND = (
    "SELECT ok, actual_version, first_version, seqs "
    "FROM coord_append($1, $2, $3, $4, $5, $6, $7, $8)"
)

# The common case, a new stream (expected version 0), in plain SQL: no version
# lookup and no PL/pgSQL call; if the stream exists, version 1 collides with
# events_stream_version_key and the caller learns the actual version.
_APPEND_NEW = """
WITH ins AS (
    INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata,
                        region_code)
    SELECT u.id, $1, u.ord, u.typ, u.sv, u.dat, u.met, $7
    FROM unnest($2::uuid[], $3::text[], $4::int[], $5::jsonb[], $6::jsonb[])
         WITH ORDINALITY AS u(id, typ, sv, dat, met, ord)
    ORDER BY u.ord
    RETURNING seq, version
)
INSERT INTO pending (first_seq, seqs)
SELECT min(seq), array_agg(seq ORDER BY version) FROM ins
RETURNING seqs
"""

_EVENT_COLUMNS = (
    "e.event_id, e.stream_id, e.version, {position} AS position, e.type, e.schema_version, "
    "e.data, e.metadata, e.recorded_at, e.region_code"
)

_READ_STREAM = (
    f"SELECT {_EVENT_COLUMNS.format(position='l.position')} "
    "FROM events e JOIN log l ON l.seq = e.seq "
    "WHERE e.stream_id = $1 AND e.version >= $2 ORDER BY e.version LIMIT $3"
)

# Includes events committed a moment ago that the sequencer has not numbered
# yet (position 0): deciding on a stream must see every committed event.
_LOAD_STREAM = (
    f"SELECT {_EVENT_COLUMNS.format(position='coalesce(l.position, 0)')} "
    "FROM events e LEFT JOIN log l ON l.seq = e.seq "
    "WHERE e.stream_id = $1 AND e.version >= $2 ORDER BY e.version LIMIT $3"
)

_STREAM_VERSION = (
    "SELECT coalesce((SELECT version FROM events WHERE stream_id = $1 "
    "ORDER BY version DESC LIMIT 1), 0)"
)

_STORED_BY_ID = (
    "SELECT e.event_id, e.stream_id, e.version, e.type, e.data, e.seq, l.position "
    "FROM events e LEFT JOIN log l ON l.seq = e.seq WHERE e.event_id = ANY($1::uuid[])"
)


def _expected_code(expected: ExpectedVersion) -> int:
    if expected == "any":
        return _ANY
    if expected == "exists":
        return _EXISTS
    if isinstance(expected, int) and not isinstance(expected, bool) and expected >= 0:
        return expected
    raise ValueError(f"expected_version must be an int >= 0, 'any' or 'exists', not {expected!r}")


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        id=row[0],
        stream_id=row[1],
        version=row[2],
        position=row[3],
        type=row[4],
        schema_version=row[5],
        data=row[6],
        metadata=row[7],
        recorded_at=row[8],
        region_code=row[9],
    )


@dataclass(frozen=True, slots=True)
class Committed:
    """An append that has committed; `seqs` await global positions."""

    stream_id: str
    first_version: int
    last_version: int
    seqs: list[int]


@dataclass(frozen=True, slots=True)
class ReadFilter:
    """Filters for `read_all`; `None` means no filter on that column."""

    types: Sequence[str] | None = None
    categories: Sequence[str] | None = None
    regions: Sequence[str] | None = None

    def sql(self, first_param: int) -> tuple[str, list[Any]]:
        """WHERE fragments (starting with ` AND`) and their parameters."""
        parts: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("e.type", self.types),
            ("e.category", self.categories),
            ("e.region_code", self.regions),
        ):
            if values is not None:
                params.append(list(values))
                parts.append(f" AND {column} = ANY(${first_param + len(params) - 1}::text[])")
        return "".join(parts), params


class EventStore:
    """Append to and read from the event log in PostgreSQL."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        head: LogHead,
        sequencer: Sequencer | None = None,
        *,
        sequencing_timeout: float = 10.0,
        group_commit: bool = True,
    ) -> None:
        self._pool = pool
        # New streams' appends share statements and commits under load.
        self._group = GroupCommit(pool) if group_commit else None
        self._head = head
        self._sequencer = sequencer
        self._sequencing_timeout = sequencing_timeout

    @property
    def pool(self) -> asyncpg.Pool:
        """The connection pool the store reads and writes through."""
        return self._pool

    @property
    def head(self) -> LogHead:
        """The process's view of the log head (for waiting on new events)."""
        return self._head

    # -- writing ---------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion,
        *,
        region_code: str | None = None,
    ) -> AppendResult:
        """Append `events` to `stream_id` atomically and return their versions and positions.

        Raises WrongExpectedVersion if the stream is not at `expected_version`
        (after ruling out an idempotent retry), DuplicateEventId if an event id
        is stored with other content or elsewhere. On any error nothing is written.
        """
        validate_stream_id(stream_id)
        if not events:
            raise ValueError("append needs at least one event")
        expected = _expected_code(expected_version)
        if expected == 0 and self._group is not None:
            try:
                seqs = await self._group.append(stream_id, events, region_code)
            except GoAlone:
                pass  # the shared statement was refused: the path below tells why
            else:
                return await self.positions(Committed(stream_id, 1, len(seqs), seqs))
        async with self._pool.acquire() as conn:
            for _attempt in range(8):
                try:
                    committed = await self.insert(conn, stream_id, events, expected, region_code)
                    break
                except asyncpg.UniqueViolationError as e:
                    if e.constraint_name == "events_event_id_key":
                        retry = await self._idempotent_result(conn, stream_id, events, expected)
                        if retry is not None:
                            return retry
                        raise DuplicateEventId(
                            str(events[0].id), "in another stream, version or content"
                        ) from e
                    if e.constraint_name != "events_stream_version_key":
                        raise
                    # A concurrent writer took the version we computed (or, for a new
                    # stream, the stream exists): a retry of this append, or a conflict.
                    if expected != _ANY:
                        retry = await self._idempotent_result(conn, stream_id, events, expected)
                        if retry is not None:
                            return retry
                        actual = await conn.fetchval(_STREAM_VERSION, stream_id)
                        raise WrongExpectedVersion(stream_id, expected_version, actual) from e
                except WrongExpectedVersion:
                    retry = await self._idempotent_result(conn, stream_id, events, expected)
                    if retry is not None:
                        return retry
                    raise
            else:  # pragma: no cover - eight lost races in a row under "any"
                actual = await conn.fetchval(_STREAM_VERSION, stream_id)
                raise WrongExpectedVersion(stream_id, expected_version, actual)
        return await self.positions(committed)

    async def insert(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        events: Sequence[NewEvent],
        expected: int,
        region_code: str | None = None,
    ) -> Committed:
        """The write half of `append`, on the caller's connection (and transaction, if any).

        `expected` is an exact version >= 0, -1 for "any" or -2 for "exists".
        The events get positions only after the transaction commits; then call
        `positions()`.
        """
        columns = (
            [e.id for e in events],
            [e.type for e in events],
            [e.schema_version for e in events],
            [e.data for e in events],
            [e.metadata for e in events],
        )
        if expected == 0:
            seqs_new: list[int] = await conn.fetchval(_APPEND_NEW, stream_id, *columns, region_code)
            return Committed(stream_id, 1, len(seqs_new), seqs_new)
        row = await conn.fetchrow(_APPEND, stream_id, expected, *columns, region_code)
        if not row["ok"]:
            shown: ExpectedVersion = (
                "any" if expected == _ANY else "exists" if expected == _EXISTS else expected
            )
            raise WrongExpectedVersion(stream_id, shown, row["actual_version"])
        seqs: list[int] = row["seqs"]
        return Committed(
            stream_id, row["first_version"], row["first_version"] + len(seqs) - 1, seqs
        )

    async def positions(self, committed: Committed) -> AppendResult:
        """Wait (bounded) until a committed append is sequenced; return where it landed."""
        if self._sequencer is not None:
            await self._sequencer.poke(self._pool)
        last = await self._head.position_of(committed.seqs[-1], self._sequencing_timeout)
        # One append's events are numbered consecutively in one sequencer batch.
        return AppendResult(
            stream_id=committed.stream_id,
            first_version=committed.first_version,
            last_version=committed.last_version,
            first_position=last - len(committed.seqs) + 1,
            last_position=last,
        )

    async def idempotent_result(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult | None:
        """The original result if `events` are exactly a stored append; None if none is stored.

        Reads only. Raises DuplicateEventId (with `holder` set where one stream holds
        the id) when some ids are stored but not as this append.
        """
        async with self._pool.acquire() as conn:
            return await self._idempotent_result(
                conn, stream_id, events, _expected_code(expected_version)
            )

    async def _idempotent_result(
        self, conn: asyncpg.Connection, stream_id: str, events: Sequence[NewEvent], expected: int
    ) -> AppendResult | None:
        rows = await conn.fetch(_STORED_BY_ID, [e.id for e in events])
        if not rows:
            return None
        by_id = {r["event_id"]: r for r in rows}
        first = by_id.get(events[0].id)
        for i, event in enumerate(events):
            stored = by_id.get(event.id)
            if stored is None or first is None:
                holder = None if stored is None else stored["stream_id"]
                raise DuplicateEventId(
                    str(event.id), "part of this append is already stored", holder=holder
                )
            # The messages never name the holding stream (it may be another region's).
            if stored["stream_id"] != stream_id:
                raise DuplicateEventId(
                    str(event.id), "in another stream", holder=stored["stream_id"]
                )
            if stored["version"] != first["version"] + i or stored["type"] != event.type:
                raise DuplicateEventId(
                    str(event.id),
                    "stored at another version or with another type",
                    holder=stream_id,
                )
            if msgspec.json.decode(bytes(stored["data"])) != msgspec.json.decode(event.data):
                raise DuplicateEventId(str(event.id), "stored with other data", holder=stream_id)
        assert first is not None
        if expected >= 0 and first["version"] != expected + 1:
            raise DuplicateEventId(str(events[0].id), "stored at another version", holder=stream_id)
        committed = Committed(
            stream_id,
            first["version"],
            first["version"] + len(events) - 1,
            [by_id[e.id]["seq"] for e in events],
        )
        result = await self.positions(committed)
        return msgspec.structs.replace(result, created=False)

    async def any_stored(self, event_ids: Sequence[uuid.UUID]) -> bool:
        """True if any of these event ids is already in the store."""
        async with self._pool.acquire() as conn:
            found: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = ANY($1::uuid[]))",
                list(event_ids),
            )
        return found

    # -- reading -----------------------------------------------------------

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 if it does not exist)."""
        async with self._pool.acquire() as conn:
            version: int = await conn.fetchval(_STREAM_VERSION, stream_id)
            return version

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        limit: int = 100,
        *,
        include_unsequenced: bool = False,
    ) -> list[RecordedEvent]:
        """Events of one stream in version order, from `from_version`, at most `limit`.

        With `include_unsequenced`, also events committed but not yet given a
        position (shown with position 0): what a decision must see.
        """
        sql = _LOAD_STREAM if include_unsequenced else _READ_STREAM
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, stream_id, from_version, limit)
        return [_record(r) for r in rows]

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        filters: ReadFilter | None = None,
        *,
        up_to: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of the global log after `after_position` (and at most `up_to`), in order."""
        where, params = (filters or ReadFilter()).sql(3)
        if up_to is not None:
            params.append(up_to)
            where += f" AND l.position <= ${2 + len(params)}"
        sql = logged.select(
            _EVENT_COLUMNS.format(position="l.position"), f"l.position > $1{where}", limit="$2"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, after_position, limit, *params)
        return [_record(r) for r in rows]

    async def head_position(self) -> int:
        """The position of the last sequenced event (0 for an empty log)."""
        async with self._pool.acquire() as conn:
            head = await committed_head(conn)
        self._head.advance(head)
        return head
