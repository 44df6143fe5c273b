"""Query-string parameters, parsed strictly: a bad value is a 422 naming the parameter."""

from __future__ import annotations

from aiohttp import web

from coord.problems import invalid


def int_param(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer query parameter within bounds."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer", f"query.{name}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise invalid(f"{name} must be {bound}", f"query.{name}")
    return value


def list_param(request: web.Request, name: str) -> list[str] | None:
    """A repeatable or comma-separated parameter (`type=A&type=B` or `type=A,B`)."""
    values = [v for raw in request.query.getall(name, []) for v in raw.split(",") if v]
    return values or None
