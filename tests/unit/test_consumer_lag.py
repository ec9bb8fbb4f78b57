"""The consumer groups' lag as /healthz reports it (services.consumer_lag). No network."""

from __future__ import annotations

from services.consumer_lag import group_lag, groups, lagging
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
