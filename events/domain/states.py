"""The states of a hearing and an issue, and the correction history a record keeps.

They live apart from their aggregates (hearing.py, issue.py) because other streams'
decisions consult them: :class:`~events.domain.context.DecideContext` carries them, and
the aggregates take that context, so the states sit below both and nothing imports in a
circle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from events.domain.categories import CategoryCode
from events.domain.organizations import Organization


class Change(msgspec.Struct, frozen=True, kw_only=True, rename={"before": "from"}):
    """One corrected field: the value before and the value after."""

    before: Any
    to: Any


class Correction(msgspec.Struct, frozen=True, kw_only=True):
    """One correction as kept in a record's history (oldest first)."""

    type: str
    reason: str
    #: the stream version of the correcting event
    version: int
    changes: dict[str, Change] = msgspec.field(default_factory=dict)
    #: the list item it applies to (``statements[2]``), for corrections of a hearing's items
    item: str | None = None


HearingStatus = Literal["scheduled", "held", "cancelled"]


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    """A statement as shown on the hearing (retracted ones keep their place, marked)."""

    speaker: str
    organization: Organization
    text: str
    quote: str | None = None
    #: the stream version of the StatementRecorded event
    recorded_in: int = 0
    #: fields whose value was corrected, sorted
    corrected: tuple[str, ...] = ()
    retracted: bool = False
    retract_reason: str | None = None


class ParticipantEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A participant as shown on the hearing (removed ones keep their place, marked)."""

    name: str
    role: str
    organization: Organization
    #: the stream version of the ParticipantsRecorded event
    recorded_in: int = 0
    removed: bool = False
    remove_reason: str | None = None


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
    participants: tuple[ParticipantEntry, ...] = ()
    statements: tuple[Statement, ...] = ()
    held_at: datetime | None = None
    opened_by: str | None = None
    summary: str | None = None
    cancel_reason: str | None = None
    reschedule_count: int = 0
    #: the stream version this state is at (items and corrections name their version)
    version: int = 1
    #: hearing fields whose value was corrected (the "corrected" mark), sorted
    corrected: tuple[str, ...] = ()
    #: every correction of the hearing or its items, oldest first
    corrections: tuple[Correction, ...] = ()


IssueStatus = Literal["open", "withdrawn"]


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Supporting material as shown on the issue."""

    description: str
    url: str | None = None
    source: str | None = None


class IssueState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything GET /v1/issues/{id} shows."""

    region_code: str
    hearing_id: UUID | None
    raised_by: Organization
    category: CategoryCode
    title: str
    description: str
    severity: int
    raised_at: datetime | None = None
    status: IssueStatus = "open"
    evidence: tuple[Evidence, ...] = ()
    withdraw_reason: str | None = None
    #: the stream version this state is at (corrections name the version they came in)
    version: int = 1
    #: fields whose value was corrected (the "corrected" mark), sorted
    corrected: tuple[str, ...] = ()
    #: every correction, oldest first, with the values before and after
    corrections: tuple[Correction, ...] = ()
