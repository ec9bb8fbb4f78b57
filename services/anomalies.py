"""Anomaly flags for the organizer's review queue: sessions that look wrong, decided by people.

Pure: no I/O. `services.reads.anomalies` reads the sessions, the stations' coordinates and the
scans' device ids, and calls `flag`. Three rules:

- `overlap`: the session overlaps another session of the same member (both are flagged). The
  pairing rules make one member's sessions follow one another, whoever made the scans (an
  organizer's or a team leader's check-in elsewhere closes the member's own session there), so
  this shows records no single pairing state made side by side: a session kept past the
  re-pairing horizon beside a later one, or a second state of the member.
- `too_fast`: the member reached this session's station from the previous session's faster
  than `max_speed_kmh` allows over the straight line between the two (stations with
  coordinates only). The member was last *proven* at the previous station by its check-out, or
  by its check-in when it had none (a session closed by the next check-in elsewhere ends when
  that one begins, which proves no travel time at all).
- `shared_device`: a scan of the session came from a phone (its `device_id`) that scanned for
  another member within `device_window`: one phone binding used for several members. Scans
  made by someone else (assisted, team) carry no device id and are never counted here.

Computed when read, not by the session agent: each rule looks across members (a device) or
across communities' stations (their coordinates), which the agent, partitioned by member and
holding no registry, does not see; and a flag changes no credit, so it need not be in the log.
Flags never change credit: the organizer approves or rejects the session as any other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

Anomaly = Literal["overlap", "too_fast", "shared_device"]
OVERLAP: Anomaly = "overlap"
TOO_FAST: Anomaly = "too_fast"
SHARED_DEVICE: Anomaly = "shared_device"
ANOMALIES: tuple[Anomaly, ...] = (OVERLAP, TOO_FAST, SHARED_DEVICE)

_EARTH_KM = 6371.0088


@dataclass(frozen=True)
class SessionFacts:
    session_id: str
    member_id: str
    station_id: str
    start: datetime
    end: datetime | None  # None: still open
    # Whether the session ended with its own check-out (not closed by a check-in elsewhere, a
    # forgotten check-out, or an open session).
    checked_out: bool
    scan_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceUse:
    device_id: str
    member_id: str
    at: datetime


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def flag(
    sessions: Iterable[SessionFacts],
    coords: Mapping[str, tuple[float, float]],
    scan_devices: Mapping[str, str],
    device_uses: Iterable[DeviceUse],
    *,
    now: datetime,
    max_speed_kmh: float,
    device_window: timedelta,
) -> dict[str, list[Anomaly]]:
    """Each flagged session's anomalies, in the order of `ANOMALIES`.

    `coords`: the stations that have coordinates; `scan_devices`: scan (event) id -> device id
    of the member's own scans; `device_uses`: every scan of those devices, by any member."""
    found: dict[str, set[Anomaly]] = {}
    by_member: dict[str, list[SessionFacts]] = {}
    for s in sessions:
        by_member.setdefault(s.member_id, []).append(s)
    for items in by_member.values():
        items.sort(key=lambda s: (s.start, s.session_id))
        _overlaps(items, now, found)
        _too_fast(items, coords, max_speed_kmh, found)
    uses: dict[str, list[DeviceUse]] = {}
    for u in device_uses:
        uses.setdefault(u.device_id, []).append(u)
    for items in by_member.values():
        for s in items:
            for scan_id in s.scan_ids:
                device = scan_devices.get(scan_id)
                if device is None:
                    continue
                if any(
                    u.member_id != s.member_id and abs(u.at - s.start) <= device_window
                    for u in uses.get(device, ())
                ):
                    found.setdefault(s.session_id, set()).add(SHARED_DEVICE)
    return {sid: [a for a in ANOMALIES if a in flags] for sid, flags in found.items()}


def _overlaps(items: list[SessionFacts], now: datetime, found: dict[str, set[Anomaly]]) -> None:
    latest: SessionFacts | None = None  # the session reaching furthest so far
    for s in items:
        if latest is not None and _overlapping(latest, s, now):
            found.setdefault(s.session_id, set()).add(OVERLAP)
            found.setdefault(latest.session_id, set()).add(OVERLAP)
        if latest is None or _end(s, now) > _end(latest, now):
            latest = s


def _overlapping(a: SessionFacts, b: SessionFacts, now: datetime) -> bool:
    """Whether `b`, starting no earlier than `a`, overlaps it: it begins inside `a`, or both
    begin at the same instant and last. Two check-ins at one instant (a member's own and one
    made for them, or a queued scan and a live one) make a session of no length there, closed
    by the next, which begins at that instant: the two follow one another, whichever the
    sessions' order (by id) puts first."""
    if b.start >= _end(a, now):
        return False
    return b.start > a.start or min(_end(a, now), _end(b, now)) > b.start


def _end(s: SessionFacts, now: datetime) -> datetime:
    return s.end if s.end is not None else max(now, s.start)


def _too_fast(
    items: list[SessionFacts],
    coords: Mapping[str, tuple[float, float]],
    max_speed_kmh: float,
    found: dict[str, set[Anomaly]],
) -> None:
    for a, b in pairwise(items):
        if a.station_id == b.station_id:
            continue
        pa, pb = coords.get(a.station_id), coords.get(b.station_id)
        if pa is None or pb is None:
            continue
        left_at = a.end if a.checked_out and a.end is not None else a.start
        km = distance_km(pa, pb)
        hours = (b.start - left_at).total_seconds() / 3600
        if km > 0 and (hours <= 0 or km / hours > max_speed_kmh):
            found.setdefault(b.session_id, set()).add(TOO_FAST)
