"""Benchmark 3: from a check-out's 202 to the hours visible through the API.

A fresh stack: broker, faust worker, the API (uvicorn, embedded sink). Each sample is one new
member's check-in (scanned 30 minutes earlier) and check-out; the clock starts at the
check-out's 202 and stops, separately, when `GET /v1/members/{id}/hours` shows the half hour
and when `GET /v1/communities/{id}/weekly` shows it in the community's hours. A few samples
run concurrently, each thread in its own community, so the weekly total it waits for is known.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import county, stack
from services.events import utcnow
from services.settings import Settings

POLL_S = 0.05


def _sample(
    c: httpx.Client, s: Settings, member: str, station: str, community: str, expect_h: float
) -> tuple[float, float]:
    h = {"Authorization": f"Bearer {county.member_token(s, member)}"}
    admin = {"Authorization": f"Bearer {s.admin_token}"}
    now = utcnow()
    for action, at in (("in", now - timedelta(minutes=30)), ("out", now)):
        r = c.post(
            "/v1/checkins",
            json={
                "station_token": station,
                "action": action,
                "client_event_id": str(uuid.uuid4()),
                "scanned_at": at.isoformat(),
            },
            headers=h,
        )
        if r.status_code != 202:
            raise RuntimeError(f"check-in refused: {r.status_code} {r.text}")
    t0 = time.monotonic()
    hours_at = weekly_at = None
    deadline = t0 + 60
    while (hours_at is None or weekly_at is None) and time.monotonic() < deadline:
        if hours_at is None:
            r = c.get(f"/v1/members/{member}/hours", headers=admin)
            if r.status_code == 200 and r.json()["hours"] >= 0.5:
                hours_at = time.monotonic() - t0
        if weekly_at is None:
            r = c.get(f"/v1/communities/{community}/weekly", headers=admin)
            if r.status_code == 200 and r.json()["hours"] >= expect_h - 1e-6:
                weekly_at = time.monotonic() - t0
        time.sleep(POLL_S)
    if hours_at is None or weekly_at is None:
        raise RuntimeError(f"member {member}: hours not visible within 60 s")
    return hours_at, weekly_at


def run(
    work: Path,
    samples: int = 100,
    concurrency: int = 5,
    settings_over: dict[str, Any] | None = None,
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fresh-", dir=work))
    broker = stack.start_broker(root)
    procs: list[stack.Proc] = []
    try:
        s = stack.make_settings(root, broker, **(settings_over or {}))
        # The API only checks the schema: the migrate step comes first (issue 13).
        stack.migrate(s, root / "migrate.log")
        procs.append(stack.worker(s, root / "worker.log"))
        api = stack.api(s, root / "api.log", stack.UNLIMITED)
        procs.append(api)
        reg = county.create(s, samples, n_communities=concurrency, stations_per=1)
        by_comm: dict[str, list[str]] = {}
        for m, cid in reg.members.items():
            by_comm.setdefault(cid, []).append(m)
        hours: list[float] = []
        weekly: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def worker(cid: str, members: list[str]) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{s.api_port}", timeout=30) as c:
                for k, m in enumerate(members):
                    try:
                        a, b = _sample(c, s, m, reg.stations[cid][0], cid, 0.5 * (k + 1))
                    except Exception as exc:
                        with lock:
                            errors.append(str(exc))
                        return
                    with lock:
                        hours.append(a)
                        weekly.append(b)

        threads = [threading.Thread(target=worker, args=kv) for kv in by_comm.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        return {
            "hours": hours,
            "weekly": weekly,
            "errors": errors,
            "vm_hwm_kb": api.vm_hwm_kb(),
            "sink_batch_ms": s.sink_batch_ms,
        }
    finally:
        for p in reversed(procs):
            p.stop()
        broker.stop()
