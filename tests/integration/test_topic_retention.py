"""The retention settings enforced on the Kafka log, read back from the real broker: raw scans,
reminders and their SMS outcomes follow SCAN_RETENTION_YEARS, the access log
ACCESS_LOG_RETENTION_YEARS; the event log and the compacted state topics keep everything; a
changed setting reaches topics that already exist, and nothing else of theirs changes."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient

from infra.kafka import Broker, create_topics, topic_configs
from services import topics
from services.topics import Retention, retention_ms

pytestmark = pytest.mark.kafka

KEYS = ["retention.ms", "cleanup.policy"]
YEAR_MS = 366 * 86_400_000


def configs(
    broker: Broker, prefix: str, specs: list[topics.TopicSpec]
) -> dict[str, dict[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        got = topic_configs(admin, [f"{prefix}{s.name}" for s in specs], KEYS)
    finally:
        admin.close()
    return {name.removeprefix(prefix): c for name, c in got.items()}


def test_retained_topics_follow_the_settings_and_the_rest_keep_everything(broker: Broker) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topics(broker.bootstrap, prefix, retention=Retention(scan_years=4, access_log_years=3))
    specs = list(topics.ALL_TOPICS)
    got = configs(broker, prefix, specs)
    assert set(got) == {s.name for s in specs}
    for scans in (topics.CHECKINS, topics.NOTIFICATIONS, topics.NOTIFICATION_DELIVERIES):
        assert got[scans.name] == {"retention.ms": str(4 * YEAR_MS), "cleanup.policy": "delete"}
    assert got[topics.ACCESS_LOG.name]["retention.ms"] == str(3 * YEAR_MS)
    # The source of truth stays whole: state compacted, the event log kept for ever.
    for state in (topics.SESSIONS, topics.MEMBERS, topics.SERVICE_RECORDS, topics.WISHES):
        assert got[state.name] == {"retention.ms": "-1", "cleanup.policy": "compact"}
    for kept in (topics.REGISTRY_HISTORY, topics.LIST_COMMANDS, topics.REPORT_RECEIPTS):
        assert got[kept.name] == {"retention.ms": "-1", "cleanup.policy": "delete"}
    assert got[topics.DEAD_LETTER.name]["retention.ms"] == str(30 * 86_400_000)


def settled(
    broker: Broker, prefix: str, specs: list[topics.TopicSpec], want: dict[str, str]
) -> dict[str, dict[str, str]]:
    """The topics' configuration once `want` (topic: retention.ms) shows: a broker applies an
    altered topic configuration from the metadata log, a moment after it acknowledged it."""
    deadline = time.monotonic() + 20
    while True:
        got = configs(broker, prefix, specs)
        if all(got[t]["retention.ms"] == ms for t, ms in want.items()):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"retention not applied: {got}")
        time.sleep(0.2)


def test_a_changed_setting_reaches_existing_topics(broker: Broker) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    specs = (topics.CHECKINS, topics.ACCESS_LOG, topics.SESSIONS, topics.REGISTRY_HISTORY)
    create_topics(broker.bootstrap, prefix, specs, Retention(scan_years=4, access_log_years=3))
    # The next deploy with other settings: 2 years of scans, the access log kept for ever.
    create_topics(broker.bootstrap, prefix, specs, Retention(scan_years=2, access_log_years=0))
    want = {topics.CHECKINS.name: str(2 * YEAR_MS), topics.ACCESS_LOG.name: "-1"}
    got = settled(broker, prefix, list(specs), want)
    assert str(retention_ms(2)) == str(2 * YEAR_MS)
    assert got[topics.SESSIONS.name] == {"retention.ms": "-1", "cleanup.policy": "compact"}
    assert got[topics.REGISTRY_HISTORY.name] == {"retention.ms": "-1", "cleanup.policy": "delete"}
    # Without settings: the settings' defaults (4 and 3 years), never "keep for ever".
    create_topics(broker.bootstrap, prefix, specs)
    want = {topics.CHECKINS.name: str(4 * YEAR_MS), topics.ACCESS_LOG.name: str(3 * YEAR_MS)}
    settled(broker, prefix, list(specs), want)
