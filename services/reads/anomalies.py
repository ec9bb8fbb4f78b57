"""The anomaly flags of a community's sessions (rules: services.anomalies)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services import anomalies
from services.warehouse.client import Warehouse

# A member's sessions elsewhere that can overlap or precede one of the community's: a day
# before its window (a session spans at most a day and its forgotten-check-out grace).
_MARGIN = timedelta(days=1)


def _utc(v: Any) -> Any:
    # chDB hands DateTime64('UTC') back naive.
    return v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v


def community_anomalies(
    wh: Warehouse,
    community_id: str,
    since: datetime,
    now: datetime,
    max_speed_kmh: float,
    device_window: timedelta,
) -> dict[str, list[anomalies.Anomaly]]:
    """Each flagged session at the community's stations started since `since`: its anomalies."""
    rows = wh.query_dicts(
        """
        SELECT session_id, member_id, station_id, station_community_id, start, end,
               checkin_event_id, checkout_event_id, status
        FROM sessions FINAL
        WHERE voided = 0 AND status != 'rejected' AND start >= %(from)s
          AND member_id IN (
              SELECT DISTINCT member_id FROM sessions FINAL
              WHERE station_community_id = %(c)s AND voided = 0 AND start >= %(since)s)
        """,
        {"c": community_id, "since": since, "from": since - _MARGIN},
    )
    if not rows:
        return {}
    facts = [
        anomalies.SessionFacts(
            session_id=r["session_id"],
            member_id=r["member_id"],
            station_id=r["station_id"],
            start=_utc(r["start"]),
            end=_utc(r["end"]),
            checked_out=r["checkout_event_id"] is not None and r["checkin_event_id"] is not None,
            scan_ids=tuple(
                e for e in (r["checkin_event_id"], r["checkout_event_id"]) if e is not None
            ),
        )
        for r in rows
    ]
    ours = {r["session_id"] for r in rows if r["station_community_id"] == community_id}
    station_ids = sorted({f.station_id for f in facts})
    coords = {
        str(sid): (float(lat), float(lon))
        for sid, lat, lon in wh.query(
            "SELECT id, lat, lon FROM stations FINAL "
            "WHERE id IN %(ids)s AND lat IS NOT NULL AND lon IS NOT NULL",
            {"ids": station_ids},
        )
    }
    scan_ids = sorted({e for f in facts for e in f.scan_ids})
    scan_devices = {
        str(eid): str(dev)
        for eid, dev in wh.query(
            "SELECT event_id, device_id FROM checkins "
            "WHERE event_id IN %(ids)s AND device_id IS NOT NULL AND scanned_at >= %(from)s",
            {"ids": scan_ids, "from": since - _MARGIN},
        )
    }
    uses: list[anomalies.DeviceUse] = []
    if scan_devices:
        uses = [
            anomalies.DeviceUse(str(dev), str(mid), _utc(at))
            for dev, mid, at in wh.query(
                "SELECT DISTINCT device_id, member_id, scanned_at FROM checkins "
                "WHERE device_id IN %(d)s AND scanned_at >= %(from)s",
                {"d": sorted(set(scan_devices.values())), "from": since - device_window},
            )
        ]
    flagged = anomalies.flag(
        facts,
        coords,
        scan_devices,
        uses,
        now=now,
        max_speed_kmh=max_speed_kmh,
        device_window=device_window,
    )
    return {sid: a for sid, a in flagged.items() if sid in ours}
