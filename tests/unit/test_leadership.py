"""lead_forever's hooks, with a fake connection (the lock itself is PostgreSQL's)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from events.store.leadership import lead_forever


class FakeConn:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def execute(self, sql: str, *args: Any) -> None:
        self.log.append(("execute", sql, args))

    async def fetchval(self, sql: str, *args: Any) -> bool:
        self.log.append(("lock", args))
        return True

    async def close(self, timeout: float | None = None) -> None:
        self.log.append("close")


async def test_on_error_sees_the_connection_and_sets_the_wait() -> None:
    log: list[Any] = []
    attempts = 0
    errors: list[tuple[str, bool]] = []

    async def connect() -> FakeConn:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("refused")
        return FakeConn(log)

    async def lead(conn: Any) -> None:
        if attempts == 2:
            raise RuntimeError("lost it")
        await asyncio.Event().wait()  # lead until cancelled

    def on_error(error: Exception, conn: Any) -> float:
        errors.append((type(error).__name__, conn is None))
        return 0.0

    task = asyncio.create_task(
        lead_forever(
            connect,  # type: ignore[arg-type]
            42,
            lead,
            name="test",
            retry_interval=60.0,  # never waited: on_error sets the wait
            on_error=on_error,
            application_name="coord test",
            announce=False,
        )
    )
    for _ in range(100):
        await asyncio.sleep(0)
        if attempts >= 3:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert errors == [("OSError", True), ("RuntimeError", False)]
    assert ("execute", "SELECT set_config('application_name', $1, false)", ("coord test",)) in log
    assert log.count("close") == 2


async def test_a_cancel_surfacing_as_another_error_ends_it() -> None:
    async def connect() -> FakeConn:
        return FakeConn([])

    async def lead(conn: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("Lock is not acquired") from None

    task = asyncio.create_task(
        lead_forever(connect, 1, lead, name="test", retry_interval=0.0)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(task, 1.0)
