"""The real stack of the integration tests: a faust worker in its own process and the `Stack`
handle the `stack` fixture (tests/integration/conftest.py) gives each test module."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

from infra import stack as infra_stack
from infra.kafka import Broker
from services import topics
from services.consumer_lag import LagProbe, groups
from services.events import CheckinScanned, derived_id
from services.settings import Settings
from services.station_codes import current_window, sign_window
from services.tokens import sign_station
from services.topics import (
    ACTIVITY_COMMANDS,
    CHECKINS,
    LIST_COMMANDS,
    SESSION_CLOCK,
    SESSION_REVIEWS,
    TopicSpec,
)

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


settings_env = infra_stack.settings_env

# What the worker's agents read (tests/unit/test_streams_topics.py holds this to the agents):
# a topic the worker never committed on is still to be read in full.
WORKER_INPUTS: tuple[TopicSpec, ...] = (
    CHECKINS,
    SESSION_REVIEWS,
    SESSION_CLOCK,
    LIST_COMMANDS,
    ACTIVITY_COMMANDS,
)


class Worker:
    """A faust worker in its own process, as in production (started by infra.stack)."""

    def __init__(
        self, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: infra_stack.Proc | None = None

    def start(self) -> None:
        """Starts the worker and waits until *this* process is ready (a restart appends to the
        same log)."""
        env = infra_stack.child_env(self.settings, self.extra_env)
        proc = infra_stack.worker_proc("worker", env, self.log_path)
        self.proc = infra_stack.start_worker(proc, timeout_s=60)

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            self.proc.stop(kill=kill)
        self.proc = None


@dataclass
class Stack:
    settings: Settings
    client: TestClient
    worker: Worker
    broker: Broker

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def token(self, role: str, subject_id: str) -> dict[str, str]:
        r = self.client.post(
            "/v1/auth/tokens", json={"role": role, "subject_id": subject_id}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(path, json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def settled(self, timeout: float = 60.0) -> bool:
        """Waits until everything published so far is in ClickHouse: the worker's group has
        committed all its inputs (faust flushes its producer before it commits, so its results
        are on their topics), and then the sink's group every topic it loads (the sink commits
        only after ClickHouse acknowledged the insert). For a test that reads the figures of
        several tables: the sink writes each topic in its own batches, so one table's figure
        says nothing of another's. What timers make is not waited for: the session clock's
        ticks (left out: they come every SESSION_TICK_S, so its lag is seldom 0) and the jobs
        beside the sink."""
        wanted = groups(self.settings)
        group, topics = wanted["worker"]
        inputs = {self.settings.topic(t.name) for t in WORKER_INPUTS}
        worker = {"worker": (group, sorted({*topics, *inputs}))}
        sink = {"sink": wanted["sink"]}
        ticks = [self.settings.topic(SESSION_CLOCK.name)]
        probe = LagProbe(self.settings)
        try:
            # The worker's lag first: what it produced before its commit is then on the sink's
            # topics when the sink's lag is measured.
            return bool(
                self.wait_for(
                    lambda: (
                        probe.measure(worker, skip=ticks)["worker"] == 0
                        and probe.measure(sink)["sink"] == 0
                    ),
                    timeout=timeout,
                )
            )
        finally:
            probe.close()

    def wait_for(self, fn: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        return last


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion in a thread of its own: the browser tests' Playwright
    (sync API) keeps an event loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def scan_token(settings: Settings, station_id: str, at: datetime) -> str:
    """The token a phone holds for a scan it made at `at`: for a past moment the station
    screen's rotating code of that moment, which proves the time (a queued past scan made with
    the poster would be a back-dated poster scan, flagged for review: tests of other rules
    leave that out); for now or later the poster's (a screen shows no code of the future)."""
    if at.timestamp() < time.time() - settings.station_code_window_s:
        return sign_window(settings, station_id, current_window(settings, at.timestamp()))
    return sign_station(settings, station_id)


def api_scan(
    stack: Stack,
    member_id: str,
    station_id: str,
    action: str,
    when: datetime,
    token: str | None = None,
) -> str:
    """A member's phone scan through `POST /v1/checkins`, made at `when`; its event id. With the
    station poster's token unless `token` is given (`scan_token` for a past moment's screen
    code, which proves the time)."""
    body = {
        "station_token": token or sign_station(stack.settings, station_id),
        "action": action,
        "client_event_id": str(uuid.uuid4()),
        "scanned_at": when.isoformat(),
    }
    r = stack.client.post("/v1/checkins", json=body, headers=stack.token("member", member_id))
    assert r.status_code == 202, r.text
    return str(r.json()["event_id"])


def log_scan(
    stack: Stack, member: Mapping[str, Any], station: Mapping[str, Any], action: str, when: datetime
) -> str:
    """A member's scan straight onto the log, as the API writes it (for moments the API no longer
    takes), from the member's and the station's records as the registry returned them; its
    event id."""
    client_id = str(uuid.uuid4())
    event = CheckinScanned(
        event_id=derived_id("checkin", member["id"], client_id),
        occurred_at=when,
        member_id=member["id"],
        station_id=station["id"],
        station_community_id=station["community_id"],
        unit_id=member["unit_id"],
        member_community_id=member["community_id"],
        action=action,  # type: ignore[arg-type]
        client_event_id=client_id,
        received_at=datetime.now(UTC),
    )
    publisher = stack.client.app.state.ctx.publisher  # type: ignore[attr-defined]
    publisher.send_sync(topics.CHECKINS, member["id"], event)
    return event.event_id
