"""`coord projections list|rebuild|verify|skip`: replay read models, let one pass an event."""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import sys
import time
from datetime import UTC, datetime

import msgspec
from aiohttp import web
from tqdm import tqdm

from coord import db
from coord.auth import Principal
from coord.config import Config
from coord.keys import DSN, POOL, PROJECTIONS, STORE, WRITES
from coord.runtime import started_app
from coord.tokens import CLI_ORIGIN
from coord.writes import Proposed
from events.domain.types import ProjectionSkipped
from events.store.records import AppendResult
from projections import skips
from projections.checkpoints import status
from projections.rebuild import rebuild
from projections.registry import all_projections
from projections.replay import Progress
from projections.skips import SkipInfo, SkipRefused
from projections.verify import verify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `projections` command and its subcommands."""
    names = sorted(p.name for p in all_projections())
    cmd = sub.add_parser("projections", help="inspect, rebuild and verify read models")
    psub = cmd.add_subparsers(dest="projections_command", required=True)
    psub.add_parser("list", help="position, lag and state of each projection")
    for verb, text in (
        ("rebuild", "replay the log into fresh tables, then swap them in (no downtime)"),
        ("verify", "replay into scratch tables and report rows that differ from the live view"),
    ):
        p = psub.add_parser(verb, help=text)
        p.add_argument("name", choices=[*names, "all"])
        p.add_argument("--window", type=int, default=5000, help="log positions per transaction")
    skip = psub.add_parser(
        "skip",
        help="let a projection pass over one event it cannot apply (recorded, audited)",
        description="Record a ProjectionSkipped event: the projection's runner, rebuilds and "
        "verify leave out the event at POSITION. Any position the projection has not applied "
        "yet may be skipped (the one it stopped at, or one `coord check` lists).",
    )
    skip.add_argument("name", choices=names)
    skip.add_argument("--position", type=int, required=True, help="log position of the event")
    skip.add_argument("--reason", required=True, help="why (kept in the log for ever)")


class _Bar:
    """A tqdm progress bar fed by the runner's (position, target) callbacks."""

    def __init__(self, label: str) -> None:
        self.bar = tqdm(desc=label, unit="ev", unit_scale=True, file=sys.stderr, leave=True)
        self.started = time.perf_counter()
        self.position = 0

    def __call__(self, position: int, target: int) -> None:
        if self.bar.total != target:
            self.bar.total = target
            self.bar.refresh()
        self.bar.update(position - self.position)
        self.position = position

    def close(self) -> float:
        """Close the bar; return events per second (log positions replayed)."""
        self.bar.close()
        elapsed = time.perf_counter() - self.started
        return self.position / elapsed if elapsed > 0 else 0.0


def operator() -> str:
    """Who runs this command: the OS user, else "cli"."""
    try:
        return getpass.getuser() or "cli"
    except (OSError, KeyError, ImportError):
        return "cli"


async def skip(
    app: web.Application, name: str, position: int, reason: str
) -> tuple[ProjectionSkipped, AppendResult]:
    """Record a skip of ``position`` for projection ``name`` (SkipRefused says why not)."""
    projection = app[PROJECTIONS].projections.get(name)
    if projection is None:
        raise SkipRefused(f"no projection {name!r}")
    writes = app[WRITES]
    user = operator()
    # Stamped like every CLI-written event (tokens): actor, role, request id, node.
    by = Principal(token_id="cli", name=f"{user} (coord command line)", role="admin")
    return await skips.record(
        app[STORE],
        projection,
        position=position,
        reason=reason,
        skipped_by=user,
        node_id=writes.node_id,
        metadata=writes.metadata(
            by,
            CLI_ORIGIN,
            Proposed(type="ProjectionSkipped", data=b"{}"),
            "$",
            datetime.now(UTC).isoformat(),
        ),
    )


def describe(skip: SkipInfo) -> str:
    """One line about a recorded skip, for people."""
    return (
        f"skips position {skip.position} ({skip.event_type} {skip.event_id} on "
        f"{skip.stream_id}), by {skip.skipped_by} on {skip.node_id} at "
        f"{skip.recorded_at.isoformat()}: {skip.reason}"
    )


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with started_app(config) as app:
        service = app[PROJECTIONS]
        if args.projections_command == "list":
            for row in await status(app[POOL], sorted(service.projections)):
                print(msgspec.json.encode(row).decode())
            return 0
        if args.projections_command == "skip":
            event, result = await skip(app, args.name, args.position, args.reason)
            print(
                f"{event.projection} skips position {event.position} ({event.event_type} "
                f"{event.event_id} on {event.stream_id}); recorded at position "
                f"{result.last_position} of {result.stream_id}"
            )
            return 0
        connect = functools.partial(db.connect, app[DSN])
        chosen = sorted(service.projections) if args.name == "all" else [args.name]
        differing = 0
        for name in chosen:
            projection = service.projections[name]
            bar = _Bar(f"{args.projections_command} {name}")
            progress: Progress = bar
            if args.projections_command == "rebuild":
                position = await rebuild(connect, projection, window=args.window, progress=progress)
                rate = bar.close()
                print(f"rebuilt {name} at position {position} ({rate:,.0f} events/s)")
            else:
                position, diffs = await verify(
                    connect, projection, window=args.window, progress=progress
                )
                bar.close()
                (row,) = await status(app[POOL], [name])
                for recorded in row.skips:
                    print(f"{name} {describe(recorded)}")
                for diff in diffs:
                    print(msgspec.json.encode(diff).decode())
                differing += len(diffs)
                print(f"verified {name} at position {position}: {len(diffs)} differing rows")
        return 1 if differing else 0


def run(args: argparse.Namespace, config: Config) -> int:
    """Execute a `projections` subcommand (exit 1 if verify found differences)."""
    try:
        return asyncio.run(_run(args, config))
    except SkipRefused as e:
        print(f"coord projections skip: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"coord projections: {e}", file=sys.stderr)
        return 2
