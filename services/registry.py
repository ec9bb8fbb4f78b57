"""The registry: units, communities, grids, station kinds, stations and members.

Every change is validated in full first (nothing half-written), then published to Kafka
(acks=all) as the entry's new version on its compacted topic *and* as a `RegistryChanged` on
`registry.history`, which keeps every change with who made it. The log is the source of truth:
the sink loads both into ClickHouse like any topic. The same rows are then written through to
ClickHouse so a caller can use an id in its very next request; ReplacingMergeTree on the id
(history: on kind, id and version) makes the sink's later copy of those rows a no-op.

Scope is enforced here, not in the routers, so the API, the bulk calls and the spreadsheet
import apply the same rules: the admin manages everything; an organizer (subject: a community
id) manages the grids, stations and members of that community only; HR (subject: a unit id)
reads that unit's members; a member reads themself.

Freshness of the check-in path: every scan reads its member, its station and the member's grid,
so an API process keeps what a check-in needs of them in memory (`CheckinReplica`: member id →
status, unit, community, grid; station id → community; grid id → level, parent), loaded at
start and answered on the event loop without a query or a thread hop. It is kept current two
ways: a change made through this process is written through at once (so on one API process a
member set to `left` is refused on their very next scan, and a moved member's next scan carries
the new unit), and a background thread re-reads the rows changed since its last pass every
`REGISTRY_REFRESH_S` (1 s), so a change made through *another* API process reaches this one's
check-ins within about that long. If refreshing fails, the replica is not trusted after
`CheckinReplica.max_stale_s` (5 s at the default) and scans fall back to the database path
(below), whose bound is the same 5 s. A scan in the window is credited to the unit the member
belonged to a moment before, which is the bound we accept for not querying on every scan.

Other reads of single entries (and check-ins whose member or station the replica does not hold
yet, e.g. one created a moment ago by another process) go through a per-key cache of
`CACHE_TTL_S` seconds, written through the same way, whose misses of concurrent requests share
one query (`services.batching`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

from pydantic import ValidationError

from services import topics
from services.batching import BatchLoader
from services.events import (
    Community,
    CommunityUpserted,
    Event,
    FieldChange,
    Grid,
    GridUpserted,
    Member,
    MemberUpserted,
    RegistryChanged,
    RegistryRecord,
    Station,
    StationKindDef,
    StationKindUpserted,
    StationUpserted,
    Unit,
    UnitUpserted,
    derived_id,
)
from services.processors import route_for_event
from services.processors.base import Route, Row
from services.publisher import Publisher
from services.tokens import Principal
from services.warehouse.client import Warehouse

R = TypeVar("R", bound=RegistryRecord)
log = logging.getLogger(__name__)

# The two kinds every county has; a county's admin may add more (POST /v1/station-kinds).
BUILTIN_STATION_KINDS: dict[str, str] = {
    "service_station": "党群服务站",
    "member_post": "党员驿站",
}
# Mainland mobile numbers: 11 digits starting 13-19.
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
STATION_KIND_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MEMBER_STATUSES = ("active", "transferred", "left")
NAME_MAX = 100
CHINA_TZ = timezone(timedelta(hours=8))
MAX_BATCH = 5000


class NotFound(LookupError):
    def __init__(self, kind: str, id_: str) -> None:
        super().__init__(f"{kind} {id_!r} does not exist")
        self.kind = kind
        self.id = id_


class RegistryError(Exception):
    """A refused change or read; the API turns it into `{"error": {code, message}}`."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invalid(RegistryError):
    status = 422


class Conflict(RegistryError):
    status = 409


class Forbidden(RegistryError):
    status = 403


@dataclass(frozen=True)
class Kind:
    name: str  # "station_kind": used in event ids, history rows and error codes
    table: str
    model: type[RegistryRecord]
    event: type[Event]
    topic: topics.TopicSpec
    prefix: str  # of new ids

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


UNIT = Kind("unit", "units", Unit, UnitUpserted, topics.UNITS, "unit")
COMMUNITY = Kind(
    "community", "communities", Community, CommunityUpserted, topics.COMMUNITIES, "comm"
)
GRID = Kind("grid", "grids", Grid, GridUpserted, topics.GRIDS, "grid")
STATION_KIND = Kind(
    "station_kind", "station_kinds", StationKindDef, StationKindUpserted, topics.STATION_KINDS, ""
)
STATION = Kind("station", "stations", Station, StationUpserted, topics.STATIONS, "st")
MEMBER = Kind("member", "members", Member, MemberUpserted, topics.MEMBERS, "mem")
KINDS: dict[str, Kind] = {k.name: k for k in (UNIT, COMMUNITY, GRID, STATION_KIND, STATION, MEMBER)}

# Fields a record carries for bookkeeping; they change on every version and are not "changes".
_BOOKKEEPING = ("id", "version", "updated_at", "updated_by")


def new_id(prefix: str) -> str:
    # Opaque and unguessable: ids appear in URLs and QR codes.
    return f"{prefix}_{secrets.token_hex(8)}"


def actor(p: Principal) -> str:
    """How a change's author is recorded: role and subject, e.g. `organizer:comm_…`."""
    return f"{p.role}:{p.subject_id}"


def _json(value: Any) -> str:
    return json.dumps(value.isoformat() if isinstance(value, date) else value, ensure_ascii=False)


def diff(before: RegistryRecord | None, after: RegistryRecord) -> list[FieldChange]:
    """The fields that differ; on creation every field that has a value."""
    out = []
    for f in type(after).model_fields:
        if f in _BOOKKEEPING:
            continue
        a = getattr(after, f)
        if before is None:
            if a is not None:
                out.append(FieldChange(field=f, before=None, after=_json(a)))
            continue
        b = getattr(before, f)
        if a != b:
            out.append(FieldChange(field=f, before=_json(b), after=_json(a)))
    return out


@dataclass
class _Cached:
    value: Any
    at: float


@dataclass(frozen=True)
class Change:
    kind: Kind
    before: RegistryRecord | None
    after: RegistryRecord


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    operation: str
    changed_by: str
    changed_at: datetime
    changes: list[tuple[str, Any, Any]]


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
    """What a check-in needs of a station."""

    id: str
    community_id: str
    version: int


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
            "SELECT id, community_id, version FROM stations FINAL WHERE version > %(v)s", params
        )
        members = self.reader.query(
            "SELECT id, status, unit_id, community_id, grid_id, version"
            " FROM members FINAL WHERE version > %(v)s",
            params,
        )
        with self._lock:
            for gid, level, parent_id, gv in grids:
                self._put(self._grids, GridRef(gid, int(level), parent_id, int(gv)))
            for sid, community_id, sv in stations:
                self._put(self._stations, StationRef(sid, community_id, int(sv)))
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

    def __len__(self) -> int:
        return len(self._members) + len(self._stations) + len(self._grids)


def member_ref(m: Member) -> MemberRef:
    return MemberRef(m.id, m.status, m.unit_id, m.community_id, m.grid_id, m.version)


def station_ref(s: Station) -> StationRef:
    return StationRef(s.id, s.community_id, s.version)


class Registry:
    # Station and member lookups are on the check-in hot path; see the module docstring for how
    # long a change may take to reach another process's scans.
    CACHE_TTL_S = 5.0

    def __init__(
        self, warehouse: Warehouse, publisher: Publisher, reader: Warehouse | None = None
    ) -> None:
        self.wh = warehouse
        # Point lookups on the check-in path go through their own connection, so they do not
        # queue behind the sink's inserts and the dashboards' scans on the main one.
        self.reader = reader or warehouse
        self.publisher = publisher
        # Started by the API's lifespan (`replica.start`); until then check-ins use the cache.
        self.replica = CheckinReplica(self.reader)
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._loaders: dict[str, BatchLoader[str, RegistryRecord]] = {}
        self._lock = threading.Lock()
        # Serialises read-modify-write within this process, so two concurrent edits of one entry
        # do not both start from the same version and silently drop one another's fields.
        self.write_lock = threading.Lock()

    # ---- writing -------------------------------------------------------------------------

    def commit(self, changes: list[Change]) -> None:
        """Publishes every change (record + history) in one batch, then writes them through."""
        if not changes:
            return
        messages: list[tuple[topics.TopicSpec, str, Event]] = []
        for ch in changes:
            rec = ch.after
            messages.append(
                (
                    ch.kind.topic,
                    rec.id,
                    ch.kind.event.model_validate(
                        {
                            "event_id": derived_id(ch.kind.name, rec.id, str(rec.version)),
                            "occurred_at": rec.updated_at,
                            "record": rec,
                        }
                    ),
                )
            )
            messages.append(
                (
                    topics.REGISTRY_HISTORY,
                    rec.id,
                    RegistryChanged(
                        event_id=derived_id("history", ch.kind.name, rec.id, str(rec.version)),
                        occurred_at=rec.updated_at,
                        entity_kind=ch.kind.name,
                        entity_id=rec.id,
                        version=rec.version,
                        operation="create" if ch.before is None else "update",
                        changed_by=rec.updated_by,
                        changes=diff(ch.before, rec),
                    ),
                )
            )
        self.publisher.send_many_sync(messages)
        tables: dict[str, tuple[Route, list[Row]]] = {}
        for _, _, event in messages:
            route = route_for_event(event)
            tables.setdefault(route.table, (route, []))[1].append(route.to_row(event))
        for table, (route, rows) in tables.items():
            self.wh.insert(table, rows, route.columns)
        now = time.monotonic()
        with self._lock:
            for ch in changes:
                self._cache[(ch.kind.table, ch.after.id)] = _Cached(ch.after, now)
        for ch in changes:
            self.replica.put(ch.after)

    @staticmethod
    def stamp(before: RegistryRecord | None, p: Principal) -> dict[str, Any]:
        now = datetime.now(UTC)
        version = int(now.timestamp() * 1_000_000)
        if before is not None:
            # Versions must grow even if the clock stepped back or two edits share a microsecond.
            version = max(version, before.version + 1)
        return {"version": version, "updated_at": now, "updated_by": actor(p)}

    def _build(self, kind: Kind, data: dict[str, Any]) -> RegistryRecord:
        try:
            return kind.model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise Invalid(f"invalid_{kind.name}", f"{loc}: {first['msg']}") from exc

    def create(self, kind_name: str, data: dict[str, Any], p: Principal) -> RegistryRecord:
        return self.create_many(kind_name, [data], p)[0]

    def create_many(
        self, kind_name: str, items: list[dict[str, Any]], p: Principal
    ) -> list[RegistryRecord]:
        """All or nothing: every item is validated (against the registry and the items before it)
        before anything is published."""
        kind = KINDS[kind_name]
        if not items:
            return []
        if len(items) > MAX_BATCH:
            raise Invalid("batch_too_large", f"at most {MAX_BATCH} items per request")
        ctx = _Pending()
        changes = []
        with self.write_lock:
            for i, item in enumerate(items):
                data = {k: _clean(v) for k, v in item.items()}
                if kind is STATION_KIND:
                    data["id"] = data.pop("code", None)
                else:
                    data["id"] = new_id(kind.prefix)
                try:
                    self._check(kind, None, data, p, ctx)
                    rec = self._build(kind, {**data, **self.stamp(None, p)})
                except RegistryError as exc:
                    if len(items) > 1:
                        exc.message = f"items[{i}]: {exc.message}"
                        exc.args = (exc.message,)
                    raise
                ctx.add(kind, rec)
                changes.append(Change(kind, None, rec))
            self.commit(changes)
        return [c.after for c in changes]

    def update(
        self, kind_name: str, id_: str, fields: dict[str, Any], p: Principal
    ) -> RegistryRecord:
        """Applies the given fields (None clears an optional one); unchanged means no new version."""
        kind = KINDS[kind_name]
        if kind is STATION_KIND and id_ in BUILTIN_STATION_KINDS:
            raise Forbidden("builtin_station_kind", f"{id_!r} is a built-in station kind")
        with self.write_lock:
            before = self.get(kind_name, id_, p, fresh=True)
            self._may_manage(kind, before.model_dump(), p)
            data = before.model_dump()
            for k, v in fields.items():
                data[k] = _clean(v)
            if (
                kind is MEMBER
                and data["community_id"] != before.model_dump()["community_id"]
                and "grid_id" not in fields
            ):
                # A grid belongs to one community: moving house leaves the old grid behind.
                data["grid_id"] = None
            self._check(kind, before, data, p, _Pending())
            after = self._build(kind, {**data, **self.stamp(before, p)})
            if not diff(before, after):
                return before
            self.commit([Change(kind, before, after)])
        return after

    # ---- rules ----------------------------------------------------------------------------

    def _may_manage(self, kind: Kind, data: dict[str, Any], p: Principal) -> None:
        if p.role == "admin":
            return
        if kind in (GRID, STATION, MEMBER) and p.role == "organizer":
            if data.get("community_id") == p.subject_id:
                return
            raise Forbidden(
                "forbidden",
                f"an organizer manages only their own community's {kind.label}s",
            )
        raise Forbidden("forbidden", f"only the admin may change {kind.label}s")

    def _check(
        self,
        kind: Kind,
        before: RegistryRecord | None,
        data: dict[str, Any],
        p: Principal,
        pending: _Pending,
    ) -> None:
        if kind is not STATION_KIND:
            _text(data, "name", kind)
        if before is None:
            self._may_manage(kind, data, p)
        elif kind in (GRID, STATION) and data.get("community_id") != _attr(before, "community_id"):
            raise Invalid(
                f"invalid_{kind.name}",
                f"community_id: a {kind.label} cannot move to another community; create a new one",
            )
        if kind is MEMBER and before is not None:
            # An organizer may edit their members but not hand one to another community.
            self._may_manage(kind, data, p)

        if kind is STATION_KIND:
            code = data.get("id")
            if not isinstance(code, str) or not STATION_KIND_CODE_RE.match(code):
                raise Invalid(
                    "invalid_station_kind",
                    "code: lower-case letters, digits and _, starting with a letter, 2-40 long",
                )
            _text(data, "label", kind, max_len=20)
            if before is None and (code in BUILTIN_STATION_KINDS or self._exists_raw(kind, code)):
                raise Conflict("station_kind_exists", f"code: station kind {code!r} already exists")
        elif kind is GRID:
            self._ref(COMMUNITY, data.get("community_id"), "community_id", pending)
            level, parent_id = data.get("level"), data.get("parent_id")
            if level == 4 and parent_id is not None:
                raise Invalid("invalid_grid", "parent_id: a level-4 grid has no parent grid")
            if level == 5:
                if not parent_id:
                    raise Invalid(
                        "invalid_grid", "parent_id: a level-5 grid needs its level-4 grid"
                    )
                parent = self._ref(GRID, parent_id, "parent_id", pending)
                assert isinstance(parent, Grid)
                if parent.level != 4 or parent.community_id != data.get("community_id"):
                    raise Invalid(
                        "invalid_grid",
                        "parent_id: must be a level-4 grid of the same community",
                    )
            if before is not None and level != _attr(before, "level"):
                raise Invalid("invalid_grid", "level: a grid's level cannot change")
            if self._grid_name_taken(data, pending):
                raise Conflict(
                    "grid_name_taken",
                    f"name: this community already has a level-{level} grid named {data['name']!r}"
                    + (" under the same parent" if level == 5 else ""),
                )
        elif kind is STATION:
            self._ref(COMMUNITY, data.get("community_id"), "community_id", pending)
            code = data.get("kind")
            if code not in self.station_kind_codes(pending):
                raise Invalid(
                    "unknown_station_kind",
                    f"kind: no station kind {code!r} (known: {', '.join(sorted(self.station_kind_codes(pending)))})",
                )
        elif kind is MEMBER:
            self._check_member(before, data, pending)

    def _check_member(
        self, before: RegistryRecord | None, data: dict[str, Any], pending: _Pending
    ) -> None:
        self._ref(UNIT, data.get("unit_id"), "unit_id", pending)
        self._ref(COMMUNITY, data.get("community_id"), "community_id", pending)
        phone = data.get("phone")
        if phone is not None:
            phone = normalize_phone(str(phone))
            if phone is None:
                raise Invalid("invalid_phone", "phone: an 11-digit mainland mobile number")
            data["phone"] = phone
            owner = pending.phones.get(phone) or self.member_id_by_phone(phone)
            if owner is not None and (before is None or owner != before.id):
                raise Conflict("phone_taken", f"phone: {phone} belongs to member {owner}")
            pending.phones[phone] = data["id"]
        grid_id = data.get("grid_id")
        if grid_id is not None:
            grid = self._ref(GRID, grid_id, "grid_id", pending)
            assert isinstance(grid, Grid)
            if grid.community_id != data.get("community_id"):
                raise Invalid(
                    "invalid_member",
                    "grid_id: the grid is not in the member's community",
                )
        status = data.get("status", "active")
        if status not in MEMBER_STATUSES:
            raise Invalid("invalid_member", f"status: one of {', '.join(MEMBER_STATUSES)}")
        reported = data.get("reported_on")
        if reported is not None:
            if isinstance(reported, str):
                try:
                    reported = date.fromisoformat(reported)
                except ValueError:
                    raise Invalid("invalid_member", "reported_on: a date YYYY-MM-DD") from None
                data["reported_on"] = reported
            if reported > datetime.now(CHINA_TZ).date():
                raise Invalid("invalid_member", "reported_on: lies in the future")
        branch = data.get("party_branch")
        if branch is not None and (not isinstance(branch, str) or len(branch) > NAME_MAX):
            raise Invalid("invalid_member", f"party_branch: at most {NAME_MAX} characters")

    def _ref(self, kind: Kind, id_: Any, field: str, pending: _Pending) -> RegistryRecord:
        # A reference to a missing entry is the caller's input error (422), not a missing URL.
        if not isinstance(id_, str) or not id_:
            raise Invalid(f"unknown_{kind.name}", f"{field}: required")
        hit = pending.records.get((kind.name, id_))
        if hit is not None:
            return hit
        try:
            return self._get(kind, id_)
        except NotFound:
            raise Invalid(
                f"unknown_{kind.name}", f"{field}: no {kind.label} with id {id_!r}"
            ) from None

    def _grid_name_taken(self, data: dict[str, Any], pending: _Pending) -> bool:
        community_id = data["community_id"]
        if community_id not in pending.grid_communities:
            # One query per community and batch, not per grid: a county loads ~3,500 grids.
            pending.grid_communities.add(community_id)
            for id_, name, parent_id in self.wh.query(
                "SELECT id, name, parent_id FROM grids FINAL WHERE community_id = %(c)s",
                {"c": community_id},
            ):
                pending.grid_names.setdefault((community_id, parent_id, name), id_)
        key = (community_id, data.get("parent_id"), data["name"])
        taken = pending.grid_names.get(key)
        if taken is not None and taken != data["id"]:
            return True
        pending.grid_names[key] = data["id"]
        return False

    # ---- reading --------------------------------------------------------------------------

    def _row_to(self, kind: Kind, row: dict[str, Any]) -> RegistryRecord:
        row["updated_at"] = row["updated_at"].replace(tzinfo=UTC)
        return kind.model.model_validate(row)

    def _fetch(self, kind: Kind, id_: str) -> RegistryRecord:
        found = self._fetch_many(kind, [id_]).get(id_)
        if found is None:
            raise NotFound(kind.name, id_)
        return found

    def _fetch_many(self, kind: Kind, ids: list[str]) -> dict[str, RegistryRecord]:
        fields = list(kind.model.model_fields)
        rows = self.reader.query_dicts(
            f"SELECT {', '.join(fields)} FROM {kind.table} FINAL WHERE id IN %(ids)s",
            {"ids": ids},
        )
        return {r["id"]: self._row_to(kind, r) for r in rows}

    def _loader(self, kind: Kind) -> BatchLoader[str, RegistryRecord]:
        with self._lock:
            loader = self._loaders.get(kind.table)
            if loader is None:
                loader = BatchLoader(
                    lambda ids: self._fetch_many(kind, ids), name=f"registry-{kind.table}"
                )
                self._loaders[kind.table] = loader
            return loader

    def _get(self, kind: Kind, id_: str, fresh: bool = False) -> RegistryRecord:
        key = (kind.table, id_)
        if fresh:
            value = self._fetch(kind, id_)
        else:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit.at < self.CACHE_TTL_S:
                return hit.value  # type: ignore[no-any-return]
            # Misses of concurrent requests share one query (check-ins at peak hours).
            found = self._loader(kind).get(id_)
            if found is None:
                raise NotFound(kind.name, id_)
            value = found
        with self._lock:
            self._cache[key] = _Cached(value, time.monotonic())
        return value

    def _exists_raw(self, kind: Kind, id_: str) -> bool:
        try:
            self._get(kind, id_)
        except NotFound:
            return False
        return True

    def may_read(self, kind: Kind, rec: RegistryRecord, p: Principal) -> bool:
        if p.role == "admin" or kind in (UNIT, COMMUNITY, STATION_KIND):
            return True
        if kind in (GRID, STATION):
            return p.role != "organizer" or _attr(rec, "community_id") == p.subject_id
        assert isinstance(rec, Member)
        return (
            (p.role == "member" and p.subject_id == rec.id)
            or (p.role == "organizer" and p.subject_id == rec.community_id)
            or (p.role == "hr" and p.subject_id == rec.unit_id)
        )

    def get(self, kind_name: str, id_: str, p: Principal, fresh: bool = False) -> RegistryRecord:
        """The entry if the caller may read it; NotFound otherwise, so ids cannot be probed."""
        kind = KINDS[kind_name]
        if kind is STATION_KIND and id_ in BUILTIN_STATION_KINDS:
            return builtin_station_kind(id_)
        rec = self._get(kind, id_, fresh=fresh)
        if not self.may_read(kind, rec, p):
            raise NotFound(kind.name, id_)
        return rec

    def page(
        self,
        kind_name: str,
        p: Principal,
        filters: dict[str, str | None],
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[RegistryRecord], int]:
        kind = KINDS[kind_name]
        where, params = ["1"], {}
        for i, (col, value) in enumerate(filters.items()):
            if value is None:
                continue
            if kind is MEMBER and col == "grid_id":
                # A level-4 grid's members include those filed under its level-5 grids.
                where.append(
                    f"(grid_id = %(f{i})s OR grid_id IN"
                    f" (SELECT id FROM grids FINAL WHERE parent_id = %(f{i})s))"
                )
            else:
                where.append(f"{col} = %(f{i})s")
            params[f"f{i}"] = value
        if p.role != "admin":
            scope = _list_scope(kind, p)
            if scope is not None:
                where.append(f"{scope[0]} = %(scope)s")
                params["scope"] = scope[1]
        if q:
            # Names match anywhere, case-insensitively; phones by any run of digits.
            where.append(
                "(positionCaseInsensitiveUTF8(name, %(q)s) > 0"
                + (" OR position(ifNull(phone, ''), %(q)s) > 0)" if kind is MEMBER else ")")
            )
            params["q"] = q
        cond = " AND ".join(where)
        total = int(
            self.wh.query(f"SELECT count() FROM {kind.table} FINAL WHERE {cond}", params)[0][0]
        )
        fields = ", ".join(kind.model.model_fields)
        rows = self.wh.query_dicts(
            f"SELECT {fields} FROM {kind.table} FINAL WHERE {cond} ORDER BY name, id"
            " LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": limit, "offset": offset},
        )
        return [self._row_to(kind, r) for r in rows], total

    def station_kinds(self) -> list[StationKindDef]:
        stored = {
            r.id: r
            for r in (
                self._row_to(STATION_KIND, row)
                for row in self.wh.query_dicts(
                    "SELECT id, label, version, updated_at, updated_by FROM station_kinds FINAL"
                )
            )
        }
        out: list[StationKindDef] = [builtin_station_kind(c) for c in BUILTIN_STATION_KINDS]
        out += sorted(
            (k for k in stored.values() if isinstance(k, StationKindDef)), key=lambda k: k.id
        )
        return out

    def station_kind_label(self, code: str) -> str:
        """The Chinese name people see for a station kind, a county's own kinds included."""
        if code in BUILTIN_STATION_KINDS:
            return BUILTIN_STATION_KINDS[code]
        try:
            rec = self._get(STATION_KIND, code)
        except NotFound:
            return "服务站点"
        return rec.label if isinstance(rec, StationKindDef) else "服务站点"

    def station_kind_codes(self, pending: _Pending | None = None) -> set[str]:
        if pending is not None and pending.kind_codes is not None:
            return pending.kind_codes
        codes = set(BUILTIN_STATION_KINDS)
        codes.update(r[0] for r in self.wh.query("SELECT id FROM station_kinds FINAL"))
        if pending is not None:
            pending.kind_codes = codes
        return codes

    def history(
        self, kind_name: str, id_: str, p: Principal, limit: int = 50, offset: int = 0
    ) -> tuple[list[HistoryEntry], int]:
        kind = KINDS[kind_name]
        self.get(kind_name, id_, p, fresh=True)
        params = {"k": kind.name, "id": id_}
        total = int(
            self.wh.query(
                "SELECT count() FROM registry_history FINAL"
                " WHERE entity_kind = %(k)s AND entity_id = %(id)s",
                params,
            )[0][0]
        )
        rows = self.wh.query(
            """
            SELECT version, operation, changed_by, changed_at, fields, before, after
            FROM registry_history FINAL
            WHERE entity_kind = %(k)s AND entity_id = %(id)s
            ORDER BY version
            LIMIT %(limit)s OFFSET %(offset)s
            """,
            {**params, "limit": limit, "offset": offset},
        )
        out = []
        for version, op, by, at, fields, before, after in rows:
            changes = [
                (f, None if b is None else json.loads(b), None if a is None else json.loads(a))
                for f, b, a in zip(fields, before, after, strict=True)
            ]
            out.append(HistoryEntry(int(version), op, by, at.replace(tzinfo=UTC), changes))
        return out, total

    def member_id_by_phone(self, phone: str) -> str | None:
        rows = self.wh.query(
            "SELECT id FROM members FINAL WHERE phone = %(p)s ORDER BY version DESC LIMIT 1",
            {"p": phone},
        )
        return str(rows[0][0]) if rows else None

    def members_by_phone(self, phones: Iterable[str]) -> dict[str, Member]:
        out: dict[str, Member] = {}
        phones = list(phones)
        fields = ", ".join(Member.model_fields)
        for i in range(0, len(phones), 1000):
            for row in self.wh.query_dicts(
                f"SELECT {fields} FROM members FINAL WHERE phone IN %(p)s",
                {"p": phones[i : i + 1000]},
            ):
                m = self._row_to(MEMBER, row)
                assert isinstance(m, Member)
                if m.phone:
                    out[m.phone] = m
        return out

    def all_of(self, kind_name: str) -> list[RegistryRecord]:
        """Every entry of a small kind (units, communities, grids): for name lookups on import."""
        kind = KINDS[kind_name]
        fields = ", ".join(kind.model.model_fields)
        return [
            self._row_to(kind, r)
            for r in self.wh.query_dicts(f"SELECT {fields} FROM {kind.table} FINAL")
        ]

    # ---- the check-in path and older callers --------------------------------------------

    def unit(self, id_: str) -> Unit:
        return _as(Unit, self._get(UNIT, id_))

    def community(self, id_: str) -> Community:
        return _as(Community, self._get(COMMUNITY, id_))

    def grid(self, id_: str) -> Grid:
        return _as(Grid, self._get(GRID, id_))

    def station(self, id_: str) -> Station:
        return _as(Station, self._get(STATION, id_))

    def member(self, id_: str) -> Member:
        return _as(Member, self._get(MEMBER, id_))

    def checkin_refs(self, station_id: str, member_id: str) -> CheckinRefs:
        """What a check-in needs, from the database (through the per-key cache): blocking, for
        when `replica.lookup` has no answer. Raises NotFound, the station first."""
        station = self.station(station_id)
        member = self.member(member_id)
        return station_ref(station), member_ref(member), self.level4_grid_id(member)

    def level4_grid_id(self, member: Member) -> str | None:
        """The level-4 grid a member belongs to (their grid, or its parent if it is level 5)."""
        if member.grid_id is None:
            return None
        try:
            g = self.grid(member.grid_id)
        except NotFound:
            return None
        return g.parent_id if g.level == 5 else g.id

    def exists(self, kind: str, id_: str) -> bool:
        return self._exists_raw(KINDS[kind], id_)


class _Pending:
    """What a batch has validated so far, so later items may refer to earlier ones."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], RegistryRecord] = {}
        self.phones: dict[str, str] = {}
        self.grid_names: dict[tuple[str, str | None, str], str] = {}
        self.grid_communities: set[str] = set()
        self.kind_codes: set[str] | None = None

    def add(self, kind: Kind, rec: RegistryRecord) -> None:
        self.records[(kind.name, rec.id)] = rec
        if kind is STATION_KIND and self.kind_codes is not None:
            self.kind_codes.add(rec.id)


def _as(model: type[R], rec: RegistryRecord) -> R:
    assert isinstance(rec, model)
    return rec


def _attr(rec: RegistryRecord, name: str) -> Any:
    return getattr(rec, name, None)


def _clean(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _text(data: dict[str, Any], field: str, kind: Kind, max_len: int = NAME_MAX) -> None:
    v = data.get(field)
    if not isinstance(v, str) or not v:
        raise Invalid(f"invalid_{kind.name}", f"{field}: required, may not be empty")
    if len(v) > max_len:
        raise Invalid(f"invalid_{kind.name}", f"{field}: at most {max_len} characters")


def _list_scope(kind: Kind, p: Principal) -> tuple[str, str] | None:
    """The column and value a non-admin's lists are confined to (None: unconfined)."""
    if kind in (GRID, STATION):
        return ("community_id", p.subject_id) if p.role == "organizer" else None
    if kind is MEMBER:
        column = {"member": "id", "organizer": "community_id", "hr": "unit_id"}[p.role]
        return (column, p.subject_id)
    return None


def builtin_station_kind(code: str) -> StationKindDef:
    return StationKindDef(
        id=code,
        label=BUILTIN_STATION_KINDS[code],
        version=0,
        updated_at=datetime(2022, 1, 1, tzinfo=UTC),
        updated_by="builtin",
    )


def normalize_phone(raw: str) -> str | None:
    """An 11-digit mainland mobile, tolerating spaces, dashes and a +86 prefix; None if not one."""
    digits = re.sub(r"[\s\-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if PHONE_RE.match(digits) else None
