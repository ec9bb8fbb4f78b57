"""The consistency proof's pure side: its generator and its model of every read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings

from services.timeutil import iso_week, local
from tests.integration.consistency_model import (
    DAYS,
    MAX_SCAN_AGE_H,
    STATION_HOME,
    History,
    Log,
    MemberLife,
    MemberPlan,
    Place,
    ScanPlan,
    SentReview,
    SentScan,
    Stamp,
    World,
    checkin_event,
    day_of,
    expected_reads,
    helpers_of,
    histories,
    records,
    run_model,
    scan_time,
)

NOW = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # Wednesday 15:30 in Asia/Shanghai
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def world(n: int = 1) -> World:
    w = World(
        units=["u0", "u1"],
        communities=["c0", "c1"],
        grids=["g0", "g1"],
        stations=[("s0", "c0"), ("s1", "c0"), ("s2", "c1")],
    )
    for i in range(n):
        w.members.append(MemberLife(f"m{i}", [(EPOCH, w.place(0))]))
    return w


def sent(member: int, station: int, action: str, at: datetime, received: datetime) -> SentScan:
    return SentScan(member, str(uuid.uuid4()), station, action, at, received)  # type: ignore[arg-type]


def log_of(history: History, now: datetime, in_time: bool = False) -> Log:
    """The first scans in their arrival order (or by time), each with a client id of its own
    that does not depend on the order."""
    flat = [(i, p) for i, m in enumerate(history.members) for p in m.scans]
    order = list(history.arrival)
    if in_time:
        order.sort(key=lambda k: (scan_time(flat[k][1], now), k))
    log = Log()
    for k in order:
        member, p = flat[k]
        at = scan_time(p, now)
        log.items.append(SentScan(member, f"client-{k}", p.station, p.action, at, now))
    return log


# Yesterday (this week): today's minutes are squeezed into the part of the day already past.
ISSUE_12 = History(
    members=(
        MemberPlan(
            scans=(
                ScanPlan(day=1, minute=8 * 60, station=0, action="in"),
                ScanPlan(day=1, minute=9 * 60, station=0, action="in"),
                ScanPlan(day=1, minute=11 * 60, station=0, action="out"),
            )
        ),
    ),
    arrival=(1, 2, 0),
)


def test_the_issue_case_is_one_session_of_three_hours_in_every_read() -> None:
    w = world()
    states = run_model(w, log_of(ISSUE_12, NOW), NOW, "done")
    live = [r for r in records(states[0]) if not r.voided]
    assert [(r.status, r.credited_seconds) for r in live] == [("closed", 3 * 3600)]
    # The 09:00 session the first two scans made is voided, not dropped.
    assert any(r.voided for r in records(states[0]))
    reads = expected_reads(w, states, NOW).reads
    assert reads[("week", "m0")]["sessions"] == 1 and reads[("week", "m0")]["hours"] == 3.0
    assert reads[("hours", "m0", "2026")] == {"hours": 3.0, "sessions": 1}
    assert reads[("record", "m0", "2026")] == {"hours": 3.0, "sessions": 1}
    assert reads[("week", "m0")]["scans"] == 3
    assert [s["hours"] for s in reads[("sessions", "m0")]] == [3.0]


def test_a_scan_made_before_a_move_belongs_to_the_old_unit_however_late_it_arrives() -> None:
    w = world()
    moved = NOW - timedelta(minutes=1)
    w.members[0].versions.append((moved, w.place(1)))
    log = Log(
        [
            sent(0, 0, "in", NOW - timedelta(hours=3), NOW),
            sent(0, 0, "out", NOW - timedelta(hours=2), NOW),
        ]
    )
    assert checkin_event(w, log.items[0], "arrival").unit_id == "u1"  # type: ignore[arg-type]
    assert checkin_event(w, log.items[0], "done").unit_id == "u0"  # type: ignore[arg-type]
    reads = expected_reads(w, run_model(w, log, NOW, "done"), NOW).reads
    week = iso_week(NOW)
    listed, row = reads[("assessment", "m0", "u0", "2026")]
    assert listed and row == {"hours": 1.0, "sessions": 1, "active_weeks": 1, "excused_weeks": 0}
    assert reads[("assessment", "m0", "u1", "2026")] == (
        True,  # the member belongs to u1 now: listed, with nothing served for it
        {"hours": 0.0, "sessions": 0, "active_weeks": 0, "excused_weeks": 0},
    )
    # The community the service was done for counts it; the member is registered in the new one.
    assert reads[("community", "c0", week)]["hours"] == 1.0
    assert reads[("community", "c0", week)]["members_registered"] == 0
    assert reads[("community", "c1", week)]["members_registered"] == 1
    assert reads[("community", "c1", week)]["not_served"] == ["m0"]


def test_a_rejected_session_counts_nowhere_and_an_adjusted_one_with_its_new_credit() -> None:
    w = world()
    start = NOW - timedelta(days=3, hours=2)
    log = Log(
        [
            sent(0, 0, "in", start, NOW),
            sent(0, 0, "out", start + timedelta(hours=2), NOW),
            sent(0, 2, "in", start + timedelta(hours=3), NOW),
            sent(0, 2, "out", start + timedelta(hours=4), NOW),
        ]
    )
    first, second = records(run_model(w, log, NOW, "done")[0])
    log.items.append(SentReview(0, "r1", first.session_id, "reject", None, NOW))
    log.items.append(SentReview(0, "r2", second.session_id, "adjust", 1800, NOW))
    reads = expected_reads(w, run_model(w, log, NOW, "done"), NOW).reads
    y = str(local(start).year)
    assert reads[("hours", "m0", y)] == {"hours": 0.5, "sessions": 1}
    weekly = reads[("weekly", "m0", iso_week(start))]
    assert weekly["stations"] == [{"station_id": "s2", "sessions": 1, "hours": 0.5}]
    # Served at another community's station: counts for the member's community, by station
    # for the station's.
    assert reads[("community", "c0", iso_week(start))]["hours"] == 0.5
    assert reads[("station", "s2", iso_week(start))]["members_served"] == 1


def test_the_turn_of_the_year_puts_calendar_year_and_iso_week_year_apart() -> None:
    turn = [i for i, (kind, _) in enumerate(DAYS) if kind == "turn"]
    days = [day_of(i, NOW) for i in turn]
    assert {d.year for d in days} == {2025, 2026}
    assert any(d.isocalendar()[0] != d.year for d in days)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(history=histories())
def test_scans_lie_in_the_past_within_the_accepted_age(history: History) -> None:
    for _, p in history.first_scans():
        at = scan_time(p, NOW)
        assert NOW - timedelta(hours=MAX_SCAN_AGE_H) < at < NOW
    assert sorted(history.arrival) == list(range(sum(len(m.scans) for m in history.members)))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(history=histories())
def test_the_rules_do_not_depend_on_arrival_order(history: History) -> None:
    """What the pipeline relies on: the same scans in any order make the same reads (without
    reviews, which name sessions that exist at the time)."""
    w = world(len(history.members))
    shuffled = expected_reads(w, run_model(w, log_of(history, NOW), NOW, "done"), NOW)
    ordered = expected_reads(w, run_model(w, log_of(history, NOW, True), NOW, "done"), NOW)
    assert shuffled.reads == ordered.reads


def test_places_follow_the_registry_versions() -> None:
    life = MemberLife("m", [(EPOCH, Place("u0", "c0", "g0")), (NOW, Place("u1", "c1", "g1"))])
    assert life.at(NOW - timedelta(seconds=1)).unit_id == "u0"
    assert life.at(NOW).unit_id == "u1"


def test_a_campaign_serves_with_counted_sessions_and_lists_every_assigned_grid() -> None:
    w = world(2)
    day = NOW - timedelta(days=1, hours=3)
    log = Log(
        [
            sent(0, 0, "out", day, NOW),  # an anomaly: no service
            sent(1, 1, "in", day, NOW),
            sent(1, 1, "out", day + timedelta(hours=1), NOW),
        ]
    )
    states = run_model(w, log, NOW, "done")
    start = day - timedelta(hours=1)
    campaign: tuple[object, ...] = (
        start,
        start + timedelta(days=1),
        "c0",
        True,
        {"m0": "g0"},
        {},
        ["g0", "g9"],
    )
    got = expected_reads(w, states, NOW, campaign).reads[("campaign",)]
    assert got["members_served"] == 1 and got["assigned_members_served"] == 0
    assert got["not_served"] == ["m0"] and got["hours"] == 1.0 and got["sessions"] == 1
    assert [g["grid_id"] for g in got["by_grid"]] == ["g0", "g9"]
    assert got["by_grid"][0] == {
        "grid_id": "g0",
        "members_assigned": 1,
        "members_served": 0,
        "hours": 0.0,
    }


def test_a_move_in_the_middle_of_a_week_splits_the_week_by_session() -> None:
    w = world()
    moved = NOW - timedelta(minutes=60)
    w.members[0].versions.append((moved, w.place(1)))
    before = NOW - timedelta(hours=3)
    log = Log(
        [
            sent(0, 0, "in", before, before),
            sent(0, 0, "out", before + timedelta(hours=1), before + timedelta(hours=1)),
            sent(0, 0, "in", NOW - timedelta(minutes=50), NOW),
            sent(0, 0, "out", NOW - timedelta(minutes=5), NOW),
        ]
    )
    week = iso_week(NOW)
    stamps: tuple[Stamp, ...] = ("arrival", "done")
    for stamp in stamps:  # made and received on either side of the move alike
        reads = expected_reads(w, run_model(w, log, NOW, stamp), NOW).reads
        assert reads[("unit", "u0", week)]["hours"] == 1.0
        assert reads[("unit", "u1", week)]["hours"] == 0.75
        # Served before moving away: in the old community's hours, not among its served.
        assert reads[("community", "c0", week)]["hours"] == 1.0
        assert reads[("community", "c0", week)]["members_served"] == 0
        assert reads[("community", "c0", week)]["members_registered"] == 0
        assert reads[("community", "c1", week)]["members_served"] == 1
        assert reads[("assessment", "m0", "u0", "2026")] == (
            True,
            {"hours": 1.0, "sessions": 1, "active_weeks": 1, "excused_weeks": 0},
        )


def test_a_gesture_is_hours_but_no_service_until_approved() -> None:
    w = world()
    start = NOW - timedelta(hours=2)
    log = Log(
        [
            sent(0, 0, "in", start, start),
            sent(0, 0, "out", start + timedelta(minutes=4), start + timedelta(minutes=4)),
        ]
    )
    week = iso_week(NOW)
    states = run_model(w, log, NOW, "done")
    reads = expected_reads(w, states, NOW).reads
    assert reads[("week", "m0")]["served"] is False and reads[("week", "m0")]["hours"] == 0.07
    assert reads[("weekly", "m0", week)]["target_met"] is False
    assert reads[("community", "c0", week)]["members_served"] == 0
    assert reads[("hours", "m0", "2026")] == {"hours": 0.07, "sessions": 0}
    (session,) = records(states[0])
    log.items.append(SentReview(0, "r1", session.session_id, "approve", None, NOW))
    reads = expected_reads(w, run_model(w, log, NOW, "done"), NOW).reads
    assert reads[("week", "m0")]["served"] is True
    assert reads[("community", "c0", week)]["members_served"] == 1
    assert reads[("hours", "m0", "2026")] == {"hours": 0.07, "sessions": 1}


def test_an_excused_week_leaves_the_figures_and_served_wins() -> None:
    w = world()
    log = Log(
        [
            sent(0, 0, "in", NOW - timedelta(hours=3), NOW),
            sent(0, 0, "out", NOW - timedelta(hours=2), NOW),
        ]
    )
    week = iso_week(NOW)
    earlier = iso_week(NOW - timedelta(days=14))
    states = run_model(w, log, NOW, "done")
    # Member 0 served this week although excused (served wins); excused two weeks ago, unserved.
    reads = expected_reads(w, states, NOW, approved={"m0": {week, earlier}}).reads
    assert reads[("week", "m0")]["excused"] is False
    assert reads[("weekly", "m0", earlier)]["excused"] is True
    assert reads[("community", "c0", week)]["excused"] == 0
    past = reads[("community", "c0", earlier)]
    assert (past["excused"], past["not_served"], past["rate"]) == (1, [], 0.0)
    _, row = reads[("assessment", "m0", "u0", str(local(NOW).year))]
    assert row["excused_weeks"] == (1 if int(earlier[:4]) == local(NOW).year else 0)
    # Without the approval the same week is missed.
    plain = expected_reads(w, states, NOW).reads
    assert plain[("weekly", "m0", week)]["excused"] is False


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(history=histories())
def test_an_organizer_or_a_tablet_assists_only_at_the_members_community(
    history: History,
) -> None:
    for m in history.members:
        for p in m.scans:
            assert p.by in ("self", "team") or STATION_HOME[p.station] == m.home
        assert all(p.by == "self" for p in m.late)


def test_a_session_made_for_the_member_credits_as_their_own_and_names_who_made_it() -> None:
    w = world(2)
    day = NOW - timedelta(days=1, hours=3)

    def log(helped: bool) -> Log:
        def scan(
            m: int, c: str, st: int, action: str, at: datetime, kind: str = "", who: str = ""
        ) -> SentScan:
            x = SentScan(m, c, st, action, at, NOW)  # type: ignore[arg-type]
            if helped and kind:
                x.assist, x.assisted_by = kind, who  # type: ignore[assignment]
            return x

        return Log(
            [
                scan(0, "a", 0, "in", day, "assisted", "organizer:c0"),
                scan(0, "b", 0, "out", day + timedelta(hours=2)),
                # A team leader's check-in and check-out ten minutes apart: below the minimum.
                scan(1, "c", 2, "in", day, "team", "member:m0"),
                scan(1, "d", 2, "out", day + timedelta(minutes=10), "team", "member:m0"),
            ]
        )

    reads: dict[bool, dict[tuple[str, ...], Any]] = {}
    for helped in (False, True):
        lg = log(helped)
        states = run_model(w, lg, NOW, "done")
        reads[helped] = expected_reads(w, states, NOW, helpers=helpers_of(w, lg)).reads
    plain, helped_reads = reads[False], reads[True]
    # Every figure the same; only the sessions' flags (and their ids: who made a scan is in
    # its id, as the routes derive it) name the helpers.
    figures = [k for k in plain if k[0] not in ("sessions", "helped", "review_queue")]
    assert figures and all(plain[k] == helped_reads[k] for k in figures)
    assert [s["hours"] for s in helped_reads[("sessions", "m0")]] == [2.0]
    assert list(helped_reads[("helped", "m0")].values()) == [["assisted", "by:organizer:c0"]]
    assert list(helped_reads[("helped", "m1")].values()) == [["by:member:m0", "team"]]
    assert all(v == [] for v in plain[("helped", "m1")].values())
    # Queued for being below the minimum, as the member's own would be; the assisted 2 h not.
    team_session = next(iter(helped_reads[("helped", "m1")]))
    assert helped_reads[("review_queue", "c1")] == {team_session: []}
    assert helped_reads[("review_queue", "c0")] == {}
