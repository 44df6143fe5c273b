"""`coord projections list|rebuild NAME|verify NAME`: replay read models from the log."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time

import msgspec
from tqdm import tqdm

from coord import db
from coord.config import Config
from coord.keys import DSN, POOL, PROJECTIONS
from coord.runtime import started_app
from projections.registry import all_projections
from projections.runner import Progress, rebuild, status, verify


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


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with started_app(config) as app:
        service = app[PROJECTIONS]
        if args.projections_command == "list":
            for row in await status(app[POOL], sorted(service.projections)):
                print(msgspec.json.encode(row).decode())
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
                for diff in diffs:
                    print(msgspec.json.encode(diff).decode())
                differing += len(diffs)
                print(f"verified {name} at position {position}: {len(diffs)} differing rows")
        return 1 if differing else 0


def run(args: argparse.Namespace, config: Config) -> int:
    """Execute a `projections` subcommand (exit 1 if verify found differences)."""
    try:
        return asyncio.run(_run(args, config))
    except RuntimeError as e:
        print(f"coord projections: {e}", file=sys.stderr)
        return 2
