"""`coord check`: list the stored events today's rules would refuse, and what to skip.

A database written by an older coord may hold events that today's write path refuses
(issue 12): stream ids in a spelling other than `category-<lowercase uuid>`, sequences
that break the domain rules (appended without `decide`), payloads that no longer
decode. The log is immutable, so they stay; a projection that cannot apply one stops
there. This command reads the whole log in order, a page at a time (never loaded
whole), and reports each such event with its position, stream, type and rule, and the
`coord projections skip` command that lets a stopped projection pass it.

Rules, per event in log order:

* the stream id is canonical (`events.domain.streams.is_canonical_stream_id`), else
  `stream.not_canonical` (every event of such a stream is listed: each can stop a view);
* the payload decodes (`event.undecodable`) and its type belongs on that stream
  (`event.wrong_stream`);
* each canonical stream is folded with `events.domain`: `decide` on the state before
  the event (with the streams it refers to as they stood at that point of the log),
  then `evolve`. The first event `decide` refuses is listed with its rule; the rest of
  that stream is not judged (its state is no longer known).

Memory: one folded state per stream of the log (a few hundred bytes for an issue or a
hearing, one map of every token for `access-tokens`) plus one page of events and the
findings; a log of a million streams needs a few hundred MB. Nothing else grows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence

import msgspec

from coord.config import Config
from coord.keys import POOL, PROJECTIONS, REGIONS, STORE
from coord.runtime import started_app
from events.domain import dispatch as domain
from events.domain.context import DecideContext
from events.domain.dispatch import AnyState
from events.domain.regions import Regions
from events.domain.rules import DomainError
from events.domain.streams import category_of, is_canonical_stream_id
from events.domain.types import AnyEvent, check_stream, decode_stored
from events.store.records import RecordedEvent
from events.store.store import EventStore
from projections.checkpoints import ProjectionStatus, status


class Finding(msgspec.Struct, kw_only=True):
    """One stored event today's rules refuse."""

    position: int
    event_id: str
    stream_id: str
    type: str
    rule: str
    detail: str
    #: projections that read events of this type (each may stop at it)
    projections: list[str]


class Suggestion(msgspec.Struct, kw_only=True):
    """A `coord projections skip` an operator may run for a finding."""

    projection: str
    position: int
    #: the projection is stopped at exactly this event (else it has not reached it yet)
    stopped: bool
    command: str


class Report(msgspec.Struct, kw_only=True):
    """What `coord check --json` prints."""

    scanned: int
    head: int
    streams: int
    findings: list[Finding]
    suggestions: list[Suggestion]


class Checker:
    """Judges the events of a log fed in order (pure: no I/O)."""

    def __init__(self, regions: Regions, readers: Mapping[str, frozenset[str] | None]) -> None:
        """``readers``: projection name -> event types it reads (None: every type)."""
        self._regions = regions
        self._readers = readers
        self._states: dict[str, AnyState] = {}
        self._broken: set[str] = set()
        self._seen: set[str] = set()

    @property
    def streams(self) -> int:
        """Streams seen so far."""
        return len(self._seen)

    def _finding(self, event: RecordedEvent, rule: str, detail: str) -> Finding:
        return Finding(
            position=event.position,
            event_id=str(event.id),
            stream_id=event.stream_id,
            type=event.type,
            rule=rule,
            detail=detail,
            projections=sorted(
                name
                for name, handles in self._readers.items()
                if handles is None or event.type in handles
            ),
        )

    def check(self, event: RecordedEvent) -> Finding | None:
        """The finding for the next event of the log, or None if today's rules accept it."""
        stream = event.stream_id
        self._seen.add(stream)
        if not is_canonical_stream_id(stream):
            return self._finding(
                event, "stream.not_canonical", "stream id is not in its one canonical spelling"
            )
        try:
            decoded = decode_stored(event.type, event.schema_version, bytes(event.data))
        except Exception as e:  # any decoding failure is the finding
            return self._finding(event, "event.undecodable", str(e) or type(e).__name__)
        try:
            check_stream(stream, event.type)
        except DomainError as e:
            return self._finding(event, e.rule, e.detail)
        if category_of(stream) == "system" or stream in self._broken:
            return None  # no domain rules for operator decisions; a broken stream is reported
        new: AnyEvent = decoded  # type: ignore[assignment]
        refs = {ref: self._states.get(ref) for ref in domain.references(new) if ref != stream}
        try:
            domain.decide(
                self._states.get(stream), new, DecideContext.from_streams(self._regions, refs)
            )
            self._states[stream] = domain.evolve(self._states.get(stream), new)
        except DomainError as e:
            self._broken.add(stream)
            return self._finding(event, e.rule, e.detail)
        except Exception as e:  # evolve on a state the rules never allowed
            self._broken.add(stream)
            return self._finding(event, "event.unfoldable", repr(e))
        return None


async def scan(
    store: EventStore, checker: Checker, *, page: int = 1000, up_to: int | None = None
) -> tuple[int, list[Finding]]:
    """Feed the sequenced log to ``checker`` a page at a time; (events read, findings)."""
    findings: list[Finding] = []
    after, scanned = 0, 0
    while True:
        events = await store.read_all(after, page, up_to=up_to)
        for event in events:
            finding = checker.check(event)
            if finding is not None:
                findings.append(finding)
        scanned += len(events)
        if len(events) < page:
            return scanned, findings
        after = events[-1].position


def suggest(findings: Sequence[Finding], statuses: Sequence[ProjectionStatus]) -> list[Suggestion]:
    """The skips that let projections pass the findings they have not applied yet.

    A projection stopped at a finding needs its skip; one that has not reached a finding
    may or may not stop there (a rule-breaking sequence can apply cleanly), so it is
    listed as "if it stops there".
    """
    out: list[Suggestion] = []
    by_name = {s.name: s for s in statuses}
    for finding in findings:
        for name in finding.projections:
            status = by_name.get(name)
            if status is None or finding.position <= status.position:
                continue
            if any(s.position == finding.position for s in status.skips):
                continue
            reason = f"{finding.rule}: {finding.type} on {finding.stream_id}"
            out.append(
                Suggestion(
                    projection=name,
                    position=finding.position,
                    stopped=status.state == "failed" and status.failed_position == finding.position,
                    command=(
                        f"coord projections skip {name} --position {finding.position} "
                        f"--reason {_quote(reason)}"
                    ),
                )
            )
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def render(report: Report) -> str:
    """The report as a table for people."""
    lines = [
        f"coord check: {report.scanned} events in {report.streams} streams read "
        f"(log head {report.head}); {len(report.findings)} refused by today's rules"
    ]
    if report.findings:
        lines.append("")
        header = ("POSITION", "STREAM", "TYPE", "RULE", "DETAIL")
        rows = [
            (str(f.position), f.stream_id, f.type, f.rule, _clip(f.detail, 70))
            for f in report.findings
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
            )
    stopped = [s for s in report.suggestions if s.stopped]
    later = [s for s in report.suggestions if not s.stopped]
    if stopped:
        lines += ["", "Stopped projections: run these to let them pass (recorded and audited):"]
        lines += [f"  {s.command}" for s in stopped]
    if later:
        lines += ["", "Not reached yet; if a projection stops there, run:"]
        lines += [f"  {s.command}" for s in later]
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- the command ---------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `check` command."""
    cmd = sub.add_parser(
        "check",
        help="list stored events today's rules would refuse (exit 1 if any)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    cmd.add_argument("--json", action="store_true", help="print one JSON report")
    cmd.add_argument("--page", type=int, default=1000, help="events read per query")


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with started_app(config) as app:
        store = app[STORE]
        service = app[PROJECTIONS]
        head = await store.head_position()
        checker = Checker(
            app[REGIONS], {name: p.handles for name, p in service.projections.items()}
        )
        scanned, findings = await scan(store, checker, page=max(args.page, 1), up_to=head)
        statuses = await status(app[POOL], sorted(service.projections))
        report = Report(
            scanned=scanned,
            head=head,
            streams=checker.streams,
            findings=findings,
            suggestions=suggest(findings, statuses),
        )
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(render(report))
    return 1 if findings else 0


def run(args: argparse.Namespace, config: Config) -> int:
    """Execute `coord check`: 0 clean, 1 findings, 2 could not check."""
    try:
        return asyncio.run(_run(args, config))
    except (OSError, RuntimeError) as e:
        print(f"coord check: {e}", file=sys.stderr)
        return 2
