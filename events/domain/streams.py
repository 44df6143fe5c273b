"""Stream ids: `category-identifier`, e.g. `hearing-6f1c...` or `access-tokens`.

Streams of the domain's entity categories (`hearing`, `issue`, `recommendation`) name
their entity by UUID, and there is exactly one spelling of each: the category, a dash
and the UUID in lowercase canonical form (8-4-4-4-12 hex digits). Python's `UUID()`
also parses upper case, no dashes, braces and `urn:uuid:`; accepting those made one
entity reachable under several stream ids (each a separate stream, authorised on its
own, while views keyed them by the parsed UUID). Every other spelling is refused here,
which the store calls on every append, so no code path can store an alias.
"""

from __future__ import annotations

import re
from uuid import UUID

from events.domain.errors import InvalidStreamId

# 1-200 characters of [A-Za-z0-9._:-], and a category before the first dash.
_STREAM_ID = re.compile(r"[A-Za-z0-9._:]+-[A-Za-z0-9._:-]+")
MAX_STREAM_ID = 200

#: categories whose identifier is an entity's UUID, in canonical form only
ENTITY_CATEGORIES = frozenset({"hearing", "issue", "recommendation", "cluster"})
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_canonical_uuid(text: str) -> bool:
    """Is `text` a UUID in lowercase canonical form (what `str(UUID(...))` gives)?"""
    return _CANONICAL_UUID.fullmatch(text) is not None


def validate_stream_id(stream_id: str) -> str:
    """Return `stream_id` if it is well formed and canonical, else raise InvalidStreamId."""
    if len(stream_id) > MAX_STREAM_ID or not _STREAM_ID.fullmatch(stream_id):
        raise InvalidStreamId(
            "a stream id is `category-identifier`: 1-200 characters of [A-Za-z0-9._:-] "
            "with a category before the first '-'"
        )
    category, _, rest = stream_id.partition("-")
    if category in ENTITY_CATEGORIES and not is_canonical_uuid(rest):
        raise InvalidStreamId(
            f"a {category} stream id is `{category}-<uuid>` with the uuid in lowercase "
            "canonical form (8-4-4-4-12 hex digits, e.g. "
            f"`{category}-0b8e3a52-61d4-4c6e-9a7e-2f1d5c3b9a10`)"
        )
    return stream_id


def is_canonical_stream_id(stream_id: str) -> bool:
    """Would `validate_stream_id` accept `stream_id`? (For checks over stored streams.)"""
    try:
        validate_stream_id(stream_id)
    except InvalidStreamId:
        return False
    return True


def category_of(stream_id: str) -> str:
    """The stream's category: everything before the first dash (`hearing-...` -> `hearing`)."""
    return stream_id.split("-", 1)[0]


def entity_id_of(stream_id: str) -> UUID:
    """The entity UUID of a canonical `hearing-`/`issue-`/`recommendation-` stream id."""
    category, _, rest = stream_id.partition("-")
    if category not in ENTITY_CATEGORIES or not is_canonical_uuid(rest):
        raise InvalidStreamId(f"{stream_id!r} is not a canonical entity stream id")
    return UUID(rest)
