"""Corrections: who may correct a record, and the history a corrected record keeps.

A record is corrected by the kind of office that recorded it: a regional office's record
by a regional token (the write path already confines it to its own regions), a national
record (written with a national token) by national staff. The role that wrote each event
of a stream comes from the server-stamped metadata; the write path hands it to ``decide``
in :class:`~events.domain.context.DecideContext` (``recorders``), so the rule stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from events.domain.rules import InvalidRequest, NotPermitted, RuleViolation, field_path
from events.domain.states import Change

if TYPE_CHECKING:
    from events.domain.context import DecideContext


def changes(current: Mapping[str, Any], proposed: Mapping[str, Any]) -> dict[str, Change]:
    """The fields of ``proposed`` (None: not given) with their old and new values."""
    return {
        name: Change(before=current[name], to=value)
        for name, value in proposed.items()
        if value is not None
    }


def check_changes(current: Mapping[str, Any], proposed: Mapping[str, Any]) -> None:
    """A correction gives at least one field, and every field it gives changes the value."""
    given = {name: value for name, value in proposed.items() if value is not None}
    if not given:
        raise InvalidRequest(
            "correction.empty",
            f"name a field to correct: one of {', '.join(proposed)}",
            field_path(),
        )
    for name, value in given.items():
        if value == current[name]:
            raise RuleViolation(
                "correction.unchanged", f"{name} is already {_show(value)}: nothing to correct"
            )


def check_corrector(ctx: DecideContext, recorded_in: int, what: str) -> None:
    """Refuse (403 ``correction.not_recorder``) a correction by another kind of office.

    ``recorded_in`` is the stream version of the event that recorded the item. Without a
    writer (pure callers) or without a stamped role (old events) there is nothing to check.
    """
    if ctx.actor_role is None:
        return
    recorder = ctx.recorder(recorded_in)
    if recorder is None or recorder == ctx.actor_role:
        return
    raise NotPermitted(
        "correction.not_recorder",
        f"{what} was recorded with a {recorder} token; only a {recorder} token corrects it, "
        f"not a {ctx.actor_role} one",
        field_path(),
    )


def _show(value: Any) -> str:
    if isinstance(value, msgspec.Struct):
        return repr(msgspec.to_builtins(value))
    return repr(value if not hasattr(value, "isoformat") else value.isoformat())
