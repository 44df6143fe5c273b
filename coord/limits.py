"""Limits on what a client's JSON may contain, checked once at intake.

PostgreSQL's `text` and `jsonb` cannot hold U+0000, its `bigint` holds int64, and a
deeply nested document costs recursion in every decoder after ours. Each of these
used to surface as a `500` from deep inside the write path; here they are a `422`
naming the field (`$.events[0].data.title`), before anything is decoded into types,
authorised or stored. The app checks every JSON request body (coord/middlewares.py:
`intake`); the write pipeline may call :func:`check_document` on documents it builds
from other sources (CloudEvents binary mode headers, CLI input).
"""

from __future__ import annotations

from typing import Any

import msgspec

from coord.problems import Problem, invalid

MAX_DEPTH = 32
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _key_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{msgspec.json.encode(key).decode()}]"


def check_text(value: str, field: str) -> None:
    """422 if `value` holds U+0000 (PostgreSQL text cannot store it)."""
    if "\x00" in value:
        raise invalid("text must not contain the NUL character (U+0000)", field)


def check_document(value: Any, path: str = "$", depth: int = 0) -> None:
    """422 at the first string with U+0000, integer beyond int64 or nesting beyond 32."""
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise invalid("integer out of range (64-bit signed)", path)
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise invalid(f"JSON is nested deeper than {MAX_DEPTH} levels", path)
        if isinstance(value, dict):
            for key, item in value.items():
                item_path = _key_path(path, key)
                check_text(key, item_path)
                check_document(item, item_path, depth + 1)
        else:
            for i, item in enumerate(value):
                check_document(item, f"{path}[{i}]", depth + 1)


def check_json_bytes(raw: bytes) -> None:
    """Check a JSON body; a body that is not JSON is left to the handler's decoder (400)."""
    try:
        document = msgspec.json.decode(raw)
    except RecursionError:
        raise too_deep() from None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return  # the typed decoder says what is wrong, with its own status
    check_document(document)


def too_deep() -> Problem:
    """422 for a document nested beyond what any decoder is asked to follow."""
    return invalid(f"JSON is nested deeper than {MAX_DEPTH} levels", "$")
