"""Multi-region federation over PostgreSQL logical replication (issue 7).

coord builds no replication protocol of its own. Each node is coord plus its own
PostgreSQL; nodes exchange *events* (never positions) with publications and
subscriptions:

* a regional node publishes the events homed on it (`coord_region_events`: a row
  filter on `node_id`, and a column list without the node-local `seq`), and the
  hub subscribes to it (`coord_<region>_to_<hub>`);
* the hub publishes national events (`coord_national_events`) plus the token
  table and the federation directory (`coord_national_tables`), and each regional
  node subscribes (`coord_<hub>_to_<region>`).

Every subscription uses `origin = none`, so a row a node received is never sent
on (no loops). A broken link retries by itself (PostgreSQL's apply worker); a
*conflict* (an event id already present) would retry forever, so coord stops that
link loudly (`stop_conflicting_links`) while the publisher's slot keeps the WAL
until an operator resolves it: nothing is skipped. Applied rows get
positions from the receiving node's own sequencer (the REPLICA trigger in
events/sql/0003_federation.sql), so each node has its own dense log, projections
and Merkle tree.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec
import structlog

from coord import db
from coord.problems import Problem
from events.topology import MODES, Mode, Node, home_of

log = structlog.get_logger("coord.federation")

NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")

# What a hub takes from a region and a region from the hub: the event as written.
# `seq` (the local insertion number) is left out; the receiver assigns its own.
EVENT_COLUMNS = (
    "event_id, stream_id, version, type, schema_version, data, metadata, "
    "region_code, node_id, recorded_at"
)
REGION_PUBLICATION = "coord_region_events"
NATIONAL_EVENTS = "coord_national_events"
NATIONAL_TABLES = "coord_national_tables"


class FederationError(Exception):
    """A federation set-up or identity problem, said plainly for an operator."""


def link_name(source: str, target: str) -> str:
    """The subscription (and replication slot) carrying events from `source` to `target`."""
    return f"coord_{source}_to_{target}"


def _literal(text: str) -> str:
    # DDL takes no parameters; every value quoted here is validated first.
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise FederationError(f"not a valid name: {name!r}")
    return name


# -- identity -------------------------------------------------------------


def _node(row: asyncpg.Record) -> Node:
    return Node(node_id=row["node_id"], mode=row["mode"], regions=tuple(row["regions"]))


async def ensure_identity(
    conn: asyncpg.Connection,
    *,
    node_id: str | None,
    mode: Mode | None,
    regions: Sequence[str] | None,
) -> Node:
    """Record who this database is and return it; settings left None keep the stored ones.

    The database remembers its identity, so a CLI command run without flags (such
    as `coord token create` on the hub) acts as that node, and events it writes
    get the right home. Renaming a node that already has events homed under its
    old name is refused: they would stop being published.
    """
    stored = await stored_identity(conn)
    node = Node(
        node_id=node_id or (stored.node_id if stored else "local"),
        mode=mode or (stored.mode if stored else "standalone"),
        regions=tuple(regions) if regions is not None else (stored.regions if stored else ()),
    )
    if not NODE_ID.match(node.node_id):
        raise FederationError(
            f"node id {node.node_id!r}: use 1-41 lowercase letters, digits or _ "
            "(it names replication slots)"
        )
    if node.mode not in MODES:
        raise FederationError(f"mode {node.mode!r}: use one of {', '.join(MODES)}")
    if node.mode == "regional" and not node.regions:
        raise FederationError("a regional node needs the regions it serves (--regions 35,...)")
    if node == stored:
        return node
    async with conn.transaction():
        await conn.execute("LOCK TABLE coord_node IN EXCLUSIVE MODE")
        if stored is not None and stored.node_id != node.node_id:
            homed = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM events WHERE node_id = $1)", stored.node_id
            )
            if homed:
                raise FederationError(
                    f"this database is node {stored.node_id!r} and holds events homed there; "
                    f"it cannot become {node.node_id!r}"
                )
        await conn.execute(
            "INSERT INTO coord_node (node_id, mode, regions) VALUES ($1, $2, $3) "
            "ON CONFLICT (singleton) DO UPDATE SET node_id = EXCLUDED.node_id, "
            "mode = EXCLUDED.mode, regions = EXCLUDED.regions, updated_at = now()",
            node.node_id,
            node.mode,
            list(node.regions),
        )
        await conn.execute(
            f"ALTER TABLE events ALTER COLUMN node_id SET DEFAULT {_literal(node.node_id)}"
        )
    log.info("federation.identity", node_id=node.node_id, mode=node.mode, regions=node.regions)
    return node


async def stored_identity(conn: asyncpg.Connection | asyncpg.Pool) -> Node | None:
    """The identity recorded in this database, if a node has started on it."""
    row = await conn.fetchrow("SELECT node_id, mode, regions FROM coord_node")
    return _node(row) if row is not None else None


async def directory(conn: asyncpg.Connection | asyncpg.Pool) -> list[Node]:
    """The federation's nodes as this node knows them (replicated from the hub)."""
    rows = await conn.fetch("SELECT node_id, mode, regions FROM federation_nodes ORDER BY node_id")
    return [_node(r) for r in rows]


async def misdirected(
    pool: asyncpg.Pool, here: Node, category: str, region_code: str | None
) -> Problem:
    """The 421 for a write homed elsewhere, naming the home node when the directory knows it."""
    home = home_of(category, region_code, await directory(pool))
    what = f"{category} streams" + (f" of region {region_code}" if region_code else "")
    where = f"node {home.node_id!r}" if home else "another node (not in this node's directory)"
    return Problem(
        421,
        "misdirected-write",
        "Write belongs to another node",
        f"{here.mode} node {here.node_id!r} does not accept writes for {what}; "
        f"their home is {where}",
        home_node=home.node_id if home else None,
        node_id=here.node_id,
    )


# -- set-up ---------------------------------------------------------------


class SetupStep(msgspec.Struct, frozen=True):
    """One idempotent step of `add-region`: what, where, and whether it was done now."""

    where: str
    what: str
    created: bool


async def _check_logical(conn: asyncpg.Connection, name: str) -> None:
    level = await conn.fetchval("SHOW wal_level")
    if level != "logical":
        raise FederationError(
            f"{name}: wal_level is {level!r}; logical replication needs wal_level = logical "
            "(postgres -c wal_level=logical, then restart)"
        )


async def _create_publication(
    conn: asyncpg.Connection, name: str, definition: str, where: str
) -> SetupStep:
    exists = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", name
    )
    if not exists:
        await conn.execute(f"CREATE PUBLICATION {_ident(name)} {definition}")
    return SetupStep(where, f"publication {name}", not exists)


async def _create_subscription(
    conn: asyncpg.Connection, name: str, dsn: str, publications: Sequence[str], where: str
) -> SetupStep:
    exists = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1)", name
    )
    if exists:
        # Keep its state: re-enabling a link stopped by a conflict would hide the conflict.
        await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} CONNECTION {_literal(dsn)}")
    else:
        pubs = ", ".join(_ident(p) for p in publications)
        await conn.execute(
            f"CREATE SUBSCRIPTION {_ident(name)} CONNECTION {_literal(dsn)} "
            f"PUBLICATION {pubs} WITH (origin = none, disable_on_error = false, "
            "streaming = off, copy_data = true)"
        )
    return SetupStep(where, f"subscription {name}", not exists)


async def add_region(hub_dsn: str, region_dsn: str, name: str) -> list[SetupStep]:
    """Link the regional node at `region_dsn` (node id `name`) with the hub. Idempotent.

    Both nodes must have started once (their schema and identity exist) and run
    with wal_level = logical. `region_dsn` must be reachable from the hub's
    PostgreSQL and `hub_dsn` from the region's: each side's server connects out.
    """
    hub = await db.connect(hub_dsn)
    try:
        region = await db.connect(region_dsn)
        try:
            return await _add_region(hub, region, hub_dsn, region_dsn, name)
        finally:
            await region.close()
    finally:
        await hub.close()


async def _add_region(
    hub: asyncpg.Connection,
    region: asyncpg.Connection,
    hub_dsn: str,
    region_dsn: str,
    name: str,
) -> list[SetupStep]:
    await _check_logical(hub, "hub")
    await _check_logical(region, f"region {name}")
    for conn in (hub, region):
        await db.migrate(conn)
    hub_node = await stored_identity(hub)
    region_node = await stored_identity(region)
    if hub_node is None or hub_node.mode != "hub":
        raise FederationError("the hub database is not a hub: start it once with --mode hub")
    if region_node is None or region_node.mode != "regional":
        raise FederationError(
            f"the region database is not a regional node: start it once with "
            f"--mode regional --node-id {name} --regions ..."
        )
    if region_node.node_id != name:
        raise FederationError(f"the region database is node {region_node.node_id!r}, not {name!r}")
    steps: list[SetupStep] = []
    async with hub.transaction():
        for node in (hub_node, region_node):
            await hub.execute(
                "INSERT INTO federation_nodes (node_id, mode, regions, link)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE SET mode = EXCLUDED.mode,"
                " regions = EXCLUDED.regions, link = EXCLUDED.link",
                node.node_id,
                node.mode,
                list(node.regions),
                None if node is hub_node else link_name(name, hub_node.node_id),
            )
    steps.append(SetupStep("hub", f"directory entries {hub_node.node_id}, {name}", True))
    steps.append(
        await _create_publication(
            region,
            REGION_PUBLICATION,
            f"FOR TABLE events ({EVENT_COLUMNS}) WHERE (node_id = {_literal(name)}) "
            "WITH (publish = 'insert')",
            f"region {name}",
        )
    )
    steps.append(
        await _create_publication(
            hub,
            NATIONAL_EVENTS,
            f"FOR TABLE events ({EVENT_COLUMNS}) WHERE (node_id = {_literal(hub_node.node_id)}) "
            "WITH (publish = 'insert')",
            "hub",
        )
    )
    steps.append(
        await _create_publication(
            hub, NATIONAL_TABLES, "FOR TABLE access_tokens, federation_nodes", "hub"
        )
    )
    steps.append(
        await _create_subscription(
            hub, link_name(name, hub_node.node_id), region_dsn, [REGION_PUBLICATION], "hub"
        )
    )
    steps.append(
        await _create_subscription(
            region,
            link_name(hub_node.node_id, name),
            hub_dsn,
            [NATIONAL_EVENTS, NATIONAL_TABLES],
            f"region {name}",
        )
    )
    for step in steps:
        log.info("federation.setup", where=step.where, what=step.what, created=step.created)
    return steps


# -- conflicts ------------------------------------------------------------

# Conflicts of a subscription's stats row `st`: PostgreSQL 18 counts them by kind
# (confl_insert_exists, ...); older servers have no such columns (NULL).
_CONFLICTS_OF_ST = (
    "(SELECT sum(c.value::bigint) FROM jsonb_each_text(to_jsonb(st)) c "
    "WHERE c.key LIKE 'confl\\_%')"
)
# coord's subscriptions in this database, as `s`.
_COORD_SUBSCRIPTIONS = (
    "s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND s.subname LIKE 'coord\\_%'"
)

_CONFLICTING = f"""
SELECT s.subname FROM pg_subscription s
JOIN pg_stat_subscription_stats st ON st.subid = s.oid
WHERE s.subenabled AND {_COORD_SUBSCRIPTIONS} AND {_CONFLICTS_OF_ST} > 0
"""


async def stop_conflicting_links(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """Disable every incoming link that hit a conflict; return their names.

    A subscription retries a failing transaction forever, which is right for a
    broken network but wrong for a conflict (an event id or stream version already
    here): that will never apply by itself. Stopping the link makes it loud
    (status `failed`, an error log) while the publisher's slot keeps every event
    for when an operator has resolved it; nothing is skipped. Network errors are
    not conflicts and leave the link retrying.
    """
    names: list[str] = [r["subname"] for r in await conn.fetch(_CONFLICTING)]
    for name in names:
        await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} DISABLE")
        log.error(
            "federation.link_stopped",
            link=name,
            reason="replication conflict: a received row collides with one already here",
            resolve="see docs/deploy.md (conflicts); the publisher keeps the events",
        )
    return names


async def resume_link(conn: asyncpg.Connection, name: str, skip_lsn: str | None = None) -> None:
    """Re-enable a stopped incoming link after an operator resolved its conflict.

    `skip_lsn` skips exactly the remote transaction finishing at that LSN (only
    when this node already holds all of it). The conflict counters are reset, or
    `watch_conflicts` would stop the link again at once.
    """
    oid = await conn.fetchval("SELECT oid FROM pg_subscription WHERE subname = $1", name)
    if oid is None:
        raise FederationError(f"no link {name!r} on this node (coord federation status lists them)")
    if skip_lsn is not None:
        if not re.fullmatch(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}", skip_lsn):
            raise FederationError(f"not an LSN: {skip_lsn!r} (like 0/1A2B3C4)")
        await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} SKIP (lsn = {_literal(skip_lsn)})")
    await conn.execute("SELECT pg_stat_reset_subscription_stats($1)", oid)
    await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} ENABLE")
    log.warning("federation.link_resumed", link=name, skip_lsn=skip_lsn)


async def watch_conflicts(pool: asyncpg.Pool, interval: float = 1.0) -> None:
    """Background task: stop conflicting links as soon as they appear."""
    while True:
        try:
            await stop_conflicting_links(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("federation.watch_failed", error=repr(e))
        await asyncio.sleep(interval)


# -- status ---------------------------------------------------------------

LinkState = Literal["streaming", "connecting", "stopped", "failed", "idle"]


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """One replication link as this node sees it."""

    name: str
    # in: this node subscribes (receives); out: a peer's subscription reads this node's slot.
    direction: Literal["in", "out"]
    peer: str | None
    state: LinkState
    connected: bool
    # WAL the receiver has not confirmed yet, in bytes (None: not measurable now).
    lag_bytes: int | None = None
    # in: seconds since the newest message the publisher sent and we received;
    # out: the walsender's replay lag (None while nothing is in flight).
    lag_seconds: float | None = None
    errors: int | None = None
    # Rows refused as conflicts (such as an event id already present); any stops the link.
    conflicts: int | None = None
    events_received: int | None = None
    last_event_id: str | None = None
    last_event_recorded_at: datetime | None = None
    last_event_received_at: datetime | None = None


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /v1/federation`: this node, its links, and the directory it knows."""

    node: Node
    links: list[Link]
    directory: list[Node]


def _peer(name: str, direction: str) -> str | None:
    m = re.fullmatch(r"coord_([a-z0-9_]+?)_to_([a-z0-9_]+)", name)
    if m is None:
        return None
    source, target = m.groups()
    return source if direction == "in" else target


_INCOMING = f"""
SELECT s.subname, s.subenabled, s.subconninfo, w.pid, w.received_lsn,
       extract(epoch FROM now() - w.last_msg_send_time)::float8 AS lag_seconds,
       st.apply_error_count + st.sync_error_count AS errors,
       {_CONFLICTS_OF_ST} AS conflicts
FROM pg_subscription s
LEFT JOIN LATERAL (
    SELECT pid, received_lsn, last_msg_send_time FROM pg_stat_subscription p
    WHERE p.subid = s.oid AND p.relid IS NULL ORDER BY p.pid LIMIT 1
) w ON true
LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid
WHERE {_COORD_SUBSCRIPTIONS}
ORDER BY s.subname
"""

_OUTGOING = r"""
SELECT s.slot_name, s.active, r.state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes,
       extract(epoch FROM r.replay_lag)::float8 AS lag_seconds
FROM pg_replication_slots s
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.database = current_database() AND s.slot_name LIKE 'coord\_%'
ORDER BY s.slot_name
"""

_SLOT_LAG = (
    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
    "FROM pg_replication_slots WHERE slot_name = $1"
)


async def _publisher_lag(conninfo: str, slot: str, timeout: float) -> int | None:
    """Bytes of WAL the publisher holds for `slot`; None if it cannot be asked now."""
    try:
        async with asyncio.timeout(timeout):
            conn = await asyncpg.connect(conninfo)
            try:
                value: int | None = await conn.fetchval(_SLOT_LAG, slot)
                return value
            finally:
                await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError):
        return None


async def status(conn: asyncpg.Connection | asyncpg.Pool, *, remote_timeout: float = 2.0) -> Status:
    """Every coord replication link of this node, with lag, state and last event received."""
    node = await stored_identity(conn) or Node(node_id="local", mode="standalone")
    received = {
        r["node_id"]: r
        for r in await conn.fetch(
            "SELECT node_id, events, last_event_id, last_recorded_at, received_at "
            "FROM federation_received"
        )
    }
    incoming = await conn.fetch(_INCOMING)
    lags = await asyncio.gather(
        *(_publisher_lag(r["subconninfo"], r["subname"], remote_timeout) for r in incoming)
    )
    links: list[Link] = []
    for r, lag_bytes in zip(incoming, lags, strict=True):
        peer = _peer(r["subname"], "in")
        got = received.get(peer)
        connected = bool(r["subenabled"]) and r["pid"] is not None and r["received_lsn"] is not None
        errors = int(r["errors"] or 0)
        conflicts = int(r["conflicts"] or 0)
        state: LinkState
        if conflicts:
            state = "failed"
        elif not r["subenabled"]:
            state = "stopped"
        else:
            state = "streaming" if connected else "connecting"
        links.append(
            Link(
                name=r["subname"],
                direction="in",
                peer=peer,
                state=state,
                connected=connected,
                lag_bytes=lag_bytes,
                lag_seconds=max(0.0, r["lag_seconds"])
                if connected and r["lag_seconds"] is not None
                else None,
                errors=errors,
                conflicts=conflicts,
                events_received=got["events"] if got else 0,
                last_event_id=str(got["last_event_id"]) if got else None,
                last_event_recorded_at=got["last_recorded_at"] if got else None,
                last_event_received_at=got["received_at"] if got else None,
            )
        )
    for r in await conn.fetch(_OUTGOING):
        active = bool(r["active"])
        links.append(
            Link(
                name=r["slot_name"],
                direction="out",
                peer=_peer(r["slot_name"], "out"),
                state="streaming"
                if active and r["state"] == "streaming"
                else ("connecting" if active else "idle"),
                connected=active,
                lag_bytes=r["lag_bytes"],
                lag_seconds=r["lag_seconds"],
            )
        )
    return Status(node=node, links=links, directory=await directory(conn))


def status_lines(report: Status) -> list[str]:
    """A human-readable table of `report` for `coord federation status`."""
    n = report.node
    lines = [f"node {n.node_id} ({n.mode}{': ' + ', '.join(n.regions) if n.regions else ''})"]
    if not report.links:
        lines.append("  no replication links (coord federation add-region sets them up)")
    for link in report.links:
        lag = "-" if link.lag_bytes is None else f"{link.lag_bytes} B"
        secs = "-" if link.lag_seconds is None else f"{link.lag_seconds:.3f} s"
        last = (
            f", last event {link.last_event_id}"
            f" received {link.last_event_received_at:%Y-%m-%d %H:%M:%S}"
            if link.last_event_received_at
            else ""
        )
        errors = f", {link.errors} errors" if link.errors else ""
        lines.append(
            f"  {link.direction:3} {link.name}: {link.state}, "
            f"{'connected' if link.connected else 'not connected'}, lag {lag} / {secs}"
            f"{errors}{last}"
        )
    return lines
