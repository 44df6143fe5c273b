"""Actions on an existing hearing, issue or recommendation, as small forms on its page.

Each action is one event type with the fields a person fills in. Its form carries the
stream version the page was rendered at: an action whose outcome depends on the state
(approve, submit, close, withdraw, ...) is appended with that exact expected version, so
a change made by someone else in between is answered with "reload" instead of being
overwritten. Additive records (participants, statements, evidence) only need the stream
to exist. The form's event id makes a double post record once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from coord.auth import Role

FieldKind = Literal[
    "text", "textarea", "datetime", "org", "category", "ids", "url", "percent", "severity", "index"
]


@dataclass(frozen=True, slots=True)
class Field:
    """One input of an action form; `name` is the payload key (an org adds _code/_name)."""

    name: str
    label: str
    kind: FieldKind = "text"
    required: bool = True


@dataclass(frozen=True, slots=True)
class Action:
    """An event a page offers as a form."""

    slug: str
    event: str
    label: str
    roles: tuple[Role, ...]
    fields: tuple[Field, ...]
    # True: append at the rendered version (conflict -> "reload"); False: the stream exists.
    versioned: bool = True
    # The payload from the form values (default: each field by its kind).
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    statuses: frozenset[str] = field(default_factory=frozenset)
    # A correction: the current values of its fields (given the entity's state and the
    # payload, e.g. a statement's index). The form starts from them, and a value left as
    # it was is not sent (a correction names only what changes).
    current: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    # The choices of an "index" field from the entity's state: (value, label, the stream
    # version that recorded the item: only the role that recorded it may correct it).
    choices: Callable[[Any], list[tuple[str, str, int]]] | None = None

    def offered(self, role: str, status: str) -> bool:
        """Is this action shown to `role` on a page in `status`?"""
        return role in self.roles and (not self.statuses or status in self.statuses)


def _participants(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "participants": [
            {"name": data["name"], "role": data["role"], "organization": data["organization"]}
        ]
    }


def _one_issue(data: dict[str, Any]) -> dict[str, Any]:
    ids = data.get("issue_ids") or [""]
    return {"issue_id": ids[0], **({"reason": data["reason"]} if data.get("reason") else {})}


def _issue_now(state: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {"title": state.title, "description": state.description, "severity": state.severity}


def _hearing_now(state: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {"title": state.title, "agenda": state.agenda, "venue": state.venue}


def _statement_now(state: Any, data: dict[str, Any]) -> dict[str, Any]:
    index = data.get("statement_index")
    if not isinstance(index, int) or not 0 <= index < len(state.statements):
        return {}  # no statement chosen yet, or an unknown one: the write path says which
    found = state.statements[index]
    return {"speaker": found.speaker, "text": found.text, "quote": found.quote}


def _statements(state: Any) -> list[tuple[str, str, int]]:
    return [
        (
            str(n),
            f"{n + 1}. {s.speaker}: {s.text[:60]}{'…' if len(s.text) > 60 else ''}",
            s.recorded_in,
        )
        for n, s in enumerate(state.statements)
        if not s.retracted
    ]


_OPEN_RECOMMENDATION = frozenset({"draft", "approved", "submitted", "responded"})

HEARING_ACTIONS: tuple[Action, ...] = (
    Action(
        "peserta",
        "ParticipantsRecorded",
        "action.participants",
        ("regional", "national"),
        (
            Field("name", "field.person_name"),
            Field("role", "field.person_role"),
            Field("organization", "field.organization", "org"),
        ),
        versioned=False,
        shape=_participants,
        statuses=frozenset({"scheduled", "held"}),
    ),
    Action(
        "pernyataan",
        "StatementRecorded",
        "action.statement",
        ("regional", "national"),
        (
            Field("speaker", "field.speaker"),
            Field("organization", "field.organization", "org"),
            Field("text", "field.statement", "textarea"),
            Field("quote", "field.quote", "textarea", required=False),
        ),
        versioned=False,
        statuses=frozenset({"scheduled", "held"}),
    ),
    Action(
        "terlaksana",
        "HearingHeld",
        "action.held",
        ("regional", "national"),
        (
            Field("held_at", "field.held_at", "datetime"),
            Field("opened_by", "field.opened_by"),
            Field("summary", "field.summary", "textarea"),
        ),
        statuses=frozenset({"scheduled"}),
    ),
    Action(
        "jadwal-ulang",
        "HearingRescheduled",
        "action.reschedule",
        ("regional", "national"),
        (
            Field("scheduled_at", "field.scheduled_at", "datetime"),
            Field("venue", "field.venue", required=False),
            Field("reason", "field.reason", "textarea", required=False),
        ),
        statuses=frozenset({"scheduled"}),
    ),
    Action(
        "batal",
        "HearingCancelled",
        "action.cancel",
        ("regional", "national"),
        (Field("reason", "field.reason", "textarea"),),
        statuses=frozenset({"scheduled"}),
    ),
    Action(
        "koreksi",
        "HearingDetailsCorrected",
        "action.correct_hearing",
        ("regional", "national"),
        (
            Field("title", "col.title", required=False),
            Field("agenda", "hearing_form.agenda", "textarea", required=False),
            Field("venue", "field.venue", required=False),
            Field("reason", "field.correction_reason", "textarea"),
        ),
        current=_hearing_now,
    ),
    Action(
        "koreksi-pernyataan",
        "StatementCorrected",
        "action.correct_statement",
        ("regional", "national"),
        (
            Field("statement_index", "field.statement_index", "index"),
            Field("speaker", "field.speaker", required=False),
            Field("text", "field.statement", "textarea", required=False),
            Field("quote", "field.quote", "textarea", required=False),
            Field("reason", "field.correction_reason", "textarea"),
        ),
        current=_statement_now,
        choices=_statements,
    ),
)

ISSUE_ACTIONS: tuple[Action, ...] = (
    Action(
        "bukti",
        "IssueEvidenceAdded",
        "action.evidence",
        ("regional",),
        (
            Field("description", "field.evidence", "textarea"),
            Field("url", "field.url", "url", required=False),
            Field("source", "field.source", required=False),
        ),
        versioned=False,
        statuses=frozenset({"open"}),
    ),
    Action(
        "koreksi",
        "IssueCorrected",
        "action.correct_issue",
        ("regional",),
        (
            Field("title", "col.title", required=False),
            Field("description", "issue.description", "textarea", required=False),
            Field("severity", "col.severity", "severity", required=False),
            Field("reason", "field.correction_reason", "textarea"),
        ),
        statuses=frozenset({"open", "addressed"}),
        current=_issue_now,
    ),
    Action(
        "kategori",
        "IssueCategoryCorrected",
        "action.category",
        ("regional",),
        (Field("category", "col.category", "category"), Field("reason", "field.reason")),
        statuses=frozenset({"open"}),
    ),
    Action(
        "tarik",
        "IssueWithdrawn",
        "action.withdraw",
        ("regional",),
        (Field("reason", "field.reason", "textarea"),),
        statuses=frozenset({"open"}),
    ),
)

RECOMMENDATION_ACTIONS: tuple[Action, ...] = (
    Action(
        "revisi",
        "RecommendationRevised",
        "action.revise",
        ("national",),
        (
            Field("title", "col.title", required=False),
            Field("body", "field.body", "textarea", required=False),
            Field("addressee", "recs.addressee", required=False),
        ),
        statuses=frozenset({"draft", "approved"}),
    ),
    Action(
        "kutip",
        "IssuesCited",
        "action.cite",
        ("national",),
        (Field("issue_ids", "field.issue_ids", "ids"),),
        statuses=frozenset({"draft", "approved"}),
    ),
    Action(
        "cabut-kutipan",
        "IssueUncited",
        "action.uncite",
        ("national",),
        (
            Field("issue_ids", "field.issue_id", "ids"),
            Field("reason", "field.reason", required=False),
        ),
        shape=_one_issue,
        statuses=frozenset({"draft", "approved"}),
    ),
    Action(
        "setujui",
        "RecommendationApproved",
        "action.approve",
        ("national",),
        (Field("approved_by", "field.approved_by"),),
        statuses=frozenset({"draft"}),
    ),
    Action(
        "ajukan",
        "RecommendationSubmitted",
        "action.submit",
        ("national",),
        (
            Field("submitted_to", "field.submitted_to"),
            Field("submitted_at", "field.when", "datetime"),
        ),
        statuses=frozenset({"approved"}),
    ),
    Action(
        "tanggapan",
        "ResponseRecorded",
        "action.response",
        ("national",),
        (
            Field("responder", "field.responder"),
            Field("text", "field.response", "textarea"),
            Field("received_at", "field.received_at", "datetime"),
        ),
        statuses=frozenset({"submitted", "responded"}),
    ),
    Action(
        "kemajuan",
        "ProgressReported",
        "action.progress",
        ("national",),
        (
            Field("percent", "field.percent", "percent"),
            Field("note", "field.note", "textarea"),
            Field("evidence_url", "field.evidence_url", "url", required=False),
        ),
        statuses=frozenset({"submitted", "responded"}),
    ),
    Action(
        "tutup",
        "RecommendationClosed",
        "action.close",
        ("national",),
        (Field("outcome", "field.outcome", "textarea"),),
        statuses=_OPEN_RECOMMENDATION,
    ),
)


class FormValueError(Exception):
    """A value the console cannot read at all (the write path judges everything else)."""

    def __init__(self, key: str, field_name: str) -> None:
        super().__init__(key)
        self.key = key
        self.field = field_name


_ID_SPLIT = re.compile(r"[\s,;]+")


def read_ids(raw: str) -> list[str]:
    """Issue ids pasted one per line or separated by commas; a link `/isu/<id>` is fine."""
    return [part.rsplit("/", 1)[-1] for part in _ID_SPLIT.split(raw.strip()) if part]


def read_percent(raw: str, field_name: str) -> int:
    """A whole percent 0-100 (the write path checks the range again)."""
    try:
        value = int(raw.strip().rstrip("%").strip())
    except ValueError:
        raise FormValueError("form.bad_percent", field_name) from None
    if not 0 <= value <= 100:
        raise FormValueError("form.bad_percent", field_name)
    return value


def local_datetime(raw: str, zone: Any, field_name: str) -> str:
    """A `datetime-local` value read as wall-clock time in `zone`, as RFC 3339."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise FormValueError("form.bad_time", field_name) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.isoformat()


def payload(action: Action, values: dict[str, str], zone: Any) -> dict[str, Any]:
    """The event payload from the form's values (empty optional fields left out)."""
    data: dict[str, Any] = {}
    for f in action.fields:
        if f.kind == "org":
            data[f.name] = {
                "code": values.get(f"{f.name}_code", ""),
                "name": values.get(f"{f.name}_name", ""),
            }
            continue
        raw = values.get(f.name, "")
        if not raw.strip() and not f.required:
            continue
        if f.kind == "datetime":
            if not raw:
                raise FormValueError("form.required", f.name)
            data[f.name] = local_datetime(raw, zone, f.name)
        elif f.kind == "ids":
            data[f.name] = read_ids(raw)
        elif f.kind == "percent":
            data[f.name] = read_percent(raw, f.name)
        elif f.kind in ("severity", "index"):
            try:
                data[f.name] = int(raw)
            except ValueError:
                raise FormValueError("form.choose", f.name) from None
        else:
            data[f.name] = raw
    return action.shape(data) if action.shape is not None else data


def unchanged_left_out(action: Action, state: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A correction's payload without the fields still at their current value."""
    if action.current is None:
        return data
    now = action.current(state, data)
    return {k: v for k, v in data.items() if k not in now or now[k] != v}


def find(actions: tuple[Action, ...], slug: str) -> Action | None:
    """The action with this slug."""
    return next((a for a in actions if a.slug == slug), None)


def fresh_event_id() -> str:
    """An event id for a form being rendered."""
    return str(uuid.uuid4())


def now_local(zone: Any) -> str:
    """Now as a `datetime-local` value in `zone` (a form's default)."""
    return datetime.now(UTC).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def form_values(form: Any) -> dict[str, str]:
    """The string values of a posted form, minus the CSRF value."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}


CLUSTER_ACTIONS: tuple[Action, ...] = (
    Action(
        "nama",
        "ClusterNamed",
        "action.cluster_name",
        ("national",),
        (Field("name", "field.cluster_name"),),
    ),
    Action(
        "gabung",
        "ClustersMerged",
        "action.cluster_merge",
        ("national",),
        (Field("cluster_ids", "field.cluster_ids", "ids"),),
    ),
    Action(
        "pindah",
        "IssueReassigned",
        "action.cluster_move",
        ("national",),
        (Field("issue_ids", "field.move_issues", "ids"),),
    ),
)

#: Split issues off into a new cluster: an IssueReassigned on a stream no cluster has yet
#: (its id comes with the form, so a retried post goes to the same new cluster).
CLUSTER_SPLIT = Action(
    "pisah",
    "IssueReassigned",
    "action.cluster_split",
    ("national",),
    (Field("issue_ids", "field.split_issues", "ids"),),
)
