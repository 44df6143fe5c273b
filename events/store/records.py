"""The shapes that go into and come out of the event store."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

ExpectedVersion = int | Literal["any", "exists"]
"""An exact version (0 = the stream must not exist yet), "any", or "exists"."""


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append. `data` and `metadata` are JSON-encoded objects."""

    id: UUID
    type: str
    data: bytes
    metadata: bytes = b"{}"
    schema_version: int = 1


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored, with its place in its stream and in the global log.

    `data` and `metadata` are the stored JSON, passed through undecoded so that
    feeds and exports never pay for a decode/encode round trip.
    """

    id: UUID
    stream_id: str
    version: int
    position: int
    type: str
    schema_version: int
    data: msgspec.Raw
    metadata: msgspec.Raw
    recorded_at: datetime
    region_code: str | None = None


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where an append landed. `created` is False for a pure idempotent retry."""

    stream_id: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int
    created: bool = True
