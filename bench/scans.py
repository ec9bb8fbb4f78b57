"""Pre-generated scans for the stream benchmark: pure, seeded."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from services.events import CheckinScanned, derived_id


def generate(n_scans: int, n_members: int, now: datetime, seed: int = 7) -> list[CheckinScanned]:
    """`n_scans` scans (check-in/check-out pairs) of `n_members` members over the last ~60 h.

    Recent on purpose: the session agent's clock (a tick every SESSION_TICK_S) is the wall
    clock, and scans older than the re-pairing horizon (96 h) would go to the dead letters.
    Every member's pairs are spaced evenly; sessions last 30 to 150 minutes.
    """
    rng = random.Random(seed)
    pairs = max(1, n_scans // 2)
    per_member = max(1, -(-pairs // n_members))
    span = timedelta(hours=60)
    step = span / per_member
    out: list[CheckinScanned] = []
    for i in range(pairs):
        m = i % n_members
        k = i // n_members
        member = f"mem_bench{m:07d}"
        community = f"com_bench{m % 18:02d}"
        station = f"st_bench{m % 18:02d}{m % 5}"
        start = now - span + k * step + timedelta(seconds=rng.randrange(0, 600))
        end = start + timedelta(minutes=rng.randrange(30, 150))
        for action, at in (("in", start), ("out", end)):
            cid = str(uuid.UUID(int=rng.getrandbits(128)))
            out.append(
                CheckinScanned(
                    event_id=derived_id("checkin", member, cid),
                    occurred_at=at,
                    member_id=member,
                    station_id=station,
                    station_community_id=community,
                    unit_id=f"unit_bench{m % 100:03d}",
                    member_community_id=community,
                    member_grid_id=None,
                    action=action,
                    client_event_id=cid,
                    received_at=at + timedelta(seconds=1),
                )
            )
    # The log order a busy county produces: everyone's scans interleaved by time.
    out.sort(key=lambda e: (e.received_at, e.event_id))
    return out[:n_scans]
