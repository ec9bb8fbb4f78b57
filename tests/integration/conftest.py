"""The real stack for integration tests: one Kafka broker and one chDB engine per test session,
a fresh topic prefix and database per module, a faust worker process and the API in-process."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra import stack as infra_stack
from infra.kafka import Broker, create_topics
from services.settings import Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chDB allows one engine path per process: every module shares it, each with its own database.
    return tmp_path_factory.mktemp("chdb")


settings_env = infra_stack.settings_env


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

    def wait_for(self, fn: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        return last


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    broker: Broker,
    chdb_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    # A module may set STACK_ENV: settings, by environment name, for its API and its worker.
    stack_env: dict[str, str] = getattr(request.module, "STACK_ENV", {})
    name = f"t{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp(name)
    settings = Settings(
        data_dir=data_dir,
        kafka_port=broker.port,
        kafka_controller_port=broker.controller_port,
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"{name}.",
        clickhouse_dsn=f"chdb://{chdb_path}",
        clickhouse_database=name,
        worker_web_port=free_port(),
        sink_batch_ms=200,
        secret_key="test-secret-" + uuid.uuid4().hex,
        admin_token="test-admin-" + uuid.uuid4().hex,
        # Settings both the API and the worker take from the environment (e.g. a faster clock).
        **{k.lower(): v for k, v in stack_env.items()},
    )
    create_topics(broker.bootstrap, settings.topic_prefix)
    worker = Worker(settings, data_dir / "worker.log", stack_env)
    worker.start()
    app = create_app(settings)
    with TestClient(app) as client:
        yield Stack(settings, client, worker, broker)
    worker.stop()


__all__ = ["Stack", "httpx"]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion in a thread of its own: the browser tests' Playwright
    (sync API) keeps an event loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
