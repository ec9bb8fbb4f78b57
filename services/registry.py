"""Units, communities, stations and members: validated, published to their compacted topics, readable at once.

A change is first published to Kafka (acks=all): the log is the source of truth, and the sink
loads it into ClickHouse like any topic. The same row is then written through to ClickHouse so
the caller can use the id in its next request; ReplacingMergeTree on (id, version) makes the
sink's later copy of that row a no-op.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from services import topics
from services.events import (
    Community,
    CommunityUpserted,
    Member,
    MemberUpserted,
    RegistryRecord,
    Station,
    StationKind,
    StationUpserted,
    Unit,
    UnitUpserted,
    derived_id,
)
from services.processors import route_for_event
from services.publisher import Publisher
from services.warehouse.client import Warehouse

R = TypeVar("R", bound=RegistryRecord)


class NotFound(LookupError):
    def __init__(self, kind: str, id_: str) -> None:
        super().__init__(f"{kind} {id_!r} does not exist")
        self.kind = kind
        self.id = id_


def new_id(prefix: str) -> str:
    # Opaque and unguessable: ids appear in URLs and QR codes.
    return f"{prefix}_{secrets.token_hex(8)}"


def _now() -> tuple[datetime, int]:
    now = datetime.now(UTC)
    return now, int(now.timestamp() * 1_000_000)


@dataclass
class _Cached:
    value: Any
    at: float


class Registry:
    # Station and member lookups are on the check-in hot path; a short TTL keeps a moved
    # member's new unit visible within seconds without a query per scan.
    CACHE_TTL_S = 5.0

    def __init__(self, warehouse: Warehouse, publisher: Publisher) -> None:
        self.wh = warehouse
        self.publisher = publisher
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()

    def _publish(self, spec: topics.TopicSpec, record: RegistryRecord, event: Any) -> None:
        self.publisher.send_sync(spec, record.id, event)
        route = route_for_event(event)
        self.wh.insert(route.table, [route.to_row(event)], route.columns)
        with self._lock:
            self._cache.pop((route.table, record.id), None)

    def create_unit(self, name: str, by: str) -> Unit:
        now, version = _now()
        rec = Unit(id=new_id("unit"), name=name, version=version, updated_at=now, updated_by=by)
        ev = UnitUpserted(
            event_id=derived_id("unit", rec.id, str(version)), occurred_at=now, record=rec
        )
        self._publish(topics.UNITS, rec, ev)
        return rec

    def create_community(self, name: str, by: str) -> Community:
        now, version = _now()
        rec = Community(
            id=new_id("comm"), name=name, version=version, updated_at=now, updated_by=by
        )
        ev = CommunityUpserted(
            event_id=derived_id("community", rec.id, str(version)), occurred_at=now, record=rec
        )
        self._publish(topics.COMMUNITIES, rec, ev)
        return rec

    def create_station(
        self,
        community_id: str,
        name: str,
        kind: StationKind,
        lat: float | None,
        lon: float | None,
        by: str,
    ) -> Station:
        self.community(community_id)
        now, version = _now()
        rec = Station(
            id=new_id("st"),
            community_id=community_id,
            name=name,
            kind=kind,
            lat=lat,
            lon=lon,
            version=version,
            updated_at=now,
            updated_by=by,
        )
        ev = StationUpserted(
            event_id=derived_id("station", rec.id, str(version)), occurred_at=now, record=rec
        )
        self._publish(topics.STATIONS, rec, ev)
        return rec

    def create_member(self, name: str, unit_id: str, community_id: str, by: str) -> Member:
        self.unit(unit_id)
        self.community(community_id)
        now, version = _now()
        rec = Member(
            id=new_id("mem"),
            name=name,
            unit_id=unit_id,
            community_id=community_id,
            version=version,
            updated_at=now,
            updated_by=by,
        )
        ev = MemberUpserted(
            event_id=derived_id("member", rec.id, str(version)), occurred_at=now, record=rec
        )
        self._publish(topics.MEMBERS, rec, ev)
        return rec

    def _get(self, table: str, model: type[R], id_: str, kind: str) -> R:
        key = (table, id_)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit.at < self.CACHE_TTL_S:
            return hit.value  # type: ignore[no-any-return]
        fields = list(model.model_fields)
        rows = self.wh.query_dicts(
            f"SELECT {', '.join(fields)} FROM {table} FINAL WHERE id = %(id)s LIMIT 1",
            {"id": id_},
        )
        if not rows:
            raise NotFound(kind, id_)
        row = rows[0]
        row["updated_at"] = row["updated_at"].replace(tzinfo=UTC)
        value = model.model_validate(row)
        with self._lock:
            self._cache[key] = _Cached(value, time.monotonic())
        return value

    def unit(self, id_: str) -> Unit:
        return self._get("units", Unit, id_, "unit")

    def community(self, id_: str) -> Community:
        return self._get("communities", Community, id_, "community")

    def station(self, id_: str) -> Station:
        return self._get("stations", Station, id_, "station")

    def member(self, id_: str) -> Member:
        return self._get("members", Member, id_, "member")

    def exists(self, kind: str, id_: str) -> bool:
        getter = {
            "unit": self.unit,
            "community": self.community,
            "station": self.station,
            "member": self.member,
        }[kind]
        try:
            getter(id_)
        except NotFound:
            return False
        return True
