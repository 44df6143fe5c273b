"""Configuration: environment variables, overridden by command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from events.topology import MODES, Mode

LogFormat = Literal["json", "console"]


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """Everything coord needs to start. Built by `Config.from_env`; tests build it directly."""

    # None: start (or reuse) an embedded PostgreSQL under `home/pgdata`.
    database_url: str | None = None
    home: Path = Path(".coord")
    host: str = "127.0.0.1"
    port: int = 8080
    log_format: LogFormat = "console"
    # "warning" drops the per-request line (about 2% of a busy server's CPU).
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Federation (issue 7). None: what the database recorded at the last start, else
    # "local" / "standalone" (see coord/federation.py: ensure_identity).
    node_id: str | None = None
    mode: Mode | None = None
    # The regions a regional node serves: Kemendagri codes, a province (`35`) or regencies.
    regions: tuple[str, ...] | None = None
    max_body_bytes: int = 1024 * 1024
    # How long an append waits for the sequencer to give its events positions.
    sequencing_timeout: float = 10.0
    pool_min_size: int = 2
    pool_max_size: int = 16
    demo: bool = False
    # Run the projection runners and the Merkle tree builder in this process. With
    # `coord serve --workers N` the HTTP workers leave them to one background process.
    background: bool = True
    # Compete to sequence the log. `coord background` leaves it to the HTTP workers,
    # where a sequenced append's waiting request is resolved without a round trip.
    sequence: bool = True
    # Verifiable history (issue 5): checkpoint origin / key name (None: coord.local/<node_id>),
    # signer key string or file (None: generated once under `home`), checkpoint cadence.
    audit_origin: str | None = None
    signing_key: str | None = None
    audit_checkpoint_interval: float = 1.0
    # Live feed (SSE) limits, per process: open feeds per token (429 beyond), unsent bytes
    # held for one client, and how long a client may leave them unread before it is dropped.
    sse_connections_per_token: int = 8
    sse_buffer_bytes: int = 256 * 1024
    sse_stall_timeout: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read `COORD_*` variables; keyword overrides (from flags) win when not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if url := env.get("COORD_DATABASE_URL"):
            values["database_url"] = url
        if home := env.get("COORD_HOME"):
            values["home"] = Path(home)
        if host := env.get("COORD_HOST"):
            values["host"] = host
        if port := env.get("COORD_PORT"):
            values["port"] = int(port)
        if fmt := env.get("COORD_LOG_FORMAT"):
            if fmt not in ("json", "console"):
                raise ValueError("COORD_LOG_FORMAT must be 'json' or 'console'")
            values["log_format"] = fmt
        if level := env.get("COORD_LOG_LEVEL"):
            if level not in ("debug", "info", "warning", "error"):
                raise ValueError("COORD_LOG_LEVEL must be debug, info, warning or error")
            values["log_level"] = level
        if node := env.get("COORD_NODE_ID"):
            values["node_id"] = node
        if mode := env.get("COORD_MODE"):
            if mode not in MODES:
                raise ValueError("COORD_MODE must be standalone, regional or hub")
            values["mode"] = mode
        if regions := env.get("COORD_REGIONS"):
            values["regions"] = parse_regions(regions)
        if size := env.get("COORD_MAX_BODY_BYTES"):
            values["max_body_bytes"] = int(size)
        if pool_max := env.get("COORD_POOL_MAX_SIZE"):
            values["pool_max_size"] = int(pool_max)
        if env.get("COORD_DEMO", "").lower() in ("1", "true", "yes"):
            values["demo"] = True
        if origin := env.get("COORD_AUDIT_ORIGIN"):
            values["audit_origin"] = origin
        if signing_key := env.get("COORD_SIGNING_KEY"):
            values["signing_key"] = signing_key
        if interval := env.get("COORD_AUDIT_CHECKPOINT_INTERVAL"):
            values["audit_checkpoint_interval"] = float(interval)
        if feeds := env.get("COORD_SSE_CONNECTIONS_PER_TOKEN"):
            values["sse_connections_per_token"] = int(feeds)
        if buffer := env.get("COORD_SSE_BUFFER_BYTES"):
            values["sse_buffer_bytes"] = int(buffer)
        if stall := env.get("COORD_SSE_STALL_TIMEOUT"):
            values["sse_stall_timeout"] = float(stall)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def parse_regions(text: str) -> tuple[str, ...]:
    """`35, 36.01` -> ("35", "36.01"): a comma-separated list of region codes."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
