"""Query-string parameters, parsed strictly: a bad value is a 422 naming the parameter.

Integers are ASCII digits (an optional leading minus) and always bounded: with no
explicit maximum, by :data:`MAX_QUERY_INT`, which leaves headroom for the arithmetic
SQL does on them (`from_version + limit`) inside PostgreSQL's `bigint`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec
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


# --- a query string into its declared Struct ----------------------------------------------

S = TypeVar("S", bound=msgspec.Struct)

#: how one parameter is read from the query string
_Kind = Literal["int", "float", "bool", "str", "free", "list", "free_list"]


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    kind: _Kind


def _bare(t: Any) -> Any:
    """`t` without its metadata and without `| None` (every query parameter is optional)."""
    while True:
        if isinstance(t, msgspec.inspect.Metadata):
            t = t.type
        elif isinstance(t, msgspec.inspect.UnionType):
            members = [m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)]
            if len(members) != 1:
                return t
            t = members[0]
        else:
            return t


def _free(t: Any) -> bool:
    """A string anything fits (no pattern, no minimum): there, empty means not given."""
    return isinstance(t, msgspec.inspect.StrType) and t.pattern is None and not t.min_length


def _kind_of(t: Any) -> _Kind:
    t = _bare(t)
    if isinstance(t, msgspec.inspect.ListType):
        return "free_list" if _free(_bare(t.item_type)) else "list"
    if isinstance(t, msgspec.inspect.IntType):
        return "int"
    if isinstance(t, msgspec.inspect.FloatType):
        return "float"
    if isinstance(t, msgspec.inspect.BoolType):
        return "bool"
    return "free" if _free(t) else "str"


@functools.cache
def _params_of(struct: type[msgspec.Struct]) -> tuple[_Param, ...]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(_Param(f.encode_name, _kind_of(f.type)) for f in info.fields)


def _scalar(param: _Param, raw: str) -> Any:
    """The hook: the query string's spelling of a scalar, as strict as the old parsers.

    msgspec's lax mode would also take `1e3` or `5.0` for an integer, `1`/`True` for a
    boolean and `null` for an absent value; a query value is read here instead, and
    msgspec then checks it strictly against the declared bounds, enums and patterns.
    """
    name = param.name
    if param.kind == "int":
        # ASCII digits within +-MAX_QUERY_INT; the declared bounds are msgspec's to check
        return parse_int(raw, name, minimum=-MAX_QUERY_INT)
    if param.kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise invalid(f"{name} must be a number", f"query.{name}") from None
    if param.kind == "bool":
        if raw not in ("true", "false"):
            raise invalid(f"{name} must be true or false", f"query.{name}")
        return raw == "true"
    return raw


_AT = re.compile(r" - at `\$\.([^`.\[]+)")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def parse_query(request: web.Request, struct: type[S]) -> S:
    """``request.query`` as `struct`, the Struct the OpenAPI document shows; 422 otherwise.

    - a list field takes repeated keys and comma-separated values (`type=A&type=B`,
      `type=A,B`); its items are validated one by one (`category=` is a 422), except
      free strings, where empty items are dropped;
    - every other field must be given once (422 when repeated);
    - present means present: `limit=` is validated like any value, except for a free
      string (no pattern, no minimum: `cursor=`, `from=`), where empty means not given;
    - parameters the Struct does not declare are ignored (as a browser's extras are).

    A refused value is the 422 problem with the field path `query.<name>`.
    """
    data: dict[str, Any] = {}
    for param in _params_of(struct):
        values = request.query.getall(param.name, [])
        if not values:
            continue
        if param.kind in ("list", "free_list"):
            items = [v for raw in values for v in raw.split(",")]
            if param.kind == "free_list":
                items = [v for v in items if v]
            if items:
                data[param.name] = items
            continue
        if len(values) > 1:
            raise invalid(f"{param.name} must be given once", f"query.{param.name}")
        if param.kind == "free" and not values[0]:
            continue
        data[param.name] = _scalar(param, values[0])
    try:
        # strict: every value above already has its Python type (see `_scalar`)
        return msgspec.convert(data, struct, strict=True)
    except msgspec.ValidationError as e:
        message = str(e)
        if missing := _MISSING.search(message):
            name = missing.group(1)
            raise invalid(f"{name} is required", f"query.{name}") from None
        at = _AT.search(message)
        detail = message.split(" - at ")[0]
        if at is None:
            raise invalid(detail, "query") from None
        raise invalid(f"{at.group(1)}: {detail}", f"query.{at.group(1)}") from None
