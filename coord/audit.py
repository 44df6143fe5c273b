"""Wiring of the verifiable log: the signing key and the tree builder's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from coord import db
from coord.config import Config
from coord.cosigner import Cosigner, HubWitness
from coord.keys import AUDIT, CONFIG, DSN, NODE, POOL, STORE
from events.audit.audit_log import AuditLog, TreeBuilder
from events.audit.notes import Signer, generate_signer, signer_from_skey

log = structlog.get_logger("coord.audit")

KEY_FILE = "audit-signing.key"
_SKEY_PREFIX = "PRIVATE+KEY+"


def origin_of(config: Config, node_id: str | None = None) -> str:
    """The checkpoint origin (and key name): configured, else `coord.local/<node id>`."""
    return config.audit_origin or f"coord.local/{node_id or config.node_id or 'local'}"


class SigningKeyError(ValueError):
    """The configured signing key cannot be used; said in one line, not a traceback."""


def load_signer(config: Config, node_id: str | None = None) -> Signer:
    """The log's Ed25519 signer.

    `config.signing_key` is a signer key string (`PRIVATE+KEY+...`) or the path of a
    file holding one. Without it, the key lives in `COORD_HOME/audit-signing.key`
    (mode 0600), generated at first start. The key name must equal the origin: the key
    ID commits to the name, so a renamed origin needs a new key, not a relabelled one.
    """
    origin = origin_of(config, node_id)
    if config.signing_key:
        text = config.signing_key.strip()
        if not text.startswith(_SKEY_PREFIX):
            try:
                text = Path(text).read_text(encoding="ascii").strip()
            except (OSError, ValueError) as e:
                # A placeholder such as the manifests' CHANGE-ME lands here.
                raise SigningKeyError(
                    f"COORD_SIGNING_KEY is neither a signer key ({_SKEY_PREFIX}...) nor a "
                    f"readable key file ({type(e).__name__}); put the node's key there, or "
                    "unset it to generate one under COORD_HOME (docs/deploy.md)"
                ) from e
        try:
            signer = signer_from_skey(text)
        except ValueError as e:
            raise SigningKeyError(f"COORD_SIGNING_KEY does not hold a valid signer key: {e}") from e
    else:
        path = config.home / KEY_FILE
        if not path.exists():
            config.home.mkdir(parents=True, exist_ok=True)
            signer = generate_signer(origin)
            # Two processes starting at once (`coord serve --workers N`) must end up with
            # one key, and neither may read a half-written file: write a private temp
            # file, then link it into place, which fails if another process won.
            fd, tmp = tempfile.mkstemp(dir=config.home, prefix=".key-")
            try:
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(signer.skey + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o600)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                else:
                    log.info("audit.key_generated", path=str(path), vkey=signer.vkey)
            finally:
                os.unlink(tmp)
        signer = signer_from_skey(path.read_text(encoding="ascii").strip())
    if signer.name != origin:
        raise SigningKeyError(
            f"the signing key is for origin {signer.name!r} but the configured origin is "
            f"{origin!r}: set COORD_AUDIT_ORIGIN={signer.name} or supply a key for {origin!r}"
        )
    return signer


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The audit read side, and the tree builder (competing for leadership) as a task."""
    config = app[CONFIG]
    signer = load_signer(config, app[NODE].node_id)
    app[AUDIT] = AuditLog(app[POOL], signer)
    # Published in the database: `coord federation add-region` hands it to the hub, which
    # checks this node's checkpoints with it before cosigning them (coord/cosigner.py).
    await app[POOL].execute(
        "UPDATE coord_node SET audit_vkey = $1 WHERE audit_vkey IS DISTINCT FROM $1", signer.vkey
    )
    builder = TreeBuilder(
        functools.partial(db.connect, app[DSN], name="coord tree-builder", derived=True),
        app[STORE].head,
        signer,
        checkpoint_interval=config.audit_checkpoint_interval,
    )
    if not config.background:
        yield
        return
    tasks = [asyncio.create_task(builder.run(), name="tree-builder")]
    if app[NODE].mode == "hub":
        cosigner = Cosigner(
            functools.partial(db.connect, app[DSN], name="coord cosigner", derived=True), signer
        )
        tasks.append(asyncio.create_task(cosigner.run(), name="cosigner"))
    elif app[NODE].mode == "regional":
        witness = HubWitness(
            functools.partial(db.connect, app[DSN], name="coord hub-witness", derived=True), signer
        )
        tasks.append(asyncio.create_task(witness.run(), name="hub-witness"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
