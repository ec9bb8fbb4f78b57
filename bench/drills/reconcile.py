"""`python -m bench.drills.reconcile`: credited seconds per member in ClickHouse, as JSON.

Its own process because chDB opens one data folder per process (the drill's API owned it and
has stopped by now; the drill runner may open several drills' folders in one run).
"""

from __future__ import annotations

import json

from services.settings import get_settings
from services.warehouse.client import connect


def main() -> None:
    wh = connect(get_settings())
    sessions = wh.query(
        "SELECT member_id, sum(credited_seconds) FROM sessions FINAL "
        "WHERE status NOT IN ('open', 'rejected') AND voided = 0 GROUP BY member_id"
    )
    weeks = wh.query(
        "SELECT member_id, sum(credited_seconds) FROM member_weeks FINAL GROUP BY member_id"
    )
    stats = wh.query(
        "SELECT count(), countIf(status = 'open'), countIf(status = 'auto_closed') "
        "FROM sessions FINAL WHERE voided = 0"
    )[0]
    scans = wh.query("SELECT count(), uniqExact(event_id) FROM checkins")[0]
    print(
        json.dumps(
            {
                "sessions": {str(m): int(s) for m, s in sessions},
                "weeks": {str(m): int(s) for m, s in weeks},
                "session_rows": int(stats[0]),
                "open": int(stats[1]),
                "auto_closed": int(stats[2]),
                "scan_rows": int(scans[0]),
                "scan_ids": int(scans[1]),
            }
        )
    )


if __name__ == "__main__":
    main()
