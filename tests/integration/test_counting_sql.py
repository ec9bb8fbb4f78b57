"""Each SQL fragment of `services.counting` evaluated in chDB against the pure rule it mirrors."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services import counting
from services.events import SessionRecorded
from services.reads.registry import Change, MemberThen, member_then
from services.sessions import contributes
from services.settings import Settings
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import migrate

pytestmark = pytest.mark.clickhouse

STATUSES = ["open", "closed", "auto_closed", "capped", "adjusted", "rejected"]
FLAG_SETS = [
    [],
    [counting.ANOMALY_FLAG],
    ["over_cap"],
    ["forgotten_checkout", "approved"],
    [counting.BELOW_MINIMUM_FLAG],
    ["forgotten_checkout", counting.BELOW_MINIMUM_FLAG],
    [counting.BELOW_MINIMUM_FLAG, "approved"],
    [counting.BELOW_MINIMUM_FLAG, "adjusted"],
    [counting.ANOMALY_FLAG, counting.BELOW_MINIMUM_FLAG, "approved"],
]


@pytest.fixture(scope="module")
def wh(chdb_path: Path) -> Iterator[Warehouse]:
    settings = Settings(
        clickhouse_dsn=f"chdb://{chdb_path}", clickhouse_database=f"c{uuid.uuid4().hex[:8]}"
    )
    w = connect(settings)
    migrate(w)
    yield w


def _session(
    i: int, status: str, flags: list[str], voided: bool, start: datetime
) -> SessionRecorded:
    return SessionRecorded(
        event_id=f"e{i}",
        occurred_at=start,
        session_id=f"s{i}",
        revision=1,
        member_id="m1",
        unit_id="u1",
        member_community_id="c1",
        station_id="st1",
        station_community_id="c1",
        start=start,
        end=start + timedelta(hours=2),
        credited_seconds=3600 + i,
        status=status,
        flags=flags,
        checkin_event_id=None,
        checkout_event_id=None,
        voided=voided,
    )


def test_counted_credited_and_seconds_match_the_pure_rule(wh: Warehouse) -> None:
    start = datetime(2026, 11, 30, 1, tzinfo=UTC)
    combos = list(itertools.product(STATUSES, FLAG_SETS, [False, True]))
    sessions = [_session(i, s, f, v, start) for i, (s, f, v) in enumerate(combos)]
    wh.insert(
        "sessions",
        [
            (
                r.session_id,
                r.revision,
                r.member_id,
                r.status,
                r.flags,
                int(r.voided),
                r.credited_seconds,
                r.start,
            )
            for r in sessions
        ],
        [
            "session_id",
            "revision",
            "member_id",
            "status",
            "flags",
            "voided",
            "credited_seconds",
            "start",
        ],
    )
    got = {
        str(sid): (int(c), int(cr), int(sec))
        for sid, c, cr, sec in wh.query(
            f"SELECT session_id, {counting.COUNTED_SQL}, {counting.CREDITS_SQL}, "
            f"{counting.SECONDS_SQL} FROM sessions FINAL WHERE member_id = 'm1'"
        )
    }
    extra = {
        str(sid): (int(b), int(rec))
        for sid, b, rec in wh.query(
            f"SELECT session_id, {counting.BELOW_MINIMUM_SQL}, {counting.RECORDED_SQL} "
            "FROM sessions FINAL WHERE member_id = 'm1'"
        )
    }
    assert len(got) == len(combos)
    for r in sessions:
        n, secs = contributes(r)
        assert got[r.session_id] == (
            int(r.counted),
            int(counting.credits(r.status, r.voided)),
            counting.credited_seconds(r.status, r.voided, r.credited_seconds),
        ), (r.status, r.flags, r.voided)
        assert extra[r.session_id] == (
            int(counting.below_minimum(r.status, r.flags, r.voided)),
            int(counting.recorded(r.status, r.flags, r.voided, r.credited_seconds)),
        ), (r.status, r.flags, r.voided)
        # The agent's weekly contribution is the same rule.
        assert (n, secs) == (got[r.session_id][0], got[r.session_id][2])
    # The rule itself, spelled out once: voided sessions neither count nor credit.
    assert all(got[r.session_id] == (0, 0, 0) for r in sessions if r.voided)


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC),  # 2025-12-31 23:59:59 local
        datetime(2025, 12, 31, 16, 0, 0, tzinfo=UTC),  # 2026-01-01 00:00 local
        datetime(2026, 12, 31, 17, 0, 0, tzinfo=UTC),  # 2027-01-01 01:00 local, ISO week 2026-W53
        datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC),
    ],
)
def test_year_sql_is_the_local_calendar_year(wh: Warehouse, instant: datetime) -> None:
    got = wh.query(
        f"SELECT {counting.YEAR_SQL} FROM (SELECT toDateTime64(%(t)s, 3, 'UTC') AS start)",
        {"t": instant},
    )
    assert int(got[0][0]) == counting.session_year(instant)
    lo, hi = counting.year_bounds(counting.session_year(instant))
    assert lo <= instant < hi


def _history(
    wh: Warehouse, member: str, version: int, at: datetime, changes: dict[str, tuple[str, str]]
) -> None:
    wh.insert(
        "registry_history",
        [
            (
                f"h-{member}-{version}",
                "member",
                member,
                version,
                "update",
                "admin:x",
                at,
                list(changes),
                [b for b, _ in changes.values()],
                [a for _, a in changes.values()],
            )
        ],
        [
            "event_id",
            "entity_kind",
            "entity_id",
            "version",
            "operation",
            "changed_by",
            "changed_at",
            "fields",
            "before",
            "after",
        ],
    )


def test_registered_as_of_a_week_undoes_later_changes(wh: Warehouse) -> None:
    """A past week's registered members are the registry as it stood at the week's end."""
    week_last_day = date(2026, 11, 22)  # 2026-W47
    cutoff = counting.week_cutoff(week_last_day, datetime(2026, 11, 30, tzinfo=UTC))
    after = cutoff + timedelta(days=2)
    before = cutoff - timedelta(days=2)
    members = [
        # id, community, grid, status, reported_on (current rows)
        ("r1", "cA", None, "active", None),  # unchanged
        ("r2", "cA", None, "left", date(2026, 1, 5)),  # set to left after the week
        ("r3", "cB", "g2", "active", None),  # moved cA -> cB (and grid) after the week
        ("r4", "cA", None, "left", None),  # left before the week
        ("r5", "cA", None, "active", date(2026, 11, 25)),  # reported after the week
        ("r6", "cA", "g1", "active", date(2026, 11, 1)),  # reported_on set after the week
    ]
    wh.insert(
        "members",
        [(m, m, "u1", c, g, s, r, 2) for m, c, g, s, r in members],
        ["id", "name", "unit_id", "community_id", "grid_id", "status", "reported_on", "version"],
    )
    _history(wh, "r2", 2, after, {"status": ('"active"', '"left"')})
    _history(wh, "r3", 2, after, {"community_id": ('"cA"', '"cB"'), "grid_id": ("null", '"g2"')})
    _history(wh, "r4", 2, before, {"status": ('"active"', '"left"')})
    _history(wh, "r6", 2, after, {"reported_on": ("null", '"2026-11-01"')})
    p = {"end": week_last_day, "cutoff": cutoff}
    past = counting.registered_sql("community_id = 'cA'", cutoff, cutoff + timedelta(days=8))
    rows = {str(r[0]): r for r in wh.query(past, p)}
    assert sorted(rows) == ["r1", "r2", "r3", "r6"]
    assert rows["r3"][2] is None  # its grid then
    # Now (the current week): the current rows.
    now = datetime(2026, 11, 30, tzinfo=UTC)
    current = counting.registered_sql("community_id = 'cA'", now, now)
    assert sorted(str(r[0]) for r in wh.query(current, {"end": date(2026, 12, 6)})) == [
        "r1",
        "r5",
        "r6",
    ]
    # The Python rule on the same records agrees with the SQL on the current rows.
    assert [
        m for m, c, _, s, r in members if c == "cA" and counting.registered(s, r, date(2026, 12, 6))
    ] == [
        "r1",
        "r5",
        "r6",
    ]


def test_one_member_then_is_the_as_of_rule_of_all_members(wh: Warehouse) -> None:
    """`member_then` (one member, in Python, for a late scan) and `MEMBERS_AS_OF_SQL` (every
    member, for a past week) are one rule: random histories of moves and status changes, read
    at instants between the changes, give the same unit, community, grid and status."""
    rng = random.Random(20261130)
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    values = {
        "unit_id": ["uA", "uB", "uC"],
        "community_id": ["cA", "cB"],
        "grid_id": [None, "g1", "g2"],
        "status": ["active", "inactive", "left"],
    }
    members: dict[str, MemberThen] = {}
    histories: dict[str, list[Change]] = {}
    rows = []
    for n in range(40):
        mid = f"then{n}"
        state = {f: rng.choice(v) for f, v in values.items()}
        changes: list[Change] = []
        at = t0
        version = 1
        for _ in range(rng.randrange(0, 6)):
            at += timedelta(hours=rng.randrange(1, 72), seconds=1)
            version += 1
            fields = rng.sample(sorted(values), rng.randrange(1, 3))
            diff: dict[str, tuple[str, str]] = {}
            for f in fields:
                new = rng.choice([v for v in values[f] if v != state[f]])
                diff[f] = (json.dumps(state[f]), json.dumps(new))
                changes.append(Change(at, f, state[f]))
                state[f] = new
            _history(wh, mid, version, at, diff)
        members[mid] = MemberThen(
            state["unit_id"] or "", state["community_id"] or "", state["grid_id"], state["status"]
        )
        histories[mid] = changes
        rows.append(
            (mid, mid, state["unit_id"], state["community_id"], state["grid_id"], state["status"])
        )
    wh.insert("members", rows, ["id", "name", "unit_id", "community_id", "grid_id", "status"])
    # Instants never equal to a change (changes fall on whole seconds + 1 s; these on half hours).
    for k in range(0, 24 * 40, 37):
        at = t0 + timedelta(hours=k, minutes=30)
        sql = (
            f"SELECT id, unit_id, community_id, grid_id, status FROM ({counting.MEMBERS_AS_OF_SQL})"
        )
        got = {
            str(r[0]): MemberThen(str(r[1]), str(r[2]), r[3], str(r[4]))
            for r in wh.query(sql + " WHERE id LIKE 'then%%'", {"cutoff": at})
        }
        want = {m: member_then(now, histories[m], at) for m, now in members.items()}
        assert got == want, at
