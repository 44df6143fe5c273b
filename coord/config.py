"""Configuration: environment variables, overridden by command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from events.domain.topology import MODES, Mode

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
    # Longest a looked-up token is trusted without asking the database again: the
    # backstop if a revocation's notification is lost (issue 17).
    token_cache_lifetime: float = 30.0
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
    # Edge limits (issue 12 item 8, issue 13 item 2); README "Limits" lists them all.
    # Seconds a client may take to send a request's headers (also the idle keep-alive).
    header_timeout: float = 10.0
    # Seconds a client may take to send a request's body once its headers arrived.
    body_timeout: float = 15.0
    # Seconds an append may take (loading, deciding, storing, sequencing) before 503.
    append_timeout: float = 15.0
    # Seconds any other request (reads; not the event feed) may take before 503. Above
    # the views' own 15 s statement bound and read-your-writes wait.
    request_timeout: float = 30.0
    # Token buckets: sustained requests per second and burst, per token. 0 turns one off.
    rate_limit_per_token: float = 200.0
    rate_limit_burst: int = 400
    # Requests without a valid token, per client IP (a stricter bucket: guessing tokens).
    rate_limit_unauthenticated: float = 2.0
    rate_limit_unauthenticated_burst: int = 20
    # Expensive operations (projection rebuilds) per token: per minute, and burst.
    rate_limit_expensive_per_minute: float = 2.0
    rate_limit_expensive_burst: int = 2
    # Serve on a PostgreSQL whose settings may lose acknowledged appends (fsync,
    # synchronous_commit or full_page_writes off): only for throw-away data.
    allow_unsafe_durability: bool = False
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
        if lifetime := env.get("COORD_TOKEN_CACHE_LIFETIME"):
            values["token_cache_lifetime"] = float(lifetime)
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
        for name, (var, kind) in _NUMBERS.items():
            if raw := env.get(var):
                values[name] = _number(var, raw, kind)
        if env.get("COORD_ALLOW_UNSAFE_DURABILITY", "").lower() in ("1", "true", "yes"):
            values["allow_unsafe_durability"] = True
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# Numeric settings read from the environment: field -> (variable, type).
_NUMBERS: dict[str, tuple[str, type[int] | type[float]]] = {
    "header_timeout": ("COORD_HEADER_TIMEOUT_SECONDS", float),
    "body_timeout": ("COORD_BODY_TIMEOUT_SECONDS", float),
    "append_timeout": ("COORD_APPEND_TIMEOUT_SECONDS", float),
    "request_timeout": ("COORD_REQUEST_TIMEOUT_SECONDS", float),
    "rate_limit_per_token": ("COORD_RATE_LIMIT_PER_TOKEN", float),
    "rate_limit_burst": ("COORD_RATE_LIMIT_BURST", int),
    "rate_limit_unauthenticated": ("COORD_RATE_LIMIT_UNAUTHENTICATED", float),
    "rate_limit_unauthenticated_burst": ("COORD_RATE_LIMIT_UNAUTHENTICATED_BURST", int),
    "rate_limit_expensive_per_minute": ("COORD_RATE_LIMIT_EXPENSIVE_PER_MINUTE", float),
    "rate_limit_expensive_burst": ("COORD_RATE_LIMIT_EXPENSIVE_BURST", int),
    "sse_connections_per_token": ("COORD_SSE_CONNECTIONS_PER_TOKEN", int),
    "sse_buffer_bytes": ("COORD_SSE_BUFFER_BYTES", int),
    "sse_stall_timeout": ("COORD_SSE_STALL_TIMEOUT", float),
}


def _number(var: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{var} must be a {kind.__name__}, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{var} must not be negative")
    return value


def parse_regions(text: str) -> tuple[str, ...]:
    """`35, 36.01` -> ("35", "36.01"): a comma-separated list of region codes."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
