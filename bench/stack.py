"""A fresh stack per measurement: a broker on free ports, a fresh chDB folder, processes.

Everything binds 127.0.0.1; every wait is bounded in time. The processes are started and
stopped by the one stack helper, `infra.stack`; this module adds the benchmarks' settings.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from infra import stack as infra_stack
from infra.kafka import Broker, create_topics
from infra.stack import ROOT, free_port
from services.settings import Settings

__all__ = ["ROOT", "UNLIMITED", "Proc", "free_port", "make_settings", "start_broker"]

# The per-member and per-station check-in limits are raised for the load benchmarks (a load
# generator is not a person); everything else keeps its default.
UNLIMITED = {
    "LIMIT_CHECKINS_MEMBER_BURST": "1000000000",
    "LIMIT_CHECKINS_MEMBER_PER_MIN": "1000000000",
    "LIMIT_CHECKINS_STATION_BURST": "1000000000",
    "LIMIT_CHECKINS_STATION_PER_MIN": "1000000000",
}


def start_broker(root: Path) -> Broker:
    # Topics are created per measurement, under its own prefix (make_settings).
    return infra_stack.start_broker(root / "kafka", topic_prefix=None)


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
        # The reconciliation job (a query over the last two days of scans each minute) is a
        # production guard, not part of the paths measured against their bare baselines; the
        # drills keep it on.
        "reconcile_interval_s": 0,
    }
    base.update(over)
    s = Settings(**base)  # type: ignore[arg-type]
    create_topics(broker.bootstrap, s.topic_prefix)
    return s


def env_of(s: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return infra_stack.child_env(s, extra)


class Proc(infra_stack.Proc):
    """A child process with its log, started as it is made; stopped by its own pid only."""

    def __init__(self, name: str, cmd: list[str], env: Mapping[str, str], log: Path) -> None:
        super().__init__(name, cmd, env, log)
        self.log = log
        self.start()

    def wait_log(self, marker: bytes, timeout_s: float = 90.0) -> None:
        self.wait_until(lambda: marker in self.log_bytes(), timeout_s)


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
    p = Proc("faust worker", list(infra_stack.WORKER_ARGV), env_of(s, extra_env), log)
    p.wait_log(infra_stack.WORKER_READY)
    return p


def api(
    s: Settings,
    log: Path,
    extra_env: dict[str, str] | None = None,
    app: str = "api.main:create_app",
) -> Proc:
    """The API served by uvicorn (one worker: the embedded chDB allows one process per folder)."""
    p = Proc("api", infra_stack.api_argv(s.api_port, app), env_of(s, extra_env), log)
    p.wait_until(lambda: infra_stack.healthy(s.api_port), 120)
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
