"""The hearing aggregate (stream ``hearing-<uuid>``): state, ``evolve`` and ``decide``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Literal, assert_never

import msgspec
from msgspec.structs import replace

from events.organizations import Organization
from events.rules import InvalidRequest, RuleViolation, field_path
from events.types import (
    HearingCancelled,
    HearingEvent,
    HearingHeld,
    HearingRescheduled,
    HearingScheduled,
    Participant,
    ParticipantsRecorded,
    StatementRecorded,
)

if TYPE_CHECKING:
    from events.domain import DecideContext

HearingStatus = Literal["scheduled", "held", "cancelled"]


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    """A statement as shown on the hearing."""

    speaker: str
    organization: Organization
    text: str
    quote: str | None = None


class HearingState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything GET /v1/hearings/{id} shows."""

    region_code: str
    title: str
    agenda: str
    venue: str
    scheduled_at: datetime
    convened_by: Organization
    host_organization: Organization
    status: HearingStatus = "scheduled"
    participants: tuple[Participant, ...] = ()
    statements: tuple[Statement, ...] = ()
    held_at: datetime | None = None
    opened_by: str | None = None
    summary: str | None = None
    cancel_reason: str | None = None
    reschedule_count: int = 0


def evolve(state: HearingState | None, event: HearingEvent) -> HearingState:
    """Apply one already-accepted event. Pure; trusts that ``decide`` allowed it."""
    if state is None:
        if not isinstance(event, HearingScheduled):
            raise ValueError(f"a hearing starts with HearingScheduled, not {type(event).__name__}")
        return HearingState(
            region_code=event.region_code,
            title=event.title,
            agenda=event.agenda,
            venue=event.venue,
            scheduled_at=event.scheduled_at,
            convened_by=event.convened_by,
            host_organization=event.host_organization,
        )
    match event:
        case HearingScheduled():
            raise ValueError("HearingScheduled on an existing hearing")
        case HearingRescheduled(scheduled_at=at, venue=venue):
            return replace(
                state,
                scheduled_at=at,
                venue=venue if venue is not None else state.venue,
                reschedule_count=state.reschedule_count + 1,
            )
        case HearingCancelled(reason=reason):
            return replace(state, status="cancelled", cancel_reason=reason)
        case ParticipantsRecorded(participants=participants):
            return replace(state, participants=(*state.participants, *participants))
        case StatementRecorded():
            statement = Statement(
                speaker=event.speaker,
                organization=event.organization,
                text=event.text,
                quote=event.quote,
            )
            return replace(state, statements=(*state.statements, statement))
        case HearingHeld(held_at=held_at, opened_by=opened_by, summary=summary):
            return replace(
                state, status="held", held_at=held_at, opened_by=opened_by, summary=summary
            )
        case _:
            assert_never(event)


def fold(events: Iterable[HearingEvent]) -> HearingState | None:
    """The state after ``events`` (None for an empty stream)."""
    state: HearingState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def decide(state: HearingState | None, event: HearingEvent, ctx: DecideContext) -> None:
    """Refuse ``event`` on a hearing in ``state`` by raising a DomainError; return if allowed."""
    if state is None:
        if not isinstance(event, HearingScheduled):
            raise RuleViolation(
                "hearing.not_scheduled", f"no such hearing: {type(event).__name__} needs one"
            )
        if event.region_code not in ctx.regions:
            raise InvalidRequest(
                "region.unknown",
                f"unknown region code {event.region_code!r}",
                field_path("region_code"),
            )
        return
    if isinstance(event, HearingScheduled):
        raise RuleViolation("hearing.already_scheduled", "this hearing is already scheduled")
    # Whatever the event, a cancelled hearing is final.
    if state.status == "cancelled":
        raise RuleViolation(
            "hearing.cancelled", f"the hearing was cancelled: {type(event).__name__} refused"
        )
    match event:
        case HearingRescheduled() | HearingCancelled() | HearingHeld():
            # Once held, the hearing's time and fate are history.
            if state.status == "held":
                raise RuleViolation(
                    "hearing.already_held",
                    f"the hearing was held at {state.held_at}: {type(event).__name__} refused",
                )
        case ParticipantsRecorded() | StatementRecorded():
            # Minutes are often typed up after the hearing: allowed while scheduled or held.
            pass
        case _:
            assert_never(event)


def region_of(state: HearingState) -> str:
    """The region code access control checks."""
    return state.region_code
