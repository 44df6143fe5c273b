"""C2SP signed notes and tlog checkpoints with Ed25519 keys.

Wire formats follow https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint and
are byte-compatible with golang.org/x/mod/sumdb/note, so auditors can use off-the-shelf
tooling. Key strings use that package's formats:

* verifier key: ``<name>+<8 hex key ID>+<base64(0x01 || 32-byte public key)>``
* signer key:   ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>``
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Checkpoint",
    "CheckpointError",
    "Cosignature",
    "CosignatureVerifier",
    "InvalidSignatureError",
    "NoteError",
    "Signer",
    "UnverifiedNoteError",
    "Verifier",
    "cosign_checkpoint",
    "cosignature_key_id",
    "generate_signer",
    "key_id",
    "open_note",
    "sign_checkpoint",
    "sign_note",
    "signer_from_skey",
    "verify_checkpoint",
]

#: Signature type byte for Ed25519 in key IDs and key strings (C2SP signed-note).
ALG_ED25519 = 0x01
#: Signature type byte of a C2SP tlog-cosignature/v1 (Ed25519 over a timestamped message).
ALG_COSIGNATURE_V1 = 0x04
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100  # C2SP: accept at least 16; golang's note package stops at 100.
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_ROOT_HASH_SIZE = 32


class NoteError(ValueError):
    """A note or key string is malformed, or the note could not be verified."""


class UnverifiedNoteError(NoteError):
    """No signature in the note is from a known key."""


class InvalidSignatureError(NoteError):
    """A signature from a known key does not verify: the note is rejected as a whole."""


class CheckpointError(ValueError):
    """A checkpoint body is malformed or is not the expected log's."""


def _b64decode(s: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4, padded), as Go's ``base64.StdEncoding``."""
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise NoteError(f"invalid base64 {s!r}") from e


def _b64encode(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _is_valid_name(name: str) -> bool:
    """C2SP: key names are non-empty, with no Unicode spaces and no ``+``."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_text(text: str, what: str) -> None:
    """Reject what C2SP forbids anywhere in a note: ASCII controls other than newline."""
    for c in text:
        if c < " " and c != "\n":
            raise NoteError(f"{what} contains control character {c!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates cannot be UTF-8
        raise NoteError(f"{what} is not valid UTF-8") from e


def key_id(name: str, public_key: bytes) -> int:
    """Return the key ID ``SHA-256(name || 0x0A || 0x01 || public_key)[:4]`` (big-endian)."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """An Ed25519 note verifier: key name, key ID and public key."""

    name: str
    key_id: int
    public_key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse a verifier key string ``<name>+<hex id>+<base64(0x01 || pubkey)>``."""
        # maxsplit: the base64 key may itself contain "+".
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError(f"malformed verifier key {vkey!r}")
        name, hex_id, b64 = parts
        if not _is_valid_name(name) or not _HEX8.fullmatch(hex_id):
            raise NoteError(f"malformed verifier key {vkey!r}")
        key = _b64decode(b64)
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError(f"verifier key {vkey!r} is not an Ed25519 key")
        kid = int(hex_id, 16)
        if kid != key_id(name, key[1:]):
            raise NoteError(f"verifier key {vkey!r} has the wrong key ID")
        return cls(name, kid, Ed25519PublicKey.from_public_bytes(key[1:]))

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        raw = bytes([ALG_ED25519]) + _public_raw(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{_b64encode(raw)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 note signer."""

    __slots__ = ("_key", "key_id", "name")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Bind ``private_key`` to key name ``name`` (which the key ID commits to)."""
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}: empty, or contains a space or '+'")
        self.name = name
        self._key = private_key
        self.key_id = key_id(name, _public_raw(private_key.public_key()))

    def __repr__(self) -> str:
        # Never show key material in logs or tracebacks.
        return f"Signer({self.name!r}, key_id={self.key_id:08x})"

    @property
    def verifier(self) -> Verifier:
        """The matching verifier."""
        return Verifier(self.name, self.key_id, self._key.public_key())

    @property
    def vkey(self) -> str:
        """The verifier key string to publish to auditors."""
        return self.verifier.vkey

    @property
    def skey(self) -> str:
        """The secret signer key string (golang note format). Keep it secret."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = bytes([ALG_ED25519]) + seed
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{_b64encode(raw)}"

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)


def generate_signer(name: str) -> Signer:
    """Return a signer with a fresh random Ed25519 key."""
    return Signer(name, Ed25519PrivateKey.generate())


def signer_from_skey(skey: str) -> Signer:
    """Parse a signer key string ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""
    parts = skey.split("+", 4)  # maxsplit: the base64 seed may itself contain "+"
    # Do not echo the key string in errors: it is a secret.
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("malformed signer key")
    _, _, name, hex_id, b64 = parts
    if not _is_valid_name(name) or not _HEX8.fullmatch(hex_id):
        raise NoteError("malformed signer key")
    try:
        key = _b64decode(b64)
    except NoteError:
        raise NoteError("malformed signer key") from None
    if len(key) != 33 or key[0] != ALG_ED25519:
        raise NoteError("signer key is not an Ed25519 key")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(key[1:]))
    if signer.key_id != int(hex_id, 16):
        raise NoteError(f"signer key for {name!r} has the wrong key ID")
    return signer


def sign_note(text: str, signers: Signer | Sequence[Signer]) -> str:
    """Return the signed note: ``text``, a blank line, one signature line per signer.

    ``text`` must end with a newline; the signature covers its UTF-8 bytes exactly.
    """
    if isinstance(signers, Signer):
        signers = [signers]
    if not signers:
        raise NoteError("a note needs at least one signer")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(text, "note text")
    message = text.encode("utf-8")
    lines = []
    for s in signers:
        sig = s.key_id.to_bytes(4, "big") + s.sign(message)
        lines.append(f"{_SIG_PREFIX}{s.name} {_b64encode(sig)}\n")
    return text + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> str:
    """Verify a signed note and return its text (with the final newline).

    Follows C2SP: signatures from unknown keys (name and key ID) are ignored; a known
    key's signature that fails rejects the whole note (``InvalidSignatureError``); a
    note with no verified signature is rejected (``UnverifiedNoteError``). Format
    errors raise ``NoteError``.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError("note is not valid UTF-8") from e
    _check_text(note, "note")
    # The text ends at the last blank line: signature lines never contain one.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    if not sig_block.endswith("\n"):
        raise NoteError("note signatures must end with a newline")
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if _public_raw(other.public_key) != _public_raw(v.public_key):
            # Two keys with one name and ID: we cannot tell which one a signature claims.
            raise NoteError(f"ambiguous verifier keys for {v.name}+{v.key_id:08x}")
    message = text.encode("utf-8")
    sig_lines = sig_block[:-1].split("\n")
    if len(sig_lines) > _MAX_SIGNATURES:
        raise NoteError(f"note has more than {_MAX_SIGNATURES} signatures")
    verified = False
    for line in sig_lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64 or not _is_valid_name(name):
            raise NoteError(f"malformed signature line {line!r}")
        sig = _b64decode(b64)
        if len(sig) < 5:
            raise NoteError(f"malformed signature line {line!r}")
        verifier = known.get((name, int.from_bytes(sig[:4], "big")))
        if verifier is None:
            continue  # e.g. a witness cosignature or a rotated-out key
        if not verifier.verify(message, sig[4:]):
            raise InvalidSignatureError(
                f"signature by {name!r} (key {verifier.key_id:08x}) does not verify"
            )
        verified = True
    if not verified:
        names = sorted({v.name for v in known.values()})
        raise UnverifiedNoteError(f"note has no valid signature from a known key {names}")
    return text


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog checkpoint: the tree head of a log at a given size."""

    origin: str
    size: int
    root_hash: bytes
    #: Opaque extension lines after the root hash (C2SP: NOT RECOMMENDED; coord emits none).
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject heads that would not format to a valid checkpoint body."""
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line:
                raise CheckpointError(f"checkpoint line {line!r} is empty or has a newline")
            if any(c < " " for c in line):
                raise CheckpointError(f"checkpoint line {line!r} has a control character")
        if self.size < 0:
            raise CheckpointError(f"negative tree size {self.size}")
        if len(self.root_hash) != _ROOT_HASH_SIZE:
            raise CheckpointError(f"root hash must be {_ROOT_HASH_SIZE} bytes")

    def format(self) -> str:
        """Return the note text: origin, size, base64 root hash, extensions, one per line."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text (as returned by ``open_note``)."""
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint needs origin, tree size and root hash lines")
        origin, size, b64, *extensions = lines
        # int() would also accept "+5", " 5", "1_000" and non-ASCII digits.
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError(f"malformed tree size {size!r}")
        try:
            root_hash = _b64decode(b64)
        except NoteError as e:
            raise CheckpointError(f"malformed root hash {b64!r}") from e
        # One spelling per tree head: coord writes canonical base64 (zero padding bits).
        if _b64encode(root_hash) != b64:
            raise CheckpointError(f"non-canonical base64 root hash {b64!r}")
        return cls(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """Return the signed checkpoint note; the signer's key name must be the origin."""
    # C2SP: the log's key name SHOULD match the origin; verifiers then need only one
    # configuration item (the vkey) to know both the log identity and its key.
    if signer.name != checkpoint.origin:
        raise CheckpointError(
            f"signer {signer.name!r} cannot sign a checkpoint of {checkpoint.origin!r}"
        )
    return sign_note(checkpoint.format(), signer)


def verify_checkpoint(
    note: str | bytes, verifiers: Iterable[Verifier], origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and return it parsed.

    ``origin``, if given, must equal the checkpoint's origin line: a valid signature on
    another log's checkpoint proves nothing about this log.
    """
    checkpoint = Checkpoint.parse(open_note(note, verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


# -- C2SP tlog-cosignature/v1 ------------------------------------------------------------


def cosignature_key_id(name: str, public_key: bytes) -> int:
    """Key ID of a cosigner: ``SHA-256(name || 0x0A || 0x04 || public_key)[:4]``."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


def _cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    # C2SP tlog-cosignature: the header line, the time line, then the checkpoint body.
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: who cosigned and when (seconds since the Unix epoch)."""

    name: str
    timestamp: int


def cosign_checkpoint(checkpoint_text: str, signer: Signer, timestamp: int) -> str:
    """A cosignature line (``— <name> base64(key ID || timestamp || sig)``) on a checkpoint.

    ``checkpoint_text`` is the checkpoint body (``Checkpoint.format()``, no signatures);
    the caller must have checked it against its own view of the log before cosigning.
    The line can be appended to the checkpoint's signed note as one more signature.
    """
    Checkpoint.parse(checkpoint_text)
    if not 0 <= timestamp < 1 << 63:
        raise NoteError(f"cosignature timestamp {timestamp} out of range")
    raw = signer._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = cosignature_key_id(signer.name, raw)
    sig = signer.sign(_cosigned_message(checkpoint_text, timestamp))
    blob = kid.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
    return f"{_SIG_PREFIX}{signer.name} {_b64encode(blob)}\n"


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A cosigner's key: name, cosignature key ID and Ed25519 public key."""

    name: str
    key_id: int
    public_key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse ``<name>+<hex id>+<base64(0x04 || pubkey)>`` (C2SP tlog-cosignature)."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _is_valid_name(parts[0]) or not _HEX8.fullmatch(parts[1]):
            raise NoteError(f"malformed cosigner key {vkey!r}")
        key = _b64decode(parts[2])
        if len(key) != 33 or key[0] != ALG_COSIGNATURE_V1:
            raise NoteError(f"cosigner key {vkey!r} is not a cosignature/v1 key")
        kid = int(parts[1], 16)
        if kid != cosignature_key_id(parts[0], key[1:]):
            raise NoteError(f"cosigner key {vkey!r} has the wrong key ID")
        return cls(parts[0], kid, Ed25519PublicKey.from_public_bytes(key[1:]))

    @classmethod
    def of(cls, signer: Signer) -> CosignatureVerifier:
        """The cosigner key of a signer (the same Ed25519 key, the cosignature key ID)."""
        pub = signer.verifier.public_key
        return cls(signer.name, cosignature_key_id(signer.name, _public_raw(pub)), pub)

    @property
    def vkey(self) -> str:
        """The cosigner key string to publish."""
        raw = bytes([ALG_COSIGNATURE_V1]) + _public_raw(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{_b64encode(raw)}"

    def verify(self, checkpoint_text: str, line: str) -> Cosignature:
        """Check one cosignature line on a checkpoint body; return it or raise NoteError."""
        line = line.removesuffix("\n")
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"malformed cosignature line {line!r}")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or name != self.name:
            raise NoteError(f"cosignature line is not by {self.name!r}")
        blob = _b64decode(b64)
        if len(blob) != 4 + 8 + 64 or int.from_bytes(blob[:4], "big") != self.key_id:
            raise NoteError(f"cosignature line is not by key {self.key_id:08x}")
        timestamp = int.from_bytes(blob[4:12], "big")
        if timestamp >= 1 << 63:
            raise NoteError("cosignature timestamp out of range")
        try:
            self.public_key.verify(blob[12:], _cosigned_message(checkpoint_text, timestamp))
        except InvalidSignature:
            raise InvalidSignatureError(f"cosignature by {self.name!r} does not verify") from None
        return Cosignature(self.name, timestamp)
