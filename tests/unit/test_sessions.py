"""The pairing rules, reviews and weekly totals, on fixture scans; times are Asia/Shanghai (UTC+8)."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.events import (
    CheckinScanned,
    Event,
    MemberWeekRecorded,
    SessionRecorded,
    SessionReviewed,
)
from services.sessions import (
    LateScan,
    MemberState,
    SessionRules,
    latest_records,
    on_clock,
    on_review,
    on_scan,
    week_record_key,
)
from services.settings import Settings

CST = timezone(timedelta(hours=8))
RULES = SessionRules()


def at(h: int, m: int = 0, day: int = 2, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, h, m, tzinfo=CST)


def scan(
    action: str,
    when: datetime,
    station: str = "st_a",
    event_id: str | None = None,
    received: datetime | None = None,
) -> CheckinScanned:
    return CheckinScanned(
        event_id=event_id or str(uuid.uuid4()),
        occurred_at=when,
        member_id="mem_1",
        station_id=station,
        station_community_id="comm_1",
        unit_id="unit_1",
        member_community_id="comm_1",
        member_grid_id="grid_1",
        action=action,  # type: ignore[arg-type]
        client_event_id=str(uuid.uuid4()),
        received_at=received or when,
    )


def review(session_id: str, action: str, **kw: object) -> SessionReviewed:
    return SessionReviewed(
        event_id=str(uuid.uuid4()),
        occurred_at=kw.pop("when", at(12, day=20)),  # type: ignore[arg-type]
        review_id=str(uuid.uuid4()),
        session_id=session_id,
        member_id="mem_1",
        station_community_id="comm_1",
        action=action,  # type: ignore[arg-type]
        reviewer_role="organizer",
        reviewer_id="comm_1",
        **kw,  # type: ignore[arg-type]
    )


def run(
    *events: CheckinScanned | SessionReviewed | datetime, state: MemberState | None = None
) -> tuple[MemberState, list[Event]]:
    state, out = state or MemberState(), []
    for e in events:
        if isinstance(e, CheckinScanned):
            state, emitted = on_scan(state, e, RULES)
        elif isinstance(e, SessionReviewed):
            state, emitted = on_review(state, e, RULES)
        else:
            state, emitted = on_clock(state, f"tick-{e.isoformat()}", e, RULES)
        out.extend(emitted)
    return state, out


def sessions(out: list[Event]) -> list[SessionRecorded]:
    return [e for e in out if isinstance(e, SessionRecorded)]


def final(state: MemberState) -> dict[str, tuple[str, int, bool]]:
    return {
        sid: (k.last.status, k.last.credited_seconds, k.last.voided)
        for sid, k in state.sessions.items()
    }


def weeks(state: MemberState) -> dict[str, tuple[int, int]]:
    """Weekly totals by `week|station`, for the member who never moved (the attribution every
    key carries here is the one `scan` gives)."""
    out = {}
    for k, w in state.weeks.items():
        week, station, attribution = k.split("|", 2)
        assert attribution == "unit_1|comm_1|grid_1"
        out[f"{week}|{station}"] = (w.sessions, w.seconds)
    return out


def test_in_then_out_is_one_closed_session_with_its_hours() -> None:
    state, out = run(scan("in", at(9)), scan("out", at(11, 30)))
    s = sessions(out)
    assert [x.status for x in s] == ["open", "closed"]
    assert s[0].session_id == s[1].session_id and s[1].revision == 2
    assert s[1].credited_seconds == 9000 and s[1].member_grid_id == "grid_1"
    assert not state.has_open
    assert weeks(state) == {"2026-W45|st_a": (1, 9000)}
    week_events = [e for e in out if isinstance(e, MemberWeekRecorded)]
    assert week_events[-1].credited_seconds == 9000 and week_events[-1].sessions == 1


def test_redelivered_scan_changes_nothing_and_republishes_the_latest_records() -> None:
    s_in = scan("in", at(9))
    state, _ = run(s_in, scan("out", at(10)))
    again, out = on_scan(state, s_in, RULES)
    assert again == state
    # The worker may have died after saving state but before publishing: publish the same again.
    recs = sessions(out)
    assert [(r.status, r.revision) for r in recs] == [("closed", 2)]
    weekly = [e for e in out if isinstance(e, MemberWeekRecorded)]
    assert (
        len(weekly) == 1
        and weekly[0].version == state.weeks["2026-W45|st_a|unit_1|comm_1|grid_1"].version
    )


def test_repeat_scan_within_window_is_ignored() -> None:
    state, out = run(scan("in", at(9)), scan("in", at(9, 1)), scan("out", at(10)))
    # The repeat only makes the open session name it (absorbed), for the reconciliation.
    assert [(s.status, len(s.absorbed_event_ids)) for s in sessions(out)] == [
        ("open", 0),
        ("open", 1),
        ("closed", 1),
    ]
    assert sessions(out)[-1].credited_seconds == 3600
    # A double tap on check-out is ignored too: one session, one hour.
    state, out = run(scan("out", at(10, 1)), state=state)
    assert [(s.credited_seconds, len(s.absorbed_event_ids)) for s in sessions(out)] == [(3600, 2)]
    assert weeks(state) == {"2026-W45|st_a": (1, 3600)}


def test_checkout_without_checkin_is_an_anomaly_without_hours() -> None:
    state, out = run(scan("out", at(10)))
    (s,) = sessions(out)
    assert s.credited_seconds == 0 and s.flags == ["checkout_without_checkin"]
    assert not s.counted
    assert weeks(state) == {"2026-W45|st_a": (0, 0)}


def test_a_gesture_keeps_its_minutes_but_is_no_service_until_an_organizer_approves_it() -> None:
    # In and out four minutes apart: 0.07 h credited, no session counted, the week not served.
    state, out = run(scan("in", at(9)), scan("out", at(9, 4)))
    s = sessions(out)[-1]
    assert s.status == "closed" and s.credited_seconds == 240
    assert "below_minimum" in s.flags and not s.counted
    assert weeks(state) == {"2026-W45|st_a": (0, 240)}
    state, out = run(review(s.session_id, "approve", when=at(12)), state=state)
    (r,) = sessions(out)
    assert r.counted and r.credited_seconds == 240
    assert weeks(state) == {"2026-W45|st_a": (1, 240)}
    # Thirty minutes is a service by itself; the minimum follows the setting.
    state, out = run(scan("in", at(9)), scan("out", at(9, 30)))
    assert sessions(out)[-1].counted and weeks(state) == {"2026-W45|st_a": (1, 1800)}
    strict = SessionRules(week_minimum=timedelta(minutes=45))
    s2, _ = on_scan(MemberState(), scan("in", at(9)), strict)
    s2, out2 = on_scan(s2, scan("out", at(9, 30)), strict)
    assert not sessions(out2)[-1].counted
    off = SessionRules(week_minimum=timedelta(0))
    s3, _ = on_scan(MemberState(), scan("in", at(9)), off)
    _, out3 = on_scan(s3, scan("out", at(9, 4)), off)
    assert sessions(out3)[-1].counted and "below_minimum" not in sessions(out3)[-1].flags


def test_checkin_elsewhere_closes_the_open_session() -> None:
    _, out = run(scan("in", at(9), "st_a"), scan("in", at(10), "st_b"), scan("out", at(11), "st_b"))
    assert [(s.station_id, s.status) for s in sessions(out)] == [
        ("st_a", "open"),
        ("st_a", "closed"),
        ("st_b", "open"),
        ("st_b", "closed"),
    ]
    closed = sessions(out)[1]
    assert closed.credited_seconds == 3600 and "closed_by_next_checkin" in closed.flags


def test_session_over_the_cap_is_capped_and_flagged() -> None:
    _, out = run(scan("in", at(8)), scan("out", at(18)))
    last = sessions(out)[-1]
    assert last.status == "capped" and last.credited_seconds == 8 * 3600
    assert "over_cap" in last.flags


def test_forgotten_checkout_closes_on_the_clock_alone_with_the_configured_credit() -> None:
    state, out = run(scan("in", at(9)), at(3, day=3))  # before the grace ends: still open
    assert [s.status for s in sessions(out)] == ["open"] and state.has_open
    state, out = run(at(4, 1, day=3), state=state)
    (closed,) = sessions(out)
    assert closed.status == "auto_closed" and closed.credited_seconds == 0
    assert closed.end == at(0, day=3) and "forgotten_checkout" in closed.flags
    assert not state.has_open
    # Credited 0 h, it is not a service before anyone reviewed it.
    assert "below_minimum" in closed.flags and not closed.counted
    assert weeks(state) == {"2026-W45|st_a": (0, 0)}
    generous = SessionRules(forgotten_checkout_credit=timedelta(hours=1))
    s2, out2 = on_scan(MemberState(), scan("in", at(9)), generous)
    _, out2 = on_clock(s2, "t", at(5, day=3), generous)
    assert sessions(out2)[0].credited_seconds == 3600 and sessions(out2)[0].counted


def test_night_duty_across_midnight_and_a_week_and_year_boundary_counts_where_it_began() -> None:
    # Sunday 2025-12-28 is in 2025-W52; Monday is 2026-W01.
    state, out = run(
        scan("in", at(23, day=28, month=12, year=2025)),
        scan("out", at(1, day=29, month=12, year=2025)),
    )
    last = sessions(out)[-1]
    assert last.status == "closed" and last.credited_seconds == 2 * 3600
    assert weeks(state) == {"2025-W52|st_a": (1, 7200)}


def test_late_offline_checkin_turns_an_anomaly_into_the_right_session() -> None:
    s_out = scan("out", at(11), received=at(11))
    s_in = scan("in", at(9), received=at(12))  # queued offline, arrives after the check-out
    state, out = run(s_out, s_in)
    recs = sessions(out)
    anomaly = recs[0]
    assert "checkout_without_checkin" in anomaly.flags
    voided = [r for r in recs if r.voided]
    assert [v.session_id for v in voided] == [anomaly.session_id]
    live = [r for r in recs if not r.voided and r.session_id != anomaly.session_id]
    assert live[-1].status == "closed" and live[-1].credited_seconds == 7200
    assert weeks(state) == {"2026-W45|st_a": (1, 7200)}


def test_late_checkout_after_the_auto_close_replaces_it() -> None:
    s_in = scan("in", at(9))
    state, _ = run(s_in, at(5, day=3))
    assert final(state)[sessions(run(s_in)[1])[0].session_id][0] == "auto_closed"
    state, out = run(scan("out", at(17), received=at(10, day=3)), state=state)
    (rec,) = sessions(out)
    assert rec.status == "closed" and rec.credited_seconds == 8 * 3600 and rec.revision == 3


def test_result_does_not_depend_on_arrival_order() -> None:
    base = at(8)
    events = [
        scan("in", base, "st_a", received=base),
        scan("out", base + timedelta(hours=2), "st_a", received=base + timedelta(hours=2)),
        scan("in", base + timedelta(hours=3), "st_b", received=base + timedelta(hours=3)),
        scan("in", base + timedelta(hours=4), "st_a", received=base + timedelta(hours=4)),
        scan("out", base + timedelta(hours=5), "st_a", received=base + timedelta(hours=5)),
    ]
    results = set()
    for perm in itertools.permutations(events):
        state, _ = run(*perm)
        live = {sid: v for sid, v in final(state).items() if not v[2]}
        results.add((tuple(sorted(live.items())), tuple(sorted(weeks(state).items()))))
    assert len(results) == 1
    (live_sessions, week_totals) = next(iter(results))
    assert sorted(v[1] for _, v in live_sessions) == [3600, 3600, 7200]
    assert dict(week_totals) == {"2026-W45|st_a": (2, 10800), "2026-W45|st_b": (1, 3600)}


def test_reviews_approve_adjust_reject_change_credit_and_week_totals() -> None:
    state, out = run(scan("in", at(9)), at(5, day=3))
    sid = sessions(out)[-1].session_id
    state, out = run(review(sid, "approve", when=at(12, day=4)), state=state)
    (r,) = sessions(out)
    assert r.status == "auto_closed" and "approved" in r.flags
    state, out = run(
        review(
            sid,
            "adjust",
            credited_seconds=5400,
            reason="忘记签退，核实服务1.5小时",
            when=at(13, day=4),
        ),
        state=state,
    )
    (r,) = sessions(out)
    assert r.status == "adjusted" and r.credited_seconds == 5400
    assert weeks(state) == {"2026-W45|st_a": (1, 5400)}
    state, out = run(review(sid, "reject", reason="未到岗", when=at(14, day=4)), state=state)
    (r,) = sessions(out)
    assert r.status == "rejected" and r.credited_seconds == 0 and not r.counted
    assert weeks(state) == {"2026-W45|st_a": (0, 0)}


def test_an_older_review_delivered_late_does_not_override_a_newer_one() -> None:
    state, out = run(scan("in", at(9)), scan("out", at(10)))
    sid = sessions(out)[-1].session_id
    newer = review(sid, "reject", reason="重复", when=at(12, day=21))
    older = review(sid, "adjust", credited_seconds=60, reason="x", when=at(12, day=20))
    state, _ = run(newer, older, state=state)
    assert final(state)[sid][0] == "rejected"


def test_review_of_a_session_outside_the_rederive_horizon_still_applies() -> None:
    state, out = run(scan("in", at(9)), scan("out", at(10)))
    sid = sessions(out)[-1].session_id
    state, _ = run(at(9, day=20), state=state)  # 18 days later: the scans are gone
    assert state.scans == () and not state.sessions[sid].live
    state, out = run(review(sid, "adjust", credited_seconds=7200, reason="补录"), state=state)
    assert sessions(out)[0].credited_seconds == 7200
    assert weeks(state) == {"2026-W45|st_a": (1, 7200)}


def test_scan_older_than_the_horizon_is_refused_for_the_dead_letters() -> None:
    state, _ = run(scan("in", at(9)), scan("out", at(10)), at(9, day=20))
    with pytest.raises(LateScan):
        on_scan(state, scan("in", at(9, day=5), received=at(9, day=20)), RULES)


def test_rules_come_from_settings() -> None:
    s = Settings(
        session_cap_h=6,
        session_forgotten_credit_h=0.5,
        session_repeat_window_s=30,
        week_min_credited_min=20,
    )
    r = SessionRules.from_settings(s)
    assert r.cap == timedelta(hours=6) and r.forgotten_checkout_credit == timedelta(minutes=30)
    assert r.repeat_window == timedelta(seconds=30) and r.week_minimum == timedelta(minutes=20)
    assert SessionRules.from_settings(Settings()).week_minimum == timedelta(minutes=30)


def test_a_batch_publishes_only_the_latest_record_of_each_session_and_week() -> None:
    # Check-in, check-out, then a late check-in that re-pairs the day: several revisions of
    # the same sessions and weeks; the batch keeps the last of each, and they equal the state.
    state, out = run(scan("in", at(9)), scan("out", at(11)), scan("in", at(8, 30), station="st_b"))
    kept = latest_records(out)
    recs = sessions(kept)
    assert len(recs) == len({r.session_id for r in recs}) < len(sessions(out))
    assert {r.session_id: r.revision for r in recs} == {
        sid: k.last.revision for sid, k in state.sessions.items()
    }
    week_recs = [e for e in kept if isinstance(e, MemberWeekRecorded)]
    assert {week_record_key(w): (w.sessions, w.credited_seconds, w.version) for w in week_recs} == {
        f"mem_1|{key}": (w.sessions, w.seconds, w.version) for key, w in state.weeks.items()
    }


# A member's state as workers wrote it before the compact `Kept` (each session's whole Derived
# `base` beside its record): in 9:00, out 11:00 at st_a. Made with the rules of that time.
V2_STATE = (
    '{"member_id":"mem_1","scans":[{"event_id":"e-in-9","at":"2026-11-02T01:00:00Z","received'
    '_at":"2026-11-02T01:00:00Z","action":"in","station_id":"st_a","station_community_id":"co'
    'mm_1","unit_id":"unit_1","member_community_id":"comm_1","member_grid_id":"grid_1"},{"eve'
    'nt_id":"e-out-11","at":"2026-11-02T03:00:00Z","received_at":"2026-11-02T03:00:00Z","acti'
    'on":"out","station_id":"st_a","station_community_id":"comm_1","unit_id":"unit_1","member'
    '_community_id":"comm_1","member_grid_id":"grid_1"}],"floor":"2026-10-29T03:00:00Z","drop'
    'ped_ids":[],"sessions":{"e72fe9d5-31bb-5233-9f55-20c9d57a486d":{"base":{"session_id":"e7'
    '2fe9d5-31bb-5233-9f55-20c9d57a486d","opening":{"event_id":"e-in-9","at":"2026-11-02T01:0'
    '0:00Z","received_at":"2026-11-02T01:00:00Z","action":"in","station_id":"st_a","station_c'
    'ommunity_id":"comm_1","unit_id":"unit_1","member_community_id":"comm_1","member_grid_id"'
    ':"grid_1"},"start":"2026-11-02T01:00:00Z","end":"2026-11-02T03:00:00Z","credited_seconds'
    '":7200,"status":"closed","flags":[],"checkin_event_id":"e-in-9","checkout_event_id":"e-o'
    'ut-11"},"last":{"event_id":"75825fd9-02a4-567f-9053-54aa55d45736","event_type":"session.'
    'recorded","schema_version":1,"occurred_at":"2026-11-02T03:00:00Z","session_id":"e72fe9d5'
    '-31bb-5233-9f55-20c9d57a486d","revision":2,"member_id":"mem_1","unit_id":"unit_1","membe'
    'r_community_id":"comm_1","station_id":"st_a","station_community_id":"comm_1","start":"20'
    '26-11-02T01:00:00Z","end":"2026-11-02T03:00:00Z","credited_seconds":7200,"status":"close'
    'd","flags":[],"checkin_event_id":"e-in-9","checkout_event_id":"e-out-11","member_grid_id'
    '":"grid_1","voided":false},"live":true}},"reviews":{},"applied_reviews":[],"weeks":{"202'
    '6-W45|st_a":{"sessions":1,"seconds":7200,"version":2,"station_community_id":"comm_1","me'
    'mber_community_id":"comm_1","member_grid_id":"grid_1","unit_id":"unit_1","as_of":"2026-1'
    '1-02T03:00:00Z"}},"week_version":2,"watermark":"2026-11-02T03:00:00Z","last_tick":null}'
)


def test_a_state_written_before_the_compact_form_reads_and_goes_on() -> None:
    state = MemberState.model_validate_json(V2_STATE)
    ((sid, kept),) = state.sessions.items()
    assert (kept.status, kept.credited_seconds, kept.flags, kept.live) == ("closed", 7200, (), True)
    # A later scan re-derives the same session: nothing to publish for it.
    state, out = run(scan("in", at(14)), state=state)
    assert sid not in {r.session_id for r in sessions(out)}
    # A review applies to the scans' credit kept from the old form.
    state, out = run(review(sid, "adjust", credited_seconds=3600, reason="核实"), state=state)
    (r,) = sessions(out)
    assert (r.session_id, r.status, r.credited_seconds, r.revision) == (sid, "adjusted", 3600, 3)
    assert weeks(state)["2026-W45|st_a"] == (1, 3600)


def test_the_open_deadline_is_when_the_clock_alone_closes_the_session() -> None:
    # The agent ticks only members whose deadline passed: before it a tick must change nothing
    # the member can see, at it the session closes.
    state, _ = run(scan("in", at(9)))
    deadline = state.open_deadline(RULES)
    assert deadline == at(4, day=3)  # the end of the local day, plus the 4 h grace
    _, out = run(deadline - timedelta(seconds=1), state=state)
    assert sessions(out) == []
    state, out = run(deadline, state=state)
    assert [r.status for r in sessions(out)] == ["auto_closed"]
    assert state.open_deadline(RULES) is None


def test_a_member_who_moves_mid_week_keeps_each_session_with_the_unit_it_was_done_for() -> None:
    # Monday at the station for unit_1 / comm_1; moved on Wednesday to unit_2 / comm_2, same
    # station on Thursday: two weekly totals, each where it was earned (issue 12).
    moved = scan("in", at(9, day=5)).model_copy(
        update={"unit_id": "unit_2", "member_community_id": "comm_2", "member_grid_id": None}
    )
    out_moved = scan("out", at(10, day=5)).model_copy(
        update={"unit_id": "unit_2", "member_community_id": "comm_2", "member_grid_id": None}
    )
    state, out = run(scan("in", at(9)), scan("out", at(11)), moved, out_moved)
    assert {k: (w.sessions, w.seconds, w.unit_id) for k, w in state.weeks.items()} == {
        "2026-W45|st_a|unit_1|comm_1|grid_1": (1, 7200, "unit_1"),
        "2026-W45|st_a|unit_2|comm_2|": (1, 3600, "unit_2"),
    }
    latest = latest_records(out)
    by_unit = {e.unit_id: e.credited_seconds for e in latest if isinstance(e, MemberWeekRecorded)}
    assert by_unit == {"unit_1": 7200, "unit_2": 3600}


def test_a_state_written_with_the_old_week_keys_moves_them_under_their_attribution() -> None:
    state, _ = run(scan("in", at(9)), scan("out", at(11)))
    legacy = state.model_dump(mode="json")
    legacy["weeks"] = {"2026-W45|st_a": legacy["weeks"]["2026-W45|st_a|unit_1|comm_1|grid_1"]}
    loaded = MemberState.model_validate(legacy)
    assert weeks(loaded) == {"2026-W45|st_a": (1, 7200)}
    # And a later session of that week adds to the same total, not to a second one.
    loaded, _ = run(scan("in", at(13)), scan("out", at(14)), state=loaded)
    assert weeks(loaded) == {"2026-W45|st_a": (2, 10800)}
