"""Request context (id, one log line per request) and the error-to-problem mapper."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from coord.auth import PRINCIPAL
from coord.availability import NOT_AN_OUTAGE, RETRY_AFTER_SECONDS, unavailable_reason
from coord.keys import AVAILABILITY, CONFIG
from coord.limits import check_json_bytes, check_text, too_deep
from coord.metrics import CLIENT_CLOSED
from coord.problem_language import in_indonesian, wants_indonesian
from coord.problems import Problem, bad_request, field_from_validation, invalid
from coord.ratelimit import EXPENSIVE_ROUTES, RATE_LIMITS, too_many
from coord.writes import domain_problem
from events.domain.errors import (
    DuplicateEventId,
    InvalidStreamId,
    SequencingTimeout,
    WrongExpectedVersion,
)
from events.domain.rules import DomainError

log = structlog.get_logger("coord.http")

REQUEST_ID = web.RequestKey("request_id", str)
#: A client's own `X-Request-ID`, kept beside (never instead of) the server's request id.
CLIENT_REQUEST_ID = web.RequestKey("client_request_id", str)


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
    # The request id is the server's own: a client could otherwise stamp any id (another
    # request's, say) into the events' metadata. A client's id is kept beside it.
    request_id = _new_request_id()
    request[REQUEST_ID] = request_id
    client_id = request.headers.get("X-Request-ID")
    if client_id and len(client_id) <= 100 and client_id.isprintable():
        request[CLIENT_REQUEST_ID] = client_id
        structlog.contextvars.bind_contextvars(client_request_id=client_id)
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
        structlog.contextvars.unbind_contextvars("request_id", "client_request_id")


# SQLSTATEs of errors caused by the data a client sent (class 22, "data exception",
# and 54000, a value too large for an index or a row). Intake refuses these first
# (coord/limits.py, coord/http/params.py); this is the last line of defence.
_DATA_ERRORS = (asyncpg.exceptions.DataError, asyncpg.exceptions.ProgramLimitExceededError)


def unavailable(reason: str) -> Problem:
    """503 for a database that cannot serve now, with `Retry-After`."""
    details = {
        "disk-full": "the database is out of disk space",
        "too-many-connections": "the database has no free connections",
        "slow": "the database did not answer in time",
        "timeout": "the database did not answer in time",
        "contention": "the database refused the operation under contention",
        "upgrading": "this view's read model is being rebuilt for this version of coord",
    }
    return Problem(
        503,
        "database-unavailable",
        "Service unavailable",
        f"{details.get(reason, 'the database is unavailable')}; retry later (appends with "
        "the same event ids are idempotent)",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        reason=reason,
    )


def problem_for(exc: BaseException) -> Problem | None:
    """Map a known exception to a problem; None for anything unexpected."""
    match exc:
        case Problem():
            return exc
        case RecursionError():
            return too_deep()
        case asyncpg.exceptions._base.DataError():
            # Raised by asyncpg before sending: a value the column type cannot hold.
            return invalid("a value is out of range for its field", None)
        case _ if isinstance(exc, _DATA_ERRORS):
            return invalid("a value cannot be stored as sent (out of range or not storable)")
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
        problem = _language(request, Problem(e.status, _slug(e.status), e.reason, detail))
        resp = problem.response(request.path)
        for name in ("Allow", "Retry-After", "WWW-Authenticate", "Connection"):
            if name in e.headers:
                resp.headers[name] = e.headers[name]
        return resp
    except Exception as e:
        mapped = problem_for(e)
        reason = None if mapped is not None else unavailable_reason(e)
        if reason is not None:
            if reason not in NOT_AN_OUTAGE:
                request.app[AVAILABILITY].report(reason, e)
            mapped = unavailable(reason)
        if mapped is None:
            log.exception("unhandled_error")
            mapped = Problem(
                500,
                "internal",
                "Internal server error",
                "an unexpected error occurred; it has been logged",
            )
        return _language(request, mapped).response(request.path)


def _language(request: web.Request, problem: Problem) -> Problem:
    """The problem in Indonesian if the client asks for it (``Accept-Language: id``)."""
    if wants_indonesian(request.headers.get("Accept-Language", "")):
        return in_indonesian(problem)
    return problem


# Routes whose responses stream for as long as the client listens: no request deadline.
STREAMING_ROUTES = frozenset({"/v1/events/stream"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Requests abandoned at their deadline that are still unwinding (kept from the GC).
_ABANDONED: set[asyncio.Task[web.StreamResponse]] = set()


@web.middleware
async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 503 when a request outlives its deadline (appends: `append_timeout`).

    On a frozen database a query never returns and cancelling it does not return
    either (asyncpg waits for the server to confirm, and to give the connection back):
    so the request runs in its own task, and at the deadline that task is cancelled
    and left to unwind while the client gets its 503 at once. An append cut off this
    way may or may not have been stored; a retry with the same event ids settles it.
    """
    if _route_name(request) in STREAMING_ROUTES:
        return await handler(request)
    config = request.app[CONFIG]
    limit = config.append_timeout if request.method in _WRITE_METHODS else config.request_timeout
    task = asyncio.ensure_future(handler(request))
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    _ABANDONED.add(task)
    task.add_done_callback(_abandoned_done)
    error = TimeoutError(f"request exceeded its {limit} s deadline")
    request.app[AVAILABILITY].report("timeout", error)
    raise unavailable("timeout")


def _abandoned_done(task: asyncio.Task[web.StreamResponse]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: its client already has its answer


@web.middleware
async def intake(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what no handler can store, before any handler runs; read the body in time.

    Query and path values with U+0000 are a 422 naming the parameter. The body is read
    within `body_timeout` seconds (408 if the client is slower; handlers then read the
    cached bytes), and a JSON body is checked by coord/limits.py: no U+0000, integers
    within int64, nesting at most 32 levels.
    """
    for name, value in request.query.items():
        check_text(name, f"query.{name}")
        check_text(value, f"query.{name}")
    for name, value in request.match_info.items():
        check_text(value, f"path.{name}")
    if request.body_exists:
        try:
            async with asyncio.timeout(request.app[CONFIG].body_timeout):
                raw = await request.read()
        except TimeoutError:
            raise Problem(
                408,
                "request-timeout",
                "Request timeout",
                "the request body did not arrive in time",
                headers={"Connection": "close"},
            ) from None
        if request.content_type.endswith("json"):
            check_json_bytes(raw)
    return await handler(request)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Charge the caller's token bucket (and the expensive bucket); 429 when empty."""
    principal = request.get(PRINCIPAL)
    if principal is not None:
        limits = request.app[RATE_LIMITS]
        if wait := limits.per_token.take(principal.token_id):
            raise too_many(wait, "this token sent too many requests; slow down")
        if (request.method, _route_name(request)) in EXPENSIVE_ROUTES and (
            wait := limits.expensive.take(principal.token_id)
        ):
            raise too_many(wait, "this operation is expensive and limited per token")
    return await handler(request)


def _slug(status: int) -> str:
    return {
        400: "malformed",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        408: "request-timeout",
        413: "payload-too-large",
        415: "unsupported-media-type",
    }.get(status, f"http-{status}")
