"""Benchmark 2: check-ins per second through `POST /v1/checkins` (acks=all) vs a bare endpoint.

Both are served by uvicorn in a subprocess with one worker (the embedded chDB allows one
process per data folder, so the real API cannot have more). The real API runs as deployed in
the embedded mode: with its sink thread loading the accepted scans into chDB.

- throughput: `wrk` (closed loop, bench/checkins.lua: a unique client_event_id per request,
  2,000 member tokens) against each, the same threads, connections and duration;
- latency at a fixed load: bench.loadgen, open loop at a constant rate in its own process.

The per-member and per-station check-in rate limits are raised for this benchmark (see
bench.stack.UNLIMITED): a load generator is not a person.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import county, stack
from services.settings import Settings

LUA = Path(__file__).with_name("checkins.lua")


def wrk(
    port: int, tokens: Path, stations: Path, duration: int, connections: int, threads: int
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it with apt-get)")
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
            "--",
            str(tokens),
            str(stations),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps,
        "requests": int(total.group(1)) if total else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "raw": out,
    }


def loadgen(
    port: int, tokens: Path, stations: Path, rate: float, duration: float
) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--port",
            str(port),
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            "--connections",
            "64",
            "--tokens",
            str(tokens),
            "--stations",
            str(stations),
        ],
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.loadgen failed: {out.stderr[-2000:]}")
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def _measure(
    s: Settings, proc: stack.Proc, tokens: Path, stations: Path, duration: int, rate: float
) -> dict[str, Any]:
    # Warm-up: registry caches, the producer's metadata, uvicorn's first connections.
    wrk(s.api_port, tokens, stations, 3, 16, 1)
    thr = wrk(s.api_port, tokens, stations, duration, 64, 1)
    time.sleep(2)
    lat = loadgen(s.api_port, tokens, stations, rate, duration)
    return {"wrk": thr, "fixed": lat, "vm_hwm_kb": proc.vm_hwm_kb()}


def run(
    work: Path, duration: int = 10, rate: float = 1000, n_members: int = 2000
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="api-", dir=work))
    broker = stack.start_broker(root)
    procs: list[stack.Proc] = []
    try:
        s = stack.make_settings(root, broker)
        # The API only checks the schema: the migrate step comes first (issue 13).
        stack.migrate(s, root / "migrate.log")
        real = stack.api(s, root / "api.log", stack.UNLIMITED)
        procs.append(real)
        reg = county.create(s, n_members)
        tokens = root / "tokens.txt"
        tokens.write_text("\n".join(county.member_token(s, m) for m in reg.members) + "\n")
        stations = root / "stations.txt"
        stations.write_text("\n".join(reg.station_tokens()) + "\n")
        real_res = _measure(s, real, tokens, stations, duration, rate)
        real.stop()
        procs.clear()
        bare = stack.api(s, root / "bare.log", app="bench.bare_api:create_app")
        procs.append(bare)
        bare_res = _measure(s, bare, tokens, stations, duration, rate)
        bare.stop()
        procs.clear()
        return {"real": real_res, "bare": bare_res, "rate": rate, "duration": duration}
    finally:
        for p in procs:
            p.stop()
        broker.stop()
