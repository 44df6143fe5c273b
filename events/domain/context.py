"""What ``decide`` may know beyond the stream it judges: :class:`DecideContext`.

The write path (and ``coord check``) loads it; every aggregate's ``decide`` takes it. It
sits below both the aggregates and the dispatcher, so neither imports the other to name it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from events.domain.regions import Regions
from events.domain.states import HearingState, IssueState
from events.domain.streams import entity_id_of


class DecideContext(msgspec.Struct, frozen=True, kw_only=True):
    """Facts from other streams that ``decide`` may consult; the handler loads them."""

    regions: Regions
    hearings: Mapping[UUID, HearingState] = msgspec.field(default_factory=dict)
    issues: Mapping[UUID, IssueState] = msgspec.field(default_factory=dict)
    #: the server's clock, for the sanity rules of effective times (None: not checked)
    now: datetime | None = None
    #: the role of the token writing the new events (None: no writer, nothing to check)
    actor_role: str | None = None
    #: the role stamped on each stored event of the stream, by version - 1 (None: unknown)
    recorders: tuple[str | None, ...] = ()

    def recorder(self, version: int) -> str | None:
        """The role that recorded the stream's event ``version``.

        Versions past the stored ones are the new events being decided: the writer's own.
        """
        if 1 <= version <= len(self.recorders):
            return self.recorders[version - 1]
        return self.actor_role

    def written_by(
        self, role: str, recorders: Sequence[str | None], now: datetime
    ) -> DecideContext:
        """This context for a write by ``role`` on a stream whose events ``recorders`` wrote."""
        return msgspec.structs.replace(self, actor_role=role, recorders=tuple(recorders), now=now)

    @classmethod
    def from_streams(cls, regions: Regions, states: Mapping[str, object]) -> DecideContext:
        """Build from ``{stream id: folded state}`` as loaded for :func:`references`.

        A stream that does not exist (state None) is left out, so ``decide`` sees it as missing;
        only hearings and issues are kept (no decision consults another kind).
        """
        hearings: dict[UUID, HearingState] = {}
        issues: dict[UUID, IssueState] = {}
        for sid, state in states.items():
            if isinstance(state, HearingState):
                hearings[entity_id_of(sid)] = state
            elif isinstance(state, IssueState):
                issues[entity_id_of(sid)] = state
        return cls(regions=regions, hearings=hearings, issues=issues)
