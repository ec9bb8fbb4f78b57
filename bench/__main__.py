"""`python -m bench` (`make bench`): every benchmark, side by side with its baseline, one table.

Writes the table with a description of the machine to docs/benchmarks.md and the latest
figures into the README's "Benchmarks" section (full runs; `--quick` only prints). Not a test:
nothing here fails on a missed goal; the table says which goals were met.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine
from bench.stack import ROOT
from bench.stats import Row, fmt, percentile, ratio, replace_section, table
from bench.stream import StreamResult

DOC = ROOT / "docs" / "benchmarks.md"
METHOD = Path(__file__).with_name("method.md")
FINDINGS = Path(__file__).with_name("findings.md")
README = ROOT / "README.md"


def _ms(x: float) -> str:
    return f"{fmt(x, 1)} ms"


def stream_rows(r: dict[str, Any]) -> list[Row]:
    p, b = r["pipeline"], r["baseline"]
    q = ratio(p.rate, b.rate)
    same = p.check == b.check
    rows = [
        Row(
            "1. stream throughput (scans/s, Kafka → faust → sink → ClickHouse)",
            f"{fmt(p.rate)}/s ({fmt(p.seconds, 1)} s)",
            f"{fmt(b.rate)}/s ({fmt(b.seconds, 1)} s)",
            fmt(q),
            "ratio ≥ 0.8",
            q >= 0.8,
            f"{r['scans']:,} scans, {r['members']:,} members; rows in ClickHouse "
            + ("identical on both sides" if same else f"DIFFER: {p.check} vs {b.check}"),
        )
    ]
    if (p2 := r.get("pipeline_2_workers")) is not None:
        q2 = ratio(p2.rate, b.rate)
        rows.append(
            Row(
                "1b. the same, two faust worker processes (6 partitions shared)",
                f"{fmt(p2.rate)}/s ({fmt(p2.seconds, 1)} s)",
                f"{fmt(b.rate)}/s (one consumer process)",
                fmt(q2),
                "ratio ≥ 0.8",
                q2 >= 0.8,
                "rows in ClickHouse "
                + ("identical" if p2.check == b.check else f"DIFFER: {p2.check} vs {b.check}"),
            )
        )
    return rows


def api_rows(r: dict[str, Any]) -> list[Row]:
    real, bare = r["real"], r["bare"]
    q = ratio(real["wrk"]["rps"], bare["wrk"]["rps"])
    f, fb = real["fixed"], bare["fixed"]
    target = r["rate"]
    held = f["achieved_rate"] >= 0.98 * target and f["ok"] == f["sent"]
    rows = [
        Row(
            "2a. check-in API throughput (wrk, 64 connections)",
            f"{fmt(real['wrk']['rps'])}/s",
            f"{fmt(bare['wrk']['rps'])}/s (bare endpoint)",
            fmt(q),
            "ratio ≥ 0.7",
            q >= 0.7,
            f"non-2xx: {real['wrk']['non2xx']} / {bare['wrk']['non2xx']}",
        ),
        Row(
            f"2b. check-in latency at {fmt(target)}/s (open loop)",
            f"p50 {_ms(f['p50_ms'])}, p99 {_ms(f['p99_ms'])}; achieved {fmt(f['achieved_rate'])}/s",
            f"p50 {_ms(fb['p50_ms'])}, p99 {_ms(fb['p99_ms'])}; achieved {fmt(fb['achieved_rate'])}/s",
            fmt(ratio(fb["p99_ms"], f["p99_ms"])),
            "p99 < 50 ms at 1,000/s",
            f["p99_ms"] < 50 and held and target >= 1000,
            f"statuses {f['statuses']}, errors {f['errors']}, unanswered after 30 s {f.get('unfinished', 0)}",
        ),
    ]
    return rows


def edge_rows(r: dict[str, Any]) -> list[Row]:
    """Issue 16: check-ins through N edge processes on one port against the bare endpoint as N
    processes; the CPU per check-in (from /proc) is the figure the machine's load leaves alone."""
    rows = []
    for n, e in sorted(r["edges"].items(), key=lambda kv: int(kv[0])):
        b = r["bare"][n]
        rows.append(
            Row(
                f"2c. check-ins through {n} edge process{'es' if int(n) > 1 else ''} (one port)",
                f"{fmt(e['rps'])}/s; {fmt(e['cpu_us_per_request'])} µs CPU each",
                f"{fmt(b['rps'])}/s; {fmt(b['cpu_us_per_request'])} µs CPU each (bare × {n})",
                fmt(ratio(e["rps"], b["rps"])),
                "—",
                None,
                f"per core: {fmt(e['per_core_rps'])}/s (bare {fmt(b['per_core_rps'])}/s);"
                f" non-2xx {e['non2xx']} / {b['non2xx']}",
            )
        )
    for n, e in sorted(r["edges"].items(), key=lambda kv: int(kv[0])):
        f = e.get("fixed")
        if f is None:
            continue
        target = r.get("rate", f["target_rate"])
        held = f["achieved_rate"] >= 0.98 * target and f["ok"] == f["sent"]
        rows.append(
            Row(
                f"2c. check-in latency at {fmt(target)}/s through {n} edge"
                f" process{'es' if int(n) > 1 else ''} (open loop)",
                f"p50 {_ms(f['p50_ms'])}, p99 {_ms(f['p99_ms'])};"
                f" achieved {fmt(f['achieved_rate'])}/s",
                "—",
                "—",
                "p99 < 50 ms at 1,000/s",
                f["p99_ms"] < 50 and held and target >= 1000,
                f"statuses {f['statuses']}, errors {f['errors']},"
                f" unanswered after 30 s {f.get('unfinished', 0)}",
            )
        )
    return rows


def fresh_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for key, what in (("hours", "member hours"), ("weekly", "community weekly")):
        xs = r[key]
        p95 = percentile(xs, 95)
        rows.append(
            Row(
                f"3. freshness, 202 → {what} visible",
                f"p50 {fmt(percentile(xs, 50), 2)} s, p95 {fmt(p95, 2)} s",
                f"sink batch {r['sink_batch_ms']} ms",
                "—",
                "p95 < 3 s",
                p95 < 3 if xs else None,
                f"{len(xs)} scan pairs" + (f"; errors: {r['errors'][:2]}" if r["errors"] else ""),
            )
        )
    return rows


READS = (
    ("assessment_page", "assessment, first page (100 of 10,000)", 200),
    ("assessment_csv", "assessment CSV export (10,000 rows)", 500),
    ("weekly_1", "weekly, one community", 200),
    ("weekly_18", "county week, 18 communities (one request)", 500),
)


def reads_rows(r: dict[str, Any]) -> list[Row]:
    size = f"{r['sessions'] / 1e6:g} M sessions"
    rows = []
    for key, what, goal in READS:
        api_ms = r["http"][key]["median_ms"]
        naive = r["gen"]["naive_ms"][key]
        rows.append(
            Row(
                f"4. {what}, {size}",
                _ms(api_ms) + " (HTTP)",
                _ms(naive) + " (naive SQL on raw sessions)",
                fmt(ratio(naive, api_ms)),
                f"< {goal} ms",
                api_ms < goal,
                f"same read's SQL in-process: {_ms(r['gen']['rollup_ms'][key])}",
            )
        )
    if "assessment_xlsx" in r["http"]:
        xlsx_ms, csv_ms = (
            r["http"]["assessment_xlsx"]["median_ms"],
            r["http"]["assessment_csv"]["median_ms"],
        )
        rows.append(
            Row(
                f"4. assessment XLSX export (10,000 rows), {size}",
                _ms(xlsx_ms) + " (HTTP)",
                _ms(csv_ms) + " (the CSV export of the same rows)",
                fmt(ratio(csv_ms, xlsx_ms)),
                "< 500 ms",
                xlsx_ms < 500,
                "the same rows as the CSV, as an Excel workbook",
            )
        )
    rows.append(
        Row(
            f"5. memory of the API process (VmHWM), {size}",
            f"{fmt(r['vm_hwm_kb'] / 1024)} MiB",
            "—",
            "—",
            "—",
            None,
            f"{r['gen']['members']:,} members, {r['gen']['member_weeks']:,} member_weeks rows",
        )
    )
    return rows


def state_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """Benchmark 6 (bench/state.py): the worker's state at province scale."""
    rows = []
    mem = {r["members"]: r for r in runs if r["store"] == "memory"}
    for r in runs:
        if r["store"] != "rocksdb":
            continue
        m = mem.get(r["members"])
        base = f"{m['rss_after_load_mb']:,} MB (memory store)" if m else "—"
        pause = r.get("gc_pause_max_ms")
        rows.append(
            Row(
                f"6. worker state, {r['members']:,} members (RSS after {r['scans']:,} members' scans)",
                f"{r['rss_after_load_mb']:,} MB, peak {r['rss_peak_mb']:,} MB",
                base,
                "",
                "RSS < 1 GB, GC pause ≤ 100 ms",
                r["rss_peak_mb"] < 1024 and pause is not None and pause <= 100,
                f"RocksDB; recovery from the changelog {fmt(r['recovery_fresh_s'], 1)} s, "
                f"restart on its folder {fmt(r['recovery_restart_s'], 1)} s; longest GC pause "
                f"{pause} ms; {r['scans_per_s']:,} scans/s"
                + (
                    f"; memory store: recovery {fmt(m['recovery_fresh_s'], 1)} s, restart "
                    f"{fmt(m['recovery_restart_s'], 1)} s, GC pause {m.get('gc_pause_max_ms')} ms"
                    if m
                    else ""
                ),
            )
        )
    return rows


def drilldown_rows(r: dict[str, Any]) -> list[Row]:
    """Benchmark 4b (bench/drilldown.py): each drill-down against a hand-written query."""
    size = f"{r['sessions'] / 1e6:g} M sessions, {r['members']:,} members"
    rows = []
    for what, x in r["reads"].items():
        q = ratio(x["hand_ms"], x["read_ms"])
        rows.append(
            Row(
                f"4b. drill-down, {what}, {size}",
                _ms(x["read_ms"]) + " (services.reads.drilldown, in-process)",
                _ms(x["hand_ms"]) + " (one hand-written query, same data)",
                fmt(q),
                "ratio ≥ 0.5 (within 2x)",
                q >= 0.5,
                f"week {r['week']}, 8-week trend; {r['member_weeks']:,} member_weeks rows",
            )
        )
    return rows


def _drilldown(work: Path, size: int, repeat: int) -> dict[str, Any]:
    # Its own process and chDB folder (one process per folder), as the reads benchmark.
    members = max(20_000, size // 50)
    out = subprocess.run(
        [sys.executable, "-m", "bench.drilldown", "--sessions", str(size), "--members",
         str(members), "--repeat", str(repeat), "--work", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=7200, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _step(name: str, fn: Callable[[], Any], results: dict[str, Any], errors: dict[str, str]) -> Any:
    t = time.monotonic()
    print(f"[bench] {name} …", flush=True)
    try:
        out = fn()
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        print(f"[bench] {name} FAILED after {time.monotonic() - t:.0f}s", flush=True)
        return None
    results[name] = out
    print(f"[bench] {name} done in {time.monotonic() - t:.0f}s", flush=True)
    return out


def _jsonable(x: Any) -> Any:
    if hasattr(x, "__dataclass_fields__"):
        return {**{k: _jsonable(v) for k, v in vars(x).items()}, "rate": getattr(x, "rate", None)}
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items() if k != "raw"}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def render(
    machine_info: dict[str, str],
    rows: list[Row],
    args: argparse.Namespace,
    errors: dict[str, str],
    end_load: str,
) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); not part of `make test`. Each figure is measured in",
        "one run on one machine, side by side with its baseline. **ratio**: for throughput, measured ÷",
        "baseline; for latencies, baseline ÷ measured (above 1: faster than the baseline).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine_info.items()),
        f"- load average at the end: {end_load}",
        "",
        "## Results",
        "",
        table(rows),
        "",
        "## Parameters",
        "",
        f"- stream: {args.scans:,} scans of {args.members:,} members",
        f"- API: wrk {args.api_duration} s per endpoint; fixed load {args.rate:g}/s for {args.api_duration} s",
        f"- freshness: {args.fresh_samples} scan pairs, {args.fresh_concurrency} at a time",
        f"- reads: {', '.join(f'{int(n):,}' for n in args.sizes)} sessions; median of {args.repeat} after a warm-up",
        f"- worker state: {', '.join(f'{int(n):,}' for n in getattr(args, 'state_members', []))} members, {getattr(args, 'state_scans', 0):,} of them scanning",
        "",
    ]
    if errors:
        lines += ["## Failed steps", "", *(f"- {k}: {v}" for k, v in errors.items()), ""]
    # What each benchmark measures, and what profiling found: kept in bench/method.md and
    # bench/findings.md so a re-run keeps the analysis beside the new figures.
    for extra in (METHOD, FINDINGS):
        if extra.exists():
            lines += ["", extra.read_text().strip(), ""]
    return "\n".join(lines)


def _rows_of(results: dict[str, Any]) -> list[Row]:
    """The table from results as saved in results.json (plain JSON)."""
    rows: list[Row] = []
    if r := results.get("stream"):
        r = dict(r)
        for k in ("pipeline", "pipeline_2_workers", "baseline"):
            if k in r:
                d = {f: r[k][f] for f in ("events", "seconds", "publish_s", "check")}
                r[k] = StreamResult(**d)
        rows += stream_rows(r)
    if r := results.get("api"):
        rows += api_rows(r)
    if r := results.get("edges"):
        rows += edge_rows(r)
    if r := results.get("freshness"):
        rows += fresh_rows(r)
    for key in sorted((k for k in results if k.startswith("reads-")), key=lambda k: int(k[6:])):
        rows += reads_rows(results[key])
    if r := results.get("state"):
        rows += state_rows(r)
    for key in sorted(
        (k for k in results if k.startswith("drilldown-")), key=lambda k: int(k[10:])
    ):
        rows += drilldown_rows(results[key])
    return rows


def _publish(
    rows: list[Row],
    info: dict[str, str],
    args: argparse.Namespace,
    errors: dict[str, str],
    end_load: str,
    write: bool,
) -> None:
    print()
    print(table(rows))
    if not write:
        return
    DOC.write_text(render(info, rows, args, errors, end_load))
    summary = (
        f"Latest `make bench` ({info['date']}, {info['cpu']}, {info['cores']} cores, shared "
        f"machine; what each figure means, the machine, the profiles and what remains: "
        f"[docs/benchmarks.md](docs/benchmarks.md)):\n\n{table(rows)}"
    )
    # Re-read right before writing: other people edit the README too.
    README.write_text(replace_section(README.read_text(), "## Benchmarks", summary))
    print(f"[bench] wrote {DOC.relative_to(ROOT)} and the README's Benchmarks section")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--quick", action="store_true", help="small sizes, print only")
    ap.add_argument(
        "--only",
        nargs="*",
        choices=["stream", "api", "edges", "freshness", "reads", "drilldown", "state"],
    )
    ap.add_argument("--scans", type=int, default=100_000)
    ap.add_argument("--members", type=int, default=5_000)
    ap.add_argument("--api-duration", type=int, default=20)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--fresh-samples", type=int, default=100)
    ap.add_argument("--fresh-concurrency", type=int, default=5)
    ap.add_argument("--sizes", type=float, nargs="*", default=[1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=5)
    # bench/state.py: members whose state the worker holds, and how many of them scan.
    ap.add_argument("--state-members", type=float, nargs="*", default=[1e5, 1e6])
    ap.add_argument("--state-scans", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    ap.add_argument(
        "--render-only", type=Path, default=None, help="rebuild the table from a results.json"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.scans, args.members, args.api_duration = 4000, 200, 4
        args.rate, args.fresh_samples, args.fresh_concurrency = 300, 10, 2
        args.sizes, args.repeat = [2e5], 2
        args.state_members, args.state_scans = [2e4], 5000
    write = (not args.quick) if args.write is None else args.write
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any]
    errors: dict[str, str]
    if args.render_only is not None:
        saved = json.loads(args.render_only.read_text())
        results, errors, info = saved["results"], saved["errors"], saved["machine"]
        for k, v in saved["args"].items():
            setattr(args, k, v)
        _publish(_rows_of(results), info, args, errors, saved["end_load"], write)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-"))
    work.mkdir(parents=True, exist_ok=True)
    info = machine.describe()
    only = set(args.only or ["stream", "api", "edges", "freshness", "reads", "drilldown", "state"])
    results = {}
    errors = {}
    from bench import api_load, edge_load, freshness, reads, stream

    if "stream" in only:
        _step("stream", lambda: stream.run(args.scans, args.members, work), results, errors)
    if "api" in only:
        _step("api", lambda: api_load.run(work, args.api_duration, args.rate), results, errors)
    if "edges" in only:
        _step(
            "edges",
            lambda: edge_load.run(work, args.api_duration, (1, 2, 4), rate=args.rate),
            results,
            errors,
        )
    if "freshness" in only:
        _step(
            "freshness",
            lambda: freshness.run(work, args.fresh_samples, args.fresh_concurrency),
            results,
            errors,
        )
    if "reads" in only:
        for n in args.sizes:

            def one(size: int = int(n)) -> dict[str, Any]:
                return reads.run(work, size, args.repeat)

            _step(f"reads-{int(n)}", one, results, errors)
    if "drilldown" in only:
        for n in args.sizes:

            def drill(size: int = int(n)) -> dict[str, Any]:
                return _drilldown(work, size, args.repeat)

            _step(f"drilldown-{int(n)}", drill, results, errors)
    if "state" in only:
        from bench import state

        sizes = [int(n) for n in args.state_members]
        stores = ["rocksdb", "memory"]
        _step("state", lambda: state.run(sizes, stores, args.state_scans, work), results, errors)
    end_load = machine.load()
    saved_args = {
        k: getattr(args, k)
        for k in (
            "scans",
            "members",
            "api_duration",
            "rate",
            "fresh_samples",
            "fresh_concurrency",
            "sizes",
            "repeat",
            "state_members",
            "state_scans",
        )
    }
    out = work / "results.json"
    out.write_text(
        json.dumps(
            {
                "results": _jsonable(results),
                "errors": errors,
                "machine": info,
                "args": saved_args,
                "end_load": end_load,
            },
            indent=1,
            default=str,
        )
    )
    print(
        f"\n[bench] raw results: {out}; load average {info['load average at start (1/5/15 min)']} → {end_load}"
    )
    _publish(_rows_of(_jsonable(results)), info, args, errors, end_load, write)
    if not args.keep and args.work is None and not errors:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
