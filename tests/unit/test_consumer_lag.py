"""The consumer groups' lag as /healthz reports it (services.consumer_lag). No network."""

from __future__ import annotations

from typing import Any

import pytest

from services.consumer_lag import LagProbe, group_lag, groups, lagging
from services.settings import Settings


def test_lag_counts_uncommitted_partitions_from_their_beginning() -> None:
    ends = {("checkins", 0): 100, ("checkins", 1): 40, ("session-clock", 0): 9}
    begins = {("checkins", 0): 0, ("checkins", 1): 10, ("session-clock", 0): 0}
    committed = {("checkins", 0): 90, ("session-clock", 0): 12}
    # 10 behind on p0, p1 never committed (30 left after the retention's start), a stale end 0.
    assert group_lag(committed, ends, begins) == 40
    assert group_lag({}, {}, {}) == 0


def test_only_groups_beyond_the_threshold_are_named() -> None:
    assert lagging({"worker": 6, "sink": 5}, 5) == ["worker"]
    assert lagging({"worker": 0, "sink": 0}, 5) == []
    assert lagging(None, 5) == []


def test_groups_carry_the_deployment_prefix() -> None:
    g = groups(Settings(topic_prefix="p."))
    assert g["worker"][0] == "p.volunteer-streams"
    assert g["sink"][0] == "p.clickhouse-sink"
    assert "p.checkins" in g["worker"][1]
    assert g["sink"][1] and all(t.startswith("p.") for t in g["sink"][1])


def test_the_probe_asks_the_broker_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = LagProbe(Settings(health_lag_interval_s=60))
    calls: list[int] = []

    def measure() -> dict[str, int]:
        calls.append(1)
        return {"worker": len(calls), "sink": 0}

    monkeypatch.setattr(probe, "measure", measure)
    assert probe.current() == {"worker": 1, "sink": 0}
    assert probe.current() == {"worker": 1, "sink": 0}
    assert len(calls) == 1


def test_a_broker_that_cannot_answer_gives_no_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = LagProbe(Settings(health_lag_interval_s=0.000001))
    monkeypatch.setattr(probe, "measure", lambda: {"worker": 3, "sink": 0})
    assert probe.current() == {"worker": 3, "sink": 0}

    def down() -> dict[str, int]:
        raise OSError("broker gone")

    monkeypatch.setattr(probe, "measure", down)
    # Not the last figure: an old lag shown as current would hide a stuck pipeline.
    assert probe.current() is None


def test_a_measure_leaves_the_skipped_topics_out_even_where_the_group_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from kafka import TopicPartition

    class Admin:
        def list_group_offsets(self, specs: dict[str, None]) -> dict[str, Any]:
            return {
                "g": {
                    TopicPartition("checkins", 0): SimpleNamespace(offset=7),
                    TopicPartition("session-clock", 0): SimpleNamespace(offset=1),
                }
            }

    class Consumer:
        def partitions_for_topic(self, topic: str) -> set[int]:
            return {0}

        def end_offsets(self, parts: list[Any]) -> dict[Any, int]:
            return {p: {"checkins": 10, "session-clock": 5}[p.topic] for p in parts}

        def beginning_offsets(self, parts: list[Any]) -> dict[Any, int]:
            return {p: 0 for p in parts}

    probe = LagProbe(Settings())
    monkeypatch.setattr(probe, "_clients", lambda: (Admin(), Consumer()))
    wanted = {"worker": ("g", ["checkins"])}
    # The clock's partition was committed on: counted unless skipped.
    assert probe.measure(wanted) == {"worker": 3 + 4}
    assert probe.measure(wanted, skip=["session-clock"]) == {"worker": 3}
