"""`coord federation add-region | status`: set up and inspect replication links."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from coord import db, federation
from coord.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `federation` command and its verbs."""
    cmd = sub.add_parser("federation", help="multi-region replication links")
    fsub = cmd.add_subparsers(dest="verb", required=True)
    add = fsub.add_parser(
        "add-region",
        help="link a regional node with the hub (publications, subscriptions, slots); idempotent",
    )
    add.add_argument("--hub-dsn", required=True, help="the hub's PostgreSQL URL")
    add.add_argument("--region-dsn", required=True, help="the regional node's PostgreSQL URL")
    add.add_argument("--name", required=True, help="the regional node's id")
    res = fsub.add_parser(
        "resume", help="re-enable a link stopped by a conflict, once the conflict is resolved"
    )
    res.add_argument("--dsn", help="the subscriber's PostgreSQL URL (default COORD_DATABASE_URL)")
    res.add_argument("--link", required=True, help="the link (subscription) name")
    res.add_argument(
        "--skip-lsn", help="skip the remote transaction finishing at this LSN (see docs/deploy.md)"
    )
    st = fsub.add_parser("status", help="each link: state, lag in bytes and seconds, last event")
    st.add_argument("--dsn", help="the node's PostgreSQL URL (default COORD_DATABASE_URL)")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace, config: Config) -> int:
    """Run one `coord federation` verb; 0 on success, 1 with a message on failure."""
    try:
        if args.verb == "add-region":
            steps = asyncio.run(federation.add_region(args.hub_dsn, args.region_dsn, args.name))
            for step in steps:
                print(f"{step.where}: {step.what} {'created' if step.created else 'already there'}")
            return 0
        dsn = args.dsn or config.database_url
        if not dsn:
            print(
                f"coord federation {args.verb}: give --dsn or COORD_DATABASE_URL", file=sys.stderr
            )
            return 2
        if args.verb == "resume":
            asyncio.run(_resume(dsn, args.link, args.skip_lsn))
            print(f"resumed {args.link}")
            return 0
        report = asyncio.run(_status(dsn))
        if args.json:
            print(msgspec.json.encode(report).decode())
        else:
            print("\n".join(federation.status_lines(report)))
        return 0
    except federation.FederationError as e:
        print(f"coord federation: {e}", file=sys.stderr)
        return 1


async def _status(dsn: str) -> federation.Status:
    conn = await db.connect(dsn)
    try:
        return await federation.status(conn)
    finally:
        await conn.close()


async def _resume(dsn: str, link: str, skip_lsn: str | None) -> None:
    conn = await db.connect(dsn)
    try:
        await federation.resume_link(conn, link, skip_lsn)
    finally:
        await conn.close()
