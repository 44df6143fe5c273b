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


def one(request: web.Request, name: str) -> str | None:
    """A single-valued parameter as given (None if absent); 422 if it is repeated.

    Present means present: `name=` is the empty string, which each caller validates like
    any other value, so that the server refuses what the document does not allow.
    """
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise invalid(f"{name} must be given once", f"query.{name}")
    return values[0] if values else None


def int_param(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer query parameter within bounds (`default` when absent; `name=` is a 422)."""
    raw = one(request, name)
    if raw is None:
        return default
    return parse_int(raw, name, minimum=minimum, maximum=maximum)


def list_param(
    request: web.Request,
    name: str,
    *,
    allowed: frozenset[str] | None = None,
    pattern: re.Pattern[str] | None = None,
) -> list[str] | None:
    """A repeatable or comma-separated parameter (`type=A&type=B` or `type=A,B`).

    With `allowed` or `pattern`, every item must match (an empty item too: `name=` is a
    422, as the document's enum/pattern refuses it); without, empty items are dropped.
    """
    items = [v for raw in request.query.getall(name, []) for v in raw.split(",")]
    if allowed is None and pattern is None:
        return [v for v in items if v] or None
    for item in items:
        if (allowed is not None and item not in allowed) or (
            pattern is not None and not pattern.fullmatch(item)
        ):
            hint = f"among {', '.join(sorted(allowed))}" if allowed is not None else "a code"
            raise invalid(f"{name} must be {hint}, not {item!r}", f"query.{name}")
    return items or None
