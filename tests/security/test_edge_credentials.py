"""Issue 12 item 4: a malformed Authorization header is never echoed nor logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cli_token
from tests.security.edge_server import coord_serve, raw_exchange

SECRET = "coord_S3cretTokenThatMustNeverAppear0123456789abcdef"

# Each breaks aiohttp's parser: control characters in the value, or a value over 8 KiB.
MALFORMED_TAILS = [b"\x7f", b"\x01", b"\x00", b"\x1b[31m", b"A" * 8192, b"A" * 70_000]


@pytest.mark.parametrize("path", ["/v1/streams/hearing-x", "/healthz"])
async def test_malformed_authorization_is_a_problem_without_the_token(
    database_url: str, tmp_path: Path, path: str
) -> None:
    """Parser-level errors answer problem+json that quotes nothing; the log holds no token."""
    async with coord_serve(database_url, tmp_path) as served:
        for tail in MALFORMED_TAILS:
            request = (
                f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
                + b"Authorization: Bearer "
                + SECRET.encode()
                + tail
                + b"\r\n\r\n"
            )
            answer = await raw_exchange(served.port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b" ")[1] == b"400", answer[:200]
            assert b"Content-Type: application/problem+json" in head
            problem = json.loads(body)
            assert problem["status"] == 400
            assert problem["type"] == "urn:coord:problem:malformed"
            assert SECRET.encode() not in answer
            assert b"S3cret" not in answer
        # A token in a well-formed header on a good request is not logged either.
        ok = await raw_exchange(
            served.port,
            f"GET /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Authorization: Bearer {SECRET}\r\n\r\n".encode(),
        )
        assert ok.startswith(b"HTTP/1.1 401")
        log = served.log()
    assert b"S3cret" not in log, log.decode(errors="replace")
    assert b"http.malformed_request" in log  # the refusals are logged, by class only


async def test_valid_token_in_malformed_request_is_not_logged(
    database_url: str, tmp_path: Path
) -> None:
    """A real token followed by a bad byte: refused, neither echoed nor written to the log."""
    env = {"COORD_DATABASE_URL": database_url, "COORD_HOME": str(tmp_path)}
    import os

    token = await cli_token({**os.environ, **env}, "national", "edge test")
    async with coord_serve(database_url, tmp_path) as served:
        answer = await raw_exchange(
            served.port,
            b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + token.encode()
            + b"\x01\r\n\r\n",
        )
        assert answer.split(b" ")[1] == b"400"
        assert token.encode() not in answer
        log = served.log()
    assert token.encode() not in log
    assert token.encode()[6:30] not in log
