"""A real `coord serve` process for edge tests: raw sockets in, its whole log captured."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.conftest import free_port


class Served:
    """A running coord: its base URL, port and the file its stderr goes to."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> bytes:
        """Everything the process logged so far."""
        return self.log_path.read_bytes()


@contextlib.asynccontextmanager
async def coord_serve(
    database_url: str, home: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    """Run `coord serve` on a free port until the block ends (then SIGTERM, wait)."""
    env = {
        **os.environ,
        "COORD_DATABASE_URL": database_url,
        "COORD_HOME": str(home),
        "COORD_LOG_LEVEL": "info",
        "COORD_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    env.pop("COORD_DEMO", None)
    port = free_port()
    log_path = home / "coord.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coord",
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        served = Served(port, log_path)
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(f"{served.base}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("coord serve did not start: " + log_path.read_text())
            yield served
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def raw_exchange(port: int, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
