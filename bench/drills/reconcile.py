"""`python -m bench.drills.reconcile [--members a,b]`: credited seconds per member in ClickHouse,
as JSON; with `--members`, those members' raw scans (`checkins`) and sessions (`sessions FINAL`)
too, for a drill's failure report.

Its own process because chDB opens one data folder per process (the drill's API owned it and
has stopped by now; the drill runner may open several drills' folders in one run).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from services.settings import get_settings
from services.warehouse.client import connect


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def details(wh: Any, members: list[str]) -> dict[str, Any]:
    """Per member: every raw scan row and every current session row (FINAL), in time order."""
    out: dict[str, Any] = {m: {"checkins": [], "sessions": []} for m in members}
    scans = wh.query(
        "SELECT member_id, event_id, client_event_id, action, station_id, scanned_at, "
        "received_at, count() FROM checkins WHERE member_id IN %(ms)s "
        "GROUP BY member_id, event_id, client_event_id, action, station_id, scanned_at, "
        "received_at ORDER BY member_id, scanned_at",
        {"ms": members},
    )
    for m, eid, cid, action, station, at, received, rows in scans:
        out[str(m)]["checkins"].append(
            {
                "event_id": eid,
                "client_event_id": cid,
                "action": action,
                "station_id": station,
                "scanned_at": _iso(at),
                "received_at": _iso(received),
                "rows": int(rows),
            }
        )
    sessions = wh.query(
        "SELECT member_id, session_id, revision, start, end, status, flags, credited_seconds, "
        "counted, voided, checkin_event_id, checkout_event_id FROM sessions FINAL "
        "WHERE member_id IN %(ms)s ORDER BY member_id, start",
        {"ms": members},
    )
    for m, sid, rev, start, end, status, flags, credited, counted, voided, cin, cout in sessions:
        out[str(m)]["sessions"].append(
            {
                "session_id": sid,
                "revision": int(rev),
                "start": _iso(start),
                "end": _iso(end),
                "status": status,
                "flags": list(flags),
                "credited_seconds": int(credited),
                "counted": int(counted),
                "voided": int(voided),
                "checkin_event_id": cin,
                "checkout_event_id": cout,
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--members", default="", help="comma-separated member ids to detail")
    args = p.parse_args(argv)
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
    members = [m for m in args.members.split(",") if m]
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
                "details": details(wh, members) if members else {},
            }
        )
    )


if __name__ == "__main__":
    main()
