"""The projection runner: feed read models from the global log, exactly once, in order.

* **One transaction per batch** (projections/checkpoints.py): lock the projection's row,
  read the log after its position, apply the window (projections/window.py), move the
  position, commit. In coord the runners of a process read through one ``LogReader``
  (each window of the log read once for all of them and the tree builder); the log below
  a committed head never changes, so it does not matter which connection read it.
* **One runner per projection** across all coord processes: ``lead_forever``
  (events/store/leadership.py) holds the projection's session advisory lock on the
  runner's dedicated connection. If that process or connection dies, PostgreSQL drops the
  lock and another process's supervisor takes it within ``lock_retry`` seconds.
* **Woken by LISTEN/NOTIFY** through the process's ``LogHead``; ``poll_interval`` is the
  fallback. Commits are reported to :class:`~projections.positions.Positions`.
* **A failing handler stops its projection only**: the batch is retried event by event to
  commit everything before the culprit, then the projection is marked ``failed`` at that
  position with the error. Others keep running. A rebuild (or a restart, which retries
  once) clears it. Faults of the database or the connection are retried with backoff.
* Memory stays flat: the log is read in windows of ``window`` positions, never loaded.

Rebuild and verify are in projections/rebuild.py and projections/verify.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from events.store.leadership import Connect, lead_forever
from events.store.log_head import LogHead
from events.store.log_reader import LogReader
from projections.base import Projection, ddl_checksum, schema_of
from projections.checkpoints import ADVANCE, FAIL, LOCK_ROW, lock_key, skips_of_row
from projections.failures import is_transient
from projections.positions import Positions
from projections.rebuild import rebuild
from projections.window import (
    HandlerFailed,
    apply_batch,
    apply_window,
    envelopes,
    transient,
)

log = structlog.get_logger("coord.projections")


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
        name = projection.name
        trouble = _Trouble(name)

        def leading(now: bool) -> None:
            self.active[name] = now
            if now:
                log.info("projection.runner_started", projection=name)

        def failed(error: Exception, conn: asyncpg.Connection | None) -> float:
            fault = is_transient(error) if conn is None else transient(conn, error)
            # Then a new connection: it also drops statements cached before a rebuild's swap.
            return backoff(trouble.failed(error, transient=fault), self._settings)

        async def lead(conn: asyncpg.Connection) -> None:
            await self._run_locked(conn, projection, trouble)

        await lead_forever(
            self._connect,
            lock_key(name),
            lead,
            name="projection",
            retry_interval=self._settings.lock_retry,
            on_change=leading,
            on_error=failed,
            # One backend per projection: named, so its cost shows in pg_stat_activity.
            application_name=f"coord projection {name}",
            announce=False,
        )

    async def _run_locked(
        self, conn: asyncpg.Connection, projection: Projection, trouble: _Trouble
    ) -> None:
        name = projection.name
        await self._upgrade(conn, projection)
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

    async def _upgrade(self, conn: asyncpg.Connection, projection: Projection) -> None:
        """Rebuild tables made by another version of the projection before applying to them.

        A new version whose DDL differs (a column, an index) must not apply events to the old
        tables, and its views would fail on them: the runner that leads it rebuilds first
        (online: the old tables serve until the swap; a view needing what they lack answers
        503 meanwhile). A rebuild an operator already started is waited for (the error
        backs off and the lead is retried, by when the checksum matches).
        """
        stored = await conn.fetchval(
            "SELECT ddl_checksum FROM projections WHERE name = $1", projection.name
        )
        if stored is None or stored == ddl_checksum(projection):
            return
        log.warning("projection.upgrading", projection=projection.name, hint="rebuilding")
        started = time.monotonic()
        position = await rebuild(self._connect, projection, window=self._settings.window)
        log.info(
            "projection.upgraded",
            projection=projection.name,
            position=position,
            seconds=round(time.monotonic() - started, 1),
        )

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
                await conn.execute(FAIL, projection.name, repr(exact.error), exact.position)
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
        row = await conn.fetchrow(LOCK_ROW, projection.name)
        if row is None:
            raise RuntimeError(f"projection {projection.name!r} has no row: run ensure() first")
        position, state, head = row["position"], row["state"], row["head"]
        if state == "failed" or head <= position:
            return position, False, state
        up_to = min(head, position + window)
        schema = schema_of(projection.name)
        skips = skips_of_row(row)
        if log_reader is None:
            await apply_window(conn, projection, schema, position, up_to, skips)
        else:
            rows = await log_reader.read(position, up_to)
            batch = envelopes(projection, rows, up_to, skips=skips)
            await apply_batch(conn, projection, schema, batch, up_to)
        await conn.execute(ADVANCE, projection.name, up_to)
    if positions is not None:
        positions.report(projection.name, up_to)
    return up_to, True, state
