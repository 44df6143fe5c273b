"""`coord check`'s judge: which stored events today's rules refuse (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from coord.cli.check import Checker, Report, render
from events.domain.regions import load_regions
from events.store.records import RecordedEvent
from tests.api.payloads import issue_raised

READERS: dict[str, frozenset[str] | None] = {
    "issue_board": frozenset({"IssueRaised", "IssueWithdrawn"}),
    "activity": None,
    "hearings": frozenset({"HearingScheduled"}),
}


class Log:
    """Builds RecordedEvents in log order."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}

    def event(self, stream: str, type_: str, data: Any) -> RecordedEvent:
        self.position += 1
        self.versions[stream] = self.versions.get(stream, 0) + 1
        raw = data if isinstance(data, bytes) else msgspec.json.encode(data)
        return RecordedEvent(
            id=uuid.uuid4(),
            stream_id=stream,
            version=self.versions[stream],
            position=self.position,
            type=type_,
            schema_version=1,
            data=msgspec.Raw(raw),
            metadata=msgspec.Raw(b"{}"),
            recorded_at=datetime(2024, 1, 1, tzinfo=UTC),
            region_code="35.71",
        )


def judge(*events: RecordedEvent) -> list[tuple[int, str]]:
    """(position, rule) of each finding."""
    checker = Checker(load_regions(), READERS)
    return [(f.position, f.rule) for e in events if (f := checker.check(e)) is not None]


def test_a_log_the_write_path_would_accept_is_clean() -> None:
    """Issues raised and withdrawn, tokens and skips: no findings."""
    log, iid = Log(), str(uuid.uuid4())
    assert judge(
        log.event(f"issue-{iid}", "IssueRaised", issue_raised(None)),
        log.event(f"issue-{iid}", "IssueWithdrawn", {"reason": "selesai"}),
        log.event("access-tokens", "TokenIssued", {
            "token_id": str(uuid.uuid4()), "name": "n", "role": "admin", "created_by": "cli",
        }),
        log.event("system-projections-local", "ProjectionSkipped", {
            "projection": "issue_board", "position": 1, "event_id": str(uuid.uuid4()),
            "event_type": "IssueRaised", "stream_id": "issue-x", "reason": "r", "skipped_by": "o",
        }),
    ) == []  # fmt: skip


def test_every_alias_event_is_listed_with_the_projections_that_read_it() -> None:
    """Each event of a non-canonical stream is a finding (each can stop a view)."""
    log, iid = Log(), str(uuid.uuid4())
    checker = Checker(load_regions(), READERS)
    first = checker.check(log.event(f"issue-urn:uuid:{iid}", "IssueRaised", issue_raised(None)))
    second = checker.check(log.event(f"issue-{iid.upper()}", "IssueWithdrawn", {"reason": "x"}))
    assert first is not None and second is not None
    assert (first.rule, first.projections) == ("stream.not_canonical", ["activity", "issue_board"])
    assert (second.position, second.rule) == (2, "stream.not_canonical")


def test_only_the_first_rule_breaking_event_of_a_stream_is_listed() -> None:
    """A stale-version race stored `IssueRaised, IssueEvidenceAdded, IssueRaised`: the last."""
    log, iid = Log(), str(uuid.uuid4())
    stream = f"issue-{iid}"
    findings = judge(
        log.event(stream, "IssueRaised", issue_raised(None)),
        log.event(stream, "IssueEvidenceAdded", {"description": "Notulen rapat"}),
        log.event(stream, "IssueRaised", issue_raised(None)),
        log.event(stream, "IssueRaised", issue_raised(None)),  # the stream's state is unknown now
    )
    assert len(findings) == 1 and findings[0][0] == 3 and findings[0][1].startswith("issue.")


def test_undecodable_and_misplaced_events_are_listed() -> None:
    """A payload that no longer decodes, and a type on another category's stream."""
    log = Log()
    assert judge(
        log.event(f"issue-{uuid.uuid4()}", "IssueRaised", b'{"title": 5}'),
        log.event(f"hearing-{uuid.uuid4()}", "IssueRaised", issue_raised(None)),
        log.event(f"issue-{uuid.uuid4()}", "NoSuchEvent", {}),
    ) == [(1, "event.undecodable"), (2, "event.wrong_stream"), (3, "event.undecodable")]


def test_a_reference_to_a_missing_hearing_is_refused_as_decide_would() -> None:
    """References are judged against the streams as they stood at that point of the log."""
    log = Log()
    (finding,) = judge(
        log.event(f"issue-{uuid.uuid4()}", "IssueRaised", issue_raised(str(uuid.uuid4())))
    )
    assert finding[0] == 1


def test_render_tells_which_skip_to_run() -> None:
    """The table lists the finding and the command for a stopped projection."""
    log = Log()
    checker = Checker(load_regions(), READERS)
    finding = checker.check(log.event("issue-urn:uuid:x", "IssueRaised", issue_raised(None)))
    assert finding is not None
    from coord.cli.check import Suggestion

    text = render(
        Report(
            scanned=1, head=1, streams=1, findings=[finding],
            suggestions=[Suggestion(projection="issue_board", position=1, stopped=True,
                                    command="coord projections skip issue_board --position 1 "
                                    "--reason 'x'")],
        )
    )  # fmt: skip
    assert "stream.not_canonical" in text and "issue-urn:uuid:x" in text
    assert "coord projections skip issue_board --position 1" in text
