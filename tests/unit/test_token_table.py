"""`coord token list` as a table: aligned, one line per token, the revocation's reason."""

from __future__ import annotations

from datetime import UTC, datetime

from coord.cli.tokens import token_table
from coord.tokens import TokenInfo

AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def test_table_shows_revocation_and_cannot_be_forged() -> None:
    """A revoked token says when, by whom and why; a newline in a name stays on its line."""
    tokens = [
        TokenInfo(
            token_id="a", name="KPU Kota Kediri", role="regional", regions=["35.71"],
            created_at=AT, created_by="admin",
        ),
        TokenInfo(
            token_id="b", name="Evil\nz  admin  -  active", role="national", regions=[],
            created_at=AT, created_by="admin", revoked_at=AT, revoked_by="admin",
            revoke_reason="Laptop\nhilang",
        ),
    ]  # fmt: skip
    lines = token_table(tokens).splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["ID", "NAME", "ROLE", "REGIONS", "CREATED", "STATUS"]
    assert lines[1].endswith("active") and "35.71" in lines[1]
    assert lines[2].endswith("revoked 2026-01-02 03:04 by admin: Laptop hilang")
    # Columns line up: the role column starts at the same place on every line.
    assert lines[1].index("regional") == lines[2].index("national")
