"""Delivery guarantees on the real broker, a faust worker and chDB: a sink killed between the
insert and the commit, ClickHouse unavailable for a while, the worker SIGKILLed mid-stream,
invalid events to the dead letters, and a replay of the log from offset 0 equal to live."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services import topics
from services.replay import figures, replay
from services.sink import Sink
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import migrate
from tests.support.stack import Stack, api_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


class Crash(Exception):
    pass


class CrashAfterInsert(Sink):
    """Dies like a SIGKILL after ClickHouse acknowledged the first batch, before the commit."""

    def _commit(self, consumer: Any, offsets: dict[TopicPartition, Any]) -> None:
        raise Crash("killed between insert and commit")


class FlakyWarehouse(Warehouse):
    """The real chDB behind a switch: every insert fails while `down_until` is in the future."""

    def __init__(self, inner: Warehouse, down_for_s: float) -> None:
        super().__init__(inner.client, inner.database)
        self.down_until = time.monotonic() + down_for_s
        self.refused = 0

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        if time.monotonic() < self.down_until:
            self.refused += 1
            raise ConnectionError("ClickHouse unavailable (injected)")
        super().insert(table, rows, columns, dedup_token)


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县卫健局"})
    community = stack.create("/v1/communities", {"name": "南关社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "南关党群服务站", "kind": "service_station"},
    )
    members = [
        stack.create(
            "/v1/members",
            {"name": f"队员{i}", "unit_id": unit["id"], "community_id": community["id"]},
        )
        for i in range(4)
    ]
    return {"unit": unit, "community": community, "station": station, "members": members}


def restart_worker(stack: Stack) -> None:
    """Starts the worker again and waits for *this* process to be ready (the log is shared)."""
    log = stack.worker.log_path
    seen = log.read_bytes().count(b"Worker]: Ready")
    stack.worker.start()
    deadline = time.monotonic() + 60
    while log.read_bytes().count(b"Worker]: Ready") <= seen:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def live(stack: Stack) -> Warehouse:
    wh: Warehouse = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    return wh


def total_seconds(wh: Warehouse, member_ids: list[str]) -> int:
    rows = wh.query(
        "SELECT sum(credited_seconds) FROM sessions FINAL WHERE member_id IN %(m)s "
        "AND status NOT IN ('open', 'rejected') AND voided = 0",
        {"m": member_ids},
    )
    return int(rows[0][0] or 0)


def week_seconds(wh: Warehouse, member_ids: list[str]) -> int:
    rows = wh.query(
        "SELECT sum(credited_seconds) FROM member_weeks FINAL WHERE member_id IN %(m)s",
        {"m": member_ids},
    )
    return int(rows[0][0] or 0)


def settle(stack: Stack, ids: list[str], seconds: int) -> None:
    # A worker SIGKILLed twice recovers its tables before it applies anything: on a loaded
    # machine that alone took over 30 s. A lost or doubled scan never settles, however long.
    ok = stack.wait_for(
        lambda: (
            total_seconds(live(stack), ids) == seconds and week_seconds(live(stack), ids) == seconds
        ),
        timeout=120,
    )
    assert ok, (total_seconds(live(stack), ids), week_seconds(live(stack), ids), seconds)


def test_worker_killed_mid_stream_then_restarted_loses_and_doubles_nothing(
    stack: Stack, people: dict[str, Any]
) -> None:
    ids = [m["id"] for m in people["members"]]
    st = people["station"]["id"]
    base = datetime.now(UTC) - timedelta(hours=30)
    for i, m in enumerate(ids):
        api_scan(stack, m, st, "in", base + timedelta(minutes=i))
    stack.worker.stop(kill=True)  # SIGKILL: no clean shutdown, no final commit
    for i, m in enumerate(ids):
        api_scan(stack, m, st, "out", base + timedelta(hours=1, minutes=i))  # queued on the log
    restart_worker(stack)
    for i, m in enumerate(ids):
        api_scan(stack, m, st, "in", base + timedelta(hours=2, minutes=i))
    time.sleep(1.0)
    stack.worker.stop(kill=True)
    restart_worker(stack)
    for i, m in enumerate(ids):
        api_scan(stack, m, st, "out", base + timedelta(hours=4, minutes=i))
    # Each member: 1 h + 2 h.
    settle(stack, ids, len(ids) * 3 * 3600)
    rows = live(stack).query(
        "SELECT member_id, count() FROM sessions FINAL WHERE member_id IN %(m)s AND voided = 0 "
        "GROUP BY member_id",
        {"m": ids},
    )
    assert sorted(int(n) for _, n in rows) == [2] * len(ids)


def test_sink_killed_between_insert_and_commit_then_restarted(
    stack: Stack, people: dict[str, Any]
) -> None:
    ids = [m["id"] for m in people["members"]]
    expected = figures(live(stack))
    db = f"{stack.settings.clickhouse_database}_crash"
    target = stack.settings.model_copy(update={"clickhouse_database": db})
    wh = connect(target)
    migrate(wh)
    group = stack.settings.topic("crash-sink")
    with pytest.raises(Crash):
        CrashAfterInsert(target, wh, group_id=group).run_until_caught_up(timeout_s=60)
    inserted = total_seconds(wh, ids)
    assert inserted > 0, "the crashed sink should have written a batch before dying"
    # Restarted in the same group: re-reads from the last commit, writes again, nothing doubles.
    Sink(target, wh, group_id=group).run_until_caught_up(timeout_s=60)
    assert figures(wh) == expected
    assert total_seconds(wh, ids) == total_seconds(live(stack), ids)


def test_clickhouse_unavailable_then_back_catches_up_with_nothing_lost(
    stack: Stack, people: dict[str, Any]
) -> None:
    expected = figures(live(stack))
    db = f"{stack.settings.clickhouse_database}_outage"
    target = stack.settings.model_copy(update={"clickhouse_database": db})
    real = connect(target)
    migrate(real)
    flaky = FlakyWarehouse(real, down_for_s=3.0)
    sink = Sink(target, flaky, group_id=stack.settings.topic("outage-sink"))
    t0 = time.monotonic()
    sink.run_until_caught_up(timeout_s=60)
    assert flaky.refused >= 2 and sink.stats.insert_failures == flaky.refused
    assert time.monotonic() - t0 >= 3.0
    assert figures(real) == expected
    # Nothing was committed while ClickHouse was down: the group's offsets are the end offsets.
    c = KafkaConsumer(
        bootstrap_servers=stack.broker.bootstrap,
        group_id=stack.settings.topic("outage-sink"),
        api_version=(3, 9),
    )
    try:
        name = stack.settings.topic(topics.SESSIONS.name)
        parts = [TopicPartition(name, p) for p in range(topics.SESSIONS.partitions)]
        ends = c.end_offsets(parts)
        assert all(c.committed(tp) == ends[tp] for tp in parts if ends[tp])
    finally:
        c.close()


def test_invalid_events_go_to_the_dead_letters_with_the_reason(stack: Stack) -> None:
    p = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    marker = uuid.uuid4().hex
    for spec in (topics.CHECKINS, topics.SESSION_REVIEWS):
        p.send(stack.settings.topic(spec.name), key=marker.encode(), value=b'{"event_type":"x"}')
    p.flush()
    p.close()
    c = KafkaConsumer(
        stack.settings.topic(topics.DEAD_LETTER.name),
        bootstrap_servers=stack.broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        api_version=(3, 9),
    )
    sources: set[str] = set()
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and len(sources) < 3:
            for msg in c:
                if msg.key == marker.encode():
                    h = dict(msg.headers)
                    assert b"unknown event_type" in h["reason"]
                    sources.add((h.get("source") or h.get("source_topic") or b"").decode())
    finally:
        c.close()
    # The agent refuses it on checkins; the sink on checkins and on session-reviews.
    assert "pair_sessions" in sources
    assert stack.settings.topic(topics.SESSION_REVIEWS.name) in sources


def test_replay_from_offset_zero_equals_the_live_result(
    stack: Stack, people: dict[str, Any]
) -> None:
    # A review in the log too, so replay covers decisions.
    ids = [m["id"] for m in people["members"]]
    row = live(stack).query(
        "SELECT session_id FROM sessions FINAL WHERE member_id = %(m)s AND voided = 0 "
        "AND status = 'closed' ORDER BY start LIMIT 1",
        {"m": ids[0]},
    )
    r = stack.client.post(
        f"/v1/sessions/{row[0][0]}/review",
        json={"action": "adjust", "credited_hours": 0.5, "reason": "核减"},
        headers=stack.admin,
    )
    assert r.status_code == 202, r.text
    settle(stack, ids, len(ids) * 3 * 3600 - 3600 + 1800)
    time.sleep(1.0)  # let the sink flush the review row itself
    expected = figures(live(stack))
    assert expected["reviews"] and expected["weeks"]
    got = figures(replay(stack.settings, f"{stack.settings.clickhouse_database}_replay"))
    assert got == expected
