"""Benchmarks 4 and 5: reads at 1 M and 10 M stored sessions, and the API process's memory.

Per size: a fresh chDB folder filled by bench.gen_reads (which also times the naive baselines
over raw `sessions` and the API's own rollup queries in-process), then the API (uvicorn, one
worker, embedded sink) on that folder, timed over HTTP: the first page of the annual
assessment of the 10,000-member unit, its CSV export (every member, streamed), one community's
weekly figures and the whole county's week (all 18 communities in the one request a county view
makes, `GET /v1/weekly/communities`). Also, not in the table: the weekly reads of the
organizer's dashboard page as it loads them (the week with its not-yet-served list, and the
8-week trend from the county endpoint) and, for comparison, the county as 18 per-community
requests in sequence (how it was read before the county endpoint). Each figure is the median of
`repeat` runs after one warm-up. Memory is VmHWM of the API process after all of them.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import stack
from bench.gen_reads import BIG_UNIT
from services.tokens import issue_bearer


def _time(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    t = time.perf_counter()
    fn()
    first = (time.perf_counter() - t) * 1000
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return {"first_ms": first, "median_ms": statistics.median(xs), "max_ms": max(xs)}


def trend_weeks(week: str, n: int) -> list[str]:
    """The `n` ISO weeks ending with `week`, oldest first (the dashboard's trend)."""
    year, number = week.split("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return [iso_week_of(monday - timedelta(weeks=i)) for i in range(n - 1, -1, -1)]


def iso_week_of(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def run(work: Path, n_sessions: int, repeat: int = 5) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"reads-{n_sessions}-", dir=work))
    broker = stack.start_broker(root)
    api: stack.Proc | None = None
    try:
        s = stack.make_settings(root, broker)
        with (root / "gen.log").open("ab") as fh:
            gen = subprocess.run(
                [sys.executable, "-m", "bench.gen_reads", "--sessions", str(n_sessions)],
                cwd=stack.ROOT,
                env=stack.env_of(s),
                stdout=subprocess.PIPE,
                stderr=fh,
                text=True,
                timeout=3600,
                check=True,
            )
        baseline: dict[str, Any] = json.loads(gen.stdout.strip().splitlines()[-1])
        api = stack.api(s, root / "api.log")
        admin = {"Authorization": f"Bearer {s.admin_token}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{s.api_port}", headers=admin, timeout=300
        ) as c:

            def get(path: str, **params: str) -> httpx.Response:
                r = c.get(path, params=params)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
                return r

            page = get(f"/v1/units/{BIG_UNIT}/assessments").json()
            csv_lines = get(f"/v1/units/{BIG_UNIT}/assessments", format="csv").text.count("\n")
            communities = [f"c{i:02d}" for i in range(18)]
            county = get("/v1/weekly/communities").json()
            week = county["week"]
            trend = trend_weeks(week, 8)

            def org_page() -> None:
                # dashboard.js: the week (KPIs, not-yet-served), then one trend point a week.
                get("/v1/communities/c00/weekly", week=week)
                for w in trend:
                    get("/v1/weekly/communities", week=w)

            http = {
                "assessment_page": _time(
                    lambda: get(f"/v1/units/{BIG_UNIT}/assessments") and None, repeat
                ),
                "assessment_csv": _time(
                    lambda: get(f"/v1/units/{BIG_UNIT}/assessments", format="csv") and None, repeat
                ),
                "assessment_xlsx": _time(
                    lambda: get(f"/v1/units/{BIG_UNIT}/assessments", format="xlsx") and None,
                    repeat,
                ),
                "weekly_1": _time(lambda: get("/v1/communities/c00/weekly") and None, repeat),
                "weekly_18": _time(lambda: get("/v1/weekly/communities") and None, repeat),
                "weekly_18_one_by_one": _time(
                    lambda: [get(f"/v1/communities/{cid}/weekly") for cid in communities] and None,
                    repeat,
                ),
            }
            # Timed as an organizer: the county endpoint answers their own community only.
            c.headers["Authorization"] = "Bearer " + issue_bearer(s, "organizer", "c00")
            http["organizer_page_weekly"] = _time(org_page, repeat)
        return {
            "sessions": n_sessions,
            "gen": baseline,
            "http": http,
            "assessment_total": page["total"],
            "csv_lines": csv_lines,
            "county_communities": county["total"],
            "vm_hwm_kb": api.vm_hwm_kb(),
        }
    finally:
        if api is not None:
            api.stop()
        broker.stop()
