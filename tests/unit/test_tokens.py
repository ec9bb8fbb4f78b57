from __future__ import annotations

import time

import jwt
import pytest

from services.settings import Settings
from services.tokens import InvalidToken, issue_bearer, sign_station, verify_bearer, verify_station

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


def test_old_key_versions_keep_verifying_after_rotation() -> None:
    old = sign_station(S, "st_abc")
    rotated = S.model_copy(update={"station_key_version": 2})
    assert verify_station(rotated, old) == "st_abc"
    assert sign_station(rotated, "st_abc").startswith("v2.")


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
