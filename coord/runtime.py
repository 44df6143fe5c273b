"""Run coord's start-up (database, migrations, store, sequencer) without serving HTTP.

CLI commands that write or read (tokens, demo data, projections, export) use the
very same wiring as the server, so they behave identically, including taking
part in sequencing when no server runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from coord.app import create_app
from coord.config import Config


@contextlib.asynccontextmanager
async def started_app(config: Config) -> AsyncIterator[web.Application]:
    """The application with its cleanup contexts entered (and exited afterwards)."""
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()
