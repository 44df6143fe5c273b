"""Which database errors are "not now" (503 + Retry-After) rather than a fault (500)."""

from __future__ import annotations

from asyncpg import exceptions as pg

from coord.availability import NOT_AN_OUTAGE, unavailable_reason
from coord.middlewares import unavailable


def test_a_read_model_of_an_older_version_is_503_while_it_is_rebuilt_not_an_outage() -> None:
    """A view reading a column its old tables lack (the runner is rebuilding them for this
    version) answers 503 with Retry-After, and does not mark the database down."""
    for error in (pg.UndefinedColumnError("column x does not exist"), pg.UndefinedTableError()):
        reason = unavailable_reason(error)
        assert reason == "upgrading"
        assert reason in NOT_AN_OUTAGE
        problem = unavailable(reason)
        assert problem.status == 503
        assert problem.headers is not None and "Retry-After" in problem.headers
        assert "rebuilt" in problem.detail


def test_a_syntax_error_stays_a_fault() -> None:
    """A bug in a query is not "retry later": it must surface as the 500 it is."""
    assert unavailable_reason(pg.PostgresSyntaxError()) is None


def test_the_upgrading_answer_reads_in_indonesian() -> None:
    """With `Accept-Language: id` the 503 of an upgrading view says so in Indonesian."""
    from coord.problem_language import in_indonesian

    problem = in_indonesian(unavailable("upgrading"))
    assert "dibangun ulang" in problem.detail and "rebuilt" not in problem.detail
