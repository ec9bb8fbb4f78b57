"""The check-in replica of the registry (services.registry.CheckinReplica): what it answers, how
it is kept current (refresh, write-through), and when it refuses to answer (stale, incomplete)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.events import Grid, Member, Station
from services.registry import (
    GRID,
    MEMBER,
    STATION,
    Change,
    CheckinReplica,
    MemberRef,
    NotFound,
    Registry,
    StationRef,
)
from services.tokens import Principal

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
ADMIN = Principal(role="admin", subject_id="admin", token_id="t", expires_at=None)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeReader:
    """Answers the replica's three queries from in-memory rows, honouring `version > %(v)s`."""

    def __init__(self) -> None:
        self.grids: list[tuple[Any, ...]] = []  # id, level, parent_id, version
        # id, community_id, accepts_poster, backdated_poster, screen_key_generation, version
        self.stations: list[tuple[Any, ...]] = []
        self.members: list[tuple[Any, ...]] = []  # id, status, unit, community, grid, version
        self.sinces: list[int] = []
        self.fail = False

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if self.fail:
            raise ConnectionError("ClickHouse is down")
        since = (parameters or {})["v"]
        table = re.search(r"FROM (\w+) FINAL", sql)
        assert table is not None
        if table.group(1) == "members":
            self.sinces.append(since)
        rows: list[tuple[Any, ...]] = getattr(self, table.group(1))
        return [r for r in rows if r[-1] > since]


def replica(reader: FakeReader, clock: Clock, wall: Clock) -> CheckinReplica:
    r = CheckinReplica(reader, clock=clock, wall=wall)  # type: ignore[arg-type]
    r.refresh_s = 1.0
    return r


def test_lookup_answers_the_station_the_member_and_the_members_level4_grid() -> None:
    reader, clock = FakeReader(), Clock()
    reader.grids = [("g4", 4, None, 1), ("g5", 5, "g4", 1)]
    reader.stations = [("st", "comm_a", True, "flag", 0, 1)]
    reader.members = [
        ("m_in_5", "active", "unit_a", "comm_a", "g5", 1),
        ("m_in_4", "active", "unit_a", "comm_a", "g4", 1),
        ("m_no_grid", "left", "unit_b", "comm_a", None, 1),
    ]
    r = replica(reader, clock, Clock(1e9))
    r.refresh()
    st, m, grid = r.lookup("st", "m_in_5") or (None, None, None)
    assert st == StationRef("st", "comm_a", 1)
    assert m == MemberRef("m_in_5", "active", "unit_a", "comm_a", "g5", 1)
    assert grid == "g4"  # a level-5 grid counts under its level-4 parent
    assert (r.lookup("st", "m_in_4") or ())[2] == "g4"
    refs = r.lookup("st", "m_no_grid")
    assert refs is not None and refs[1].status == "left" and refs[2] is None


def test_lookup_never_answers_not_found_itself() -> None:
    """Missing entries (e.g. created a moment ago by another process) go to the database."""
    reader, clock = FakeReader(), Clock()
    reader.stations = [("st", "comm_a", True, "flag", 0, 1)]
    reader.members = [("m", "active", "u", "comm_a", "g_new", 1)]
    r = replica(reader, clock, Clock(1e9))
    r.refresh()
    assert r.lookup("st_unknown", "m") is None
    assert r.lookup("st", "m_unknown") is None
    assert r.lookup("st", "m") is None  # its grid is not in the replica yet


def test_a_replica_not_started_or_not_refreshed_lately_is_not_used() -> None:
    reader, clock = FakeReader(), Clock()
    reader.stations = [("st", "c", True, "flag", 0, 1)]
    reader.members = [("m", "active", "u", "c", None, 1)]
    r = replica(reader, clock, Clock(1e9))
    assert r.lookup("st", "m") is None  # never loaded
    r.refresh()
    assert r.lookup("st", "m") is not None
    assert r.max_stale_s == 5.0
    clock.t += 4.9
    assert r.lookup("st", "m") is not None
    reader.fail = True
    with pytest.raises(ConnectionError):
        r.refresh()
    clock.t += 0.2  # 5.1 s since the last successful refresh
    assert r.lookup("st", "m") is None
    reader.fail = False
    r.refresh()
    assert r.lookup("st", "m") is not None


def test_refresh_reads_only_recent_versions_and_reloads_everything_now_and_then() -> None:
    reader, clock, wall = FakeReader(), Clock(), Clock(2_000_000.0)
    r = replica(reader, clock, wall)
    r.refresh()
    assert reader.sinces == [0]  # the first load reads everything
    clock.t += 1
    wall.t += 1
    r.refresh()
    # Changes stamped up to LOOKBACK_S before the previous refresh started are read again.
    assert reader.sinces[-1] == int((2_000_000.0 - CheckinReplica.LOOKBACK_S) * 1e6)
    clock.t += CheckinReplica.FULL_RELOAD_S
    wall.t += CheckinReplica.FULL_RELOAD_S
    r.refresh()
    assert reader.sinces[-1] == 0


def test_a_change_made_elsewhere_arrives_with_the_next_refresh() -> None:
    reader, clock, wall = FakeReader(), Clock(), Clock(2_000_000.0)
    reader.stations = [("st", "c", True, "flag", 0, 1)]
    reader.members = [("m", "active", "u", "c", None, 1_999_999_000_000)]
    r = replica(reader, clock, wall)
    r.refresh()
    # Another API process sets the member to `left` (a newer version) ...
    reader.members.append(("m", "left", "u", "c", None, 2_000_000_500_000))
    clock.t += 1
    wall.t += 1
    r.refresh()
    refs = r.lookup("st", "m")
    assert refs is not None and refs[1].status == "left"


def test_an_older_row_never_replaces_a_newer_write_through() -> None:
    reader, clock = FakeReader(), Clock()
    reader.stations = [("st", "c", True, "flag", 0, 1)]
    reader.members = [("m", "active", "u", "c", None, 5)]
    r = replica(reader, clock, Clock(1e9))
    r.refresh()
    r.put(_member(version=6, status="left"))
    r.refresh()  # still reads version 5 (the write-through reached ClickHouse later)
    refs = r.lookup("st", "m")
    assert refs is not None and refs[1].status == "left" and refs[1].version == 6


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_many_sync(self, items: list[Any]) -> None:
        self.sent.extend(items)


class FakeWarehouse(FakeReader):
    def __init__(self) -> None:
        super().__init__()
        self.inserted: list[str] = []

    def insert(self, table: str, rows: Any, columns: Any) -> None:
        self.inserted.append(table)

    def query_dicts(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        return []  # nothing in ClickHouse: every point lookup misses


def _member(version: int = 1, status: str = "active") -> Member:
    return Member(
        id="m",
        name="张伟",
        unit_id="u",
        community_id="c",
        status=status,  # type: ignore[arg-type]
        version=version,
        updated_at=NOW,
        updated_by="admin:admin",
    )


def test_the_registrys_own_changes_are_written_through_at_once() -> None:
    wh, pub = FakeWarehouse(), FakePublisher()
    reg = Registry(wh, pub)  # type: ignore[arg-type]
    reg.replica._clock = Clock()
    reg.replica.refresh()
    station = Station(
        id="st", community_id="c", name="站", kind="service_station",
        version=1, updated_at=NOW, updated_by="admin:admin",
    )  # fmt: skip
    grid = Grid(
        id="g5", community_id="c", name="一号楼", level=5, parent_id="g4",
        version=1, updated_at=NOW, updated_by="admin:admin",
    )  # fmt: skip
    parent = Grid(
        id="g4", community_id="c", name="一网格", level=4,
        version=1, updated_at=NOW, updated_by="admin:admin",
    )  # fmt: skip
    active = _member().model_copy(update={"grid_id": "g5"})
    reg.commit(
        [
            Change(STATION, None, station),
            Change(GRID, None, parent),
            Change(GRID, None, grid),
            Change(MEMBER, None, active),
        ]
    )
    refs = reg.replica.lookup("st", "m")
    assert refs is not None and refs[1].status == "active" and refs[2] == "g4"
    left = active.model_copy(update={"status": "left", "version": 2})
    reg.commit([Change(MEMBER, active, left)])
    refs = reg.replica.lookup("st", "m")
    assert refs is not None and refs[1].status == "left"
    assert pub.sent and "members" in wh.inserted


def test_the_database_path_raises_not_found_for_the_station_first() -> None:
    reg = Registry(FakeWarehouse(), FakePublisher())  # type: ignore[arg-type]
    with pytest.raises(NotFound) as err:
        reg.checkin_refs("st_missing", "m_missing")
    assert err.value.kind == "station"
