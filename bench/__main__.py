"""`python -m bench [--full | --smoke]`: run every scenario, write bench/results/<date>.json.

One run, one machine, one PostgreSQL: an embedded server in a temporary folder, a coord
server as its own process, and every client (HTTP load, raw asyncpg, eventsourcing) as
another process. Ratios are taken between figures of the same run. The last line printed
is the path of the JSON written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psutil

from bench import report
from bench.common import summary
from bench.seed import seed
from coord.db import connect as db_connect

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# (small, large) log sizes: memory is compared between them, reads run at `large`.
SIZES = {"smoke": (2_000, 10_000), "quick": (10_000, 100_000), "full": (100_000, 1_000_000)}
# A view query slower than this is abandoned (and reported as such).
SLOW_QUERY_LIMIT = 10.0
CANCEL_SLOW = (
    "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE datname = "
    "current_database() AND state = 'active' AND now() - query_start > interval '10 seconds' "
    "AND pid <> pg_backend_pid()"
)
# (measured seconds, warm-up seconds) of each timed write scenario.
DURATIONS = {"smoke": (1.0, 0.3), "quick": (5.0, 1.0), "full": (10.0, 2.0)}

# View queries timed after the projections caught up (a path that fails is skipped):
# (path, role). Issue 18's target for each: p50 <= 50 ms, p99 <= 250 ms with
# VIEW_READERS concurrent readers while appends run.
VIEW_QUERIES = {
    "issue_board_filtered": (
        "/v1/views/issues?category=logistics,budget_honorarium&severity_min=3&limit=50",
        "national",
    ),
    "issue_summary": ("/v1/views/issues/summary", "national"),
    "issue_recurring": ("/v1/views/issues/recurring", "national"),
    "issue_uncovered": ("/v1/views/issues/uncovered", "national"),
    "recommendations": ("/v1/views/recommendations", "national"),
    "region_dossier": ("/v1/views/regions/35", "national"),
    "hearing_calendar": ("/v1/views/hearings?province=35", "national"),
    "search": ("/v1/search?q=honorarium&limit=20", "national"),
    "activity": ("/v1/views/activity", "auditor"),
}
# Search's first page (bounded ranking) is checked against ranking every match on these.
SEARCH_QUERIES = [
    "honorarium",
    "logistik",
    "gudang logistik",
    "bawaslu",
    '"badan ad hoc"',
    "pemilu -honorarium",
    "rekomendasi",
    "kediri or gudang",
]
VIEW_READERS = 16
VIEW_TARGET_MS = {"p50": 50.0, "p99": 250.0}
# Single-event appends (clients) running beside every view measurement.
VIEW_APPENDERS = 2


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """`url` with its database replaced (the embedded server's URL has `?host=<socket dir>`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def coord_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "coord", *args]


def cpu_total(procs: list[psutil.Process]) -> float:
    """CPU seconds of `procs`; for a parent, also of its children that have exited."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and its live descendants (`coord serve --workers N` is a process tree)."""
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and its children (`coord serve --workers N` is a process tree)."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


class Run:
    """One benchmark run: the servers it started and the figures it collected."""

    def __init__(self, mode: str, tmp: Path, workers: int = 0) -> None:
        self.mode = mode
        self.workers = workers
        self.tmp = tmp
        self.seconds, self.warmup = DURATIONS[mode]
        self.small, self.large = SIZES[mode]
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = tmp / "coord-server.log"
        self.token: str | None = None
        self.tokens: dict[str, str] = {}
        self.pg_url = ""
        self.url = ""
        self.dsn = ""
        self.pg_version = ""
        self.postmaster: psutil.Process | None = None

    # -- processes -----------------------------------------------------------

    def start_postgres(self) -> Any:
        from coord.embedded import EmbeddedPostgres

        pg = EmbeddedPostgres(self.tmp / "pgdata", delete_on_stop=True)
        url = pg.start()
        self.pg_url = url
        self.dsn = with_database(url, "coord_bench")
        asyncio.run(self._create_database(url))
        return pg

    async def _create_database(self, url: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE DATABASE coord_bench")
            self.pg_version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

    def postgres_procs(self) -> list[psutil.Process]:
        """The postmaster (whose children_* times count exited backends) and its live children."""
        if self.postmaster is None:
            pgdata = str((self.tmp / "pgdata").resolve())
            for p in psutil.process_iter(["name", "cmdline"]):
                if p.info["name"] == "postgres" and pgdata in " ".join(p.info["cmdline"] or []):
                    self.postmaster = p
                    break
            else:
                return []
        try:
            return [self.postmaster, *self.postmaster.children()]
        except psutil.Error:
            return [self.postmaster]

    def start_server(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, COORD_LOG_FORMAT="json", COORD_HOME=str(self.tmp / "home"))
        env.pop("COORD_DEMO", None)
        # The bench drives a few tokens as hard as it can: per-token rate limits off.
        env.setdefault("COORD_RATE_LIMIT_PER_TOKEN", "0")
        # ...and it rebuilds every projection at once, twice: the expensive-operation limit too.
        env.setdefault("COORD_RATE_LIMIT_EXPENSIVE_PER_MINUTE", "0")
        out = self.server_log.open("wb")
        self.server = subprocess.Popen(
            coord_cmd(
                "serve",
                "--port",
                str(port),
                "--database-url",
                self.dsn,
                "--workers",
                str(self.workers),
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.tmp,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"coord serve exited:\n{self.tail(self.server_log)}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"coord serve not ready in 60s:\n{self.tail(self.server_log)}")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    @staticmethod
    def tail(path: Path, lines: int = 20) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def coord_help(self, *sub: str) -> str:
        r = subprocess.run(
            coord_cmd(*sub, "--help"), capture_output=True, text=True, cwd=self.tmp, check=False
        )
        return r.stdout + r.stderr if r.returncode == 0 else ""

    def obtain_tokens(self) -> None:
        """A national (writes, views), an admin (rebuilds) and an auditor (export) token."""
        if "token" not in self.coord_help():
            self.notes.append("no `coord token` command: requests sent without a token")
            return
        for role in ("national", "admin", "auditor"):
            r = subprocess.run(
                coord_cmd("token", "create", "--role", role, "--name", f"bench-{role}"),
                capture_output=True,
                text=True,
                env=dict(os.environ, COORD_DATABASE_URL=self.dsn),
                cwd=self.tmp,
                check=False,
            )
            lines = r.stdout.strip().splitlines()
            if r.returncode != 0 or not lines:
                self.notes.append(f"`coord token create --role {role}` failed: {r.stderr[-300:]}")
                continue
            self.tokens[role] = lines[-1].strip()
        self.token = self.tokens.get("national")

    def auth(self, role: str = "national") -> list[str]:
        token = self.tokens.get(role)
        return ["--token", token] if token else []

    def http(
        self, method: str, path: str, role: str = "national", timeout: float = 60
    ) -> tuple[int, bytes]:
        """One request to the coord server: (status, body); status 0 if it did not answer."""
        req = urllib.request.Request(self.url + path, method=method)
        if token := self.tokens.get(role):
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read()
        except (urllib.error.URLError, OSError) as e:
            return 0, str(e).encode()

    # -- running client processes -------------------------------------------------

    def client(self, name: str, module: str, *args: str, timeout: float = 900) -> dict[str, Any]:
        """Run `python -m module args`, record its JSON with CPU use of client/server/PG.

        CPU of coord and PostgreSQL is counted from the client's READY line (after its
        set-up, such as pre-filling tables) to its exit.
        """
        server = process_tree(self.server.pid) if self.server else []
        cpu_server0, cpu_pg0 = cpu_total(server), cpu_total(self.postgres_procs())
        wall0 = time.perf_counter()
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=ROOT,
            )
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                if line.strip() == "READY":
                    cpu_server0, cpu_pg0 = cpu_total(server), cpu_total(self.postgres_procs())
                    wall0 = time.perf_counter()
                else:
                    lines.append(line.strip())
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        wall = time.perf_counter() - wall0
        lines = [x for x in lines if x]
        if proc.returncode != 0 or not lines:
            result: dict[str, Any] = {
                "skipped": f"{module} {args[0]} failed ({proc.returncode}): {stderr[-800:]}"
            }
        else:
            result = msgspec.json.decode(lines[-1])
        if "skipped" not in result:
            # Backends come and go with connections: take the set again at the end.
            result["cpu_s"] = {
                "client": result.pop("client_cpu_s", None),
                "server": round(cpu_total(server) - cpu_server0, 2),
                "postgres": round(cpu_total(self.postgres_procs()) - cpu_pg0, 2),
                "wall": round(wall, 2),
            }
            if self.server is not None:
                with contextlib.suppress(psutil.Error):
                    rss = tree_rss(psutil.Process(self.server.pid))
                    result["server_rss_mb_after"] = round(rss / 2**20, 1)
        self.record(name, result)
        return result

    def record(self, name: str, result: dict[str, Any]) -> None:
        self.scenarios[name] = result
        if "skipped" in result:
            log(f"{name}: skipped: {result['skipped'][:300]}")
        else:
            log(
                f"{name}: {result.get('events_per_s')} events/s, "
                f"p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms"
            )

    def checkpoint(self) -> None:
        asyncio.run(self._sql("CHECKPOINT"))

    async def _sql(self, sql: str) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    # -- scenarios ---------------------------------------------------------------

    def timed(self) -> list[str]:
        return ["--seconds", str(self.seconds), "--warmup", str(self.warmup)]

    def http_writes(self) -> None:
        auth = self.auth()
        for clients in (1, 16, 64):
            self.checkpoint()
            self.client(
                f"http_single_c{clients}",
                "bench.load",
                "append",
                "--url",
                self.url,
                "--clients",
                str(clients),
                *self.timed(),
                *auth,
            )
        self.checkpoint()
        self.client(
            "http_batch100_c16",
            "bench.load",
            "append",
            "--url",
            self.url,
            "--clients",
            "16",
            "--batch",
            "100",
            *self.timed(),
            *auth,
        )

    def raw_writes(self) -> None:
        self.checkpoint()
        self.client(
            "raw_single_c16",
            "bench.raw",
            "single",
            "--dsn",
            self.dsn,
            "--connections",
            "16",
            "--prefill",
            *self.timed(),
        )
        self.checkpoint()
        self.client(
            "raw_batch100_c16",
            "bench.raw",
            "batch",
            "--dsn",
            self.dsn,
            "--connections",
            "16",
            "--batch",
            "100",
            "--prefill",
            *self.timed(),
        )

    def peer_writes(self) -> None:
        self.checkpoint()
        self.client(
            "eventsourcing_single_t16",
            "bench.peer",
            "single",
            "--dsn",
            self.dsn,
            "--threads",
            "16",
            "--prefill",
            *self.timed(),
        )
        self.checkpoint()
        self.client(
            "eventsourcing_batch100_t16",
            "bench.peer",
            "batch",
            "--dsn",
            self.dsn,
            "--threads",
            "16",
            "--batch",
            "100",
            "--prefill",
            *self.timed(),
        )

    def seed_to(self, target: int) -> None:
        log(f"seeding the log to {target} events")
        result = asyncio.run(seed(self.dsn, target))
        log(f"seeded: head {result['head']} in {result['seconds']} s")
        self.scenarios[f"seed_{target}"] = result

    def reads(self, events: int) -> None:
        auth = self.auth()
        n = str(events)
        self.client("http_feed_read", "bench.load", "feed", "--url", self.url, "--events", n, *auth)
        self.client("raw_feed_read", "bench.raw", "read", "--dsn", self.dsn, "--events", n)
        self.client("http_sse", "bench.load", "sse", "--url", self.url, "--events", n, *auth)

    def views(self) -> None:
        """p50/p99 of view queries (16 readers, appends running) once projections caught up."""
        self.wait_projections_caught_up()
        self.scenarios["search_first_page"] = asyncio.run(self._search_first_page())
        log(f"search_first_page: {self.scenarios['search_first_page']}")
        for name, (path, role) in VIEW_QUERIES.items():
            self.query_latency(f"view_{name}", path, role)

    async def _search_first_page(self) -> dict[str, Any]:
        """Per query: is the bounded first page the page of ranking everything (and ms)?
        Both as typed (20 hits) and as `GET /v1/search` asks (widened by the field
        vocabulary, 21 hits: one more tells whether there is a next page)."""
        from projections import search, search_terms
        from projections.issue_text import Vocabulary

        conn = await asyncio.wait_for(db_connect(self.dsn), 30)
        out: dict[str, Any] = {}
        try:
            for query in SEARCH_QUERIES:
                same = True
                pages: list[list[tuple[str, str, float]]] = []
                ms: list[float] = []
                view = (search_terms.expand(query, Vocabulary.current()), 21)
                for expanded, limit in ((None, 20), view):
                    pages, ms = [], []
                    for candidates in (search.CANDIDATES, None):
                        async with conn.transaction(isolation="repeatable_read", readonly=True):
                            t0 = time.perf_counter()
                            hits = await search.search(
                                conn,
                                query,
                                scope=None,
                                limit=limit,
                                candidates=candidates,
                                expanded=expanded,
                            )
                            ms.append(round((time.perf_counter() - t0) * 1000, 1))
                        pages.append([(h.kind, h.id, h.rank) for h in hits])
                    same = same and pages[0] == pages[1]
                # Hits and times of the view's form.
                out[query] = {
                    "same_first_page": same,
                    "hits": len(pages[1]),
                    "bounded_ms": ms[0],
                    "rank_all_ms": ms[1],
                }
        finally:
            await conn.close()
        return out

    @contextlib.contextmanager
    def appends_running(self) -> Any:
        """Single-event HTTP appends from VIEW_APPENDERS clients for the length of the block."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.load",
                "append",
                "--url",
                self.url,
                "--clients",
                str(VIEW_APPENDERS),
                "--seconds",
                "3600",
                "--warmup",
                "0",
                *self.auth(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            yield
        finally:
            proc.terminate()
            proc.wait(30)

    def query_latency(self, name: str, path: str, role: str) -> None:
        """p50/p99 of `GET path` from 16 readers while appends run (a slow one: 3 samples)."""
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            status, body = self.http("GET", path, role, timeout=SLOW_QUERY_LIMIT)
            samples.append(time.perf_counter() - t0)
            if status == 0:
                # The server's query runs on: cancel it so it does not skew what follows.
                asyncio.run(self._sql(CANCEL_SLOW))
            if status != 200:
                what = "timed out" if status == 0 else f"-> {status}: {body[:200]!r}"
                self.record(name, {"skipped": f"GET {path} {what} after {samples[-1]:.1f} s"})
                return
            if samples[0] < 0.5:
                break
        if samples[0] >= 0.5:
            # Too slow to load with 8 clients in a few minutes: report the sequential samples.
            result = summary(0, sum(samples), samples, path=path, slow=True)
            result["events_per_s"] = None
            self.record(name, result)
            return
        with self.appends_running():
            result = self.client(
                name,
                "bench.load",
                "get",
                "--url",
                self.url,
                "--path",
                path,
                "--clients",
                str(VIEW_READERS),
                *self.timed(),
                *self.auth(role),
            )
        if "skipped" not in result:
            result["appenders"] = VIEW_APPENDERS
            p50, p99 = result.get("p50_ms") or 1e9, result.get("p99_ms") or 1e9
            result["meets_target"] = p50 <= VIEW_TARGET_MS["p50"] and p99 <= VIEW_TARGET_MS["p99"]

    def head(self) -> int:
        return int(asyncio.run(self._sql("SELECT coalesce(max(position), 0) FROM log")))

    def projection_status(self) -> list[dict[str, Any]] | None:
        status, body = self.http("GET", "/v1/projections")
        if status != 200:
            return None
        items: list[dict[str, Any]] = msgspec.json.decode(body)["items"]
        return items

    def wait_projections_caught_up(self, timeout: float = 900) -> float | None:
        """Wait until every projection is at the log head; seconds waited (None: no views)."""
        start = time.perf_counter()
        head = self.head()
        while time.perf_counter() - start < timeout:
            items = self.projection_status()
            if items is None:
                return None
            if all(i.get("position", 0) >= head and i.get("state") != "rebuilding" for i in items):
                return time.perf_counter() - start
            time.sleep(0.1)
        raise RuntimeError(f"projections not caught up with {head} after {timeout}s: {items}")

    def log_count(self, event: str) -> int:
        """How many times the server logged `event` (JSON log lines)."""
        needle = f'"event":"{event}"'.encode()
        try:
            with self.server_log.open("rb") as f:
                return sum(1 for line in f if needle in line)
        except OSError:
            return 0

    def rebuild(self, label: str) -> None:
        """Rebuild every projection at once from position 0, in a freshly started server.

        Reports events/s (log size / wall time until every rebuild swapped in) and the
        server's peak RSS while rebuilding.
        """
        name = f"rebuild_{label}"
        self.stop_server()
        self.start_server()  # a fresh process: its RSS is the rebuild's, not earlier runs'
        items = self.projection_status()
        if items is None:
            self.record(name, {"skipped": "GET /v1/projections is not there"})
            return
        self.wait_projections_caught_up()
        head = self.head()
        names = [i["name"] for i in items]
        server = psutil.Process(self.server.pid) if self.server else None
        rss_before = tree_rss(server) if server else 0
        peak = rss_before
        done0 = self.log_count("projection.rebuilt")
        failed0 = self.log_count("projection.rebuild_failed")
        tree = process_tree(server.pid) if server else []
        cpu0 = cpu_total(tree)
        start = time.perf_counter()
        for projection in names:
            status, body = self.http("POST", f"/v1/projections/{projection}/rebuild", "admin")
            if status != 202:
                self.record(name, {"skipped": f"rebuild {projection} -> {status}: {body[:200]!r}"})
                return
        deadline = start + 1800
        while time.perf_counter() < deadline:
            if server:
                peak = max(peak, tree_rss(server))
            if self.log_count("projection.rebuild_failed") > failed0:
                self.record(name, {"skipped": f"a rebuild failed: {self.tail(self.server_log)}"})
                return
            if self.log_count("projection.rebuilt") - done0 >= len(names):
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        self.record(
            name,
            {
                "events": head,
                "projections": names,
                "seconds": round(seconds, 3),
                "events_per_s": round(head / seconds, 1),
                "peak_rss_mb": round(peak / 2**20, 1),
                "rss_before_mb": round(rss_before / 2**20, 1),
                "cpu_s": {"server": round(cpu_total(tree) - cpu0, 2)},
            },
        )

    def measured_command(self, name: str, cmd: list[str], events: int, **kw: Any) -> None:
        """Run a coord CLI command, sampling its peak RSS (with children) every 20 ms."""
        env = dict(os.environ, COORD_DATABASE_URL=self.dsn, COORD_LOG_FORMAT="json")
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=self.tmp,
            stdout=kw.get("stdout", subprocess.DEVNULL),
            stderr=subprocess.PIPE,
        )
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(
                    c.memory_info().rss for c in ps.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            self.record(
                name,
                {
                    "skipped": f"{' '.join(_redacted(cmd[2:]))} failed "
                    f"({proc.returncode}): {err[-500:]}"
                },
            )
            return
        self.record(
            name,
            {
                "events": events,
                "seconds": round(seconds, 3),
                "events_per_s": round(events / seconds, 1),
                "peak_rss_mb": round(peak / 2**20, 1),
                "command": " ".join(_redacted(cmd[2:])),
            },
        )

    def wait_tree_head(self, head: int, timeout: float = 900) -> bool:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            status, body = self.http("GET", "/v1/audit/tree-head", "auditor")
            if status == 404 and b"no checkpoint" not in body:
                return False
            if status == 200 and msgspec.json.decode(body)["tree_size"] >= head:
                return True
            time.sleep(0.2)
        return False

    def heavy_commands(self, label: str) -> None:
        """Rebuild, export and verify at the current log size, with peak RSS."""
        self.rebuild(label)
        head = self.head()
        if "--out" not in self.coord_help("export"):
            self.record(f"export_{label}", {"skipped": "no `coord export --out` yet"})
            self.record(f"verify_{label}", {"skipped": "no `coord export --out` yet"})
            return
        if not self.wait_tree_head(head):
            self.record(f"export_{label}", {"skipped": "no checkpoint covers the log"})
            self.record(f"verify_{label}", {"skipped": "no checkpoint covers the log"})
            return
        path = self.tmp / f"export-{label}.ndjson"
        checkpoint = self.tmp / f"checkpoint-{label}.txt"
        self.measured_command(
            f"export_{label}",
            coord_cmd(
                "export",
                "--out",
                str(path),
                "--checkpoint-out",
                str(checkpoint),
                "--url",
                self.url,
                *self.auth("auditor"),
            ),
            head,
        )
        status, body = self.http("GET", "/v1/audit/public-key", "auditor")
        if status != 200 or not path.exists():
            self.record(f"verify_{label}", {"skipped": f"no export or key ({status})"})
            return
        vkey = msgspec.json.decode(body)["vkey"]
        self.measured_command(
            f"verify_{label}",
            coord_cmd("verify", str(path), "--checkpoint", str(checkpoint), "--vkey", vkey),
            head,
        )

    def inclusion_proofs(self) -> None:
        event_id = asyncio.run(
            self._sql(
                "SELECT e.event_id::text FROM log l JOIN events e ON e.seq = l.seq "
                "ORDER BY l.position LIMIT 1 OFFSET (SELECT max(position) / 2 FROM log)"
            )
        )
        path = f"/v1/audit/proof/inclusion?event_id={event_id}"
        self.query_latency("audit_inclusion_proof", path, "auditor")

    def audit(self) -> None:
        """bench/audit_costs.py (tree upkeep per event, proofs, export, verify), if present."""
        if not (ROOT / "bench" / "audit_costs.py").exists():
            self.record("audit_costs", {"skipped": "bench/audit_costs.py not there yet"})
            return
        env = dict(os.environ, COORD_BENCH_DATABASE_URL=self.pg_url)
        r = subprocess.run(
            [sys.executable, "-m", "bench.audit_costs", "--events", str(self.small)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=900,
            check=False,
        )
        if r.returncode != 0:
            self.record("audit_costs", {"skipped": f"audit_costs failed: {r.stderr[-500:]}"})
            return
        # Its own log lines (migrations, checkpoints) are not figures.
        lines = [x for x in r.stdout.strip().splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", x)]
        self.scenarios["audit_costs"] = {"events": self.small, "report": lines}
        log("audit_costs: " + " | ".join(lines))

    # -- the whole run -------------------------------------------------------------

    def run(self) -> None:
        log(f"mode {self.mode}: starting embedded PostgreSQL in {self.tmp}")
        pg = self.start_postgres()
        try:
            self.start_server()
            log(f"coord serving on {self.url}")
            self.obtain_tokens()
            # Reads, rebuilds and memory first, on a log of exactly the seeded sizes;
            # then the writes, into tables that already hold `large` events.
            self.step(self.seed_to, self.small)
            self.step(self.heavy_commands, "small")
            self.step(self.seed_to, self.large)
            self.step(self.reads, self.large)
            self.step(self.views)
            self.step(self.inclusion_proofs)
            self.step(self.audit)
            self.step(self.heavy_commands, "large")
            self.step(self.http_writes)
            self.step(self.raw_writes)
            self.step(self.peer_writes)
            self.server_log_lines()
        finally:
            self.stop_server()
            pg.stop()

    def step(self, fn: Any, *args: Any) -> None:
        """Run one group of scenarios; a failure becomes a note, and the run goes on."""
        try:
            fn(*args)
        except Exception as e:
            note = f"{fn.__name__}{args!r} failed: {e!r}"[:800]
            log(note)
            self.notes.append(note)
            if self.server is not None and self.server.poll() is not None:
                self.notes.append(f"coord serve exited:\n{self.tail(self.server_log)}")
                self.start_server()

    def server_log_lines(self) -> None:
        try:
            with self.server_log.open("rb") as f:
                n = sum(1 for _ in f)
            size = self.server_log.stat().st_size
        except OSError:
            return
        self.scenarios["server_log"] = {"lines": n, "bytes": size}


def _redacted(args: list[str]) -> list[str]:
    return ["***" if i and args[i - 1] == "--token" else a for i, a in enumerate(args)]


def machine(run: Run) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": run.pg_version,
        "commit": commit + ("+dirty" if dirty else ""),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="1M events (takes a while)")
    group.add_argument("--smoke", action="store_true", help="seconds, for CI: the bench runs")
    parser.add_argument(
        "--out",
        type=Path,
        help="results folder (default bench/results; a temporary folder for --smoke)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="coord serve --workers N (default 1: one HTTP process + one background process "
        "for projections and the tree builder, the recommended node set-up; 0: one process)",
    )
    args = parser.parse_args(argv)
    mode = "full" if args.full else "smoke" if args.smoke else "quick"
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="coord-bench-") as tmp:
        run = Run(mode, Path(tmp), args.workers)
        info = {"started_at": started.isoformat(timespec="seconds"), "workers": args.workers}
        info["machine"] = machine(run)
        run.run()
    info["machine"]["postgresql"] = run.pg_version
    out_dir = args.out or (
        Path(tempfile.mkdtemp(prefix="coord-bench-smoke-")) if args.smoke else RESULTS
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if mode == "quick" else f"-{mode}"
    json_path = out_dir / f"{started.date().isoformat()}{suffix}.json"
    doc = report.build(mode, run.scenarios, run.notes, info)
    doc["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n")
    table = report.markdown(doc)
    json_path.with_suffix(".md").write_text(table)
    print(table)
    if mode == "smoke":
        # CI runs the smoke bench so that it never rots: every scenario must run and
        # every ratio must have its figures (whatever they are on a CI machine).
        broken = [n for n, r in run.scenarios.items() if "skipped" in r] + [
            n for n, r in doc["ratios"].items() if r.get("ratio") is None
        ]
        if broken:
            print(f"smoke bench: did not run: {', '.join(broken)}", file=sys.stderr)
            print(json_path)
            return 1
    print(json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
