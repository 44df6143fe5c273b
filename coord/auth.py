"""Bearer tokens, roles and region scope.

Roles: `regional` (bound to region codes; a province code covers its regencies),
`national`, `auditor`, `admin`. Tokens are 256-bit random strings, shown once and
stored only as a SHA-256 hash (they carry full entropy, so a slow hash buys nothing).
Issuing and revoking are events in the `access-tokens` stream; the `access_tokens`
table is their synchronous projection, written in the same transaction, so a
revocation holds from the moment it commits. Each process caches lookups and
drops a token from its cache on the `coord_tokens` notification sent by the
revoking transaction (or by the replication trigger, for a revocation made at the
hub). A notification is never the only safeguard (issue 17): the whole cache is
dropped whenever the listening connection is (re-)established, since anything
sent while it was down is lost, and every entry expires after a bounded lifetime.

A token may carry an expiry (`expires_at`, from its TokenIssued event): the lookup
refuses it once past, and a cached entry is checked against the wall clock on every
hit, so an expired token is refused on the first request after its expiry, cache or
not, exactly like a revoked one (401).

Each successful lookup notes the token as used; `UsageRecorder` writes the notes to
`token_usage` in one statement every few seconds, at most once a minute per token:
the request path never waits on, or pays for, that bookkeeping.

The cache also keeps the open live feeds (`/v1/events/stream`) of each token: a
revocation notice for a token that has feeds open makes the cache ask the database
once, and if the token is indeed revoked, every such feed of this process is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import msgspec
import structlog
from aiohttp import web

from coord.problems import Problem
from coord.ratelimit import RATE_LIMITS, client_key, too_many
from events.domain.regions import Regions, covers, load_regions

log = structlog.get_logger("coord.auth")

Role = Literal["regional", "national", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("regional", "national", "auditor", "admin")
TOKEN_PREFIX = "coord_"

# Paths anyone may call without a token.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/openapi.json"})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a token's id, name, role and (for `regional`) region codes."""

    token_id: str
    name: str
    role: Role
    regions: tuple[str, ...] = ()

    def covers(self, region_code: str | None) -> bool:
        """May this caller see (and, by role, write) data of `region_code`?"""
        if self.role != "regional":
            return True
        return region_code is not None and covers(self.regions, region_code)

    def region_scope(self, regions: Regions | None = None) -> list[str] | None:
        """Every region code this caller may see, expanded (None: all of them)."""
        if self.role != "regional":
            return None
        regions = regions or load_regions()
        codes: set[str] = set()
        for code in self.regions:
            codes.add(code)
            codes.update(r.code for r in regions.children(code))
        return sorted(codes)


def new_token() -> str:
    """A fresh bearer token: 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


# "Live": neither revoked nor expired. The one condition for the API, feeds and console.
LIVE = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"

_LOOKUP = (
    "SELECT token_id::text, name, role, regions, expires_at FROM access_tokens "
    f"WHERE token_hash = $1 AND {LIVE}"
)


_ACTIVE = f"SELECT 1 FROM access_tokens WHERE token_id = $1 AND {LIVE}"

#: A token's use is written at most this often (seconds), whatever its request rate.
USAGE_GRANULARITY = 60.0

_RECORD_USAGE = (
    "INSERT INTO token_usage (token_id, last_used_at)"
    " SELECT * FROM unnest($1::uuid[], $2::timestamptz[])"
    # GREATEST: several processes write the same row; a late batch must not move it back.
    " ON CONFLICT (token_id) DO UPDATE"
    " SET last_used_at = GREATEST(token_usage.last_used_at, EXCLUDED.last_used_at)"
)


class UsageRecorder:
    """Coalesces token uses into at most one `token_usage` write per token per minute.

    `touch` is a dictionary update (the request path); `flush` writes what was noted since
    the last flush in one statement, from a background task (`run`).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        granularity: float = USAGE_GRANULARITY,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._granularity = granularity
        self._clock = clock
        self._wall = wall
        # token id -> when it was used (not yet written)
        self._pending: dict[str, datetime] = {}
        # token id -> monotonic time of the last use noted: the once-a-minute gate
        self._noted: dict[str, float] = {}

    def touch(self, token_id: str) -> None:
        """Note a use of `token_id` unless one was noted less than a minute ago."""
        now = self._clock()
        last = self._noted.get(token_id)
        if last is not None and now - last < self._granularity:
            return
        self._noted[token_id] = now
        self._pending[token_id] = self._wall()

    def pending(self) -> int:
        """How many uses wait to be written."""
        return len(self._pending)

    async def flush(self) -> int:
        """Write the noted uses in one statement; how many rows it wrote."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        try:
            await self._pool.execute(
                _RECORD_USAGE, [uuid.UUID(k) for k in batch], list(batch.values())
            )
        except BaseException:
            # Kept for the next flush, unless a newer use of the token has been noted since.
            self._pending = {**batch, **self._pending}
            raise
        return len(batch)

    async def run(self, interval: float = 5.0) -> None:
        """Flush every `interval` seconds, and once more when cancelled (shutdown)."""
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.flush()
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
                    # Bookkeeping only: a database outage must not end the task.
                    log.warning("token_usage.flush_failed", error=str(e))
        except asyncio.CancelledError:
            try:
                async with asyncio.timeout(2):
                    await self.flush()
            except Exception as e:  # shutting down: say so, and go
                log.warning("token_usage.final_flush_failed", error=repr(e))
            raise


class OpenFeed:
    """One open live feed of a token, registered with the cache while it is open."""

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        self.revoked = False
        self._close: Callable[[], None] | None = None

    def on_revoked(self, close: Callable[[], None]) -> None:
        """Call `close` when the token is found revoked (at once if it already was)."""
        self._close = close
        if self.revoked:
            close()

    def revoke(self) -> None:
        """The token is revoked: close the feed."""
        if not self.revoked:
            self.revoked = True
            if self._close is not None:
                self._close()


class TokenCache:
    """Principal by token hash: invalidated on revocation, on reconnect, and by age."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_entries: int = 10_000,
        lifetime: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        usage: UsageRecorder | None = None,
    ) -> None:
        self._pool = pool
        # digest -> (principal, when it was read from the database, when it expires)
        self._by_hash: dict[str, tuple[Principal, float, datetime | None]] = {}
        self._max = max_entries
        self._lifetime = lifetime
        self._clock = clock
        self._wall = wall
        self.usage = usage if usage is not None else UsageRecorder(pool, clock=clock, wall=wall)
        # Bumped by every invalidation: a lookup that raced one is not cached.
        self._generation = 0
        self._feeds: dict[str, set[OpenFeed]] = {}
        # Checks started by notifications: the loop holds only weak references to tasks.
        self._checks: set[asyncio.Task[None]] = set()

    async def principal(self, token: str) -> Principal | None:
        """The principal for a bearer token, or None if unknown, revoked or expired."""
        principal = await self._resolve(token)
        if principal is not None:
            self.usage.touch(principal.token_id)
        return principal

    async def _resolve(self, token: str) -> Principal | None:
        digest = token_hash(token)
        found = self._by_hash.get(digest)
        if found is not None and self._clock() - found[1] < self._lifetime:
            expires_at = found[2]
            if expires_at is None or self._wall() < expires_at:
                return found[0]
            # Expiry needs no notification: the entry itself knows. Ask no database either.
            del self._by_hash[digest]
            return None
        read_at, generation = self._clock(), self._generation
        row = await self._pool.fetchrow(_LOOKUP, digest)
        if row is None:
            self._by_hash.pop(digest, None)
            return None
        principal = Principal(
            token_id=row["token_id"],
            name=row["name"],
            role=row["role"],
            regions=tuple(row["regions"]),
        )
        if generation != self._generation:
            return principal  # answered as of the read, but maybe revoked since: not kept
        if len(self._by_hash) >= self._max:
            self._by_hash.clear()
        self._by_hash[digest] = (principal, read_at, row["expires_at"])
        return principal

    def cached(self, token: str) -> Principal | None:
        """The principal for a token this process has already verified (no database).

        Whatever the entry's age: this only spares a known caller the rate limit, and
        `principal` (which honours the lifetime) still decides.
        """
        found = self._by_hash.get(token_hash(token))
        return found[0] if found is not None else None

    def forget(self, token_ids: Iterable[str]) -> None:
        """Drop cached entries of these token ids (called when they are revoked)."""
        gone = set(token_ids)
        self._generation += 1
        for digest, (principal, _, _) in list(self._by_hash.items()):
            if principal.token_id in gone:
                del self._by_hash[digest]

    def clear(self) -> None:
        """Drop every entry: notifications may have been missed (a new listening connection)."""
        self._generation += 1
        self._by_hash.clear()

    def on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """asyncpg listener for `coord_tokens`: payload is a revoked token id."""
        self.forget([payload])
        if self._feeds.get(payload):
            # The channel also carries replicated grants, not only revocations: ask.
            task = asyncio.get_running_loop().create_task(self.check_feeds(payload))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    # -- open feeds --------------------------------------------------------

    def open_feed(self, token_id: str, *, limit: int) -> OpenFeed | None:
        """Register a feed of `token_id`; None if the token already has `limit` open."""
        feeds = self._feeds.setdefault(token_id, set())
        if len(feeds) >= limit:
            return None
        feed = OpenFeed(token_id)
        feeds.add(feed)
        return feed

    def close_feed(self, feed: OpenFeed) -> None:
        """Unregister a feed (it ended)."""
        feeds = self._feeds.get(feed.token_id)
        if feeds is not None:
            feeds.discard(feed)
            if not feeds:
                del self._feeds[feed.token_id]

    def open_feeds(self, token_id: str) -> int:
        """How many feeds of `token_id` are open in this process."""
        return len(self._feeds.get(token_id, ()))

    async def is_active(self, token_id: str) -> bool:
        """Does `token_id` exist, neither revoked nor expired, as the database says now?"""
        try:
            key = uuid.UUID(token_id)
        except ValueError:
            return False
        return await self._pool.fetchval(_ACTIVE, key) is not None

    async def check_feeds(self, token_id: str) -> None:
        """Close every open feed of `token_id` if the token is revoked (or cannot be checked)."""
        try:
            active = await self.is_active(token_id)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
            # Failing closed costs a reconnect: clients resume losslessly by Last-Event-ID.
            log.warning("token_check.failed", token_id=token_id, error=str(e))
            active = False
        if not active:
            self.forget([token_id])  # a lost notice left it cached: no longer
            for feed in list(self._feeds.get(token_id, ())):
                feed.revoke()


TOKENS = web.AppKey("tokens", TokenCache)
PRINCIPAL = web.RequestKey("principal", Principal)


def unauthorized(detail: str) -> Problem:
    """401 with the challenge header."""
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="coord"'},
    )


def forbidden(detail: str) -> Problem:
    """403: authenticated, but not allowed to do this."""
    return Problem(403, "forbidden", "Forbidden", detail)


@web.middleware
async def authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Resolve `Authorization: Bearer <token>` into the request's principal; 401 if not."""
    if request.path in PUBLIC_PATHS or not request.path.startswith("/v1/"):
        # Outside /v1 is the web console (coord/console), which signs in by session.
        return await handler(request)
    # Requests without a valid token draw on a strict bucket per client address, checked
    # before the token is looked up: guessing tokens is slow, and costs no database work.
    # A token already verified here still passes, so that a valid caller sharing an
    # address (NAT, proxy) with a token guesser is not locked out.
    bucket = request.app[RATE_LIMITS].unauthenticated
    client = client_key(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if (wait := bucket.wait(client)) and (
        scheme.lower() != "bearer" or not token or request.app[TOKENS].cached(token) is None
    ):
        raise too_many(wait, "too many requests without a valid token from this address")
    if scheme.lower() != "bearer" or not token:
        bucket.take(client)
        raise unauthorized("send `Authorization: Bearer <token>`")
    principal = await request.app[TOKENS].principal(token)
    if principal is None:
        bucket.take(client)
        # One answer for unknown, revoked and expired: a guesser learns nothing from it.
        raise unauthorized("the token is unknown or revoked")
    request[PRINCIPAL] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller of this request."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None:  # only on public paths, which never ask
        raise unauthorized("send `Authorization: Bearer <token>`")
    return principal


def require_role(request: web.Request, *roles: Role) -> Principal:
    """The caller, if their role is one of `roles`; else 403."""
    principal = principal_of(request)
    if principal.role not in roles:
        raise forbidden(
            f"this needs one of the roles {', '.join(roles)}; the token is {principal.role}"
        )
    return principal
