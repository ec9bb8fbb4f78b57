"""The registry's store: entries read (through a per-key cache) and changed (published, then
written through), with the access policy asked before every read and change.

Every change is validated in full first (nothing half-written), then published to Kafka
(acks=all) as the entry's new version on its compacted topic *and* as a `RegistryChanged` on
`registry.history`, which keeps every change with who made it. The log is the source of truth:
the sink loads both into ClickHouse like any topic. The same rows are then written through to
ClickHouse so a caller can use an id in its very next request; ReplacingMergeTree on the id
(history: on kind, id and version) makes the sink's later copy of those rows a no-op.

Scope is enforced here, not in the routers, so the API, the bulk calls and the spreadsheet
import apply the same rules; the rules themselves are `services.access`'s.

Reads of single entries (and check-ins whose member or station the check-in replica does not
hold yet, e.g. one created a moment ago by another process) go through a per-key cache of
`CACHE_TTL_S` seconds, written through the same way, whose misses of concurrent requests share
one query (`services.batching`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from services import access, topics
from services.batching import BatchLoader
from services.events import (
    Community,
    Event,
    Grid,
    Member,
    RegistryChanged,
    RegistryRecord,
    Station,
    StationKindDef,
    Unit,
    derived_id,
)
from services.processors import route_for_event
from services.processors.base import Route, Row
from services.publisher import Publisher
from services.registry.kinds import (
    BUILTIN_STATION_KINDS,
    COMMUNITY,
    GRID,
    KINDS,
    MEMBER,
    STATION,
    STATION_KIND,
    TOWN,
    UNIT,
    Change,
    Forbidden,
    HistoryEntry,
    Invalid,
    Kind,
    NotFound,
    RegistryError,
    actor,
    builtin_station_kind,
    diff,
    new_id,
)
from services.registry.replica import (
    CheckinRefs,
    CheckinReplica,
    attribution,
    member_ref,
    station_ref,
)
from services.registry.validation import Pending, Validator, clean
from services.tokens import Principal
from services.warehouse.client import Warehouse

R = TypeVar("R", bound=RegistryRecord)
MAX_BATCH = 5000


@dataclass
class _Cached:
    value: Any
    at: float


class Registry:
    # Station and member lookups are on the check-in hot path; `services.registry.replica` says
    # how long a change may take to reach another process's scans.
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
        self.validator = Validator(self)
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
                            **({"moved_at": self._moved_at(ch)} if ch.kind is MEMBER else {}),
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
            self.replica.put(ch.after, ch.before)

    def _moved_at(self, ch: Change) -> int | None:
        """The member's latest change of attribution as of `ch.after` (MemberUpserted.moved_at):
        a check-in edge learns it from the compacted topic, without reading the history. The
        replica holds it for the record `ch.before` (from `registry_history`); when it does not
        (not started, another version), None: the edge then treats the record as moved at its
        version and reads the history, the conservative side."""
        after = ch.after
        assert isinstance(after, Member)
        if ch.before is None:
            return 0
        assert isinstance(ch.before, Member)
        if attribution(member_ref(ch.before)) != attribution(member_ref(after)):
            return after.version
        held = self.replica.member(after.id)
        if held is None or held.version != ch.before.version:
            return None
        return held.moved_at

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
        if not access.may_ever_change(p, resource(kind)):
            raise _role_gate(kind)
        ctx = Pending()
        changes = []
        with self.write_lock:
            for i, item in enumerate(items):
                data = {k: clean(v) for k, v in item.items()}
                if kind is STATION_KIND:
                    data["id"] = data.pop("code", None)
                else:
                    data["id"] = new_id(kind.prefix)
                try:
                    # The entry is new: the community or unit it names is the caller's input,
                    # whose unknown value is a 422, so a refusal is a 403 (nothing to hide).
                    self.authorize(kind, data, p, hideable=False)
                    self.validator.check(kind, None, data, ctx)
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
        self,
        kind_name: str,
        id_: str,
        fields: dict[str, Any],
        p: Principal,
        rule: access.Resource | None = None,
    ) -> RegistryRecord:
        """Applies the given fields (None clears an optional one); unchanged means no new version.
        `rule`: the access policy's resource that judges a change of just these fields (a
        member's volunteer number, a community's signers), instead of the kind's own."""
        kind = KINDS[kind_name]
        if not access.may_ever_change(p, rule or resource(kind)):
            raise _role_gate(kind, rule)
        if kind is STATION_KIND and id_ in BUILTIN_STATION_KINDS:
            raise Forbidden("builtin_station_kind", f"{id_!r} is a built-in station kind")
        with self.write_lock:
            before = self._get(kind, id_, fresh=True)
            self.authorize(kind, before.model_dump(), p, rule=rule)
            data = before.model_dump()
            for k, v in fields.items():
                data[k] = clean(v)
            if (
                kind is MEMBER
                and data["community_id"] != before.model_dump()["community_id"]
                and "grid_id" not in fields
            ):
                # A grid belongs to one community: moving house leaves the old grid behind.
                data["grid_id"] = None
            if (
                kind is MEMBER
                and data["community_id"] != before.model_dump()["community_id"]
                and "team_leader_id" not in fields
            ):
                # So does the team: its leader is a member of the old community.
                data["team_leader_id"] = None
            if kind is MEMBER:
                # An organizer may edit their members but not hand one to another community.
                self.authorize(kind, data, p, hideable=False, rule=rule)
            self.validator.check(kind, before, data, Pending())
            after = self._build(kind, {**data, **self.stamp(before, p)})
            if not diff(before, after):
                return before
            self.commit([Change(kind, before, after)])
        return after

    # ---- access -------------------------------------------------------------------------

    def authorize(
        self,
        kind: Kind,
        data: dict[str, Any],
        p: Principal,
        hideable: bool = True,
        rule: access.Resource | None = None,
    ) -> None:
        """Whether the caller may change this entry (as it is, or as it would be); raises
        Forbidden (403) or NotFound (404) as the access policy decides."""
        decision = access.decide(
            p, rule or resource(kind), "change", facts_of(kind, data), hideable=hideable
        )
        if decision is access.Decision.FORBID:
            message = _FORBIDDEN.get(rule or kind.name, _FORBIDDEN["*"])
            raise Forbidden("forbidden", message.format(kind.label))
        if decision is access.Decision.HIDE:
            raise NotFound(kind.name, str(data.get("id")))

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

    def lookup(self, kind: Kind, id_: str) -> RegistryRecord:
        return self._get(kind, id_)

    def exists_raw(self, kind: Kind, id_: str) -> bool:
        try:
            self._get(kind, id_)
        except NotFound:
            return False
        return True

    def may_read(self, kind: Kind, rec: RegistryRecord, p: Principal) -> bool:
        facts = facts_of(kind, rec.model_dump())
        if kind is MEMBER and access.scoped_by_town(p) and facts.community_id is not None:
            # A town office reads the members of its towns' communities: the member's facts
            # carry their community's town, looked up only for such a caller.
            facts = replace(facts, town_id=self._town_of(facts.community_id))
        return access.allows(p, resource(kind), "read", facts)

    def _town_of(self, community_id: str) -> str | None:
        try:
            community = self._get(COMMUNITY, community_id)
        except NotFound:
            return None
        return getattr(community, "town_id", None)

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
        scope = list_filter(kind, p)
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

    def stored_station_kind_codes(self) -> set[str]:
        return {str(r[0]) for r in self.wh.query("SELECT id FROM station_kinds FINAL")}

    def grid_names(self, community_id: str) -> list[tuple[str, str, str | None]]:
        return [
            (str(i), str(n), p)
            for i, n, p in self.wh.query(
                "SELECT id, name, parent_id FROM grids FINAL WHERE community_id = %(c)s",
                {"c": community_id},
            )
        ]

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
        return self.exists_raw(KINDS[kind], id_)


def _as(model: type[R], rec: RegistryRecord) -> R:
    assert isinstance(rec, model)
    return rec


_FORBIDDEN = {
    "grid": "an organizer manages only their own community's {}s",
    "station": "an organizer manages only their own community's {}s",
    "member": "an organizer manages only their own community's {}s",
    "*": "only the admin may change {}s",
    "community_signers": "a {}'s signers are set by its organizer, its town's office or the admin",
    "volunteer_no": "a volunteer number is set by the member, their unit's HR or the admin",
}


_RULE_LABELS = {
    "community_signers": "community's signers",
    "volunteer_no": "member's volunteer number",
}


def _role_gate(kind: Kind, rule: access.Resource | None = None) -> Forbidden:
    what = _RULE_LABELS.get(rule or "", kind.label)
    roles = access.roles_text(rule or resource(kind))
    return Forbidden("forbidden", f"changing a {what} needs the role {roles}")


_RESOURCES: dict[str, access.Resource] = {
    "unit": "unit",
    "community": "community",
    "town": "town",
    "grid": "grid",
    "station_kind": "station_kind",
    "station": "station",
    "member": "member",
}


def resource(kind: Kind) -> access.Resource:
    """The access policy's name for a kind of entry."""
    return _RESOURCES[kind.name]


def facts_of(kind: Kind, data: dict[str, Any]) -> access.Facts:
    """What the access policy needs to know of an entry (as stored, or as it would be)."""
    if kind is UNIT:
        return access.Facts(unit_id=data.get("id"))
    if kind is COMMUNITY:
        return access.Facts(community_id=data.get("id"), town_id=data.get("town_id"))
    if kind is TOWN:
        return access.Facts(town_id=data.get("id"))
    if kind is MEMBER:
        return access.Facts(
            member_id=data.get("id"),
            community_id=data.get("community_id"),
            unit_id=data.get("unit_id"),
        )
    if kind in (GRID, STATION):
        return access.Facts(community_id=data.get("community_id"))
    return access.Facts()


# The policy's list scope, as the column a kind's table holds it in.
_SCOPE_COLUMNS = {"member_id": "id", "community_id": "community_id", "unit_id": "unit_id"}


def list_filter(kind: Kind, p: Principal) -> tuple[str, str] | None:
    """The column and value the caller's list of this kind is confined to (None: unconfined)."""
    scope = access.list_scope(p, resource(kind))
    if scope is None:
        raise Forbidden("forbidden", f"the role {p.role} may not list {kind.label}s")
    for field, column in _SCOPE_COLUMNS.items():
        value = getattr(scope, field)
        if value is not None:
            return column, str(value)
    return None
