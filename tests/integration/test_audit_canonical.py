"""Awkward events written through the API export and verify, and hash as the document says.

The expected leaves come from `tests.unit.test_leaf.reference_leaf_bytes`, an encoder
written from docs/audit-format.md §2 alone, applied to what the test *sent* after the
intake rule of §2.6, never to what coord exported: coord's own encoder is not consulted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coord.app import create_app
from coord.cli import main
from coord.config import Config
from tests.conftest import bearer
from tests.unit.test_leaf import reference_leaf_bytes, reference_parse

from .test_audit import SIGNER

# --- JSON text with every shape of number and string ---------------------------------------

# A generated JSON value: its text as sent, and its value as §2.6 says coord stores it.
Sent = tuple[str, Any]

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_SHORT["\t"] = "\\t"
_SHORT["/"] = "\\/"


def _stored_number(token: str) -> Decimal:
    """§2.6: integers exactly; anything with a fraction or exponent through binary64."""
    if not any(c in token for c in ".eE"):
        return Decimal(token)
    return Decimal(repr(float(token)))


@st.composite
def numbers(draw: st.DrawFn) -> Sent:
    """Integers past 2^64, tiny and huge exponents, trailing zeros, -0, as JSON text."""
    special = st.sampled_from(
        [
            "4.0",
            "1E-7",
            "0.0000001",
            "-0.0",
            "-0",
            "0e0",
            "1e-400",
            "5e-324",
            "1.7976931348623157e308",
            "0.30000000000000000001",
            "1.5e+3",
            "1.10",
            "100",
            "123456789012345678901234567890.5",
            "18446744073709551617",
            "-9223372036854775809",
        ]
    )
    whole = st.one_of(st.just("0"), st.integers(1, 10**25).map(str))
    fraction = st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=20))
    exponent = st.one_of(
        st.just(""),
        st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), st.integers(0, 330)).map(
            lambda t: f"{t[0]}{t[1]}{t[2]}"
        ),
    )
    shaped = st.tuples(st.sampled_from(["", "-"]), whole, fraction, exponent).map(
        lambda t: t[0] + t[1] + ("." + t[2] if t[2] else "") + t[3]
    )
    big = st.integers(-(2**200), 2**200).map(str)
    token = draw(st.one_of(special, shaped, big).filter(lambda t: math.isfinite(float(t))))
    return token, _stored_number(token)


_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


def _spell(ch: str, style: int) -> str:
    """One character as JSON text: raw, short escape or \\u escape (pairs beyond U+FFFF)."""
    if ch in _SHORT and (style % 2 or ch in '"\\'):
        return _SHORT[ch]
    code = ord(ch)
    if style == 2 or code < 0x20 or ch in '"\\':
        if code > 0xFFFF:
            code -= 0x10000
            hi, lo = 0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)
            return f"\\u{hi:04x}\\u{lo:04X}"
        return f"\\u{code:04X}" if style == 3 else f"\\u{code:04x}"
    return ch


@st.composite
def strings(draw: st.DrawFn, min_size: int = 0, max_size: int = 12) -> Sent:
    """Strings of every plane, each character spelled raw or escaped in some way."""
    chars = draw(
        st.lists(st.tuples(_CHARS, st.integers(0, 3)), min_size=min_size, max_size=max_size)
    )
    value = "".join(c for c, _ in chars)
    return '"' + "".join(_spell(c, s) for c, s in chars) + '"', value


_SCALARS = st.one_of(
    numbers(),
    strings(),
    st.sampled_from([("true", True), ("false", False), ("null", None)]),
)


def _array(items: list[Sent]) -> Sent:
    return "[" + " , ".join(t for t, _ in items) + "]", [v for _, v in items]


def _object(members: list[tuple[Sent, Sent]]) -> Sent:
    text = "{" + ",".join(f"{k[0]}: {v[0]}" for k, v in members) + "}"
    return text, {k[1]: v[1] for k, v in members}


def _unique_keys(members: list[tuple[Sent, Sent]]) -> bool:
    return len({k[1] for k, _ in members}) == len(members)


def _objects(values: st.SearchStrategy[Sent]) -> st.SearchStrategy[Sent]:
    members = st.lists(st.tuples(strings(), values), max_size=4).filter(_unique_keys)
    return members.map(_object)


JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(_array), _objects(inner)),
    max_leaves=12,
)

# Keys the server stamps beside `client` (README, Metadata).
SERVER_METADATA = frozenset(
    {"actor", "role", "request_id", "client_request_id", "recorded_at", "node_id"}
)
_RESERVED = {*SERVER_METADATA, "client"}
METADATA = (
    st.lists(st.tuples(strings(min_size=1), JSON_VALUES), max_size=4)
    .filter(_unique_keys)
    .filter(lambda ms: not any(k[1] in _RESERVED for k, _ in ms))
    .map(_object)
)


@st.composite
def texts(draw: st.DrawFn) -> Sent:
    """A ShortText: 1..200 characters, at least one not a space."""
    return draw(strings(min_size=1).filter(lambda s: bool(s[1].strip()) and len(s[1]) <= 200))


@st.composite
def hearings(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A HearingScheduled as request text, with data members in any order; the data as sent."""
    members: dict[str, Sent] = {
        "region_code": ('"35.71"', "35.71"),
        "title": draw(texts()),
        "agenda": draw(texts()),
        "venue": draw(texts()),
        "scheduled_at": ('"2024-10-26T09:00:00+07:00"', "2024-10-26T09:00:00+07:00"),
        "convened_by": _object(
            [(('"code"', "code"), ('"KPU"', "KPU")), (('"name"', "name"), draw(texts()))]
        ),
        "host_organization": (
            '{"name":"Kesbangpol","code":"KESBANGPOL"}',
            {"name": "Kesbangpol", "code": "KESBANGPOL"},
        ),
    }
    order = draw(st.permutations(sorted(members)))
    text, data = _object([((f'"{k}"', k), members[k]) for k in order])
    meta_text, meta = draw(METADATA)
    body = (
        '{"expected_version": 0, "events": [{"type": "HearingScheduled", '
        f'"metadata": {meta_text}, "data": {text}}}]}}'
    )
    return body, data, meta


# --- the test -------------------------------------------------------------------------------


@pytest.fixture
async def app(aiohttp_client: Any, config: Config) -> Any:
    """A coord app that signs with the test key and checkpoints at once."""
    cfg = msgspec.structs.replace(
        config, audit_origin=SIGNER.name, signing_key=SIGNER.skey, audit_checkpoint_interval=0.0
    )
    return await aiohttp_client(create_app(cfg))


@pytest.fixture
async def national(app: Any, token_for: Any) -> dict[str, str]:
    """Authorization header of a national token (writes hearings, reads the audit log)."""
    return bearer(await token_for(app, "national"))


async def signed_export(app: Any, headers: dict[str, str], size: int) -> tuple[bytes, str]:
    """The export up to the first checkpoint covering `size`, and that checkpoint."""
    for _ in range(500):
        head = await app.get("/v1/audit/tree-head", headers=headers)
        if head.status == 200 and (body := await head.json())["tree_size"] >= size:
            resp = await app.get(f"/v1/audit/export?to={body['tree_size']}", headers=headers)
            assert resp.status == 200
            return await resp.read(), body["checkpoint"]
        await _sleep()
    raise AssertionError(f"no checkpoint reached {size}")


async def _sleep() -> None:
    await asyncio.sleep(0.02)


def coord_verify(tmp: Path, export: bytes, note: str) -> tuple[int, str]:
    """Exit code and output of `coord verify` on these files."""
    (tmp / "export.ndjson").write_bytes(export)
    (tmp / "cp").write_text(note)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        files = [str(tmp / "export.ndjson"), "--checkpoint", str(tmp / "cp")]
        code = main(["verify", *files, "--vkey", SIGNER.vkey])
    return code, out.getvalue()


def with_client_metadata(stored: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The stored metadata with its client part replaced by what was sent (after §2.6).

    Client metadata sits either beside the server's keys or under `client`.
    """
    expected = dict(stored)
    if "client" in stored and isinstance(stored["client"], dict):
        expected["client"] = sent
    else:
        assert set(stored) - set(SERVER_METADATA) == set(sent)
        expected.update(sent)
    return expected


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(hearings(), min_size=1, max_size=3))
async def test_awkward_events_verify_and_hash_as_documented(
    app: Any, national: dict[str, str], tmp_path: Path, batch: list[Any]
) -> None:
    """Through the API, export and `coord verify`: VERIFIED, and each leaf is the doc's bytes."""
    written: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for body, data, meta in batch:
        stream = f"hearing-{uuid.uuid4()}"
        resp = await app.post(
            f"/v1/streams/{stream}/events",
            data=body.encode(),
            headers={**national, "Content-Type": "application/json"},
        )
        assert resp.status == 201, await resp.text()
        written.append(((await resp.json())["first_position"], data, meta))
    export, note = await signed_export(app, national, max(p for p, _, _ in written))
    code, out = coord_verify(tmp_path, export, note)
    assert code == 0 and out.rstrip().endswith("VERIFIED"), out
    lines = export.splitlines()
    for position, data, meta in written:
        line = lines[position - 1]
        prefix = b'{"leaf_index":%d,"leaf_hash":"' % (position - 1)
        assert line.startswith(prefix) and line.endswith(b"}")
        stored = reference_parse(line)
        leaf_hash = base64.b64decode(stored["leaf_hash"])
        event = stored["event"]
        assert event["position"] == position
        expected = {
            **event,
            "data": data,
            "metadata": with_client_metadata(event["metadata"], meta),
        }
        leaf = reference_leaf_bytes(expected)
        # The export writes the leaf bytes verbatim, and the tree hashed exactly them.
        assert line == prefix + stored["leaf_hash"].encode() + b'","event":' + leaf + b"}"
        assert leaf_hash == hashlib.sha256(b"\x00" + leaf).digest()


def _hearing(meta: str) -> bytes:
    text, _, _ = _EXAMPLE
    return text.replace('"metadata": {}', f'"metadata": {meta}').encode()


_EXAMPLE = (
    '{"expected_version": 0, "events": [{"type": "HearingScheduled", "metadata": {}, "data": '
    + msgspec.json.encode(
        {
            "region_code": "35.71",
            "title": "Dengar pendapat",
            "agenda": "Persiapan",
            "venue": "Ruang Joyoboyo",
            "scheduled_at": "2024-10-26T09:00:00+07:00",
            "convened_by": {"code": "KPU", "name": "KPU"},
            "host_organization": {"code": "KPU", "name": "KPU"},
        }
    ).decode()
    + "}]}",
    None,
    None,
)


async def post_hearing(app: Any, headers: dict[str, str], meta: str) -> tuple[str, Any]:
    """POST a HearingScheduled with this metadata text to a new stream: (stream, response)."""
    stream = f"hearing-{uuid.uuid4()}"
    resp = await app.post(
        f"/v1/streams/{stream}/events",
        data=_hearing(meta),
        headers={**headers, "Content-Type": "application/json"},
    )
    return stream, resp


@pytest.mark.parametrize(
    ("meta", "status"),
    [
        ('{"x": 1E+309}', 422),
        ('{"x": -1e400}', 422),
        ('{"x": ' + "9" * 5000 + "}", 422),
        ('{"x": "\\ud800"}', 400),
        ('{"x": {"y": ["\\udc00"]}}', 400),
    ],
    ids=["1E+309", "-1e400", "5000 digits", "lone high surrogate", "lone low surrogate"],
)
async def test_intake_refuses_what_it_cannot_store(
    app: Any, national: dict[str, str], meta: str, status: int
) -> None:
    """§2.6: beyond binary64, over-long integers and lone surrogates are refused; nothing stored."""
    stream, resp = await post_hearing(app, national, meta)
    assert resp.status == status, await resp.text()
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    if status == 422:
        assert problem["field"].startswith("$.events[0].metadata")
    assert (await app.get(f"/v1/streams/{stream}", headers=national)).status == 404


@pytest.mark.parametrize("meta", ['{"x": "a\\u0000"}', '{"x\\u0000": 1}'])
async def test_intake_refuses_nul_characters(app: Any, national: dict[str, str], meta: str) -> None:
    """§2.6: PostgreSQL jsonb cannot hold U+0000, so the API refuses it with 422."""
    _, resp = await post_hearing(app, national, meta)
    assert resp.status == 422, await resp.text()


async def test_intake_rounds_through_binary64_and_keeps_the_last_repeated_name(
    app: Any, national: dict[str, str], tmp_path: Path
) -> None:
    """§2.6 at work: 0.30000000000000000001 is stored as 0.3; a repeated name keeps its last."""
    meta = (
        '{"p": 0.30000000000000000001, "q": 4.0, "r": 1E-7, "s": 1e-400, '
        '"t": 18446744073709551617, "dup": "PALSU", "dup": "asli"}'
    )
    _, resp = await post_hearing(app, national, meta)
    assert resp.status == 201, await resp.text()
    position = (await resp.json())["first_position"]
    export, note = await signed_export(app, national, position)
    assert coord_verify(tmp_path, export, note)[0] == 0
    stored = reference_parse(export.splitlines()[position - 1])["event"]["metadata"]
    client = stored.get("client", stored)
    assert {k: client[k] for k in ("p", "q", "r", "s", "t", "dup")} == {
        "p": Decimal("0.3"),
        "q": Decimal(4),
        "r": Decimal("0.0000001"),
        "s": Decimal(0),
        "t": Decimal(18446744073709551617),
        "dup": "asli",
    }
    assert b'"p":0.3,"q":4,"r":0.0000001,' in export and b'"s":0,' in export
