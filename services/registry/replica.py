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
from datetime import datetime
from typing import Any

from services.events import Grid, Member, RegistryRecord, Station
from services.warehouse.client import Warehouse

log = logging.getLogger(__name__)

# The fields that decide whose a member's service is, and whether it counts at all.
ATTRIBUTION_FIELDS = ("unit_id", "community_id", "grid_id", "status")


@dataclass(frozen=True, slots=True)
class MemberRef:
    """What a check-in needs of a member."""

    id: str
    status: str
    unit_id: str
    community_id: str
    grid_id: str | None
    version: int
    # The version (µs) of the member's latest change of an attribution field; 0 when none since
    # the record was created, None when not known (then the record's version stands in).
    moved_at: int | None = None

    def moved_after(self, at: datetime) -> bool:
        """Whether the member's unit, community, grid or status may have changed after `at`: only
        then is a scan made at `at` read against the member's history. A member never moved
        needs no history read, however old the scan (e.g. a queued scan sent after the member's
        name or phone changed)."""
        since = self.version if self.moved_at is None else self.moved_at
        return at.timestamp() * 1_000_000 < since


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
        # Attribution changes learned before their member's record (`note_move`).
        self._moves: dict[str, int] = {}
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
        # The latest attribution change of each member changed in the window: a duplicate row
        # of a change has the same version, so the max needs no FINAL.
        moves = self.reader.query(
            "SELECT entity_id, max(version) FROM registry_history"
            " WHERE entity_kind = 'member' AND operation = 'update'"
            " AND hasAny(fields, %(f)s) AND version > %(v)s GROUP BY entity_id",
            {**params, "f": list(ATTRIBUTION_FIELDS)},
        )
        with self._lock:
            for gid, level, parent_id, gv in grids:
                self._put(self._grids, GridRef(gid, int(level), parent_id, int(gv)))
            for sid, community_id, poster, backdated, gen, sv in stations:
                self._put(
                    self._stations,
                    StationRef(sid, community_id, int(sv), bool(poster), str(backdated), int(gen)),
                )
            moved = {str(mid): int(v) for mid, v in moves}
            for mid, status, unit_id, m_community_id, grid_id, mv in members:
                ref = MemberRef(mid, status, unit_id, m_community_id, grid_id, int(mv))
                self._put_member(ref, moved.pop(mid, 0))
            for mid, v in moved.items():  # a change's history row read after its member row
                cur = self._members.get(mid)
                if cur is not None:
                    self._members[mid] = _with_moved(cur, max(v, cur.moved_at or 0))
            self._fresh_at = started
            self._since_wall = wall
            if full:
                self._full_at = started

    @staticmethod
    def _put(table: dict[str, Any], ref: _Ref) -> None:
        cur = table.get(ref.id)
        if cur is None or ref.version > cur.version:
            table[ref.id] = ref

    def _put_member(self, ref: MemberRef, moved_at: int) -> None:
        """Keeps the newer of `ref` and the held record, and the latest attribution change known
        of either. A record whose attribution fields differ from the held one moved at its
        version even if that change's history row is not read yet."""
        cur = self._members.get(ref.id)
        if self._moves:
            moved_at = max(moved_at, self._moves.pop(ref.id, 0))
        if cur is not None:
            moved_at = max(moved_at, cur.moved_at or 0)
            if ref.version > cur.version and attribution(ref) != attribution(cur):
                moved_at = max(moved_at, ref.version)
        if cur is None or ref.version > cur.version:
            self._members[ref.id] = _with_moved(ref, moved_at)
        elif moved_at != cur.moved_at:
            self._members[ref.id] = _with_moved(cur, moved_at)

    def put(self, rec: RegistryRecord, before: RegistryRecord | None = None) -> None:
        """Write-through of a change made in this process (other kinds are not replicated);
        `before` is the record it replaces, None when it is created."""
        with self._lock:
            if isinstance(rec, Member):
                ref = member_ref(rec)
                if before is None:
                    self._put_member(ref, 0)
                else:
                    assert isinstance(before, Member)
                    moved = attribution(member_ref(before)) != attribution(ref)
                    self._put_member(ref, rec.version if moved else 0)
            elif isinstance(rec, Station):
                self._put(self._stations, station_ref(rec))
            elif isinstance(rec, Grid):
                self._put(self._grids, GridRef(rec.id, rec.level, rec.parent_id, rec.version))

    def put_value(self, rec: Member, moved_at: int | None) -> None:
        """A member's value read from the compacted topic (the edge's feed), with the latest
        change of attribution its writer knew (`MemberUpserted.moved_at`); None, a value written
        before that was carried, counts as moved at the record's version: such a member's late
        scans read the history, never the other way round."""
        with self._lock:
            self._put_member(member_ref(rec), rec.version if moved_at is None else moved_at)

    def member(self, member_id: str) -> MemberRef | None:
        """The member as held, whether or not the replica is fresh (the write-through asks it
        for the member's `moved_at`)."""
        return self._members.get(member_id)

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

    def note_move(self, member_id: str, version: int) -> None:
        """A change of the member's attribution fields at `version`, learned apart from the
        record: the edge's feed reads the records from the compacted `registry.members` (the
        latest version only, so a move before it is not visible there) and the changes from
        `registry.history`, in either order."""
        with self._lock:
            cur = self._members.get(member_id)
            if cur is None:
                self._moves[member_id] = max(version, self._moves.get(member_id, 0))
            elif version > (cur.moved_at or 0):
                self._members[member_id] = _with_moved(cur, version)

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


def attribution(m: MemberRef) -> tuple[str, str, str, str | None]:
    return m.status, m.unit_id, m.community_id, m.grid_id


def _with_moved(m: MemberRef, moved_at: int) -> MemberRef:
    return MemberRef(m.id, m.status, m.unit_id, m.community_id, m.grid_id, m.version, moved_at)


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
