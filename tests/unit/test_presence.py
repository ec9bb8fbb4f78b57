"""Presence that is hard to fake (issue 17), the pure parts: a rotating code checked against the
time a scan claims, the back-dated poster rule and its session flag, screen-key generations, the
settings' defaults. The same rules through the public API: tests/integration/test_presence.py."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.events import CheckinScanned, SessionRecorded
from services.sessions import (
    BACKDATED_POSTER,
    REVIEW_FLAGS,
    MemberState,
    SessionRules,
    backdated_poster,
    on_scan,
)
from services.settings import Settings
from services.station_codes import (
    ScanBeforeCodeWindow,
    StationCodeExpired,
    current_window,
    issue_screen_key,
    sign_window,
    verify_scan,
    verify_screen_key,
    verify_window,
)
from services.tokens import _key, sign_station

S = Settings(secret_key="unit-test-secret", station_code_window_s=30, station_code_grace_s=30)
T0 = 1_800_000_000.0  # a window boundary: 1.8e9 is a multiple of 30
RULES = SessionRules()  # poster_backdate: 5 minutes, as POSTER_BACKDATE_S's default


# ---- the rotating code against the time the scan claims --------------------------------------


def test_a_queued_scan_of_a_rotating_code_counts_when_it_claims_the_codes_window() -> None:
    token = sign_window(S, "st_abc", current_window(S, T0))
    an_hour_later = T0 + 3600
    # Sent an hour later (queued offline), claiming a time inside the window or its grace.
    for claimed in (T0, T0 + 29.9, T0 + 59.9):
        assert verify_window(S, token, an_hour_later, scanned_at=claimed) == "st_abc"
    # The same code claimed after its grace: the screen showed another code then.
    with pytest.raises(StationCodeExpired):
        verify_window(S, token, an_hour_later, scanned_at=T0 + 60.1)
    # Claimed before the code was shown (beyond the one window clocks may differ by).
    assert verify_window(S, token, an_hour_later, scanned_at=T0 - 29.9) == "st_abc"
    with pytest.raises(ScanBeforeCodeWindow):
        verify_window(S, token, an_hour_later, scanned_at=T0 - 30.1)


def test_without_scanned_at_the_receipt_is_the_claimed_time_as_before() -> None:
    token = sign_window(S, "st_abc", current_window(S, T0))
    assert verify_window(S, token, T0 + 59.9) == "st_abc"
    with pytest.raises(StationCodeExpired):
        verify_window(S, token, T0 + 60.1)


def test_a_code_from_the_future_is_invalid_whatever_the_scan_claims() -> None:
    ahead = sign_window(S, "st_abc", current_window(S, T0) + 5)
    with pytest.raises(Exception) as info:
        verify_window(S, ahead, T0, scanned_at=T0 + 5 * 30)
    assert "future" in str(info.value)


def test_verify_scan_names_what_the_phone_scanned() -> None:
    poster = sign_station(S, "st_abc")
    screen = sign_window(S, "st_abc", current_window(S))
    assert verify_scan(S, poster, None).proof == "poster"
    assert verify_scan(S, screen, None).proof == "screen"
    assert verify_scan(S, screen, None).station_id == verify_scan(S, poster, None).station_id
    # A poster token says nothing about time: any claimed time verifies (the API bounds it).
    assert verify_scan(S, poster, T0 - 10 * 3600).station_id == "st_abc"


# ---- back-dated poster scans --------------------------------------------------------------

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_backdated_poster_rule() -> None:
    late = NOW - timedelta(minutes=5, seconds=1)
    assert backdated_poster("poster", late, NOW, RULES)
    assert not backdated_poster("poster", NOW - timedelta(minutes=5), NOW, RULES)
    # A screen code proved its time through its window; old scans recorded no proof.
    assert not backdated_poster("screen", late, NOW, RULES)
    assert not backdated_poster(None, late, NOW, RULES)
    assert RULES.poster_backdate == timedelta(seconds=Settings().poster_backdate_s)


def _scan(action: str, at: datetime, received: datetime, proof: str | None) -> CheckinScanned:
    return CheckinScanned(
        event_id=str(uuid.uuid4()),
        occurred_at=at,
        member_id="mem_1",
        station_id="st_a",
        station_community_id="comm_1",
        unit_id="unit_1",
        member_community_id="comm_1",
        action=action,  # type: ignore[arg-type]
        client_event_id=str(uuid.uuid4()),
        received_at=received,
        proof=proof,  # type: ignore[arg-type]
    )


def _session(*scans: CheckinScanned) -> SessionRecorded:
    state = MemberState()
    out: list[SessionRecorded] = []
    for s in scans:
        state, events = on_scan(state, s, RULES)
        out += [e for e in events if isinstance(e, SessionRecorded)]
    return out[-1]


@pytest.mark.parametrize(
    ("in_proof", "in_late", "out_proof", "out_late", "flagged"),
    [
        ("poster", False, "poster", False, False),  # on site, sent at once
        ("poster", True, "poster", False, True),  # the check-in claimed hours back
        ("poster", False, "poster", True, True),  # the check-out claimed hours back
        ("screen", True, "screen", True, False),  # queued codes proved their time
        ("screen", True, "poster", False, False),
        (None, True, None, True, False),  # scans recorded before the rule
    ],
)
def test_a_session_opened_or_closed_by_a_backdated_poster_scan_is_flagged(
    in_proof: str, in_late: bool, out_proof: str, out_late: bool, flagged: bool
) -> None:
    t_in, t_out = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    received_in = NOW if in_late else t_in + timedelta(seconds=2)
    received_out = NOW if out_late else t_out + timedelta(seconds=2)
    if out_late and not in_late:
        received_in = t_in + timedelta(seconds=2)
    s = _session(
        _scan("in", t_in, received_in, in_proof), _scan("out", t_out, received_out, out_proof)
    )
    assert (BACKDATED_POSTER in s.flags) is flagged, s.flags
    # The flag changes no credit by itself: the organizer's review does.
    assert s.status == "closed" and s.credited_seconds == 2 * 3600
    assert s.counted


def test_the_flag_sends_the_session_to_review_and_is_kept_with_other_flags() -> None:
    assert BACKDATED_POSTER in REVIEW_FLAGS
    # A check-in claimed 20 min back, still open: flagged already.
    state, _ = on_scan(
        MemberState(), _scan("in", NOW - timedelta(minutes=20), NOW, "poster"), RULES
    )
    opened = [k.last for k in state.sessions.values()]
    assert opened[0].status == "open" and BACKDATED_POSTER in opened[0].flags
    # Claimed 20 h back and never checked out: forgotten and back-dated, both shown.
    forgotten = _session(_scan("in", NOW - timedelta(hours=20), NOW, "poster"))
    assert forgotten.status == "auto_closed"
    assert {"forgotten_checkout", BACKDATED_POSTER} <= set(forgotten.flags)
    anomaly = _session(_scan("out", NOW - timedelta(hours=2), NOW, "poster"))
    assert {"checkout_without_checkin", BACKDATED_POSTER} <= set(anomaly.flags)


def test_states_saved_before_read_scans_without_proof() -> None:
    state, _ = on_scan(MemberState(), _scan("in", NOW, NOW, "poster"), RULES)
    raw = state.model_dump(mode="json")
    for s in raw["scans"]:
        del s["proof"]
    again = MemberState.model_validate(raw)
    assert again.scans[0].proof is None


# ---- screen keys --------------------------------------------------------------------------


def test_a_screen_key_is_revoked_when_the_stations_generation_moves_on() -> None:
    key, _ = issue_screen_key(S, "st_abc", generation=2)
    screen = verify_screen_key(S, key)
    assert screen.generation == 2
    assert not screen.revoked_by(2)
    assert screen.revoked_by(3)


def test_a_key_issued_before_generations_is_generation_zero_and_a_forged_one_invalid() -> None:
    now = int(time.time())
    old = jwt.encode(
        {"sub": "st_abc", "jti": "x", "iat": now, "exp": now + 10**9},
        _key(S, "screen", 1),
        algorithm="HS256",
    )
    assert verify_screen_key(S, old).generation == 0
    odd = jwt.encode(
        {"sub": "st_abc", "gen": "2", "exp": now + 10**9}, _key(S, "screen", 1), algorithm="HS256"
    )
    with pytest.raises(Exception, match="invalid screen key"):
        verify_screen_key(S, odd)


def test_screen_keys_live_a_month_by_default_not_a_year() -> None:
    assert Settings().screen_key_ttl_s == 30 * 24 * 3600
    _, exp = issue_screen_key(Settings(secret_key="x" * 32), "st_abc")
    assert exp - datetime.now(UTC).timestamp() <= 30 * 24 * 3600 + 5
