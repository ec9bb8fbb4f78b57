"""GET /healthz reports the worker's and the sink's consumer-group lag, and a group beyond
HEALTH_MAX_LAG as degraded (still 200, the group named) until it has caught up (issue 13)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaProducer

from services import topics

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
