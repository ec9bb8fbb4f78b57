"""The real stack for integration tests: one Kafka broker and one chDB engine per test session,
a fresh topic prefix and database per module, a faust worker process and the API in-process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
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
from infra.kafka import Broker, create_topics
from services.settings import Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chDB allows one engine path per process: every module shares it, each with its own database.
    return tmp_path_factory.mktemp("chdb")


def settings_env(s: Settings) -> dict[str, str]:
    return {
        "DATA_DIR": str(s.data_dir),
        "KAFKA_PORT": str(s.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
        "KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "TOPIC_PREFIX": s.topic_prefix,
        "SECRET_KEY": s.secret_key,
        "ADMIN_TOKEN": s.admin_token,
        "WORKER_WEB_PORT": str(s.worker_web_port),
        "CLICKHOUSE_DSN": s.clickhouse_dsn,
        "CLICKHOUSE_DATABASE": s.clickhouse_database,
    }


class Worker:
    """A faust worker in its own process, as in production."""

    def __init__(
        self, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **settings_env(self.settings), **self.extra_env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if b"Worker]: Ready" in self.log_path.read_bytes():
                return
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
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
    # The migrate step, as `make run` and docker-compose run it: the API only checks the schema.
    from services.warehouse.migrate import run as migrate_schema

    migrate_schema(settings)
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
