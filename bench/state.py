"""Benchmark 6: the worker's state at province scale: RSS, recovery time and collector pauses
with 100,000 and 1,000,000 members, on the RocksDB store and on the memory store (issue 16).

Per measurement a fresh broker. The session agent's changelogs are seeded directly with N
members' states (a realistic member: a month of weekly services, `template_state`) and the
partition index of the ~8% of them with an open session (state format 4: a key per member),
each in the changelog partition of the member's key, as the worker writes them. Then:

1. a worker with an empty DATA_DIR starts: the time until faust's recovery completes is what a
   partition move costs (the state rebuilt from the changelog), its RSS after it and its peak
   during it (`rss_recovery_peak_mb`);
2. `scans` check-ins of as many different members go through it (each loads a member's state
   from the store, applies the rules, writes it back): the time, the RSS and its peak, and the
   longest pause of Python's collector in the worker (`volunteer_gc_pause_max_seconds`,
   services/gc_watch.py);
3. the worker is stopped and started again on the same DATA_DIR: the time until its recovery
   completes (RocksDB: the changelog's tail after the persisted offset; memory: everything).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.partitioner.default import murmur2

from bench import stack
from infra import stack as infra_stack
from services import partition_index as pindex
from services import state_format
from services.events import CheckinScanned, derived_id, utcnow
from services.sessions import MemberState, SessionRules, on_scan
from services.settings import Settings
from services.topics import (
    CHECKINS,
    MEMBER_STATE_TABLE,
    PARTITION_INDEX_TABLE,
    STREAMS_APP_ID,
)

TEMPLATE_MEMBER = "mem_tmpl0000000"
OPEN_SHARE = 12  # one member in 12 has an open session


def partition_of(key: bytes, partitions: int = CHECKINS.partitions) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def template_state(weeks: int = 4) -> bytes:
    """A member after `weeks` weeks of one 2-hour service a week, in state format 4."""
    rules = SessionRules.from_settings(Settings())
    state = MemberState(member_id=TEMPLATE_MEMBER)
    start = utcnow() - timedelta(days=7 * weeks)
    for w in range(weeks):
        for action, hours in (("in", 0), ("out", 2)):
            at = start + timedelta(days=7 * w, hours=hours)
            cid = f"{w}-{action}"
            scan = CheckinScanned(
                event_id=derived_id("checkin", TEMPLATE_MEMBER, cid),
                occurred_at=at,
                member_id=TEMPLATE_MEMBER,
                station_id="st_bench001",
                station_community_id="com_bench01",
                unit_id="unit_bench001",
                member_community_id="com_bench01",
                action=action,
                client_event_id=cid,
                received_at=at,
            )
            state, _ = on_scan(state, scan, rules, None)
    return state_format.dump_member(state, 4)


def member(n: int) -> str:
    return f"mem_bench{n:07d}"


def seed(s: Settings, members: int) -> dict[str, Any]:
    """The changelogs as N members' worker would have left them."""
    template = template_state()
    producer = KafkaProducer(
        bootstrap_servers=s.kafka_bootstrap,
        acks=1,
        linger_ms=20,
        batch_size=1024 * 1024,
        compression_type="zstd",
        api_version=(3, 9),
    )
    states = s.topic(f"{STREAMS_APP_ID}-{MEMBER_STATE_TABLE}-changelog")
    index = s.topic(f"{STREAMS_APP_ID}-{PARTITION_INDEX_TABLE}-changelog")
    deadline = str(int((utcnow() + timedelta(hours=12)).timestamp())).encode()
    t = time.monotonic()
    for n in range(members):
        mid = member(n)
        key = mid.encode()
        p = partition_of(key)
        producer.send(
            states, key=key, value=template.replace(TEMPLATE_MEMBER.encode(), key), partition=p
        )
        if n % OPEN_SHARE == 0:
            producer.send(index, key=pindex.member_key(p, mid), value=deadline, partition=p)
    now = utcnow()
    for p in range(CHECKINS.partitions):
        head = state_format.dump_index_head(now, 4)
        producer.send(index, key=pindex.head_key(p), value=head, partition=p)
    producer.flush(timeout=600)
    producer.close(timeout=10)
    return {"state_bytes": len(template), "seed_s": round(time.monotonic() - t, 1)}


def _rss_kb(pid: int, field: str = "VmRSS") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def _pauses(port: int) -> tuple[int | None, int | None]:
    """How many collections the worker made, and how many paused it over 100 ms."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None, None
    total = under = 0.0
    for m in re.finditer(
        r'^volunteer_gc_pause_seconds_bucket\{generation="\d",le="([^"]+)"\} (\S+)$', text, re.M
    ):
        if m.group(1) == "+Inf":
            total += float(m.group(2))
        elif m.group(1) == "0.1":
            under += float(m.group(2))
    return int(total), int(total - under)


def _start(s: Settings, wdir: Path, store: str, log: Path, timeout_s: float) -> tuple[Any, float]:
    """A worker on `wdir`; the seconds from its launch until its tables are recovered."""
    env = stack.env_of(
        s,
        {
            "WORKER_WEB_PORT": str(s.worker_web_port),
            "DATA_DIR": str(wdir),
            "STATE_STORE": store,
            "STATE_WRITE_VERSION": "4",
            "SESSION_TICK_S": "3600",
        },
    )
    t = time.monotonic()
    proc = infra_stack.Proc("faust worker", list(infra_stack.WORKER_ARGV), env, log)
    proc.start()
    # Ready: joined, the tables recovered (a first, empty assignment can log a recovery too).
    proc.wait_until(lambda: infra_stack.WORKER_READY in proc.log_bytes(), timeout_s)
    return proc, time.monotonic() - t


def _load(s: Settings, n_scans: int, members: int) -> float:
    producer = KafkaProducer(
        bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=5, api_version=(3, 9)
    )
    topic = s.topic(CHECKINS.name)
    now = utcnow()
    step = max(1, members // n_scans)
    t = time.monotonic()
    for i in range(n_scans):
        mid = member((i * step) % members)
        cid = f"load-{i}"
        e = CheckinScanned(
            event_id=derived_id("checkin", mid, cid),
            occurred_at=now,
            member_id=mid,
            station_id="st_bench001",
            station_community_id="com_bench01",
            unit_id="unit_bench001",
            member_community_id="com_bench01",
            action="in",
            client_event_id=cid,
            received_at=now,
        )
        producer.send(topic, key=mid.encode(), value=e.to_bytes())
    producer.flush(timeout=300)
    producer.close(timeout=10)
    return t


def _wait_committed(s: Settings, n: int, timeout_s: float) -> None:
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=10000)
    group = s.topic(STREAMS_APP_ID)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
            done = sum(
                max(0, om.offset)
                for tp, om in offsets.items()
                if tp.topic == s.topic(CHECKINS.name)
            )
            if done >= n:
                return
            time.sleep(0.5)
    finally:
        admin.close()
    raise RuntimeError(f"the worker did not apply {n} scans within {timeout_s:.0f} s")


def run_one(
    members: int, store: str, n_scans: int, work: Path, timeout_s: float = 1800
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"state-{store}-{members}-", dir=work))
    broker = stack.start_broker(root)
    proc: Any = None
    try:
        s = stack.make_settings(root, broker)
        out: dict[str, Any] = {"members": members, "store": store, "scans": n_scans}
        out.update(seed(s, members))
        wdir = root / "worker"
        wdir.mkdir()
        proc, out["recovery_fresh_s"] = _start(s, wdir, store, root / "worker1.log", timeout_s)
        pid = proc.pid
        out["rss_recovered_mb"] = (_rss_kb(pid) or 0) // 1024
        # The high-water mark so far is the rebuild's: what a partition move costs in memory.
        out["rss_recovery_peak_mb"] = (_rss_kb(pid, "VmHWM") or 0) // 1024
        t = _load(s, n_scans, members)
        _wait_committed(s, n_scans, timeout_s)
        out["scans_per_s"] = round(n_scans / (time.monotonic() - t))
        out["rss_after_load_mb"] = (_rss_kb(pid) or 0) // 1024
        out["rss_peak_mb"] = (_rss_kb(pid, "VmHWM") or 0) // 1024
        pause = _metric(s.worker_web_port, "volunteer_gc_pause_max_seconds")
        out["gc_pause_max_ms"] = round(pause * 1000, 1) if pause is not None else None
        out["gc_frozen_objects"] = _metric(s.worker_web_port, "volunteer_gc_frozen_objects")
        out["gc_pauses"], out["gc_pauses_over_100ms"] = _pauses(s.worker_web_port)
        proc.stop()
        proc, out["recovery_restart_s"] = _start(s, wdir, store, root / "worker2.log", timeout_s)
        out["rss_restarted_mb"] = (_rss_kb(proc.pid) or 0) // 1024
        proc.stop()
        proc = None
        out["rocksdb_mb"] = (
            sum(f.stat().st_size for f in (wdir / "faust").rglob("*") if f.is_file()) // 2**20
        )
        return out
    finally:
        if proc is not None:
            proc.stop()
        broker.stop()


def run(
    sizes: list[int], stores: list[str], n_scans: int, work: Path, memory_max: int = 100_000
) -> list[dict[str, Any]]:
    out = []
    for members in sizes:
        for store in stores:
            if store == "memory" and members > memory_max:
                continue  # the heap the RocksDB store exists to avoid: measured at 100,000
            out.append(run_one(members, store, min(n_scans, members), work))
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.state")
    ap.add_argument("--members", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--stores", nargs="*", default=["rocksdb", "memory"])
    ap.add_argument("--scans", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-state-"))
    for row in run(args.members, args.stores, args.scans, work):
        print(json.dumps(row), flush=True)
