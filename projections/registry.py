"""The read models coord runs, in one place."""

from __future__ import annotations

from projections.activity import Activity
from projections.base import Projection
from projections.hearings import Hearings
from projections.issue_board import IssueBoard
from projections.recommendations import Recommendations
from projections.search import Search


def all_projections() -> list[Projection]:
    """Every projection, by name order."""
    return [Activity(), Hearings(), IssueBoard(), Recommendations(), Search()]
