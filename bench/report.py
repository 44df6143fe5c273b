"""The results document: scenarios, the ratios the issue asks for, and a markdown table."""

from __future__ import annotations

from typing import Any

# key, numerator scenario, denominator scenario, comparison, target, meaning
RATIOS: list[tuple[str, str, str, str, float, str]] = [
    (
        "http_single_vs_raw",
        "http_single_c64",
        "raw_single_c16",
        ">=",
        0.30,
        "HTTP single-event appends, 64 clients / raw asyncpg single-event txns, 16 connections",
    ),
    (
        "http_single_vs_eventsourcing",
        "http_single_c64",
        "eventsourcing_single_t16",
        ">=",
        2.0,
        "HTTP single-event appends, 64 clients / eventsourcing single events, 16 threads",
    ),
    (
        "http_batch_vs_raw",
        "http_batch100_c16",
        "raw_batch100_c16",
        ">=",
        0.40,
        "HTTP batch-100 appends / raw executemany batch-100 (16 clients each)",
    ),
    (
        "feed_read_vs_raw",
        "http_feed_read",
        "raw_feed_read",
        ">=",
        0.25,
        "HTTP global feed read (pages of 1000) / raw asyncpg paged read with JSON decode",
    ),
    (
        "rebuild_vs_raw_read",
        "rebuild_large",
        "raw_feed_read",
        ">=",
        0.10,
        "projection rebuild (all views) / raw asyncpg paged read with JSON decode",
    ),
    (
        "rss_1m_vs_100k",
        "",
        "",
        "<=",
        1.2,
        "peak RSS at the large size / at the small size, worst of rebuild, export, verify",
    ),
]
SIZE_LABEL = {"smoke": "2k and 10k", "quick": "10k and 100k", "full": "100k and 1M"}


def _rate(scenarios: dict[str, Any], name: str) -> tuple[float | None, str | None]:
    s = scenarios.get(name)
    if s is None:
        return None, f"{name} did not run"
    if "skipped" in s:
        return None, f"{name} skipped: {s['skipped'][:200]}"
    rate = s.get("events_per_s")
    if not rate:
        sample = s.get("error_sample") or s.get("statuses")
        return None, f"{name} measured no successful requests ({sample})"
    return float(rate), None


def _ratio(
    key: str,
    num: float | None,
    den: float | None,
    reason: str | None,
    cmp: str,
    target: float,
    meaning: str,
    **extra: Any,
) -> dict[str, Any]:
    value = round(num / den, 3) if num is not None and den else None
    out: dict[str, Any] = {"numerator": num, "denominator": den, "ratio": value}
    out["target"] = f"{cmp} {target}"
    out["meets_target"] = (
        None if value is None else value >= target if cmp == ">=" else value <= target
    )
    out["of"] = meaning
    out.update(extra)
    if value is None:
        out["reason"] = reason or "not measured"
    return out


def ratios(mode: str, scenarios: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, num_name, den_name, cmp, target, meaning in RATIOS:
        if key == "rss_1m_vs_100k":
            out[key] = _rss_ratio(mode, scenarios, cmp, target, meaning)
            continue
        num, why_num = _rate(scenarios, num_name)
        den, why_den = _rate(scenarios, den_name)
        out[key] = _ratio(
            key,
            num,
            den,
            why_num or why_den,
            cmp,
            target,
            meaning,
            unit="events/s",
            numerator_scenario=num_name,
            denominator_scenario=den_name,
        )
    return out


def _rss_ratio(
    mode: str, scenarios: dict[str, Any], cmp: str, target: float, meaning: str
) -> dict[str, Any]:
    worst: tuple[float, float, float, str] | None = None
    reasons = []
    for command in ("rebuild", "export", "verify"):
        small = scenarios.get(f"{command}_small", {})
        large = scenarios.get(f"{command}_large", {})
        if "peak_rss_mb" not in small or "peak_rss_mb" not in large:
            reasons.append(small.get("skipped") or large.get("skipped") or f"{command}: no data")
            continue
        r = large["peak_rss_mb"] / small["peak_rss_mb"]
        if worst is None or r > worst[0]:
            worst = (r, large["peak_rss_mb"], small["peak_rss_mb"], command)
    sizes = SIZE_LABEL[mode]
    if worst is None:
        return _ratio(
            "rss", None, None, "; ".join(reasons), cmp, target, meaning, unit="MB", sizes=sizes
        )
    return _ratio(
        "rss",
        worst[1],
        worst[2],
        None,
        cmp,
        target,
        meaning,
        unit="MB",
        sizes=sizes,
        worst_of=worst[3],
        not_measured=reasons or None,
    )


def build(
    mode: str, scenarios: dict[str, Any], notes: list[str], info: dict[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {"mode": mode, **info}
    if mode != "full":
        notes = [
            *notes,
            f"{mode} run: memory compared at {SIZE_LABEL[mode]} events; "
            "`python -m bench --full` compares 100k and 1M",
        ]
    doc["notes"] = notes
    doc["ratios"] = ratios(mode, scenarios)
    doc["scenarios"] = scenarios
    return doc


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _view_table(scenarios: dict[str, Any]) -> list[str]:
    """Issue 18's table: each view's p50/p99 (16 readers, appends running) against target."""
    views = {k: v for k, v in scenarios.items() if k.startswith("view_")}
    if not views:
        return []
    lines = [
        "",
        "| view (16 readers, appends running) | p50 ms | p99 ms | req/s | p50 <= 50, p99 <= 250 |",
        "|---|---:|---:|---:|---|",
    ]
    for name, s in views.items():
        if "skipped" in s:
            lines.append(f"| {name[5:]} | | | | skipped |")
            continue
        met = s.get("meets_target")
        mark = "slow: 3 sequential requests" if s.get("slow") else ("met" if met else "**missed**")
        lines.append(
            f"| {name[5:]} | {_fmt(s.get('p50_ms'))} | {_fmt(s.get('p99_ms'))} | "
            f"{_fmt(s.get('requests_per_s'))} | {mark} |"
        )
    if first := scenarios.get("search_first_page"):
        lines += [
            "",
            "| search query (SQL, one client; as typed, and widened as the view asks) | hits "
            "| bounded ms | rank all ms | same page |",
            "|---|---:|---:|---:|---|",
        ]
        for query, r in first.items():
            lines.append(
                f"| `{query}` | {r['hits']} | {_fmt(r['bounded_ms'])} | "
                f"{_fmt(r['rank_all_ms'])} | {'yes' if r['same_first_page'] else '**no**'} |"
            )
    return lines


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"## coord benchmark, {doc['started_at']} ({doc['mode']} run, {doc.get('seconds')} s)",
        "",
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['os']}; Python {m['python']}; "
        f"PostgreSQL {m['postgresql']} (embedded); commit {m['commit']}; load average at "
        f"start {m['load_avg_at_start']}. Clients, coord and PostgreSQL share the machine.",
        "",
        "| ratio | numerator | denominator | ratio | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    for key, r in doc["ratios"].items():
        mark = {True: "met", False: "**missed**", None: r.get("reason", "")[:120]}[
            r["meets_target"]
        ]
        lines.append(
            f"| `{key}` | {_fmt(r['numerator'])} | {_fmt(r['denominator'])} | "
            f"{_fmt(r['ratio'])} | {r['target']} | {mark} |"
        )
    lines += [
        "",
        "| scenario | events/s | p50 ms | p99 ms | CPU s client / coord / PostgreSQL | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, s in doc["scenarios"].items():
        if name.startswith("seed_") or name in ("server_log", "audit_costs", "search_first_page"):
            continue
        if "skipped" in s:
            lines.append(f"| {name} | | | | | skipped: {s['skipped'][:100]} |")
            continue
        cpu = s.get("cpu_s") or {}
        cpu_text = (
            f"{_fmt(cpu.get('client'))} / {_fmt(cpu.get('server'))} / {_fmt(cpu.get('postgres'))}"
            if cpu
            else ""
        )
        note = []
        if s.get("statuses") and set(s["statuses"]) - {"200", "201"}:
            note.append(f"statuses {s['statuses']}")
        if s.get("slow"):
            note.append(f"slow: {s['requests']} sequential requests")
        if "server_rss_mb_after" in s:
            note.append(f"server RSS after {s['server_rss_mb_after']} MB")
        if "peak_rss_mb" in s:
            note.append(f"peak RSS {s['peak_rss_mb']} MB")
        if "requests_per_s" in s:
            note.append(f"{_fmt(s['requests_per_s'])} req/s")
        if s.get("first_event_ms") is not None:
            note.append(f"first event {s['first_event_ms']} ms")
        lines.append(
            f"| {name} | {_fmt(s.get('events_per_s'))} | {_fmt(s.get('p50_ms'))} | "
            f"{_fmt(s.get('p99_ms'))} | {cpu_text} | {'; '.join(note)} |"
        )
    lines += _view_table(doc["scenarios"])
    audit = doc["scenarios"].get("audit_costs", {})
    if audit.get("report"):
        lines += ["", f"Audit costs (bench/audit_costs.py, {_fmt(audit['events'])} events):", ""]
        lines += [f"    {line}" for line in audit["report"]]
    if doc.get("notes"):
        lines += ["", *[f"- {n}" for n in doc["notes"]]]
    return "\n".join(lines) + "\n"
