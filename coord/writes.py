"""The write path: one pipeline for every append (streams API, CloudEvents, tokens, demo).

    decode (once, into typed events) -> load every stream -> route (421) -> authorise (403)
    -> idempotent retry? (200, the original result) -> version check (409)
    -> decide on the loaded state -> append with expected = loaded version, atomically

Everything domain-specific is pure (events/domain/dispatch.py); this module does the I/O
around it. `decide` always judges the state at exactly the version the events are
appended on: the append expects that version, so a concurrent writer that slips in
between makes the append fail, and the pipeline loads and decides again (for
"any"/"exists") or answers 409 (for an explicit version the stream has left).
There is one algorithm for one stream and for several: `write` is the one-stream
case of `write_atomic`, which inserts every stream of a request in one transaction.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from coord.auth import Principal, forbidden
from coord.federation import check_home
from coord.problems import Problem, invalid
from events.domain import dispatch as domain
from events.domain.context import DecideContext
from events.domain.dispatch import AnyState
from events.domain.errors import DuplicateEventId, WrongExpectedVersion
from events.domain.ids import home_scoped, with_event_ids
from events.domain.regions import Regions
from events.domain.rules import DomainError, InvalidRequest
from events.domain.streams import category_of
from events.domain.topology import Node
from events.domain.types import (
    CREATION_EVENTS,
    SCHEMA_VERSIONS,
    AnyEvent,
    check_stream,
    decode_new,
    decode_stored,
    encode,
    invalid_from_validation,
)
from events.store.records import AppendResult, ExpectedVersion, NewEvent, RecordedEvent
from events.store.store import EventStore

#: Encoded size limit of one event's client metadata (`metadata.client`).
MAX_CLIENT_METADATA = 16 * 1024

# Which stream categories each role may write (regional: only in its regions).
WRITABLE: dict[str, frozenset[str]] = {
    "regional": frozenset({"hearing", "issue"}),
    # National staff record what is raised at the hearings Wantannas convenes (issue 15),
    # and analysts curate recurring-problem clusters (issue 14).
    "national": frozenset({"hearing", "issue", "recommendation", "cluster"}),
    "auditor": frozenset(),
    # Admins manage tokens (the access stream) through coord/tokens.py only.
    "admin": frozenset({"access"}),
}
DOMAIN_CATEGORIES = frozenset({"hearing", "issue", "recommendation", "access", "cluster"})

Also = Callable[[asyncpg.Connection], Awaitable[None]]
"""Work done in the append's transaction (synchronous projections such as the token table)."""

EventField = Callable[[int, int], str]
"""(stream index, event index in that stream) -> the event's path in the client's request."""


def events_field(stream: int, event: int) -> str:
    """The streams API's paths: one stream per request, its events at `$.events[j]`."""
    return f"$.events[{event}]"


class Proposed(msgspec.Struct, frozen=True, kw_only=True):
    """An event as a client proposes it.

    `metadata` is the client's own (stored under `metadata.client`); `intake` holds
    facts the server's intake recorded about the event's envelope (CloudEvents'
    `ce_source`, `ce_id`, ...), stored beside the server's keys.
    """

    type: str
    data: bytes
    id: uuid.UUID | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    intake: dict[str, str] = msgspec.field(default_factory=dict)


class StreamAppend(msgspec.Struct, frozen=True, kw_only=True):
    """The events a request appends to one stream, with the version it expects."""

    stream_id: str
    proposed: list[Proposed]
    expected: ExpectedVersion = "any"


class Origin(msgspec.Struct, frozen=True, kw_only=True):
    """The request an append comes from: the server's id, and the client's own if it sent one."""

    request_id: str
    client_request_id: str | None = None


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

    def decode(
        self,
        stream_id: str,
        proposed: Sequence[Proposed],
        at: Callable[[int], str] = lambda j: f"$.events[{j}]",
    ) -> list[AnyEvent]:
        """Strictly decode each proposed event for this stream; 422 with the field path.

        `at(j)` is the path of the j-th event in the client's request.
        """
        category = category_of(stream_id)
        if category not in DOMAIN_CATEGORIES:
            raise InvalidRequest(
                "event.wrong_stream",
                f"unknown stream category {category!r}: streams are hearing-<uuid>, "
                "issue-<uuid>, recommendation-<uuid> or cluster-<uuid>",
                "$.stream_id",
            )
        decoded: list[AnyEvent] = []
        checked: set[str] = set()  # the stream fits a type once checked (a batch repeats types)
        for j, p in enumerate(proposed):
            try:
                if p.type not in checked:
                    check_stream(stream_id, p.type)
                    checked.add(p.type)
                decoded.append(decode_new(p.type, p.data))  # type: ignore[arg-type]
            except msgspec.ValidationError as e:
                raise invalid_from_validation(e, f"{at(j)}.data") from e
            except DomainError as e:
                raise _rooted(e, at(j)) from None
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
            # Not naming `region`: an existing stream's region is not the caller's to learn.
            raise forbidden(f"this token writes for {', '.join(principal.regions)} only")

    async def check_home(self, stream_id: str, region: str | None) -> None:
        """421 unless this node is the stream's home (federation; always so when standalone)."""
        # The hub also homes regions no regional node serves; a 421 names the node that accepts.
        await check_home(self.store.pool, self.node, category_of(stream_id), region)

    def stored_id(self, given: uuid.UUID | None) -> uuid.UUID | None:
        """The id an event a client sent as `given` is stored under on this node.

        Federated nodes scope client-chosen ids to the home node (`events.domain.ids.home_scoped`),
        so ids are global by construction: two regions never store the same one, whatever
        their clients send. A standalone node keeps the client's id.
        """
        if given is None or self.node.mode == "standalone":
            return given
        return home_scoped(self.node_id, given)

    async def check_stream_free(
        self, appends: Sequence[StreamAppend], loaded: Sequence[Loaded]
    ) -> None:
        """409 before writing a stream this regional node does not hold but another home does.

        The hub registers the home of every stream it holds (`federation_streams`, replicated
        to the regions): a region refuses to start a stream whose id another node already
        uses, so a client cannot make two homes hold one stream id. Only a race inside the
        replication lag (or a region cut off from the hub) still meets at the hub, which sets
        the later copy aside (docs/deploy.md, "Conflicts").
        """
        if self.node.mode != "regional":
            return
        new = [
            a.stream_id for a, stream in zip(appends, loaded, strict=True) if stream.version == 0
        ]
        if not new:
            return
        rows = await self.store.pool.fetch(
            "SELECT stream_id, home_node FROM federation_streams"
            " WHERE stream_id = ANY($1::text[]) AND home_node <> $2 ORDER BY stream_id",
            new,
            self.node_id,
        )
        if rows:
            stream_id, home = rows[0]["stream_id"], rows[0]["home_node"]
            raise Problem(
                409,
                "stream-id-taken",
                "Stream id taken",
                f"stream {stream_id!r} already exists at node {home!r}: a new entity needs a "
                "new id (a fresh UUID); writes to that stream go to its home node",
                stream_id=stream_id,
                home_node=home,
            )

    async def may_read(self, principal: Principal, stream_id: str) -> bool:
        """May `principal` read `stream_id` (regional tokens: only their regions' streams)?"""
        if principal.role != "regional":
            return True
        first = await self.store.read_stream(stream_id, 1, 1, include_unsequenced=True)
        return bool(first) and principal.covers(first[0].region_code)

    def metadata(
        self, principal: Principal, origin: Origin, proposed: Proposed, at: str, recorded_at: str
    ) -> bytes:
        """An event's metadata: the intake's facts, the server's keys, the client's under `client`.

        422 at `{at}.metadata` if the client's metadata encodes to more than 16 KiB.
        """
        meta: dict[str, Any] = dict(proposed.intake)
        meta["actor"] = {"token_id": principal.token_id, "name": principal.name}
        meta["role"] = principal.role
        meta["request_id"] = origin.request_id
        if origin.client_request_id is not None:
            meta["client_request_id"] = origin.client_request_id
        meta["recorded_at"] = recorded_at
        meta["node_id"] = self.node_id
        if proposed.id is not None and self.stored_id(proposed.id) != proposed.id:
            meta["client_event_id"] = str(proposed.id)  # the id the client sent (home-scoped)
        if proposed.metadata:
            client = msgspec.json.encode(proposed.metadata)
            if len(client) > MAX_CLIENT_METADATA:
                raise invalid(
                    f"metadata is {len(client)} bytes encoded; at most {MAX_CLIENT_METADATA}",
                    f"{at}.metadata",
                )
            meta["client"] = msgspec.Raw(client)
        return msgspec.json.encode(meta)

    async def write(
        self,
        principal: Principal,
        stream_id: str,
        proposed: Sequence[Proposed],
        expected: ExpectedVersion,
        origin: Origin,
        *,
        also: Also | None = None,
        attempts: int = 5,
    ) -> AppendResult:
        """Decide and append `proposed` to one stream: `write_atomic` with one stream."""
        append = StreamAppend(stream_id=stream_id, proposed=list(proposed), expected=expected)
        results = await self.write_atomic(
            principal, [append], origin, event_field=events_field, also=also, attempts=attempts
        )
        return results[0]

    async def write_atomic(
        self,
        principal: Principal,
        appends: Sequence[StreamAppend],
        origin: Origin,
        *,
        event_field: EventField = lambda i, j: f"$.streams[{i}].events[{j}]",
        also: Also | None = None,
        attempts: int = 5,
    ) -> list[AppendResult]:
        """Decide and append every `StreamAppend` in one transaction; results in the same order.

        Stream ids must be distinct. A stream's decisions see the request's earlier
        streams as they will be after it (an issue may cite a hearing scheduled
        earlier in the same batch). An exact retry of a stored request returns every
        stream's original result (200). Raises Problem, DomainError (field paths by
        `event_field`), WrongExpectedVersion, SequencingTimeout; nothing is written then.
        """
        if not appends or len({a.stream_id for a in appends}) != len(appends):
            raise ValueError("an atomic write names each of its streams once")
        new = [
            self.decode(a.stream_id, a.proposed, functools.partial(event_field, i))
            for i, a in enumerate(appends)
        ]
        recorded_at = datetime.now(UTC).isoformat()
        records = [
            [
                NewEvent(
                    id=event_id,
                    type=p.type,
                    # What was decoded is what is stored: ids and times in canonical spelling.
                    data=encode(new[i][j]),
                    metadata=self.metadata(principal, origin, p, event_field(i, j), recorded_at),
                    schema_version=SCHEMA_VERSIONS[p.type],
                )
                for j, (p, event_id) in enumerate(
                    zip(
                        a.proposed,
                        with_event_ids([self.stored_id(p.id) for p in a.proposed]),
                        strict=True,
                    )
                )
            ]
            for i, a in enumerate(appends)
        ]
        client_ids = [
            i for a in appends for p in a.proposed if (i := self.stored_id(p.id)) is not None
        ]
        try:
            return await self._write(
                principal, appends, new, records, client_ids, event_field, also, attempts
            )
        except DuplicateEventId as e:
            raise await self._duplicate(principal, e) from None

    async def _write(
        self,
        principal: Principal,
        appends: Sequence[StreamAppend],
        new: Sequence[Sequence[AnyEvent]],
        records: Sequence[list[NewEvent]],
        client_ids: Sequence[uuid.UUID],
        event_field: EventField,
        also: Also | None,
        attempts: int,
    ) -> list[AppendResult]:
        race: WrongExpectedVersion | None = None
        for attempt in range(attempts):
            loaded = [
                await self._load_for_write(a, new[i][0], bool(client_ids), attempt)
                for i, a in enumerate(appends)
            ]
            regions: list[str | None] = []
            for i, a in enumerate(appends):
                try:
                    region = self.region_of(loaded[i], new[i])
                    # Routing before permissions: on the wrong node even a permitted write is 421.
                    await self.check_home(a.stream_id, region)
                    self.authorize(principal, loaded[i], region)
                except DomainError as e:
                    raise _rebase(e, i, event_field) from None
                regions.append(region)
            if client_ids and await self.store.any_stored(client_ids):
                return await self._replay(appends, records)
            await self.check_stream_free(appends, loaded)
            for a, stream in zip(appends, loaded, strict=True):
                if isinstance(a.expected, int) and a.expected != stream.version:
                    raise WrongExpectedVersion(a.stream_id, a.expected, stream.version)
                if a.expected == "exists" and stream.version == 0:
                    raise WrongExpectedVersion(a.stream_id, a.expected, 0)
            await self._decide(principal, appends, loaded, new, event_field)
            try:
                return await self._insert(appends, records, loaded, regions, also)
            except WrongExpectedVersion as e:
                # Another writer took the version decided on: load and decide again
                # (an explicit expected version then fails the check above: 409).
                race = e
            except DuplicateEventId:
                pass  # a concurrent writer stored one of these ids: the next round tells which
        if race is None:
            raise DuplicateEventId(str(client_ids[0]) if client_ids else "?", "lost repeated races")
        # Lost every round under "any"/"exists": report it with what the client expected.
        expected = next((a.expected for a in appends if a.stream_id == race.stream_id), "any")
        raise WrongExpectedVersion(race.stream_id, expected, race.actual)

    async def _load_for_write(
        self, append: StreamAppend, first: AnyEvent, client_ids: bool, attempt: int
    ) -> Loaded:
        """The stream as the decision sees it; a new stream's creation needs no read."""
        if (
            append.expected == 0
            and attempt == 0
            and not client_ids
            and _creates(append.stream_id, first)
        ):
            # The append expects version 0, so it fails (and the next round reads) if the
            # stream exists after all.
            return Loaded(
                stream_id=append.stream_id, state=None, version=0, region_code=None, events=[]
            )
        return await self.load(append.stream_id)

    async def _decide(
        self,
        principal: Principal,
        appends: Sequence[StreamAppend],
        loaded: Sequence[Loaded],
        new: Sequence[Sequence[AnyEvent]],
        event_field: EventField,
    ) -> None:
        """Run `decide` over every stream in order; later streams see earlier ones' new state."""
        after: dict[str, AnyState | None] = {}
        for i, a in enumerate(appends):
            refs = {ref for e in new[i] for ref in domain.references(e) if ref != a.stream_id}
            states: dict[str, AnyState | None] = {}
            for ref in sorted(refs):
                states[ref] = after[ref] if ref in after else (await self.load(ref)).state
            ctx = writer_context(
                DecideContext.from_streams(self.regions, states), principal, loaded[i]
            )
            state = loaded[i].state
            for j, event in enumerate(new[i]):
                try:
                    domain.decide(state, event, ctx, a.stream_id)
                except DomainError as e:
                    raise _rooted(e, event_field(i, j)) from None
                state = domain.evolve(state, event)
            after[a.stream_id] = state

    async def _insert(
        self,
        appends: Sequence[StreamAppend],
        records: Sequence[list[NewEvent]],
        loaded: Sequence[Loaded],
        regions: Sequence[str | None],
        also: Also | None,
    ) -> list[AppendResult]:
        """Insert every stream's events at exactly the loaded version, in one transaction."""
        if len(appends) == 1 and also is None:
            # One statement (new streams share one with others: group commit).
            a = appends[0]
            result = await self.store.append(
                a.stream_id, records[0], loaded[0].version, region_code=regions[0]
            )
            return [result]
        committed = []
        try:
            async with self.store.pool.acquire() as conn, conn.transaction():
                for i, a in enumerate(appends):
                    committed.append(
                        await self.store.insert(
                            conn, a.stream_id, records[i], loaded[i].version, regions[i]
                        )
                    )
                if also is not None:
                    await also(conn)
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name == "events_event_id_key":
                raise DuplicateEventId("?", "stored meanwhile") from e
            if e.constraint_name != "events_stream_version_key":
                raise
            # Two writers passed the version check at once; say which stream moved.
            for a, stream in zip(appends, loaded, strict=True):
                actual = await self.store.stream_version(a.stream_id)
                if actual != stream.version:
                    raise WrongExpectedVersion(a.stream_id, stream.version, actual) from e
            raise WrongExpectedVersion(
                appends[0].stream_id, loaded[0].version, loaded[0].version + 1
            ) from e
        return [await self.store.positions(c) for c in committed]

    async def _replay(
        self, appends: Sequence[StreamAppend], records: Sequence[list[NewEvent]]
    ) -> list[AppendResult]:
        """The original results of a request that is already stored (409 if only partly)."""
        results: list[AppendResult] = []
        for a, recs in zip(appends, records, strict=True):
            result = await self.store.idempotent_result(a.stream_id, recs, a.expected)
            if result is None:
                # A request is stored whole or not at all: this one is not that request.
                raise DuplicateEventId(
                    str(recs[0].id), "another part of this request is already stored"
                )
            results.append(result)
        return results

    async def _duplicate(self, principal: Principal, error: DuplicateEventId) -> Problem:
        """The 409 for a taken event id; it says where only to a caller who may read there."""
        if error.holder is not None and await self.may_read(principal, error.holder):
            return Problem(
                409,
                "duplicate-event-id",
                "Duplicate event id",
                f"event id {error.event_id} is already stored in stream {error.holder!r} "
                f"({error.detail})",
                event_id=error.event_id,
                stream_id=error.holder,
            )
        return Problem(
            409,
            "duplicate-event-id",
            "Duplicate event id",
            f"event id {error.event_id} is already taken; send this event with a new id",
            event_id=error.event_id,
        )


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


def _rooted(error: DomainError, root: str) -> DomainError:
    """Root an error's field path at one event of the request (`$.data.x` -> `{root}.data.x`)."""
    if error.field is not None and error.field.startswith("$."):
        error.field = root + error.field[1:]
    return error


def _rebase(error: DomainError, stream: int, event_field: EventField) -> DomainError:
    """Rewrite `$.events[j]...` (the streams API's shape) as `event_field(stream, j)...`."""
    field = error.field
    prefix = "$.events["
    if field is not None and field.startswith(prefix):
        index, _, rest = field[len(prefix) :].partition("]")
        if index.isdigit():
            error.field = event_field(stream, int(index)) + rest
    return error


def domain_problem(error: DomainError) -> Problem:
    """The problem response for a refused event: status, rule and field path."""
    extra: dict[str, Any] = {"rule": error.rule}
    if error.field:
        extra["field"] = error.field
    slug = {409: "rule-violation", 403: "forbidden"}.get(error.status, "validation")
    return Problem(error.status, slug, type(error).title, error.detail, **extra)
