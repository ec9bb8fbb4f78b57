"""`python -m bench.drills [--scans N | --members N --sessions K] [--only 0,a,b]`: fault drills.

Each drill starts its own stack (bench.drills.stack), registers a unit, a community, stations and
members through the API, plans `members x sessions` sessions (2 scans each) with known ids and
true hours (bench.drills.workload), sends them at `--rate` scans/s in all — most straight onto
`checkins` with kafka-python, every n-th member's through the API with the phone's retries — and
injects its fault mid-stream, on the fraction of scans acknowledged so far (both senders report
acknowledgements progressively). When every scan is acknowledged (or the stream stalled for
`--stall-s`) and the worker's and the sink's consumer groups have no lag, it stops the stack and
reconciles sessions FINAL and member_weeks FINAL against the truth, per member. Drill 0 is the
same stream without a fault. Exit status 1 if any drill lost or doubled anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.drills import diagnose, reads
from bench.drills.stack import FAUST_GROUP, SINK_GROUP, DrillStack, Proc, SendStats
from bench.drills.storm import (
    CommitMonitor,
    Event,
    Spinners,
    Step,
    StormPlan,
    StormState,
    commit_events,
    read_worker_events,
    run_storm,
)
from bench.drills.workload import (
    Plan,
    PlannedScan,
    Reconciled,
    make_plan,
    members_off,
    reconcile,
)
from services.topics import CHECKINS

# Members detailed in a failure report (the docs show the first REPORT_IN_DOCS; the drill's
# folder keeps all REPORT_MEMBERS).
REPORT_MEMBERS = 40
REPORT_IN_DOCS = 8

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
    fault_at: str = ""
    catch_up_s: float | None = None
    drain_s: float | None = None
    senders_s: float = 0.0  # from the first scan sent to the last acknowledged
    wall_s: float = 0.0
    ok: bool = False
    reads: str = "—"  # what users read (member hours, assessment) against the truth
    notes: list[str] = field(default_factory=list)
    report: str = ""  # the failure report (markdown), when the drill failed


@dataclass
class Progress:
    """Where the stream stood when the control loop polled the fault."""

    acked: int
    total: int
    since_start: float  # seconds since the first scan was sent
    done: bool  # every scan acknowledged (or given up on)

    @property
    def frac(self) -> float:
        return self.acked / self.total


def lag_note(stack: DrillStack) -> str:
    """The worker's and the sink's progress right now: evidence that a fault hit mid-stream
    (both had consumed part of the stream, and both had some of it still to do)."""
    offs = stack.offsets()
    if offs is None:
        return "lag not measurable"
    end, done = offs[f"{FAUST_GROUP}:{CHECKINS.name}"]
    sink = [v for k, v in offs.items() if k.startswith(f"{SINK_GROUP}:")]
    s_end, s_done = sum(e for e, _ in sink), sum(d for _, d in sink)
    return (
        f"worker had committed {done:,} of {end:,} published scans, "
        f"sink {s_done:,} of {s_end:,} records"
    )


class Fault:
    """Polled by the control loop with the stream's progress (scans acknowledged, which the
    senders report progressively: Kafka in flush rounds of ~0.2 s, HTTP per request); returns
    the monotonic time the fault ended once it has."""

    name = ""
    title = ""
    http_every = 20
    rate: float | None = None  # scans/s in all, when the drill needs its own (else --rate)

    def __init__(self) -> None:
        self.api_env: dict[str, str] = {}
        self.fired_at: str = ""
        self.notes: list[str] = []
        self.timeline: list[Event] = []

    def arm(self, publish_s: float, inserts_per_s: float) -> None:
        """Sets the sink's fault hooks (if any) for a stream planned to last publish_s."""

    def begin(self, stack: DrillStack, monitor: CommitMonitor) -> None:
        """Called once the stack is up, before the first scan."""

    def end(self) -> None:
        """Called when the drill is over, whatever happened: undo anything left running."""

    def events(self) -> list[Event]:
        """What the drill did, for the timeline of a failure report."""
        return self.timeline

    def fired(self, stack: DrillStack, prog: Progress, what: str) -> None:
        at = f"{prog.frac:.0%} ({prog.acked:,} scans acked, {prog.since_start:.0f} s in)"
        note = lag_note(stack)
        self.fired_at = self.fired_at or at
        self.notes.append(f"{what} at {at}: {note}")
        self.timeline.append(Event(datetime.now(UTC), "drill", what))
        log(f"fault: {what} at {at}; {note}")

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        raise NotImplementedError


class WorkerKilled(Fault):
    name, title = "a", "worker SIGKILLed mid-stream, restarted 3 s later"

    def __init__(self) -> None:
        super().__init__()
        self.killed_at: float | None = None

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        w = stack.workers[0]
        if self.killed_at is None:
            if prog.frac >= 0.3:
                self.fired(stack, prog, "SIGKILL worker1")
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

    def arm(self, publish_s: float, inserts_per_s: float) -> None:
        # The hook counts inserts (one per table per batch), not scans: aim at ~30 % of the
        # planned stream from the sink's estimated insert rate. Where it landed is reported.
        self.after = max(5, round(publish_s * 0.3 * inserts_per_s))
        self.api_env = {"SINK_FAULT_AFTER_INSERT": str(self.after)}

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        api = stack.api
        assert api is not None
        if not api.alive:
            rc = api.popen.returncode if api.popen else None
            self.fired(stack, prog, f"API exited ({rc}) after insert {self.after}, pre-commit")
            t = time.monotonic()
            stack.restart_api()
            log("fault over: API restarted")
            return t
        return None


class BrokerRestarted(Fault):
    name, title = "c", "Kafka broker stopped and started again (5 s down)"

    def __init__(self) -> None:
        super().__init__()
        self.stopped_at: float | None = None

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        if self.stopped_at is None:
            if prog.frac >= 0.3:
                self.fired(stack, prog, "broker stopped")
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

    def __init__(self, down_s: float) -> None:
        super().__init__()
        self.down_s = down_s
        self.title = f"ClickHouse inserts fail for {down_s:g} s (sink retries, commits nothing)"
        self.down_at: float | None = None

    def arm(self, publish_s: float, inserts_per_s: float) -> None:
        # From ~25 % of the planned stream (estimated, as in b), so the outage overlaps it.
        after = max(5, round(publish_s * 0.25 * inserts_per_s))
        self.api_env = {
            "SINK_FAULT_INSERTS_DOWN_S": str(self.down_s),
            "SINK_FAULT_INSERTS_DOWN_AFTER": str(after),
        }

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        assert stack.api is not None
        if self.down_at is None:
            if b"FAULT INJECTION: ClickHouse inserts fail" in stack.api.log_path.read_bytes():
                self.down_at = time.monotonic()
                self.fired(stack, prog, f"ClickHouse inserts failing for {self.down_s:g} s")
            return None
        if time.monotonic() - self.down_at >= self.down_s:
            log(f"fault over: ClickHouse accepts inserts again ({prog.frac:.0%} acked)")
            self.notes.append(f"outage ended at {prog.frac:.0%} acked")
            return self.down_at + self.down_s
        return None


class Rebalance(Fault):
    name, title = "e", "a second worker joins, then leaves (two rebalances)"

    def __init__(self) -> None:
        super().__init__()
        self.ready_at: float | None = None

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        if self.ready_at is None:
            if prog.frac >= 0.25:
                self.fired(stack, prog, "worker2 joins")
                stack.start_worker()
                self.ready_at = time.monotonic()
            return None
        # At least 20 s in the group, so worker2 takes partitions and works on them.
        if (prog.frac >= 0.6 and time.monotonic() - self.ready_at >= 20) or prog.done:
            w2 = stack.workers[1]
            self.fired(stack, prog, "worker2 leaves (SIGTERM)")
            self.notes.append(f"worker2 held checkins partitions {stack.worker_checkins(w2)}")
            w2.stop()
            log("fault over: worker2 gone")
            return time.monotonic()
        return None


class ApiRestarted(Fault):
    name, title = "f", "API (uvicorn, embedded sink) SIGKILLed and restarted; phones retry"
    # A quarter of the scans through the API: about what it serves beside the rest of the
    # stack on these 2 cores at the drills' rate, so both shares span the whole stream.
    http_every = 4

    def __init__(self) -> None:
        super().__init__()
        self.killed_at: float | None = None

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        assert stack.api is not None
        if self.killed_at is None:
            if prog.frac >= 0.3:
                self.fired(stack, prog, "SIGKILL the API")
                stack.api.stop(kill=True)
                self.killed_at = time.monotonic()
            return None
        if time.monotonic() - self.killed_at >= 2:
            t = time.monotonic()
            stack.restart_api()
            log("fault over: API restarted")
            return t
        return None


class RebalanceStorm(Fault):
    """Drill g (issue 18): the group changes every few seconds while it is tens of thousands
    of scans behind, with cores made busy on purpose. Published at --storm-rate, faster than
    the worker keeps up, so a backlog builds; the storm starts when the group is --storm-lag
    behind and plays StormPlan's cycle (workers 2 and 3 join, leave cleanly, are SIGKILLed and
    restarted, worker1 too) until --storm-s passed or the stream is over and the backlog fell
    below --storm-floor; then the group settles back to worker1 alone and the spinners stop."""

    name = "g"
    http_every = 20

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.args = args
        self.rate = args.storm_rate
        cores = [int(c) for c in str(args.spin_cores).split(",") if c.strip()]
        self.title = (
            f"rebalance storm under a backlog: every ~{args.storm_every_s:g} s a worker joins, "
            f"leaves, or is SIGKILLed and restarted (workers 1-3), {len(cores)} core(s) kept "
            "busy on purpose"
        )
        self.spinners = Spinners(cores, max_s=args.storm_s + 120)
        self.state = StormState()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.stack: DrillStack | None = None
        self.monitor: CommitMonitor | None = None
        self.stream_done = False
        self.ended: float | None = None
        self.counts: Counter[str] = Counter()

    def begin(self, stack: DrillStack, monitor: CommitMonitor) -> None:
        self.stack, self.monitor = stack, monitor

    def lag(self) -> int | None:
        last = self.monitor.last if self.monitor is not None else None
        return last.lag if last is not None else None

    def apply(self, step: Step) -> str:
        what = self._apply(step)
        if what:
            log(f"storm: {what}")
        return what

    def _apply(self, step: Step) -> str:
        """One group change; '' when there is nothing to do (e.g. a leave of a stopped worker)."""
        stack = self.stack
        assert stack is not None
        with stack.lock:
            while len(stack.workers) < step.worker:
                stack.new_worker()
            w: Proc = stack.workers[step.worker - 1]
            if step.action in ("join", "restart"):
                if w.alive and not w.expected_exit:
                    return ""
                if w.popen is not None:
                    # Still shutting down after a leave: a restart is a new process.
                    try:
                        w.popen.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        w.popen.kill()
                        w.popen.wait(timeout=10)
                w.start()
                self.counts[step.action] += 1
                pid = w.popen.pid if w.popen else "?"
                verb = "joins" if step.action == "join" else "restarted"
                return f"{w.name} {verb} (pid {pid}), lag {self.lag() or 0:,}"
            if not w.alive or w.expected_exit:
                return ""
            self.counts[step.action] += 1
            if step.action == "leave":
                w.signal(signal.SIGTERM)
                return f"{w.name} leaves (SIGTERM), lag {self.lag() or 0:,}"
            w.signal(signal.SIGKILL)
            if w.popen is not None:
                w.popen.wait(timeout=10)
            return f"{w.name} SIGKILLed, lag {self.lag() or 0:,}"

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        self.stream_done = prog.done
        if self.thread is None:
            lag = self.lag()
            if (lag is not None and lag >= self.args.storm_lag) or prog.done:
                self.fired(stack, prog, f"storm starts, worker group {lag or 0:,} scans behind")
                if (lag or 0) < self.args.storm_lag:
                    self.notes.append(
                        f"the backlog never reached {self.args.storm_lag:,} (max "
                        f"{self.monitor.max_lag() if self.monitor else 0:,}): the stream "
                        "was not faster than the worker"
                    )
                self.spinners.start()
                plan = StormPlan(self.args.storm_every_s, self.args.seed)
                self.thread = threading.Thread(
                    target=run_storm,
                    args=(
                        plan,
                        self.apply,
                        self.lag,
                        lambda: self.stream_done,
                        self.args.storm_s,
                        self.args.storm_floor,
                        self.state,
                        self.stop,
                    ),
                    name="storm",
                    daemon=True,
                )
                self.thread.start()
            return None
        if self.thread.is_alive():
            return None
        self.spinners.stop()
        self.ended = time.monotonic()
        st = self.state
        dur = (st.ended_at or 0) - (st.started_at or 0)
        counts = ", ".join(f"{n} {a}" for a, n in sorted(self.counts.items()))
        self.notes.append(
            f"storm: {st.steps} steps in {dur:.0f} s ({counts}); worker group behind "
            f"{st.lag_at_start:,} at its start, {st.lag_at_end:,} at its end, at most "
            f"{self.monitor.max_lag() if self.monitor else 0:,}"
        )
        if st.error:
            self.notes.append(f"storm error: {st.error}")
        self.fired(stack, prog, "storm over, worker1 alone, spinners stopped")
        return self.ended

    def events(self) -> list[Event]:
        return self.timeline + self.state.timeline

    def end(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=90)
        self.spinners.stop()


class NoFault(Fault):
    name, title = "0", "baseline: no fault"

    def poll(self, stack: DrillStack, prog: Progress) -> float | None:
        return time.monotonic() if prog.done else None


def log_findings(stack: DrillStack) -> list[str]:
    """What the processes' logs say went wrong, counted: the API's refused publishes by reason
    and a worker's crashed session batches."""
    notes = []
    if stack.api is not None and stack.api.log_path.exists():
        reasons: Counter[str] = Counter()
        for line in stack.api.log_path.read_text(errors="replace").splitlines():
            if "publish failed: " in line:
                reasons[line.split("publish failed: ", 1)[1][:80]] += 1
        if reasons:
            top = ", ".join(f"{n:,}x {r!r}" for r, n in reasons.most_common(3))
            notes.append(f"API publish failures (503): {top}")
    for w in stack.workers:
        if w.log_path.exists():
            text = w.log_path.read_text(errors="replace")
            crashes = text.count("session batch failed")
            if crashes:
                notes.append(f"{w.name}: {crashes} session batch(es) failed")
            # A faust service that crashed takes the worker down (exit 1; supervised restart).
            reasons = Counter(
                line.split("Crashed reason=", 1)[1].strip()[:100]
                for line in text.splitlines()
                if "Crashed reason=" in line
            )
            if reasons:
                top = ", ".join(f"{n}x {r}" for r, n in reasons.most_common(2))
                notes.append(f"{w.name} crashed: {top}")
    return notes


def read_checks(
    stack: DrillStack, unit_id: str, plan: Plan, acked_ids: set[str], hours_members: int, seed: int
) -> list[reads.ReadCheck]:
    """What users read, while the API is up: the unit's assessment (every member, a page per
    1,000) and the members' year hours (one request each: every member, or with
    `hours_members` the assessment's members off plus a seeded sample of that many), against
    the truth of the members whose scans were all acknowledged."""
    unacked = {x.member_id for x in plan.scans if x.client_event_id not in acked_ids}
    truth = {m: t for m, t in plan.truth.items() if m not in unacked}
    sessions = {m: n for m, n in plan.sessions_of().items() if m not in unacked}
    base = f"http://127.0.0.1:{stack.api_port}"
    years = plan.years()
    assessed = reads.assessment(
        base, stack.admin(), unit_id, truth, sessions, years, only=set(truth)
    )
    log(assessed.summary())
    members: list[str] | None = None
    if hours_members and hours_members < len(truth):
        off = {r.member_id for r in assessed.off}
        rest = sorted(set(truth) - off)
        members = sorted(off) + random.Random(seed).sample(rest, min(hours_members, len(rest)))
    hours = reads.member_hours(base, stack.admin(), truth, sessions, years, members)
    if members is not None:
        hours.name += f", {len(members):,} of {len(truth):,} members (off first, then sampled)"
    log(hours.summary())
    return [hours, assessed]


def save_timeline(path: Path, monitor: CommitMonitor, events: list[Event]) -> None:
    """The group's commit samples and the drill's actions, beside the drill's data: with the
    workers' logs and the broker's data there, a failure can be studied again later."""
    path.write_text(
        json.dumps(
            {
                "samples": [
                    {"at": x.at.isoformat(), "ends": x.ends, "committed": x.committed}
                    for x in monitor.samples
                ],
                "events": [{"at": e.at.isoformat(), "who": e.who, "what": e.what} for e in events],
            }
        )
    )


def failure_report(
    stack: DrillStack,
    fault: Fault,
    plan: Plan,
    acked_ids: set[str],
    counts: dict[str, dict[str, int]],
    checks: list[reads.ReadCheck],
    monitor: CommitMonitor,
) -> str:
    """The members off (in any of the four views), each with its scans, sessions and the
    rebalance/commit timeline around them; written beside the drill's data and into the docs."""
    off: dict[str, None] = {}
    for view in ("sessions", "weeks"):
        for o in members_off(plan.truth, counts[view]):
            off.setdefault(o.member_id)
    for c in checks:
        for r in c.off:
            off.setdefault(r.member_id)
    members = list(off)[:REPORT_MEMBERS]
    if not members:
        return ""
    log(f"failure report: {len(off)} members off, detailing {len(members)}")
    details = stack.reconcile_counts(members)["details"]
    in_kafka = diagnose.kafka_scans(
        stack.settings.kafka_bootstrap, stack.settings.topic(CHECKINS.name), set(members)
    )
    logs = {w.name: w.log_path for w in stack.workers}
    events = read_worker_events(logs) + fault.events() + commit_events(monitor.samples)
    events.sort(key=lambda e: e.at)
    by_member: dict[str, list[PlannedScan]] = {m: [] for m in members}
    for x in plan.scans:
        if x.member_id in by_member:
            by_member[x.member_id].append(x)
    read_of = {c.name.split(" (")[0]: {r.member_id: r for r in c.off} for c in checks}
    sessions_of = plan.sessions_of()
    parts = []
    for m in members:
        t = plan.truth.get(m, 0)
        figures = {
            "true": f"{t:,} s ({t / 3600:.2f} h, {sessions_of.get(m, 0)} sessions)",
            "sessions FINAL": f"{counts['sessions'].get(m, 0):,} s",
            "member_weeks FINAL": f"{counts['weeks'].get(m, 0):,} s",
        }
        for name, rows in read_of.items():
            got = rows.get(m)
            figures[name] = (
                "= truth" if got is None else f"{got.read_h:.2f} h, {got.read_sessions} sessions"
            )
        parts.append(
            diagnose.member_report(
                m,
                figures,
                by_member[m],
                acked_ids,
                in_kafka.get(m, []),
                details.get(m, {}),
                events,
                monitor.samples,
            )
        )
    head = (
        f"### Failure report: drill ({fault.name})\n\n{len(off):,} members off; the first "
        f"{len(members)} by size of the error are in `{stack.root}/failure-report.md`. Times "
        "are UTC; *owner(s) then*: the workers whose latest assignment at the scan's record "
        "time held its `checkins` partition; *commit passed*: the first monitor sample (about "
        "1 s apart) with the group's committed offset beyond the scan; *owner(s) at commit*: "
        "the same at that moment (two: a rebalance under way or a dead member not yet "
        "noticed).\n\n"
    )
    text = head + "\n".join(parts)
    (stack.root / "failure-report.md").write_text(text)
    return head + "\n".join(parts[:REPORT_IN_DOCS])


def run_drill(fault: Fault, args: argparse.Namespace, base: Path) -> Row:
    t_start = time.monotonic()
    stack = DrillStack(base / f"drill-{fault.name}", log)
    plan_size = args.members * args.sessions * 2
    row = Row(f"({fault.name}) {fault.title}", plan_size)
    log(f"=== drill {row.drill} ===")
    monitor: CommitMonitor | None = None
    try:
        stack.start_broker()
        stack.start_api()
        stack.start_worker()
        monitor = CommitMonitor(
            stack.settings.kafka_bootstrap, FAUST_GROUP, stack.settings.topic(CHECKINS.name)
        )
        monitor.start()
        reg = stack.set_up_registry(args.members, args.stations)
        plan = make_plan(
            reg.member_ids,
            reg.station_ids,
            args.sessions,
            datetime.now(UTC),
            http_every=fault.http_every,
            seed=args.seed,
        )
        total = len(plan.scans)
        rate = fault.rate or args.rate
        fault.arm(total / rate, args.sink_inserts_per_s)
        if fault.api_env:
            log(f"restarting the API with {fault.api_env}")
            stack.arm_api(fault.api_env)
        fault.begin(stack, monitor)
        kscans = [s for s in plan.scans if not s.http]
        hscans = [s for s in plan.scans if s.http]
        # The detector's self-test: acknowledged scans that are never sent, evenly spread.
        withheld: set[str] = set()
        if args.withhold_scans:
            every = max(1, len(kscans) // args.withhold_scans)
            withheld = {
                s.client_event_id for s in kscans[every // 2 :: every][: args.withhold_scans]
            }
            kscans = [s for s in kscans if s.client_event_id not in withheld]
            row.notes.append(
                f"self-test: {len(withheld)} scans withheld on purpose but counted as "
                "acknowledged (the drill must fail and name their members)"
            )
        # One total rate, shared in proportion, so both shares span the whole stream.
        krate = rate * len(kscans) / total
        hrate = rate * len(hscans) / total
        log(
            f"sending {len(kscans):,} scans to Kafka at {krate:g}/s and {len(hscans):,} via "
            f"HTTP at {hrate:g}/s"
        )
        ks, hs = SendStats(), SendStats()
        t_send = time.monotonic()
        stack.send_kafka(reg, kscans, krate, ks)
        if hscans:
            stack.send_http(hscans, hs, rate=hrate)
        else:
            hs.done = True
        fault_end: float | None = None
        sent_done: float | None = None
        caught: float | None = None
        deadline = time.monotonic() + args.timeout
        last_report = 0.0
        moved_at, last_acked = time.monotonic(), 0
        next_lag_at = 0.0
        while time.monotonic() < deadline:
            prog = Progress(
                ks.acked + hs.acked + len(withheld), total, time.monotonic() - t_send, False
            )
            prog.done = ks.done and hs.done
            if prog.acked != last_acked:
                moved_at, last_acked = time.monotonic(), prog.acked
            elif not prog.done and not ks.cancel and time.monotonic() - moved_at > args.stall_s:
                # Nothing acknowledged for stall_s: the senders stop (the phones would go on
                # retrying; the drill reports what was never accepted, and fails).
                msg = f"stream stalled: no scan acknowledged for {args.stall_s:g} s"
                log(f"{msg} at {prog.frac:.0%}; stopping the senders")
                row.notes.append(f"{msg} at {prog.frac:.0%}, senders stopped")
                ks.cancel = hs.cancel = True
            if prog.done and sent_done is None:
                sent_done = time.monotonic()
                log(
                    f"all scans sent in {sent_done - t_send:.0f} s: kafka {ks.acked} acked, "
                    f"http {hs.acked} acked {hs.refused}"
                )
            if fault_end is None:
                fault_end = fault.poll(stack, prog)
            row.notes += stack.supervise()
            now = time.monotonic()
            if (
                prog.done
                and now >= next_lag_at
                and (fault_end is not None or now - (sent_done or now) > 60)
            ):
                # Every 2 s: each measurement opens two consumers, CPU the drain needs.
                next_lag_at = now + 2
                lags = stack.lags()
                if lags is not None and not any(lags.values()):
                    caught = time.monotonic()
                    if fault_end is None and not fault.fired_at:
                        row.notes.append("the fault never fired (the stream was over)")
                    elif fault_end is None:
                        # Caught up while the fault was still on: a storm ends on the backlog it
                        # watches, and the group can drain between two of its polls.
                        fault_end = caught
                        row.notes.append("the group caught up before the fault's own end")
                    break
                if now - last_report > 10:
                    log(f"waiting for lag 0: {lags}")
                    last_report = now
            elif not prog.done and now - last_report > 15:
                last = monitor.last
                behind = f", worker group {last.lag:,} behind" if last is not None else ""
                log(f"progress: {prog.frac:.0%} acked, {prog.since_start:.0f} s in{behind}")
                last_report = now
            time.sleep(0.5)
        fault.end()
        row.fault_at = fault.fired_at
        row.notes += fault.notes
        if caught is None:
            row.notes.append(f"did not catch up within {args.timeout:.0f}s")
        elif fault_end is not None:
            assert sent_done is not None
            row.catch_up_s = round(caught - fault_end, 1)
            row.drain_s = round(caught - sent_done, 1)
            row.senders_s = round(sent_done - t_send, 1)
            row.notes.append(f"senders done {sent_done - t_send:.0f} s after the first scan")
        if hs.refused:
            row.notes.append(f"http refused {hs.refused}")
        row.notes += log_findings(stack)
        if ks.retries or hs.retries:
            row.notes.append(f"client re-sends: kafka {ks.retries}, http {hs.retries}")
        acked_ids = ks.acked_ids | hs.acked_ids | withheld
        # What users read, through the public API, before it stops.
        checks: list[reads.ReadCheck] = []
        if stack.api is not None and stack.api.alive:
            try:
                checks = read_checks(
                    stack, reg.unit_id, plan, acked_ids, args.hours_members, args.seed
                )
            except Exception as exc:
                row.notes.append(f"reads not checked: {exc!r}"[:300])
        row.reads = (
            "; ".join(
                ("equal" if c.ok else f"{len(c.off):,} off")
                + f" ({c.requests:,} req, {c.seconds:.0f} s)"
                for c in checks
            )
            or "not checked"
        )
        row.notes += [c.summary() for c in checks if not c.ok]
        # Gracefully: the API's sink flushes and commits what it holds.
        if stack.api is not None:
            stack.api.stop()
        for proc in stack.workers:
            proc.stop()
        monitor.stop()
        save_timeline(stack.root / "timeline.json", monitor, fault.events())
        counts = stack.reconcile_counts()
        s: Reconciled = reconcile(plan.truth, counts["sessions"])
        wk: Reconciled = reconcile(plan.truth, counts["weeks"])
        row.true_h = plan.true_seconds / 3600
        row.sessions_h = s.counted_seconds / 3600
        row.weeks_h = wk.counted_seconds / 3600
        row.lost_h = max(s.lost_seconds, wk.lost_seconds, *(c.lost_h * 3600 for c in checks)) / 3600
        row.doubled_h = (
            max(s.doubled_seconds, wk.doubled_seconds, *(c.doubled_h * 3600 for c in checks)) / 3600
        )
        unacked = [x for x in plan.scans if x.client_event_id not in acked_ids]
        if unacked:
            # Lost hours include these members' sessions the system never accepted a scan of;
            # the rest tells whether anything accepted was lost or doubled.
            off = {x.member_id for x in unacked}
            truth = {m: t for m, t in plan.truth.items() if m not in off}
            rs = reconcile(truth, {m: c for m, c in counts["sessions"].items() if m not in off})
            rw = reconcile(truth, {m: c for m, c in counts["weeks"].items() if m not in off})
            row.notes.append(
                f"{len(unacked):,} scans never acknowledged ({len(off):,} members); among the "
                f"other members lost {max(rs.lost_seconds, rw.lost_seconds) / 3600:.2f} h, "
                f"doubled {max(rs.doubled_seconds, rw.doubled_seconds) / 3600:.2f} h"
            )
        if counts["scan_ids"] != total:
            row.notes.append(f"scans stored {counts['scan_ids']} of {total}")
        if counts["open"] or counts["auto_closed"]:
            row.notes.append(f"open {counts['open']}, auto-closed {counts['auto_closed']}")
        if s.members_off or wk.members_off:
            row.notes.append(f"members off: sessions {s.members_off}, weeks {wk.members_off}")
        restarts = sum(p.restarts for p in [*stack.workers, stack.api] if p is not None)
        if restarts:
            row.notes.append(f"process restarts {restarts}")
        row.ok = (
            s.ok
            and wk.ok
            and bool(checks)
            and all(c.ok for c in checks)
            and caught is not None
            and counts["scan_ids"] == total
        )
        log(f"reconciled: sessions {s}, weeks {wk}")
        if not row.ok:
            try:
                row.report = failure_report(stack, fault, plan, acked_ids, counts, checks, monitor)
                if row.report:
                    row.notes.append("failure report below (members off with scans and timeline)")
            except Exception as exc:
                row.notes.append(f"failure report not written: {exc!r}"[:300])
                log(f"failure report failed: {exc!r}")
    except Exception as exc:
        row.notes.append(f"error: {exc!r}"[:300])
        log(f"drill failed: {exc!r}")
    finally:
        fault.end()
        if monitor is not None:
            monitor.stop()
        stack.stop_all()
        row.wall_s = time.monotonic() - t_start
        log(f"drill {fault.name} took {row.wall_s:.0f} s")
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
    def opt(v: float | None) -> str:
        return "—" if v is None else f"{v:g}"

    return TABLE_HEAD + "".join(
        f"| {r.drill} | {r.events:,} | {r.true_h:,.2f} | {r.sessions_h:,.2f} / {r.weeks_h:,.2f} "
        f"| {r.lost_h:.2f} | {r.doubled_h:.2f} | {r.reads} | {r.fault_at or '—'} "
        f"| {opt(r.catch_up_s)} | {opt(r.drain_s)} | {r.wall_s:.0f} "
        f"| {'PASS' if r.ok else 'FAIL'} | {'; '.join(r.notes)} |\n"
        for r in rows
    )


TABLE_HEAD = (
    "| drill | events | true h | counted h (sessions / weeks) | lost h | doubled h "
    "| users read (member hours; assessment) | fault at (scans acked) | catch-up s "
    "| drain after last scan s | drill wall s | result | notes |\n"
    "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|---|\n"
)
# The column the reads check added: rows of an earlier run get it as "not checked".
READS_COLUMN = 7


def merge_rows(new: list[str], previous: str) -> tuple[list[str], list[str]]:
    """The results table: this run's rows, and the rows of drills not run this time kept from
    the previous document (older rows without the reads column get it, as not checked). Rows
    are ordered by drill letter. Returns the lines and the drills kept."""

    def key(line: str) -> str:
        return line.split("|")[1].strip()[1:2] if line.startswith("| (") else ""

    ran = {key(line) for line in new}
    kept: dict[str, str] = {}
    # Only the results table: the hand-written findings may quote rows of other runs.
    section = previous.split("\n## Results\n", 1)[-1].split("\n## ", 1)[0]
    for line in section.splitlines():
        k = key(line)
        if k and k not in ran:
            cells = line.split("|")
            if len(cells) == TABLE_HEAD.splitlines()[0].count("|"):
                cells.insert(READS_COLUMN, " not checked (earlier run) ")
            kept[k] = "|".join(cells)
    rows = {**kept, **{key(line): line for line in new}}
    return [rows[k] for k in sorted(rows)], sorted(kept)


def header(args: argparse.Namespace) -> str:
    size = args.members * args.sessions * 2
    return (
        "# Fault drills (`make drills`)\n\n"
        "Generated by `python -m bench.drills` (issue 7). Each drill: its own broker, chDB "
        "folder, faust worker(s) and API process (uvicorn, embedded sink); "
        f"{args.members:,} members x {args.sessions} sessions = {size:,} scans with known ids "
        f"and true hours, sent at {args.rate:g} scans/s in all: most straight onto `checkins` "
        "(kafka-python, acks=all, flush rounds of ~0.2 s), every n-th member's through the API "
        "with the phone's retries (n = 20; n = 4 in drill f), each share paced at its part of "
        "the rate so both span the whole stream. Each fault fires on the fraction of scans "
        "acknowledged so far, i.e. while scans are still being published and the worker and "
        "the sink are still consuming (the *fault at* column; the notes give the worker's and "
        "the sink's committed offsets at that moment). Reconciled per member against "
        "`sessions FINAL` and `member_weeks FINAL` after the worker's and the sink's consumer "
        "groups reached lag 0. *catch-up s*: from the end of the fault to lag 0 (lag 0 cannot "
        "come before the last scan is published, so this includes the rest of the stream); "
        "*drain*: from the last acknowledged scan to lag 0 — compare it with the baseline "
        "drill (0). Lost and doubled are summed per member (opposite errors never cancel) and "
        "are the largest of the four views: the two tables, and what users read (issue 12): "
        "before the API stops, the unit's `GET /v1/units/{id}/assessments?year=` (every "
        "member, 1,000 rows a page) and `GET /v1/members/{id}/hours?year=` (one request per "
        "member: "
        + (
            "every member"
            if not args.hours_members or args.members <= args.hours_members
            else f"the assessment's members off and a seeded sample of {args.hours_members:,}"
        )
        + ") are compared with "
        "the truth per member, hours to the API's 0.01 h and sessions exactly (the *users "
        "read* column: members off, requests and seconds of each check). A failed drill "
        "writes a failure report (below the notes, and complete in its data folder): each "
        "member off with its planned scans, where each landed in Kafka and in the raw "
        "`checkins` table, its sessions in `sessions FINAL` (status, flags, credited seconds, "
        "revision), and the rebalance/commit timeline around its scans (the workers' "
        "assignments from their logs, the group's committed offsets sampled every second, "
        "the drill's own actions).\n\n"
        "## Which drill covers which case of the issue\n\n"
        "- *the worker killed before an insert*: (a). The worker never inserts: it writes "
        "sessions and weekly totals to Kafka and the sink inserts them, so a worker killed "
        "mid-stream is killed before the insert of everything it had not yet published (its "
        "input offsets are not committed, it re-reads them). The sink's own process killed "
        "at an arbitrary point (collecting a batch, inserting, or between insert and commit; "
        "not steered) is (f).\n"
        "- *killed between the insert and the commit*: (b), the sink's hook "
        "`SINK_FAULT_AFTER_INSERT` (`os._exit(137)` right after an acknowledged insert).\n"
        "- *the broker restarted*: (c).\n"
        "- *ClickHouse unavailable for a minute*: (d), the sink's hook "
        "`SINK_FAULT_INSERTS_DOWN_S`/`_AFTER` (every insert fails for 60 s).\n"
        "- *a second worker joining and leaving (rebalance)*: (e).\n"
        "- *the API restarted mid-stream*: (f), SIGKILL then restart, phones retrying.\n"
        "- *rebalances under a backlog, many times* (issue 18): (g). Published at "
        f"{args.storm_rate:g} scans/s, faster than the worker keeps up; once the worker group "
        f"is {args.storm_lag:,} scans behind, every ~{args.storm_every_s:g} s (+-30 %) the "
        "group changes: worker2 joins, worker3 joins, worker2 is SIGKILLed, restarted, "
        "worker3 leaves (SIGTERM), worker1 (the original) is SIGKILLed, restarted, worker2 "
        "leaves, and again, with a busy process pinned to core(s) "
        f"{args.spin_cores} (`taskset`, under `timeout -s KILL`), for at most "
        f"{args.storm_s:g} s or until the stream is over and the group is less than "
        f"{args.storm_floor:,} behind; then worker1 alone drains the rest.\n"
    )


NOTES = """## Notes on this run

{generated}
- Fault timing: the Kafka sender flushes every ~0.2 s of scans and counts each round's
  acknowledgements, the HTTP sender each 202, so the acknowledged fraction follows the
  stream; a, c, e (join) and f fire at 25-30 % of it; g's storm starts when the worker group
  is {storm_lag:,} scans behind (sampled every second). b's and d's faults fire inside the sink
  (the hooks count inserts, one per table per batch), so the drill restarts the API with the
  hook set after the registry's setup, before the first scan, and sets the insert number from
  an estimated {inserts_per_s:g} inserts/s to land at ~30 % (b) and ~25 % (d) of the planned
  stream; where they actually landed is in the *fault at* column. A stream that acknowledges
  nothing for {stall_s:g} s is stopped (the phones would go on retrying) and the drill fails.
- The machine has 2 cores and other engineers' tests and benchmarks ran at the same time:
  catch-up and drain times are noisy (seconds to tens of seconds between runs); lost and
  doubled hours are not timing-dependent and are the result.
- Fault hooks: `SINK_FAULT_AFTER_INSERT` (b) and `SINK_FAULT_INSERTS_DOWN_S`/`_AFTER` (d), read
  through `services.settings`, off by default. d's catch-up counts from the end of the outage.
"""


HAND_WRITTEN = "## Findings"
REPORTS = "## Failure reports of this run"


def document(args: argparse.Namespace, rows: list[Row], wall_s: float, previous: str) -> str:
    """docs/drills.md: this run's rows with the previous document's rows of drills not run
    now, this run's notes and failure reports, and the hand-written findings kept as they are
    (every section from the first `## Findings` on, but an older run's failure reports)."""
    lines, kept = merge_rows(table(rows).splitlines()[2:], previous)
    text = TABLE_HEAD + "\n".join(lines) + "\n"
    if kept:
        text += (
            f"\nRows {', '.join(f'({k})' for k in kept)} are from an earlier run (kept from "
            "the previous version of this file); this run ran "
            f"{', '.join(f'({r.drill[1]})' for r in rows)}.\n"
        )
    reports = [r.report for r in rows if r.report]
    tail = ""
    at = previous.find(HAND_WRITTEN)
    if at >= 0:
        tail = previous[at:]
        old = tail.find(REPORTS)
        if old >= 0:
            nxt = tail.find("\n## ", old + len(REPORTS))
            tail = tail[:old] + (tail[nxt + 1 :] if nxt >= 0 else "")
    return (
        f"{header(args)}\n## Machine\n\n{machine()}\n\n## Results\n\n{text}\n"
        f"{notes(args, rows, wall_s)}"
        + (f"\n{REPORTS}\n\n" + "\n".join(reports) if reports else "")
        + (f"\n{tail}" if tail else "")
    )


def notes(args: argparse.Namespace, rows: list[Row], wall_s: float) -> str:
    size = args.members * args.sessions * 2
    lines = [
        f"- Size: {size:,} scans per drill ({args.members:,} members x {args.sessions} "
        f"sessions x 2 scans), {len(rows)} drills, {len(rows) * size:,} scans in all; the whole "
        f"run took {wall_s / 60:.0f} min (per drill, including its broker's and API's start "
        f"and the reconciliation: {', '.join(f'{r.drill[:3]} {r.wall_s:.0f} s' for r in rows)})."
    ]
    base = next((r for r in rows if r.drill.startswith("(0)") and r.ok), None)
    if base is not None and base.senders_s and base.drain_s is not None:
        # The baseline's worker: from the first scan sent to lag 0, the whole stream.
        rate = base.events / (base.senders_s + base.drain_s)
        per_million = 1e6 / rate / 60
        lines.append(
            f"- Not a million per drill: in the baseline the single faust worker was done "
            f"{base.senders_s + base.drain_s:.0f} s after the first scan, about {rate:,.0f} "
            f"scans/s while it shared the 2 cores with the broker, the API with its sink, the "
            f"senders and other engineers' benchmarks. A million scans would take about "
            f"{per_million:.0f} min per drill to publish and drain, "
            f"{per_million * len(rows) / 60:.1f} h for the set. The size is an option "
            f'(`make drills DRILL_ARGS="--scans 1000000 --timeout 5400"`).'
        )
    return NOTES.format(
        generated="\n".join(lines),
        inserts_per_s=args.sink_inserts_per_s,
        stall_s=args.stall_s,
        storm_lag=args.storm_lag,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=15000)
    p.add_argument("--sessions", type=int, default=5, help="sessions per member (2 scans each)")
    p.add_argument(
        "--scans", type=int, default=0, help="scans per drill (sets --members; 0: members x 2k)"
    )
    p.add_argument("--stations", type=int, default=20)
    p.add_argument("--rate", type=float, default=1000.0, help="scans/s in all (Kafka + HTTP)")
    p.add_argument("--ch-down-s", type=float, default=60.0, help="drill d's outage")
    p.add_argument(
        "--sink-inserts-per-s",
        type=float,
        default=4.5,
        help="the sink's estimated insert rate, to time b's and d's hooks",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="per drill, s (0: 1,200 per 150,000 scans, at least 1,200)",
    )
    p.add_argument(
        "--stall-s",
        type=float,
        default=120.0,
        help="stop the senders (and fail) when no scan was acknowledged for this long",
    )
    p.add_argument("--storm-rate", type=float, default=4000.0, help="drill g's scans/s in all")
    p.add_argument("--storm-every-s", type=float, default=6.0, help="drill g: between changes")
    p.add_argument("--storm-s", type=float, default=300.0, help="drill g: the storm's bound")
    p.add_argument(
        "--storm-lag", type=int, default=20000, help="drill g: the backlog that starts the storm"
    )
    p.add_argument(
        "--storm-floor", type=int, default=5000, help="drill g: the backlog that ends the storm"
    )
    p.add_argument("--spin-cores", default="0", help="drill g: cores kept busy (comma list)")
    p.add_argument(
        "--withhold-scans",
        type=int,
        default=0,
        help="self-test of the detector: never send N scans but count them as acknowledged",
    )
    p.add_argument(
        "--hours-members",
        type=int,
        default=5000,
        help="member hours read (one request each) for every member up to N members, beyond "
        "that for the assessment's members off plus a seeded sample of N (0: every member)",
    )
    p.add_argument("--only", default="0,a,b,c,d,e,f,g", help="drills to run (0: no fault)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default=str(ROOT / "docs" / "drills.md"))
    args = p.parse_args(argv)
    if args.scans:
        args.members = max(1, args.scans // (2 * args.sessions))
    if not args.timeout:
        args.timeout = 1200.0 * max(1.0, args.members * args.sessions * 2 / 150_000)
    faults: dict[str, Callable[[], Fault]] = {
        "0": NoFault,
        "a": WorkerKilled,
        "b": SinkKilledAfterInsert,
        "c": BrokerRestarted,
        "d": lambda: ClickHouseDown(args.ch_down_s),
        "e": Rebalance,
        "f": ApiRestarted,
        "g": lambda: RebalanceStorm(args),
    }
    base = ROOT / "data" / "drills" / datetime.now().strftime("%Y%m%d-%H%M%S")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    rows = [run_drill(faults[k](), args, base) for k in args.only.split(",")]
    wall_s = time.monotonic() - t0
    base.mkdir(parents=True, exist_ok=True)
    (base / "results.json").write_text(
        json.dumps({"args": vars(args), "wall_s": wall_s, "rows": [asdict(r) for r in rows]})
    )
    text = table(rows)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document(args, rows, wall_s, out.read_text() if out.exists() else ""))
    log(f"written to {out} ({wall_s / 60:.0f} min in all)")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
