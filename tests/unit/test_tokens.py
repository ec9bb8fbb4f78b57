from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.settings import Settings
from services.station_codes import current_window, sign_window, verify_window
from services.tokens import (
    InvalidToken,
    _key,
    issue_bearer,
    sign_station,
    verify_bearer,
    verify_station,
    version_accepted,
)

S = Settings(secret_key="unit-test-key", admin_token="unit-admin")


def test_station_token_round_trip() -> None:
    assert verify_station(S, sign_station(S, "st_abc")) == "st_abc"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("st_abc", "st_abd"),
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.replace("v1.", "v2.", 1),
        lambda t: t + "x",
        lambda t: "",
    ],
)
def test_any_change_to_a_station_token_is_refused(mutate: object) -> None:
    token = sign_station(S, "st_abc")
    with pytest.raises(InvalidToken):
        verify_station(S, mutate(token))  # type: ignore[operator]


def test_station_token_from_another_key_is_refused() -> None:
    other = S.model_copy(update={"secret_key": "someone-else"})
    with pytest.raises(InvalidToken):
        verify_station(S, sign_station(other, "st_abc"))


FUTURE = datetime.now(UTC) + timedelta(days=30)
PAST = datetime.now(UTC) - timedelta(seconds=1)


def test_a_rotated_station_key_signs_and_the_old_one_verifies_only_during_grace() -> None:
    old = sign_station(S, "st_abc")
    grace = S.model_copy(update={"station_key_version": 2, "station_key_grace_until": FUTURE})
    new = sign_station(grace, "st_abc")
    assert new.startswith("v2.") and new != old
    assert verify_station(grace, old) == "st_abc"
    assert verify_station(grace, new) == "st_abc"
    # The old deployment does not know version 2: a newer version is never taken on trust.
    with pytest.raises(InvalidToken, match="unknown station key version"):
        verify_station(S, new)
    for ended in (
        grace.model_copy(update={"station_key_grace_until": PAST}),
        grace.model_copy(update={"station_key_grace_until": None}),  # no grace given: none
    ):
        with pytest.raises(InvalidToken, match="retired"):
            verify_station(ended, old)
        assert verify_station(ended, new) == "st_abc"


def test_a_grace_end_without_a_zone_is_utc() -> None:
    s = Settings(station_key_grace_until="2027-01-01T00:00:00")
    assert s.station_key_grace_until == datetime(2027, 1, 1, tzinfo=UTC)


def test_version_accepted_is_the_one_rule() -> None:
    end = datetime(2027, 1, 1, tzinfo=UTC)
    t = end.timestamp()
    assert version_accepted(3, None, 3)
    assert version_accepted(3, end, 1, now=t - 1) and version_accepted(3, end, 2, now=t - 1)
    assert not version_accepted(3, end, 2, now=t)
    assert not version_accepted(3, end, 4, now=t - 1)
    assert not version_accepted(3, end, 0, now=t - 1)
    assert not version_accepted(3, None, 2, now=0)


def test_a_bearer_names_its_key_version_and_rotates_with_grace() -> None:
    old = issue_bearer(S, "member", "mem_1")
    assert jwt.get_unverified_header(old)["kid"] == "v1"
    grace = S.model_copy(update={"bearer_key_version": 2, "bearer_key_grace_until": FUTURE})
    new = issue_bearer(grace, "member", "mem_1")
    assert jwt.get_unverified_header(new)["kid"] == "v2"
    assert verify_bearer(grace, old).subject_id == "mem_1"
    assert verify_bearer(grace, new).subject_id == "mem_1"
    with pytest.raises(InvalidToken):
        verify_bearer(S, new)  # signed by a version this deployment does not know
    # The old token was verified (and remembered) above: the grace end holds on a remembered one.
    ended = grace.model_copy(update={"bearer_key_grace_until": PAST})
    with pytest.raises(InvalidToken, match="retired"):
        verify_bearer(ended, old)
    assert verify_bearer(ended, new).subject_id == "mem_1"
    # The admin token is configuration, not a signed token: rotation does not touch it.
    assert verify_bearer(ended, "unit-admin").role == "admin"


def test_a_bearer_without_a_key_version_is_version_one() -> None:
    # Tokens issued before versions existed carry no kid: they are version 1.
    claims = {"role": "hr", "sub": "unit_1", "jti": "j1", "exp": int(time.time()) + 60}
    legacy = jwt.encode(claims, _key(S, "bearer", 1), algorithm="HS256")
    assert verify_bearer(S, legacy).subject_id == "unit_1"
    rotated = S.model_copy(update={"bearer_key_version": 2})
    with pytest.raises(InvalidToken, match="retired"):
        verify_bearer(rotated, legacy)


@pytest.mark.parametrize("kid", ["v0", "v99999", "2", "", "v1 ", "v3"])
def test_a_malformed_or_unknown_key_version_is_refused(kid: str) -> None:
    claims = {"role": "admin", "sub": "x", "jti": "j", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, _key(S, "bearer", 1), algorithm="HS256", headers={"kid": kid})
    with pytest.raises(InvalidToken):
        verify_bearer(S, token)


def test_a_key_version_names_a_key_it_cannot_choose() -> None:
    # A version is only a label: the key is derived from SECRET_KEY, so claiming another version
    # with a signature made under version 1 fails.
    claims = {"role": "admin", "sub": "x", "jti": "j", "exp": int(time.time()) + 60}
    rotated = S.model_copy(update={"bearer_key_version": 2, "bearer_key_grace_until": FUTURE})
    relabelled = jwt.encode(claims, _key(S, "bearer", 1), algorithm="HS256", headers={"kid": "v2"})
    with pytest.raises(InvalidToken, match="invalid token"):
        verify_bearer(rotated, relabelled)


def test_bearer_round_trip_and_admin_token() -> None:
    p = verify_bearer(S, issue_bearer(S, "organizer", "comm_1"))
    assert (p.role, p.subject_id) == ("organizer", "comm_1")
    assert verify_bearer(S, "unit-admin").role == "admin"


def test_expired_and_forged_bearers_are_refused() -> None:
    expired = issue_bearer(S, "member", "mem_1", ttl_s=-10)
    with pytest.raises(InvalidToken, match="expired"):
        verify_bearer(S, expired)
    forged = jwt.encode(
        {"role": "admin", "sub": "x", "jti": "j", "exp": int(time.time()) + 60},
        "guess",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        verify_bearer(S, forged)


def test_derived_keys_follow_the_secret() -> None:
    # Keys are memoised per secret, purpose and version: a token signed under one secret must
    # never verify under another, whichever was derived first.
    a, b = Settings(secret_key="a" * 40), Settings(secret_key="b" * 40)
    token = sign_station(a, "st_1")
    assert verify_station(a, token) == "st_1"
    with pytest.raises(InvalidToken):
        verify_station(b, token)
    bearer = issue_bearer(b, "member", "mem_1")
    assert verify_bearer(b, bearer).subject_id == "mem_1"
    with pytest.raises(InvalidToken):
        verify_bearer(a, bearer)


def test_a_verified_bearer_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    # Verified tokens are remembered (the JWT decode is skipped on a member's next scan): the
    # expiry must hold on a remembered token too.
    token = issue_bearer(S, "member", "mem_9", ttl_s=60)
    first = verify_bearer(S, token)
    assert verify_bearer(S, token) is first
    later = time.time() + 61
    monkeypatch.setattr("services.tokens.time.time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        verify_bearer(S, token)


def test_a_screen_code_of_a_retired_station_key_version_is_refused() -> None:
    # The screen's rotating codes are signed with the station key version too: a leaked old key
    # must not mint codes for the current window once its grace is over.
    now = time.time()
    window = current_window(S, now)
    old = sign_window(S, "st_abc", window)
    grace = S.model_copy(update={"station_key_version": 2, "station_key_grace_until": FUTURE})
    assert sign_window(grace, "st_abc", window).startswith("w2.")
    assert verify_window(grace, old, now) == "st_abc"
    ended = grace.model_copy(update={"station_key_grace_until": PAST})
    with pytest.raises(InvalidToken, match="retired"):
        verify_window(ended, old, now)
