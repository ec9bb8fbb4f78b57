"""Benchmark 2c (issue 16): check-ins per second through 1, 2 and 4 check-in edge processes on one
port, against the bare endpoint run as the same number of processes.

The stack: a broker, the reads process (the real API on its embedded chDB, with its sink: it
loads every accepted scan, as deployed), and N edges (`python -m api.edge`, SO_REUSEPORT) on a
port of their own passing everything else to it. The bare endpoint (bench/bare_api.py: the
same validation, no Kafka) is served as N uvicorn processes on one port (`--workers N`); the
ratio is edges / bare at the same N, and per process (each edge's share against one bare
process). For the choice of SO_REUSEPORT over uvicorn's workers, the edges are also measured as
`uvicorn --workers N` (`edge_workers`).

With 1 and 2 edges (`--latency-edges`) the latency at a fixed 1,000 check-ins/s (`--rate`, open
loop: bench.loadgen, as section 2b measures the whole API) is measured too.

`python -m bench.edge_load [--duration 10] [--edges 1,2,4] [--members 2000]` prints JSON; the
figures land in docs/benchmarks.md. On a quiet machine: `python -m bench.edge_load --duration 20`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import county, stack
from bench.api_load import loadgen, wrk
from infra import stack as infra_stack


def _uvicorn(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _tree(pids: list[int]) -> set[int]:
    """The pids and their descendants (uvicorn's workers are its master's children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(pids), list(pids)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _cpu_s(pids: set[int]) -> float:
    """User + system CPU seconds of the processes so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _throughput(
    port: int, tokens: Path, stations: Path, duration: int, pids: list[int]
) -> dict[str, Any]:
    wrk(port, tokens, stations, 3, 16, 1)  # warm-up: connections, caches, producer metadata
    tree = _tree(pids)
    cpu0 = _cpu_s(tree)
    res = wrk(port, tokens, stations, duration, 64, 2)
    cpu = _cpu_s(tree) - cpu0
    res.pop("raw", None)
    # CPU per check-in of the serving processes (read from /proc): unlike the rate, it does not
    # depend on what else the machine runs; 1 / it is one process's rate on a core of its own.
    if res["requests"]:
        res["cpu_us_per_request"] = round(cpu / res["requests"] * 1e6, 1)
        res["per_core_rps"] = round(res["requests"] / cpu, 1) if cpu else None
    return res


def _wait_healthy(port: int, proc: infra_stack.Proc) -> None:
    proc.wait_until(lambda: infra_stack.healthy(port), 180)


def run(
    work: Path,
    duration: int = 10,
    counts: tuple[int, ...] = (1, 2, 4),
    n_members: int = 2000,
    rate: float = 1000,
    latency_counts: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="edge-", dir=work))
    broker = stack.start_broker(root)
    procs: list[infra_stack.Proc] = []
    out: dict[str, Any] = {
        "duration": duration,
        "cores": os.cpu_count(),
        "rate": rate,
        "edges": {},
        "bare": {},
    }
    try:
        s = stack.make_settings(root, broker)
        stack.migrate(s, root / "migrate.log")
        reads = stack.api(s, root / "reads.log", stack.UNLIMITED)
        procs.append(reads)
        reg = county.create(s, n_members)
        tokens = root / "tokens.txt"
        tokens.write_text("\n".join(county.member_token(s, m) for m in reg.members) + "\n")
        stations = root / "stations.txt"
        stations.write_text("\n".join(reg.station_tokens()) + "\n")
        upstream = f"http://127.0.0.1:{s.api_port}"
        for n in counts:
            port = stack.free_port()
            env = stack.env_of(
                s, {**stack.UNLIMITED, "API_PORT": str(port), "EDGE_UPSTREAM": upstream}
            )
            edges = infra_stack.edge_procs(n, env, root / f"edges{n}")
            procs += edges
            infra_stack.start_edges(edges, 180)
            out["edges"][n] = _throughput(port, tokens, stations, duration, [e.pid for e in edges])
            out["edges"][n]["vm_hwm_kb"] = [e.vm_hwm_kb() for e in edges]
            if n in latency_counts:
                # The latency at a fixed load (open loop, as section 2b's for the whole API).
                time.sleep(2)
                out["edges"][n]["fixed"] = loadgen(port, tokens, stations, rate, duration)
            infra_stack.stop_all(edges)
            time.sleep(1)
        # uvicorn's own workers serving the edge app, for the choice (2 processes).
        port = stack.free_port()
        env = stack.env_of(s, {**stack.UNLIMITED, "EDGE_UPSTREAM": upstream})
        n = 2 if 2 in counts else counts[0]
        uv = infra_stack.Proc(
            "edge-workers", _uvicorn("api.edge:create_edge_app", port, n), env, root / "uv.log"
        )
        procs.append(uv)
        uv.start()
        _wait_healthy(port, uv)
        time.sleep(5)  # every worker has read the registry (healthy answers from the first)
        out["edge_workers"] = {n: _throughput(port, tokens, stations, duration, [uv.pid])}
        uv.stop()
        reads.stop()
        for n in counts:
            port = stack.free_port()
            bare = infra_stack.Proc(
                f"bare{n}",
                _uvicorn("bench.bare_api:create_app", port, n),
                stack.env_of(s),
                root / f"bare{n}.log",
            )
            procs.append(bare)
            bare.start()
            _wait_healthy(port, bare)
            time.sleep(1)
            out["bare"][n] = _throughput(port, tokens, stations, duration, [bare.pid])
            bare.stop()
        one = out["bare"][counts[0]]["rps"] / counts[0]
        out["ratios"] = {
            n: {
                "vs_bare_same_n": round(out["edges"][n]["rps"] / out["bare"][n]["rps"], 2),
                "per_process_vs_one_bare": round(out["edges"][n]["rps"] / n / one, 2),
                # The load-independent one: the bare endpoint's CPU per check-in over the edge's.
                "cpu_bare_over_edge": round(
                    out["bare"][n]["cpu_us_per_request"] / out["edges"][n]["cpu_us_per_request"], 2
                ),
            }
            for n in counts
        }
        return out
    finally:
        for p in procs:
            p.stop()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--edges", default="1,2,4")
    ap.add_argument("--members", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--rate", type=float, default=1000, help="fixed load for the latency")
    ap.add_argument("--latency-edges", default="1,2", help="edge counts measured at --rate")
    a = ap.parse_args()
    counts = tuple(int(x) for x in a.edges.split(","))
    lat = tuple(int(x) for x in a.latency_edges.split(",") if x)
    print(json.dumps(run(a.work, a.duration, counts, a.members, a.rate, lat), indent=1))


if __name__ == "__main__":
    main()
