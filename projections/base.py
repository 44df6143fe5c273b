"""What a projection is, the envelope it is fed, and the SQL helpers the read models share.

A projection is a named read model: the event types it handles, the DDL of its tables
(written against a schema placeholder, because rebuild and verify create the same tables
under other schema names), and an ``apply`` that brings its tables up to date with one
batch of events, inside the runner's transaction. Rows hold only facts derived from
events (never ``now()``), so a replay reproduces them exactly and ``verify`` can diff them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Protocol, TypeAlias

import asyncpg
import msgspec

from events.domain.timezones import NATIONAL_ZONE, PROVINCE_ZONES, ZONES, ZoneName
from events.domain.types import Event

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who wrote an event, as the server stamped it into the metadata."""

    token_id: str | None = None
    name: str | None = None
    role: str | None = None


class Metadata(msgspec.Struct, frozen=True, kw_only=True):
    """The server-stamped parts of event metadata that read models use."""

    actor: Actor | None = None
    role: str | None = None
    request_id: str | None = None

    def who(self) -> Actor | None:
        """The actor with its role (stamped beside the actor or inside it)."""
        if self.actor is None:
            return None
        if self.actor.role is None and self.role is not None:
            return msgspec.structs.replace(self.actor, role=self.role)
        return self.actor


_metadata_decoder = msgspec.json.Decoder(Metadata)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded event of the global log, as a projection sees it."""

    position: int
    event_id: str
    stream_id: str
    version: int
    type: str
    event: Event
    metadata_json: bytes
    recorded_at: datetime
    region_code: str | None

    @property
    def entity_id(self) -> str:
        """The uuid part of the stream id (``issue-<uuid>`` -> ``<uuid>``)."""
        return self.stream_id.partition("-")[2]

    def metadata(self) -> Metadata:
        """The server-stamped metadata (actor, request id); lenient about everything else."""
        try:
            return _metadata_decoder.decode(self.metadata_json)
        except msgspec.ValidationError:
            return Metadata()


class Projection(Protocol):
    """A read model fed by the runner (see projections/runner.py)."""

    #: stable name: the checkpoint row, the schema ``proj_<name>``, URLs and the CLI
    name: str
    #: event types it handles; None means every type
    handles: frozenset[str] | None
    #: False if ``apply`` never looks at ``Envelope.event`` (payloads are then not read
    #: or decoded, and ``event`` is ``UNDECODED``)
    reads_payload: bool
    #: CREATE statements with ``{s}`` for the schema name; tables in dependency order
    ddl: tuple[str, ...]
    #: table names, for verify's row-by-row diff
    tables: tuple[str, ...]
    #: lanes a rebuild may replay at once, each a share of the streams (1: one lane). More
    #: than one only if every row derives from one stream's events, so lanes never share rows
    replay_lanes: int

    async def apply(self, conn: asyncpg.Connection, schema: str, batch: Sequence[Envelope]) -> None:
        """Bring the tables in ``schema`` up to date with ``batch`` (in global order)."""


# --- cursors of keyset pagination, shared by the views ---------------------------------


class BadCursor(ValueError):
    """The cursor was not produced by this query."""


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The values inside a cursor; BadCursor if it is not one of ours."""
    try:
        values = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, msgspec.DecodeError) as e:
        raise BadCursor("cursor is not valid") from e
    if not isinstance(values, list):
        raise BadCursor("cursor is not valid")
    return values


def _zone_hours(zone: ZoneName) -> int:
    offset = ZONES[zone].utcoffset(None)
    return int(offset.total_seconds()) // 3600


def local_day_sql(region_sql: str | None, instant_sql: str) -> str:
    """SQL for the local date of ``instant_sql`` (timestamptz) in the zone of the region
    ``region_sql`` (a column of region or province codes; None, NULL or an unknown code: the
    national zone), as events.domain.timezones.local_time decides in Python. Fixed offsets:
    Indonesia has no daylight saving time.
    """
    national = _zone_hours(NATIONAL_ZONE)
    if region_sql is None:
        return f"(({instant_sql}) AT TIME ZONE 'UTC' + make_interval(hours => {national}))::date"
    by_zone: dict[int, list[str]] = {}
    for province, zone in sorted(PROVINCE_ZONES.items()):
        by_zone.setdefault(_zone_hours(zone), []).append(province)
    # Province codes are digits from our own table: inlined, nothing from a request.
    cases = " ".join(
        f"WHEN split_part({region_sql}, '.', 1) IN ({', '.join(repr(p) for p in codes)})"
        f" THEN {hours}"
        for hours, codes in sorted(by_zone.items())
        if hours != national
    )
    hours = f"CASE {cases} ELSE {national} END" if cases else str(national)
    return f"(({instant_sql}) AT TIME ZONE 'UTC' + make_interval(hours => {hours}))::date"


def schema_of(name: str, suffix: str = "") -> str:
    """The PostgreSQL schema holding projection ``name`` (``suffix`` for rebuild/verify)."""
    schema = f"proj_{name}{suffix}"
    if not _IDENT.match(schema):
        raise ValueError(f"not a safe schema name: {schema!r}")
    return schema


def ddl_checksum(projection: Projection) -> str:
    """A fingerprint of the projection's DDL: when it changes the tables need a rebuild."""
    return hashlib.sha256("\n".join(projection.ddl).encode()).hexdigest()[:16]


def _secondary(statement: str) -> bool:
    # Plain (non-unique) indexes serve queries only; upserts need the unique ones.
    return statement.lstrip().upper().startswith("CREATE INDEX")


async def create_tables(
    conn: asyncpg.Connection, projection: Projection, schema: str, *, indexes: bool = True
) -> None:
    """Create ``schema`` and the projection's tables in it (the schema must not exist).

    ``indexes=False`` leaves out the secondary indexes, for a bulk replay: building
    one index at the end is several times cheaper than maintaining it row by row
    (a GIN index over tsvectors most of all). ``create_indexes`` adds them.
    """
    await conn.execute(f"CREATE SCHEMA {schema}")
    for statement in projection.ddl:
        if indexes or not _secondary(statement):
            await conn.execute(statement.format(s=schema))


async def create_indexes(conn: asyncpg.Connection, projection: Projection, schema: str) -> None:
    """Create the secondary indexes ``create_tables(..., indexes=False)`` left out."""
    for statement in projection.ddl:
        if _secondary(statement):
            await conn.execute(statement.format(s=schema))


# --- decoding --------------------------------------------------------------------------


#: ``Envelope.event`` for projections that declare ``reads_payload = False``.
UNDECODED: Final[Event] = Event()


# --- SQL helpers -----------------------------------------------------------------------


Row: TypeAlias = dict[str, Any]


class Table:
    """A projection table whose rows are loaded, folded in memory and upserted per batch.

    Load-fold-upsert makes a batch cost two round trips whatever its size, and the result
    is the sequential fold of the events, so it cannot depend on where batches start.
    """

    def __init__(self, name: str, columns: Sequence[tuple[str, str]], key: str = "id") -> None:
        self.name = name
        self.columns = tuple(columns)
        self.key = key
        self._names = [c for c, _ in self.columns]

    def load_sql(self, schema: str) -> str:
        """SELECT of the rows whose key is in $1."""
        key_type = dict(self.columns)[self.key]
        return (
            f"SELECT {', '.join(self._names)} FROM {schema}.{self.name} "
            f"WHERE {self.key} = ANY($1::{key_type}[])"
        )

    def upsert_sql(self, schema: str) -> str:
        """INSERT ... ON CONFLICT DO UPDATE of many rows at once, from one array per column."""
        selects: list[str] = []
        params: list[str] = []
        for i, (column, sql_type) in enumerate(self.columns, start=1):
            if sql_type.endswith("[]"):
                # Arrays travel as their text form, one per row, and are cast back here.
                params.append(f"${i}::text[]")
                selects.append(f"u.{column}::{sql_type}")
            else:
                params.append(f"${i}::{sql_type}[]")
                selects.append(f"u.{column}")
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in self._names if c != self.key)
        return (
            f"INSERT INTO {schema}.{self.name} ({', '.join(self._names)}) "
            f"SELECT {', '.join(selects)} FROM unnest({', '.join(params)}) "
            f"AS u({', '.join(self._names)}) "
            f"ON CONFLICT ({self.key}) DO UPDATE SET {updates}"
        )

    async def load(
        self, conn: asyncpg.Connection, schema: str, keys: Iterable[Any]
    ) -> dict[Any, Row]:
        """Current rows by key (missing keys are absent); uuids come back as ``str``."""
        wanted = list(keys)
        if not wanted:
            return {}
        rows = await conn.fetch(self.load_sql(schema), wanted)
        out: dict[Any, Row] = {}
        for record in rows:
            row = {c: _plain(record[c]) for c in self._names}
            out[row[self.key]] = row
        return out

    async def upsert(self, conn: asyncpg.Connection, schema: str, rows: Iterable[Row]) -> None:
        """Write ``rows`` (complete rows, keyed by column name)."""
        rows = list(rows)
        if not rows:
            return
        args: list[list[Any]] = []
        for column, sql_type in self.columns:
            if sql_type.endswith("[]"):
                args.append([_array_text(r[column]) for r in rows])
            else:
                args.append([r[column] for r in rows])
        await conn.execute(self.upsert_sql(schema), *args)

    async def insert(self, conn: asyncpg.Connection, schema: str, rows: Iterable[Row]) -> None:
        """Write ``rows`` that are new to the table (by COPY: a duplicate key raises).

        Half the CPU of ``upsert`` on both sides (asyncpg checks the type of every
        array element it sends; COPY encodes the rows directly): the path for rows a
        projection knows to be new.
        """
        records = [tuple(_copy_value(r[c], t) for c, t in self.columns) for r in rows]
        if records:
            await conn.copy_records_to_table(
                self.name, schema_name=schema, records=records, columns=self._names
            )


def _copy_value(value: Any, sql_type: str) -> Any:
    # COPY takes arrays as lists (upsert sends their text form).
    return list(value) if sql_type.endswith("[]") and value is not None else value


def _plain(value: Any) -> Any:
    # asyncpg's UUID type is not `str`; rows keep uuids as text so that keys compare.
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if type(value).__name__ == "UUID":
        return str(value)
    return value


def _array_text(values: Sequence[Any]) -> str:
    # Only arrays of uuids and simple codes are stored: no quoting is needed for those.
    for v in values:
        if not re.fullmatch(r"[A-Za-z0-9._:-]+", str(v)):
            raise ValueError(f"array element needs quoting: {v!r}")
    return "{" + ",".join(str(v) for v in values) + "}"


class Where:
    """WHERE clauses with numbered parameters, built up filter by filter."""

    def __init__(self, first_param: int = 1) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []
        self._first = first_param

    def param(self, value: Any) -> str:
        """Add a parameter and return its placeholder (``$n``)."""
        self.params.append(value)
        return f"${self._first + len(self.params) - 1}"

    def add(self, clause: str, *values: Any) -> None:
        """Add a clause whose ``{}`` placeholders become parameters for ``values``."""
        self.clauses.append(clause.format(*(self.param(v) for v in values)))

    def sql(self) -> str:
        """`` WHERE a AND b`` (or nothing)."""
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def region_column(code: str) -> str:
    """The column that selects a region's rows: a province's code names the province with
    its regencies (``province_code``), a regency's its own (``region_code``)."""
    return "region_code" if "." in code else "province_code"


async def add_counts(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: Sequence[str],
    delta: Mapping[tuple[str, ...], int],
) -> None:
    """Add `delta` (per key of text `columns`) to a table of counts `(columns..., n)` whose
    primary key is `columns`; a count that drops to 0 is deleted, so that the table is the
    same however the events were batched (live, rebuild, verify)."""
    keys = sorted(k for k, n in delta.items() if n != 0)
    if not keys:
        return
    names = ", ".join(columns)
    arrays = ", ".join(f"${i}::text[]" for i in range(1, len(columns) + 1))
    # One statement: a count that drops to 0 is deleted, every other one added to.
    await conn.execute(
        f"WITH d AS (SELECT * FROM unnest({arrays}, ${len(columns) + 1}::int[]) "
        f"AS d({names}, n)), "
        f"gone AS (DELETE FROM {schema}.{table} c USING d "
        f"WHERE ({', '.join(f'c.{c}' for c in columns)}) = "
        f"({', '.join(f'd.{c}' for c in columns)}) AND c.n + d.n = 0 "
        f"RETURNING {', '.join(f'c.{c}' for c in columns)}) "
        f"INSERT INTO {schema}.{table} AS c SELECT * FROM d "
        f"WHERE ({names}) NOT IN (SELECT * FROM gone) "
        f"ON CONFLICT ({names}) DO UPDATE SET n = c.n + EXCLUDED.n",
        *([k[i] for k in keys] for i in range(len(columns))),
        [delta[k] for k in keys],
    )
