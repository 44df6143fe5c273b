"""A projection's ``handles`` is exactly the event types its module matches.

The runner reads only the types in ``handles`` (filtered in SQL), so a type the apply
matches but ``handles`` lacks would silently never apply; one ``handles`` names but no
code matches is read for nothing. Matches are found in the projection's module:
``isinstance(x, A | B)`` / ``isinstance(x, (A, B))`` and ``case A(...)`` patterns.
"""

from __future__ import annotations

import ast
import inspect
import sys

import pytest

from events.domain.types import EVENT_TYPES
from projections.base import Projection
from projections.registry import all_projections


def matched_event_types(source: str) -> set[str]:
    """The event type names used as classes in isinstance checks and class patterns."""
    names: set[str] = set()

    def collect(node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            collect(node.left)
            collect(node.right)
        elif isinstance(node, ast.Tuple):
            for element in node.elts:
                collect(element)

    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            collect(node.args[1])
        elif isinstance(node, ast.MatchClass):
            collect(node.cls)
    return names & set(EVENT_TYPES)


def _projections() -> list[Projection]:
    return [p for p in all_projections() if p.handles is not None]


@pytest.mark.parametrize("projection", _projections(), ids=lambda p: p.name)
def test_handles_is_what_the_apply_matches(projection: Projection) -> None:
    module = sys.modules[type(projection).__module__]
    matched = matched_event_types(inspect.getsource(module))
    assert projection.handles is not None
    assert sorted(matched - projection.handles) == [], "matched but never read: add to handles"
    assert sorted(projection.handles - matched) == [], "read but never matched"


def test_the_finder_sees_isinstance_and_case() -> None:
    source = (
        "def f(e):\n"
        "    if isinstance(e.event, IssueRaised | IssueCorrected):\n"
        "        pass\n"
        "    if isinstance(e, (HearingHeld, types.HearingCancelled)):\n"
        "        pass\n"
        "    match e:\n"
        "        case IssueWithdrawn(reason=r) | IssuesCited():\n"
        "            pass\n"
        "        case NotAnEvent():\n"
        "            pass\n"
    )
    assert matched_event_types(source) == {
        "IssueRaised",
        "IssueCorrected",
        "HearingHeld",
        "HearingCancelled",
        "IssueWithdrawn",
        "IssuesCited",
    }
