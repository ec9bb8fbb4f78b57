"""Start-up refuses settings that contradict each other (issue 13, part 2), each with a message
that names what to set. No network."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.settings import Settings


def refused(**kw: Any) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**kw)
    return str(info.value)


def test_the_defaults_and_the_readme_history_example_are_consistent() -> None:
    Settings()
    # The README's "a year of the county in minutes" configuration.
    Settings(
        max_scan_age_h=9000,
        session_rederive_horizon_h=9024,
        session_review_window_days=400,
    )


def test_the_rederive_horizon_must_cover_the_scan_age_plus_a_day() -> None:
    msg = refused(max_scan_age_h=100, session_rederive_horizon_h=110)
    assert "SESSION_REDERIVE_HORIZON_H (110) must be at least MAX_SCAN_AGE_H + 24 (124)" in msg
    Settings(max_scan_age_h=100, session_rederive_horizon_h=124)


def test_the_review_window_must_cover_the_scan_age() -> None:
    msg = refused(
        max_scan_age_h=9000, session_rederive_horizon_h=9100, session_review_window_days=60
    )
    assert "set SESSION_REVIEW_WINDOW_DAYS to at least 380" in msg


def test_the_review_window_must_cover_the_rederive_horizon() -> None:
    # Forgotten before its scans stop being re-pairable, a session would be derived anew by a
    # late scan and counted twice (found by the consistency test's model).
    msg = refused(max_scan_age_h=48, session_rederive_horizon_h=96, session_review_window_days=3)
    assert "SESSION_REVIEW_WINDOW_DAYS (3) must cover SESSION_REDERIVE_HORIZON_H (96 h)" in msg
    assert "at least 4" in msg
    Settings(max_scan_age_h=48, session_rederive_horizon_h=96, session_review_window_days=4)


def test_a_forgotten_checkout_is_never_credited_above_the_cap() -> None:
    msg = refused(session_cap_h=2, session_forgotten_credit_h=3)
    assert "SESSION_FORGOTTEN_CREDIT_H (3) must not exceed SESSION_CAP_H (2)" in msg


def test_the_weekly_minimum_fits_within_the_cap() -> None:
    msg = refused(session_cap_h=1, week_min_credited_min=90)
    assert "WEEK_MIN_CREDITED_MIN (90) must not exceed SESSION_CAP_H (1 h)" in msg
    Settings(session_cap_h=1, week_min_credited_min=60)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"sink_batch_size": 0}, "SINK_BATCH_SIZE and SINK_BATCH_MS must both be at least 1"),
        ({"sink_batch_ms": 0}, "SINK_BATCH_SIZE and SINK_BATCH_MS must both be at least 1"),
        ({"sink_batch_ms": 300_000}, "SINK_BATCH_MS (300000) must stay below 300000"),
    ],
)
def test_the_sink_batch_bounds(kw: dict[str, Any], expected: str) -> None:
    assert expected in refused(**kw)


def test_a_rotating_station_code_may_not_outlive_ten_minutes() -> None:
    msg = refused(station_code_window_s=300, station_code_grace_s=301)
    assert "STATION_CODE_WINDOW_S + STATION_CODE_GRACE_S (300 + 301)" in msg
    Settings(station_code_window_s=300, station_code_grace_s=300)


def test_token_lifetimes() -> None:
    assert "TOKEN_TTL_S (0) must be positive" in refused(token_ttl_s=0)
    msg = refused(activation_ttl_s=10 * 86400, phone_token_ttl_s=7 * 86400)
    assert "ACTIVATION_TTL_S (864000) must be shorter than PHONE_TOKEN_TTL_S (604800)" in msg


def test_the_per_address_failure_limit_stays_under_the_total() -> None:
    msg = refused(activation_max_failures=50, activation_max_failures_total=20)
    assert "raise ACTIVATION_MAX_FAILURES_TOTAL" in msg


def test_ports_that_collide() -> None:
    assert "KAFKA_PORT and KAFKA_CONTROLLER_PORT are both 9092" in refused(
        kafka_controller_port=9092
    )
    assert "must differ" in refused(api_port=7000, worker_web_port=7000)
    assert "must differ" in refused(sink_metrics_port=8000)


def test_fault_injection_is_refused_with_a_server_dsn_only() -> None:
    server = "http://default:pw@clickhouse:8123"
    msg = refused(clickhouse_dsn=server, session_fault_skip="checkins:0:5")
    assert "SESSION_FAULT_SKIP (fault injection for tests and drills) must not be set" in msg
    msg = refused(clickhouse_dsn=server, sink_fault_after_insert=3, session_fault_hold_file="/x")
    assert "SESSION_FAULT_HOLD_FILE, SINK_FAULT_AFTER_INSERT" in msg
    msg = refused(clickhouse_dsn=server, command_fault_skip="lists.commands:*:1")
    assert "COMMAND_FAULT_SKIP (fault injection for tests and drills) must not be set" in msg
    # The drills and tests run them on embedded chDB.
    Settings(clickhouse_dsn="chdb:///tmp/x", session_fault_skip="checkins:0:5")
    Settings(clickhouse_dsn=server)


def test_every_broken_rule_is_reported_at_once() -> None:
    msg = refused(session_cap_h=1, session_forgotten_credit_h=2, kafka_controller_port=9092)
    assert "SESSION_FORGOTTEN_CREDIT_H" in msg and "KAFKA_CONTROLLER_PORT" in msg


def test_the_environment_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_SCAN_AGE_H", "200")
    assert "SESSION_REDERIVE_HORIZON_H (96) must be at least" in refused()


def test_a_refusal_does_not_print_the_secrets_it_was_given() -> None:
    msg = refused(session_cap_h=1, session_forgotten_credit_h=2, secret_key="s3cr3t-value-xyz")
    assert "SESSION_FORGOTTEN_CREDIT_H" in msg
    assert "s3cr3t-value-xyz" not in msg
