"""Rebuild ClickHouse from the log: `python -m services.replay --database NAME`.

Runs a sink with a fresh consumer group over every routed topic from offset 0 into an empty
database, stops once it has caught up with the end offsets, and prints the figures people are
judged by (hours, sessions, weekly totals) so they can be compared with the live database
(`--compare`). With embedded chDB the data folder belongs to one process: stop the API first.
"""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from typing import Any

from services.counting import COUNTED_SQL, CREDITS_SQL, SECONDS_SQL, YEAR_SQL
from services.settings import Settings, get_settings
from services.sink import Sink
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import migrate

log = logging.getLogger(__name__)


class NotEmpty(RuntimeError):
    pass


def figures(wh: Warehouse) -> dict[str, Any]:
    """Every member's credited hours and sessions, and every weekly total, as plain data."""
    sessions = wh.query(
        "SELECT session_id, member_id, station_id, start, end, credited_seconds, status, "
        "flags, voided FROM sessions FINAL ORDER BY session_id"
    )
    hours = wh.query(
        f"SELECT member_id, {YEAR_SQL} AS y, sum({SECONDS_SQL}), countIf({COUNTED_SQL}) "
        f"FROM sessions FINAL WHERE {CREDITS_SQL} GROUP BY member_id, y ORDER BY member_id, y"
    )
    weeks = wh.query(
        "SELECT week, member_id, station_id, sessions, credited_seconds FROM member_weeks FINAL "
        "ORDER BY week, member_id, station_id"
    )
    reviews = wh.query(
        "SELECT review_id, session_id, action FROM session_reviews FINAL ORDER BY review_id"
    )
    return {
        "sessions": [list(map(str, r)) for r in sessions],
        "hours": [list(map(str, r)) for r in hours],
        "weeks": [list(map(str, r)) for r in weeks],
        "reviews": [list(map(str, r)) for r in reviews],
    }


def replay(
    settings: Settings, database: str, group_id: str | None = None, timeout_s: float = 600.0
) -> Warehouse:
    """Loads every topic into `database` (created, must be empty) and returns it."""
    target = settings.model_copy(update={"clickhouse_database": database})
    wh = connect(target)
    migrate(wh)
    for table in ("sessions", "member_weeks", "checkins", "session_reviews"):
        if wh.query(f"SELECT count() FROM {table}")[0][0]:
            raise NotEmpty(f"database {database!r} already holds rows in {table}")
    group = group_id or settings.topic(f"replay-{uuid.uuid4().hex[:12]}")
    sink = Sink(target, wh, group_id=group)
    sink.run_until_caught_up(timeout_s=timeout_s)
    log.info(
        "replayed %d rows in %d batches into %s",
        sink.stats.rows_written,
        sink.stats.batches,
        database,
    )
    return wh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="an empty database to fill")
    parser.add_argument("--compare", action="store_true", help="compare with the live database")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    wh = replay(settings, args.database)
    got = figures(wh)
    summary = {k: len(v) for k, v in got.items()}
    if args.compare:
        live = figures(connect(settings))
        summary["equal_to_live"] = int(live == got)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
