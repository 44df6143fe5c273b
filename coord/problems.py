"""RFC 9457 problem details: the one shape every error response takes."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:coord:problem:"


class Problem(Exception):
    """An error that becomes an `application/problem+json` response.

    `slug` names the problem type (`urn:coord:problem:<slug>`); `extra` adds
    members such as `field`, `expected_version` or `rule`.
    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc

    def response(self, instance: str | None = None) -> web.Response:
        """The HTTP response carrying this problem."""
        return web.Response(
            status=self.status,
            body=msgspec.json.encode(self.body(instance)),
            content_type=PROBLEM_JSON,
            headers=self.headers,
        )


def invalid(detail: str, field: str | None = None, *, slug: str = "validation") -> Problem:
    """422: the request is well-formed JSON but its content is wrong (at `field`)."""
    if field:
        return Problem(422, slug, "Invalid request", detail, field=field)
    return Problem(422, slug, "Invalid request", detail)


def bad_request(detail: str) -> Problem:
    """400: the body could not be parsed at all."""
    return Problem(400, "malformed", "Malformed request", detail)


def not_found(detail: str) -> Problem:
    """404."""
    return Problem(404, "not-found", "Not found", detail)


def field_from_validation(message: str) -> tuple[str, str | None]:
    """Split msgspec's `... - at `$.events[0].type`` into (message, path)."""
    marker = " - at `"
    if marker in message and message.endswith("`"):
        text, path = message.rsplit(marker, 1)
        return text, path[:-1]
    return message, "$"
