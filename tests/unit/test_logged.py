"""events/store/logged.py is the one place that joins the log to its events."""

from __future__ import annotations

from pathlib import Path

from events.store import logged

ROOT = Path(__file__).resolve().parents[2]


def test_no_other_module_writes_the_join() -> None:
    found = [
        str(path.relative_to(ROOT))
        for package in ("events", "projections", "coord")
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "events/store/logged.py"
        and "log l JOIN events e" in path.read_text(encoding="utf-8")
    ]
    assert not found, "read logged events through events.store.logged: " + ", ".join(found)


def test_a_window_in_log_order() -> None:
    sql = logged.select(logged.columns(), "l.position > $1", limit="$2")
    assert sql == (
        "SELECT l.position, e.event_id::text AS event_id, e.stream_id, e.version, e.type, "
        "e.schema_version, e.data, e.metadata, e.recorded_at, e.region_code "
        "FROM log l JOIN events e ON e.seq = l.seq WHERE l.position > $1 "
        "ORDER BY l.position LIMIT $2"
    )


def test_columns_follow_COLUMNS() -> None:
    names = [c.split(" AS ")[-1].split(".")[-1] for c in logged.columns().split(", ")]
    assert tuple(names) == logged.COLUMNS
    bare = logged.columns(payload=False, event_id_text=False)
    assert "NULL::jsonb AS data" in bare and "e.event_id," in bare


def test_at_is_a_scalar_subquery() -> None:
    assert logged.at("e.type", "$2") == (
        "(SELECT e.type FROM log l JOIN events e ON e.seq = l.seq WHERE l.position = $2)"
    )
