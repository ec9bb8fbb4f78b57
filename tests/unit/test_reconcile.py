"""The reconciliation job's own logic, without a warehouse or a broker (see
tests/integration/test_reconcile.py for its SQL and the real pipeline)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from services import reconcile
from services.reconcile import Reconciler, Snapshots, bounds_array
from services.settings import Settings
from services.topics import STREAMS_APP_ID
from services.warehouse.client import Warehouse

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_a_partition_without_a_commit_makes_none_of_its_scans_due() -> None:
    assert bounds_array({0: 10, 2: 7}) == [10, 0, 7]
    assert bounds_array({}) == []
    # A group's "no offset" (-1) must not make anything due either.
    assert bounds_array({1: -1}) == [0, 0]


def test_the_settled_snapshot_is_the_newest_one_old_enough() -> None:
    snaps = Snapshots(settle_s=60)
    snaps.add(0.0, T0, {0: 1})
    assert snaps.settled(59.0) is None
    snaps.add(30.0, T0, {0: 2})
    snaps.add(90.0, T0, {0: 3})
    assert snaps.settled(60.0) == (T0, {0: 1})
    assert snaps.settled(95.0) == (T0, {0: 2})
    # Nothing newer settled since: the same one stands, it is not lost.
    assert snaps.settled(100.0) == (T0, {0: 2})
    assert snaps.settled(150.0) == (T0, {0: 3})


def test_the_group_is_the_session_agents_own() -> None:
    # services must not import streams: both name the app id declared in services.topics.
    app = (ROOT / "streams" / "app.py").read_text()
    assert reconcile.SESSION_AGENT_GROUP == STREAMS_APP_ID
    assert "settings.topic(STREAMS_APP_ID)" in app


class FakeWarehouse:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.params: list[dict[str, Any]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        assert sql == reconcile.ACCOUNT_SQL
        self.params.append(parameters or {})
        return self.rows


def _metric(name: str, partition: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"partition": partition})


def _runs(result: str) -> float:
    return REGISTRY.get_sample_value("volunteer_reconcile_runs_total", {"result": result}) or 0.0


def test_a_run_waits_for_settled_offsets_then_reports_metrics_and_logs_each_scan_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = [("mem_9", "scan_9", 41, datetime(2026, 11, 29, 12, tzinfo=UTC))]
    wh = FakeWarehouse([(4, date(2026, 11, 29), 10, 9, missing), (5, date(2026, 11, 29), 3, 3, [])])
    settings = Settings(reconcile_settle_s=0.05, reconcile_lookback_h=24)
    offsets = iter([{4: 100, 5: 7, 3: 0}, {4: 120, 5: 8, 3: 0}, {4: 130, 5: 9, 3: 0}])
    job = Reconciler(settings, cast(Warehouse, wh), offsets=lambda: next(offsets))
    waiting, ok = _runs("waiting"), _runs("ok")

    # The first snapshot is younger than the settle time: nothing is compared yet.
    job.snapshots.settle_s = 3600
    assert job.run_once() is None
    assert _runs("waiting") == waiting + 1 and wh.params == []

    job.snapshots.settle_s = 0
    caplog.set_level(logging.WARNING, logger="services.reconcile")
    result = job.run_once()
    assert result is not None and _runs("ok") == ok + 1
    # The newest settled snapshot bounds what is due, partition by partition.
    assert wh.params[-1]["bounds"] == [0, 0, 0, 0, 120, 8]
    assert result.unaccounted_total == 1 and result.raw_scans == 13
    assert result.unaccounted_by_partition() == {3: 0, 4: 1, 5: 0}
    assert _metric("volunteer_unaccounted_scans", "4") == 1
    assert _metric("volunteer_unaccounted_scans", "3") == 0
    assert _metric("volunteer_reconciled_scans", "4") == 10
    named = [r for r in caplog.records if "scan_9" in r.getMessage()]
    assert len(named) == 1 and "mem_9" in named[0].getMessage()
    assert getattr(named[0], "member_id", None) == "mem_9"
    assert reconcile.latest_result() == result

    # The same difference again: counted, summarised, but not logged scan by scan twice.
    caplog.clear()
    job.run_once()
    assert not [r for r in caplog.records if "scan_9" in r.getMessage()]
    assert any("1 of 13 raw scans" in r.getMessage() for r in caplog.records)

    # Repaired (e.g. replayed): the gauge of that partition goes back to 0.
    wh.rows = [(5, date(2026, 11, 29), 3, 3, [])]
    offsets = iter([{4: 140, 5: 9}])
    job._offsets = lambda: next(offsets)
    job.run_once()
    assert _metric("volunteer_unaccounted_scans", "4") == 0


def test_a_failed_comparison_is_counted_and_keeps_the_previous_result() -> None:
    class Broken:
        def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
            raise ConnectionError("ClickHouse unavailable")

    settings = Settings(reconcile_settle_s=0)
    job = Reconciler(settings, cast(Warehouse, Broken()), offsets=lambda: {0: 1})
    before = reconcile.latest_result()
    errors = _runs("error")
    assert job.run_once() is None
    assert _runs("error") == errors + 1
    assert reconcile.latest_result() is before
