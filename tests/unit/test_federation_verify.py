"""`coord verify --federation` on synthetic hub and region exports, with tampering."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coord.cli import main
from events.audit import merkle
from events.audit.federation_verify import HubIndex, check_region
from events.audit.leaf import event_leaf_hash
from events.audit.notes import Checkpoint, generate_signer, sign_checkpoint
from tests.unit.test_verify import make_event

HUB = generate_signer("coord.local/hub")
JATIM = generate_signer("coord.local/jatim")


def at(event: dict[str, Any], position: int) -> dict[str, Any]:
    """The same event as another node's log holds it (its own position)."""
    return {**event, "position": position}


def export(events: list[dict[str, Any]], signer: Any) -> tuple[list[bytes], str]:
    """An honest export of a node's log (events renumbered 1..n) and its signed checkpoint."""
    lines, leaves = [], []
    for pos, event in enumerate(events, 1):
        e = at(event, pos)
        leaf = event_leaf_hash(e)
        leaves.append(leaf)
        line = {"leaf_index": pos - 1, "leaf_hash": base64.b64encode(leaf).decode(), "event": e}
        lines.append(msgspec.json.encode(line))
    cp = Checkpoint(signer.name, len(events), merkle.root(leaves))
    return lines, sign_checkpoint(cp, signer)


NATIONAL = [make_event(p, stream="national-x") | {"region_code": None} for p in range(1, 6)]
REGIONAL = [make_event(100 + p, stream="issue-j") for p in range(1, 21)]
# The region's log: its own events with a national one received in between; the hub's:
# national events first, the region's arriving later, in another order of positions.
REGION_LOG = [*REGIONAL[:10], NATIONAL[0], *REGIONAL[10:]]
HUB_LOG = [*NATIONAL, *REGIONAL]


def run(tmp_path: Path, hub_log: list[dict[str, Any]], **kw: Any) -> int:
    """`coord verify --federation` on the hub log given and the honest region log."""
    hub_lines, hub_cp = export(hub_log, kw.get("hub_signer", HUB))
    region_lines, region_cp = export(REGION_LOG, kw.get("region_signer", JATIM))
    for name, data in (("hub", hub_lines), ("jatim", region_lines)):
        (tmp_path / f"{name}.ndjson").write_bytes(b"".join(x + b"\n" for x in data))
    (tmp_path / "hub.cp").write_text(hub_cp)
    (tmp_path / "jatim.cp").write_text(region_cp)
    t = str(tmp_path)
    return main(
        [
            "verify",
            "--federation",
            f"{t}/hub.ndjson",
            f"{t}/jatim.ndjson",
            "--checkpoint",
            f"{t}/hub.cp",
            "--checkpoint",
            f"{t}/jatim.cp",
            "--vkey",
            HUB.vkey,
            "--vkey",
            JATIM.vkey,
        ]
    )


def test_honest_federation_verifies(tmp_path: Path, capsys: Any) -> None:
    """Every region event (its own and the national one it received) is at the hub once."""
    assert run(tmp_path, HUB_LOG) == 0
    assert "21 events, each in the hub's log once, unchanged" in capsys.readouterr().out


def test_event_missing_at_the_hub(tmp_path: Path, capsys: Any) -> None:
    """A hub that signed a log without one region event is named, with the region position."""
    assert run(tmp_path, [e for e in HUB_LOG if e is not REGIONAL[12]]) == 1
    out = capsys.readouterr().out
    assert f"missing_at_hub coord.local/jatim position 14 event {REGIONAL[12]['id']}" in out


def test_event_different_at_the_hub(tmp_path: Path, capsys: Any) -> None:
    """A hub copy with other content (signed by the hub as such) is named."""
    changed = [e if e is not REGIONAL[3] else {**e, "data": {"n": "PALSU"}} for e in HUB_LOG]
    assert run(tmp_path, changed) == 1
    assert "different_at_hub coord.local/jatim position 4" in capsys.readouterr().out


def test_event_twice_at_the_hub(tmp_path: Path, capsys: Any) -> None:
    """The same event at two hub positions (applied twice) is named."""
    assert run(tmp_path, [*HUB_LOG, REGIONAL[0]]) == 1
    assert "duplicate_at_hub coord.local/jatim position 1" in capsys.readouterr().out


def test_region_checkpoint_signed_by_another_key(tmp_path: Path) -> None:
    """A region checkpoint must carry the region's own signature: usage error 2."""
    forger = generate_signer(JATIM.name)
    assert run(tmp_path, HUB_LOG, region_signer=forger) == 2


def test_check_region_without_the_cli() -> None:
    """The library call reports the same findings as the CLI."""
    hub_lines, _ = export(HUB_LOG[:-1], HUB)
    index = HubIndex()
    list(index.add_lines(hub_lines))
    region_lines, _ = export(REGION_LOG, JATIM)
    report = check_region("coord.local/jatim", region_lines, index)
    assert not report.ok and report.events == 21
    assert [(f.kind, f.region_position) for f in report.findings] == [("missing_at_hub", 21)]


@pytest.mark.parametrize("n", [1, 3])
def test_federation_needs_a_checkpoint_per_export(tmp_path: Path, n: int) -> None:
    """Checkpoints are matched to exports by order: a count that differs is a usage error."""
    (tmp_path / "a").write_text("")
    args = ["verify", "--federation", str(tmp_path / "a"), str(tmp_path / "a")]
    args += ["--checkpoint", str(tmp_path / "a")] * n + ["--vkey", HUB.vkey]
    assert main(args) == 2
