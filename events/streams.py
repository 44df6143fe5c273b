"""Stream ids: `category-identifier`, e.g. `hearing-6f1c...` or `access-tokens`."""

from __future__ import annotations

import re

from events.errors import InvalidStreamId

# 1-200 characters of [A-Za-z0-9._:-], and a category before the first dash.
_STREAM_ID = re.compile(r"[A-Za-z0-9._:]+-[A-Za-z0-9._:-]+")
MAX_STREAM_ID = 200


def validate_stream_id(stream_id: str) -> str:
    """Return `stream_id` if it is well formed, else raise InvalidStreamId."""
    if len(stream_id) > MAX_STREAM_ID or not _STREAM_ID.fullmatch(stream_id):
        raise InvalidStreamId(
            "a stream id is `category-identifier`: 1-200 characters of [A-Za-z0-9._:-] "
            "with a category before the first '-'"
        )
    return stream_id


def category_of(stream_id: str) -> str:
    """The stream's category: everything before the first dash (`hearing-...` -> `hearing`)."""
    return stream_id.split("-", 1)[0]


def identifier_of(stream_id: str) -> str:
    """The part after the first dash (`hearing-<uuid>` -> `<uuid>`)."""
    return stream_id.split("-", 1)[1]
