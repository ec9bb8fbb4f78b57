"""What members do in simulated weeks, and what the service must credit for it: pure and seeded.

`plan_scans` turns a county and a span of simulated time into every scan members make, each with
the simulated time the phone scanned (`scanned_at`) and the simulated time it reaches the server
(`send_at`, later than `scanned_at` for a phone that was offline). `expected_truth` applies the
session rules the stream worker applies (`services.sessions.apply`) to the scans the server
accepted, in the order they were sent, so a run can be reconciled with ClickHouse exactly.

Behaviour (per member, fixed by the seed): most serve once a week (the program's rule), some two
or three times, some rarely, some never. Per session: a few forget to check out, a few scan twice
in a row, a few scan offline and their scans arrive hours later.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from services.demo.county import County, DemoMember
from services.events import CheckinScanned, Event, SessionRecorded, derived_id
from services.sessions import MemberState, SessionRules, contributes, on_clock, on_scan
from services.timeutil import LOCAL_TZ

Habit = Literal["never", "rare", "weekly", "keen"]
# Shares of members by habit: the program asks for one service a week; some never show up.
HABITS: tuple[tuple[Habit, int], ...] = (("never", 7), ("rare", 8), ("weekly", 68), ("keen", 17))

P_FORGET_CHECKOUT = 0.04
P_DOUBLE_SCAN = 0.05
P_OFFLINE = 0.03

# A fixed namespace: the same seed and member give the same client_event_ids in every run, so a
# re-run of the simulator re-sends the same scans and the service must not count them twice.
_SCAN_NS = uuid.UUID("0b6a3f0e-8d7c-4e52-a1f9-3c2d4e5f6a7b")


@dataclass(frozen=True)
class PlannedScan:
    member_key: str
    station_key: str
    action: Literal["in", "out"]
    scanned_at: datetime
    send_at: datetime
    client_event_id: str
    note: Literal["normal", "double", "offline", "forgot"] = "normal"

    def as_event(self, member_id: str, received_at: datetime) -> CheckinScanned:
        """The scan as the session rules see it (its places left out: the rules pair by
        member and station, and the truth needs no more)."""
        return CheckinScanned(
            event_id=derived_id("checkin", member_id, self.client_event_id),
            occurred_at=self.scanned_at,
            member_id=member_id,
            station_id=self.station_key,
            station_community_id="-",
            unit_id="-",
            member_community_id="-",
            action=self.action,
            client_event_id=self.client_event_id,
            received_at=received_at,
        )


def habit_of(seed: int, member: DemoMember) -> Habit:
    rng = random.Random(f"{seed}:habit:{member.key}")
    return rng.choices([h for h, _ in HABITS], [w for _, w in HABITS])[0]


def _sessions_in_week(rng: random.Random, habit: Habit) -> int:
    if habit == "never":
        return 0
    if habit == "rare":
        return 1 if rng.random() < 0.3 else 0
    if habit == "weekly":
        return 1 if rng.random() < 0.92 else 0
    return rng.choice((2, 2, 3))


def plan_scans(county: County, start: datetime, weeks: int, seed: int) -> list[PlannedScan]:
    """Every scan in [start, start + weeks) of simulated time, ordered by arrival at the server.

    `start` is tz-aware; each simulated week is the 7 days from `start + 7k`. Members serve in
    their home community, mostly at a favourite station, between 08:00 and 19:00 local time,
    for one to four hours, on distinct days (so an offline phone's queue, sent within 8 h,
    always arrives before the member's next service).
    """
    if start.tzinfo is None:
        raise ValueError("start must carry a time zone")
    end = start + timedelta(weeks=weeks)
    by_comm: dict[str, list[str]] = {}
    for s in county.stations:
        by_comm.setdefault(s.community_key, []).append(s.key)
    scans: list[PlannedScan] = []
    for m in county.members:
        habit = habit_of(seed, m)
        if habit == "never":
            continue
        rng = random.Random(f"{seed}:weeks:{m.key}:{start.isoformat()}")
        stations = by_comm[m.community_key]
        favourite = rng.choice(stations)
        n_scan = 0

        def scan(
            station: str,
            action: Literal["in", "out"],
            at: datetime,
            sent: datetime,
            note: Literal["normal", "double", "offline", "forgot"],
            mkey: str = m.key,
        ) -> None:
            nonlocal n_scan
            n_scan += 1
            cid = uuid.uuid5(_SCAN_NS, f"{seed}:{mkey}:{start.isoformat()}:{n_scan}")
            scans.append(PlannedScan(mkey, station, action, at, sent, str(cid), note))

        for week in range(weeks):
            week_start = start + timedelta(weeks=week)
            days = sorted(rng.sample(range(7), _sessions_in_week(rng, habit)))
            for d in days:
                day = (week_start + timedelta(days=d)).astimezone(LOCAL_TZ).date()
                minute = 8 * 60 + 15 * rng.randrange(0, 45)  # 08:00 to 19:00
                t_in = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ) + timedelta(
                    minutes=minute
                )
                t_in = t_in.astimezone(UTC)
                dur = timedelta(minutes=15 * rng.choice((4, 6, 8, 8, 8, 10, 12, 16)))
                t_out = t_in + dur
                station = favourite if rng.random() < 0.7 else rng.choice(stations)
                if t_in < start or t_out >= end:
                    continue
                r = rng.random()
                if r < P_FORGET_CHECKOUT:
                    scan(station, "in", t_in, t_in, "forgot")
                elif r < P_FORGET_CHECKOUT + P_OFFLINE:
                    # The phone queued both scans and sent them once it was back online.
                    late = t_out + timedelta(minutes=rng.randrange(60, 8 * 60))
                    if late >= end:
                        late = t_out
                    scan(station, "in", t_in, late, "offline")
                    scan(station, "out", t_out, late, "offline")
                elif r < P_FORGET_CHECKOUT + P_OFFLINE + P_DOUBLE_SCAN:
                    again = t_in + timedelta(seconds=rng.randrange(5, 90))
                    scan(station, "in", t_in, t_in, "normal")
                    scan(station, "in", again, again, "double")
                    scan(station, "out", t_out, t_out, "normal")
                else:
                    scan(station, "in", t_in, t_in, "normal")
                    scan(station, "out", t_out, t_out, "normal")
    # Arrival order; a member's own scans keep their order (stable sort, planned in order).
    scans.sort(key=lambda s: s.send_at)
    return scans


@dataclass(frozen=True)
class MemberTruth:
    sessions: int
    seconds: int
    open_sessions: int
    flagged: int


def expected_truth(
    accepted: Iterable[tuple[str, PlannedScan, datetime]],
    clock: datetime,
    rules: SessionRules | None = None,
) -> dict[str, MemberTruth]:
    """Per member id: what ClickHouse must show once every accepted scan has been paired.

    `accepted` is (member_id, scan, received_at) for each scan the server accepted; `clock` is
    a time the worker's clock has passed (sessions still open behind their deadline then are
    closed as forgotten). The stream's own rules decide (`on_scan`, `on_clock`) and its own
    `contributes` says what a session adds, which is the rule the warehouse reads use: the
    truth follows the rules wherever they go, and a reconciliation checks that nothing was
    lost or counted twice between the API and ClickHouse.
    """
    rules = rules or SessionRules()
    states: dict[str, MemberState] = {}
    latest: dict[str, dict[str, SessionRecorded]] = {}

    def keep(member_id: str, events: list[Event]) -> None:
        mine = latest.setdefault(member_id, {})
        for rec in events:
            if isinstance(rec, SessionRecorded):
                prev = mine.get(rec.session_id)
                if prev is None or rec.revision > prev.revision:
                    mine[rec.session_id] = rec

    for member_id, s, received_at in accepted:
        ev = s.as_event(member_id, received_at)
        state, out = on_scan(states.get(member_id, MemberState()), ev, rules)
        states[member_id] = state
        keep(member_id, out)
    for member_id, state in states.items():
        _, out = on_clock(state, f"truth:{clock.isoformat()}", clock, rules)
        keep(member_id, out)
    truth: dict[str, MemberTruth] = {}
    for member_id, sessions in latest.items():
        counted = [(r, contributes(r)) for r in sessions.values()]
        truth[member_id] = MemberTruth(
            sessions=sum(n for _, (n, _) in counted),
            seconds=sum(sec for _, (_, sec) in counted),
            open_sessions=sum(1 for r in sessions.values() if r.status == "open" and not r.voided),
            flagged=sum(1 for r, (n, _) in counted if n and r.flags),
        )
    return truth
