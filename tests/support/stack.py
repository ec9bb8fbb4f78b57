"""The real stack of the integration tests: a faust worker in its own process and the `Stack`
handle the `stack` fixture (tests/integration/conftest.py) gives each test module."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

from infra.kafka import Broker
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


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


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion in a thread of its own: the browser tests' Playwright
    (sync API) keeps an event loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
