"""structlog, configured once: JSON lines in production, readable lines on a terminal."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import msgspec
import structlog

from coord.config import LogFormat


def _default(obj: Any) -> Any:
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_default)


def _serializer(obj: Any, **_kw: Any) -> str:
    # structlog passes `default=`, which msgspec does not take; the hook covers it.
    return _encoder.encode(obj).decode()


# A bearer token (coord_ + 43 url-safe characters) or whatever follows "Bearer ".
_SECRET = re.compile(r"coord_[A-Za-z0-9_-]{8,}|(?<=Bearer )[^\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with anything that looks like a bearer token replaced by `[redacted]`."""
    return _SECRET.sub("[redacted]", text)


def _redact_event(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Last line of defence: no code path logs a header, but a token must never land
    # in a log even if one did (README: no tokens in logs).
    for key, value in event.items():
        if isinstance(value, str) and ("coord_" in value or "earer " in value):
            event[key] = redact(value)
    return event


class RedactingFilter(logging.Filter):
    """Redacts bearer tokens from stdlib log records (aiohttp, asyncpg) and their tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's text and traceback; never drops a record."""
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
            record.exc_text = None
        return True


class BriefFilter(logging.Filter):
    """Replaces a record's traceback by its exception's one-line summary.

    For asyncpg's pool, which logs a traceback each time it cannot refill its minimum
    of connections: while the database is down that says nothing the line
    `database.unavailable` does not (coord/availability.py).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Shorten the record; never drops it."""
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(fmt: LogFormat = "console", level: int = logging.INFO) -> None:
    """Configure structlog (and route stdlib logging through the same level)."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_serializer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, BriefFilter) for f in pool_log.filters):
        pool_log.addFilter(BriefFilter())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
