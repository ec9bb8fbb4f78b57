"""GET /healthz reports the worker's and the sink's consumer-group lag, and a group beyond
HEALTH_MAX_LAG as degraded (still 200, the group named) until it has caught up (issue 13)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaProducer

from services import topics
from tests.support.stack import Stack, api_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# `stack` is the fixture's Stack (its helpers' module moves; the fixture stays).
STACK_ENV = {"HEALTH_MAX_LAG": "5", "HEALTH_LAG_INTERVAL_S": "0.2"}


def _health(stack: Any, until: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = stack.client.get("/healthz")
        assert r.status_code == 200, r.text
        body = r.json()
        if until(body):
            return body
        time.sleep(0.3)
    raise AssertionError(f"/healthz never matched: {body}")


def test_a_stopped_worker_makes_health_degraded_until_it_caught_up(stack: Any) -> None:
    first = _health(stack, lambda b: b["lag"] is not None)
    assert first["status"] == "ok" and first["lagging"] == []
    assert set(first["lag"]) == {"worker", "sink"}

    stack.worker.stop()
    producer = KafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all")
    try:
        # Not check-ins (the worker dead-letters them): only their number matters here.
        for i in range(20):
            producer.send(stack.settings.topic(topics.CHECKINS.name), b'{"n": %d}' % i, key=b"k")
        producer.flush(10)
    finally:
        producer.close()

    behind = _health(stack, lambda b: "worker" in b["lagging"])
    assert behind["status"] == "degraded"
    assert behind["kafka"] == "ok" and behind["clickhouse"] == "ok"
    assert behind["lag"]["worker"] >= 20

    stack.worker.start()
    caught_up = _health(stack, lambda b: b["status"] == "ok", timeout=90)
    assert caught_up["lagging"] == [] and caught_up["lag"]["worker"] <= 5


def test_settled_waits_until_the_worker_s_results_are_in_every_table(stack: Stack) -> None:
    """The tests' `Stack.settled()`, measured on the same groups as /healthz: not settled while
    the worker has a scan to pair; once settled, the scans, the session and the week are all
    in ClickHouse without any further wait."""
    unit = stack.create("/v1/units", {"name": "县统计局"})["id"]
    community = stack.create("/v1/communities", {"name": "东街社区"})["id"]
    station = stack.create(
        "/v1/stations", {"community_id": community, "name": "东街服务站", "kind": "service_station"}
    )["id"]
    member = stack.create(
        "/v1/members", {"name": "周定", "unit_id": unit, "community_id": community}
    )
    now = datetime.now(UTC)
    stack.worker.stop()
    try:
        api_scan(stack, member["id"], station, "in", now - timedelta(minutes=40))
        api_scan(stack, member["id"], station, "out", now - timedelta(minutes=10))
        assert not stack.settled(timeout=3), "settled with the worker stopped"
    finally:
        stack.worker.start()
    assert stack.settled(timeout=90)
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    by = {"m": member["id"]}
    assert wh.query("SELECT count() FROM checkins FINAL WHERE member_id = %(m)s", by) == [(2,)]
    assert wh.query(
        "SELECT sum(credited_seconds) FROM sessions FINAL WHERE member_id = %(m)s AND voided = 0",
        by,
    ) == [(1800,)]
    assert wh.query(
        "SELECT sum(credited_seconds) FROM member_weeks FINAL WHERE member_id = %(m)s", by
    ) == [(1800,)]
