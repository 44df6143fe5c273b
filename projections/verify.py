"""Verify: replay into scratch tables up to the live position and diff them with the live ones.

Every table is compared with ``EXCEPT ALL`` both ways; no differing row is the proof that
the served view follows from the recorded events.
"""

from __future__ import annotations

import contextlib

import msgspec

from events.store.leadership import Connect
from projections.base import Projection, create_tables, schema_of
from projections.replay import Progress, exclusive, replay
from projections.skips import skips_of
from projections.window import apply_window


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
        async with exclusive(conn, name):
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
                    position = await replay(
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
