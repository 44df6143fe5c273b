"""`coord serve --workers N`: N HTTP processes on one port, plus one background process.

Python runs one core per process. The HTTP workers share the listening port
(SO_REUSEPORT: the kernel spreads connections) and leave the projection runners
and the Merkle tree builder to a separate `coord background` process, so that
catching up read models never delays a request on the same event loop. The
sequencer still competes in every process (advisory lock). Every process
migrates at start under the migration lock; the first does the work.

Failure modes, and what happens:

* A child dies (kill -9, a crash): the supervisor logs its pid and exit status or
  signal and starts it again after a backoff (0.5 s, doubling to 30 s, reset once a
  child has run for a minute); the others keep serving. If it led the sequencer,
  another worker takes the advisory lock within a second.
* A child refuses to start for a reason a restart cannot fix (an unsafe PostgreSQL,
  exit status `EX_CONFIG`): the supervisor stops every child and exits with it.
* The supervisor dies, even by SIGKILL: every child gets SIGTERM from the kernel
  (PR_SET_PDEATHSIG, Linux) and, as a backstop elsewhere, notices within a second
  that its parent changed; it shuts down, so a restart never adds a second set.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

import msgspec
import structlog

from coord.config import Config
from coord.embedded import EmbeddedPostgres
from coord.runtime import started_app

log = structlog.get_logger("coord.supervisor")

#: Exit status of a child that must not be restarted (sysexits.h EX_CONFIG).
EX_CONFIG = 78
#: Tells a child which process supervises it (it exits when that one is gone).
SUPERVISOR_ENV = "COORD_SUPERVISOR_PID"

_PR_SET_PDEATHSIG = 1
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
_STABLE_AFTER = 60.0


@dataclass
class _Child:
    """One slot: what to run, the process running it now, and its restart backoff."""

    role: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = _BACKOFF_FIRST
    restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        self.started = time.monotonic()
        self.restart_at = None
        log.info("supervisor.child_started", role=self.role, pid=self.proc.pid)


def exit_description(code: int) -> dict[str, object]:
    """A Popen return code as log fields: `exit_status`, or `signal` for a negative one."""
    if code < 0:
        try:
            return {"signal": signal.Signals(-code).name}
        except ValueError:
            return {"signal": -code}
    return {"exit_status": code}


def serve_many(config: Config, workers: int) -> int:
    """Run the processes until SIGTERM/SIGINT, restarting any that dies; then stop them all."""
    embedded: EmbeddedPostgres | None = None
    dsn = config.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(config.home / "pgdata")
        dsn = embedded.start()
    env = {**os.environ, "COORD_DATABASE_URL": dsn, SUPERVISOR_ENV: str(os.getpid())}
    # Flags reach the child processes as the environment they read.
    if config.node_id:
        env["COORD_NODE_ID"] = config.node_id
    if config.mode:
        env["COORD_MODE"] = config.mode
    if config.regions is not None:
        env["COORD_REGIONS"] = ",".join(config.regions)
    http_env = {k: v for k, v in env.items() if k != "COORD_DEMO"}  # demo data loads once
    base = [sys.executable, "-m", "coord"]
    serve = [*base, "serve", "--host", config.host, "--port", str(config.port)]
    children = [_Child("background", [*base, "background"], env)]
    children += [
        _Child(f"worker-{i}", [*serve, "--reuse-port", "--no-background"], http_env)
        for i in range(1, workers + 1)
    ]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    for child in children:
        child.start()
    try:
        while not stop.is_set():
            status = _tend(children)
            if status:
                break
            stop.wait(0.2)
    finally:
        _stop_all(children)
        if embedded is not None:
            embedded.stop()
    return status


def _tend(children: list[_Child]) -> int:
    """Restart children that died (after their backoff); non-zero: give up with this status."""
    now = time.monotonic()
    for child in children:
        if child.proc is not None and (code := child.proc.poll()) is not None:
            ran = now - child.started
            pid, child.proc = child.proc.pid, None
            if code == EX_CONFIG:
                log.error("supervisor.child_refused", role=child.role, pid=pid, exit_status=code)
                return EX_CONFIG
            if ran >= _STABLE_AFTER:
                child.backoff = _BACKOFF_FIRST
            log.error(
                "supervisor.child_died",
                role=child.role,
                pid=pid,
                ran_s=round(ran, 1),
                restart_in_s=child.backoff,
                **exit_description(code),
            )
            child.restart_at = now + child.backoff
            child.backoff = min(child.backoff * 2, _BACKOFF_MAX)
        if child.proc is None and child.restart_at is not None and now >= child.restart_at:
            child.start()
    return 0


def _stop_all(children: list[_Child]) -> None:
    procs = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def die_with_supervisor() -> None:
    """In a child of `serve_many`: make sure this process ends when its supervisor does.

    The kernel sends SIGTERM when the parent dies (Linux PR_SET_PDEATHSIG); a thread
    polling the parent's pid covers other systems and the race before prctl took effect.
    Both end in SIGTERM, so the child shuts down as gracefully as on `kill`.
    """
    text = os.environ.get(SUPERVISOR_ENV)
    if not text:
        return
    supervisor = int(text)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the poll remains
            pass

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(1.0)
        log.error("supervisor.gone", supervisor_pid=supervisor)
        os.kill(os.getpid(), signal.SIGTERM)
        # A shutdown that hangs must still end: graceful has 20 s.
        time.sleep(20.0)
        os._exit(1)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def run_background(config: Config) -> int:
    """`coord background`: projections, tree builder and sequencer, no HTTP, until signalled."""

    config = msgspec.structs.replace(config, sequence=False)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        async with started_app(config):
            await done.wait()

    asyncio.run(main())
    return 0
