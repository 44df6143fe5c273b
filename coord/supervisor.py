"""`coord serve --workers N`: N HTTP processes on one port, plus one background process.

Python runs one core per process. The HTTP workers share the listening port
(SO_REUSEPORT: the kernel spreads connections) and leave the projection runners
and the Merkle tree builder to a separate `coord background` process, so that
catching up read models never delays a request on the same event loop. The
sequencer still competes in every process (advisory lock). Every process
migrates at start under the migration lock; the first does the work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from types import FrameType

import msgspec

from coord.config import Config
from coord.embedded import EmbeddedPostgres
from coord.runtime import started_app


def serve_many(config: Config, workers: int) -> int:
    """Run the processes until SIGTERM/SIGINT (or one of them dies); then stop them all."""
    embedded: EmbeddedPostgres | None = None
    dsn = config.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(config.home / "pgdata")
        dsn = embedded.start()
    env = {**os.environ, "COORD_DATABASE_URL": dsn}
    # Flags reach the child processes as the environment they read.
    if config.node_id:
        env["COORD_NODE_ID"] = config.node_id
    if config.mode:
        env["COORD_MODE"] = config.mode
    if config.regions is not None:
        env["COORD_REGIONS"] = ",".join(config.regions)
    http_env = {k: v for k, v in env.items() if k != "COORD_DEMO"}  # demo data loads once
    base = [sys.executable, "-m", "coord"]
    procs = [subprocess.Popen([*base, "background"], env=env)]
    for _ in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    *base,
                    "serve",
                    "--host",
                    config.host,
                    "--port",
                    str(config.port),
                    "--reuse-port",
                    "--no-background",
                ],
                env=http_env,
            )
        )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set() and all(p.poll() is None for p in procs):
        stop.wait(0.5)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    if embedded is not None:
        embedded.stop()
    return 0 if stop.is_set() else 1


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
