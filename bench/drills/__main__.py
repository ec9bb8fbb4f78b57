"""`python -m bench.drills [--members N] [--sessions K] [--only a,b]`: the fault drills.

Each drill starts its own stack (bench.drills.stack), registers a unit, a community, stations and
members through the API, plans `members x sessions` sessions (2 scans each) with known ids and
true hours (bench.drills.workload), sends them — most straight onto `checkins` with kafka-python
at `--rate`, every `--http-every`-th member's through the API with the phone's retries — and
injects its fault mid-stream. When every scan is acknowledged and the worker's and the sink's
consumer groups have no lag, it stops the stack and reconciles sessions FINAL and member_weeks
FINAL against the truth, per member. Exit status 1 if any drill lost or doubled anything.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.drills.stack import DrillStack, SendStats
from bench.drills.workload import Reconciled, make_plan, reconcile

ROOT = Path(__file__).resolve().parents[2]


def log(msg: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {msg}", flush=True)


@dataclass
class Row:
    drill: str
    events: int
    true_h: float = 0.0
    sessions_h: float = 0.0
    weeks_h: float = 0.0
    lost_h: float = 0.0
    doubled_h: float = 0.0
    catch_up_s: float | None = None
    drain_s: float | None = None
    ok: bool = False
    notes: list[str] = field(default_factory=list)


class Fault:
    """Polled by the control loop with the acknowledged fraction; returns the monotonic time
    the fault ended once it has."""

    name = ""
    title = ""
    api_env: dict[str, str] = {}  # noqa: RUF012
    http_every = 20

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        raise NotImplementedError


class WorkerKilled(Fault):
    name, title = "a", "worker SIGKILLed mid-stream, restarted 3 s later"

    def __init__(self) -> None:
        self.killed_at: float | None = None

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        w = stack.workers[0]
        if self.killed_at is None:
            if frac >= 0.3:
                log("fault: SIGKILL worker1")
                w.stop(kill=True)
                self.killed_at = time.monotonic()
            return None
        if time.monotonic() - self.killed_at >= 3:
            t = time.monotonic()
            stack.launch_worker(w)
            w.restarts += 1
            log("fault over: worker1 restarted")
            return t
        return None


class SinkKilledAfterInsert(Fault):
    name, title = "b", "API+embedded sink exits (137) after an insert, before its commit"
    api_env = {"SINK_FAULT_AFTER_INSERT": "40"}  # noqa: RUF012

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        api = stack.api
        assert api is not None
        if not api.alive:
            rc = api.popen.returncode if api.popen else None
            log(f"fault: API exited with {rc} after insert 40 (before commit); restarting it")
            t = time.monotonic()
            stack.restart_api()
            return t
        return None


class BrokerRestarted(Fault):
    name, title = "c", "Kafka broker stopped and started again (5 s down)"

    def __init__(self) -> None:
        self.stopped_at: float | None = None

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        if self.stopped_at is None:
            if frac >= 0.3:
                log("fault: stopping the broker")
                stack.broker.stop()
                self.stopped_at = time.monotonic()
            return None
        if time.monotonic() - self.stopped_at >= 5:
            t = time.monotonic()
            stack.broker.start()
            log("fault over: broker started again")
            return t
        return None


class ClickHouseDown(Fault):
    name = "d"
    http_every = 20

    def __init__(self, down_s: float) -> None:
        self.down_s = down_s
        self.title = f"ClickHouse inserts fail for {down_s:g} s (sink retries, commits nothing)"
        self.api_env = {
            "SINK_FAULT_INSERTS_DOWN_S": str(down_s),
            "SINK_FAULT_INSERTS_DOWN_AFTER": "20",
        }
        self.down_at: float | None = None

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        assert stack.api is not None
        if self.down_at is None:
            if b"FAULT INJECTION: ClickHouse inserts fail" in stack.api.log_path.read_bytes():
                self.down_at = time.monotonic()
                log(f"fault: ClickHouse inserts failing for {self.down_s:g} s")
            return None
        if time.monotonic() - self.down_at >= self.down_s:
            log("fault over: ClickHouse accepts inserts again")
            return self.down_at + self.down_s
        return None


class Rebalance(Fault):
    name, title = "e", "a second worker joins, then leaves (two rebalances)"

    def __init__(self) -> None:
        self.joined = False

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        if not self.joined:
            if frac >= 0.25:
                log("fault: worker2 joins")
                stack.start_worker()
                self.joined = True
            return None
        if frac >= 0.6 or senders_done:
            log("fault: worker2 leaves (SIGTERM)")
            stack.workers[1].stop()
            log("fault over: worker2 gone")
            return time.monotonic()
        return None


class ApiRestarted(Fault):
    name, title = "f", "API (uvicorn, embedded sink) SIGKILLed and restarted; phones retry"
    http_every = 2

    def __init__(self) -> None:
        self.killed_at: float | None = None

    def poll(self, stack: DrillStack, frac: float, senders_done: bool) -> float | None:
        assert stack.api is not None
        if self.killed_at is None:
            if frac >= 0.3:
                log("fault: SIGKILL the API")
                stack.api.stop(kill=True)
                self.killed_at = time.monotonic()
            return None
        if time.monotonic() - self.killed_at >= 2:
            t = time.monotonic()
            stack.restart_api()
            log("fault over: API restarted")
            return t
        return None


def run_drill(fault: Fault, args: argparse.Namespace, base: Path) -> Row:
    stack = DrillStack(base / f"drill-{fault.name}", log)
    plan_size = args.members * args.sessions * 2
    row = Row(f"({fault.name}) {fault.title}", plan_size)
    log(f"=== drill {row.drill} ===")
    try:
        stack.start_broker()
        stack.start_api(fault.api_env)
        stack.start_worker()
        reg = stack.set_up_registry(args.members, args.stations)
        plan = make_plan(
            reg.member_ids,
            reg.station_ids,
            args.sessions,
            datetime.now(UTC),
            http_every=fault.http_every,
            seed=args.seed,
        )
        kscans = [s for s in plan.scans if not s.http]
        hscans = [s for s in plan.scans if s.http]
        log(f"sending {len(kscans)} scans to Kafka at {args.rate}/s and {len(hscans)} via HTTP")
        ks, hs = SendStats(), SendStats()
        stack.send_kafka(reg, kscans, args.rate, ks)
        if hscans:
            stack.send_http(hscans, hs)
        else:
            hs.done = True
        total = len(plan.scans)
        fault_end: float | None = None
        sent_done: float | None = None
        caught: float | None = None
        deadline = time.monotonic() + args.timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            frac = (ks.acked + hs.acked) / total
            done = ks.done and hs.done
            if done and sent_done is None:
                sent_done = time.monotonic()
                log(f"all scans sent: kafka {ks.acked} acked, http {hs.acked} acked {hs.refused}")
            if fault_end is None:
                fault_end = fault.poll(stack, frac, done)
            row.notes += stack.supervise()
            if fault_end is not None and done:
                lags = stack.lags()
                if lags is not None and not any(lags.values()):
                    caught = time.monotonic()
                    break
                if time.monotonic() - last_report > 10:
                    log(f"waiting for lag 0: {lags}")
                    last_report = time.monotonic()
            time.sleep(0.5)
        if caught is None:
            row.notes.append(f"did not catch up within {args.timeout:.0f}s")
        else:
            assert fault_end is not None and sent_done is not None
            row.catch_up_s = round(caught - fault_end, 1)
            row.drain_s = round(caught - sent_done, 1)
        if hs.refused:
            row.notes.append(f"http refused {hs.refused}")
        if ks.retries or hs.retries:
            row.notes.append(f"client re-sends: kafka {ks.retries}, http {hs.retries}")
        # Gracefully: the API's sink flushes and commits what it holds.
        if stack.api is not None:
            stack.api.stop()
        for proc in stack.workers:
            proc.stop()
        counts = stack.reconcile_counts()
        s: Reconciled = reconcile(plan.truth, counts["sessions"])
        wk: Reconciled = reconcile(plan.truth, counts["weeks"])
        row.true_h = plan.true_seconds / 3600
        row.sessions_h = s.counted_seconds / 3600
        row.weeks_h = wk.counted_seconds / 3600
        row.lost_h = max(s.lost_seconds, wk.lost_seconds) / 3600
        row.doubled_h = max(s.doubled_seconds, wk.doubled_seconds) / 3600
        if counts["scan_ids"] != total:
            row.notes.append(f"scans stored {counts['scan_ids']} of {total}")
        if counts["open"] or counts["auto_closed"]:
            row.notes.append(f"open {counts['open']}, auto-closed {counts['auto_closed']}")
        restarts = sum(p.restarts for p in [*stack.workers, stack.api] if p is not None)
        if restarts:
            row.notes.append(f"process restarts {restarts}")
        row.ok = s.ok and wk.ok and caught is not None and counts["scan_ids"] == total
        log(f"reconciled: sessions {s}, weeks {wk}")
    except Exception as exc:
        row.notes.append(f"error: {exc!r}"[:300])
        log(f"drill failed: {exc!r}")
    finally:
        stack.stop_all()
    return row


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        mem = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        mem = "?"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return (
        f"- CPU: {cpu}, {os.cpu_count()} cores visible\n- memory: {mem}\n"
        f"- Python {platform.python_version()}, "
        f"Java {java.splitlines()[0] if java else '?'}\n"
        f"- {platform.platform()}\n- date: {datetime.now(UTC).isoformat(timespec='seconds')}"
    )


def table(rows: list[Row]) -> str:
    head = (
        "| drill | events | true h | counted h (sessions / weeks) | lost h | doubled h "
        "| catch-up s | drain after last scan s | result | notes |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n"
    )
    return head + "".join(
        f"| {r.drill} | {r.events:,} | {r.true_h:,.2f} | {r.sessions_h:,.2f} / {r.weeks_h:,.2f} "
        f"| {r.lost_h:.2f} | {r.doubled_h:.2f} | {r.catch_up_s if r.catch_up_s is not None else '—'} "
        f"| {r.drain_s if r.drain_s is not None else '—'} | {'PASS' if r.ok else 'FAIL'} "
        f"| {'; '.join(r.notes)} |\n"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=5, help="sessions per member (2 scans each)")
    p.add_argument("--stations", type=int, default=20)
    p.add_argument("--rate", type=float, default=1000.0, help="scans/s straight onto Kafka")
    p.add_argument("--ch-down-s", type=float, default=60.0, help="drill d's outage")
    p.add_argument("--timeout", type=float, default=900.0, help="per drill")
    p.add_argument("--only", default="a,b,c,d,e,f")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default=str(ROOT / "docs" / "drills.md"))
    args = p.parse_args(argv)
    faults: dict[str, Callable[[], Fault]] = {
        "a": WorkerKilled,
        "b": SinkKilledAfterInsert,
        "c": BrokerRestarted,
        "d": lambda: ClickHouseDown(args.ch_down_s),
        "e": Rebalance,
        "f": ApiRestarted,
    }
    base = ROOT / "data" / "drills" / datetime.now().strftime("%Y%m%d-%H%M%S")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = [run_drill(faults[k](), args, base) for k in args.only.split(",")]
    text = table(rows)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Fault drills (`make drills`)\n\n"
        "Generated by `python -m bench.drills` (issue 7). Each drill: its own broker, chDB "
        "folder, faust worker(s) and API process (uvicorn, embedded sink); "
        f"{args.members:,} members x {args.sessions} sessions = "
        f"{args.members * args.sessions * 2:,} scans with known ids and true hours, "
        f"{args.rate:g} scans/s onto `checkins` plus every n-th member's scans through the "
        "API (n = 20; n = 2 in drill f) with the phone's retries. Reconciled per member against "
        "`sessions FINAL` and `member_weeks FINAL` after the worker's and the sink's consumer "
        "groups reached lag 0. *catch-up s*: from the end of the fault to lag 0; *drain*: from "
        "the last acknowledged scan to lag 0. Lost and doubled are summed per member (opposite "
        "errors never cancel) and are the larger of the two tables.\n\n"
        f"## Machine\n\n{machine()}\n\n## Results\n\n{text}\n"
    )
    log(f"written to {out}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
