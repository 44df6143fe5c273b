"""`coord federation add-region | status | conflicts | resume`: set up and run the links."""

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
    res = fsub.add_parser("resume", help="re-enable a link an operator stopped")
    res.add_argument("--dsn", help="the subscriber's PostgreSQL URL (default COORD_DATABASE_URL)")
    res.add_argument("--link", required=True, help="the link (subscription) name")
    con = fsub.add_parser(
        "conflicts", help="received events set aside as conflicts, with both versions (JSON)"
    )
    con.add_argument("--dsn", help="the node's PostgreSQL URL (default COORD_DATABASE_URL)")
    con.add_argument("--all", action="store_true", help="include resolved ones")
    con.add_argument("--resolve", type=int, metavar="ID", help="mark conflict ID resolved")
    con.add_argument("--note", default="", help="how it was resolved (with --resolve)")
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
            asyncio.run(_resume(dsn, args.link))
            print(f"resumed {args.link}")
            return 0
        if args.verb == "conflicts":
            if args.resolve is not None:
                asyncio.run(_resolve(dsn, args.resolve, args.note))
                print(f"conflict {args.resolve} resolved")
                return 0
            found = asyncio.run(_conflicts(dsn, args.all))
            print(msgspec.json.encode(found).decode())
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


async def _resume(dsn: str, link: str) -> None:
    conn = await db.connect(dsn)
    try:
        await federation.resume_link(conn, link)
    finally:
        await conn.close()


async def _conflicts(dsn: str, include_resolved: bool) -> list[federation.Conflict]:
    conn = await db.connect(dsn)
    try:
        return await federation.conflicts(conn, include_resolved=include_resolved)
    finally:
        await conn.close()


async def _resolve(dsn: str, conflict_id: int, note: str) -> None:
    conn = await db.connect(dsn)
    try:
        await federation.resolve_conflict(conn, conflict_id, note)
    finally:
        await conn.close()
