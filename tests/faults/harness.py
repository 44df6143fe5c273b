"""The fault suite's moving parts: a PostgreSQL it can stop and freeze, coord processes
it can kill, and a load whose every append is logged for the history checker.

Everything listens on loopback only; every fault is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from coord.embedded import EmbeddedPostgres
from tests.api.payloads import hearing_scheduled, statement
from tests.conftest import free_port


class Postgres:
    """An embedded PostgreSQL with default (safe) durability that a test may stop or freeze."""

    def __init__(self, root: Path, settings: dict[str, str] | None = None) -> None:
        self.embedded = EmbeddedPostgres(root / "pgdata", settings=settings)
        self.pgdata = self.embedded.pgdata
        self.dsn = ""
        #: The small filesystem the database's tables live on (see `use_small_disk`).
        self.disk: Path | None = None
        self._ballast: Path | None = None

    def start(self) -> str:
        """Initialise and start; the connection URL (a socket, no TCP port)."""
        self.dsn = self.embedded.start()
        return self.dsn

    def mount_small_disk(self, mount: Path, size_mb: int) -> bool:
        """Mount a tmpfs of `size_mb` MiB at `mount` for `use_small_disk`; False if this
        machine does not let us (not root)."""
        if os.geteuid() != 0:
            return False
        mount.mkdir(parents=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)],
            capture_output=True,
        )
        if done.returncode != 0:
            return False
        self.disk = mount
        owner = pwd.getpwnam("embedded_postgres")
        os.chown(mount, owner.pw_uid, owner.pw_gid)
        return True

    async def use_small_disk(self) -> None:
        """Create a database whose tables live on the mounted small disk; `dsn` then names it.

        A tablespace, not the whole data directory: the WAL stays on the big disk, so a
        full disk refuses writes to tables and indexes (SQLSTATE 53100) as a full data
        volume does, rather than making PostgreSQL panic over its WAL.
        """
        assert self.disk is not None
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f"CREATE TABLESPACE small LOCATION '{self.disk}'")
            await conn.execute("CREATE DATABASE coord_faults TABLESPACE small")
        finally:
            await conn.close()
        self.dsn = self.dsn.replace("/postgres?", "/coord_faults?", 1)

    def fill_disk(self) -> int:
        """Fill the small disk to the last byte with a ballast file; its size in bytes."""
        assert self.disk is not None
        self._ballast = self.disk / "ballast"
        free = shutil.disk_usage(self.disk).free
        with self._ballast.open("wb") as f:
            # All but the last MiB at once, then the rest in pages until the disk says no
            # (PostgreSQL may have taken some of that MiB meanwhile: the pages then stop early).
            with contextlib.suppress(OSError):
                os.posix_fallocate(f.fileno(), 0, max(free - 2**20, 0))
        with self._ballast.open("ab", buffering=0) as f:
            with contextlib.suppress(OSError):
                while f.write(b"\0" * 4096):
                    pass
        return self._ballast.stat().st_size

    def free_disk(self) -> None:
        """Remove the ballast: space is back."""
        assert self._ballast is not None
        self._ballast.unlink()
        self._ballast = None

    def unmount(self) -> None:
        """Unmount the small disk (after the server stopped)."""
        if self.disk is not None:
            subprocess.run(["umount", "-l", str(self.disk)], check=False)
            self.disk = None

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(list(args), pgdata=self.pgdata, user=user, timeout=60)

    def stop_hard(self) -> None:
        """`pg_ctl stop -m immediate`: no checkpoint, crash recovery at the next start."""
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def restart(self) -> None:
        """Start again on the same socket directory (the URL stays valid)."""
        socket_dir = self.dsn.split("host=", 1)[1]
        log = str(self.pgdata / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", log, "start")

    def processes(self) -> list[psutil.Process]:
        """The postmaster and all its children."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        master = psutil.Process(pid)
        return [master, *master.children(recursive=True)]

    def signal_all(self, sig: signal.Signals) -> None:
        """Send `sig` to every process of the server (SIGSTOP freezes it, SIGCONT thaws)."""
        for proc in self.processes():
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    def close(self) -> None:
        """Stop the server for good (it is deleted with the test's directory)."""
        self.embedded.stop()


class Coord:
    """`coord serve` as a subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 0, *, background: bool = True) -> None:
        self.env = env
        self.workers = workers
        #: False: HTTP only, no projection runners nor tree builder (`--no-background`).
        self.background = background
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(env["COORD_HOME"]) / f"coord-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (does not wait; see `wait_ready`)."""
        argv = [sys.executable, "-m", "coord", "serve", "--port", str(self.port)]
        if self.workers:
            argv += ["--workers", str(self.workers)]
        if not self.background:
            argv.append("--no-background")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=out)

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until /readyz answers 200; the seconds it took."""
        start = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - start < timeout:
                try:
                    async with http.get(
                        f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(2)
                    ) as r:
                        if r.status == 200:
                            return time.monotonic() - start
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"coord not ready within {timeout}s; log:\n{self.log.read_text()}")

    def kill(self) -> None:
        """kill -9."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (kill -9 after 30 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the load and its history --------------------------------------------------


@dataclass
class Op:
    """One logical append (retries of it share its ids) and what became of it."""

    stream: str
    expected: int
    event_ids: list[str]
    #: "ok" (201/200 with positions), "failed" (a definite refusal: 4xx), "indeterminate"
    #: (timeout, connection error, 5xx: it may or may not have been written).
    outcome: str = "invoked"
    first_position: int | None = None
    first_version: int | None = None
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)
    retry_after: list[str] = field(default_factory=list)


@dataclass
class History:
    """Every append the load invoked, in order."""

    ops: list[Op] = field(default_factory=list)
    #: (monotonic time, True if the append succeeded) per attempt, for recovery times.
    attempts: list[tuple[float, bool]] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """Number of logical appends that ended as `outcome`."""
        return sum(1 for op in self.ops if op.outcome == outcome)


class Load:
    """`writers` concurrent clients, each appending to its own streams until stopped.

    An append that ends indeterminate is retried with the same event ids and the same
    expected version (idempotent), until it is acknowledged or refused, or the load's
    retry budget after `stop()` runs out (then it stays indeterminate).
    """

    def __init__(self, url: str, token: str, writers: int = 6, timeout: float = 5.0) -> None:
        self.url = url
        self.token = token
        self.writers = writers
        self.timeout = timeout
        self.history = History()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the writers."""
        self._tasks = [asyncio.create_task(self._writer()) for _ in range(self.writers)]

    async def stop(self, settle: float = 30.0) -> History:
        """Stop starting new appends; let pending retries settle (bounded)."""
        self._stop.set()
        try:
            async with asyncio.timeout(settle):
                await asyncio.gather(*self._tasks)
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.history

    async def _writer(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            while not self._stop.is_set():
                stream = f"hearing-{uuid.uuid4()}"
                version = 0
                for _ in range(8):
                    if self._stop.is_set():
                        break
                    op = Op(stream, version, [str(uuid.uuid4()) for _ in range(1 + version % 2)])
                    self.history.ops.append(op)
                    await self._append(http, op)
                    if op.outcome != "ok":
                        break  # the stream's version is unknown (or refused): a new stream
                    version += len(op.event_ids)

    async def _append(self, http: aiohttp.ClientSession, op: Op) -> None:
        if op.expected == 0:
            events = [{"type": "HearingScheduled", "data": hearing_scheduled()}]
            events += [{"type": "StatementRecorded", "data": statement()}] * (len(op.event_ids) - 1)
        else:
            events = [{"type": "StatementRecorded", "data": statement()}] * len(op.event_ids)
        body: dict[str, Any] = {
            "expected_version": op.expected,
            "events": [{**e, "id": i} for e, i in zip(events, op.event_ids, strict=True)],
        }
        deadline = None
        while True:
            op.attempts += 1
            try:
                async with http.post(f"{self.url}/v1/streams/{op.stream}/events", json=body) as r:
                    op.statuses.append(r.status)
                    if r.status == 503 and "Retry-After" in r.headers:
                        op.retry_after.append(r.headers["Retry-After"])
                    if r.status in (200, 201):
                        got = await r.json()
                        op.outcome = "ok"
                        op.first_position = got["first_position"]
                        op.first_version = got["first_version"]
                        self.history.attempts.append((time.monotonic(), True))
                        return
                    if 400 <= r.status < 500:
                        op.outcome = "failed"
                        self.history.attempts.append((time.monotonic(), False))
                        return
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                op.statuses.append(0)
            op.outcome = "indeterminate"
            self.history.attempts.append((time.monotonic(), False))
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + 20
                if time.monotonic() > deadline:
                    return
            await asyncio.sleep(0.2)


def recovery_time(history: History, fault_end: float) -> float | None:
    """Seconds from the end of a fault to the first acknowledged append after it."""
    after = [t for t, ok in history.attempts if ok and t >= fault_end]
    return None if not after else round(min(after) - fault_end, 2)
