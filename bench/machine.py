"""A description of the machine a benchmark ran on (CPU, memory, versions, load, date)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from infra.kafka import LIBS


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else "unknown"


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _java() -> str:
    try:
        r = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (r.stderr or r.stdout).splitlines()[0].strip() if (r.stderr or r.stdout) else "unknown"


def _kafka() -> str:
    jars = sorted(LIBS.glob("kafka_2.13-*.jar"))
    return jars[0].stem.removeprefix("kafka_2.13-") if jars else "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def describe() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu(),
        "cores": str(os.cpu_count()),
        "memory": f"{_mem_gib():.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": _java(),
        "kafka": _kafka(),
        "chdb": _version("chdb"),
        "clickhouse-connect": _version("clickhouse-connect"),
        "faust-streaming": _version("faust-streaming"),
        "kafka-python": _version("kafka-python"),
        "fastapi / uvicorn": f"{_version('fastapi')} / {_version('uvicorn')}",
        "load average at start (1/5/15 min)": load(),
    }
