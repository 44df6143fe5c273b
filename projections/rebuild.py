"""Rebuild: replay the whole log into fresh tables while the live ones serve, then swap.

The replay fills ``proj_<name>_next`` (in lanes where the projection allows it), builds its
indexes, then, under the projection's row lock (which holds the live runner still),
catches up the last events, swaps the schemas by renaming and drops the old one, in one
transaction. A rebuild that fails or dies leaves the live tables serving.
"""

from __future__ import annotations

import contextlib
import functools

import structlog

from events.store.leadership import Connect
from events.store.log_head import committed_head
from projections.base import Projection, create_indexes, create_tables, ddl_checksum, schema_of
from projections.checkpoints import LOCK_ROW, NOTIFY_CHANNEL, abandon_rebuild, skips_of_row
from projections.replay import Progress, exclusive, replay, replay_lanes
from projections.window import apply_window

log = structlog.get_logger("coord.projections")


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
        async with exclusive(conn, name):
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
                lanes = projection.replay_lanes
                if lanes > 1:
                    position = await replay_lanes(
                        connect, projection, fresh, await head(), window, lanes, progress
                    )
                reader = await connect()
                try:
                    position = await replay(
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
                    row = await conn.fetchrow(LOCK_ROW, name)
                    target = await committed_head(conn)
                    await apply_window(conn, projection, fresh, position, target, skips_of_row(row))
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
