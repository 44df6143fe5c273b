"""Tampering done directly in PostgreSQL is found by `coord verify`, at the right positions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from coord.cli import main
from events.audit.audit_log import AuditLog
from events.store.store import EventStore
from tests.integration.test_audit import SIGNER, append_many, running_builder, wait_for_tree

N = 40
Tamper = Callable[[asyncpg.Connection], Awaitable[None]]


async def seq_at(conn: asyncpg.Connection, position: int) -> int:
    """The internal event number at a log position."""
    seq: int = await conn.fetchval("SELECT seq FROM log WHERE position = $1", position)
    return seq


async def alter_payload(conn: asyncpg.Connection) -> None:
    """UPDATE one event's data."""
    await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
    await conn.execute(
        "UPDATE events SET data = '{\"i\": 999}' WHERE seq = $1", await seq_at(conn, 17)
    )


async def delete_row(conn: asyncpg.Connection) -> None:
    """DELETE one event and its log row."""
    await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
    await conn.execute("ALTER TABLE log DISABLE TRIGGER log_immutable")
    seq = await seq_at(conn, 10)
    await conn.execute("DELETE FROM log WHERE position = 10")
    await conn.execute("DELETE FROM events WHERE seq = $1", seq)


async def swap_pair(conn: asyncpg.Connection) -> None:
    """Exchange the events at positions 5 and 20."""
    await conn.execute("ALTER TABLE log DISABLE TRIGGER log_immutable")
    a, b = await seq_at(conn, 5), await seq_at(conn, 20)
    await conn.execute("DELETE FROM log WHERE position IN (5, 20)")
    await conn.execute("INSERT INTO log (position, seq) VALUES (5, $1), (20, $2)", b, a)


async def insert_row(conn: asyncpg.Connection) -> None:
    """Slip a forged event in at position 15, renumbering the later ones."""
    await conn.execute("ALTER TABLE log DISABLE TRIGGER log_immutable")
    later = await conn.fetch("SELECT position, seq FROM log WHERE position >= 15")
    await conn.execute("DELETE FROM log WHERE position >= 15")
    forged = await conn.fetchval(
        "INSERT INTO events (event_id, stream_id, version, type, data, metadata) "
        "VALUES (gen_random_uuid(), 'issue-forged', 1, 'Noted', '{\"i\": -1}', '{}') "
        "RETURNING seq"
    )
    await conn.executemany(
        "INSERT INTO log (position, seq) VALUES ($1, $2)",
        [(15, forged)] + [(r["position"] + 1, r["seq"]) for r in later],
    )


async def write_export(audit: AuditLog, path: Path, last: int) -> None:
    """What GET /v1/audit/export streams, written to a file."""
    with path.open("wb") as f:
        async for page in audit.export(1, last, page_size=7):
            f.write(b"".join(msgspec.json.encode(line) + b"\n" for line in page))


async def verify(tmp_path: Path, capsys: Any, audit: AuditLog) -> tuple[int, dict[str, Any]]:
    """Export up to the latest checkpoint and run `coord verify --json` on it."""
    head = await audit.checkpoint()
    assert head is not None
    (tmp_path / "checkpoint").write_text(head.note)
    (tmp_path / "vkey").write_text(SIGNER.vkey + "\n")
    await write_export(audit, tmp_path / "export.ndjson", head.tree_size)
    capsys.readouterr()
    code = main(
        [
            "verify",
            str(tmp_path / "export.ndjson"),
            "--checkpoint",
            str(tmp_path / "checkpoint"),
            "--vkey",
            str(tmp_path / "vkey"),
            "--json",
        ]
    )
    return code, msgspec.json.decode(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (None, {}),
        (alter_payload, {"altered": [17]}),
        (delete_row, {"missing": [10]}),
        (swap_pair, {"reordered": [5, 20]}),
        (insert_row, {"inserted": [15]}),
    ],
    ids=["untouched", "altered", "deleted", "swapped", "inserted"],
)
async def test_verify_reports_tampered_positions(
    store: EventStore,
    pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
    capsys: Any,
    tamper: Tamper | None,
    expected: dict[str, list[int]],
) -> None:
    """Each kind of tampering is reported at exactly its positions; the untouched log verifies."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await append_many(store, N)
        await wait_for_tree(audit, N)
    if tamper is not None:
        async with pool.acquire() as conn:
            await tamper(conn)
    code, report = await verify(tmp_path, capsys, audit)
    assert report["root_matches"] is True
    found = {k: report[k] for k in ("altered", "missing", "inserted", "reordered", "malformed")}
    assert {k: v for k, v in found.items() if v} == expected
    assert code == (0 if not expected else 1)
    assert report["ok"] is (not expected)


async def test_rewritten_tree_fails_the_signature_check(
    store: EventStore, pool: asyncpg.Pool, database_url: str, tmp_path: Path, capsys: Any
) -> None:
    """Rewriting an event *and* its stored leaf hash cannot reproduce the signed root."""
    audit = AuditLog(pool, SIGNER)
    async with running_builder(store, database_url):
        await append_many(store, 9)
        await wait_for_tree(audit, 9)
    async with pool.acquire() as conn:
        await alter_payload_at(conn, 3)
    code, report = await verify(tmp_path, capsys, audit)
    assert code == 1 and report["root_matches"] is False


async def alter_payload_at(conn: asyncpg.Connection, position: int) -> None:
    """Change an event and recompute its leaf hash in the tree (a careful forger)."""
    from events.audit.audit_log import event_leaf

    await conn.execute("ALTER TABLE events DISABLE TRIGGER events_immutable")
    await conn.execute("ALTER TABLE merkle_nodes DISABLE TRIGGER merkle_nodes_immutable")
    await conn.execute(
        "UPDATE events SET data = '{\"i\": 0}' WHERE seq = $1", await seq_at(conn, position)
    )
    row = await conn.fetchrow(
        "SELECT l.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, "
        "e.data, e.metadata, e.recorded_at, e.region_code "
        "FROM log l JOIN events e ON e.seq = l.seq WHERE l.position = $1",
        position,
    )
    await conn.execute(
        "UPDATE merkle_nodes SET hash = $1 WHERE level = 0 AND idx = $2",
        event_leaf(row),
        position - 1,
    )
