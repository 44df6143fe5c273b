"""Issue 13, item 4: which PostgreSQL settings may lose an acknowledged append."""

from __future__ import annotations

from coord.durability import judge

SAFE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def test_defaults_are_safe() -> None:
    """PostgreSQL's defaults, and a local or remote flush, keep every 201."""
    assert judge(SAFE) == []
    for level in ("local", "remote_write", "remote_apply"):
        assert judge({**SAFE, "synchronous_commit": level}) == []


def test_each_unsafe_setting_is_named_with_its_risk() -> None:
    """Each setting that is off is reported by name, with what it risks."""
    for name in SAFE:
        (line,) = judge({**SAFE, name: "off"})
        assert line.startswith(f"{name} = off: ")
    assert len(judge(dict.fromkeys(SAFE, "off"))) == 3
