"""Console page timings at a benchmark size: how long the board and recurring pages take.

    python -m bench.console_pages [--events 100000] [--repeat 10]

Starts an embedded PostgreSQL and a `coord serve`, seeds the log (bench/seed.py), waits
until every projection has caught up, signs in through the console's own form, then
times each page (full HTML answer, as a browser gets it) and prints JSON: median and
worst of `repeat` loads per page. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.__main__ import coord_cmd, free_port, with_database
from bench.seed import seed

PAGES = (
    ("board", "/isu"),
    ("board by severity", "/isu?sort=severity"),
    ("board filtered", "/isu?category=logistics&province=35"),
    ("board page 2", None),  # the board's own next link
    ("recurring", "/isu/berulang"),
    ("coverage gaps", "/isu/celah"),
    ("calendar", "/kalender?bulan=2021-10"),
    ("province dossier", "/wilayah/35"),
    ("activity", "/aktivitas"),
)


async def _create_database(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE DATABASE coord_console")
    finally:
        await conn.close()


async def _measure(base: str, token: str, repeat: int) -> dict[str, dict[str, float]]:
    jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address
    async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as http:
        # Projections caught up: every page reads the whole log.
        auth = {"Authorization": f"Bearer {token}"}
        body: object = None
        for _ in range(1200):
            async with http.get("/v1/projections", headers=auth) as r:
                body = await r.json()
            items = body.get("items") if isinstance(body, dict) and r.status == 200 else None
            if items and all(i["lag_events"] == 0 and i["state"] != "rebuilding" for i in items):
                break
            await asyncio.sleep(1)
        else:
            raise RuntimeError(f"projections did not catch up: {body}")
        async with http.get("/masuk") as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf is not None
        async with http.post(
            "/masuk",
            data={"csrf": csrf.group(1), "token": token, "next": "/"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()
        async with http.get("/isu") as r:
            found = re.search(r'href="(/isu\?[^"]*cursor=[^"]+)" rel="next"', await r.text())
        next_page = found.group(1).replace("&amp;", "&") if found else "/isu"
        out: dict[str, dict[str, float]] = {}
        for name, path in PAGES:
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                async with http.get(path or next_page) as r:
                    body = await r.read()
                    assert r.status == 200, (path, r.status, body[:300])
                times.append((time.perf_counter() - start) * 1000)
            out[name] = {
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "kib": round(len(body) / 1024, 1),
            }
        return out


def main() -> None:
    """Run the measurement and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    from coord.embedded import EmbeddedPostgres

    tmp = Path(tempfile.mkdtemp(prefix="coord-console-bench-"))
    pg = EmbeddedPostgres(tmp / "pgdata", delete_on_stop=True)
    url = pg.start()
    server = None
    try:
        asyncio.run(_create_database(url))
        dsn = with_database(url, "coord_console")
        port = free_port()
        env = dict(os.environ, COORD_HOME=str(tmp / "home"), COORD_RATE_LIMIT_PER_TOKEN="0")
        env.pop("COORD_DEMO", None)
        log = (tmp / "serve.log").open("wb")
        server = subprocess.Popen(
            coord_cmd("serve", "--port", str(port), "--database-url", dsn),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                import urllib.request

                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        seeded = asyncio.run(seed(dsn, args.events))
        made = subprocess.run(
            coord_cmd("token", "create", "--role", "national", "--name", "bench-console"),
            capture_output=True,
            text=True,
            env=dict(env, COORD_DATABASE_URL=dsn),
            cwd=tmp,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(f"coord token create failed: {made.stderr[-2000:]}")
        token = made.stdout.strip().splitlines()[-1].strip()
        pages = asyncio.run(_measure(base, token, args.repeat))
        print(json.dumps({"events": seeded["head"], "pages": pages}, indent=2))
    finally:
        try:
            if server is not None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
