"""Domain event schemas and their codec.

Each event is a frozen msgspec Struct; the event *type name* (the class name, e.g.
``HearingScheduled``) travels beside the payload in the envelope, not inside it, so the
payloads stay exactly what external clients send.

Schemas only grow (style anchor 8): a new field gets a default, names and types never
change. Incoming events are decoded strictly (:func:`decode_new` rejects unknown fields);
stored events leniently (:func:`decode_stored` ignores unknown fields and runs upcasters),
so old rows keep decoding as the code moves on. A real break bumps the type's entry in
``SCHEMA_VERSIONS`` and registers one upcaster from the previous version::

    @upcaster("IssueRaised", from_version=1)
    def _issue_raised_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "severity": data.pop("priority")}

Ids inside payloads are bare UUIDs: the stream ``hearing-<uuid>`` is referred to as
``"hearing_id": "<uuid>"``.
"""

import functools
import operator
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias
from uuid import UUID

import msgspec
from msgspec import Meta

from events.domain.categories import CategoryCode
from events.domain.organizations import Organization
from events.domain.rules import InvalidRequest, UnknownEventType
from events.domain.streams import is_canonical_uuid

# --- field types -----------------------------------------------------------------------

# `pattern` is applied with re.search: r"\S" means "not blank".
_NON_BLANK = r"\S"
ShortText = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NON_BLANK)]
MediumText = Annotated[str, Meta(min_length=1, max_length=2_000, pattern=_NON_BLANK)]
LongText = Annotated[str, Meta(min_length=1, max_length=20_000, pattern=_NON_BLANK)]
Url = Annotated[str, Meta(max_length=2_000, pattern=r"^https?://\S+$")]
# Shape only; existence is checked against the Kemendagri registry in `decide`.
RegionCode = Annotated[str, Meta(pattern=r"^\d{2}(\.\d{2})?$")]
Severity = Annotated[int, Meta(ge=1, le=5)]
# Naive datetimes are refused: a hearing in Kediri (WIB) and one in Jayapura (WIT) must compare.
AwareDatetime = Annotated[datetime, Meta(tz=True)]
IssueIds = Annotated[list[UUID], Meta(max_length=200)]
TokenRole = Literal["regional", "national", "auditor", "admin"]
StreamCategory = Literal["hearing", "issue", "recommendation", "access", "system", "cluster"]
# A projection name (projections/base.py `schema_of` needs it to fit `proj_<name>_next`).
ProjectionName = Annotated[str, Meta(pattern=r"^[a-z_][a-z0-9_]{0,40}$")]

ACCESS_STREAM: Final = "access-tokens"
#: Operator decisions about read models: `system-projections-<node id>`, one stream per
#: node (federated nodes replicate each other's events; one shared stream would collide).
#: Only `coord projections skip` writes here; no HTTP route or role can.
SYSTEM_PROJECTIONS_STREAM: Final = "system-projections"


class Event(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Base of every domain event (config is inherited)."""


class Participant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Someone present at a hearing."""

    name: ShortText
    role: ShortText
    organization: Organization


# --- hearing-<uuid> --------------------------------------------------------------------


class HearingScheduled(Event, frozen=True, kw_only=True):
    """A hearing (dengar pendapat) is planned in a regency or city."""

    region_code: RegionCode
    title: ShortText
    agenda: MediumText
    venue: ShortText
    scheduled_at: AwareDatetime
    convened_by: Organization
    host_organization: Organization


class HearingRescheduled(Event, frozen=True, kw_only=True):
    """The hearing moves to another time and possibly another venue."""

    scheduled_at: AwareDatetime
    venue: ShortText | None = None
    reason: MediumText | None = None


class HearingCancelled(Event, frozen=True, kw_only=True):
    """The hearing will not take place."""

    reason: MediumText


class ParticipantsRecorded(Event, frozen=True, kw_only=True):
    """Attendees are added to the hearing's record."""

    participants: Annotated[list[Participant], Meta(min_length=1, max_length=500)]


class StatementRecorded(Event, frozen=True, kw_only=True):
    """Something said at the hearing, optionally with a verbatim quote."""

    speaker: ShortText
    organization: Organization
    text: LongText
    quote: MediumText | None = None


class HearingHeld(Event, frozen=True, kw_only=True):
    """The hearing took place."""

    held_at: AwareDatetime
    opened_by: ShortText
    summary: LongText


# Items of a hearing's record are named by their place in the hearing's lists as
# GET /v1/hearings/{id} shows them (0-based); removed and retracted items keep their place.
ItemIndex = Annotated[int, Meta(ge=0, le=100_000)]


class HearingDetailsCorrected(Event, frozen=True, kw_only=True):
    """The hearing's title, agenda, venue or host was recorded wrongly; only changed fields."""

    title: ShortText | None = None
    agenda: MediumText | None = None
    venue: ShortText | None = None
    host_organization: Organization | None = None
    reason: MediumText


class ParticipantRemoved(Event, frozen=True, kw_only=True):
    """A participant was recorded by mistake (a misspelled one is removed and recorded again)."""

    participant_index: ItemIndex
    reason: MediumText


class StatementCorrected(Event, frozen=True, kw_only=True):
    """A statement was misattributed or mistyped; only the changed fields are given."""

    statement_index: ItemIndex
    speaker: ShortText | None = None
    organization: Organization | None = None
    text: LongText | None = None
    quote: MediumText | None = None
    reason: MediumText


class StatementRetracted(Event, frozen=True, kw_only=True):
    """A statement should not be on the record (it stays in the history, marked retracted)."""

    statement_index: ItemIndex
    reason: MediumText


class HearingStatusCorrected(Event, frozen=True, kw_only=True):
    """A hearing was wrongly marked held or cancelled (or not marked held when it was).

    To ``held`` needs ``held_at``, ``opened_by`` and ``summary``; to ``scheduled`` or
    ``cancelled`` takes none of them (a correction to ``cancelled`` keeps ``reason``
    as the cancellation reason).
    """

    status: Literal["scheduled", "held", "cancelled"]
    held_at: AwareDatetime | None = None
    opened_by: ShortText | None = None
    summary: LongText | None = None
    reason: MediumText


# --- issue-<uuid> ----------------------------------------------------------------------


class IssueRaised(Event, frozen=True, kw_only=True):
    """An election organizer's problem, raised at a hearing or on its own."""

    region_code: RegionCode
    hearing_id: UUID | None = None
    raised_by: Organization
    category: CategoryCode
    title: ShortText
    description: Annotated[str, Meta(min_length=1, max_length=5_000, pattern=_NON_BLANK)]
    severity: Severity
    raised_at: AwareDatetime | None = None


class IssueCategoryCorrected(Event, frozen=True, kw_only=True):
    """The issue was filed under the wrong category."""

    category: CategoryCode
    reason: MediumText


class IssueCorrected(Event, frozen=True, kw_only=True):
    """The issue's title, description, severity or time was recorded wrongly.

    Only the changed fields are given (at least one); the category has its own event.
    """

    title: ShortText | None = None
    description: Annotated[str, Meta(min_length=1, max_length=5_000, pattern=_NON_BLANK)] | None = (
        None
    )
    severity: Severity | None = None
    raised_at: AwareDatetime | None = None
    reason: MediumText


class IssueEvidenceAdded(Event, frozen=True, kw_only=True):
    """Supporting material for the issue."""

    description: MediumText
    url: Url | None = None
    source: ShortText | None = None


class IssueWithdrawn(Event, frozen=True, kw_only=True):
    """The issue is no longer pursued."""

    reason: MediumText


# --- recommendation-<uuid> -------------------------------------------------------------


class RecommendationDrafted(Event, frozen=True, kw_only=True):
    """A recommendation to the President (or another addressee) is drafted."""

    title: ShortText
    body: LongText
    addressee: ShortText
    issue_ids: IssueIds = msgspec.field(default_factory=list)


class IssuesCited(Event, frozen=True, kw_only=True):
    """More issues support the recommendation."""

    issue_ids: Annotated[list[UUID], Meta(min_length=1, max_length=200)]


class ClusterNamed(Event, frozen=True, kw_only=True):
    """An analyst named the recurring problem of stream ``cluster-<uuid>``.

    The name is the cluster's label in the views from then on.
    """

    name: ShortText


class ClustersMerged(Event, frozen=True, kw_only=True):
    """An analyst merged other recurring problems into the one of this stream."""

    cluster_ids: Annotated[list[UUID], Meta(min_length=1, max_length=50)]


class IssueReassigned(Event, frozen=True, kw_only=True):
    """An analyst moved issues into the recurring problem of this stream.

    A stream id no cluster has yet splits them off into a new recurring problem.
    """

    issue_ids: Annotated[list[UUID], Meta(min_length=1, max_length=200)]


class IssueUncited(Event, frozen=True, kw_only=True):
    """An issue no longer supports the recommendation."""

    issue_id: UUID
    reason: MediumText | None = None


class RecommendationRevised(Event, frozen=True, kw_only=True):
    """Text changes; a None field is left as it was."""

    title: ShortText | None = None
    body: LongText | None = None
    addressee: ShortText | None = None


class RecommendationApproved(Event, frozen=True, kw_only=True):
    """The recommendation is approved for submission."""

    approved_by: ShortText


class RecommendationSubmitted(Event, frozen=True, kw_only=True):
    """The recommendation was sent to its addressee.

    ``response_due_at``: when an answer is due (default: 30 days after ``submitted_at``).
    """

    submitted_to: ShortText
    submitted_at: AwareDatetime
    response_due_at: AwareDatetime | None = None


#: What the addressee's answer says about the recommendation (``no_response`` is never
#: given: a recommendation closed without an answer gets it).
ResponseOutcome = Literal["accepted", "partly_accepted", "rejected"]


class ResponseRecorded(Event, frozen=True, kw_only=True):
    """An answer to a submitted recommendation arrived, with what it decided if it says."""

    responder: ShortText
    text: LongText
    received_at: AwareDatetime
    outcome: ResponseOutcome | None = None


class ProgressReported(Event, frozen=True, kw_only=True):
    """How far the addressee has come in carrying out a submitted recommendation."""

    percent: Annotated[int, Meta(ge=0, le=100)]
    note: MediumText
    evidence_url: Url | None = None
    #: when the progress stood so (effective time); default: when it was recorded
    reported_at: AwareDatetime | None = None


class RecommendationClosed(Event, frozen=True, kw_only=True):
    """The recommendation's life ends, with what came of it."""

    outcome: MediumText


# --- access-tokens ---------------------------------------------------------------------


class TokenIssued(Event, frozen=True, kw_only=True):
    """An API token is granted (the secret itself is never an event)."""

    token_id: UUID
    name: ShortText
    role: TokenRole
    regions: Annotated[list[RegionCode], Meta(max_length=600)] = msgspec.field(default_factory=list)
    created_by: ShortText
    #: when the token stops working by itself (None: until revoked). Part of the event, not
    #: only of the node's table, so every node that folds the stream enforces the same expiry.
    expires_at: AwareDatetime | None = None


class TokenRevoked(Event, frozen=True, kw_only=True):
    """An API token stops working."""

    token_id: UUID
    reason: MediumText | None = None
    revoked_by: ShortText


# --- system-projections-<node id> ------------------------------------------------------


class ProjectionSkipped(Event, frozen=True, kw_only=True):
    """An operator lets one projection pass over one stored event it cannot apply.

    Bound to the event (its id) at that position of this node's log: the runner, rebuild
    and verify of ``projection`` leave exactly that event out.
    """

    projection: ProjectionName
    position: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    event_id: UUID
    event_type: Annotated[str, Meta(min_length=1, max_length=200)]
    # As stored, which may be a spelling today's rules refuse (that is often the reason).
    stream_id: Annotated[str, Meta(min_length=1, max_length=200)]
    reason: MediumText
    skipped_by: ShortText


HearingEvent: TypeAlias = (
    HearingScheduled
    | HearingRescheduled
    | HearingCancelled
    | ParticipantsRecorded
    | StatementRecorded
    | HearingHeld
    | HearingDetailsCorrected
    | ParticipantRemoved
    | StatementCorrected
    | StatementRetracted
    | HearingStatusCorrected
)
IssueEvent: TypeAlias = (
    IssueRaised | IssueCategoryCorrected | IssueEvidenceAdded | IssueWithdrawn | IssueCorrected
)
RecommendationEvent: TypeAlias = (
    RecommendationDrafted
    | IssuesCited
    | IssueUncited
    | RecommendationRevised
    | RecommendationApproved
    | RecommendationSubmitted
    | ResponseRecorded
    | RecommendationClosed
    | ProgressReported
)
AccessEvent: TypeAlias = TokenIssued | TokenRevoked
ClusterEvent: TypeAlias = ClusterNamed | ClustersMerged | IssueReassigned
# Not part of AnyEvent: no domain rule (`decide`) applies to operator decisions.
SystemEvent: TypeAlias = ProjectionSkipped
AnyEvent: TypeAlias = HearingEvent | IssueEvent | RecommendationEvent | AccessEvent | ClusterEvent

_BY_CATEGORY: Final[dict[StreamCategory, tuple[type[Event], ...]]] = {
    "hearing": (
        HearingScheduled,
        HearingRescheduled,
        HearingCancelled,
        ParticipantsRecorded,
        StatementRecorded,
        HearingHeld,
        HearingDetailsCorrected,
        ParticipantRemoved,
        StatementCorrected,
        StatementRetracted,
        HearingStatusCorrected,
    ),
    "issue": (
        IssueRaised,
        IssueCategoryCorrected,
        IssueEvidenceAdded,
        IssueWithdrawn,
        IssueCorrected,
    ),
    "recommendation": (
        RecommendationDrafted,
        IssuesCited,
        IssueUncited,
        RecommendationRevised,
        RecommendationApproved,
        RecommendationSubmitted,
        ResponseRecorded,
        RecommendationClosed,
        ProgressReported,
    ),
    "access": (TokenIssued, TokenRevoked),
    "system": (ProjectionSkipped,),
    "cluster": (ClusterNamed, ClustersMerged, IssueReassigned),
}

#: type name -> struct. Names are stable forever: they are stored beside every event.
EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.__name__: cls for classes in _BY_CATEGORY.values() for cls in classes
}
#: type name -> stream category (the stream id prefix; ``access`` is the ``access-tokens`` stream)
STREAM_CATEGORIES: Final[dict[str, StreamCategory]] = {
    cls.__name__: category for category, classes in _BY_CATEGORY.items() for cls in classes
}
#: type name -> current schema version
SCHEMA_VERSIONS: Final[dict[str, int]] = dict.fromkeys(EVENT_TYPES, 1)
#: the event that must open a stream of each category (the access stream has none)
CREATION_EVENTS: Final[dict[StreamCategory, type[Event] | None]] = {
    "hearing": HearingScheduled,
    "issue": IssueRaised,
    "recommendation": RecommendationDrafted,
    "access": None,
    "system": None,
    # A cluster stream opens with whatever an analyst first decides about the cluster.
    "cluster": None,
}


def type_name(event: Event) -> str:
    """The stored type name of an event instance."""
    name = type(event).__name__
    if name not in EVENT_TYPES:
        raise UnknownEventType(name)
    return name


def stream_category(name: str) -> StreamCategory:
    """The stream category an event type belongs to."""
    try:
        return STREAM_CATEGORIES[name]
    except KeyError:
        raise UnknownEventType(name) from None


def stream_id(category: StreamCategory, entity_id: UUID | None = None) -> str:
    """``hearing-<uuid>`` etc.; the access category has the single stream ``access-tokens``."""
    if category == "access":
        return ACCESS_STREAM
    if entity_id is None:
        raise ValueError(f"a {category} stream id needs a uuid")
    return f"{category}-{entity_id}"


def check_stream(stream: str, name: str) -> None:
    """Refuse (422 ``event.wrong_stream``) an event type appended to another category's stream."""
    category = stream_category(name)
    if category == "access":
        ok = stream == ACCESS_STREAM
    elif category == "system":
        ok = stream.startswith(SYSTEM_PROJECTIONS_STREAM + "-")
    else:
        prefix, _, rest = stream.partition("-")
        ok = prefix == category and is_canonical_uuid(rest)
    if not ok:
        raise InvalidRequest(
            "event.wrong_stream", f"{name} belongs on a {category} stream, not {stream!r}", "$.type"
        )


# --- upcasting -------------------------------------------------------------------------

Upcaster: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]
#: (type name, from version) -> function turning that version's payload into the next one's
UPCASTERS: Final[dict[tuple[str, int], Upcaster]] = {}


class SchemaVersionError(ValueError):
    """A stored event's schema version cannot be brought to the current one."""


def upcaster(name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register ``fn`` in :data:`UPCASTERS` as the step ``from_version -> from_version + 1``."""

    def register(fn: Upcaster) -> Upcaster:
        key = (name, from_version)
        if key in UPCASTERS:
            raise ValueError(f"upcaster for {name} v{from_version} already registered")
        UPCASTERS[key] = fn
        return fn

    return register


def upcast(
    name: str,
    schema_version: int,
    data: dict[str, Any],
    *,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
    versions: Mapping[str, int] = SCHEMA_VERSIONS,
) -> dict[str, Any]:
    """Apply upcasters step by step until ``data`` has the current schema version."""
    try:
        current = versions[name]
    except KeyError:
        raise UnknownEventType(name) from None
    if not 1 <= schema_version <= current:
        # Newer than the code: this build is too old to read the store; never guess.
        raise SchemaVersionError(f"{name} v{schema_version}: this code knows v1..v{current}")
    version = schema_version
    while version < current:
        try:
            step = upcasters[(name, version)]
        except KeyError:
            raise SchemaVersionError(
                f"no upcaster for {name} v{version} -> v{version + 1}"
            ) from None
        data = step(data)
        version += 1
    return data


# --- decoding --------------------------------------------------------------------------


class EventCodec:
    """Decoders for one set of event types, versions and upcasters.

    The module functions use the default codec; tests build their own to exercise
    schema evolution with fake types.
    """

    def __init__(
        self,
        types: Mapping[str, type[Event]] = EVENT_TYPES,
        versions: Mapping[str, int] = SCHEMA_VERSIONS,
        upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
    ) -> None:
        self.types = types
        self.versions = versions
        self.upcasters = upcasters
        # Decoders and type info are built on first use of each type, not at import.
        self._strict: dict[str, msgspec.json.Decoder[Any]] = {}
        self._info: dict[str, msgspec.inspect.Type] = {}

    def _type(self, name: str) -> type[Event]:
        try:
            return self.types[name]
        except KeyError:
            raise UnknownEventType(name) from None

    def decode_new(self, name: str, data_json: bytes) -> Event:
        """Strictly decode an incoming payload: unknown fields and bad values raise
        ``msgspec.ValidationError`` naming the path (``$.participants[2].name``)."""
        decoder = self._strict.get(name)
        if decoder is None:
            decoder = self._strict[name] = msgspec.json.Decoder(self._type(name))
        event: Event = decoder.decode(data_json)
        return event

    def decode_stored(self, name: str, schema_version: int, data_json: bytes) -> Event:
        """Leniently decode a stored payload: upcast it, drop fields this code does not know."""
        cls = self._type(name)
        raw = msgspec.json.decode(data_json)
        if not isinstance(raw, dict):
            raise msgspec.ValidationError(f"Expected `object`, got `{type(raw).__name__}`")
        data = upcast(name, schema_version, raw, upcasters=self.upcasters, versions=self.versions)
        info = self._info.get(name)
        if info is None:
            info = self._info[name] = msgspec.inspect.type_info(cls)
        event: Event = msgspec.convert(_known_fields(data, info), cls)
        return event


def _known_fields(value: Any, info: msgspec.inspect.Type) -> Any:
    """Drop object members unknown to the schema, at every depth.

    The structs forbid unknown fields (strict for clients); stored data written by a newer
    build may carry more, so they are removed before conversion instead.
    """
    if isinstance(info, msgspec.inspect.Metadata):
        return _known_fields(value, info.type)
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        return {k: _known_fields(v, fields[k]) for k, v in value.items() if k in fields}
    if isinstance(info, msgspec.inspect.ListType) and isinstance(value, list):
        return [_known_fields(v, info.item_type) for v in value]
    if isinstance(info, msgspec.inspect.UnionType) and isinstance(value, dict):
        for member in info.types:
            if isinstance(member, msgspec.inspect.StructType):
                return _known_fields(value, member)
    return value


_CODEC: EventCodec | None = None


def default_codec() -> EventCodec:
    """The codec over :data:`EVENT_TYPES`, created on first use."""
    global _CODEC
    if _CODEC is None:
        _CODEC = EventCodec()
    return _CODEC


def decode_new(name: str, data_json: bytes) -> Event:
    """Strictly decode an incoming payload of event type ``name`` (see :class:`EventCodec`)."""
    return default_codec().decode_new(name, data_json)


def decode_stored(name: str, schema_version: int, data_json: bytes) -> Event:
    """Leniently decode and upcast a stored payload (see :class:`EventCodec`)."""
    return default_codec().decode_stored(name, schema_version, data_json)


def encode(event: Event) -> bytes:
    """JSON payload of an event (no type name; it travels in the envelope)."""
    return msgspec.json.encode(event)


def invalid_from_validation(error: msgspec.ValidationError, root: str = "$.data") -> InvalidRequest:
    """Turn msgspec's ``... - at `$.x`` into an InvalidRequest whose field is rooted at ``root``.

    msgspec paths are relative to the payload; domain errors use the envelope's ``$.data``.
    """
    message = str(error)
    detail, sep, path = message.rpartition(" - at `")
    if sep and path.endswith("`"):
        return InvalidRequest("event.invalid", detail, root + path[1:-1])
    return InvalidRequest("event.invalid", message, root)


# --- trusted decoding of stored events ---------------------------------------------------
#
# Every stored payload passed the strict decoder when it was written, and events are
# immutable. Re-checking its bounds and patterns on every read costs about three
# quarters of a decode (regular expressions on every text field), and read models
# decode each event several times. Readers therefore decode current payloads into a
# *trusted* twin of each type: a subclass with the same name and fields but without
# the constraints, so `isinstance` and `match` treat it as the real type. Anything else
# (an older schema version, unknown fields) takes the lenient path, `decode_stored`.
# A twin never compares equal to an instance of the real type (msgspec compares types),
# so the write path, whose rules compare stored values with new ones, keeps the real types.

_trusted_types: dict[type, type] = {}
_trusted_decoders: dict[str, msgspec.json.Decoder[Any]] = {}


def _unconstrained(tp: Any) -> Any:
    """`tp` without `Annotated[..., Meta(...)]` constraints, structs replaced by their twins."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unconstrained(typing.get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return trusted_type(tp)
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, [_unconstrained(a) for a in typing.get_args(tp)])
    if origin in (list, tuple, dict, set, frozenset):
        args = tuple(a if a is Ellipsis else _unconstrained(a) for a in typing.get_args(tp))
        return origin[args] if args else origin
    return tp


def trusted_type(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The unconstrained twin (a subclass of the same name) of a struct type."""
    twin = _trusted_types.get(cls)
    if twin is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: list[Any] = []
        for f in msgspec.structs.fields(cls):
            tp = _unconstrained(hints[f.name])
            if f.default is not msgspec.NODEFAULT:
                fields.append((f.name, tp, f.default))
            elif f.default_factory is not msgspec.NODEFAULT:
                fields.append((f.name, tp, msgspec.field(default_factory=f.default_factory)))
            else:
                fields.append((f.name, tp))
        twin = msgspec.defstruct(
            cls.__name__, fields, bases=(cls,), module=cls.__module__, kw_only=True
        )
        twin.__qualname__ = cls.__qualname__
        _trusted_types[cls] = twin
    return twin


def decode_trusted(name: str, schema_version: int, data: Any) -> Event:
    """Decode a payload read back from the store (validated when it was written).

    Current payloads take the fast trusted decoder; older schema versions and payloads
    with fields this build does not know take the lenient path (`decode_stored`).
    """
    if schema_version == SCHEMA_VERSIONS.get(name):
        decoder = _trusted_decoders.get(name)
        if decoder is None:
            decoder = _trusted_decoders[name] = msgspec.json.Decoder(
                trusted_type(EVENT_TYPES[name])
            )
        try:
            event: Event = decoder.decode(data)
            return event
        except msgspec.ValidationError:
            pass
    return decode_stored(name, schema_version, bytes(data))
