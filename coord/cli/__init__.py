"""The `coord` command: parse arguments, configure logging, run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from coord import server, supervisor
from coord.app import create_app
from coord.audit import SigningKeyError
from coord.cli import audit as audit_cli
from coord.cli import check
from coord.cli import federation as federation_cli
from coord.cli import projections as projections_cli
from coord.cli import tokens as token_cli
from coord.config import Config, parse_regions
from coord.durability import UnsafeDurability
from coord.federation import FederationError
from coord.logs import configure_logging
from coord.runtime import tune_gc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coord", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="bind address (COORD_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (COORD_PORT, default 8080)")
    serve.add_argument(
        "--database-url",
        help="PostgreSQL URL (COORD_DATABASE_URL); "
        "without it an embedded PostgreSQL runs under COORD_HOME/pgdata",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="load demo data once and print demo tokens",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=0,
        help="0 (default): one process does everything; N: N HTTP processes sharing the "
        "port plus one background process for projections and the tree builder",
    )
    serve.add_argument("--node-id", help="this node's id (COORD_NODE_ID; default: as stored)")
    serve.add_argument(
        "--mode",
        choices=["standalone", "regional", "hub"],
        help="federation role (COORD_MODE; default: as stored, else standalone)",
    )
    serve.add_argument(
        "--regions",
        help="regions a regional node serves, e.g. 35 or 35.71,35.72 (COORD_REGIONS)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--no-background", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("background", help="run projections and the tree builder without HTTP")
    token_cli.register(sub)
    audit_cli.register(sub)
    projections_cli.register(sub)
    check.register(sub)
    federation_cli.register(sub)
    sub.add_parser("demo", help="load the demo data set (once) and print the demo tokens")
    return parser


def _serve(config: Config, *, reuse_port: bool = False) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # serve() handles SIGINT/SIGTERM: stop accepting, finish in-flight requests, then
    # run cleanup contexts (pool, background tasks, embedded PostgreSQL). It answers
    # unparseable requests itself, without echoing or logging their headers.
    asyncio.run(server.serve(create_app(config), config, reuse_port=reuse_port))
    return 0


async def _demo(config: Config) -> int:
    from coord.runtime import started_app

    async with started_app(config):
        pass  # demo_ctx loads the data and prints the tokens
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `coord` console script."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (UnsafeDurability, SigningKeyError, FederationError) as e:
        # Not a crash: say why in one line, and exit so a supervisor does not retry.
        print(f"coord: {e}", file=sys.stderr)
        return supervisor.EX_CONFIG


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        config = Config.from_env(demo=True)
        configure_logging(config.log_format, level=logging.WARNING)
        return asyncio.run(_demo(config))
    if args.command in audit_cli.COMMANDS:
        return audit_cli.run(args)
    if args.command == "token":
        config = Config.from_env()
        configure_logging(config.log_format, level=logging.WARNING)
        return token_cli.run(args, config)
    if args.command == "federation":
        config = Config.from_env()
        configure_logging(config.log_format, level=logging.WARNING)
        return federation_cli.run(args, config)
    if args.command == "projections":
        # No projection runners or tree builder in the command's own process: a rebuild would
        # compete with them (an upgrade's rebuild of the same projection), and a `list` has
        # no business catching anything up.
        config = Config.from_env(background=False)
        configure_logging(config.log_format, level=logging.WARNING)
        return projections_cli.run(args, config)
    if args.command == "check":
        config = Config.from_env()
        configure_logging(config.log_format, level=logging.WARNING)
        return check.run(args, config)
    if args.command in ("serve", "background"):
        config = Config.from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            database_url=getattr(args, "database_url", None),
            demo=getattr(args, "demo", None),
            background=False if getattr(args, "no_background", False) else None,
            node_id=getattr(args, "node_id", None),
            mode=getattr(args, "mode", None),
            regions=parse_regions(args.regions) if getattr(args, "regions", None) else None,
        )
        configure_logging(config.log_format, level=logging.getLevelName(config.log_level.upper()))
        tune_gc()
        supervisor.die_with_supervisor()
        if args.command == "background":
            return supervisor.run_background(config)
        if args.workers > 0:
            return supervisor.serve_many(config, args.workers)
        return _serve(config, reuse_port=args.reuse_port)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
