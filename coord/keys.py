"""Typed application state: every piece of it is a `web.AppKey` declared here."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from coord.availability import Availability
from coord.config import Config
from coord.durability import Durability
from coord.tokens import TokenService
from coord.writes import WritePath
from events.audit.audit_log import AuditLog
from events.domain.regions import Regions
from events.domain.topology import Node
from events.store.log_reader import LogReader
from events.store.store import EventStore
from projections.search import SearchHints
from projections.service import ProjectionService, ProjectionSettings

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
STORE = web.AppKey("store", EventStore)
DSN = web.AppKey("dsn", str)
WRITES = web.AppKey("writes", WritePath)
TOKEN_SERVICE = web.AppKey("token_service", TokenService)
REGIONS = web.AppKey("regions", Regions)
PROJECTIONS = web.AppKey("projections", ProjectionService)
# Set before start-up to change the projection knobs (tests do).
PROJECTION_SETTINGS = web.AppKey("projection_settings", ProjectionSettings)
AUDIT = web.AppKey("audit", AuditLog)
# Who this node is (federation identity), resolved against the database at start.
NODE = web.AppKey("node", Node)
# One shared reader of the log for this process's followers (projections, tree builder).
LOG_READER = web.AppKey("log_reader", LogReader)
# Whether the database answers, as requests see it (one log line per change).
AVAILABILITY = web.AppKey("availability", Availability)
# The server's durability settings as read at start (shown by /readyz).
DURABILITY = web.AppKey("durability", Durability)
# Which searches need more than search's first walks (projections/search.py), per process.
SEARCH_HINTS = web.AppKey("search_hints", SearchHints)
