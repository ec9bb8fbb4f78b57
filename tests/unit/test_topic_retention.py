"""Which topics the retention settings apply to, and how a setting becomes `retention.ms`."""

from __future__ import annotations

import pytest

from services import privacy, topics
from services.settings import Settings
from services.topics import Retention, TopicSpec, retention_ms

DAY_MS = 86_400_000


def test_years_become_366_day_years_and_zero_keeps_for_ever() -> None:
    assert retention_ms(0) == -1
    assert retention_ms(1) == 366 * DAY_MS
    assert retention_ms(4) == 4 * 366 * DAY_MS


def test_the_log_keeps_a_scan_at_least_as_long_as_the_warehouse() -> None:
    # The warehouse keeps a year's scans until `years` years after 1 January of that year: at
    # most `years` calendar years (1461 days for 4, with a leap day) for a scan made on 1 January.
    for years in range(1, 10):
        longest_in_warehouse = (years * 365 + (years + 3) // 4) * DAY_MS
        assert retention_ms(years) >= longest_in_warehouse


def test_retained_topics_take_their_setting() -> None:
    r = Retention(scan_years=2, access_log_years=5)
    assert topics.CHECKINS.kafka_configs(r)["retention.ms"] == str(2 * 366 * DAY_MS)
    assert topics.NOTIFICATIONS.kafka_configs(r)["retention.ms"] == str(2 * 366 * DAY_MS)
    assert topics.ACCESS_LOG.kafka_configs(r)["retention.ms"] == str(5 * 366 * DAY_MS)
    assert topics.SESSIONS.kafka_configs(r) == {"retention.ms": "-1", "cleanup.policy": "compact"}
    assert topics.REGISTRY_HISTORY.kafka_configs(r) == {"retention.ms": "-1"}


def test_without_settings_the_defaults_apply() -> None:
    defaults = Settings.model_fields
    assert Retention() == Retention(
        defaults["scan_retention_years"].default, defaults["access_log_retention_years"].default
    )
    assert topics.CHECKINS.kafka_configs()["retention.ms"] == str(
        retention_ms(defaults["scan_retention_years"].default)
    )


def test_of_settings() -> None:
    s = Settings(scan_retention_years=7, access_log_retention_years=0)
    assert Retention.of(s) == Retention(7, 0)
    assert topics.ACCESS_LOG.kafka_configs(Retention.of(s))["retention.ms"] == "-1"


def test_a_compacted_topic_cannot_be_retained_by_age() -> None:
    with pytest.raises(ValueError, match="compacted"):
        TopicSpec("x", 1, compacted=True, retained_as="scans")


def test_every_table_with_a_ttl_has_its_topic_retained_alike() -> None:
    """One rule: what the warehouse deletes after some years, the log deletes too."""
    by_table = {
        "checkins": topics.CHECKINS,
        "notifications": topics.NOTIFICATIONS,
        "notification_deliveries": topics.NOTIFICATION_DELIVERIES,
        "access_log": topics.ACCESS_LOG,
    }
    tables = privacy.retained_tables(scan_years=11, access_log_years=13)
    assert {t.table for t in tables} == set(by_table)
    r = Retention(scan_years=11, access_log_years=13)
    for t in tables:
        assert by_table[t.table].kafka_configs(r)["retention.ms"] == str(retention_ms(t.years))
    retained = {s.name for s in topics.ALL_TOPICS if s.retained_as}
    assert retained == {s.name for s in by_table.values()}
