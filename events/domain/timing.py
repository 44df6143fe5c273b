"""Sanity rules for effective times (when something happened, as the office says).

Effective times are what an office states (``held_at``, ``raised_at``); recorded time is
when the server stored the event. ``decide`` is pure, so "now" comes from the write path
in :class:`~events.domain.context.DecideContext` (``now``); without it the future check is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from events.domain.rules import InvalidRequest, field_path

if TYPE_CHECKING:
    from events.domain.context import DecideContext

#: Clocks of offices' laptops drift; an effective time this far ahead of the server is fine.
CLOCK_TOLERANCE: Final = timedelta(minutes=10)
#: A hearing is held on its scheduled day, give or take; earlier than this is a typo.
EARLY_HOLDING: Final = timedelta(days=1)


def not_in_future(at: datetime | None, ctx: DecideContext, field: str) -> None:
    """Refuse (422 ``time.in_future``) an effective time later than now plus the tolerance."""
    if at is None or ctx.now is None:
        return
    if at > ctx.now + CLOCK_TOLERANCE:
        raise InvalidRequest(
            "time.in_future",
            f"{field} {at.isoformat()} is in the future (now is {ctx.now.isoformat()})",
            field_path(field),
        )


def held_on_time(held_at: datetime, scheduled_at: datetime, field: str = "held_at") -> None:
    """Refuse (422 ``hearing.held_before_scheduled``) holding more than a day early."""
    if held_at < scheduled_at - EARLY_HOLDING:
        raise InvalidRequest(
            "hearing.held_before_scheduled",
            f"held_at {held_at.isoformat()} is more than a day before the hearing was "
            f"scheduled ({scheduled_at.isoformat()}): reschedule it or correct the time",
            field_path(field),
        )


def raised_after_hearing(
    raised_at: datetime, scheduled_at: datetime, held_at: datetime | None, field: str
) -> None:
    """Refuse (422 ``issue.raised_before_hearing``) an issue raised before its hearing.

    A held hearing started at ``held_at`` (within the clock tolerance); one not yet marked
    held may have been held up to a day before its scheduled time (as ``HearingHeld`` allows).
    """
    start = held_at - CLOCK_TOLERANCE if held_at is not None else scheduled_at - EARLY_HOLDING
    if raised_at < start:
        raise InvalidRequest(
            "issue.raised_before_hearing",
            f"raised_at {raised_at.isoformat()} is before its hearing ({start.isoformat()})",
            field_path(field),
        )
