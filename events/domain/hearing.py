"""The hearing aggregate (stream ``hearing-<uuid>``): state, ``evolve`` and ``decide``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar, assert_never

import msgspec
from msgspec.structs import replace

from events.domain import timing
from events.domain.corrections import changes, check_changes, check_corrector
from events.domain.rules import InvalidRequest, RuleViolation, field_path
from events.domain.states import Correction, HearingState, ParticipantEntry, Statement
from events.domain.types import (
    HearingCancelled,
    HearingDetailsCorrected,
    HearingEvent,
    HearingHeld,
    HearingRescheduled,
    HearingScheduled,
    HearingStatusCorrected,
    ParticipantRemoved,
    ParticipantsRecorded,
    StatementCorrected,
    StatementRecorded,
    StatementRetracted,
)

if TYPE_CHECKING:
    from events.domain.context import DecideContext

_DETAILS = ("title", "agenda", "venue", "host_organization")
_STATEMENT_FIELDS = ("speaker", "organization", "text", "quote")


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
    version = state.version + 1
    state = replace(state, version=version)
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
            entries = tuple(
                ParticipantEntry(
                    name=p.name, role=p.role, organization=p.organization, recorded_in=version
                )
                for p in participants
            )
            return replace(state, participants=(*state.participants, *entries))
        case StatementRecorded():
            statement = Statement(
                speaker=event.speaker,
                organization=event.organization,
                text=event.text,
                quote=event.quote,
                recorded_in=version,
            )
            return replace(state, statements=(*state.statements, statement))
        case HearingHeld(held_at=held_at, opened_by=opened_by, summary=summary):
            return replace(
                state, status="held", held_at=held_at, opened_by=opened_by, summary=summary
            )
        case HearingDetailsCorrected(reason=reason):
            proposed = _proposed(event, _DETAILS)
            fix = Correction(
                type="HearingDetailsCorrected",
                reason=reason,
                version=version,
                changes=changes(_current(state, _DETAILS), proposed),
            )
            return replace(
                state,
                **{k: v for k, v in proposed.items() if v is not None},
                corrected=tuple(sorted({*state.corrected, *fix.changes})),
                corrections=(*state.corrections, fix),
            )
        case ParticipantRemoved(participant_index=index, reason=reason):
            removed = list(state.participants)
            removed[index] = replace(removed[index], removed=True, remove_reason=reason)
            fix = Correction(
                type="ParticipantRemoved",
                reason=reason,
                version=version,
                item=f"participants[{index}]",
            )
            return replace(
                state,
                participants=tuple(removed),
                corrections=(*state.corrections, fix),
            )
        case StatementCorrected(statement_index=index, reason=reason):
            statements = list(state.statements)
            old = statements[index]
            proposed = _proposed(event, _STATEMENT_FIELDS)
            fix = Correction(
                type="StatementCorrected",
                reason=reason,
                version=version,
                changes=changes(_current(old, _STATEMENT_FIELDS), proposed),
                item=f"statements[{index}]",
            )
            statements[index] = replace(
                old,
                **{k: v for k, v in proposed.items() if v is not None},
                corrected=tuple(sorted({*old.corrected, *fix.changes})),
            )
            return replace(
                state, statements=tuple(statements), corrections=(*state.corrections, fix)
            )
        case StatementRetracted(statement_index=index, reason=reason):
            statements = list(state.statements)
            statements[index] = replace(statements[index], retracted=True, retract_reason=reason)
            fix = Correction(
                type="StatementRetracted",
                reason=reason,
                version=version,
                item=f"statements[{index}]",
            )
            return replace(
                state, statements=tuple(statements), corrections=(*state.corrections, fix)
            )
        case HearingStatusCorrected(status=status, reason=reason):
            fix = Correction(
                type="HearingStatusCorrected",
                reason=reason,
                version=version,
                changes=changes(
                    {"status": state.status, "held_at": state.held_at},
                    {"status": status, "held_at": event.held_at},
                ),
            )
            held = status == "held"
            return replace(
                state,
                status=status,
                held_at=event.held_at if held else None,
                opened_by=event.opened_by if held else None,
                summary=event.summary if held else None,
                cancel_reason=reason if status == "cancelled" else None,
                corrected=tuple(sorted({*state.corrected, "status"})),
                corrections=(*state.corrections, fix),
            )
        case _:
            assert_never(event)


def _proposed(event: msgspec.Struct, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(event, name) for name in names}


def _current(record: msgspec.Struct, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(record, name) for name in names}


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
    # Whatever the event, a cancelled hearing is final; only a correction may fix its record
    # (including the cancellation itself, when it was a mistake).
    if state.status == "cancelled" and not isinstance(event, _CORRECTIONS):
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
            if isinstance(event, HearingHeld):
                timing.not_in_future(event.held_at, ctx, "held_at")
                timing.held_on_time(event.held_at, state.scheduled_at)
        case ParticipantsRecorded() | StatementRecorded():
            # Minutes are often typed up after the hearing: allowed while scheduled or held.
            pass
        case HearingDetailsCorrected():
            check_corrector(ctx, 1, "the hearing")
            check_changes(_current(state, _DETAILS), _proposed(event, _DETAILS))
        case HearingStatusCorrected():
            check_corrector(ctx, 1, "the hearing")
            _check_status_correction(state, event, ctx)
        case ParticipantRemoved(participant_index=index):
            entry = _item(state.participants, index, "participant")
            check_corrector(ctx, entry.recorded_in, f"participant {index}")
            if entry.removed:
                raise RuleViolation(
                    "hearing.participant_removed", f"participant {index} is already removed"
                )
        case StatementCorrected(statement_index=index) | StatementRetracted(statement_index=index):
            statement = _item(state.statements, index, "statement")
            check_corrector(ctx, statement.recorded_in, f"statement {index}")
            if statement.retracted:
                raise RuleViolation(
                    "hearing.statement_retracted", f"statement {index} was retracted"
                )
            if isinstance(event, StatementCorrected):
                check_changes(
                    _current(statement, _STATEMENT_FIELDS),
                    _proposed(event, _STATEMENT_FIELDS),
                )
        case _:
            assert_never(event)


_CORRECTIONS = (
    HearingDetailsCorrected,
    HearingStatusCorrected,
    ParticipantRemoved,
    StatementCorrected,
    StatementRetracted,
)

_T = TypeVar("_T")


def _item(items: tuple[_T, ...], index: int, kind: str) -> _T:
    if index >= len(items):
        raise InvalidRequest(
            f"hearing.{kind}_unknown",
            f"the hearing has {len(items)} {kind}s: no {kind} {index}",
            field_path(f"{kind}_index"),
        )
    return items[index]


def _check_status_correction(
    state: HearingState, event: HearingStatusCorrected, ctx: DecideContext
) -> None:
    if event.status == state.status:
        raise RuleViolation("hearing.status_unchanged", f"the hearing is already {state.status}")
    details = {"held_at": event.held_at, "opened_by": event.opened_by, "summary": event.summary}
    if event.status == "held":
        for name, value in details.items():
            if value is None:
                raise InvalidRequest(
                    "hearing.held_details_required",
                    f"a correction to held gives {name}",
                    field_path(name),
                )
        assert event.held_at is not None  # checked just above
        timing.not_in_future(event.held_at, ctx, "held_at")
        timing.held_on_time(event.held_at, state.scheduled_at)
        return
    for name, value in details.items():
        if value is not None:
            raise InvalidRequest(
                "hearing.held_details_not_allowed",
                f"{name} belongs to a correction to held, not to {event.status}",
                field_path(name),
            )


def region_of(state: HearingState) -> str:
    """The region code access control checks."""
    return state.region_code
