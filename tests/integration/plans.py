"""Seeing what a read model's query does: the statements it sends, and their plans."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


class Capturing:
    """A connection that keeps the statements it fetches with and counts the ones it
    executes (pass it where a read model takes a connection)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.fetched: list[tuple[Any, ...]] = []
        self.executes = 0

    @property
    def fetches(self) -> int:
        return len(self.fetched)

    async def execute(self, *args: Any) -> str:
        self.executes += 1
        return await self.conn.execute(*args)  # type: ignore[no-any-return]

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        self.fetched.append(args)
        return await self.conn.fetch(*args)  # type: ignore[no-any-return]


async def plan_nodes(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Every node of the statement's executed plan (EXPLAIN ANALYZE), depth first."""
    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)

    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in walk(child))]

    return walk(json.loads(plan)[0]["Plan"])
