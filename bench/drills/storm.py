"""Drill g's machinery: a rebalance storm under a backlog, CPU contention applied on purpose,
and the commit/rebalance timeline every drill records so a failure can be diagnosed afterwards.

- `CommitMonitor` samples the worker group's committed offset and the end offset of every
  `checkins` partition about once a second (one admin request, one end-offsets request):
  the lag the storm steers by, and the moments each partition's commit moved.
- `Spinners` are busy processes pinned to a core with `taskset`, each under `timeout -s KILL`
  so they die on time even if the drill itself is killed.
- `StormPlan` is the cycle of group changes (pure, seeded, unit tested); the storm thread plays
  it, one step every few seconds, while the worker group is tens of thousands behind.
- `worker_events` reads the faust workers' logs into timestamped events (assignments, seeks,
  readiness, revocations), with the `checkins` partitions each assignment gave.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from services.topics import CHECKINS

Action = Literal["join", "leave", "kill", "restart"]


@dataclass(frozen=True)
class Event:
    """One line of the timeline: when, which process or actor, what."""

    at: datetime
    who: str
    what: str
    partitions: frozenset[int] | None = None  # `checkins` partitions an assignment gave


@dataclass(frozen=True)
class Step:
    action: Action
    worker: int  # 1-based: worker1 is the drill's first worker


# One cycle of group changes, from worker1 alone back to worker1 alone: joins, a clean leave, a
# SIGKILL of a joined worker and of the original one (the common production case: the busy
# worker is the one that dies), each followed by its restart.
CYCLE: tuple[Step, ...] = (
    Step("join", 2),
    Step("join", 3),
    Step("kill", 2),
    Step("restart", 2),
    Step("leave", 3),
    Step("kill", 1),
    Step("restart", 1),
    Step("leave", 2),
)


@dataclass
class StormPlan:
    """The storm's steps and the pause before each: `every_s` with +-30 % jitter (seeded), so
    steps do not fall into step with the group's heartbeats."""

    every_s: float
    seed: int = 7
    _rng: random.Random = field(init=False)
    _i: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next(self) -> tuple[float, Step]:
        step = CYCLE[self._i % len(CYCLE)]
        self._i += 1
        return self.every_s * self._rng.uniform(0.7, 1.3), step

    @staticmethod
    def settle() -> list[Step]:
        """What brings the group back to worker1 alone from anywhere in the cycle."""
        return [Step("leave", 2), Step("leave", 3), Step("restart", 1)]


# ---- the worker group's commits -----------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: datetime
    ends: dict[int, int]
    committed: dict[int, int]

    @property
    def lag(self) -> int:
        return sum(max(0, e - self.committed.get(p, 0)) for p, e in self.ends.items())


class CommitMonitor:
    """Samples the worker group's progress on `checkins` in a thread of its own."""

    def __init__(self, bootstrap: str, group: str, topic: str, interval_s: float = 1.0) -> None:
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    @property
    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def _clients(self) -> tuple[object, object]:
        from kafka import KafkaAdminClient, KafkaConsumer

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=5000, api_version=(3, 9)
        )
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            api_version=(3, 9),
            request_timeout_ms=5000,
        )
        return admin, consumer

    def _run(self) -> None:
        from kafka import TopicPartition

        parts = [TopicPartition(self.topic, p) for p in range(CHECKINS.partitions)]
        admin = consumer = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                if admin is None or consumer is None:
                    admin, consumer = self._clients()
                ends = consumer.end_offsets(parts)  # type: ignore[attr-defined]
                got = admin.list_group_offsets(self.group)  # type: ignore[attr-defined]
                offs = got.get(self.group, {})
                committed = {
                    tp.partition: int(o.offset)
                    for tp, o in offs.items()
                    if tp.topic == self.topic and o.offset >= 0
                }
                self.samples.append(
                    Sample(
                        datetime.now(UTC),
                        {tp.partition: int(e) for tp, e in ends.items()},
                        committed,
                    )
                )
            except Exception:
                # The broker restarting (drill c) or busy: the timeline has a gap, nothing more.
                self.errors += 1
                for c in (admin, consumer):
                    with contextlib.suppress(Exception):
                        c.close()  # type: ignore[attr-defined]
                admin = consumer = None
            self._stop.wait(max(0.1, self.interval_s - (time.monotonic() - t0)))
        for c in (admin, consumer):
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()  # type: ignore[attr-defined]

    def max_lag(self) -> int:
        return max((s.lag for s in self.samples), default=0)


def commit_events(samples: list[Sample]) -> list[Event]:
    """Each sample where a partition's committed offset moved, as events (who: the group)."""
    out: list[Event] = []
    prev: dict[int, int] = {}
    for s in samples:
        for p in sorted(s.committed):
            c = s.committed[p]
            if prev.get(p) != c:
                lag = s.ends.get(p, c) - c
                out.append(
                    Event(
                        s.at, "commit", f"p{p} committed {prev.get(p, 0):,} -> {c:,} (lag {lag:,})"
                    )
                )
                prev[p] = c
    return out


def passed_at(samples: list[Sample], partition: int, offset: int) -> datetime | None:
    """The first sample in which the group's commit on the partition was beyond the offset."""
    for s in samples:
        if s.committed.get(partition, -1) > offset:
            return s.at
    return None


# ---- CPU contention -----------------------------------------------------------------------


class Spinners:
    """Busy processes, each pinned to a core; bounded in time by `timeout` and stopped by their
    own process group (each is started in a session of its own)."""

    def __init__(self, cores: list[int], max_s: float, nice: int = 0) -> None:
        self.cores, self.max_s, self.nice = cores, max_s, nice
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for core in self.cores:
            argv = ["timeout", "-s", "KILL", str(int(self.max_s)), "taskset", "-c", str(core)]
            argv += ["nice", "-n", str(self.nice), sys.executable, "-c", "while True: pass"]
            self.procs.append(
                subprocess.Popen(
                    argv,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        self.procs = []

    @property
    def running(self) -> int:
        return sum(p.poll() is None for p in self.procs)


# ---- the workers' logs --------------------------------------------------------------------

_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
# What a worker says at the moments that matter around a rebalance (faust's and aiokafka's
# INFO lines; our own warnings).
_MARKERS = (
    "Setting newly assigned partitions",
    "Seek stream partitions to committed offsets",
    "Worker]: Ready",
    "Revoking previously assigned partitions",
    "(Re-)joining group",
    "Elected group leader",
    "Successfully synced group",
    "Heartbeat failed",
    "session batch failed",
    "Worker]: Stopping",
    "Crashed reason",
    "WARNING",
    "ERROR",
)


def parse_partitions(cell: str) -> frozenset[int]:
    """faust's assignment table cell: `{0-2}`, `{0, 3, 5}`, `{1, 3-4}`."""
    out: set[int] = set()
    for part in cell.strip().strip("{}").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out |= set(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return frozenset(out)


# Lines after which a worker holds no partition until its next assignment.
_RELEASES = ("Revoking previously assigned partitions", "Worker]: Stopping", "Crashed reason")
_KILLED = re.compile(r"^(?:settle: )?(worker\d+) SIGKILLed")


def worker_events(name: str, text: str, topic: str = CHECKINS.name) -> list[Event]:
    """The timestamped rebalance events in one worker's log (faust's text format, local time);
    an assignment event carries the `checkins` partitions it gave, a revocation, a stop or a
    crash an empty set (it holds nothing until its next assignment)."""
    out: list[Event] = []
    lines = text.splitlines()
    # After "Stopping" a worker may still finish a rebalance and be handed partitions it will
    # never consume (the group notices it left later): shown, but not counted as owning them.
    stopping = False
    for i, line in enumerate(lines):
        m = _TS.match(line)
        if m and "Worker]: Starting" in line:
            stopping = False
        if not m or not any(k in line for k in _MARKERS):
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
        what = line[m.end() :].strip()
        # Drop the pid and level brackets faust prints before the message.
        what = re.sub(r"^\[\d+\] \[(INFO|WARNING|ERROR)\] ", "", what)[:200]
        parts: frozenset[int] | None = None
        if any(k in line for k in _RELEASES):
            parts = frozenset()
        if "Setting newly assigned partitions" in line:
            parts = frozenset()
            for row in lines[i + 1 : i + 30]:
                cells = [c.strip() for c in row.strip().strip("|").split("|")]
                if len(cells) == 2 and cells[0] == topic:
                    parts = parse_partitions(cells[1])
                    break
                if _TS.match(row):
                    break
            what = f"assigned checkins {sorted(parts) if parts else 'none'}"
            if stopping:
                what, parts = f"{what} while stopping (not consumed)", frozenset()
        if "Worker]: Stopping" in line:
            stopping = True
        out.append(Event(at, name, what, parts))
    return out


def owners_at(events: list[Event], partition: int, at: datetime) -> list[str]:
    """Workers whose latest assignment before `at` included the partition and who had not
    released it since (revoked, stopped, crashed, or SIGKILLed by the storm). More than one:
    a rebalance was under way."""
    latest: dict[str, tuple[datetime, frozenset[int]]] = {}
    for e in events:
        if e.at > at:
            continue
        who, parts = e.who, e.partitions
        killed = _KILLED.match(e.what) if e.who == "storm" else None
        if killed:
            who, parts = killed.group(1), frozenset()
        if parts is not None and (who not in latest or latest[who][0] <= e.at):
            latest[who] = (e.at, parts)
    return sorted(w for w, (_, parts) in latest.items() if partition in parts)


def read_worker_events(logs: dict[str, Path]) -> list[Event]:
    out: list[Event] = []
    for name, path in logs.items():
        if path.exists():
            out += worker_events(name, path.read_text(errors="replace"))
    return sorted(out, key=lambda e: e.at)


# ---- the storm ----------------------------------------------------------------------------


@dataclass
class StormState:
    started_at: float | None = None
    ended_at: float | None = None
    steps: int = 0
    lag_at_start: int = 0
    lag_at_end: int = 0
    timeline: list[Event] = field(default_factory=list)
    error: str = ""


def run_storm(
    plan: StormPlan,
    apply: Callable[[Step], str],
    lag: Callable[[], int | None],
    stream_done: Callable[[], bool],
    max_s: float,
    floor: int,
    state: StormState,
    stop: threading.Event,
) -> None:
    """Plays the plan until `max_s` passed, or the stream is over and the lag fell below
    `floor` (the backlog is gone: rebalances now would test nothing), or `stop` is set; then
    settles the group back to worker1 alone. `apply` performs one step and says what it did."""
    t0 = time.monotonic()
    state.started_at = t0
    state.lag_at_start = lag() or 0
    try:
        while not stop.is_set() and time.monotonic() - t0 < max_s:
            current = lag()
            if stream_done() and current is not None and current < floor:
                break
            pause, step = plan.next()
            if stop.wait(pause):
                break
            what = apply(step)
            state.steps += 1
            state.timeline.append(Event(datetime.now(UTC), "storm", what))
    except Exception as exc:  # reported in the drill's notes; the settle below still runs
        state.error = repr(exc)[:300]
    finally:
        for step in plan.settle():
            try:
                what = apply(step)
            except Exception as exc:
                what = f"settle {step}: {exc!r}"[:300]
            if what:
                state.timeline.append(Event(datetime.now(UTC), "storm", f"settle: {what}"))
        state.ended_at = time.monotonic()
        state.lag_at_end = lag() or 0
