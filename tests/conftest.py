"""Fixtures: a real PostgreSQL for the whole run, and a fresh database per test.

The server is `COORD_TEST_DATABASE_URL` if set, else a testcontainers
PostgreSQL if a Docker daemon answers, else an embedded PostgreSQL from PyPI.
Each test gets its own database, copied from a migrated template (fast, isolated).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from coord import db
from coord.app import create_app
from coord.config import Config
from events.store.log_head import LogHead
from events.store.sequencer import Sequencer
from events.store.store import EventStore

# The test server runs with synchronous_commit = off (see template_db) for speed, which
# coord refuses unless told: tests keep throw-away data. Subprocesses inherit this; the
# fault suite (tests/faults) runs a safe server and removes it.
os.environ.setdefault("COORD_ALLOW_UNSAFE_DURABILITY", "1")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _docker_answers() -> bool:
    """True if a Docker daemon answers a ping on its socket (without the docker SDK's leaks)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote daemon: let testcontainers try it
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except OSError:
        return False


def _scratch_dir() -> str | None:
    """Where the embedded test server keeps its files: memory (/dev/shm) when there is room.

    Every test creates and drops a database of ~300 files; on ext4 the inode allocator's
    scan of recently deleted inodes made each CREATE DATABASE cost ~250 ms of CPU, over a
    third of the suite's time. tmpfs has no such scan. Falls back to the default temp dir.
    """
    shm = Path("/dev/shm")
    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return None
    return str(shm) if free >= 4 << 30 and os.access(shm, os.W_OK) else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server (superuser) for the whole test run."""
    if url := os.environ.get("COORD_TEST_DATABASE_URL"):
        yield url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from coord.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="coord-test-", dir=_scratch_dir()) as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata", delete_on_stop=True)
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def template_db(pg_server: str) -> AsyncIterator[str]:
    """Name of a migrated database that every test database is copied from."""
    name = f"coord_template_{os.getpid()}"
    admin = await asyncpg.connect(pg_server)
    try:
        # Durability is irrelevant for throwaway test data; commits get much cheaper.
        await admin.execute("ALTER SYSTEM SET synchronous_commit = off")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await db.connect(with_database(pg_server, name))
        try:
            await db.migrate(conn)
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


_counter = itertools.count()


@pytest.fixture
async def database_url(pg_server: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"coord_test_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield with_database(pg_server, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A request pool on the test database."""
    p = await db.create_pool(database_url, min_size=1, max_size=20)
    yield p
    await p.close()


@contextlib.asynccontextmanager
async def running_store(pool: asyncpg.Pool, dsn: str, **kw: Any) -> AsyncIterator[EventStore]:
    """An EventStore with its log head and sequencer running as background tasks."""

    async def connect() -> asyncpg.Connection:
        return await db.connect(dsn)

    head = LogHead(connect)
    sequencer = Sequencer(connect, head, retry_interval=0.1)
    store = EventStore(pool, head, sequencer, **kw)
    tasks = [asyncio.create_task(head.run()), asyncio.create_task(sequencer.run())]
    try:
        yield store
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


@pytest.fixture
async def store(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[EventStore]:
    """A running event store on a fresh database."""
    async with running_store(pool, database_url) as s:
        yield s


@pytest.fixture
def config(database_url: str) -> Config:
    """Service configuration pointing at the test database."""
    return Config(
        database_url=database_url,
        pool_min_size=1,
        pool_max_size=10,
        allow_unsafe_durability=True,
    )


@pytest.fixture
async def client(config: Config, aiohttp_client: Any) -> Any:
    """An HTTP test client for a coord app on the test database."""
    return await aiohttp_client(create_app(config))


@pytest.fixture
def token_for() -> Any:
    """`await token_for(client, role, regions)` issues a real token through the app; returns it."""

    # Names are unique among live tokens: the first of a role is "test <role>", then "... 2".
    made: dict[str, int] = {}
    named: dict[str, int] = {}

    async def make(
        client: Any, role: str, regions: list[str] | None = None, name: str | None = None
    ) -> str:
        from coord.keys import TOKEN_SERVICE

        made[role] = made.get(role, 0) + 1
        default = f"test {role}" + (f" {made[role]}" if made[role] > 1 else "")
        if name is not None:
            # A test that asks for the same name twice gets "<name> 2" the second time.
            named[name] = named.get(name, 0) + 1
            if named[name] > 1:
                name = f"{name} {named[name]}"
        issued = await client.server.app[TOKEN_SERVICE].issue(
            role=role, name=name or default, regions=regions or []
        )
        return str(issued.token)

    return make


def free_port() -> int:
    """A TCP port nobody listens on right now (for `coord serve` subprocesses)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


async def run_coord(env: dict[str, str], *args: str) -> str:
    """Run the `coord` CLI in a subprocess with `env`; its stdout (fails on a non-zero exit)."""
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coord",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def cli_token(env: dict[str, str], role: str, name: str, region: str | None = None) -> str:
    """Mint a token with `coord token create`; the token (its output's last line)."""
    args = ["token", "create", "--role", role, "--name", name]
    if region is not None:
        args += ["--region", region]
    return (await run_coord(env, *args)).strip().splitlines()[-1]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/faults (issue 13) runs only from `make test-faults` (COORD_FAULTS=1)."""
    if collection_path.name == "faults" and os.environ.get("COORD_FAULTS") != "1":
        return True
    return None
