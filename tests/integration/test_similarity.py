"""The in-memory similarity join groups exactly what PostgreSQL's pg_trgm `%` connects."""

from __future__ import annotations

import random
import re
from typing import Any

import asyncpg
import pytest

from coord import demo
from projections.similarity import similar_groups, similarity, trigram_sets

REGIONS = ["Kota Kediri", "Kabupaten Kediri", "Kota Surabaya", "Kabupaten Malang",
           "Kota Blitar", "Kabupaten Jember", "Kota Semarang", "Kabupaten Aceh Besar"]  # fmt: skip


def titles() -> list[str]:
    """Real sentences of the seed article (as the demo data holds them), their fragments
    and near-copies, and a dense family of "Masalah X di <region>" titles (the shape that
    defeated the SQL join)."""
    rng = random.Random(7)
    text = " ".join(_strings([demo.KEDIRI_HEARING, demo.KEDIRI_ISSUES, demo.TEMPLATES]))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?,])\s+", text) if len(s.strip()) > 20]
    assert len(sentences) > 20
    out = set()
    for s in sentences[:60]:
        words = s.split()
        out.add(" ".join(words[:8]))
        out.add(" ".join(words[: rng.randint(3, 12)]))
        if len(words) > 4:
            dropped = words[:]
            del dropped[rng.randrange(len(dropped))]
            out.add(" ".join(dropped[:10]))
    for region in REGIONS:
        for topic in ("honorarium KPPS", "logistik pemilu", "netralitas ASN", "DPT ganda"):
            out.add(f"Masalah {topic} di {region}")
    out.update({"", "--", "2024", "KPU", "kpu"})
    return sorted(out)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if len(value) > 20 else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


async def reference_groups(conn: asyncpg.Connection, ts: list[str], t: float) -> list[list[str]]:
    """Connected groups from every pair PostgreSQL's `%` accepts (the old, quadratic way)."""
    await conn.execute("SELECT set_config('pg_trgm.similarity_threshold', $1, false)", str(t))
    pairs = await conn.fetch(
        "SELECT a, b FROM unnest($1::text[]) a, unnest($1::text[]) b WHERE a < b AND a % b", ts
    )
    parent = {x: x for x in ts}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for x in ts:
        groups.setdefault(find(x), []).append(x)
    return sorted(groups.values())


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.4, 0.55, 0.8, 1.0])
async def test_groups_equal_pg_trgm(pool: asyncpg.Pool, threshold: float) -> None:
    """Same groups as PostgreSQL's own operator, and the same similarity values."""
    ts = titles()
    async with pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        grams = trigram_sets(
            await conn.fetch("SELECT t, show_trgm(t) FROM unnest($1::text[]) AS t", ts)
        )
        expected = await reference_groups(conn, ts, threshold)
        sample = ts[:: max(1, len(ts) // 15)]
        pg = await conn.fetch(
            "SELECT a, b, similarity(a, b) FROM unnest($1::text[]) a, unnest($1::text[]) b",
            sample,
        )
    assert similar_groups(grams, threshold) == expected
    assert any(len(g) > 3 for g in expected) or threshold > 0.5  # the test has substance
    for a, b, value in pg:
        assert similarity(grams[a], grams[b]) == pytest.approx(value, abs=1e-7), (a, b)
