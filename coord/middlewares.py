"""Request context (id, one log line per request) and the error-to-problem mapper."""

from __future__ import annotations

import asyncio
import random
import time

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from coord.metrics import CLIENT_CLOSED
from coord.problems import Problem, bad_request, field_from_validation, invalid
from coord.writes import domain_problem
from events.errors import DuplicateEventId, InvalidStreamId, SequencingTimeout, WrongExpectedVersion
from events.rules import DomainError

log = structlog.get_logger("coord.http")

REQUEST_ID = web.RequestKey("request_id", str)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex. An id only correlates log
    # lines, it guards nothing, so the userspace generator will do: no getrandom
    # syscall per request (those are dear on this kind of VM).
    return f"{random.getrandbits(128):032x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, bind it to the log context, and log one line when done."""
    request_id = request.headers.get("X-Request-ID") or _new_request_id()
    if len(request_id) > 100 or not request_id.isprintable():
        request_id = _new_request_id()
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        log.info(
            "request",
            method=request.method,
            path=request.path,
            route=_route_name(request),
            status=status,
            duration_ms=round((time.perf_counter() - start) * 1000, 2),
        )
        structlog.contextvars.unbind_contextvars("request_id")


def problem_for(exc: BaseException) -> Problem | None:
    """Map a known exception to a problem; None for anything unexpected."""
    match exc:
        case Problem():
            return exc
        case msgspec.ValidationError():
            message, field = field_from_validation(str(exc))
            return invalid(message, field)
        case msgspec.DecodeError():
            return bad_request(f"malformed JSON: {exc}")
        case DomainError():
            return domain_problem(exc)
        case WrongExpectedVersion():
            return Problem(
                409,
                "version-conflict",
                "Version conflict",
                str(exc),
                stream_id=exc.stream_id,
                expected_version=exc.expected,
                actual_version=exc.actual,
            )
        case DuplicateEventId():
            return Problem(
                409, "duplicate-event-id", "Duplicate event id", str(exc), event_id=exc.event_id
            )
        case InvalidStreamId():
            return invalid(str(exc), "stream_id")
        case SequencingTimeout():
            return Problem(
                503,
                "sequencing-delayed",
                "Sequencing delayed",
                f"{exc} The events are stored; retrying with the same event ids is idempotent.",
                headers={"Retry-After": "1"},
            )
    return None


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into an RFC 9457 `application/problem+json` response."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        detail = e.text if e.text and e.text != f"{e.status}: {e.reason}" else None
        problem = Problem(e.status, _slug(e.status), e.reason, detail)
        resp = problem.response(request.path)
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if name in e.headers:
                resp.headers[name] = e.headers[name]
        return resp
    except Exception as e:
        mapped = problem_for(e)
        if mapped is None:
            log.exception("unhandled_error")
            mapped = Problem(
                500,
                "internal",
                "Internal server error",
                "an unexpected error occurred; it has been logged",
            )
        return mapped.response(request.path)


def _slug(status: int) -> str:
    return {
        400: "malformed",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "payload-too-large",
        415: "unsupported-media-type",
    }.get(status, f"http-{status}")
