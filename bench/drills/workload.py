"""The drills' workload and reconciliation: pure, seeded, unit tested (no network).

Each member serves `sessions` times in the last ~44 hours; every session is a check-in and a
check-out at one station, whole seconds apart, never overlapping and never open long enough to
be closed as a forgotten check-out, so the true credited seconds per member are known exactly.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.settings import Settings

WINDOW = timedelta(hours=44)
LOCAL = ZoneInfo("Asia/Shanghai")
NS = uuid.UUID("6c1f1b1e-7d0e-4f43-9d0a-3c2b8f0e5a11")
# The drills' stacks run with the default WEEK_MIN_CREDITED_MIN.
WEEK_MINIMUM = timedelta(minutes=Settings.model_fields["week_min_credited_min"].default)


@dataclass(frozen=True)
class PlannedScan:
    member_id: str
    station_id: str
    action: Literal["in", "out"]
    at: datetime
    client_event_id: str
    http: bool  # sent through the API, else published straight onto `checkins`


@dataclass
class Plan:
    scans: list[PlannedScan] = field(default_factory=list)
    truth: dict[str, int] = field(default_factory=dict)  # member id -> credited seconds

    @property
    def true_seconds(self) -> int:
        return sum(self.truth.values())

    def sessions_of(self, minimum: timedelta = WEEK_MINIMUM) -> dict[str, int]:
        """Planned sessions per member that count as a service: those credited at least the
        weekly minimum (a shorter one keeps its hours but is no service until an organizer
        approves it, `services.counting.counted`)."""
        out: dict[str, int] = {}
        opened: dict[str, datetime] = {}
        for s in self.scans:
            if s.action == "in":
                opened[s.member_id] = s.at
                out.setdefault(s.member_id, 0)
            elif s.at - opened.pop(s.member_id) >= minimum:
                out[s.member_id] += 1
        return out

    def years(self) -> list[int]:
        """Every year a read must be asked for to see all the planned service: the calendar
        year of a session's local start (member hours) and its ISO week-year (the assessment);
        they differ only in the last and first days of a year."""
        ys: set[int] = set()
        for s in self.scans:
            if s.action == "in":
                d = s.at.astimezone(LOCAL).date()
                ys |= {d.year, d.isocalendar()[0]}
        return sorted(ys)


def make_plan(
    member_ids: list[str],
    station_ids: list[str],
    sessions: int,
    now: datetime,
    http_every: int = 0,
    seed: int = 7,
) -> Plan:
    """Scans in publishing order: round-robin over members, each session's check-in then,
    a round later, its check-out (as phones interleave in a real county). `http_every`: every
    n-th member scans through the API (0 = none, 1 = all)."""
    if sessions < 1 or not member_ids or not station_ids:
        raise ValueError("need members, stations and at least one session each")
    rng = random.Random(seed)
    slot = WINDOW / sessions
    plan = Plan()
    rounds: list[list[PlannedScan]] = [[] for _ in range(2 * sessions)]
    for i, member in enumerate(member_ids):
        http = bool(http_every) and i % http_every == 0
        total = 0
        for k in range(sessions):
            start = now - WINDOW + k * slot + timedelta(seconds=rng.randint(0, 600))
            length = rng.randint(15 * 60, int(min(slot.total_seconds() * 0.6, 4 * 3600)))
            station = station_ids[rng.randrange(len(station_ids))]
            steps: tuple[tuple[Literal["in", "out"], datetime], ...] = (
                ("in", start),
                ("out", start + timedelta(seconds=length)),
            )
            for j, (action, at) in enumerate(steps):
                cid = str(uuid.uuid5(NS, f"{seed}|{member}|{k}|{action}"))
                rounds[2 * k + j].append(PlannedScan(member, station, action, at, cid, http))
            total += length
        plan.truth[member] = total
    for r in rounds:
        plan.scans.extend(r)
    return plan


@dataclass(frozen=True)
class Reconciled:
    true_seconds: int
    counted_seconds: int
    lost_seconds: int
    doubled_seconds: int
    members_off: int

    @property
    def ok(self) -> bool:
        return self.lost_seconds == 0 and self.doubled_seconds == 0


def reconcile(truth: Mapping[str, int], counted: Mapping[str, int]) -> Reconciled:
    """Per member: seconds missing (lost) and seconds beyond the truth (doubled); credit to a
    member not in the truth is all doubled. Opposite errors in two members never cancel."""
    lost = doubled = off = 0
    for member in set(truth) | set(counted):
        t, c = truth.get(member, 0), counted.get(member, 0)
        lost += max(0, t - c)
        doubled += max(0, c - t)
        off += t != c
    return Reconciled(sum(truth.values()), sum(counted.values()), lost, doubled, off)


@dataclass(frozen=True)
class MemberOff:
    member_id: str
    true_seconds: int
    counted_seconds: int

    @property
    def diff_seconds(self) -> int:
        """Positive: doubled; negative: lost."""
        return self.counted_seconds - self.true_seconds


def members_off(truth: Mapping[str, int], counted: Mapping[str, int]) -> list[MemberOff]:
    """Every member whose count differs from the truth, the largest difference first (ties by
    id, so a report is stable)."""
    off = [
        MemberOff(m, truth.get(m, 0), counted.get(m, 0))
        for m in set(truth) | set(counted)
        if truth.get(m, 0) != counted.get(m, 0)
    ]
    return sorted(off, key=lambda o: (-abs(o.diff_seconds), o.member_id))
