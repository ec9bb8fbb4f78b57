"""One drill's real stack: a broker on free ports, a fresh chDB folder, the API (with its
embedded sink) served by uvicorn in a subprocess, faust worker process(es), all started and
stopped by the one stack helper (infra.stack); and the senders that drive the planned scans
(kafka-python straight onto `checkins`, httpx through the API with the phone's retries)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.drills.workload import PlannedScan
from infra import stack as infra_stack
from infra.kafka import Broker
from infra.stack import Proc, free_port
from services.events import CheckinScanned, derived_id, utcnow
from services.settings import Settings
from services.tokens import issue_bearer, sign_station
from services.topics import CHECKINS, MEMBER_WEEKS, SESSIONS, STREAMS_APP_ID

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
FAUST_GROUP = STREAMS_APP_ID
SINK_GROUP = "clickhouse-sink"


__all__ = ["FAUST_GROUP", "SINK_GROUP", "DrillStack", "Proc", "Registry", "SendStats"]


@dataclass
class Registry:
    unit_id: str
    community_id: str
    station_ids: list[str]
    member_ids: list[str]


@dataclass
class SendStats:
    sent: int = 0
    acked: int = 0
    retries: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    done: bool = False
    # client_event_ids of the acknowledged scans (the rest were never accepted)
    acked_ids: set[str] = field(default_factory=set)
    # set by the drill when the stream stalled: the sender stops where it is
    cancel: bool = False


class DrillStack:
    def __init__(self, root: Path, log: Any) -> None:
        self.root = root
        self.log = log
        root.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(root / "kafka", free_port(), free_port())
        self.api_port = free_port()
        self.settings = Settings(
            data_dir=root,
            kafka_port=self.broker.port,
            kafka_controller_port=self.broker.controller_port,
            clickhouse_dsn=f"chdb://{(root / 'clickhouse').resolve()}",
            clickhouse_database="drill",
            api_port=self.api_port,
            secret_key="drill-secret-" + uuid.uuid4().hex,
            admin_token="drill-admin-" + uuid.uuid4().hex,
        )
        s = self.settings
        self.env = {
            **os.environ,
            "DATA_DIR": str(root),
            "KAFKA_PORT": str(s.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
            "KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "TOPIC_PREFIX": "",
            "CLICKHOUSE_DSN": s.clickhouse_dsn,
            "CLICKHOUSE_DATABASE": s.clickhouse_database,
            "API_PORT": str(self.api_port),
            "SECRET_KEY": s.secret_key,
            "ADMIN_TOKEN": s.admin_token,
            # The drill is one county's load through one process: the per-process anti-abuse
            # limits are for phones, not for a load generator.
            "LIMIT_CHECKINS_MEMBER_BURST": "1000000",
            "LIMIT_CHECKINS_STATION_BURST": "1000000",
            "LIMIT_CHECKINS_STATION_PER_MIN": "10000000",
            "LIMIT_CHECKINS_MEMBER_PER_MIN": "10000000",
        }
        for k in [k for k in self.env if k.startswith("SINK_FAULT_")]:
            del self.env[k]
        self.api: Proc | None = None
        self.workers: list[Proc] = []
        # Held while a worker is started, stopped or supervised: the storm (drill g) changes
        # the group from a thread of its own, and a process must never be started twice.
        self.lock = threading.RLock()

    # ---- processes -------------------------------------------------------------------------

    def start_broker(self) -> None:
        infra_stack.start_broker(self.broker, "")

    def start_api(self, extra_env: dict[str, str] | None = None) -> Proc:
        # The API only checks the schema: the migrate step first (issue 13).
        from services.warehouse.migrate import run_in_child

        run_in_child(self.env)
        self.api = Proc(
            "api",
            [PY, "-m", "api"],
            {**self.env, **(extra_env or {})},
            self.root / "api.log",
        )
        self.api.start()
        self.wait_api()
        return self.api

    def restart_api(self) -> None:
        """The API again, without any fault hook (the fault is over)."""
        assert self.api is not None
        restarts = self.api.restarts + 1
        self.api.env = {k: v for k, v in self.api.env.items() if not k.startswith("SINK_FAULT_")}
        self.api.start()
        self.api.restarts = restarts
        self.wait_api()

    def arm_api(self, fault_env: dict[str, str]) -> None:
        """Stops the API gracefully (its sink commits what it wrote) and starts it again with
        the fault hooks set, before any scan is sent: the hooks count the sink's inserts from
        the start of the stream, not from the registry's setup (not counted as a restart)."""
        assert self.api is not None
        self.api.stop()
        self.api.env = {**self.api.env, **fault_env}
        self.api.start()
        self.wait_api()

    def wait_api(self, timeout: float = 90.0) -> None:
        """Until /healthz answers (503 too: an API that is up while Kafka or ClickHouse is
        not, as during drill c)."""
        assert self.api is not None
        self.api.wait_until(lambda: infra_stack.healthy(self.api_port, (200, 503)), timeout)

    def new_worker(self) -> Proc:
        """The next worker (its own folder and web port), added to the group's list, not started."""
        n = len(self.workers) + 1
        wdir = self.root / f"worker{n}"
        wdir.mkdir(exist_ok=True)
        env = {**self.env, "WORKER_WEB_PORT": str(free_port()), "DATA_DIR": str(wdir)}
        w = infra_stack.worker_proc(f"worker{n}", env, wdir / "log")
        self.workers.append(w)
        return w

    def start_worker(self) -> Proc:
        with self.lock:
            w = self.new_worker()
            self.launch_worker(w)
        return w

    def launch_worker(self, w: Proc, timeout: float = 90.0) -> None:
        infra_stack.start_worker(w, timeout)

    def worker_checkins(self, w: Proc) -> str | None:
        """The `checkins` partitions faust last assigned to the worker, from its log (its
        /metrics page would count its scans, but answers 500 under aiohttp 3.14)."""
        if not w.log_path.exists():
            return None
        text = w.log_path.read_text(errors="replace")
        at = text.rfind("Setting newly assigned partitions")
        if at < 0:
            return None
        for line in text[at:].splitlines()[1:20]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 2 and cells[0] == CHECKINS.name:
                return cells[1]
        return "none"

    def supervise(self) -> list[str]:
        """Restarts a process that died on its own (as systemd or Kubernetes would)."""
        notes = []
        if self.api is not None and not self.api.alive and not self.api.expected_exit:
            notes.append(f"api exited ({self.api.popen.returncode if self.api.popen else '?'})")
            self.restart_api()
        with self.lock:
            for w in self.workers:
                if w.popen is not None and not w.alive and not w.expected_exit:
                    notes.append(f"{w.name} exited ({w.popen.returncode}), restarted")
                    w.restarts += 1
                    # Not waited for: it joins the group when it is ready, and the drill's
                    # loop (and drill g's storm, which needs this lock) goes on meanwhile.
                    w.start()
        return notes

    def stop_all(self) -> None:
        if self.api is not None:
            self.api.stop()
        for w in self.workers:
            w.stop()
        self.broker.stop()

    # ---- registry --------------------------------------------------------------------------

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def set_up_registry(self, members: int, stations: int) -> Registry:
        base = f"http://127.0.0.1:{self.api_port}"
        with httpx.Client(base_url=base, headers=self.admin(), timeout=120) as c:

            def post(path: str, body: dict[str, Any]) -> Any:
                r = c.post(path, json=body)
                if r.status_code != 201:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:500]}")
                return r.json()

            unit = post("/v1/units", {"name": "演练单位"})
            community = post("/v1/communities", {"name": "演练社区"})
            st = post(
                "/v1/stations/bulk",
                {
                    "items": [
                        {
                            "community_id": community["id"],
                            "name": f"演练服务站{i}",
                            "kind": "service_station",
                        }
                        for i in range(stations)
                    ]
                },
            )["items"]
            ids: list[str] = []
            for start in range(0, members, 5000):
                items = [
                    {"name": f"队员{i}", "unit_id": unit["id"], "community_id": community["id"]}
                    for i in range(start, min(members, start + 5000))
                ]
                ids += [m["id"] for m in post("/v1/members/bulk", {"items": items})["items"]]
        return Registry(unit["id"], community["id"], [s["id"] for s in st], ids)

    # ---- senders ---------------------------------------------------------------------------

    def event(self, reg: Registry, s: PlannedScan) -> CheckinScanned:
        return CheckinScanned(
            event_id=derived_id("checkin", s.member_id, s.client_event_id),
            occurred_at=s.at,
            member_id=s.member_id,
            station_id=s.station_id,
            station_community_id=reg.community_id,
            unit_id=reg.unit_id,
            member_community_id=reg.community_id,
            action=s.action,
            client_event_id=s.client_event_id,
            received_at=utcnow(),
        )

    def send_kafka(
        self, reg: Registry, scans: list[PlannedScan], rate: float, stats: SendStats
    ) -> threading.Thread:
        """Publishes at `rate` scans/s with acks=all, in flush rounds of about 0.2 s of scans,
        so acknowledgements (and the drills' faults, which fire on them) come progressively. A
        scan whose send failed (broker down) goes back to the head of the queue and is sent
        again, same event id, until acknowledged (bounded: 10 minutes past the planned end).
        After a stall the sender catches up with its schedule, as phones flush what they
        buffered."""

        def run() -> None:
            p = KafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                api_version=(3, 9),
                max_block_ms=5000,
                request_timeout_ms=5000,
                delivery_timeout_ms=30000,
                reconnect_backoff_max_ms=1000,
            )
            topic = self.settings.topic(CHECKINS.name)
            queue = deque(scans)
            per_round = max(50, int(rate * 0.2))
            t0 = time.monotonic()
            deadline = t0 + len(scans) / rate + 600
            try:
                while queue and time.monotonic() < deadline and not stats.cancel:
                    futures: list[tuple[PlannedScan, Any]] = []
                    while queue and len(futures) < per_round:
                        s = queue.popleft()
                        # Pacing: never ahead of `rate`.
                        ahead = stats.sent / rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                        try:
                            f = p.send(
                                topic,
                                key=s.member_id.encode(),
                                value=self.event(reg, s).to_bytes(),
                            )
                            futures.append((s, f))
                        except Exception:
                            futures.append((s, None))
                        stats.sent += 1
                    with contextlib.suppress(Exception):
                        p.flush(timeout=60)
                    again = []
                    for s, f in futures:
                        try:
                            if f is None:
                                raise RuntimeError("not sent")
                            f.get(timeout=1)
                            stats.acked += 1
                            stats.acked_ids.add(s.client_event_id)
                        except Exception:
                            again.append(s)
                    if again:
                        stats.retries += len(again)
                        self.log(f"kafka sender: re-sending {len(again)} unacknowledged scans")
                        queue.extendleft(reversed(again))
                        time.sleep(2)
            finally:
                p.close(timeout=5)
                stats.done = True

        t = threading.Thread(target=run, name="kafka-sender", daemon=True)
        t.start()
        return t

    def send_http(
        self,
        scans: list[PlannedScan],
        stats: SendStats,
        rate: float | None = None,
        concurrency: int = 16,
    ) -> threading.Thread:
        """Through the API, as phones: at most `rate` scans/s started (None: as fast as
        `concurrency` allows); on a connection error or 503, the same client_event_id again
        after a pause (bounded: 10 minutes per scan)."""
        tokens: dict[str, str] = {}
        for s in scans:
            if s.member_id not in tokens:
                tokens[s.member_id] = issue_bearer(self.settings, "member", s.member_id)
        station_tokens = {s.station_id: sign_station(self.settings, s.station_id) for s in scans}

        async def one(c: httpx.AsyncClient, s: PlannedScan) -> None:
            body = {
                "station_token": station_tokens[s.station_id],
                "action": s.action,
                "client_event_id": s.client_event_id,
                "scanned_at": s.at.isoformat(),
            }
            headers = {"Authorization": f"Bearer {tokens[s.member_id]}"}
            deadline = time.monotonic() + 600
            stats.sent += 1
            while time.monotonic() < deadline and not stats.cancel:
                try:
                    r = await c.post("/v1/checkins", json=body, headers=headers)
                    if r.status_code == 202:
                        stats.acked += 1
                        stats.acked_ids.add(s.client_event_id)
                        return
                    if r.status_code not in (503, 429, 500):
                        code = r.json().get("error", {}).get("code", str(r.status_code))
                        stats.refused[code] = stats.refused.get(code, 0) + 1
                        return
                except httpx.HTTPError:
                    pass
                stats.retries += 1
                await asyncio.sleep(0.5)
            if stats.cancel:
                return
            stats.refused["gave_up"] = stats.refused.get("gave_up", 0) + 1

        async def main() -> None:
            queue: asyncio.Queue[PlannedScan] = asyncio.Queue()
            for s in scans:
                queue.put_nowait(s)
            started = 0
            t0 = time.monotonic()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.api_port}", timeout=10
            ) as c:

                async def worker() -> None:
                    nonlocal started
                    while not queue.empty() and not stats.cancel:
                        s = queue.get_nowait()
                        if rate:
                            ahead = started / rate - (time.monotonic() - t0)
                            started += 1
                            if ahead > 0:
                                await asyncio.sleep(ahead)
                        await one(c, s)

                await asyncio.gather(*(worker() for _ in range(concurrency)))

        def run() -> None:
            try:
                asyncio.run(main())
            finally:
                stats.done = True

        t = threading.Thread(target=run, name="http-sender", daemon=True)
        t.start()
        return t

    # ---- progress --------------------------------------------------------------------------

    def offsets(self) -> dict[str, tuple[int, int]] | None:
        """(end offset, committed offset) summed over partitions, per `group:topic`: the
        worker's group on `checkins` and the sink's on what it loads; None while the broker
        does not answer."""
        out: dict[str, tuple[int, int]] = {}
        for group, specs in (
            (FAUST_GROUP, (CHECKINS,)),
            (SINK_GROUP, (CHECKINS, SESSIONS, MEMBER_WEEKS)),
        ):
            try:
                c = KafkaConsumer(
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    group_id=group,
                    enable_auto_commit=False,
                    api_version=(3, 9),
                    request_timeout_ms=5000,
                )
            except Exception as exc:
                self.log(f"lag not measured: {exc!r}")
                return None
            try:
                for spec in specs:
                    parts = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
                    ends = c.end_offsets(parts)
                    done = {tp: min(ends[tp], c.committed(tp) or 0) for tp in parts}
                    out[f"{group}:{spec.name}"] = (
                        sum(ends.values()),
                        sum(done.values()),
                    )
            except Exception as exc:
                self.log(f"lag not measured: {exc!r}")
                return None
            finally:
                c.close()
        return out

    def lags(self) -> dict[str, int] | None:
        """Lag per `group:topic` (see offsets); None while the broker does not answer."""
        offs = self.offsets()
        if offs is None:
            return None
        return {k: end - done for k, (end, done) in offs.items()}

    def reconcile_counts(self, members: list[str] | None = None) -> dict[str, Any]:
        """Counted seconds per member, read by a separate process (chDB: one per folder); with
        `members`, their raw scans and sessions too (`details`)."""
        res = subprocess.run(
            [PY, "-m", "bench.drills.reconcile", "--members", ",".join(members or [])],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if res.returncode != 0:
            raise RuntimeError(f"reconcile failed: {res.stderr[-3000:]}")
        out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        return out
