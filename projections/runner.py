"""The projection engine: feed read models from the global log, exactly once, in order.

* **One transaction per batch.** A runner locks its projection's row in ``projections``
  (``FOR UPDATE``), reads the log after the stored position, applies the batch to the
  projection's tables and moves the position, then commits: a crash at any moment leaves
  the tables and the checkpoint in agreement (neither lost nor double-applied events).
  In coord the runners of a process read through one ``LogReader`` (each window of the
  log read once for all of them and the tree builder); the log below a committed head
  never changes, so it does not matter which connection read it.
  Reading the checkpoint under the row lock (not from memory) is also what lets a
  rebuild switch tables under a running runner.
* **One runner per projection** across all coord processes: a session advisory lock per
  projection, held on the runner's dedicated connection. If that process or connection
  dies, PostgreSQL drops the lock and another process's supervisor takes it within
  ``lock_retry`` seconds.
* **Woken by LISTEN/NOTIFY** through the process's ``LogHead``; ``poll_interval`` is the
  fallback.
* **A failing handler stops its projection only**: the batch is retried event by event to
  commit everything before the culprit, then the projection is marked ``failed`` at that
  position with the error. Others keep running. A rebuild (or a restart, which retries
  once) clears it.
* **Rebuild** replays the log into ``proj_<name>_next`` while the live tables keep serving,
  then, under the row lock, catches up the last events, swaps the schemas by renaming
  and drops the old one, in one transaction. **Verify** replays into a scratch schema up
  to the live position and diffs every table with ``EXCEPT ALL`` both ways.
* Memory stays flat: the log is read in windows of ``window`` positions, never loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import structlog

from events.domain.types import Event, decode_trusted
from events.store.log_head import LogHead, committed_head
from events.store.log_reader import LogReader
from projections.base import (
    UNDECODED,
    Envelope,
    Projection,
    create_indexes,
    create_tables,
    ddl_checksum,
    schema_of,
)
from projections.failures import is_transient
from projections.skips import SkipInfo, list_skips, skips_of

log = structlog.get_logger("coord.projections")

Connect = Callable[[], Awaitable[asyncpg.Connection]]
Progress = Callable[[int, int], None]

# "proj" in the high 32 bits: distinct from the store's 0x636F6F7264_00/01 keys.
_LOCK_BASE = 0x70726F6A << 32
_REBUILD_LOCK_BASE = 0x70726F62 << 32  # "prob": one rebuild/verify per projection at a time

NOTIFY_CHANNEL = "coord_projection"

_READ = (
    "SELECT l.position, e.event_id::text, e.stream_id, e.version, e.type, e.schema_version, "
    "{data}, e.metadata, e.recorded_at, e.region_code "
    "FROM log l JOIN events e ON e.seq = l.seq "
    "WHERE l.position > $1 AND l.position <= $2 {types} ORDER BY l.position"
)
# The operator's skips (projections/skips.py) come with the row: no extra round trip.
_SKIPPED = (
    "ARRAY(SELECT {column} FROM events e WHERE e.category = 'system' "
    "AND e.type = 'ProjectionSkipped' AND e.data->>'projection' = $1 ORDER BY e.seq)"
)
_LOCK_ROW = (
    "SELECT position, state, (SELECT coalesce(max(position), 0) FROM log) AS head, "
    + _SKIPPED.format(column="(e.data->>'position')::bigint")
    + " AS skip_positions, "
    + _SKIPPED.format(column="e.data->>'event_id'")
    + " AS skip_ids FROM projections WHERE name = $1 FOR UPDATE"
)
_ADVANCE = (
    "UPDATE projections SET position = $2, updated_at = now() WHERE name = $1 "
    "RETURNING pg_notify('" + NOTIFY_CHANNEL + "', name || ':' || position)"
)
_FAIL = (
    "UPDATE projections SET state = 'failed', last_error = $2, failed_position = $3, "
    "updated_at = now() WHERE name = $1"
)
_STATUS = (
    "SELECT p.name, p.position, p.state, p.last_error, p.failed_position, p.rebuild_position, "
    "h.head, (SELECT e.recorded_at FROM log l JOIN events e ON e.seq = l.seq "
    "         WHERE l.position = p.position + 1) AS next_recorded_at "
    "FROM projections p, (SELECT coalesce(max(position), 0) AS head FROM log) h "
    "WHERE p.name = ANY($1::text[]) ORDER BY p.name"
)


def lock_key(name: str) -> int:
    """The advisory-lock key that names "the runner of projection `name`"."""
    return _LOCK_BASE | zlib.crc32(name.encode())


def _rebuild_key(name: str) -> int:
    return _REBUILD_LOCK_BASE | zlib.crc32(name.encode())


class HandlerFailed(Exception):
    """A projection's handler raised on the event at ``position``."""

    def __init__(self, name: str, position: int, window_end: int, error: BaseException) -> None:
        super().__init__(f"{name} failed at position {position}: {error!r}")
        self.position = position
        self.window_end = window_end
        self.error = error


def _transient(conn: asyncpg.Connection, e: BaseException) -> bool:
    """A fault of the database or the connection (see projections/failures.py)."""
    return is_transient(e, connection_closed=conn.is_closed())


#: ``{position: event id}``: the events a projection leaves out (projections/skips.py).
Skips = Mapping[int, str]


def _skips_of_row(row: Any) -> dict[int, str]:
    return dict(zip(row["skip_positions"], row["skip_ids"], strict=True))


# --- reading and applying a window of the log --------------------------------------------


Lane = tuple[int, int]  # (this lane, number of lanes): a share of the streams


def _read_sql(projection: Projection, lane: Lane | None = None) -> str:
    types = "" if projection.handles is None else "AND e.type = ANY($3::text[])"
    if lane is not None:
        n = 3 if projection.handles is None else 4
        types += f" AND abs(hashtext(e.stream_id) % ${n + 1}) = ${n}"
    data = "e.data" if projection.reads_payload else "NULL::jsonb"
    return _READ.format(types=types, data=data)


def _undecoded(type_name: str, schema_version: int, data: Any) -> Event:
    return UNDECODED


async def load_window(
    conn: asyncpg.Connection,
    projection: Projection,
    after: int,
    up_to: int,
    lane: Lane | None = None,
    skips: Skips | None = None,
) -> list[Envelope]:
    """Read and decode the events in (after, up_to] that ``projection`` handles.

    With ``lane`` only the events of that lane's share of the streams; ``skips`` are
    left out (never decoded). Raises HandlerFailed naming the window's first position
    if an event cannot be decoded.
    """
    args: list[Any] = [after, up_to]
    if projection.handles is not None:
        args.append(sorted(projection.handles))
    if lane is not None:
        args.extend(lane)
    rows = await conn.fetch(_read_sql(projection, lane), *args)
    return envelopes(projection, rows, up_to, filtered=True, skips=skips)


def envelopes(
    projection: Projection,
    rows: Sequence[Any],
    up_to: int,
    *,
    filtered: bool = False,
    skips: Skips | None = None,
) -> list[Envelope]:
    """Decode the logged events ``rows`` (``events.store.log_reader.COLUMNS``) for ``projection``.

    Keeps only the types it handles unless the rows are ``filtered`` already, and leaves
    out the ``skips`` (position and event id must both match). Raises HandlerFailed
    naming the first row's position if an event cannot be decoded.
    """
    handles = None if filtered else projection.handles
    decode = decode_trusted if projection.reads_payload else _undecoded
    if skips:
        rows = [r for r in rows if skips.get(r[0]) != r[1]]
        if not rows:
            return []
    try:
        return [
            Envelope(
                position=r[0],
                event_id=r[1],
                stream_id=r[2],
                version=r[3],
                type=r[4],
                event=decode(r[4], r[5], r[6]),
                metadata_json=bytes(r[7]),
                recorded_at=r[8],
                region_code=r[9],
            )
            for r in rows
            if handles is None or r[4] in handles
        ]
    except Exception as e:  # whatever decoding raised, the event is the cause
        raise HandlerFailed(projection.name, rows[0][0], up_to, e) from e


async def apply_batch(
    conn: asyncpg.Connection,
    projection: Projection,
    schema: str,
    batch: Sequence[Envelope],
    up_to: int,
) -> int:
    """Apply a loaded window to ``schema`` on the caller's transaction; return its size.

    Raises HandlerFailed naming the window's first position when the handler fails (the
    caller narrows it down).
    """
    if not batch:
        return 0
    try:
        await projection.apply(conn, schema, batch)
    except Exception as e:
        # The database's or the connection's fault: retried. Anything else came from
        # applying these events (their data, or a bug they trigger): the culprit stops it.
        if _transient(conn, e):
            raise
        raise HandlerFailed(projection.name, batch[0].position, up_to, e) from e
    return len(batch)


async def apply_window(
    conn: asyncpg.Connection,
    projection: Projection,
    schema: str,
    after: int,
    up_to: int,
    skips: Skips | None = None,
) -> int:
    """Apply the events in (after, up_to] that ``projection`` handles; return their count.

    Runs on the caller's transaction. Raises HandlerFailed naming the first position of
    the window when the handler fails (the caller narrows it down).
    """
    batch = await load_window(conn, projection, after, up_to, skips=skips)
    return await apply_batch(conn, projection, schema, batch, up_to)


# --- knowing where each projection is ----------------------------------------------------


class Positions:
    """This process's view of every projection's committed position, and waiting on it.

    Local runners report their commits directly; other processes' runners arrive by
    NOTIFY ``coord_projection``; waiters also re-read the table now and then, so a lost
    notification only costs a fraction of a second.
    """

    def __init__(self, pool: asyncpg.Pool, *, poll_interval: float = 0.2) -> None:
        self._pool = pool
        self._known: dict[str, int] = {}
        self._moved = asyncio.Event()
        self._poll_interval = poll_interval

    def get(self, name: str) -> int:
        """The last known position of ``name`` (0 if unknown)."""
        return self._known.get(name, 0)

    def report(self, name: str, position: int) -> None:
        """Record that ``name`` committed up to ``position``."""
        if position > self._known.get(name, 0):
            self._known[name] = position
            self._moved.set()

    def on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """asyncpg listener for ``coord_projection`` (payload ``name:position``)."""
        name, _, position = payload.rpartition(":")
        with contextlib.suppress(ValueError):
            self.report(name, int(position))

    async def refresh(self) -> None:
        """Re-read every position from the table (a rebuild may also move them back)."""
        rows = await self._pool.fetch("SELECT name, position FROM projections")
        for r in rows:
            self._known[r["name"]] = r["position"]
        self._moved.set()

    async def wait_for(self, names: Sequence[str], position: int, timeout: float) -> bool:
        """Wait until every projection in ``names`` has reached ``position``; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self.get(n) >= position for n in names):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self._poll_interval)):
                    await self._moved.wait()
            if not self._moved.is_set():
                await self.refresh()


# --- setup and status ------------------------------------------------------------------------


async def ensure(conn: asyncpg.Connection, projections: Sequence[Projection]) -> None:
    """Create missing checkpoint rows and live schemas; safe to run from many processes.

    A projection whose DDL changed since its tables were created is left as is and
    logged: ``coord projections rebuild NAME`` creates the new tables without downtime.
    """
    async with conn.transaction():
        # Processes starting together take turns (released at commit).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_BASE)
        for p in projections:
            checksum = ddl_checksum(p)
            row = await conn.fetchrow(
                "SELECT ddl_checksum FROM projections WHERE name = $1", p.name
            )
            exists = await conn.fetchval(
                "SELECT true FROM pg_namespace WHERE nspname = $1", schema_of(p.name)
            )
            if row is None or not exists:
                if exists:
                    await conn.execute(f"DROP SCHEMA {schema_of(p.name)} CASCADE")
                await create_tables(conn, p, schema_of(p.name))
                await conn.execute(
                    "INSERT INTO projections (name, ddl_checksum) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET position = 0, state = 'running', "
                    "last_error = NULL, failed_position = NULL, ddl_checksum = $2",
                    p.name,
                    checksum,
                )
            elif row["ddl_checksum"] != checksum:
                log.warning("projection.ddl_changed", projection=p.name, hint="rebuild it")
            await abandon_rebuild(conn, p.name)


async def abandon_rebuild(conn: asyncpg.Connection, name: str) -> bool:
    """Clean up after a rebuild or verify that died with its process; True if there was one.

    A crash during a rebuild left the projection ``rebuilding`` for ever, with the half
    replayed ``proj_<name>_next`` (and ``_verify`` after a verify) taking space. When no
    rebuild or verify of ``name`` runs (its advisory lock is free, which PostgreSQL
    guarantees once the process or its connection is gone), the leftovers are dropped
    and the projection goes back to ``running`` on its live tables. Reverting rather
    than resuming: the live tables were kept current by the live runner throughout, so
    nothing is lost but the partial replay, and a resumed replay could not be trusted
    (lanes do not record their progress). Run ``coord projections rebuild NAME`` again.
    """
    leftovers = [
        schema
        for schema in (schema_of(name, suffix) for suffix in ("_next", "_old", "_verify"))
        if await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema)
    ]
    state = await conn.fetchval("SELECT state FROM projections WHERE name = $1", name)
    if state != "rebuilding" and not leftovers:
        return False
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _rebuild_key(name)):
        return False  # a rebuild or verify is running right now, elsewhere
    try:
        for schema in leftovers:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(
            "UPDATE projections SET state = 'running', rebuild_position = NULL, "
            "updated_at = now() WHERE name = $1 AND state = 'rebuilding'",
            name,
        )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _rebuild_key(name))
    log.warning(
        "projection.rebuild_abandoned",
        projection=name,
        was=state,
        dropped=leftovers,
        hint="the live tables serve on; run the rebuild again if it is still needed",
    )
    return True


class ProjectionStatus(msgspec.Struct, kw_only=True):
    """One row of ``GET /v1/projections``."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    state: str
    last_error: str | None
    failed_position: int | None = None
    rebuild_position: int | None = None
    #: events an operator let this projection pass over (``coord projections skip``)
    skips: list[SkipInfo] = msgspec.field(default_factory=list)


async def status(pool: asyncpg.Pool, names: Sequence[str]) -> list[ProjectionStatus]:
    """Position, head, lag, state and recorded skips of each projection."""
    rows = await pool.fetch(_STATUS, list(names))
    skips = await list_skips(pool)
    now = time.time()
    out: list[ProjectionStatus] = []
    for r in rows:
        behind = r["next_recorded_at"]
        out.append(
            ProjectionStatus(
                name=r["name"],
                position=r["position"],
                head=r["head"],
                lag_events=max(r["head"] - r["position"], 0),
                # How long the oldest unapplied event has waited.
                lag_seconds=round(max(now - behind.timestamp(), 0.0), 3) if behind else 0.0,
                state=r["state"],
                last_error=r["last_error"],
                failed_position=r["failed_position"],
                rebuild_position=r["rebuild_position"],
                skips=skips.get(r["name"], []),
            )
        )
    return out


# --- the runner -------------------------------------------------------------------------------


@dataclass
class RunnerSettings:
    """Tuning knobs (tests make them small)."""

    window: int = 2000  # log positions per batch transaction
    poll_interval: float = 1.0  # fallback when no NOTIFY arrives
    lock_retry: float = 1.0  # how often a standby process tries to take over
    # After a partial batch, let events accumulate this long before the next one: under
    # load, batches grow and each transaction (and its checkpoint) carries more events.
    batch_delay: float = 0.05
    # Retrying after a fault of the database or the connection: exponential backoff from
    # retry_min to retry_max seconds, each wait drawn from [half, all] of it (jitter, so
    # that every runner of every process does not come back in the same instant).
    retry_min: float = 0.1
    retry_max: float = 10.0


def backoff(
    attempt: int, settings: RunnerSettings, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): bounded and jittered."""
    ceiling = min(settings.retry_max, settings.retry_min * 2.0 ** min(attempt - 1, 30))
    return ceiling * (0.5 + 0.5 * rand())


class _Trouble:
    """One projection's run of faults: logged when it starts and when it ends, not per retry."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.attempts = 0
        self.since = 0.0

    def failed(self, error: BaseException, *, transient: bool) -> int:
        """Count a fault; log it if it starts a run of them. Returns the attempt number."""
        self.attempts += 1
        if self.attempts == 1:
            self.since = time.monotonic()
            if transient:
                log.warning("projection.retrying", projection=self.name, error=repr(error))
            else:
                # Not the database and not an event: a bug in the runner itself.
                log.error("projection.runner_error", projection=self.name, exc_info=error)
        return self.attempts

    def ok(self) -> None:
        """A batch went through: end the run of faults (logged once)."""
        if self.attempts:
            log.info(
                "projection.recovered",
                projection=self.name,
                attempts=self.attempts,
                after_seconds=round(time.monotonic() - self.since, 3),
            )
            self.attempts = 0


class Runner:
    """Supervises one runner task per projection in this process."""

    def __init__(
        self,
        connect: Connect,
        head: LogHead,
        projections: Sequence[Projection],
        positions: Positions,
        settings: RunnerSettings | None = None,
        log_reader: LogReader | None = None,
    ) -> None:
        self._connect = connect
        # Shared by every runner (and the tree builder) of this process: see LogReader.
        self._log_reader = log_reader
        self._head = head
        self._projections = list(projections)
        self._positions = positions
        self._settings = settings or RunnerSettings()
        #: projection name -> True while this process holds its lock (for tests and status)
        self.active: dict[str, bool] = {p.name: False for p in projections}

    async def run(self) -> None:
        """Run every projection's supervisor until cancelled."""
        tasks = [
            asyncio.create_task(self._supervise(p), name=f"projection-{p.name}")
            for p in self._projections
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _supervise(self, projection: Projection) -> None:
        # Nothing but cancellation ends a supervisor: a fault of the database or the
        # connection (or a bug outside any handler) is retried with backoff, logged once
        # when it starts and once when it is over; only an event stops a projection.
        trouble = _Trouble(projection.name)
        while True:
            try:
                conn = await self._connect()
            except Exception as e:
                attempt = trouble.failed(e, transient=is_transient(e))
                await asyncio.sleep(backoff(attempt, self._settings))
                continue
            try:
                # One backend per projection: name it, so its cost shows in pg_stat_activity.
                await conn.execute(
                    "SELECT set_config('application_name', $1, false)",
                    f"coord projection {projection.name}",
                )
                while not await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", lock_key(projection.name)
                ):
                    await asyncio.sleep(self._settings.lock_retry)
                self.active[projection.name] = True
                log.info("projection.runner_started", projection=projection.name)
                await self._run_locked(conn, projection, trouble)
            except Exception as e:
                task = asyncio.current_task()
                # A cancelled wait can surface as another error (Condition's "Lock is not
                # acquired"): never let it keep a cancelled supervisor alive.
                if task is not None and task.cancelling():
                    raise
                attempt = trouble.failed(e, transient=_transient(conn, e))
                # A new connection: it also drops statements cached before a rebuild's swap.
                await asyncio.sleep(backoff(attempt, self._settings))
            finally:
                self.active[projection.name] = False
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    async def _run_locked(
        self, conn: asyncpg.Connection, projection: Projection, trouble: _Trouble
    ) -> None:
        name = projection.name
        # A restart retries a failed projection once: the fix may have been deployed.
        await conn.execute(
            "UPDATE projections SET state = 'running', last_error = NULL, failed_position = NULL "
            "WHERE name = $1 AND state = 'failed'",
            name,
        )
        while True:
            before = self._positions.get(name)
            position, advanced, state = await self.step(conn, projection)
            trouble.ok()
            if advanced:
                if position - before < self._settings.window and self._settings.batch_delay:
                    await asyncio.sleep(self._settings.batch_delay)
                continue
            if state == "failed":
                await asyncio.sleep(self._settings.poll_interval)
            else:
                await self._head.wait_beyond(position, self._settings.poll_interval)

    async def step(
        self, conn: asyncpg.Connection, projection: Projection, window: int | None = None
    ) -> tuple[int, bool, str]:
        """One batch: returns (position, whether it advanced, state)."""
        window = window or self._settings.window
        try:
            return await _batch(conn, projection, window, self._positions, self._log_reader)
        except HandlerFailed as failed:
            return await self._narrow_down(conn, projection, failed)

    async def _narrow_down(
        self, conn: asyncpg.Connection, projection: Projection, failed: HandlerFailed
    ) -> tuple[int, bool, str]:
        # Commit event by event up to the culprit, so the projection stops exactly there.
        while True:
            try:
                position, advanced, state = await _batch(
                    conn, projection, 1, self._positions, self._log_reader
                )
            except HandlerFailed as exact:
                await conn.execute(_FAIL, projection.name, repr(exact.error), exact.position)
                log.error(
                    "projection.failed",
                    projection=projection.name,
                    position=exact.position,
                    error=repr(exact.error),
                )
                return exact.position - 1, False, "failed"
            if not advanced or position >= failed.window_end:
                # Transient, or it passed this time: carry on with whole batches.
                return position, advanced, state


async def _batch(
    conn: asyncpg.Connection,
    projection: Projection,
    window: int,
    positions: Positions | None,
    log_reader: LogReader | None = None,
) -> tuple[int, bool, str]:
    async with conn.transaction():
        row = await conn.fetchrow(_LOCK_ROW, projection.name)
        if row is None:
            raise RuntimeError(f"projection {projection.name!r} has no row: run ensure() first")
        position, state, head = row["position"], row["state"], row["head"]
        if state == "failed" or head <= position:
            return position, False, state
        up_to = min(head, position + window)
        schema = schema_of(projection.name)
        skips = _skips_of_row(row)
        if log_reader is None:
            await apply_window(conn, projection, schema, position, up_to, skips)
        else:
            rows = await log_reader.read(position, up_to)
            batch = envelopes(projection, rows, up_to, skips=skips)
            await apply_batch(conn, projection, schema, batch, up_to)
        await conn.execute(_ADVANCE, projection.name, up_to)
    if positions is not None:
        positions.report(projection.name, up_to)
    return up_to, True, state


# --- rebuild and verify -----------------------------------------------------------------------


async def _replay(
    conn: asyncpg.Connection,
    projection: Projection,
    schema: str,
    after: int,
    until: Callable[[], Awaitable[int]],
    window: int,
    progress: Progress | None,
    *,
    track: bool,
    reader: asyncpg.Connection | None = None,
    lane: Lane | None = None,
) -> int:
    """Apply the log into ``schema`` from ``after`` until ``until()``; one commit per window.

    With a ``reader`` connection the next window is read and decoded while this one is
    applied, so a replay costs about max(read, apply) per window instead of their sum.
    With ``lane`` only that lane's streams (see ``rebuild``).
    """
    position = after
    ahead: tuple[int, asyncio.Task[list[Envelope]]] | None = None
    try:
        while True:
            target = await until()
            if position >= target:
                return position
            # Re-read each window: a skip recorded during a long replay counts from the
            # next window read on.
            skips = await skips_of(conn, projection.name)
            if ahead is not None:
                up_to, task = ahead
                ahead = None
                batch = await task
            else:
                up_to = min(target, position + window)
                batch = await load_window(reader or conn, projection, position, up_to, lane, skips)
            if reader is not None and up_to < target:
                next_to = min(target, up_to + window)
                ahead = (
                    next_to,
                    asyncio.create_task(
                        load_window(reader, projection, up_to, next_to, lane, skips)
                    ),
                )
            async with conn.transaction():
                await apply_batch(conn, projection, schema, batch, up_to)
                if track:
                    await conn.execute(
                        "UPDATE projections SET rebuild_position = $2 WHERE name = $1",
                        projection.name,
                        up_to,
                    )
            if progress is not None:
                progress(up_to, target)
            position = up_to
    finally:
        if ahead is not None:
            ahead[1].cancel()
            with contextlib.suppress(BaseException):
                await ahead[1]


@contextlib.asynccontextmanager
async def _exclusive(conn: asyncpg.Connection, name: str) -> AsyncIterator[None]:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _rebuild_key(name)):
        raise RuntimeError(f"a rebuild or verify of {name!r} is already running")
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _rebuild_key(name))


async def _replay_lanes(
    connect: Connect,
    projection: Projection,
    schema: str,
    target: int,
    window: int,
    lanes: int,
    progress: Progress | None,
) -> int:
    """Replay (0, target] in ``lanes`` concurrent lanes, each owning a share of the streams.

    Only for projections whose rows each derive from one stream's events (they declare
    ``replay_lanes``): the lanes then never touch the same rows, each lane keeps its
    streams in log order, and the slowest view's database work (such as computing
    tsvectors) runs on several server processes at once.
    """

    async def fixed() -> int:
        return target

    conns = [await connect() for _ in range(2 * lanes)]
    try:
        await asyncio.gather(
            *(
                _replay(
                    conns[2 * i],
                    projection,
                    schema,
                    0,
                    fixed,
                    window,
                    progress if i == 0 else None,
                    track=False,
                    reader=conns[2 * i + 1],
                    lane=(i, lanes),
                )
                for i in range(lanes)
            )
        )
    finally:
        for c in conns:
            await c.close()
    return target


async def rebuild(
    connect: Connect,
    projection: Projection,
    *,
    window: int = 5000,
    progress: Progress | None = None,
) -> int:
    """Replay the whole log into fresh tables, then swap them in atomically; return the position.

    The live tables keep serving (and the live runner keeps running) until the swap.
    """
    name = projection.name
    live, fresh, old = schema_of(name), schema_of(name, "_next"), schema_of(name, "_old")
    conn = await connect()
    try:
        async with _exclusive(conn, name):
            await conn.execute(f"DROP SCHEMA IF EXISTS {fresh} CASCADE")
            async with conn.transaction():
                await create_tables(conn, projection, fresh, indexes=False)
                previous = await conn.fetchval(
                    "SELECT state FROM projections WHERE name = $1 FOR UPDATE", name
                )
                await conn.execute(
                    "UPDATE projections SET state = 'rebuilding', rebuild_position = 0 "
                    "WHERE name = $1",
                    name,
                )
            try:
                head = functools.partial(committed_head, conn)
                position = 0
                lanes: int = getattr(projection, "replay_lanes", 1)
                if lanes > 1:
                    position = await _replay_lanes(
                        connect, projection, fresh, await head(), window, lanes, progress
                    )
                reader = await connect()
                try:
                    position = await _replay(
                        conn,
                        projection,
                        fresh,
                        position,
                        head,
                        window,
                        progress,
                        track=True,
                        reader=reader,
                    )
                finally:
                    await reader.close()
                await create_indexes(conn, projection, fresh)
                async with conn.transaction():
                    # Blocks the live runner's next batch until the swap is committed.
                    row = await conn.fetchrow(_LOCK_ROW, name)
                    target = await committed_head(conn)
                    await apply_window(
                        conn, projection, fresh, position, target, _skips_of_row(row)
                    )
                    await conn.execute(f"DROP SCHEMA IF EXISTS {old} CASCADE")
                    await conn.execute(f"ALTER SCHEMA {live} RENAME TO {old}")
                    await conn.execute(f"ALTER SCHEMA {fresh} RENAME TO {live}")
                    await conn.execute(f"DROP SCHEMA {old} CASCADE")
                    await conn.execute(
                        "UPDATE projections SET position = $2, state = 'running', "
                        "last_error = NULL, failed_position = NULL, rebuild_position = NULL, "
                        "ddl_checksum = $3, updated_at = now() WHERE name = $1 "
                        "RETURNING pg_notify('" + NOTIFY_CHANNEL + "', name || ':' || position)",
                        name,
                        target,
                        ddl_checksum(projection),
                    )
                if progress is not None:
                    progress(target, target)
                log.info("projection.rebuilt", projection=name, position=target)
                return target
            except BaseException:
                with contextlib.suppress(Exception):
                    if conn.is_closed():
                        # The rebuild's own connection died (and its lock with it): clean
                        # up on a new one, unless another rebuild has started meanwhile.
                        spare = await connect()
                        try:
                            await abandon_rebuild(spare, name)
                        finally:
                            await spare.close()
                    await conn.execute(f"DROP SCHEMA IF EXISTS {fresh} CASCADE")
                    await conn.execute(
                        "UPDATE projections SET state = $2, rebuild_position = NULL "
                        "WHERE name = $1 AND state = 'rebuilding'",
                        name,
                        previous if previous != "rebuilding" else "running",
                    )
                raise
    finally:
        await conn.close()


class RowDiff(msgspec.Struct, kw_only=True):
    """A row found on one side only: ``live`` (the served view) or ``replayed``."""

    table: str
    side: str
    row: msgspec.Raw


async def verify(
    connect: Connect,
    projection: Projection,
    *,
    window: int = 5000,
    progress: Progress | None = None,
    limit: int = 1000,
) -> tuple[int, list[RowDiff]]:
    """Replay into scratch tables up to the live position and diff them with the live ones.

    Returns the position compared at and the differing rows (at most ``limit``); an empty
    list is the proof that the view follows from the recorded events.
    """
    name = projection.name
    live, scratch = schema_of(name), schema_of(name, "_verify")
    conn = await connect()
    try:
        async with _exclusive(conn, name):
            await conn.execute(f"DROP SCHEMA IF EXISTS {scratch} CASCADE")
            await create_tables(conn, projection, scratch, indexes=False)
            try:

                async def live_position() -> int:
                    value: int = await conn.fetchval(
                        "SELECT position FROM projections WHERE name = $1", name
                    )
                    return value

                reader = await connect()
                try:
                    position = await _replay(
                        conn,
                        projection,
                        scratch,
                        0,
                        live_position,
                        window,
                        progress,
                        track=False,
                        reader=reader,
                    )
                finally:
                    await reader.close()
                diffs: list[RowDiff] = []
                async with conn.transaction():
                    # FOR SHARE holds the live runner still while the two are compared.
                    target: int = await conn.fetchval(
                        "SELECT position FROM projections WHERE name = $1 FOR SHARE", name
                    )
                    skips = await skips_of(conn, name)
                    await apply_window(conn, projection, scratch, position, target, skips)
                    for table in projection.tables:
                        for side, a, b in (("live", live, scratch), ("replayed", scratch, live)):
                            rows = await conn.fetch(
                                f"SELECT to_jsonb(d) FROM (SELECT * FROM {a}.{table} "
                                f"EXCEPT ALL SELECT * FROM {b}.{table}) d LIMIT $1",
                                limit - len(diffs),
                            )
                            diffs.extend(RowDiff(table=table, side=side, row=r[0]) for r in rows)
                return target, diffs
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute(f"DROP SCHEMA IF EXISTS {scratch} CASCADE")
    finally:
        await conn.close()
