"""Benchmark 2d (issue 16): how long a check-in edge takes to start at 100,000 and 1,000,000
members, with the feed that read all of `registry.history` before serving and with the one that
reads the compacted topics only (services.edge_feed).

The log is written as a province's would be: every member's value on `registry.members` (with
`moved_at`), a station per 250 members and a level-4 grid per 100 on theirs, and on
`registry.history` a creation per member stamped 30 days ago (the import) plus a move for 1% of
the members within the last day. Each feed is then started in a process of its own (`--read`),
which prints the time until it serves (`EdgeFeed.start` returned), the records it read by then,
its peak RSS, and (the new feed) how long the history's window took after that.

"before" is the feed of commit `BEFORE_REV` (services/edge_feed.py as it was, loaded from git),
"after" the current one; both feed the same `CheckinReplica`.

`python -m bench.edge_start [--members 100000,1000000] [--work DIR]` prints JSON; the figures
land in docs/benchmarks.md (section 2d).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import stack
from services import topics
from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# The last commit whose edge read all of `registry.history` before serving.
BEFORE_REV = "f68c3c8"
MOVED_SHARE = 0.01


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def produce(s: Settings, n: int) -> dict[str, Any]:
    """Writes the registry of `n` members (and their stations, grids and history) to the log.
    The JSON is written from templates (the events' own serialisation is ~20 µs a record)."""
    from kafka import KafkaProducer

    p = KafkaProducer(
        bootstrap_servers=s.kafka_bootstrap,
        linger_ms=50,
        batch_size=512 * 1024,
        compression_type=None,
        acks=1,
    )
    now = datetime.now(UTC)
    created = now - timedelta(days=30)
    created_ms = int(created.timestamp() * 1000)
    created_us = int(created.timestamp() * 1e6)
    t0 = time.monotonic()
    members, stations = s.topic(topics.MEMBERS.name), s.topic(topics.STATIONS.name)
    grids = s.topic(topics.GRIDS.name)
    history = s.topic(topics.REGISTRY_HISTORY.name)
    at = _iso(created)
    for g in range(max(1, n // 100)):
        gid = f"grd_{g:07d}"
        v = (
            f'{{"event_id":"g{g}","event_type":"grid.upserted","schema_version":1,'
            f'"occurred_at":"{at}","record":{{"id":"{gid}","version":{created_us},'
            f'"updated_at":"{at}","updated_by":"admin:admin","community_id":"com_{g // 30:05d}",'
            f'"name":"网格{g}","level":4,"parent_id":null}}}}'
        )
        p.send(grids, v.encode(), gid.encode(), timestamp_ms=created_ms)
    for st in range(max(1, n // 250)):
        sid = f"sta_{st:07d}"
        v = (
            f'{{"event_id":"s{st}","event_type":"station.upserted","schema_version":1,'
            f'"occurred_at":"{at}","record":{{"id":"{sid}","version":{created_us},'
            f'"updated_at":"{at}","updated_by":"admin:admin","community_id":"com_{st // 10:05d}",'
            f'"name":"站{st}","kind":"service_station"}}}}'
        )
        p.send(stations, v.encode(), sid.encode(), timestamp_ms=created_ms)
    moved_every = int(1 / MOVED_SHARE)
    recent = now - timedelta(hours=12)
    recent_us, recent_ms, recent_at = (
        int(recent.timestamp() * 1e6),
        int(recent.timestamp() * 1e3),
        _iso(recent),
    )
    for k in range(n):
        mid = f"mem_{k:08d}"
        moved = k % moved_every == 0
        version, vat = (recent_us + k, recent_at) if moved else (created_us + k, at)
        unit = f"unt_{k % 500 + (1 if moved else 0):04d}"
        member = (
            f'{{"event_id":"m{k}-{version}","event_type":"member.upserted","schema_version":1,'
            f'"occurred_at":"{vat}","record":{{"id":"{mid}","version":{version},'
            f'"updated_at":"{vat}","updated_by":"admin:admin","name":"成员{k}",'
            f'"unit_id":"{unit}","community_id":"com_{k // 3000:05d}","phone":null,'
            f'"grid_id":"grd_{k // 100:07d}","party_branch":null,"reported_on":null,'
            f'"status":"active","team_leader_id":null}},"moved_at":{version if moved else 0}}}'
        )
        p.send(
            members, member.encode(), mid.encode(), timestamp_ms=recent_ms if moved else created_ms
        )
        create = (
            f'{{"event_id":"h{k}","event_type":"registry.changed","schema_version":1,'
            f'"occurred_at":"{at}","entity_kind":"member","entity_id":"{mid}",'
            f'"version":{created_us + k},"operation":"create","changed_by":"admin:admin",'
            f'"changes":[{{"field":"name","before":null,"after":"\\"成员{k}\\""}},'
            f'{{"field":"unit_id","before":null,"after":"\\"unt_{k % 500:04d}\\""}}]}}'
        )
        p.send(history, create.encode(), mid.encode(), timestamp_ms=created_ms)
    # The moves of the last day, after the import in the log as in time.
    for k in range(0, n, moved_every):
        mid = f"mem_{k:08d}"
        move = (
            f'{{"event_id":"hm{k}","event_type":"registry.changed","schema_version":1,'
            f'"occurred_at":"{recent_at}","entity_kind":"member","entity_id":"{mid}",'
            f'"version":{recent_us + k},"operation":"update","changed_by":"admin:admin",'
            f'"changes":[{{"field":"unit_id","before":"\\"unt_{k % 500:04d}\\"",'
            f'"after":"\\"unt_{k % 500 + 1:04d}\\""}}]}}'
        )
        p.send(history, move.encode(), mid.encode(), timestamp_ms=recent_ms)
    p.flush()
    p.close()
    return {
        "members": n,
        "moves": len(range(0, n, moved_every)),
        "produce_s": round(time.monotonic() - t0, 1),
    }


def _feed_module(variant: str) -> Any:
    if variant == "after":
        import services.edge_feed

        return services.edge_feed
    src = subprocess.run(
        ["git", "show", f"{BEFORE_REV}:services/edge_feed.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "edge_feed_before.py"
    path.write_bytes(src)
    spec = importlib.util.spec_from_file_location("edge_feed_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass looks itself up there
    spec.loader.exec_module(mod)
    return mod


def read(variant: str) -> dict[str, Any]:
    """In this process: starts the feed of `variant` on the settings in the environment."""
    from services.registry import CheckinReplica

    s = Settings()
    mod = _feed_module(variant)
    replica, changes, revoked = CheckinReplica(None), mod.MemberChanges(), mod.RevokedTokens()  # type: ignore[arg-type]
    feed = mod.EdgeFeed(s, replica, changes, revoked)
    t0 = time.monotonic()
    feed.start(timeout_s=1800)
    ready = time.monotonic() - t0
    out: dict[str, Any] = {
        "variant": variant,
        "ready_s": round(ready, 1),
        # The new feed goes on reading the history's window at once: its count as of ready.
        "records_read_before_ready": (
            sum(feed.consumed_at_ready.values()) if variant == "after" else feed.records
        ),
        "entries": len(replica),
        "maxrss_mb_at_ready": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    if variant == "after":
        if not changes.loaded.wait(1800):
            raise RuntimeError("the history's window was not read")
        out["history_window_s"] = round(time.monotonic() - t0 - ready, 1)
        out["history_records_read"] = feed.history_consumed
        out["members_changes_kept"] = len(changes)
        out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    feed.stop()
    return out


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(work: Path, counts: tuple[int, ...]) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="edge-start-", dir=work))
    broker = stack.start_broker(root)
    out: dict[str, Any] = {"cores": os.cpu_count(), "runs": []}
    try:
        for n in counts:
            s = stack.make_settings(root, broker)
            made = produce(s, n)
            for variant in ("before", "after"):
                load = _loadavg()
                res = subprocess.run(
                    [sys.executable, "-m", "bench.edge_start", "--read", variant],
                    cwd=ROOT,
                    env=stack.env_of(s),
                    capture_output=True,
                    timeout=3600,
                    check=False,
                )
                if res.returncode != 0:
                    raise RuntimeError(res.stderr.decode()[-3000:])
                row = {**made, **json.loads(res.stdout.decode().strip().splitlines()[-1])}
                row["loadavg"] = f"{load} → {_loadavg()}"
                print(json.dumps(row), file=sys.stderr, flush=True)
                out["runs"].append(row)
        return out
    finally:
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", default="100000,1000000")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--read", choices=["before", "after"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.read:
        print(json.dumps(read(a.read)))
        return
    counts = tuple(int(x) for x in a.members.split(","))
    print(json.dumps(run(a.work, counts), indent=1))


if __name__ == "__main__":
    main()
