"""Accountability of a submitted recommendation: when its answer is due, whether it is
overdue, and what came of it.

Pure: "now" is always an argument (the views pass the server's clock at query time;
read models never store it, so a replay reproduces them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, Literal

#: The answer is due this long after submission unless the submission names a date.
DEFAULT_RESPONSE_WINDOW: Final = timedelta(days=30)

#: What came of a recommendation: the addressee's answer, or ``no_response`` when it was
#: closed without one.
Outcome = Literal["accepted", "partly_accepted", "rejected", "no_response"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("accepted", "partly_accepted", "rejected", "no_response")

# Most favourable first: an issue two recommendations carried, one accepted and one
# rejected, was taken up.
_RANK: Final[dict[str, int]] = {o: i for i, o in enumerate(OUTCOMES)}


def response_due(submitted_at: datetime, given: datetime | None) -> datetime:
    """When an answer is due: the date the submission gave, else the default window."""
    return given if given is not None else submitted_at + DEFAULT_RESPONSE_WINDOW


def is_overdue(status: str, due_at: datetime | None, answered: bool, now: datetime) -> bool:
    """Submitted, unanswered, still open, and past its due date."""
    return (
        due_at is not None
        and not answered
        and status in ("submitted", "responded")
        and due_at < now
    )


def closing_outcome(current: str | None, answered: bool) -> str | None:
    """The outcome once a recommendation is closed: its answer's, else ``no_response``."""
    if current is not None:
        return current
    return None if answered else "no_response"


def final_outcome(outcomes: Iterable[str | None]) -> str | None:
    """An issue's final outcome through the recommendations that cite it: the most
    favourable one any of them got (None while none has an outcome)."""
    known = [o for o in outcomes if o in _RANK]
    return min(known, key=_RANK.__getitem__) if known else None
