"""Readable names for entity streams in tests: `sid("issue", "a")` is a canonical stream id.

Entity streams (`hearing-`, `issue-`, `recommendation-`) are named by a canonical UUID
only; store-level tests still like short names, so each name maps to a fixed UUID.
"""

from __future__ import annotations

import uuid

_NS = uuid.UUID("3b1f0e2a-7c44-4d0b-9a55-0c9e2f6a1d20")


def sid(category: str, name: str) -> str:
    """The canonical `<category>-<uuid>` stream id that stands for `name` in tests."""
    return f"{category}-{uuid.uuid5(_NS, name)}"
