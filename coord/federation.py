"""Multi-region federation over PostgreSQL logical replication (issue 7).

coord builds no replication protocol of its own. Each node is coord plus its own
PostgreSQL; nodes exchange *events* (never positions) with publications and
subscriptions:

* a regional node publishes the events homed on it (`coord_region_events`: a row
  filter on `node_id`, and a column list without the node-local `seq`), and the
  hub subscribes to it (`coord_<region>_to_<hub>`);
* the hub publishes national events (`coord_national_events`) plus the token
  table and the federation directory (`coord_national_tables`), and each regional
  node subscribes (`coord_<hub>_to_<region>`);
* for the proofs across nodes (coord/cosigner.py), a region also publishes its
  `node_log`, its checkpoints and its cosignatures of the hub's checkpoints
  (`coord_region_audit`), and the hub its own checkpoints with the consistency proofs
  between them (`coord_national_audit`).

Every subscription uses `origin = none`, so a row a node received is never sent
on (no loops). A broken link retries by itself (PostgreSQL's apply worker). A
received row that collides with one already here (an event id or a stream held by
another home) is set aside whole in `federation_conflicts` by a REPLICA trigger
(events/store/sql/0005_federation_conflicts.sql) instead of failing: no client input can
stop a link, nothing is lost, and status reports the conflict. Applied rows get
positions from the receiving node's own sequencer (the REPLICA trigger in
events/store/sql/0003_federation.sql), so each node has its own dense log, projections
and Merkle tree.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec
import structlog

from coord import db
from coord.problems import Problem
from events.audit.notes import NoteError, Verifier
from events.domain.regions import covers
from events.domain.topology import MODES, Mode, Node, accepts, home_of, is_home

log = structlog.get_logger("coord.federation")

NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")

# What a hub takes from a region and a region from the hub: the event as written.
# `seq` (the local insertion number) is left out; the receiver assigns its own.
EVENT_COLUMNS = (
    "event_id, stream_id, version, type, schema_version, data, metadata, "
    "region_code, node_id, recorded_at"
)
REGION_PUBLICATION = "coord_region_events"
# A region's own log (home positions) and its checkpoints: what the hub mirrors and
# cosigns (coord/cosigner.py). Carried by the same subscription as its events, so a
# node_log row never arrives before the event it names.
REGION_AUDIT = "coord_region_audit"
CHECKPOINT_COLUMNS = "origin, tree_size, root_hash, note, created_at"
NATIONAL_EVENTS = "coord_national_events"
NATIONAL_TABLES = "coord_national_tables"
# The hub's own checkpoints and the consistency proofs between them: what the regions
# witness (coord/cosigner.py, HubWitness). Insert-only, row-filtered to the hub's origin.
NATIONAL_AUDIT = "coord_national_audit"


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
    if stored is not None and stored.mode != "standalone" and node.mode != stored.mode:
        raise FederationError(
            f"this database is the {stored.mode} node {stored.node_id!r}; it cannot start as "
            f"--mode {node.mode} (its links and the events homed on it depend on its mode)"
        )
    if node.mode == "regional":
        clash = overlaps(node, await directory(conn))
        if clash:
            raise FederationError(clash)
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


def overlaps(node: Node, nodes: Sequence[Node]) -> str | None:
    """Why `node`'s regions overlap another regional node's in `nodes`, or None.

    Two homes for one region would both accept its writes; the hub could then not
    tell whose stream is whose. A region is served by exactly one regional node.
    """
    for other in nodes:
        if other.node_id == node.node_id or other.mode != "regional":
            continue
        for mine in node.regions:
            for theirs in other.regions:
                if covers([mine], theirs) or covers([theirs], mine):
                    return (
                        f"region {mine} of node {node.node_id!r} overlaps region {theirs} "
                        f"served by node {other.node_id!r}: a region has exactly one home node"
                    )
    return None


async def check_home(
    pool: asyncpg.Pool | asyncpg.Connection, here: Node, category: str, region_code: str | None
) -> None:
    """Raise the 421 unless `here` is home for such a stream (directory read only when needed).

    What `WritePath.check_home` should call: unlike `accepts` alone, it lets the hub
    take regions no regional node serves, and the 421 it raises names exactly the node
    that accepts the write.
    """
    if accepts(here, category, region_code):
        return
    nodes = await directory(pool)
    if is_home(here, category, region_code, nodes):
        return
    raise await misdirected(pool, here, category, region_code, nodes)


async def misdirected(
    pool: asyncpg.Pool | asyncpg.Connection,
    here: Node,
    category: str,
    region_code: str | None,
    nodes: Sequence[Node] | None = None,
) -> Problem:
    """The 421 for a write homed elsewhere, naming the home node when the directory knows it."""
    if nodes is None:
        nodes = await directory(pool)
    home = home_of(category, region_code, nodes)
    if home is not None and home.node_id == here.node_id:
        home = None  # never name the node that is refusing
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


# Settings that bound how many links a PostgreSQL server can carry.
LIMIT_SETTINGS = (
    "max_logical_replication_workers",
    "max_worker_processes",
    "max_active_replication_origins",
    "max_replication_slots",
    "max_wal_senders",
)


# PostgreSQL's default max_sync_workers_per_subscription: the table-sync workers (each
# with its own slot and WAL sender on the publisher) one subscription's copy runs at once.
SYNC_WORKERS_PER_COPY = 2


def worker_shortfalls(settings: Mapping[str, int], *, incoming: int, outgoing: int) -> list[str]:
    """What a server with `settings` lacks to carry `incoming` subscriptions and `outgoing`
    slots; each entry says the setting, what it is, what it needs and why. Pure.

    Without this a link beyond the limits sits at `connecting` for ever, with no
    error anywhere but the server log. Each incoming link holds one apply worker,
    and a new one also needs a table-sync worker for its initial copy; each
    incoming link holds a replication origin; each outgoing link holds a slot and
    a WAL sender, and a peer copying its initial data holds one of each per
    table-sync worker: up to max_sync_workers_per_subscription (2 by default) at once.
    """
    need: dict[str, tuple[int, str]] = {}
    if incoming:
        workers = incoming + 1
        need["max_logical_replication_workers"] = (
            workers,
            f"{incoming} apply worker(s) + 1 table-sync worker for a new link's initial copy",
        )
        need["max_worker_processes"] = (
            workers + 1,
            "the logical replication workers + their launcher",
        )
        need["max_active_replication_origins"] = (incoming + 1, "one origin per incoming link")
    if outgoing:
        # Short of these, a peer's copy keeps failing to connect and retries (slowly).
        copy = SYNC_WORKERS_PER_COPY
        need["max_replication_slots"] = (
            outgoing + copy,
            f"one slot per outgoing link + {copy} for a peer's initial copy",
        )
        need["max_wal_senders"] = (
            outgoing + copy,
            f"one WAL sender per outgoing link + {copy} for a peer's initial copy",
        )
    short: list[str] = []
    for name, (minimum, why) in need.items():
        have = settings.get(name)
        if have is not None and have < minimum:
            short.append(f"{name} = {have}, needs at least {minimum} ({why})")
    return short


async def _limits(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT name, setting::int FROM pg_settings WHERE name = ANY($1::text[])",
        list(LIMIT_SETTINGS),
    )
    return {r["name"]: r["setting"] for r in rows}


async def _coord_links(conn: asyncpg.Connection) -> tuple[set[str], set[str]]:
    """Names of this database's coord subscriptions (incoming) and slots (outgoing)."""
    incoming = {
        r["subname"]
        for r in await conn.fetch(
            f"SELECT s.subname FROM pg_subscription s WHERE {_COORD_SUBSCRIPTIONS}"
        )
    }
    outgoing = {
        r["slot_name"]
        for r in await conn.fetch(
            "SELECT slot_name FROM pg_replication_slots"
            " WHERE database = current_database() AND slot_name LIKE 'coord\\_%'"
        )
    }
    return incoming, outgoing


async def _check_limits(conn: asyncpg.Connection, where: str, new_in: str, new_out: str) -> None:
    incoming, outgoing = await _coord_links(conn)
    short = worker_shortfalls(
        await _limits(conn), incoming=len(incoming | {new_in}), outgoing=len(outgoing | {new_out})
    )
    if short:
        raise FederationError(
            f"{where}'s PostgreSQL cannot carry another link: "
            + "; ".join(short)
            + ". Raise them (ALTER SYSTEM SET ..., then restart PostgreSQL) and run add-region"
            " again; see docs/deploy.md (limits)"
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


def _origin(vkey: str | None, node: str) -> str:
    """The log origin (checkpoint key name) a node published at start."""
    if vkey is None:
        raise FederationError(
            f"{node} has not published its checkpoint key: start coord there once, then "
            "run add-region again"
        )
    try:
        return Verifier.from_vkey(vkey).name
    except NoteError as e:
        raise FederationError(f"{node}'s checkpoint key is not valid: {e}") from None


async def _publish_table(conn: asyncpg.Connection, publication: str, table: str) -> None:
    """Add a table an older coord's publication lacks (subscribers pick it up on refresh).

    `table` may carry a row filter (`name WHERE (...)`)."""
    name, _, where = table.partition(" WHERE ")
    listed = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1"
        " AND schemaname = current_schema() AND tablename = $2)",
        publication,
        name,
    )
    if not listed:
        clause = f" WHERE {where}" if where else ""
        await conn.execute(
            f"ALTER PUBLICATION {_ident(publication)} ADD TABLE {_ident(name)}{clause}"
        )


async def _create_subscription(
    conn: asyncpg.Connection, name: str, dsn: str, publications: Sequence[str], where: str
) -> SetupStep:
    exists = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1)", name
    )
    # Status reads the publisher's address here: pg_subscription.subconninfo is for
    # superusers only, and coord runs as an ordinary role (docs/deploy.md).
    await conn.execute(
        "INSERT INTO federation_links (link, conninfo) VALUES ($1, $2)"
        " ON CONFLICT (link) DO UPDATE SET conninfo = EXCLUDED.conninfo",
        name,
        dsn,
    )
    if exists:
        # Keep its state: an operator may have stopped it on purpose.
        await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} CONNECTION {_literal(dsn)}")
        # A link made by an older coord lacks publications added since (coord_region_audit).
        row = await conn.fetchrow(
            "SELECT subpublications, subenabled FROM pg_subscription WHERE subname = $1", name
        )
        for pub in publications:
            if pub not in row["subpublications"]:
                await conn.execute(
                    f"ALTER SUBSCRIPTION {_ident(name)} ADD PUBLICATION {_ident(pub)}"
                    f" WITH (refresh = {'true' if row['subenabled'] else 'false'})"
                )
        if row["subenabled"]:
            # Tables added to a publication it already has (audit_cosignatures) start here.
            await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} REFRESH PUBLICATION")
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
    clash = overlaps(region_node, await directory(hub))
    if clash:
        raise FederationError(clash)
    homed_at_hub = [
        code
        for code in await hub.fetchval(
            "SELECT coalesce(array_agg(DISTINCT region_code), '{}') FROM events"
            " WHERE node_id = $1 AND region_code IS NOT NULL",
            hub_node.node_id,
        )
        if covers(region_node.regions, code)
    ]
    if homed_at_hub:
        # Those streams stay homed at the hub: the region would not know them, and a
        # client could create one again there, to collide at the hub.
        raise FederationError(
            f"the hub already homes streams of {', '.join(sorted(homed_at_hub))} (written "
            f"there while no regional node served them); region {name} cannot take them "
            "over: serve other regions, or see docs/deploy.md (un-served regions)"
        )
    up_link, down_link = link_name(name, hub_node.node_id), link_name(hub_node.node_id, name)
    await _check_limits(hub, "the hub", up_link, down_link)
    await _check_limits(region, f"region {name}", down_link, up_link)
    steps: list[SetupStep] = []
    # The region's checkpoint key, as the region published it at start (coord/audit.py):
    # the hub cosigns only checkpoints this key signed.
    region_vkey = await region.fetchval("SELECT audit_vkey FROM coord_node")
    hub_vkey = await hub.fetchval("SELECT audit_vkey FROM coord_node")
    hub_origin, region_origin = _origin(hub_vkey, "the hub"), _origin(region_vkey, name)
    async with hub.transaction():
        for node, vkey in ((hub_node, hub_vkey), (region_node, region_vkey)):
            await hub.execute(
                "INSERT INTO federation_nodes (node_id, mode, regions, link, audit_vkey)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id) DO UPDATE SET"
                " mode = EXCLUDED.mode, regions = EXCLUDED.regions, link = EXCLUDED.link,"
                " audit_vkey = coalesce(EXCLUDED.audit_vkey, federation_nodes.audit_vkey)",
                node.node_id,
                node.mode,
                list(node.regions),
                None if node is hub_node else link_name(name, hub_node.node_id),
                vkey,
            )
    steps.append(SetupStep("hub", f"directory entries {hub_node.node_id}, {name}", True))
    steps.append(await _register_streams(hub))
    steps.append(
        await _create_publication(
            region,
            REGION_PUBLICATION,
            f"FOR TABLE events ({EVENT_COLUMNS}) WHERE (node_id = {_literal(name)}) "
            "WITH (publish = 'insert')",
            f"region {name}",
        )
    )
    # The region's cosignatures of the hub's checkpoints go back to the hub (its
    # receipts carry them); only the rows it signed itself.
    own_cosignatures = f"audit_witness_cosignatures WHERE (cosigner = {_literal(region_origin)})"
    steps.append(
        await _create_publication(
            region,
            REGION_AUDIT,
            f"FOR TABLE node_log WHERE (log_node = {_literal(name)}), "
            f"audit_checkpoints ({CHECKPOINT_COLUMNS}) "
            f"WHERE (origin = {_literal(region_origin)}), {own_cosignatures} "
            "WITH (publish = 'insert')",
            f"region {name}",
        )
    )
    await _publish_table(region, REGION_AUDIT, own_cosignatures)
    steps.append(
        await _create_publication(
            hub,
            NATIONAL_EVENTS,
            # National streams only: regional streams the hub homes (regions no
            # regional node serves) are nobody else's business.
            f"FOR TABLE events ({EVENT_COLUMNS}) WHERE (node_id = {_literal(hub_node.node_id)} "
            "AND region_code IS NULL) WITH (publish = 'insert')",
            "hub",
        )
    )
    steps.append(
        await _create_publication(
            hub,
            NATIONAL_TABLES,
            "FOR TABLE access_tokens, federation_nodes, audit_cosignatures, federation_streams",
            "hub",
        )
    )
    await _publish_table(hub, NATIONAL_TABLES, "audit_cosignatures")
    await _publish_table(hub, NATIONAL_TABLES, "federation_streams")
    steps.append(
        await _create_publication(
            hub,
            NATIONAL_AUDIT,
            f"FOR TABLE audit_checkpoints ({CHECKPOINT_COLUMNS}) "
            f"WHERE (origin = {_literal(hub_origin)}), audit_consistency "
            "WITH (publish = 'insert')",
            "hub",
        )
    )
    steps.append(
        await _create_subscription(
            hub, up_link, region_dsn, [REGION_PUBLICATION, REGION_AUDIT], "hub"
        )
    )
    steps.append(
        await _create_subscription(
            region,
            down_link,
            hub_dsn,
            [NATIONAL_EVENTS, NATIONAL_TABLES, NATIONAL_AUDIT],
            f"region {name}",
        )
    )
    for step in steps:
        log.info("federation.setup", where=step.where, what=step.what, created=step.created)
    return steps


async def _register_streams(hub: asyncpg.Connection) -> SetupStep:
    """Make the hub record every stream's home in `federation_streams` as it logs events
    (the regions' too), with the streams it already holds: the regions refuse to start
    those (409 stream-id-taken)."""
    enabled = await hub.fetchval(
        "SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'log'::regclass"
        " AND tgname = 'log_register_streams'"
    )
    if enabled == "D":
        async with hub.transaction():
            await hub.execute("ALTER TABLE log ENABLE TRIGGER log_register_streams")
            await hub.execute(
                "INSERT INTO federation_streams (stream_id, home_node)"
                " SELECT stream_id, node_id FROM events WHERE version = 1"
                " ON CONFLICT (stream_id) DO NOTHING"
            )
    return SetupStep("hub", "stream homes (federation_streams)", enabled == "D")


# -- conflicts ------------------------------------------------------------

# coord's subscriptions in this database, as `s`.
_COORD_SUBSCRIPTIONS = (
    "s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND s.subname LIKE 'coord\\_%'"
)


class ConflictEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One side of a conflict: an event as its home node recorded it."""

    event_id: str
    stream_id: str
    version: int
    type: str
    node_id: str
    region_code: str | None
    recorded_at: datetime
    data: msgspec.Raw
    metadata: msgspec.Raw


class Conflict(msgspec.Struct, frozen=True, kw_only=True):
    """A received event set aside because it collides with one already here."""

    conflict_id: int
    # event_id: its id is taken; stream: its stream is held by another home (or the version is)
    kind: Literal["event_id", "stream"]
    received: ConflictEvent
    held: ConflictEvent | None
    detected_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None


_CONFLICTS = """
SELECT c.conflict_id, c.kind, c.detected_at, c.resolved_at, c.resolution,
       c.event_id::text, c.stream_id, c.version, c.type, c.node_id, c.region_code,
       c.recorded_at, c.data, c.metadata,
       h.event_id::text AS h_event_id, h.stream_id AS h_stream_id, h.version AS h_version,
       h.type AS h_type, h.node_id AS h_node_id, h.region_code AS h_region_code,
       h.recorded_at AS h_recorded_at, h.data AS h_data, h.metadata AS h_metadata
FROM federation_conflicts c LEFT JOIN events h ON h.event_id = c.held_event_id
WHERE ($1 OR c.resolved_at IS NULL)
ORDER BY c.conflict_id
"""


def _side(r: asyncpg.Record, p: str = "") -> ConflictEvent:
    return ConflictEvent(
        event_id=r[f"{p}event_id"],
        stream_id=r[f"{p}stream_id"],
        version=r[f"{p}version"],
        type=r[f"{p}type"],
        node_id=r[f"{p}node_id"],
        region_code=r[f"{p}region_code"],
        recorded_at=r[f"{p}recorded_at"],
        data=r[f"{p}data"],
        metadata=r[f"{p}metadata"],
    )


async def conflicts(
    conn: asyncpg.Connection | asyncpg.Pool, *, include_resolved: bool = False
) -> list[Conflict]:
    """Received events set aside as conflicts, with the event each collided with."""
    return [
        Conflict(
            conflict_id=r["conflict_id"],
            kind=r["kind"],
            received=_side(r),
            held=_side(r, "h_") if r["h_event_id"] is not None else None,
            detected_at=r["detected_at"],
            resolved_at=r["resolved_at"],
            resolution=r["resolution"],
        )
        for r in await conn.fetch(_CONFLICTS, include_resolved)
    ]


async def resolve_conflict(conn: asyncpg.Connection, conflict_id: int, resolution: str) -> None:
    """Record how an operator resolved a conflict; the set-aside event itself is kept."""
    if not resolution.strip():
        raise FederationError("say how it was resolved (--note)")
    done = await conn.fetchval(
        "UPDATE federation_conflicts SET resolved_at = now(), resolution = $2"
        " WHERE conflict_id = $1 AND resolved_at IS NULL RETURNING conflict_id",
        conflict_id,
        resolution,
    )
    if done is None:
        raise FederationError(f"no open conflict {conflict_id} on this node")
    log.warning("federation.conflict_resolved", conflict_id=conflict_id, resolution=resolution)


async def resume_link(conn: asyncpg.Connection, name: str) -> None:
    """Re-enable an incoming link an operator stopped (ALTER SUBSCRIPTION ... DISABLE).

    coord itself never stops a link: conflicting rows are set aside instead. Runs as
    the subscription's owner (the application role); no superuser needed.
    """
    oid = await conn.fetchval("SELECT oid FROM pg_subscription WHERE subname = $1", name)
    if oid is None:
        raise FederationError(f"no link {name!r} on this node (coord federation status lists them)")
    await conn.execute(f"ALTER SUBSCRIPTION {_ident(name)} ENABLE")
    log.warning("federation.link_resumed", link=name)


async def watch_conflicts(pool: asyncpg.Pool, interval: float = 2.0) -> None:
    """Background task: log each new conflict once, loudly (status keeps reporting it)."""
    seen = 0
    while True:
        try:
            rows = await pool.fetch(
                "SELECT conflict_id, kind, event_id::text, stream_id, node_id, held_node_id"
                " FROM federation_conflicts WHERE conflict_id > $1 ORDER BY conflict_id",
                seen,
            )
            for r in rows:
                seen = r["conflict_id"]
                log.error(
                    "federation.conflict",
                    conflict_id=r["conflict_id"],
                    kind=r["kind"],
                    event_id=r["event_id"],
                    stream_id=r["stream_id"],
                    home=r["node_id"],
                    held_by=r["held_node_id"],
                    resolve="the event is kept aside, the link keeps flowing; docs/deploy.md",
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("federation.watch_failed", error=repr(e))
        await asyncio.sleep(interval)


# -- status ---------------------------------------------------------------

# streaming: up. connecting: the peer answers but the link is not up (yet).
# partitioned: the peer cannot be reached. stopped: disabled by an operator.
# disconnected (out): no peer reads this node's slot now.
LinkState = Literal["streaming", "connecting", "partitioned", "stopped", "disconnected"]


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
    # Received events set aside as conflicts and not resolved yet (in only). The
    # link keeps flowing; these need an operator (docs/deploy.md, conflicts).
    conflicts: int | None = None
    # PostgreSQL's apply/sync error count: it includes every lost connection, so it
    # is a diagnostic, not an alarm (the `errors` gauge counts conflicts only).
    apply_errors: int | None = None
    events_received: int | None = None
    last_event_id: str | None = None
    last_event_recorded_at: datetime | None = None
    last_event_received_at: datetime | None = None

    @property
    def errors(self) -> int | None:
        """What needs an operator: open conflicts (never a mere reconnect)."""
        return self.conflicts


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


# Only columns an ordinary role may read (subconninfo is superuser-only).
_INCOMING = f"""
SELECT s.subname, s.subenabled, l.conninfo, w.pid, w.received_lsn,
       extract(epoch FROM now() - w.last_msg_send_time)::float8 AS lag_seconds,
       st.apply_error_count + st.sync_error_count AS apply_errors
FROM pg_subscription s
LEFT JOIN federation_links l ON l.link = s.subname
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


class _Probe(msgspec.Struct, frozen=True):
    reachable: bool | None  # None: no address recorded (a link not made by add-region)
    lag_bytes: int | None


async def _probe(conninfo: str | None, slot: str, timeout: float) -> _Probe:
    """Ask the publisher how much WAL it holds for `slot`; unreachable is a partition."""
    if conninfo is None:
        return _Probe(None, None)
    try:
        async with asyncio.timeout(timeout):
            conn = await asyncpg.connect(conninfo)
            try:
                value: int | None = await conn.fetchval(_SLOT_LAG, slot)
                return _Probe(True, value)
            finally:
                await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError):
        return _Probe(False, None)


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
    open_conflicts = {
        r["node_id"]: r["n"]
        for r in await conn.fetch(
            "SELECT node_id, count(*) AS n FROM federation_conflicts"
            " WHERE resolved_at IS NULL GROUP BY node_id"
        )
    }
    incoming = await conn.fetch(_INCOMING)
    probes = await asyncio.gather(
        *(_probe(r["conninfo"], r["subname"], remote_timeout) for r in incoming)
    )
    links: list[Link] = []
    for r, probe in zip(incoming, probes, strict=True):
        peer = _peer(r["subname"], "in")
        got = received.get(peer)
        connected = bool(r["subenabled"]) and r["pid"] is not None and r["received_lsn"] is not None
        state: LinkState
        if not r["subenabled"]:
            state = "stopped"
        elif connected:
            state = "streaming"
        else:
            state = "partitioned" if probe.reachable is False else "connecting"
        links.append(
            Link(
                name=r["subname"],
                direction="in",
                peer=peer,
                state=state,
                connected=connected,
                lag_bytes=probe.lag_bytes,
                lag_seconds=max(0.0, r["lag_seconds"])
                if connected and r["lag_seconds"] is not None
                else None,
                conflicts=open_conflicts.get(peer, 0),
                apply_errors=int(r["apply_errors"] or 0),
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
                # The walsender's state is shown to pg_read_all_stats only; without it
                # an active slot is taken as streaming (its lag in bytes still shows).
                state="streaming"
                if active and r["state"] in ("streaming", None)
                else ("connecting" if active else "disconnected"),
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
        errors = f", {link.conflicts} open conflicts" if link.conflicts else ""
        lines.append(
            f"  {link.direction:3} {link.name}: {link.state}, "
            f"{'connected' if link.connected else 'not connected'}, lag {lag} / {secs}"
            f"{errors}{last}"
        )
    return lines
