"""The pairing rules, on fixture scans; times are Asia/Shanghai (UTC+8)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from services.events import CheckinScanned, SessionRecorded
from streams.sessions import MemberState, SessionRules, apply

CST = timezone(timedelta(hours=8))
RULES = SessionRules()


def scan(
    action: str, at: datetime, station: str = "st_a", event_id: str | None = None
) -> CheckinScanned:
    return CheckinScanned(
        event_id=event_id or str(uuid.uuid4()),
        occurred_at=at,
        member_id="mem_1",
        station_id=station,
        station_community_id="comm_1",
        unit_id="unit_1",
        member_community_id="comm_1",
        action=action,  # type: ignore[arg-type]
        client_event_id=str(uuid.uuid4()),
        received_at=at,
    )


def run(*scans: CheckinScanned) -> tuple[MemberState, list[SessionRecorded]]:
    state, out = MemberState(), []
    for s in scans:
        state, emitted = apply(state, s, RULES)
        out.extend(emitted)
    return state, out


def at(h: int, m: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=CST)


def test_in_then_out_is_one_closed_session_with_its_hours() -> None:
    state, out = run(scan("in", at(9)), scan("out", at(11, 30)))
    assert [s.status for s in out] == ["open", "closed"]
    assert out[0].session_id == out[1].session_id
    assert out[1].revision == 2 and out[1].credited_seconds == 9000
    assert state.open is None


def test_redelivered_scan_is_ignored() -> None:
    s_in = scan("in", at(9))
    _, out = run(s_in, s_in, scan("out", at(10)))
    assert [s.status for s in out] == ["open", "closed"]


def test_repeat_scan_within_window_is_ignored() -> None:
    _, out = run(scan("in", at(9)), scan("in", at(9, 1)), scan("out", at(10)))
    assert [s.status for s in out] == ["open", "closed"]
    assert out[-1].credited_seconds == 3600


def test_checkout_without_checkin_is_an_anomaly_without_hours() -> None:
    _, out = run(scan("out", at(10)))
    assert len(out) == 1
    assert out[0].credited_seconds == 0 and "checkout_without_checkin" in out[0].flags


def test_checkin_elsewhere_closes_the_open_session() -> None:
    _, out = run(scan("in", at(9), "st_a"), scan("in", at(10), "st_b"), scan("out", at(11), "st_b"))
    assert [(s.station_id, s.status) for s in out] == [
        ("st_a", "open"),
        ("st_a", "closed"),
        ("st_b", "open"),
        ("st_b", "closed"),
    ]
    assert out[1].credited_seconds == 3600 and "closed_by_next_checkin" in out[1].flags


def test_long_session_is_capped_and_flagged() -> None:
    _, out = run(scan("in", at(8)), scan("out", at(19)))
    assert out[-1].status == "capped" and out[-1].credited_seconds == 8 * 3600
    assert "over_cap" in out[-1].flags


def test_night_duty_across_midnight_counts_in_full() -> None:
    _, out = run(scan("in", at(23)), scan("out", at(1, 0, day=3)))
    assert out[-1].status == "closed" and out[-1].credited_seconds == 2 * 3600


def test_forgotten_checkout_is_auto_closed_at_end_of_day_without_credit() -> None:
    _, out = run(scan("in", at(9)), scan("out", at(9, 0, day=3)))
    last = out[-1]
    assert last.status == "auto_closed" and last.credited_seconds == 0
    assert last.end == at(0, 0, day=3)
    assert "forgotten_checkout" in last.flags


def test_session_ids_and_event_ids_are_deterministic_for_replay() -> None:
    s1, s2 = scan("in", at(9), event_id="e1"), scan("out", at(10), event_id="e2")
    _, a = run(s1, s2)
    _, b = run(s1, s2)
    assert [x.model_dump() for x in a] == [x.model_dump() for x in b]
