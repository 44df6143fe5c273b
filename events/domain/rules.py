"""Domain errors raised by ``decide`` and the event codec, and the catalogue of rules.

Every refusal names the rule it enforces (``rule="hearing.cancelled"``) so that the HTTP
layer can put it in an RFC 9457 problem body and clients can branch on it. Store errors
(concurrency, idempotency) live in ``events/domain/errors.py``, not here.
"""

from typing import Final

FORBIDDEN: Final = 403
CONFLICT: Final = 409
UNPROCESSABLE: Final = 422

# Field paths in domain errors are rooted at the request envelope's ``data`` member.
DATA_ROOT: Final = "$.data"

#: rule name -> (HTTP status, what the rule says). The single source for docs and tests.
RULES: Final[dict[str, tuple[int, str]]] = {
    # codec
    "event.unknown_type": (UNPROCESSABLE, "the event type name is not a known event type"),
    "event.invalid": (UNPROCESSABLE, "the payload does not match the event schema"),
    "event.wrong_stream": (UNPROCESSABLE, "the event type does not belong to the stream"),
    "region.unknown": (UNPROCESSABLE, "a region code must exist in the Kemendagri registry"),
    # hearing
    "hearing.not_scheduled": (CONFLICT, "a hearing stream must start with HearingScheduled"),
    "hearing.already_scheduled": (CONFLICT, "HearingScheduled only starts a new stream"),
    "hearing.cancelled": (CONFLICT, "nothing can be recorded on a cancelled hearing"),
    "hearing.already_held": (CONFLICT, "a held hearing cannot be held, moved or cancelled"),
    "hearing.held_before_scheduled": (
        UNPROCESSABLE,
        "held_at is at most a day before the time the hearing was scheduled for",
    ),
    "hearing.status_unchanged": (CONFLICT, "a status correction must change the status"),
    "hearing.held_details_required": (
        UNPROCESSABLE,
        "a status correction to held gives held_at, opened_by and summary",
    ),
    "hearing.held_details_not_allowed": (
        UNPROCESSABLE,
        "only a status correction to held gives held_at, opened_by or summary",
    ),
    "hearing.participant_unknown": (
        UNPROCESSABLE,
        "participant_index must name a participant of the hearing",
    ),
    "hearing.participant_removed": (CONFLICT, "a participant is removed once"),
    "hearing.statement_unknown": (
        UNPROCESSABLE,
        "statement_index must name a statement of the hearing",
    ),
    "hearing.statement_retracted": (
        CONFLICT,
        "a retracted statement is not corrected or retracted again",
    ),
    # issue
    "issue.not_raised": (CONFLICT, "an issue stream must start with IssueRaised"),
    "issue.already_raised": (CONFLICT, "IssueRaised only starts a new stream"),
    # One rule for "no such hearing" and "a hearing elsewhere": the answer reveals nothing.
    "issue.hearing_unknown": (UNPROCESSABLE, "the issue's hearing must exist in its region"),
    "issue.hearing_cancelled": (CONFLICT, "issues cannot be raised at a cancelled hearing"),
    "issue.withdrawn": (CONFLICT, "nothing follows the withdrawal of an issue"),
    "issue.category_unchanged": (CONFLICT, "a category correction must change the category"),
    "issue.raised_before_hearing": (UNPROCESSABLE, "an issue is not raised before its hearing"),
    "issue.national_needs_hearing": (
        UNPROCESSABLE,
        "an issue raised with a national token names its hearing",
    ),
    # corrections (any record) and effective times
    "correction.empty": (UNPROCESSABLE, "a correction names at least one field to change"),
    "correction.unchanged": (CONFLICT, "every corrected field must change its value"),
    "correction.not_recorder": (
        FORBIDDEN,
        "a record is corrected by the kind of office that recorded it (regional or national)",
    ),
    "time.in_future": (
        UNPROCESSABLE,
        "an effective time (held_at, raised_at, submitted_at, received_at, reported_at) is "
        "not later than now plus 10 minutes",
    ),
    # cluster (analysts' decisions on recurring problems)
    "cluster.name_unchanged": (CONFLICT, "a new name must differ from the cluster's name"),
    "cluster.merge_self": (UNPROCESSABLE, "a cluster is not merged into itself"),
    "cluster.duplicate": (UNPROCESSABLE, "a cluster is listed twice in one event"),
    "cluster.issue_duplicate": (UNPROCESSABLE, "an issue is listed twice in one event"),
    "cluster.issue_unknown": (UNPROCESSABLE, "a reassigned issue must exist"),
    "cluster.issue_withdrawn": (CONFLICT, "a withdrawn issue is not reassigned"),
    # recommendation
    "recommendation.not_drafted": (
        CONFLICT,
        "a recommendation stream must start with RecommendationDrafted",
    ),
    "recommendation.already_drafted": (CONFLICT, "RecommendationDrafted only starts a stream"),
    "recommendation.issue_unknown": (UNPROCESSABLE, "a cited issue must exist"),
    "recommendation.issue_withdrawn": (CONFLICT, "a withdrawn issue cannot be cited"),
    "recommendation.issue_duplicate": (UNPROCESSABLE, "an issue is listed twice in one event"),
    "recommendation.issue_already_cited": (CONFLICT, "the issue is already cited"),
    "recommendation.issue_not_cited": (CONFLICT, "only a currently cited issue can be uncited"),
    "recommendation.empty_revision": (UNPROCESSABLE, "a revision must change something"),
    "recommendation.no_issues": (CONFLICT, "a recommendation must cite an issue to be approved"),
    "recommendation.already_approved": (CONFLICT, "the recommendation is already approved"),
    "recommendation.not_approved": (CONFLICT, "a recommendation is approved before submission"),
    "recommendation.already_submitted": (
        CONFLICT,
        "a submitted recommendation cannot be revised, re-cited, approved or submitted again",
    ),
    "recommendation.not_submitted": (
        CONFLICT,
        "a response or a progress report follows submission",
    ),
    "recommendation.due_before_submission": (
        UNPROCESSABLE,
        "response_due_at is after submitted_at",
    ),
    "recommendation.closed": (CONFLICT, "nothing follows the closing of a recommendation"),
    # access tokens
    "token.already_issued": (CONFLICT, "a token id is issued once"),
    "token.unknown": (UNPROCESSABLE, "the token must have been issued"),
    "token.already_revoked": (CONFLICT, "a token is revoked once"),
    "token.regions_required": (UNPROCESSABLE, "a regional token names at least one region"),
    "token.regions_not_allowed": (UNPROCESSABLE, "only regional tokens carry regions"),
    "token.expiry_past": (UNPROCESSABLE, "expires_at is later than now"),
    "token.expiry_too_far": (UNPROCESSABLE, "expires_at is at most 2 years (731 days) ahead"),
    "token.name_taken": (
        CONFLICT,
        "a token name is unique among live (neither revoked nor expired) tokens",
    ),
}


class DomainError(Exception):
    """A refused event: ``rule`` names the rule, ``status`` is the HTTP status to answer."""

    title = "Domain rule violated"

    def __init__(self, rule: str, detail: str, status: int, field: str | None = None) -> None:
        # An uncatalogued rule or status is a programming error; fail loudly rather than emit it.
        if RULES.get(rule, (None,))[0] != status:
            raise ValueError(f"rule {rule!r} is not catalogued with status {status}")
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail
        self.status = status
        self.field = field


class RuleViolation(DomainError):
    """The event conflicts with the current state of a stream (HTTP 409)."""

    title = "State conflict"

    def __init__(self, rule: str, detail: str, field: str | None = None) -> None:
        # ``field``: the request's value that conflicts, when one does (a taken name).
        super().__init__(rule, detail, CONFLICT, field)


class InvalidRequest(DomainError):
    """The event is invalid whatever the stream's state (HTTP 422); ``field`` is its path."""

    title = "Invalid request"

    def __init__(self, rule: str, detail: str, field: str | None = None) -> None:
        super().__init__(rule, detail, UNPROCESSABLE, field)


class NotPermitted(DomainError):
    """The caller's role may write the stream but not this record (HTTP 403)."""

    title = "Forbidden"

    def __init__(self, rule: str, detail: str, field: str | None = None) -> None:
        super().__init__(rule, detail, FORBIDDEN, field)


class UnknownEventType(InvalidRequest):
    """The event type name is not registered in ``events.domain.types.EVENT_TYPES``."""

    def __init__(self, type_name: str) -> None:
        super().__init__("event.unknown_type", f"unknown event type {type_name!r}", "$.type")
        self.type_name = type_name


def field_path(*parts: str | int) -> str:
    """JSON path under ``$.data``: ``field_path("issue_ids", 2)`` is ``$.data.issue_ids[2]``."""
    path = DATA_ROOT
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
