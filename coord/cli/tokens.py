"""`coord token create|list|revoke`: manage bearer tokens from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime, timedelta

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
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-at",
        type=_aware_datetime,
        help="when it stops working, with an offset: 2027-06-30T17:00:00+07:00 (at most 2 years)",
    )
    expiry.add_argument(
        "--expires-in-days",
        type=_days,
        help="when it stops working, in days from now (at most 731)",
    )
    listing = tsub.add_parser("list", help="list tokens (never their secrets) as a table")
    listing.add_argument("--json", action="store_true", help="one JSON object a line instead")
    revoke = tsub.add_parser("revoke", help="revoke a token by id, effective at once")
    revoke.add_argument("token_id")
    revoke.add_argument("--reason")


def _aware_datetime(text: str) -> datetime:
    """`--expires-at`: an ISO 8601 time with its offset (a bare time would be ambiguous)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give the offset too, e.g. +07:00 for WIB")
    return value


def _days(text: str) -> float:
    """`--expires-in-days`: a positive number of days (the upper bound is the rule's)."""
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not days > 0:  # also refuses nan
        raise argparse.ArgumentTypeError("days must be more than 0")
    if days > 100_000:  # far enough to be refused by the rule (731), short of an overflow
        raise argparse.ArgumentTypeError("days must be at most 731")
    return days


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with started_app(config) as app:
        service = app[TOKEN_SERVICE]
        if args.token_command == "create":
            expires_at: datetime | None = args.expires_at
            if args.expires_in_days is not None:
                expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days)
            issued = await service.issue(
                role=args.role, name=args.name, regions=args.region, expires_at=expires_at
            )
            scope = f" for {', '.join(issued.regions)}" if issued.regions else ""
            until = f", expires {issued.expires_at.isoformat()}" if issued.expires_at else ""
            print(
                f"token {issued.token_id} ({issued.role}{scope}{until}) for {issued.name}; "
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


_COLUMNS = ("ID", "NAME", "ROLE", "REGIONS", "CREATED", "EXPIRES", "LAST USED", "STATUS")


def _minute(value: datetime | None) -> str:
    # UTC, as stored: the terminal's zone is unknown, and one zone keeps columns comparable.
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}" if value is not None else "-"


def token_table(tokens: list[TokenInfo], now: datetime | None = None) -> str:
    """Tokens as an aligned text table (times in UTC); a revoked one says when, by whom, why."""
    now = now or datetime.now(UTC)
    rows: list[list[str]] = [list(_COLUMNS)]
    for t in tokens:
        status = "active"
        if t.revoked_at is not None:
            status = f"revoked {_minute(t.revoked_at)} by {t.revoked_by}"
            if t.revoke_reason:
                status += f": {t.revoke_reason}"
        elif t.expires_at is not None and t.expires_at <= now:
            status = "expired"
        rows.append(
            [
                t.token_id,
                t.name,
                t.role,
                ",".join(t.regions) or "-",
                _minute(t.created_at),
                _minute(t.expires_at),
                _minute(t.last_used_at),
                status,
            ]
        )
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
