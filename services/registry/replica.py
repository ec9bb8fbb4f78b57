"""The check-in replica: what a scan needs of members, stations and grids, kept in memory.

Every scan reads its member, its station and the member's grid, so an API process keeps what a
check-in needs of them in memory (member id → status, unit, community, grid; station id →
community; grid id → level, parent), loaded at start and answered on the event loop without a
query or a thread hop. It is kept current two ways: a change made through this process is
written through at once (so on one API process a member set to `left` is refused on their very
next scan, and a moved member's next scan carries the new unit), and a background thread
re-reads the rows changed since its last pass every `REGISTRY_REFRESH_S` (1 s), so a change made
through *another* API process reaches this one's check-ins within about that long. If
refreshing fails, the replica is not trusted after `CheckinReplica.max_stale_s` (5 s at the
default) and scans fall back to the database path (`Registry.checkin_refs`), whose bound is the
same 5 s. A scan in the window is credited to the unit the member belonged to a moment before,
which is the bound we accept for not querying on every scan.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.events import Grid, Member, RegistryRecord, Station
from services.warehouse.client import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemberRef:
    """What a check-in needs of a member."""

    id: str
    status: str
    unit_id: str
    community_id: str
    grid_id: str | None
    version: int


@dataclass(frozen=True, slots=True)
class StationRef:
    """What a check-in (and a station's screen) needs of a station: where it is and its
    presence policy (see `services.events.Station`)."""

    id: str
    community_id: str
    version: int
    accepts_poster: bool = True
    backdated_poster: str = "flag"
    screen_key_generation: int = 0


@dataclass(frozen=True, slots=True)
class GridRef:
    id: str
    level: int
    parent_id: str | None
    version: int


CheckinRefs = tuple[StationRef, MemberRef, str | None]
_Ref = MemberRef | StationRef | GridRef


class CheckinReplica:
    """An in-memory copy of what a check-in needs of members, stations and grids; see the module
    docstring for how current it is.

    Reads (`lookup`) are plain dict lookups, safe from the event loop without a lock: writers
    replace whole immutable entries, and a dict read never sees a half-written one. Writers (the
    refresh thread, write-through) serialise on `_lock`, and an entry is only ever replaced by a
    higher version, so an older row read by a slow refresh never undoes a newer write-through.
    `lookup` answers None (the caller then asks the database) when the replica is not running,
    is stale, or lacks one of the entries; it never answers "not found" itself.
    """

    # A refresh reads the rows whose version (the writer's clock, µs) is at most this much older
    # than the start of the previous refresh: it covers a row becoming visible late (the
    # publish's wait, up to ~12 s for a 5,000-item bulk, the sink's lag when a write-through
    # failed) and the clocks of several API hosts differing. A full reload now and then is the
    # backstop for anything later still (registry entries are never deleted).
    LOOKBACK_S = 60.0
    FULL_RELOAD_S = 300.0

    def __init__(
        self,
        reader: Warehouse,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.reader = reader
        self.refresh_s = 1.0
        self._clock = clock
        self._wall = wall
        self._members: dict[str, MemberRef] = {}
        self._stations: dict[str, StationRef] = {}
        self._grids: dict[str, GridRef] = {}
        self._lock = threading.Lock()
        # Monotonic start of the last successful refresh: the replica holds every change made
        # anywhere before that moment (within LOOKBACK_S, see above).
        self._fresh_at = float("-inf")
        self._since_wall: float | None = None
        self._full_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def max_stale_s(self) -> float:
        """After this long without a successful refresh the replica is not trusted; it matches
        the per-key cache's `Registry.CACHE_TTL_S`, so the fallback keeps the same bound."""
        return max(5.0, 5 * self.refresh_s)

    def start(self, refresh_s: float) -> None:
        """Loads everything (blocking: call before serving), then refreshes in a thread."""
        self.refresh_s = refresh_s
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="registry-replica", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        # One thread: refreshes never overlap (single flight) and never run on the event loop.
        while not self._stop.wait(self.refresh_s):
            try:
                self.refresh()
            except Exception:  # ClickHouse busy or down: retry next period, fall back meanwhile
                log.warning("registry replica refresh failed", exc_info=True)

    def refresh(self) -> None:
        started, wall = self._clock(), self._wall()
        full = self._since_wall is None or started - self._full_at >= self.FULL_RELOAD_S
        since = 0 if full else max(0, int(((self._since_wall or 0.0) - self.LOOKBACK_S) * 1e6))
        params = {"v": since}
        # Grids and stations before members: a member row seen here has its grid in the
        # replica too, since the grid was written before anyone could refer to it.
        grids = self.reader.query(
            "SELECT id, level, parent_id, version FROM grids FINAL WHERE version > %(v)s", params
        )
        stations = self.reader.query(
            "SELECT id, community_id, accepts_poster, backdated_poster, screen_key_generation,"
            " version FROM stations FINAL WHERE version > %(v)s",
            params,
        )
        members = self.reader.query(
            "SELECT id, status, unit_id, community_id, grid_id, version"
            " FROM members FINAL WHERE version > %(v)s",
            params,
        )
        with self._lock:
            for gid, level, parent_id, gv in grids:
                self._put(self._grids, GridRef(gid, int(level), parent_id, int(gv)))
            for sid, community_id, poster, backdated, gen, sv in stations:
                self._put(
                    self._stations,
                    StationRef(sid, community_id, int(sv), bool(poster), str(backdated), int(gen)),
                )
            for mid, status, unit_id, m_community_id, grid_id, mv in members:
                self._put(
                    self._members,
                    MemberRef(mid, status, unit_id, m_community_id, grid_id, int(mv)),
                )
            self._fresh_at = started
            self._since_wall = wall
            if full:
                self._full_at = started

    @staticmethod
    def _put(table: dict[str, Any], ref: _Ref) -> None:
        cur = table.get(ref.id)
        if cur is None or ref.version > cur.version:
            table[ref.id] = ref

    def put(self, rec: RegistryRecord) -> None:
        """Write-through of a change made in this process (other kinds are not replicated)."""
        with self._lock:
            if isinstance(rec, Member):
                self._put(self._members, member_ref(rec))
            elif isinstance(rec, Station):
                self._put(self._stations, station_ref(rec))
            elif isinstance(rec, Grid):
                self._put(self._grids, GridRef(rec.id, rec.level, rec.parent_id, rec.version))

    def lookup(self, station_id: str, member_id: str) -> CheckinRefs | None:
        """The station, the member and the member's level-4 grid, or None: ask the database."""
        if self._clock() - self._fresh_at > self.max_stale_s:
            return None
        station = self._stations.get(station_id)
        member = self._members.get(member_id)
        if station is None or member is None:
            return None
        if member.grid_id is None:
            return station, member, None
        grid = self._grids.get(member.grid_id)
        if grid is None:
            return None
        return station, member, grid.parent_id if grid.level == 5 else grid.id

    def mark_fresh(self, started: float, refresh_s: float) -> None:
        """For a feed other than the database's refresh (the edge's Kafka feed,
        services.edge_feed): the replica holds every change made before `started` (monotonic)."""
        with self._lock:
            self.refresh_s = refresh_s
            self._fresh_at = max(self._fresh_at, started)

    @property
    def fresh(self) -> bool:
        return self._clock() - self._fresh_at <= self.max_stale_s

    def missing(self, station_id: str, member_id: str) -> tuple[str, str] | None:
        """What `lookup` lacks (kind, id), the station first; None if it has everything."""
        if station_id not in self._stations:
            return "station", station_id
        member = self._members.get(member_id)
        if member is None:
            return "member", member_id
        if member.grid_id is not None and member.grid_id not in self._grids:
            return "grid", member.grid_id
        return None

    def station(self, station_id: str) -> StationRef | None:
        """The station as the replica holds it, or None: ask the database."""
        if self._clock() - self._fresh_at > self.max_stale_s:
            return None
        return self._stations.get(station_id)

    def __len__(self) -> int:
        return len(self._members) + len(self._stations) + len(self._grids)


def member_ref(m: Member) -> MemberRef:
    return MemberRef(m.id, m.status, m.unit_id, m.community_id, m.grid_id, m.version)


def station_ref(s: Station) -> StationRef:
    return StationRef(
        s.id,
        s.community_id,
        s.version,
        s.accepts_poster,
        s.backdated_poster,
        s.screen_key_generation,
    )
