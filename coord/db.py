"""PostgreSQL connections, pools and schema migrations."""

from __future__ import annotations

import hashlib
from importlib import resources

import asyncpg
import structlog

from events.store.logged import init_connection

log = structlog.get_logger("coord.db")

# Migrations run per package in this order; within a package by file name (NNNN_name.sql).
# (name, package): a migration is recorded as "<name>/<file>" in schema_migrations. The event
# store's migrations moved to events/store/sql/ and keep the name "events" they were applied under.
MIGRATION_PACKAGES = (
    ("events", "events.store"),
    ("projections", "projections"),
    ("coord", "coord"),
)
MIGRATION_LOCK_KEY = 0x636F6F7264_00  # "coord" 0


class Connection(asyncpg.Connection):  # type: ignore[misc]
    """A connection that skips asyncpg's reset query on release to the pool.

    The reset (`UNLISTEN *; RESET ALL; ...`) costs a round trip per request;
    pooled connections here never LISTEN, SET or hold advisory locks (those
    live on dedicated connections), so there is nothing to reset.
    """

    def get_reset_query(self) -> str:
        return ""


async def connect(dsn: str, *, name: str = "coord", derived: bool = False) -> asyncpg.Connection:
    """A dedicated connection (for LISTEN, advisory locks, long reads).

    `name` becomes its `application_name`: pg_stat_activity (and an operator looking
    for what costs what) sees which part of coord each backend serves.

    `derived`: the connection writes only what can be derived again from the log
    (read models with their checkpoints, the Merkle tree), so its commits need not wait
    for the WAL flush (`synchronous_commit = off`). A crash may lose its last fraction
    of a second of work, table rows and checkpoint together, and it is redone from the
    log; it can never lose or reorder an event.
    """
    settings = {"application_name": name}
    if derived:
        settings["synchronous_commit"] = "off"
    conn = await asyncpg.connect(dsn, connection_class=Connection, server_settings=settings)
    await init_connection(conn)
    return conn


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 16, name: str = "coord http"
) -> asyncpg.Pool:
    """The request pool (`application_name` is `name`)."""
    pool = await asyncpg.create_pool(
        dsn,
        server_settings={"application_name": name},
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        connection_class=Connection,
    )
    assert pool is not None
    return pool


def migration_files() -> list[tuple[str, str]]:
    """All migrations as `(name, sql)` in the order they apply."""
    found: list[tuple[str, str]] = []
    for name, package in MIGRATION_PACKAGES:
        folder = resources.files(package) / "sql"
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                found.append((f"{name}/{entry.name}", entry.read_text(encoding="utf-8")))
    return found


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return their names.

    A session advisory lock makes processes that start together take turns;
    the second finds everything applied and does nothing.
    """
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["name"]: r["checksum"]
            for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
        }
        for name, sql in migration_files():
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if name in done:
                if done[name] != checksum:
                    log.warning("migration.changed_after_apply", name=name)
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", name, checksum
                )
            applied_now.append(name)
            log.info("migration.applied", name=name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """Names of migrations not yet applied (empty when the schema is current)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = set()
    if exists:
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
    return [name for name, _ in migration_files() if name not in done]
