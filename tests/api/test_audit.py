"""The audit HTTP API: signed heads, proofs, trail, export, and who may read them."""

from __future__ import annotations

import argparse
import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coord.app import create_app
from coord.audit import load_signer
from coord.cli import audit as audit_cli
from coord.cli import main
from coord.config import Config
from coord.keys import STORE
from events.audit import merkle
from events.audit.audit_verify import verify_export
from events.audit.leaf import event_leaf_hash, parse_json
from events.audit.notes import CosignatureVerifier, Verifier, generate_signer, verify_checkpoint
from events.store.records import NewEvent
from tests.conftest import bearer
from tests.ids import sid

SIGNER = generate_signer("coord.test/api")


@pytest.fixture
async def app_client(aiohttp_client: Any, config: Config) -> Any:
    """A coord app that signs with a test key and checkpoints on every batch."""
    cfg = msgspec.structs.replace(
        config, audit_origin=SIGNER.name, signing_key=SIGNER.skey, audit_checkpoint_interval=0.0
    )
    return await aiohttp_client(create_app(cfg))


async def append(client: Any, stream: str, n: int, region: str = "35.71") -> list[uuid.UUID]:
    """Append `n` events straight to the store; return their ids."""
    ids = [uuid.uuid4() for _ in range(n)]
    events = [NewEvent(id=i, type="Noted", data=b'{"n": 1.50}') for i in ids]
    result = await client.server.app[STORE].append(stream, events, "any", region_code=region)
    POSITIONS.update({i: result.first_position + k for k, i in enumerate(ids)})
    return ids


#: Log position of every event appended by `append` (token issuing appends events too).
POSITIONS: dict[uuid.UUID, int] = {}


async def head_at_least(client: Any, headers: dict[str, str], size: int) -> dict[str, Any]:
    """Poll the tree head until it covers `size` leaves."""
    for _ in range(300):
        resp = await client.get("/v1/audit/tree-head", headers=headers)
        if resp.status == 200:
            body: dict[str, Any] = await resp.json()
            if body["tree_size"] >= size:
                return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"no tree head of size {size}")


@pytest.fixture
async def auditor(app_client: Any, token_for: Any) -> dict[str, str]:
    """Authorization header of an auditor."""
    return bearer(await token_for(app_client, "auditor"))


async def test_public_key_and_checkpoint_verify(app_client: Any, auditor: dict[str, str]) -> None:
    """The published vkey verifies the published checkpoint, which matches the tree head."""
    await append(app_client, sid("issue", "a"), 5)
    key = await (await app_client.get("/v1/audit/public-key", headers=auditor)).json()
    assert key == {
        "origin": SIGNER.name,
        "vkey": SIGNER.vkey,
        "public_key": key["public_key"],
        "cosigner_vkey": CosignatureVerifier.of(SIGNER).vkey,
    }
    assert len(base64.b64decode(key["public_key"])) == 32
    head = await head_at_least(app_client, auditor, 5)
    assert set(head) == {"tree_size", "root_hash", "timestamp", "checkpoint"}
    resp = await app_client.get("/v1/audit/checkpoint", headers=auditor)
    assert resp.status == 200 and resp.content_type == "text/plain"
    note = await resp.text()
    cp = verify_checkpoint(note, [Verifier.from_vkey(key["vkey"])], origin=key["origin"])
    assert cp.size >= 5
    sized = await app_client.get(f"/v1/audit/tree-head?size={cp.size}", headers=auditor)
    body = await sized.json()
    assert body["checkpoint"] == note and base64.b64decode(body["root_hash"]) == cp.root_hash
    # Beyond the latest checkpoint: not reached yet (409, retry); a passed-over size: 404.
    ahead = await app_client.get("/v1/audit/checkpoint?size=999", headers=auditor)
    assert ahead.status == 409 and ahead.headers["Retry-After"] == "1"
    ahead = await app_client.get("/v1/audit/tree-head?size=999", headers=auditor)
    assert ahead.status == 409 and ahead.headers["Retry-After"] == "1"


async def test_inclusion_and_consistency_proofs(app_client: Any, auditor: dict[str, str]) -> None:
    """An event's inclusion proof and a consistency proof across more appends both verify."""
    ids = await append(app_client, sid("issue", "p"), 6)
    old = await head_at_least(app_client, auditor, POSITIONS[ids[-1]])
    resp = await app_client.get(
        f"/v1/audit/proof/inclusion?event_id={ids[3]}&tree_size={old['tree_size']}",
        headers=auditor,
    )
    proof = await resp.json()
    index = POSITIONS[ids[3]] - 1
    assert proof["leaf_index"] == index and proof["tree_size"] == old["tree_size"]
    assert merkle.verify_inclusion(
        base64.b64decode(proof["leaf_hash"]),
        index,
        old["tree_size"],
        [base64.b64decode(h) for h in proof["audit_path"]],
        base64.b64decode(old["root_hash"]),
    )
    more = await append(app_client, sid("issue", "p"), 11)
    new = await head_at_least(app_client, auditor, POSITIONS[more[-1]])
    resp = await app_client.get(
        f"/v1/audit/proof/consistency?first={old['tree_size']}&second={new['tree_size']}",
        headers=auditor,
    )
    body = await resp.json()
    assert (body["first"], body["second"]) == (old["tree_size"], new["tree_size"])
    assert merkle.verify_consistency(
        old["tree_size"],
        new["tree_size"],
        [base64.b64decode(h) for h in body["proof"]],
        base64.b64decode(old["root_hash"]),
        base64.b64decode(new["root_hash"]),
    )
    beyond = await app_client.get(
        f"/v1/audit/proof/consistency?first=1&second={new['tree_size'] + 100}", headers=auditor
    )
    assert beyond.status == 409
    backwards = await app_client.get(
        "/v1/audit/proof/consistency?first=5&second=2", headers=auditor
    )
    assert backwards.status == 422


async def test_roles(app_client: Any, token_for: Any) -> None:
    """Auditor and national read; regional only gets proofs of its own regions' events."""
    own = await append(app_client, sid("issue", "r1"), 1, region="35.71")
    other = await append(app_client, sid("issue", "r2"), 1, region="11.01")
    auditor = bearer(await token_for(app_client, "auditor"))
    await head_at_least(app_client, auditor, 2)
    national = bearer(await token_for(app_client, "national"))
    regional = bearer(await token_for(app_client, "regional", ["35.71"]))
    for path in ("/v1/audit/checkpoint", "/v1/audit/public-key", "/v1/audit/tree-head"):
        # A regional office must be able to check the proofs it is given (issue 17).
        assert (await app_client.get(path)).status == 401
        assert (await app_client.get(path, headers=regional)).status == 200
    for path in (
        "/v1/audit/export",
        f"/v1/audit/streams/{sid('issue', 'r1')}",
    ):
        assert (await app_client.get(path)).status == 401
        assert (await app_client.get(path, headers=regional)).status == 403
        assert (await app_client.get(path, headers=national)).status == 200
    mine = await app_client.get(f"/v1/audit/proof/inclusion?event_id={own[0]}", headers=regional)
    assert mine.status == 200
    theirs = await app_client.get(
        f"/v1/audit/proof/inclusion?event_id={other[0]}", headers=regional
    )
    assert theirs.status == 404


async def test_stream_trail(app_client: Any, auditor: dict[str, str]) -> None:
    """The trail lists every event of a stream with position, leaf index and leaf hash."""
    ids = await append(app_client, sid("issue", "t"), 3)
    await head_at_least(app_client, auditor, POSITIONS[ids[-1]])
    resp = await app_client.get(f"/v1/audit/streams/{sid('issue', 't')}", headers=auditor)
    body = await resp.json()
    assert [e["version"] for e in body["events"]] == [1, 2, 3]
    assert [e["leaf_index"] for e in body["events"]] == [POSITIONS[i] - 1 for i in ids]
    assert [e["position"] for e in body["events"]] == [POSITIONS[i] for i in ids]
    assert all(e["leaf_hash"] for e in body["events"])
    assert (
        await app_client.get(f"/v1/audit/streams/{sid('issue', 'none')}", headers=auditor)
    ).status == 404


async def test_export_verifies_offline(
    app_client: Any, auditor: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    """The NDJSON export plus the checkpoint verify with `coord verify`, no service needed."""
    await append(app_client, sid("issue", "e"), 4)
    await append(app_client, sid("issue", "f"), 9)
    head = await head_at_least(app_client, auditor, 13)
    resp = await app_client.get("/v1/audit/export", headers=auditor)
    assert resp.status == 200 and resp.content_type == "application/x-ndjson"
    size = int(resp.headers["X-Coord-Tree-Size"])
    raw = await resp.read()
    lines = raw.splitlines()
    assert len(lines) == size >= 13
    first = parse_json(lines[0])
    assert first["leaf_index"] == 0 and first["event"]["position"] == 1
    assert base64.b64decode(first["leaf_hash"]) == event_leaf_hash(first["event"])
    note = await (await app_client.get(f"/v1/audit/checkpoint?size={size}", headers=auditor)).text()
    assert verify_export(lines, verify_checkpoint(note, [SIGNER.verifier])).ok
    (tmp_path / "export.ndjson").write_bytes(raw)
    (tmp_path / "cp").write_text(note)
    assert (
        main(
            [
                "verify",
                str(tmp_path / "export.ndjson"),
                "--checkpoint",
                str(tmp_path / "cp"),
                "--vkey",
                SIGNER.vkey,
            ]
        )
        == 0
    )
    assert "VERIFIED" in capsys.readouterr().out
    part = await app_client.get("/v1/audit/export?from=3&to=5", headers=auditor)
    assert [msgspec.json.decode(x)["leaf_index"] for x in (await part.read()).splitlines()] == [
        2,
        3,
        4,
    ]
    assert head["tree_size"] >= 13


async def test_cli_export_downloads_export_and_checkpoint(
    app_client: Any, auditor: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    """`coord export --out F --checkpoint-out C` writes files that `coord verify` accepts."""
    ids = await append(app_client, sid("issue", "x"), 5)
    await head_at_least(app_client, auditor, POSITIONS[ids[-1]])
    args = argparse.Namespace(
        command="export",
        out=tmp_path / "log.ndjson",
        checkpoint_out=tmp_path / "cp",
        first=None,
        last=None,
        url=str(app_client.make_url("")),
        token=auditor["Authorization"].removeprefix("Bearer "),
    )
    assert await audit_cli._export(args) == 0
    vkey = [SIGNER.vkey]
    assert (
        main(["verify", str(args.out), "--checkpoint", str(args.checkpoint_out), "--vkey", *vkey])
        == 0
    )
    assert "VERIFIED" in capsys.readouterr().out


def test_signing_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    """Without a configured key, one is generated under COORD_HOME (0600) and reused."""
    config = Config(home=tmp_path, node_id="n1")
    first = load_signer(config)
    assert first.name == "coord.local/n1"
    key_file = tmp_path / "audit-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_signer(config).vkey == first.vkey
    with pytest.raises(ValueError, match="origin"):
        load_signer(Config(home=tmp_path, node_id="n2"))


async def test_cli_checks_inclusion_and_consistency_proofs(
    app_client: Any, auditor: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    """`coord verify --inclusion` and `--consistency` accept the API's proofs, reject forgeries."""
    ids = await append(app_client, sid("issue", "v"), 3)
    old = await head_at_least(app_client, auditor, POSITIONS[ids[-1]])
    (tmp_path / "old").write_text(old["checkpoint"])
    proof = await app_client.get(f"/v1/audit/proof/inclusion?event_id={ids[1]}", headers=auditor)
    (tmp_path / "inc.json").write_bytes(await proof.read())
    export = await app_client.get(
        f"/v1/audit/export?from={POSITIONS[ids[1]]}&to={POSITIONS[ids[1]]}", headers=auditor
    )
    line = await export.read()
    (tmp_path / "line.json").write_bytes(line)
    base = ["verify", "--vkey", SIGNER.vkey]
    inc = [*base, "--inclusion", str(tmp_path / "inc.json"), "--checkpoint", str(tmp_path / "old")]
    assert main(inc) == 0
    assert main([*inc, "--event", str(tmp_path / "line.json")]) == 0
    forged = parse_json(line)
    forged["event"]["data"] = {"n": 2}
    (tmp_path / "forged.json").write_bytes(msgspec.json.encode(forged))
    assert main([*inc, "--event", str(tmp_path / "forged.json")]) == 1

    more = await append(app_client, sid("issue", "v"), 4)
    new = await head_at_least(app_client, auditor, POSITIONS[more[-1]])
    (tmp_path / "new").write_text(new["checkpoint"])
    resp = await app_client.get(
        f"/v1/audit/proof/consistency?first={old['tree_size']}&second={new['tree_size']}",
        headers=auditor,
    )
    (tmp_path / "proof.json").write_bytes(await resp.read())
    cons = [*base, "--consistency", str(tmp_path / "old"), str(tmp_path / "new")]
    assert main([*cons, "--proof", str(tmp_path / "proof.json")]) == 0
    assert "VERIFIED" in capsys.readouterr().out
    swapped = [*base, "--consistency", str(tmp_path / "new"), str(tmp_path / "old")]
    assert main([*swapped, "--proof", str(tmp_path / "proof.json")]) == 2  # sizes do not match
    other = generate_signer(SIGNER.name)
    assert (
        main(["verify", "--vkey", other.vkey, *cons[3:], "--proof", str(tmp_path / "proof.json")])
        == 2
    )


def test_concurrent_starts_share_one_complete_signing_key(tmp_path: Path) -> None:
    """Processes generating the key at the same moment all read the same, whole key."""
    import concurrent.futures

    for attempt in range(10):  # the race is a matter of timing: give it many chances
        home = tmp_path / str(attempt)
        config = Config(home=home, node_id="n1")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            keys = list(pool.map(lambda _, c=config: load_signer(c).vkey, range(16)))
        assert len(set(keys)) == 1
        assert [p.name for p in home.iterdir()] == ["audit-signing.key"]  # no temp files
        assert (home / "audit-signing.key").stat().st_mode & 0o777 == 0o600


async def test_receipt_verifies_offline(
    app_client: Any, token_for: Any, tmp_path: Path, capsys: Any
) -> None:
    """A regional office's receipt proves its event was logged, later that it was kept."""
    own = await append(app_client, sid("issue", "rc1"), 3, region="35.71")
    other = await append(app_client, sid("issue", "rc2"), 1, region="11.01")
    auditor = bearer(await token_for(app_client, "auditor"))
    regional = bearer(await token_for(app_client, "regional", ["35.71"]))
    await head_at_least(app_client, auditor, POSITIONS[other[0]])
    resp = await app_client.get(f"/v1/audit/receipt/{own[1]}", headers=regional)
    assert resp.status == 200
    first = await resp.json()
    assert first["event_id"] == str(own[1]) and first["origin"] == SIGNER.name
    assert first["leaf_index"] == POSITIONS[own[1]] - 1 and first["consistency"] is None
    assert first["cosignatures"] == [] and first["event"]["id"] == str(own[1])
    # Nothing about another region's event, exactly as for one that does not exist.
    theirs = await app_client.get(f"/v1/audit/receipt/{other[0]}", headers=regional)
    missing = await app_client.get(f"/v1/audit/receipt/{uuid.uuid4()}", headers=regional)
    assert theirs.status == missing.status == 404
    assert (await theirs.json())["title"] == (await missing.json())["title"]
    bad = await app_client.get("/v1/audit/receipt/NOT-A-UUID", headers=regional)
    assert bad.status == 422 and (await bad.json())["field"] == "path.event_id"
    assert (await app_client.get(f"/v1/audit/receipt/{own[1]}")).status == 401
    for query, field in (
        ("tree_size=abc", "query.tree_size"),
        ("tree_size=0", "query.tree_size"),
        ("tree_size=99999999999999999999999", "query.tree_size"),
        ("from_size=-1", "query.from_size"),
        ("from_size=1.5", "query.from_size"),
    ):
        resp = await app_client.get(f"/v1/audit/receipt/{own[1]}?{query}", headers=regional)
        assert resp.status == 422, query
        assert (await resp.json())["field"] == field
    future = first["tree_size"] + 1000
    resp = await app_client.get(f"/v1/audit/receipt/{own[1]}?tree_size={future}", headers=regional)
    assert resp.status == 409 and resp.headers["Retry-After"] == "1"
    # Later: more events, a newer receipt proving consistency from the old size.
    more = await append(app_client, sid("issue", "rc3"), 4, region="35.71")
    await head_at_least(app_client, auditor, POSITIONS[more[-1]])
    size = first["tree_size"]
    resp = await app_client.get(f"/v1/audit/receipt/{own[1]}?from_size={size}", headers=regional)
    second = await resp.json()
    assert second["tree_size"] > size and second["consistency"]["first"] == size
    too_big = await app_client.get(
        f"/v1/audit/receipt/{own[1]}?from_size={second['tree_size'] + 1}", headers=regional
    )
    assert too_big.status == 422
    (tmp_path / "r1.json").write_bytes(msgspec.json.encode(first))
    (tmp_path / "r2.json").write_bytes(msgspec.json.encode(second))
    args = ["verify", "--receipt", str(tmp_path / "r1.json"), "--vkey", SIGNER.vkey]
    assert main(args) == 0
    assert main([*args, "--consistency", str(tmp_path / "r2.json")]) == 0
    out = capsys.readouterr().out
    assert "VERIFIED" in out and "never dropped" in out
