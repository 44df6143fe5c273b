"""Event ids the server generates: UUID version 7 (RFC 9562), time-ordered.

An event id is opaque to clients, and unique in the store (a unique index guards it,
and the ``statement:<event id>`` search documents are keyed by it). With random
(version 4) ids every insert lands on a random leaf of those indexes: on a log larger
than memory each one dirties a different page, and after every checkpoint writes it
whole to the WAL. Version 7 ids start with the millisecond they were made, so new
entries land next to each other at the end of the index. The remaining 74 bits are
random, so ids stay unguessable and unique across processes and nodes.

On a federated node an event id a client chooses is **scoped to the home node**
(`home_scoped`): the event is stored under ``uuid5(HOME_NAMESPACE, "<node id>\n<id>")``.
Two home nodes therefore never store the same id, whatever their clients send: scoped
ids of different nodes differ (SHA-1 would have to collide), and a scoped id (version 5)
never equals an id the server generates (version 7). A retry of the same id at the same
node maps to the same stored id, so it stays idempotent.

Ids a client sends (event ids, entity ids in paths) are taken in one spelling only,
the lowercase canonical form `str(UUID(...))` gives: `CanonicalUUID` for decoded
bodies, `parse_canonical_uuid` for paths and query parameters.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from typing import Annotated

import msgspec

from events.domain.streams import is_canonical_uuid

#: A UUID as clients must spell it: lowercase, 8-4-4-4-12 hex digits (no braces, no urn:).
CanonicalUUID = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="A UUID in lowercase canonical form (8-4-4-4-12 hex digits).",
        examples=["0b8e3a52-61d4-4c6e-9a7e-2f1d5c3b9a10"],
    ),
]


def parse_canonical_uuid(text: str) -> uuid.UUID | None:
    """`text` as a UUID if it is in lowercase canonical form, else None (no other spelling)."""
    return uuid.UUID(text) if is_canonical_uuid(text) else None


#: Root of home-scoped event ids: uuid5(NAMESPACE_URL, "urn:coord:home-scoped"). It never
#: changes (stored ids depend on it).
HOME_NAMESPACE = uuid.UUID("9e5f4cf0-a7f3-5d97-b85d-78d8ecebab53")


def home_scoped(node_id: str, given: uuid.UUID) -> uuid.UUID:
    """The id under which a federated node `node_id` stores an event its client sent as `given`."""
    return uuid.uuid5(HOME_NAMESPACE, f"{node_id}\n{given}")


_VERSION = 0x7 << 76  # the version nibble of a 128-bit UUID
_VARIANT = 0b10 << 62  # RFC 9562 variant bits


def new_event_ids(count: int) -> list[uuid.UUID]:
    """``count`` fresh version 7 UUIDs (one clock read and one urandom call for all)."""
    ms = time.time_ns() // 1_000_000
    head = (ms & 0xFFFF_FFFF_FFFF) << 80 | _VERSION
    noise = os.urandom(10 * count)
    out = []
    for i in range(0, 10 * count, 10):
        r = int.from_bytes(noise[i : i + 10])
        # 12 random bits after the version, 62 after the variant.
        out.append(uuid.UUID(int=head | (r >> 68) << 64 | _VARIANT | r & 0x3FFF_FFFF_FFFF_FFFF))
    return out


def with_event_ids(given: Sequence[uuid.UUID | None]) -> list[uuid.UUID]:
    """``given`` with a fresh id wherever a client sent none (ids made only for those)."""
    fresh = iter(new_event_ids(sum(g is None for g in given)))
    return [g if g is not None else next(fresh) for g in given]
