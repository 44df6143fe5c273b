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
from coord.tokens import TokenInfo


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
    listing = tsub.add_parser("list", help="list tokens (never their secrets) as a table")
    listing.add_argument("--json", action="store_true", help="one JSON object a line instead")
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
            tokens = await service.list()
            if args.json:
                for info in tokens:
                    print(msgspec.json.encode(info).decode())
            else:
                print(token_table(tokens))
        else:
            await service.revoke(uuid.UUID(args.token_id), reason=args.reason)
            print(f"revoked {args.token_id}")
    return 0


_COLUMNS = ("ID", "NAME", "ROLE", "REGIONS", "CREATED", "STATUS")


def token_table(tokens: list[TokenInfo]) -> str:
    """Tokens as an aligned text table; a revoked one says when, by whom and why."""
    rows: list[list[str]] = [list(_COLUMNS)]
    for t in tokens:
        status = "active"
        if t.revoked_at is not None:
            status = f"revoked {t.revoked_at:%Y-%m-%d %H:%M} by {t.revoked_by}"
            if t.revoke_reason:
                status += f": {t.revoke_reason}"
        created = f"{t.created_at:%Y-%m-%d %H:%M}"
        rows.append([t.token_id, t.name, t.role, ",".join(t.regions) or "-", created, status])
    # Names and reasons are free text: a line break in one must not forge another row.
    rows = [[" ".join(c.split()) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in rows
    )


def run(args: argparse.Namespace, config: Config) -> int:
    """Execute a `token` subcommand."""
    try:
        return asyncio.run(_run(args, config))
    except Exception as e:  # a domain refusal or a bad id: say it plainly
        detail = getattr(e, "detail", None) or str(e)
        print(f"coord token: {detail}", file=sys.stderr)
        return 1
