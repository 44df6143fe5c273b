"""Route declarations for the OpenAPI document: what a handler takes and returns.

Every route declares itself here, next to its handler; coord/openapi.py (the
generator) reads the declarations off the app's routes and imports no handler module,
so any handler module can use :func:`documented` without an import cycle::

    from coord.apidoc import documented

    @routes.get("/v1/views/issues")
    @documented(query=IssueBoardQuery, responses={200: IssuePage}, errors=(404,))
    async def issue_board(request: web.Request) -> web.Response: ...

Types are anything msgspec can describe (Structs, unions, lists, Annotated ...).
The path Structs shared by several modules live here too (:class:`StreamPath`,
:class:`IdPath`, :class:`RegionPath`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, cast

import msgspec
from aiohttp import web

from coord.auth import Role, require_role
from events.domain.ids import CanonicalUUID

# --- path parameters shared by several modules -------------------------------------------

StreamIdParam = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9._:]+-[A-Za-z0-9._:-]+$", max_length=200)
]


class StreamPath(msgspec.Struct):
    """Path of stream routes."""

    stream_id: StreamIdParam


class IdPath(msgspec.Struct):
    """Path of aggregate routes: the UUID part of the stream id (lowercase canonical form)."""

    id: CanonicalUUID


class RegionPath(msgspec.Struct):
    """Path of region routes: a dotted Kemendagri code."""

    code: Annotated[str, msgspec.Meta(examples=["35", "35.71"])]


# --- declarations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A body of `type` (a msgspec type; None: no schema) in `media_type`."""

    type: Any
    media_type: str = "application/json"


@dataclass(frozen=True)
class AllOf:
    """A JSON object that has the members of every one of `types` (handlers that merge)."""

    types: tuple[Any, ...]


@dataclass(frozen=True)
class Operation:
    """What a route takes and returns; every type is a msgspec-understood type.

    `body`/`responses` values may be a type, a :class:`Body` (other media type),
    a tuple of `Body` (several media types) or an :class:`AllOf`; None in
    `responses` means no body. `query` and `path` are Structs whose fields are
    the parameters; `headers` maps request header names to types (all optional);
    `response_headers` maps header names to types for every 2xx response.
    """

    responses: Mapping[int, Any] = field(default_factory=lambda: {200: Any})
    body: Any = None
    body_required: bool = True
    query: type[msgspec.Struct] | None = None
    path: type[msgspec.Struct] | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    response_headers: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    roles: tuple[Role, ...] = ()
    summary: str | None = None
    tags: tuple[str, ...] = ()


_H = TypeVar("_H", bound=Callable[..., Any])


def documented(
    *,
    responses: Mapping[int, Any] | None = None,
    body: Any = None,
    body_required: bool = True,
    query: type[msgspec.Struct] | None = None,
    path: type[msgspec.Struct] | None = None,
    headers: Mapping[str, Any] | None = None,
    response_headers: Mapping[str, Any] | None = None,
    errors: Iterable[int] = (),
    roles: Iterable[Role] = (),
    summary: str | None = None,
    tags: Iterable[str] = (),
) -> Callable[[_H], _H]:
    """Declare a handler's wire types for the OpenAPI document (see the module docstring).

    `roles` is also what the route enforces: a caller of another role gets the 403
    before the handler runs (no role given: every authenticated role, or public).
    """
    op = Operation(
        responses=responses if responses is not None else {200: Any},
        body=body,
        body_required=body_required,
        query=query,
        path=path,
        headers=headers or {},
        response_headers=response_headers or {},
        errors=tuple(errors),
        roles=tuple(roles),
        summary=summary,
        tags=tuple(tags),
    )

    def mark(handler: _H) -> _H:
        route = handler
        if op.roles:

            @functools.wraps(handler)
            async def checked(request: web.Request) -> Any:
                require_role(request, *op.roles)
                return await handler(request)

            route = cast(_H, checked)
        route.__openapi__ = op  # type: ignore[attr-defined]
        return route

    return mark
