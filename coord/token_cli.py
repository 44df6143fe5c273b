"""`coord token create|list|revoke`: manage bearer tokens from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

import msgspec

from coord.auth import ROLES
from coord.config import Config
from coord.keys import TOKEN_SERVICE
from coord.runtime import started_app


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `token` command and its subcommands."""
    token = sub.add_parser("token", help="manage bearer tokens")
    tsub = token.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="issue a token; prints it alone on the last line")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--region",
        action="append",
        default=[],
        help="region code (repeatable); regional tokens need at least one",
    )
    create.add_argument("--name", required=True, help='who holds it, e.g. "KPU Kota Kediri"')
    tsub.add_parser("list", help="list tokens (never their secrets)")
    revoke = tsub.add_parser("revoke", help="revoke a token by id, effective at once")
    revoke.add_argument("token_id")
    revoke.add_argument("--reason")


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with started_app(config) as app:
        service = app[TOKEN_SERVICE]
        if args.token_command == "create":
            issued = await service.issue(role=args.role, name=args.name, regions=args.region)
            scope = f" for {', '.join(issued.regions)}" if issued.regions else ""
            print(
                f"token {issued.token_id} ({issued.role}{scope}) for {issued.name}; "
                "shown once, store it now:"
            )
            print(issued.token)
        elif args.token_command == "list":
            for info in await service.list():
                print(msgspec.json.encode(info).decode())
        else:
            await service.revoke(uuid.UUID(args.token_id), reason=args.reason)
            print(f"revoked {args.token_id}")
    return 0


def run(args: argparse.Namespace, config: Config) -> int:
    """Execute a `token` subcommand."""
    try:
        return asyncio.run(_run(args, config))
    except Exception as e:  # a domain refusal or a bad id: say it plainly
        detail = getattr(e, "detail", None) or str(e)
        print(f"coord token: {detail}", file=sys.stderr)
        return 1
