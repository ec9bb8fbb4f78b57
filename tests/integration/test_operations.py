"""Operations (issue 7) on the real stack: /metrics counts check-ins by result, and a message
the sink refused lands on the dead-letter topic, is listed with its reason, and once the cause
is fixed a replay brings it into its table (same event id; a second replay sends nothing)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from services import deadletter, topics
from services.events import CheckinScanned, derived_id
from services.processors import InvalidMessage, Route, Row
from services.processors import process as real_process
from services.tokens import sign_station
from services.warehouse.client import Warehouse
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _live(stack: Stack) -> Warehouse:
    wh: Warehouse = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    return wh


def _metric(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_worker_serves_its_metrics(stack: Stack) -> None:
    r = httpx.get(f"http://127.0.0.1:{stack.settings.worker_web_port}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "volunteer_agent_events_total" in r.text


def test_the_worker_reports_its_lag_until_it_caught_up(stack: Stack) -> None:
    # Scans published straight to Kafka: the worker's lag on `checkins` appears, then falls to
    # 0 once it committed them.
    now = datetime.now(UTC)
    scans = [
        CheckinScanned(
            event_id=derived_id("checkin", f"lag_member_{i}", "lag"),
            occurred_at=now,
            member_id=f"lag_member_{i}",
            station_id="st_lag",
            station_community_id="c_lag",
            unit_id="u_lag",
            member_community_id="c_lag",
            action="in",
            client_event_id=str(uuid.uuid4()),
            received_at=now,
        )
        for i in range(50)
    ]
    publisher = stack.client.app.state.ctx.publisher  # type: ignore[attr-defined]
    publisher.send_many_sync([(topics.CHECKINS, s.member_id, s) for s in scans])
    url = f"http://127.0.0.1:{stack.settings.worker_web_port}/metrics"

    def lag() -> float | None:
        text = httpx.get(url, timeout=10).text
        if 'volunteer_agent_lag{topic="checkins"}' not in text:
            return None
        return _metric(text, "volunteer_agent_lag", 'topic="checkins"')

    stack.wait_for(lambda: lag() is not None)
    assert stack.wait_for(lambda: lag() == 0.0) is True


def test_metrics_count_checkins_by_result_and_stay_out_of_the_schema(stack: Stack) -> None:
    unit = stack.create("/v1/units", {"name": "运维测试单位"})
    community = stack.create("/v1/communities", {"name": "运维测试社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "运维测试服务站", "kind": "service_station"},
    )
    member = stack.create(
        "/v1/members", {"name": "运维队员", "unit_id": unit["id"], "community_id": community["id"]}
    )
    before = stack.client.get("/metrics").text
    headers = stack.token("member", member["id"])
    ok = {
        "station_token": sign_station(stack.settings, station["id"]),
        "action": "in",
        "client_event_id": str(uuid.uuid4()),
    }
    assert stack.client.post("/v1/checkins", json=ok, headers=headers).status_code == 202
    bad = {**ok, "station_token": "v1.nope.nope", "client_event_id": str(uuid.uuid4())}
    assert stack.client.post("/v1/checkins", json=bad, headers=headers).status_code == 400
    r = stack.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text
    name = "volunteer_checkins_total"
    for result in ("accepted", "invalid_station_token"):
        label = f'result="{result}"'
        assert _metric(after, name, label) == _metric(before, name, label) + 1
    assert "volunteer_sink_insert_seconds_bucket" in after
    assert "/metrics" not in stack.client.get("/openapi.json").json()["paths"]


def test_dead_letter_listed_with_reason_then_replayed_into_its_table(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"dlq-{uuid.uuid4().hex[:8]}"

    def refusing(topic: str, raw: bytes | None) -> tuple[Route, Row]:
        # The bug being simulated: this sink version cannot read the marker's scans.
        if raw is not None and marker.encode() in raw:
            raise InvalidMessage("schema not understood by this sink version (simulated)")
        return real_process(topic, raw)

    monkeypatch.setattr("services.sink.process", refusing)
    now = datetime.now(UTC)
    scan = CheckinScanned(
        event_id=derived_id("checkin", marker, "c1"),
        occurred_at=now,
        member_id=marker,
        station_id="s-" + marker,
        station_community_id="c",
        unit_id="u",
        member_community_id="c",
        action="in",
        client_event_id="c1",
        received_at=now,
    )
    p = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    p.send(stack.settings.topic(topics.CHECKINS.name), key=marker.encode(), value=scan.to_bytes())
    p.send(stack.settings.topic(topics.FEEDBACK.name), key=marker.encode(), value=b"garbage")
    p.flush()
    p.close()

    def letters() -> list[Any]:
        return [
            d for d in deadletter.read(stack.settings, timeout_s=10) if d.key == marker.encode()
        ]

    found = stack.wait_for(lambda: len(letters()) >= 2, timeout=30, interval=1.0)
    assert found, letters()
    by_topic = {d.source_topic: d for d in letters()}
    assert "simulated" in by_topic["checkins"].reason and by_topic["checkins"].source == "sink"
    assert by_topic["feedback"].reason and marker in by_topic["checkins"].excerpt(2000)
    assert _live(stack).query(
        "SELECT count() FROM checkins WHERE event_id = %(e)s", {"e": scan.event_id}
    ) == [(0,)]

    monkeypatch.undo()  # the fix is deployed
    dry = deadletter.replay(stack.settings, dry_run=True)
    assert by_topic["checkins"].offset in dry.replayed
    assert by_topic["feedback"].offset in dry.still_invalid
    report = deadletter.replay(stack.settings)
    assert by_topic["checkins"].offset in report.replayed

    def stored() -> bool:
        rows = _live(stack).query(
            "SELECT count() FROM checkins FINAL WHERE event_id = %(e)s", {"e": scan.event_id}
        )
        return rows == [(1,)]

    assert stack.wait_for(stored, timeout=30)
    # Recorded: a second replay starts after what the first one handled.
    again = deadletter.replay(stack.settings)
    assert by_topic["checkins"].offset not in again.replayed
    time.sleep(0.5)
    assert "volunteer_dead_letters_total" in stack.client.get("/metrics").text
