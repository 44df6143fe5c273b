"""C2SP signed notes and tlog checkpoints: known answers, rejection, round trips."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.audit.merkle import EMPTY_ROOT
from events.audit.notes import (
    Checkpoint,
    CheckpointError,
    InvalidSignatureError,
    NoteError,
    Signer,
    UnverifiedNoteError,
    Verifier,
    generate_signer,
    key_id,
    open_note,
    sign_checkpoint,
    sign_note,
    signer_from_skey,
    verify_checkpoint,
)

EM = "\u2014"

# golang.org/x/mod/sumdb/note: package documentation and note_test.go (TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    f"{EM} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM} EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG

# C2SP signed-note specification example (revision d4c16da).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    f"{EM} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# The Go checksum database's published key: its base64 contains '+'.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

# C2SP tlog-checkpoint specification example body.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)

VECTORS = json.loads((Path(__file__).parent / "rfc6962-vectors.json").read_text("utf-8"))


@pytest.fixture
def peter() -> Verifier:
    return Verifier.from_vkey(PETER_VKEY)


@pytest.fixture
def enoch() -> Verifier:
    return Verifier.from_vkey(ENOCH_VKEY)


# --- keys ----------------------------------------------------------------------------


def test_key_id_is_truncated_sha256_of_name_newline_type_and_key() -> None:
    """Key ID = first 4 bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || pubkey)."""
    pub = base64.b64decode(PETER_VKEY.split("+")[2])[1:]
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + pub).digest()
    assert key_id("PeterNeumann", pub) == int.from_bytes(digest[:4], "big") == 0xC74F20A3


@pytest.mark.parametrize(
    ("vkey", "name", "kid"),
    [
        (PETER_VKEY, "PeterNeumann", 0xC74F20A3),
        (ENOCH_VKEY, "EnochRoot", 0xAF0CFE78),
        (SPEC_VKEY, "example.com/foo", 0x530D903A),
        (SUMDB_VKEY, "sum.golang.org", 0x033DE0AE),
    ],
)
def test_vkey_parses_and_round_trips(vkey: str, name: str, kid: int) -> None:
    """Published verifier keys parse to their name and key ID and format back identically."""
    v = Verifier.from_vkey(vkey)
    assert (v.name, v.key_id) == (name, kid)
    assert v.vkey == vkey


def test_skey_known_answer() -> None:
    """The Go example signer key yields the Go example verifier key and formats back."""
    signer = signer_from_skey(PETER_SKEY)
    assert (signer.name, signer.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert signer.vkey == PETER_VKEY
    assert signer.skey == PETER_SKEY
    assert "AYEK" not in repr(signer)


def _manglings(key: str) -> list[str]:
    """Every proper substring and every one-character increment of ``key`` (as Go's tests)."""
    out = {key[i:j] for i in range(len(key)) for j in range(i + 1, len(key) + 1)}
    out |= {key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))}
    out.discard(key)
    return sorted(out)


def test_mangled_vkeys_are_rejected() -> None:
    """No substring or single-character change of a verifier key parses."""
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(NoteError):
            Verifier.from_vkey(bad)


def test_mangled_skeys_are_rejected() -> None:
    """No substring or single-character change of a signer key parses."""
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(NoteError):
            signer_from_skey(bad)


@pytest.mark.parametrize(
    ("vkey", "match"),
    [
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "Ed25519"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "Ed25519"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "wrong key ID"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed"),
        ("PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed"),
    ],
)
def test_bad_vkeys_name_the_problem(vkey: str, match: str) -> None:
    """Wrong length, unknown algorithm, wrong key ID and bad names are distinct errors."""
    with pytest.raises(NoteError, match=match):
        Verifier.from_vkey(vkey)


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\u00a0b", "tab\there"])
def test_invalid_key_names_are_rejected(name: str) -> None:
    """Key names must be non-empty without spaces or '+'."""
    with pytest.raises(NoteError, match="invalid key name"):
        Signer(name, Ed25519PrivateKey.generate())


def test_generated_signer_round_trips_through_its_key_strings() -> None:
    """A generated signer's skey parses back to a signer with the same vkey."""
    signer = generate_signer("coord.example/log")
    again = signer_from_skey(signer.skey)
    assert again.vkey == signer.vkey == Verifier.from_vkey(signer.vkey).vkey
    assert signer.skey.startswith(f"PRIVATE+KEY+coord.example/log+{signer.key_id:08x}+")


# --- notes ---------------------------------------------------------------------------


def test_sign_known_answer() -> None:
    """Signing the Go example text with the Go example key reproduces the Go note exactly."""
    assert sign_note(TEXT, signer_from_skey(PETER_SKEY)) == PETER_NOTE


def test_open_known_answers(peter: Verifier) -> None:
    """The Go example note and the C2SP spec example note open to their texts."""
    assert open_note(PETER_NOTE, [peter]) == TEXT
    assert open_note(PETER_NOTE.encode(), [peter]) == TEXT
    spec = Verifier.from_vkey(SPEC_VKEY)
    assert open_note(SPEC_NOTE, [spec]) == "This is an example message.\n"


def test_signatures_from_unknown_keys_are_ignored(peter: Verifier, enoch: Verifier) -> None:
    """A note opens if one known key verifies; other keys' signatures are skipped."""
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [peter]) == TEXT
    assert open_note(note, [enoch]) == TEXT
    assert open_note(note, [peter, enoch]) == TEXT


def test_multiple_signers() -> None:
    """sign_note with several signers emits one line each, in order."""
    a, b = generate_signer("a.example"), generate_signer("b.example")
    note = sign_note("hello\n", [a, b])
    lines = note.split("\n")
    assert lines[0] == "hello" and lines[1] == ""
    assert lines[2].startswith(f"{EM} a.example ") and lines[3].startswith(f"{EM} b.example ")
    assert open_note(note, [b.verifier]) == "hello\n"


def test_no_known_signature_is_rejected(peter: Verifier, enoch: Verifier) -> None:
    """A note with no signature from a known key is rejected."""
    with pytest.raises(UnverifiedNoteError, match="no valid signature"):
        open_note(PETER_NOTE, [enoch])
    with pytest.raises(UnverifiedNoteError):
        open_note(PETER_NOTE, [])


def test_wrong_key_with_same_name_is_not_trusted(peter: Verifier) -> None:
    """Another key under the same name has another key ID, so its signature does not count."""
    impostor = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note(TEXT, impostor), [peter])


def test_tampered_text_is_rejected(peter: Verifier) -> None:
    """Changing one character of a signed text breaks the known key's signature."""
    tampered = PETER_NOTE.replace("answer", "answers", 1)
    with pytest.raises(InvalidSignatureError, match="PeterNeumann"):
        open_note(tampered, [peter])


def test_corrupt_signature_from_known_key_rejects_the_note(peter: Verifier) -> None:
    """A known key's bad signature rejects the note even if another signature verifies."""
    corrupt = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + corrupt, [peter])
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + PETER_SIG + corrupt, [peter])


def test_key_id_collision_with_a_different_key_fails_verification(peter: Verifier) -> None:
    """A verifier configured with the right name and ID but another key rejects the note."""
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(InvalidSignatureError):
        open_note(PETER_NOTE, [Verifier("PeterNeumann", 0xC74F20A3, other)])


def test_ambiguous_verifiers_are_rejected(peter: Verifier) -> None:
    """Two different keys with the same name and ID make verification ambiguous."""
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(NoteError, match="ambiguous"):
        open_note(PETER_NOTE, [peter, Verifier("PeterNeumann", 0xC74F20A3, other)])
    assert open_note(PETER_NOTE, [peter, peter]) == TEXT


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace(EM, "-"),
        TEXT + "\n" + f"{EM} PeterNeumann AAAA\n",
        TEXT + "\n" + f"{EM} PeterNeumann\n",
        "a\rb\n\n" + PETER_SIG,
    ],
)
def test_malformed_notes_are_rejected(note: str | bytes, peter: Verifier) -> None:
    """Notes violating the C2SP syntax are rejected as malformed, not as unverified."""
    with pytest.raises(NoteError) as info:
        open_note(note, [peter])
    assert type(info.value) is NoteError


def test_signature_count_is_bounded(peter: Verifier) -> None:
    """Up to 100 signature lines are accepted (C2SP: at least 16), more are malformed."""
    assert open_note(TEXT + "\n" + PETER_SIG * 100, [peter]) == TEXT
    with pytest.raises(NoteError, match="more than 100"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [peter])


@pytest.mark.parametrize("text", ["abc", "", "a\x00b\n", "line\r\n"])
def test_sign_rejects_unsignable_text(text: str) -> None:
    """Note text must end in a newline and contain no control characters but newline."""
    with pytest.raises(NoteError):
        sign_note(text, signer_from_skey(PETER_SKEY))


def test_text_with_blank_lines_round_trips() -> None:
    """Text may contain blank lines: the last blank line separates the signatures."""
    signer = generate_signer("x.example")
    for text in ["a\n\nb\n", "a\n\n", "\n", "ünïcödé — ok\n"]:
        assert open_note(sign_note(text, signer), [signer.verifier]) == text


# --- checkpoints ---------------------------------------------------------------------


def test_checkpoint_spec_example_round_trips() -> None:
    """The C2SP tlog-checkpoint example body parses and formats back byte for byte."""
    cp = Checkpoint.parse(SPEC_CHECKPOINT)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.format() == SPEC_CHECKPOINT


def test_checkpoint_body_format() -> None:
    """The body is origin, decimal size, base64 root, each newline-terminated."""
    root8 = bytes.fromhex(VECTORS["roots"]["8"])
    cp = Checkpoint("coord.example/log", 8, root8)
    assert cp.format() == "coord.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert Checkpoint("o", 0, EMPTY_ROOT).format().split("\n")[1] == "0"


def test_checkpoint_extensions_round_trip() -> None:
    """Extension lines after the root hash are kept in order."""
    cp = Checkpoint("o", 3, EMPTY_ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(cp.format()) == cp


@pytest.mark.parametrize(
    "text",
    [
        "o\n1\n",
        "o\n1\n" + base64.b64encode(EMPTY_ROOT).decode(),
        "\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n01\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n+1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n 1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n1_0\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n\u0661\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n-1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "o\n1\nnot base64!\n",
        "o\n1\n" + base64.b64encode(EMPTY_ROOT[:31]).decode() + "\n",
        "o\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n",
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    """Missing lines, non-canonical sizes, bad hashes and empty lines are rejected."""
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_sign_and_verify_checkpoint() -> None:
    """A signed checkpoint verifies with the log's vkey and returns the same head."""
    signer = generate_signer("coord.example/log")
    cp = Checkpoint("coord.example/log", 8, bytes.fromhex(VECTORS["roots"]["8"]))
    note = sign_checkpoint(cp, signer)
    assert note.startswith(cp.format() + "\n" + f"{EM} coord.example/log ")
    verifier = Verifier.from_vkey(signer.vkey)
    assert verify_checkpoint(note, [verifier]) == cp
    assert verify_checkpoint(note, [verifier], origin="coord.example/log") == cp


def test_checkpoint_for_another_log_is_rejected() -> None:
    """verify_checkpoint with an expected origin rejects other logs' checkpoints."""
    signer = generate_signer("other.example/log")
    note = sign_checkpoint(Checkpoint("other.example/log", 1, EMPTY_ROOT), signer)
    with pytest.raises(CheckpointError, match=r"expected 'coord\.example/log'"):
        verify_checkpoint(note, [signer.verifier], origin="coord.example/log")


def test_signer_name_must_be_the_origin() -> None:
    """A log signs only checkpoints whose origin is its key name."""
    signer = generate_signer("coord.example/log")
    with pytest.raises(CheckpointError, match="cannot sign"):
        sign_checkpoint(Checkpoint("elsewhere", 1, EMPTY_ROOT), signer)


def test_tampered_checkpoint_is_rejected() -> None:
    """Changing the signed tree size invalidates the checkpoint signature."""
    signer = generate_signer("coord.example/log")
    note = sign_checkpoint(Checkpoint("coord.example/log", 8, EMPTY_ROOT), signer)
    with pytest.raises(InvalidSignatureError):
        verify_checkpoint(note.replace("\n8\n", "\n9\n", 1), [signer.verifier])


def test_cosignature_round_trip_and_tampering() -> None:
    """C2SP tlog-cosignature/v1: verifies on the body it signed, nowhere else."""
    from events.audit.notes import (
        Checkpoint,
        CosignatureVerifier,
        cosign_checkpoint,
        cosignature_key_id,
        generate_signer,
        open_note,
        sign_checkpoint,
    )

    log_key, hub = generate_signer("coord.local/jatim"), generate_signer("coord.local/hub")
    body = Checkpoint("coord.local/jatim", 12, bytes(range(32))).format()
    line = cosign_checkpoint(body, hub, 1_700_000_000)
    cosigner = CosignatureVerifier.from_vkey(CosignatureVerifier.of(hub).vkey)
    got = cosigner.verify(body, line)
    assert (got.name, got.timestamp) == ("coord.local/hub", 1_700_000_000)
    # Appended to the log's own note, ordinary note verifiers skip it (unknown key ID).
    note = sign_checkpoint(Checkpoint.parse(body), log_key) + line
    assert open_note(note, [log_key.verifier]) == body
    # Its key ID is the cosignature one (0x04), not the note key ID of the same key.
    kid = int.from_bytes(base64.b64decode(line.split(" ")[2])[:4], "big")
    assert kid == cosigner.key_id != hub.key_id
    assert kid == cosignature_key_id(hub.name, cosigner.public_key.public_bytes_raw())
    other = Checkpoint("coord.local/jatim", 13, bytes(range(32))).format()
    with pytest.raises(NoteError):
        cosigner.verify(other, line)  # another tree head
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[11] ^= 1  # another time
    forged = f"— coord.local/hub {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(NoteError):
        cosigner.verify(body, forged)
    with pytest.raises(NoteError):
        CosignatureVerifier.of(log_key).verify(body, line)  # not this cosigner's
    with pytest.raises(NoteError):
        CosignatureVerifier.from_vkey(hub.vkey)  # a note key is not a cosigner key
