"""Refuse to acknowledge appends on a PostgreSQL that may lose them.

A `201` promises the events are committed and flushed to the WAL on disk. Three
server settings break that promise silently, and a crash then loses acknowledged
events and hands their positions to others (issue 13):

* `fsync = off`: the WAL is never forced to disk; a power loss or kernel crash
  loses or corrupts anything recent.
* `synchronous_commit = off`: a commit returns before its WAL is flushed; a crash
  loses the last commits that were already acknowledged.
* `full_page_writes = off`: a page torn by a crash mid-write cannot be repaired
  from the WAL; the database may be corrupt after recovery.

coord reads them at start on a connection like the ones that write appends (the
per-session `synchronous_commit = off` of derived writers, coord/db.py, is not
among them: what they write is derived again from the log after a crash).
"""

from __future__ import annotations

import asyncpg
import msgspec

#: The opt-out, for throw-away benchmarks and tests.
OPT_OUT = "COORD_ALLOW_UNSAFE_DURABILITY"

SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")

_WHY = {
    "fsync": "the WAL is never forced to disk: a crash loses or corrupts acknowledged events",
    "synchronous_commit": "a commit returns before its WAL is flushed: a crash loses "
    "events already answered 201",
    "full_page_writes": "a page torn by a crash cannot be repaired: the database may "
    "be corrupt after recovery",
}


class Durability(msgspec.Struct, frozen=True):
    """What the server does with a commit, and whether coord accepted it."""

    settings: dict[str, str]
    #: One line per unsafe setting: which, its value, and what it risks.
    unsafe: list[str]
    #: True if the operator allowed an unsafe server explicitly (`COORD_ALLOW_UNSAFE_DURABILITY`).
    allowed_unsafe: bool

    @property
    def safe(self) -> bool:
        """No setting puts acknowledged appends at risk."""
        return not self.unsafe


class UnsafeDurability(RuntimeError):
    """The server may lose acknowledged appends and the operator did not opt out."""


def judge(settings: dict[str, str]) -> list[str]:
    """The unsafe settings among `settings` (name -> value), each with its risk."""
    unsafe = []
    for name in SETTINGS:
        value = settings.get(name)
        if value == "off":
            unsafe.append(f"{name} = off: {_WHY[name]}")
    return unsafe


async def read_durability(conn: asyncpg.Connection, *, allow_unsafe: bool) -> Durability:
    """Read the settings on `conn`; raise UnsafeDurability unless safe or `allow_unsafe`."""
    rows = await conn.fetch(
        "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", list(SETTINGS)
    )
    settings = {r["name"]: r["setting"] for r in rows}
    unsafe = judge(settings)
    if unsafe and not allow_unsafe:
        raise UnsafeDurability(
            "refusing to serve: this PostgreSQL may lose acknowledged appends. "
            + "; ".join(unsafe)
            + f". Turn the setting on, or set {OPT_OUT}=1 for a throw-away database."
        )
    return Durability(settings=settings, unsafe=unsafe, allowed_unsafe=bool(unsafe))
