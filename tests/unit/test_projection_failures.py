"""Which projection failures are waited out, which stop the projection, and the skip rules."""

from __future__ import annotations

import asyncpg
import msgspec
import pytest

from events.store.log_reader import LogReadFailed
from projections.failures import classify
from projections.runner import RunnerSettings, backoff
from projections.skips import SkipFacts, SkipRefused, decide


def pg(cls: type[asyncpg.PostgresError], message: str = "x") -> asyncpg.PostgresError:
    """A server error as asyncpg raises it (sqlstate from the class)."""
    return cls(message)


def wrapped(cause: BaseException) -> RuntimeError:
    """`cause` chained under another error, as `raise ... from` does."""
    try:
        raise RuntimeError("wrapper") from cause
    except RuntimeError as e:
        return e


TRANSIENT = [
    pg(asyncpg.exceptions.DiskFullError, "could not extend file: No space left on device"),
    pg(asyncpg.exceptions.ConnectionDoesNotExistError),
    pg(asyncpg.exceptions.ConnectionFailureError),
    pg(asyncpg.exceptions.SerializationError),
    pg(asyncpg.exceptions.DeadlockDetectedError),
    pg(asyncpg.exceptions.LockNotAvailableError, "canceling statement due to lock timeout"),
    pg(asyncpg.exceptions.QueryCanceledError, "canceling statement due to statement timeout"),
    pg(asyncpg.exceptions.AdminShutdownError),
    pg(asyncpg.exceptions.CrashShutdownError),
    pg(asyncpg.exceptions.CannotConnectNowError, "the database system is starting up"),
    pg(asyncpg.exceptions.TooManyConnectionsError),
    pg(asyncpg.exceptions.OutOfMemoryError),
    pg(asyncpg.exceptions.PostgresIOError),
    pg(asyncpg.exceptions.ReadOnlySQLTransactionError),
    asyncpg.InterfaceError("pool is closed"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
    ConnectionResetError(104, "Connection reset by peer"),
    OSError(28, "No space left on device"),
    TimeoutError(),
    LogReadFailed("reading the log failed"),
    wrapped(ConnectionRefusedError(111, "refused")),
]

EVENT = [
    pg(asyncpg.exceptions.InvalidTextRepresentationError, "invalid input syntax for type uuid"),
    pg(asyncpg.exceptions.CardinalityViolationError, "ON CONFLICT DO UPDATE command cannot"),
    pg(asyncpg.exceptions.UniqueViolationError),
    pg(asyncpg.exceptions.NotNullViolationError),
    pg(asyncpg.exceptions.CheckViolationError),
    pg(asyncpg.exceptions.StringDataRightTruncationError),
    pg(asyncpg.exceptions.UndefinedColumnError),  # a bug in the handler's SQL
    asyncpg.exceptions._base.DataError("invalid input for query argument $1 (invalid UUID)"),
    ValueError("badly formed hexadecimal UUID string"),
    KeyError("hearing_id"),
    TypeError("unsupported operand"),
    AttributeError("'NoneType' object has no attribute 'title'"),
    msgspec.ValidationError("Expected `str`, got `int` - at `$.title`"),
    wrapped(ValueError("nested")),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_database_and_connection_faults_are_transient(error: BaseException) -> None:
    """Faults of the database or the connection are retried, never blamed on an event."""
    assert classify(error) == "transient"


@pytest.mark.parametrize("error", EVENT, ids=lambda e: type(e).__name__)
def test_errors_from_applying_an_event_stop_the_projection(error: BaseException) -> None:
    """Decode errors, handler bugs and constraint violations caused by the data are the event's."""
    assert classify(error) == "event"


@pytest.mark.parametrize("error", EVENT, ids=lambda e: type(e).__name__)
def test_any_error_on_a_closed_connection_is_transient(error: BaseException) -> None:
    """A killed backend surfaces in many shapes: a closed connection makes them all transient."""
    assert classify(error, connection_closed=True) == "transient"


def test_backoff_grows_is_bounded_and_jittered() -> None:
    """Waits double from retry_min, never exceed retry_max, and vary between half and all."""
    settings = RunnerSettings(retry_min=0.1, retry_max=10.0)
    assert backoff(1, settings, rand=lambda: 1.0) == pytest.approx(0.1)
    assert backoff(4, settings, rand=lambda: 1.0) == pytest.approx(0.8)
    assert backoff(4, settings, rand=lambda: 0.0) == pytest.approx(0.4)
    assert backoff(1000, settings, rand=lambda: 1.0) == pytest.approx(10.0)
    assert 5.0 <= backoff(50, settings) <= 10.0


FACTS = SkipFacts(
    projection="issue_board",
    applied=10,
    head=20,
    event_type="IssueRaised",
    handles=frozenset({"IssueRaised", "IssueWithdrawn"}),
    skipped=frozenset({15}),
)


@pytest.mark.parametrize(
    ("facts", "position", "match"),
    [
        (FACTS, 10, "already applied position 10"),
        (FACTS, 3, "already applied"),
        (FACTS, 15, "skips position 15 already"),
        (msgspec.structs.replace(FACTS, event_type=None), 21, "no event at position 21"),
        (FACTS, 0, "no event at position 0"),
        (msgspec.structs.replace(FACTS, event_type="TokenIssued"), 12, "does not read"),
    ],
)
def test_skip_refusals(facts: SkipFacts, position: int, match: str) -> None:
    """Applied, already skipped, missing and unread positions cannot be skipped."""
    with pytest.raises(SkipRefused, match=match):
        decide(facts, position)


@pytest.mark.parametrize("position", [11, 16, 20])
def test_any_unapplied_position_may_be_skipped(position: int) -> None:
    """The position it stopped at or any later one it reads (skipping ahead is allowed)."""
    decide(FACTS, position)
    decide(msgspec.structs.replace(FACTS, handles=None, event_type="TokenIssued"), position)
