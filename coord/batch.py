"""Appends to several streams in one transaction: all of them or none.

`WritePath.write` appends to one stream per call. A CloudEvents batch may hold
events for several streams and must be all or nothing, which a sequence of
`write` calls cannot give (a later refusal would leave the earlier appends in
place, and events are never deleted). `write_atomic` runs the same steps as
`WritePath.write` — its `decode`, `load`, `authorize` and `metadata`, the pure
`domain.decide`/`evolve` — for every stream, then inserts all of them in one
PostgreSQL transaction.

Differences from calling `write` per stream, on purpose:

* A stream's decisions see the batch's *earlier* streams as they will be after
  the batch (an issue may cite a hearing scheduled earlier in the same batch).
* A retry of a stored batch returns every stream's original result (200); a
  batch of which only some streams are stored is a 409 duplicate id, since a
  batch is never partly stored.
* On a lost race under "any"/"exists" the whole batch is re-read and decided again.

A single stream goes through `WritePath.write` itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import asyncpg
import msgspec

from coord.auth import Principal
from coord.writes import Loaded, Proposed, WritePath, writer_context
from events import domain
from events.domain import AnyState, DecideContext
from events.errors import DuplicateEventId, WrongExpectedVersion
from events.ids import with_event_ids
from events.records import AppendResult, ExpectedVersion, NewEvent
from events.rules import DomainError
from events.types import SCHEMA_VERSIONS, AnyEvent

# `field` of a refusal as WritePath reports it: `$.events[j]...` (decode, authorize).
_EVENT_FIELD = re.compile(r"^\$\.events\[(\d+)\]")

EventField = Callable[[int, int], str]
"""(stream index, event index in that stream) -> the event's path in the client's request."""


class StreamAppend(msgspec.Struct, frozen=True, kw_only=True):
    """The events a batch appends to one stream, with the version it expects."""

    stream_id: str
    proposed: list[Proposed]
    expected: ExpectedVersion = "any"


def rebase(error: DomainError, stream: int, event_field: EventField) -> DomainError:
    """Rewrite a refusal's field path from WritePath's envelope to the client's request.

    `$.events[j].x` (as decode and authorize report it) becomes
    `event_field(stream, j) + ".x"`; other paths are left alone.
    """
    field = error.field
    if field is None:
        return error
    match = _EVENT_FIELD.match(field)
    if match is not None:
        error.field = event_field(stream, int(match.group(1))) + field[match.end() :]
    return error


async def write_atomic(
    writes: WritePath,
    principal: Principal,
    appends: Sequence[StreamAppend],
    request_id: str,
    *,
    event_field: EventField = lambda i, j: f"$.streams[{i}].events[{j}]",
    attempts: int = 5,
) -> list[AppendResult]:
    """Decide and append every `StreamAppend` atomically; results in the same order.

    Stream ids must be distinct. Raises what `WritePath.write` raises (Problem,
    DomainError with `field` rebased by `event_field`, WrongExpectedVersion,
    DuplicateEventId, SequencingTimeout); nothing is written then.
    """
    if len({a.stream_id for a in appends}) != len(appends):
        raise ValueError("each stream may appear once in an atomic write")
    if len(appends) == 1:
        only = appends[0]
        try:
            result = await writes.write(
                principal, only.stream_id, only.proposed, only.expected, request_id
            )
        except DomainError as e:
            if len(only.proposed) == 1 and e.field is not None and e.field.startswith("$.data"):
                # decide's paths are rooted at the event (`$.data.x`); one event: no doubt which.
                e.field = event_field(0, 0) + e.field[1:]
                raise
            raise rebase(e, 0, event_field) from None
        return [result]

    new: list[list[AnyEvent]] = []
    for i, a in enumerate(appends):
        try:
            new.append(writes.decode(a.stream_id, a.proposed))
        except DomainError as e:
            raise rebase(e, i, event_field) from None
    ids = [with_event_ids([p.id for p in a.proposed]) for a in appends]
    client_ids = [p.id for a in appends for p in a.proposed if p.id is not None]

    # Built once: the server's metadata (request id, recorded time) is that of this request.
    records = [
        [
            NewEvent(
                id=ids[i][j],
                type=p.type,
                data=p.data,
                metadata=writes.metadata(principal, request_id, p.metadata),
                schema_version=SCHEMA_VERSIONS[p.type],
            )
            for j, p in enumerate(a.proposed)
        ]
        for i, a in enumerate(appends)
    ]
    last_race: Exception | None = None
    for _attempt in range(attempts):
        loaded = [await writes.load(a.stream_id) for a in appends]
        regions: list[str | None] = []
        for i in range(len(appends)):
            try:
                region = writes.region_of(loaded[i], new[i])
                await writes.check_home(appends[i].stream_id, region)
                writes.authorize(principal, loaded[i], region)
                regions.append(region)
            except DomainError as e:
                raise rebase(e, i, event_field) from None
        if client_ids and await writes.store.any_stored(client_ids):
            return await _replay(writes, appends, records, regions)
        for a, stream in zip(appends, loaded, strict=True):
            stale = isinstance(a.expected, int) and a.expected != stream.version
            if stale or (a.expected == "exists" and stream.version == 0):
                raise WrongExpectedVersion(a.stream_id, a.expected, stream.version)
        await _decide_all(
            writes,
            principal,
            appends,
            loaded=loaded,
            new=new,
            event_field=event_field,
        )
        try:
            committed = []
            async with writes.store.pool.acquire() as conn, conn.transaction():
                for i, a in enumerate(appends):
                    committed.append(
                        await writes.store.insert(
                            conn, a.stream_id, records[i], loaded[i].version, regions[i]
                        )
                    )
        except asyncpg.UniqueViolationError as e:
            # Another writer took a version we decided on, or stored one of these ids
            # meanwhile: re-read and decide again (or replay, or report the conflict).
            if e.constraint_name not in ("events_stream_version_key", "events_event_id_key"):
                raise
            last_race = e
            continue
        except WrongExpectedVersion as e:
            last_race = e
            continue
        return [await writes.store.positions(c) for c in committed]
    if isinstance(last_race, WrongExpectedVersion):
        raise last_race
    raise DuplicateEventId(str(client_ids[0]) if client_ids else "?", "lost repeated races")


async def _decide_all(
    writes: WritePath,
    principal: Principal,
    appends: Sequence[StreamAppend],
    *,
    loaded: Sequence[Loaded],
    new: Sequence[Sequence[AnyEvent]],
    event_field: EventField,
) -> None:
    """Run `decide` over every stream in order; later streams see earlier ones' new state."""
    after_batch: dict[str, AnyState | None] = {}
    for i, a in enumerate(appends):
        refs = {ref for e in new[i] for ref in domain.references(e) if ref != a.stream_id}
        states: dict[str, AnyState | None] = {}
        for ref in sorted(refs):
            if ref in after_batch:
                states[ref] = after_batch[ref]
            else:
                states[ref] = (await writes.load(ref)).state
        ctx = writer_context(
            DecideContext.from_streams(writes.regions, states), principal, loaded[i]
        )
        state = loaded[i].state
        for j, event in enumerate(new[i]):
            try:
                domain.decide(state, event, ctx)
            except DomainError as e:
                if e.field is not None and e.field.startswith("$."):
                    e.field = event_field(i, j) + e.field[1:]
                raise
            state = domain.evolve(state, event)
        after_batch[a.stream_id] = state


async def _replay(
    writes: WritePath,
    appends: Sequence[StreamAppend],
    records: Sequence[Sequence[NewEvent]],
    regions: Sequence[str | None],
) -> list[AppendResult]:
    """The original results of a batch that is already stored (or 409 if only partly)."""
    for recs in records:
        # A stream with none of its ids stored would be *written* by store.append below.
        if not await writes.store.any_stored([r.id for r in recs]):
            raise DuplicateEventId(
                str(recs[0].id), "another part of this batch is already stored without it"
            )
    return [
        await writes.store.append(a.stream_id, recs, a.expected, region_code=region)
        for a, recs, region in zip(appends, records, regions, strict=True)
    ]
