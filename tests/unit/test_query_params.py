"""`parse_query`: the view's declared Struct is its parser, as strict as the hand parsers were."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from coord.http import views
from coord.http.params import parse_query
from coord.problems import Problem


def _parse(struct: Any, query: str) -> Any:
    return parse_query(make_mocked_request("GET", f"/x?{query}"), struct)


def test_defaults_lists_and_free_strings() -> None:
    q = _parse(
        views.IssueBoardQuery,
        "category=logistics,personnel&category=budget_honorarium&raised_by=a,,b"
        "&cursor=&from=&limit=7&include_withdrawn=true&unknown=1",
    )
    assert q.category == ["logistics", "personnel", "budget_honorarium"]
    assert q.raised_by == ["a", "b"]  # a free list drops empty items
    assert q.cursor is None and q.from_ is None  # a free string: empty means not given
    assert (q.limit, q.sort, q.severity_min, q.format) == (7, "recent", 1, None)
    assert _parse(views.IssueSummaryQuery, "include_withdrawn=true").include_withdrawn is True
    assert _parse(views.IssueBoardQuery, "raised_by=,").raised_by is None


@pytest.mark.parametrize(
    ("struct", "query", "field"),
    [
        # Spellings msgspec's lax mode would take, refused as the hand parsers did.
        (views.IssueBoardQuery, "limit=1e3", "query.limit"),
        (views.IssueBoardQuery, "limit=5.0", "query.limit"),
        (views.IssueBoardQuery, "limit=%EF%BC%95", "query.limit"),  # full-width 5
        (views.IssueBoardQuery, "limit=null", "query.limit"),
        (views.IssueBoardQuery, "sort=null", "query.sort"),
        (views.IssueBoardQuery, "format=null", "query.format"),
        (views.IssueSummaryQuery, "include_withdrawn=1", "query.include_withdrawn"),
        (views.IssueSummaryQuery, "include_withdrawn=", "query.include_withdrawn"),
        (views.RecurringQuery, "similarity=x", "query.similarity"),
        (views.RecurringQuery, "similarity=nan", "query.similarity"),
        (views.RecurringQuery, f"min_regions={10**30}", "query.min_regions"),
        # Bounds, enums, patterns: the declaration's.
        (views.IssueBoardQuery, "limit=501", "query.limit"),
        (views.IssueBoardQuery, "severity_max=0", "query.severity_max"),
        (views.IssueBoardQuery, "category=logistics,", "query.category"),
        (views.IssueBoardQuery, "hearing=", "query.hearing"),
        (views.HearingsQuery, "region=35.7", "query.region"),
        (views.ActivityQuery, "actor=a&actor=b", "query.actor"),
        (views.IssueBoardQuery, "min_position=-1", "query.min_position"),
        (views.SearchQuery, "", "query.q"),
        (views.SearchQuery, "q=", "query.q"),
        (views.SearchQuery, "q=x&kind=issue,", "query.kind"),
    ],
)
def test_refusals_name_the_parameter(struct: Any, query: str, field: str) -> None:
    with pytest.raises(Problem) as caught:
        _parse(struct, query)
    assert caught.value.status == 422
    assert caught.value.extra["field"] == field
