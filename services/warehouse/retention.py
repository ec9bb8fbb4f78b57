"""Applies the retention settings as ClickHouse TTLs (services.privacy.retained_tables), in the
migrate step after the migrations: the settings may change without a new migration."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from services.privacy import Retained, retained_tables, ttl_statement
from services.settings import Settings
from services.warehouse.client import Warehouse
from services.warehouse.cluster import render_all

log = logging.getLogger(__name__)


def _applied(wh: Warehouse) -> dict[str, int]:
    rows = wh.query("SELECT table_name, years FROM retention_applied FINAL")
    return {str(t): int(y) for t, y in rows}


def wanted(settings: Settings) -> tuple[Retained, ...]:
    return retained_tables(settings.scan_retention_years, settings.access_log_retention_years)


def apply(wh: Warehouse, settings: Settings, cluster: str = "") -> list[Retained]:
    """Sets each table's TTL where it differs from what was applied last; returns those set.
    Altering a TTL makes ClickHouse recompute it over every part, so an unchanged one is left."""
    done = _applied(wh)
    changed = []
    for r in wanted(settings):
        if done.get(r.table, 0) == r.years:
            continue
        stmt = ttl_statement(r)
        for s in render_all([stmt], cluster) if cluster else [stmt]:
            wh.command(s)
        wh.insert(
            "retention_applied",
            [(r.table, r.years, datetime.now(UTC))],
            ["table_name", "years", "applied_at"],
        )
        log.info("retention of %s (%s): %s years (0: forever)", r.table, r.why, r.years)
        changed.append(r)
    return changed
