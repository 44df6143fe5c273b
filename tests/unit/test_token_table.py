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
    assert lines[0].split() == [
        "ID", "NAME", "ROLE", "REGIONS", "CREATED", "EXPIRES", "LAST", "USED", "STATUS",
    ]  # fmt: skip
    assert lines[1].endswith("active") and "35.71" in lines[1]
    assert lines[2].endswith("revoked 2026-01-02 03:04 by admin: Laptop hilang")
    # Columns line up: the role column starts at the same place on every line.
    assert lines[1].index("regional") == lines[2].index("national")


def test_table_shows_expiry_and_last_use() -> None:
    """Expiry and last use in UTC minutes; a token past its expiry reads "expired"."""
    later = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    tokens = [
        TokenInfo(
            token_id="a", name="Deputi", role="national", regions=[], created_at=AT,
            created_by="admin", expires_at=later, last_used_at=AT,
        ),
    ]  # fmt: skip
    before, after = (token_table(tokens, now=n).splitlines()[1] for n in (AT, later))
    assert "2026-03-01 08:30" in before and before.endswith("active")
    assert before.count("2026-01-02 03:04") == 2  # created and last used
    assert after.endswith("expired")
