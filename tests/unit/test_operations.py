"""Operations (issue 7): lag arithmetic, JSON logs, dead-letter decoding, the drills' workload
and reconciliation, the sink's fault hooks. No network."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bench.drills.workload import WINDOW, make_plan, reconcile
from services import metrics
from services.deadletter import decode, still_invalid
from services.events import CheckinScanned, derived_id
from services.logging import JsonFormatter, dict_config
from services.settings import Settings
from services.sink import Sink


def test_lag_sums_partitions_per_topic_and_never_goes_negative() -> None:
    ends = {("checkins", 0): 10, ("checkins", 1): 5, ("sessions", 0): 7}
    done = {("checkins", 0): 4, ("checkins", 1): 9, ("sessions", 0): 7}
    assert metrics.lag_by_topic(ends, done) == {"checkins": 6, "sessions": 0}
    assert metrics.lag_by_topic({("x", 0): 3}, {}) == {"x": 3}


def test_the_worker_lag_counts_its_input_partitions_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.types import TP

    from streams import app as streams_app

    p = streams_app.settings.topic_prefix
    ends = {
        TP(p + "checkins", 0): 100,
        TP(p + "checkins", 1): 50,
        TP(p + "session-clock", 0): 7,
        TP(p + "member-session-state-v2-changelog", 0): 9,
    }
    monitor = SimpleNamespace(
        tp_end_offsets=ends,
        tp_committed_offsets={TP(p + "checkins", 0): 90, TP(p + "session-clock", 0): 7},
    )
    monkeypatch.setattr(streams_app.app, "monitor", monitor)
    monkeypatch.setattr(
        streams_app.app, "assignor", SimpleNamespace(assigned_actives=lambda: set(ends))
    )
    assert streams_app.update_lag() == {"checkins": 60, "session-clock": 0}
    assert 'volunteer_agent_lag{topic="checkins"} 60.0' in metrics.render().decode()


def test_json_formatter_prints_one_object_with_extras() -> None:
    rec = logging.LogRecord(
        "services.sink", logging.WARNING, __file__, 1, "hello %s", ("你",), None
    )
    rec.event_id = "e-1"
    out = JsonFormatter().format(rec)
    assert "\n" not in out
    data = json.loads(out)
    assert data["msg"] == "hello 你" and data["level"] == "WARNING"
    assert data["logger"] == "services.sink" and data["event_id"] == "e-1"
    assert data["ts"].endswith("+00:00")
    assert dict_config("text") is None
    assert dict_config("json") is not None


def test_settings_refuse_an_unknown_log_format() -> None:
    with pytest.raises(ValueError):
        Settings(log_format="xml")


def _scan(member: str = "m1") -> CheckinScanned:
    now = datetime.now(UTC)
    return CheckinScanned(
        event_id=derived_id("checkin", member, "c1"),
        occurred_at=now,
        member_id=member,
        station_id="s1",
        station_community_id="c",
        unit_id="u",
        member_community_id="c",
        action="in",
        client_event_id="c1",
        received_at=now,
    )


def test_dead_letters_decode_from_the_sink_and_from_agents() -> None:
    sink = decode("p.", 0, 3, b"k", b"{}", [("reason", b"bad"), ("source_topic", b"p.feedback")])
    assert (sink.source, sink.source_topic, sink.reason, sink.offset) == (
        "sink",
        "feedback",
        "bad",
        3,
    )
    old_agent = decode(
        "p.", 0, 4, None, b"x" * 500, [("reason", b"late"), ("source", b"pair_sessions")]
    )
    assert old_agent.source_topic == "checkins" and old_agent.excerpt().endswith("…")
    unknown = decode("", 0, 5, None, None, [("source", b"someone")])
    assert unknown.source_topic == ""


def test_still_invalid_judges_a_message_as_the_sink_would_today() -> None:
    assert still_invalid("checkins", _scan().to_bytes()) is None
    assert still_invalid("checkins", b'{"event_type":"x"}') is not None
    assert still_invalid("session-clock", b"not json") is not None


def test_drill_plan_knows_the_true_seconds_and_never_overlaps() -> None:
    now = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    members = [f"m{i}" for i in range(50)]
    plan = make_plan(members, ["s1", "s2"], sessions=5, now=now, http_every=10)
    assert len(plan.scans) == 50 * 5 * 2
    assert len({s.client_event_id for s in plan.scans}) == len(plan.scans)
    assert sum(s.http for s in plan.scans) == 5 * 5 * 2
    for m in members:
        mine = sorted((s.at, s.action) for s in plan.scans if s.member_id == m)
        assert [a for _, a in mine] == ["in", "out"] * 5  # never overlapping
        secs = sum(
            int((mine[i + 1][0] - mine[i][0]).total_seconds()) for i in range(0, len(mine), 2)
        )
        assert secs == plan.truth[m]
        assert all(now - WINDOW <= t < now for t, _ in mine)
        assert all(
            timedelta(minutes=15) <= mine[i + 1][0] - mine[i][0] <= timedelta(hours=4)
            for i in range(0, 10, 2)
        )
    assert make_plan(members, ["s1"], 5, now).truth == make_plan(members, ["s1"], 5, now).truth


def test_reconcile_counts_lost_and_doubled_per_member_without_cancelling() -> None:
    r = reconcile({"a": 100, "b": 100}, {"a": 50, "b": 150, "c": 10})
    assert (r.lost_seconds, r.doubled_seconds, r.members_off, r.ok) == (50, 60, 3, False)
    assert reconcile({"a": 1}, {"a": 1}).ok


class _Wh:
    def __init__(self) -> None:
        self.inserts = 0

    def insert(self, *args: Any, **kwargs: Any) -> None:
        self.inserts += 1


def test_fault_hook_makes_inserts_fail_for_a_while_only_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("services.sink.time.monotonic", lambda: clock[0])
    off = Sink(Settings(), _Wh())  # type: ignore[arg-type]
    off._fault_inserts_down()  # inert by default
    s = Sink(Settings(sink_fault_inserts_down_s=30, sink_fault_inserts_down_after=2), _Wh())  # type: ignore[arg-type]
    s._fault_inserts_down()  # 0 inserts so far: not yet
    s._inserts = 2
    with pytest.raises(ConnectionError):
        s._fault_inserts_down()
    clock[0] = 129.0
    with pytest.raises(ConnectionError):
        s._fault_inserts_down()
    clock[0] = 130.5
    s._fault_inserts_down()


def test_fault_exit_hook_is_inert_by_default_and_exits_at_n(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits: list[int] = []
    monkeypatch.setattr("services.sink.os._exit", exits.append)
    s = Sink(Settings(), _Wh())  # type: ignore[arg-type]
    s._inserts = 1
    s._fault_exit_after_insert()
    assert exits == []
    s = Sink(Settings(sink_fault_after_insert=3), _Wh())  # type: ignore[arg-type]
    s._inserts = 2
    s._fault_exit_after_insert()
    s._inserts = 3
    s._fault_exit_after_insert()
    assert exits == [137]
