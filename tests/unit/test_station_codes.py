"""Rotating station codes, screen keys, activation codes and the failure limiter (no network)."""

from __future__ import annotations

import pytest

from services.settings import Settings
from services.station_codes import (
    ACTIVATION_ALPHABET,
    StationCodeExpired,
    activation_code_hash,
    current_window,
    format_activation_code,
    issue_screen_key,
    new_activation_code,
    normalize_activation_code,
    sign_window,
    verify_scan_token,
    verify_screen_key,
    verify_window,
)
from services.tokens import InvalidToken, sign_station

S = Settings(secret_key="unit-test-secret", station_code_window_s=30, station_code_grace_s=30)
T0 = 1_800_000_000.0  # a window boundary: 1.8e9 is a multiple of 30


def test_code_is_accepted_through_its_window_and_grace_then_refused() -> None:
    w = current_window(S, T0)
    token = sign_window(S, "st_abc", w)
    assert verify_window(S, token, T0) == "st_abc"
    assert verify_window(S, token, T0 + 29.9) == "st_abc"  # its own window
    assert verify_window(S, token, T0 + 59.9) == "st_abc"  # grace after the window ended
    with pytest.raises(StationCodeExpired):
        verify_window(S, token, T0 + 60.1)


def test_successive_windows_give_different_codes() -> None:
    w = current_window(S, T0)
    assert current_window(S, T0 + 30) == w + 1
    assert sign_window(S, "st_abc", w) != sign_window(S, "st_abc", w + 1)


def test_tampered_foreign_and_future_codes_are_invalid_not_expired() -> None:
    w = current_window(S, T0)
    good = sign_window(S, "st_abc", w)
    v, sid, win, sig = good.split(".")
    forged_window = f"{v}.{sid}.{w + 1000}.{sig}"  # moving the window breaks the signature
    other_station = f"{v}.st_other.{win}.{sig}"
    other_key = sign_window(Settings(secret_key="another"), "st_abc", w)
    future = sign_window(S, "st_abc", w + 5)
    for bad in (forged_window, other_station, other_key, future, "w1.x.1", "w9.st_abc.1.x"):
        with pytest.raises(InvalidToken) as info:
            verify_window(S, bad, T0)
        assert not isinstance(info.value, StationCodeExpired), bad


def test_scan_token_accepts_poster_and_screen_forms() -> None:
    poster = sign_station(S, "st_abc")
    assert verify_scan_token(S, poster, T0) == "st_abc"
    assert verify_scan_token(S, sign_window(S, "st_abc", current_window(S, T0)), T0) == "st_abc"
    with pytest.raises(InvalidToken):
        verify_scan_token(S, "garbage", T0)


def test_screen_key_names_its_station_and_is_signed() -> None:
    key, _ = issue_screen_key(S, "st_abc")
    assert verify_screen_key(S, key).station_id == "st_abc"
    with pytest.raises(InvalidToken):
        verify_screen_key(Settings(secret_key="another"), key)
    # A bearer token or a station token is not a screen key.
    with pytest.raises(InvalidToken):
        verify_screen_key(S, sign_station(S, "st_abc"))


def test_activation_codes_are_readable_and_normalised() -> None:
    codes = {new_activation_code() for _ in range(200)}
    assert len(codes) == 200
    for c in codes:
        assert len(c) == 8 and set(c) <= set(ACTIVATION_ALPHABET)
        assert not set(c) & set("01OIL")
        assert normalize_activation_code(format_activation_code(c).lower()) == c
        assert normalize_activation_code(f" {c[:4]} {c[4:]} ") == c
    assert normalize_activation_code("ABCD-EFG0") is None  # 0 is not in the alphabet
    assert normalize_activation_code("ABC") is None
    a, b = sorted(codes)[:2]
    assert activation_code_hash(S, a) != activation_code_hash(S, b)
    assert a not in activation_code_hash(S, a)
