"""A fresh stack per measurement: a broker on free ports, a fresh chDB folder, processes.

Everything binds 127.0.0.1; every wait is bounded in time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from infra.kafka import Broker, create_topics
from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# The per-member and per-station check-in limits are raised for the load benchmarks (a load
# generator is not a person); everything else keeps its default.
UNLIMITED = {
    "LIMIT_CHECKINS_MEMBER_BURST": "1000000000",
    "LIMIT_CHECKINS_MEMBER_PER_MIN": "1000000000",
    "LIMIT_CHECKINS_STATION_BURST": "1000000000",
    "LIMIT_CHECKINS_STATION_PER_MIN": "1000000000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(root: Path) -> Broker:
    b = Broker(root / "kafka", free_port(), free_port())
    b.start()
    return b


def make_settings(root: Path, broker: Broker, **over: object) -> Settings:
    name = f"b{uuid.uuid4().hex[:8]}"
    base: dict[str, object] = {
        "data_dir": root,
        "kafka_port": broker.port,
        "kafka_controller_port": broker.controller_port,
        "kafka_bootstrap": broker.bootstrap,
        "topic_prefix": f"{name}.",
        "clickhouse_dsn": f"chdb://{(root / 'clickhouse').resolve()}",
        "clickhouse_database": "volunteer",
        "worker_web_port": free_port(),
        "api_port": free_port(),
        "secret_key": "bench-secret-" + uuid.uuid4().hex,
        "admin_token": "bench-admin-" + uuid.uuid4().hex,
    }
    base.update(over)
    s = Settings(**base)  # type: ignore[arg-type]
    create_topics(broker.bootstrap, s.topic_prefix)
    return s


def env_of(s: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATA_DIR": str(s.data_dir),
        "API_PORT": str(s.api_port),
        "KAFKA_PORT": str(s.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
        "KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "TOPIC_PREFIX": s.topic_prefix,
        "SECRET_KEY": s.secret_key,
        "ADMIN_TOKEN": s.admin_token,
        "WORKER_WEB_PORT": str(s.worker_web_port),
        "CLICKHOUSE_DSN": s.clickhouse_dsn,
        "CLICKHOUSE_DATABASE": s.clickhouse_database,
        "SINK_BATCH_SIZE": str(s.sink_batch_size),
        "SINK_BATCH_MS": str(s.sink_batch_ms),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


class Proc:
    """A child process with its log; stopped by its own pid only."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_until(self, ready: Callable[[], bool], timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready within {timeout_s:.0f}s: {self.tail()}")

    def wait_log(self, marker: bytes, timeout_s: float = 90.0) -> None:
        self.wait_until(lambda: marker in self.log.read_bytes(), timeout_s)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def vm_hwm_kb(self) -> int | None:
        return vm_hwm_kb(self.pid)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._fh.close()


def vm_hwm_kb(pid: int) -> int | None:
    """Peak resident memory (VmHWM) of a live process, in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def worker(s: Settings, log: Path, extra_env: dict[str, str] | None = None) -> Proc:
    p = Proc(
        "faust worker",
        [sys.executable, "-m", "streams", "worker", "-l", "info"],
        env_of(s, extra_env),
        log,
    )
    p.wait_log(b"Worker]: Ready")
    return p


def api(
    s: Settings,
    log: Path,
    extra_env: dict[str, str] | None = None,
    app: str = "api.main:create_app",
) -> Proc:
    """The API served by uvicorn (one worker: the embedded chDB allows one process per folder)."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(s.api_port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    p = Proc("api", cmd, env_of(s, extra_env), log)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{s.api_port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    p.wait_until(up, 120)
    return p


def migrate(s: Settings, log: Path) -> None:
    with log.open("ab") as fh:
        subprocess.run(
            [sys.executable, "-m", "services.warehouse.migrate"],
            cwd=ROOT,
            env=env_of(s),
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )
