"""The write path: decode → load the stream and what it references → authorise → decide → append.

Everything domain-specific is pure (events/domain.py); this module does the I/O
around it. Decisions are made against the stream's version N and appended with
`expected_version = N`, so a concurrent writer can never slip an event between
the decision and the append: the loser re-reads and decides again (for
"any"/"exists") or gets a 409 (for an exact expected version).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from coord.auth import Principal, forbidden
from coord.federation import misdirected
from coord.problems import Problem
from events import domain
from events.domain import AnyState, DecideContext
from events.errors import WrongExpectedVersion
from events.ids import with_event_ids
from events.records import AppendResult, ExpectedVersion, NewEvent, RecordedEvent
from events.regions import Regions
from events.rules import DomainError, InvalidRequest
from events.store import EventStore
from events.streams import category_of
from events.topology import Node, accepts
from events.types import (
    CREATION_EVENTS,
    SCHEMA_VERSIONS,
    AnyEvent,
    check_stream,
    decode_new,
    decode_stored,
    invalid_from_validation,
)

# Metadata keys the server sets; a client's values for them are dropped.
SERVER_METADATA = frozenset({"actor", "role", "request_id", "recorded_at", "node_id"})

# Which stream categories each role may write (regional: only in its regions).
WRITABLE: dict[str, frozenset[str]] = {
    "regional": frozenset({"hearing", "issue"}),
    "national": frozenset({"hearing", "recommendation"}),
    "auditor": frozenset(),
    # Admins manage tokens (the access stream) through coord/tokens.py only.
    "admin": frozenset({"access"}),
}
DOMAIN_CATEGORIES = frozenset({"hearing", "issue", "recommendation", "access"})

Also = Callable[[asyncpg.Connection], Awaitable[None]]


class Proposed(msgspec.Struct, frozen=True, kw_only=True):
    """An event as a client proposes it: type, JSON payload, optional id and metadata."""

    type: str
    data: bytes
    id: uuid.UUID | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class Loaded(msgspec.Struct, frozen=True, kw_only=True):
    """A stream folded to its current (or as-of) state."""

    stream_id: str
    state: AnyState | None
    version: int
    region_code: str | None
    events: list[RecordedEvent]


def _domain_event(event: RecordedEvent) -> AnyEvent:
    return decode_stored(event.type, event.schema_version, bytes(event.data))  # type: ignore[return-value]


STANDALONE = Node(node_id="local", mode="standalone")


class WritePath:
    """Typed, authorised, rule-checked appends; and folded reads of single streams."""

    def __init__(self, store: EventStore, regions: Regions, *, node: Node = STANDALONE) -> None:
        self.store = store
        self.regions = regions
        self.node = node
        self.node_id = node.node_id

    async def load(
        self,
        stream_id: str,
        *,
        as_of: datetime | None = None,
        as_of_version: int | None = None,
    ) -> Loaded:
        """Fold a stream (every committed event, or those up to `as_of` / `as_of_version`)."""
        events: list[RecordedEvent] = []
        from_version = 1
        while True:
            page = await self.store.read_stream(
                stream_id, from_version, 1000, include_unsequenced=True
            )
            events.extend(page)
            if len(page) < 1000:
                break
            from_version = page[-1].version + 1
        if as_of is not None:
            events = [e for e in events if e.recorded_at <= as_of]
        if as_of_version is not None:
            events = events[:as_of_version]
        state: AnyState | None = None
        for e in events:
            state = domain.evolve(state, _domain_event(e))
        return Loaded(
            stream_id=stream_id,
            state=state,
            version=events[-1].version if events else 0,
            region_code=domain.region_of(state) if state is not None else None,
            events=events,
        )

    def decode(self, stream_id: str, proposed: Sequence[Proposed]) -> list[AnyEvent]:
        """Strictly decode each proposed event for this stream; 422 with the field path."""
        category = category_of(stream_id)
        if category not in DOMAIN_CATEGORIES:
            raise InvalidRequest(
                "event.wrong_stream",
                f"unknown stream category {category!r}: streams are hearing-<uuid>, "
                "issue-<uuid> or recommendation-<uuid>",
                "$.stream_id",
            )
        decoded: list[AnyEvent] = []
        checked: set[str] = set()  # the stream fits a type once checked (a batch repeats types)
        for i, p in enumerate(proposed):
            try:
                if p.type not in checked:
                    check_stream(stream_id, p.type)
                    checked.add(p.type)
                decoded.append(decode_new(p.type, p.data))  # type: ignore[arg-type]
            except msgspec.ValidationError as e:
                raise invalid_from_validation(e, f"$.events[{i}].data") from e
            except DomainError as e:
                raise _at_event(e, i) from None
        return decoded

    def region_of(self, loaded: Loaded, new: Sequence[AnyEvent]) -> str | None:
        """The stream's region: its own, or (a new stream) its creation event's; 422 if unknown."""
        region = loaded.region_code
        if region is None and loaded.state is None:
            # A new stream takes the region of its creation event (fixed from then on).
            region = getattr(new[0], "region_code", None)
        if region is not None and region not in self.regions:
            raise InvalidRequest(
                "region.unknown", f"unknown region code {region!r}", "$.events[0].data.region_code"
            )
        return region

    def authorize(self, principal: Principal, loaded: Loaded, region: str | None) -> None:
        """403 unless `principal` may append to this stream (of `region`, see `region_of`)."""
        category = category_of(loaded.stream_id)
        if category not in WRITABLE[principal.role]:
            raise forbidden(f"a {principal.role} token may not write {category} streams")
        # A new stream without a creation event has no region yet: decide refuses it (409).
        unborn = loaded.state is None and region is None
        if principal.role == "regional" and not unborn and not principal.covers(region):
            raise forbidden(
                f"this token writes for {', '.join(principal.regions)} only, not {region}"
            )

    async def check_home(self, stream_id: str, region: str | None) -> None:
        """421 unless this node is the stream's home (federation; always so when standalone)."""
        category = category_of(stream_id)
        if not accepts(self.node, category, region):
            raise await misdirected(self.store.pool, self.node, category, region)

    async def context(self, new: Sequence[AnyEvent], own: str) -> DecideContext:
        """Load every other stream the new events refer to."""
        refs = {ref for e in new for ref in domain.references(e) if ref != own}
        states: dict[str, AnyState | None] = {}
        for ref in sorted(refs):
            states[ref] = (await self.load(ref)).state
        return DecideContext.from_streams(self.regions, states)

    def metadata(self, principal: Principal, request_id: str, client: dict[str, Any]) -> bytes:
        """Client metadata minus the reserved keys, plus the server's own facts."""
        meta = {k: v for k, v in client.items() if k not in SERVER_METADATA}
        meta["actor"] = {"token_id": principal.token_id, "name": principal.name}
        meta["role"] = principal.role
        meta["request_id"] = request_id
        meta["recorded_at"] = datetime.now(UTC).isoformat()
        meta["node_id"] = self.node_id
        return msgspec.json.encode(meta)

    async def write(
        self,
        principal: Principal,
        stream_id: str,
        proposed: Sequence[Proposed],
        expected: ExpectedVersion,
        request_id: str,
        *,
        also: Also | None = None,
        attempts: int = 5,
    ) -> AppendResult:
        """Decide and append `proposed` to `stream_id` on behalf of `principal`.

        `also` runs in the append's transaction (synchronous projections such as
        the token table). Raises Problem/DomainError/store errors; writes nothing then.
        """
        new = self.decode(stream_id, proposed)
        ids = with_event_ids([p.id for p in proposed])
        client_ids = [p.id for p in proposed if p.id is not None]
        # Events without client metadata share one encoded metadata document.
        shared_meta = self.metadata(principal, request_id, {})
        records = [
            NewEvent(
                id=ids[i],
                type=p.type,
                data=p.data,
                metadata=self.metadata(principal, request_id, p.metadata)
                if p.metadata
                else shared_meta,
                schema_version=SCHEMA_VERSIONS[p.type],
            )
            for i, p in enumerate(proposed)
        ]
        for attempt in range(attempts):
            if expected == 0 and not client_ids and _creates(stream_id, new[0]):
                # A new stream: nothing to read; the append itself checks it is new.
                loaded = Loaded(
                    stream_id=stream_id, state=None, version=0, region_code=None, events=[]
                )
            else:
                loaded = await self.load(stream_id)
            region = self.region_of(loaded, new)
            # Routing before permissions: on the wrong node even a permitted write is a 421.
            await self.check_home(stream_id, region)
            self.authorize(principal, loaded, region)
            stale = isinstance(expected, int) and expected != loaded.version
            if stale or (client_ids and await self.store.any_stored(client_ids)):
                # A conflict or an idempotent retry: the store tells which.
                return await self.store.append(stream_id, records, expected, region_code=region)
            if expected == "exists" and loaded.version == 0:
                raise WrongExpectedVersion(stream_id, expected, 0)
            ctx = writer_context(await self.context(new, stream_id), principal, loaded)
            state = loaded.state
            for i, event in enumerate(new):
                try:
                    domain.decide(state, event, ctx)
                except DomainError as e:
                    raise _at_event(e, i) from None
                state = domain.evolve(state, event)
            try:
                return await self._append(stream_id, records, loaded.version, region, also)
            except WrongExpectedVersion:
                if isinstance(expected, int) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _append(
        self,
        stream_id: str,
        records: list[NewEvent],
        version: int,
        region: str | None,
        also: Also | None,
    ) -> AppendResult:
        if also is None:
            return await self.store.append(stream_id, records, version, region_code=region)
        async with self.store.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    committed = await self.store.insert(conn, stream_id, records, version, region)
                    await also(conn)
            except asyncpg.UniqueViolationError as e:
                if e.constraint_name == "events_stream_version_key":
                    raise WrongExpectedVersion(stream_id, version, version + 1) from e
                raise
        return await self.store.positions(committed)


class _Stamp(msgspec.Struct, frozen=True, kw_only=True):
    """The role the server stamped into an event's metadata (beside or inside the actor)."""

    role: str | None = None
    actor: dict[str, Any] | None = None


_stamp_decoder = msgspec.json.Decoder(_Stamp)


def _recorder(event: RecordedEvent) -> str | None:
    try:
        stamp = _stamp_decoder.decode(event.metadata)
    except msgspec.ValidationError:
        return None
    role = stamp.role or (stamp.actor or {}).get("role")
    return role if isinstance(role, str) else None


def writer_context(ctx: DecideContext, principal: Principal, loaded: Loaded) -> DecideContext:
    """``ctx`` for a write by ``principal`` on ``loaded``: the writer's role, the role that
    recorded each stored event (correction rules) and the server's clock (time rules)."""
    return ctx.written_by(principal.role, [_recorder(e) for e in loaded.events], datetime.now(UTC))


def _creates(stream_id: str, event: AnyEvent) -> bool:
    """Is `event` the creation event of streams of this category?"""
    creation = CREATION_EVENTS.get(category_of(stream_id))  # type: ignore[call-overload]
    return creation is not None and isinstance(event, creation)


def _at_event(error: DomainError, index: int) -> DomainError:
    """Root a domain error's field path (`$.data.x`) at the request's `$.events[i]`."""
    if error.field is not None and error.field.startswith("$."):
        error.field = f"$.events[{index}].{error.field[2:]}"
    return error


def domain_problem(error: DomainError) -> Problem:
    """The problem response for a refused event: status, rule and field path."""
    extra: dict[str, Any] = {"rule": error.rule}
    if error.field:
        extra["field"] = error.field
    slug = {409: "rule-violation", 403: "forbidden"}.get(error.status, "validation")
    return Problem(error.status, slug, type(error).title, error.detail, **extra)
