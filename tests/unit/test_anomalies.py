"""Anomaly flags (services.anomalies), and the assisted / team flags the pairing rules put on
sessions (services.sessions) from scans that name who made them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from services import counting
from services.anomalies import (
    OVERLAP,
    SHARED_DEVICE,
    TOO_FAST,
    Anomaly,
    DeviceUse,
    SessionFacts,
    distance_km,
    flag,
)
from services.events import CheckinScanned, SessionRecorded
from services.sessions import (
    REVIEW_FLAGS,
    MemberState,
    SessionRules,
    assisted_by,
    on_scan,
)

CST = timezone(timedelta(hours=8))
RULES = SessionRules()
# Two stations of 陇西县 about 2.5 km apart, and one in 兰州 about 140 km away.
COORDS = {
    "st_a": (35.0030, 104.6340),
    "st_b": (34.9900, 104.6560),
    "st_far": (36.0611, 103.8343),
}
KW = {"now": datetime(2026, 11, 3, tzinfo=CST), "max_speed_kmh": 60.0}
WINDOW = timedelta(days=30)


def at(h: int, m: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=CST)


def s(
    sid: str,
    start: datetime,
    end: datetime | None,
    station: str = "st_a",
    member: str = "mem_1",
    checked_out: bool = True,
    scans: tuple[str, ...] = (),
) -> SessionFacts:
    return SessionFacts(sid, member, station, start, end, checked_out, scans)


def run(*sessions: SessionFacts, **kw: object) -> dict[str, list[Anomaly]]:
    args: dict[str, object] = {"coords": COORDS, "scan_devices": {}, "device_uses": []}
    args.update(kw)
    return flag(sessions, **args, **KW, device_window=WINDOW)  # type: ignore[arg-type]


def test_distance_between_two_known_points() -> None:
    assert 2.0 < distance_km(COORDS["st_a"], COORDS["st_b"]) < 2.8
    assert 130 < distance_km(COORDS["st_a"], COORDS["st_far"]) < 150
    assert distance_km(COORDS["st_a"], COORDS["st_a"]) == 0


def test_sessions_one_after_the_other_are_not_flagged() -> None:
    assert run(s("a", at(9), at(10)), s("b", at(10, 30), at(11), station="st_b")) == {}


def test_overlapping_sessions_of_one_member_are_both_flagged() -> None:
    got = run(s("a", at(9), at(11)), s("b", at(10), at(12)))
    assert got == {"a": [OVERLAP], "b": [OVERLAP]}


def test_an_open_session_overlaps_what_starts_after_it() -> None:
    got = run(s("a", at(9), None, checked_out=False), s("b", at(10), at(12)))
    assert got == {"a": [OVERLAP], "b": [OVERLAP]}


def test_a_session_of_no_length_where_the_next_begins_is_no_overlap() -> None:
    # Two check-ins at one instant (the consistency test met a member's own and a team
    # leader's): the pairing rules close the first there, at no length, by the second. Sorted
    # by id, either may come first; neither order is an overlap. (Stations without
    # coordinates: no travel is judged here.)
    for zero, long in (("a", "b"), ("b", "a")):
        got = run(s(zero, at(9), at(9), station="st_p"), s(long, at(9), at(11), station="st_q"))
        assert got == {}, (zero, long)
    # A check-out of no length at the instant a session ends touches it, no more.
    assert run(s("a", at(9), at(11), station="st_p"), s("b", at(11), at(11), station="st_q")) == {}


def test_sessions_beginning_together_and_lasting_overlap() -> None:
    got = run(s("a", at(9), at(10), station="st_p"), s("b", at(9), at(11), station="st_q"))
    assert got == {"a": [OVERLAP], "b": [OVERLAP]}
    # A check-out inside another session is one too: the member was there at that moment.
    got = run(s("a", at(9), at(11), station="st_p"), s("b", at(10), at(10), station="st_q"))
    assert got == {"a": [OVERLAP], "b": [OVERLAP]}


def test_sessions_of_two_members_never_overlap_each_other() -> None:
    assert run(s("a", at(9), at(11)), s("b", at(10), at(12), member="mem_2")) == {}


def test_a_station_140_km_away_an_hour_later_is_too_fast() -> None:
    got = run(s("a", at(9), at(10)), s("b", at(11), at(12), station="st_far"))
    assert got == {"b": [TOO_FAST]}


def test_the_same_trip_four_hours_later_is_fine() -> None:
    assert run(s("a", at(9), at(10)), s("b", at(14), at(15), station="st_far")) == {}


def test_a_session_closed_by_the_next_checkin_proves_presence_only_at_its_start() -> None:
    # Closed by the check-in at st_far (no check-out of its own): the member was last seen at
    # st_a at 9:00, three hours before; 140 km in 3 h is fine, in 0 h (its end) would not be.
    a = s("a", at(9), at(12), checked_out=False)
    assert run(a, s("b", at(12), at(13), station="st_far")) == {}
    a_out = s("a", at(9), at(12))
    assert run(a_out, s("b", at(12, 30), at(13), station="st_far")) == {"b": [TOO_FAST]}


def test_stations_without_coordinates_are_never_too_fast() -> None:
    got = run(s("a", at(9), at(10)), s("b", at(10), at(11), station="st_nowhere"))
    assert got == {}


def test_one_phone_for_two_members_flags_the_sessions_it_scanned() -> None:
    uses = [
        DeviceUse("dev_1", "mem_1", at(9)),
        DeviceUse("dev_1", "mem_2", at(9, 5)),
    ]
    got = run(
        s("a", at(9), at(10), scans=("e1", "e2")),
        s("b", at(9, 5), at(10), member="mem_2", scans=("e3",)),
        s("c", at(9), at(10), member="mem_3", scans=("e4",)),
        scan_devices={"e1": "dev_1", "e3": "dev_1", "e4": "dev_2"},
        device_uses=[*uses, DeviceUse("dev_2", "mem_3", at(9))],
    )
    assert got == {"a": [SHARED_DEVICE], "b": [SHARED_DEVICE]}


def test_a_phone_handed_on_long_ago_is_not_flagged() -> None:
    got = run(
        s("a", at(9, day=30), at(10, day=30), scans=("e1",)),
        scan_devices={"e1": "dev_1"},
        device_uses=[
            DeviceUse("dev_1", "mem_1", at(9, day=30)),
            DeviceUse("dev_1", "mem_2", at(9, day=30) - WINDOW - timedelta(days=1)),
        ],
    )
    assert got == {}


def test_several_anomalies_are_listed_in_one_order() -> None:
    got = run(
        s("a", at(9), at(11), scans=("e1",)),
        s("b", at(10), at(12), station="st_far", scans=("e2",)),
        scan_devices={"e2": "dev_1"},
        device_uses=[DeviceUse("dev_1", "mem_2", at(10))],
    )
    assert got["b"] == [OVERLAP, TOO_FAST, SHARED_DEVICE]


# ---- assisted and team scans on sessions ---------------------------------------------------


def scan(
    action: str, when: datetime, assist: str | None = None, by: str | None = None
) -> CheckinScanned:
    return CheckinScanned(
        event_id=str(uuid.uuid4()),
        occurred_at=when,
        member_id="mem_1",
        station_id="st_a",
        station_community_id="comm_1",
        unit_id="unit_1",
        member_community_id="comm_1",
        action=action,
        client_event_id=str(uuid.uuid4()),
        received_at=when,
        assist=assist,
        assisted_by=by,
    )


def last_session(*scans: CheckinScanned) -> SessionRecorded:
    state, out = MemberState(), []
    for e in scans:
        state, emitted = on_scan(state, e, RULES)
        out.extend(emitted)
    return [e for e in out if isinstance(e, SessionRecorded)][-1]


def test_an_assisted_checkin_flags_the_session_and_names_who_did_it() -> None:
    rec = last_session(scan("in", at(9), "assisted", "organizer:comm_1"), scan("out", at(11)))
    assert "assisted" in rec.flags
    assert assisted_by(rec.flags) == ["organizer:comm_1"]
    # What counts is unchanged, and the session waits for no review.
    assert rec.counted and rec.credited_seconds == 2 * 3600
    assert not set(rec.flags) & REVIEW_FLAGS
    assert counting.counted(rec.status, rec.flags, rec.voided)


def test_check_in_and_out_by_two_helpers_name_both() -> None:
    rec = last_session(
        scan("in", at(9), "assisted", "station:st_a"),
        scan("out", at(11), "assisted", "organizer:comm_1"),
    )
    assert rec.flags.count("assisted") == 1
    assert assisted_by(rec.flags) == ["station:st_a", "organizer:comm_1"]


def test_a_team_checkin_flags_the_session_team_naming_the_leader() -> None:
    rec = last_session(scan("in", at(9), "team", "member:mem_9"), scan("out", at(10)))
    assert "team" in rec.flags and "assisted" not in rec.flags
    assert assisted_by(rec.flags) == ["member:mem_9"]
    assert rec.counted


def test_a_members_own_scans_carry_no_such_flag() -> None:
    rec = last_session(scan("in", at(9)), scan("out", at(11)))
    assert rec.flags == [] and assisted_by(rec.flags) == []


def test_an_ordinary_scan_is_the_same_bytes_as_before_the_new_fields() -> None:
    # A worker of the previous release (events forbid unknown fields) reads it.
    plain = json.loads(scan("in", at(9)).to_bytes())
    assert not {"device_id", "assist", "assisted_by", "activity_id"} & set(plain)
    helped = json.loads(scan("in", at(9), "team", "member:mem_9").to_bytes())
    assert helped["assist"] == "team" and helped["assisted_by"] == "member:mem_9"
    assert CheckinScanned.model_validate(helped).assisted_by == "member:mem_9"
