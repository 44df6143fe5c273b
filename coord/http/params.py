"""Query-string parameters, parsed strictly: a bad value is a 422 naming the parameter.

Integers are ASCII digits (an optional leading minus) and always bounded: with no
explicit maximum, by :data:`MAX_QUERY_INT`, which leaves headroom for the arithmetic
SQL does on them (`from_version + limit`) inside PostgreSQL's `bigint`.
"""

from __future__ import annotations

import re

from aiohttp import web

from coord.problems import invalid

# 2^62: positions, versions and sizes never get near it; `x + limit` stays inside int64.
MAX_QUERY_INT = 2**62
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def parse_int(
    raw: str,
    name: str,
    *,
    minimum: int = 0,
    maximum: int | None = None,
    field: str | None = None,
) -> int:
    """`raw` as a bounded integer; 422 on `field` (default `query.<name>`) otherwise."""
    where = field or f"query.{name}"
    if not _INTEGER.fullmatch(raw):
        raise invalid(f"{name} must be an integer", where)
    value = int(raw)
    upper = MAX_QUERY_INT if maximum is None else maximum
    if value < minimum or value > upper:
        raise invalid(f"{name} must be between {minimum} and {upper}", where)
    return value


def int_param(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer query parameter within bounds."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, name, minimum=minimum, maximum=maximum)


def list_param(request: web.Request, name: str) -> list[str] | None:
    """A repeatable or comma-separated parameter (`type=A&type=B` or `type=A,B`)."""
    values = [v for raw in request.query.getall(name, []) for v in raw.split(",") if v]
    return values or None
