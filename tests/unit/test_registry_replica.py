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
from services.registry.replica import member_ref
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
        # member id, version of a change of unit, community, grid or status
        self.registry_history: list[tuple[Any, ...]] = []
        self.sinces: list[int] = []
        self.fail = False

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if self.fail:
            raise ConnectionError("ClickHouse is down")
        since = (parameters or {})["v"]
        table = re.search(r"FROM (\w+)", sql)
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
    assert m == MemberRef("m_in_5", "active", "unit_a", "comm_a", "g5", 1, moved_at=0)
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


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def test_only_a_scan_made_before_the_members_last_move_needs_the_history() -> None:
    """A member never moved is attributed as they stand now however old the scan (the drill
    that sent scans dated before their members' records read the history for every one)."""
    reader, clock = FakeReader(), Clock()
    reader.stations = [("st", "c", True, "flag", 0, 1)]
    reader.members = [
        ("never_moved", "active", "u", "c", None, 9_000),
        ("moved", "active", "u2", "c", None, 9_000),
    ]
    reader.registry_history = [("moved", 7_000)]
    r = replica(reader, clock, Clock(1e9))
    r.refresh()
    never = (r.lookup("st", "never_moved") or (None, None))[1]
    moved = (r.lookup("st", "moved") or (None, None))[1]
    assert never is not None and moved is not None
    assert not never.moved_after(_at(1))
    assert moved.moved_after(_at(6_999)) and not moved.moved_after(_at(7_000))


def test_a_move_whose_history_row_is_not_read_yet_still_needs_the_history() -> None:
    reader, clock = FakeReader(), Clock()
    reader.stations = [("st", "c", True, "flag", 0, 1)]
    reader.members = [("m", "active", "u", "c", None, 5)]
    r = replica(reader, clock, Clock(0.0))  # every refresh reads these tiny versions
    r.refresh()
    reader.members = [("m", "active", "u_new", "c", None, 8)]  # moved; its history row lags
    r.refresh()
    m = (r.lookup("st", "m") or (None, None))[1]
    assert m is not None and m.moved_after(_at(7)) and not m.moved_after(_at(8))
    reader.members = [("m", "active", "u_new", "c", None, 9)]  # a later change of the name only
    reader.registry_history = [("m", 8)]
    r.refresh()
    m = (r.lookup("st", "m") or (None, None))[1]
    assert m is not None and m.version == 9 and m.moved_at == 8


def test_a_history_row_read_after_its_member_row_still_counts() -> None:
    reader, clock = FakeReader(), Clock()
    reader.stations = [("st", "c", True, "flag", 0, 1)]
    reader.members = [("m", "active", "u", "c", None, 5)]
    r = replica(reader, clock, Clock(0.0))
    r.refresh()
    reader.members = []
    reader.registry_history = [("m", 5)]
    r.refresh()
    m = (r.lookup("st", "m") or (None, None))[1]
    assert m is not None and m.moved_at == 5 and m.moved_after(_at(4))


def test_write_through_knows_a_creation_a_move_and_a_change_of_name() -> None:
    reader = FakeReader()
    r = replica(reader, Clock(), Clock(1e9))
    created = _member(version=10)
    r.put(created)
    assert r._members["m"].moved_at == 0
    renamed = created.model_copy(update={"name": "张三", "version": 11})
    r.put(renamed, created)
    assert r._members["m"].moved_at == 0
    moved = renamed.model_copy(update={"unit_id": "u2", "version": 12})
    r.put(moved, renamed)
    assert r._members["m"].moved_at == 12
    r.put(moved.model_copy(update={"name": "李四", "version": 13}), moved)
    assert r._members["m"].moved_at == 12 and r._members["m"].version == 13


def test_a_member_read_from_the_database_is_treated_as_moved_at_its_version() -> None:
    """The fallback path does not know the history's latest move: it reads the history for any
    scan older than the record, as before."""
    ref = member_ref(_member(version=10))
    assert ref.moved_at is None and ref.moved_after(_at(9)) and not ref.moved_after(_at(10))


def _moved_at_sent(pub: FakePublisher) -> list[int | None]:
    from services.events import MemberUpserted

    return [e.moved_at for _, _, e in pub.sent if isinstance(e, MemberUpserted)]


def test_the_member_value_carries_its_latest_move_for_the_edges() -> None:
    """Issue 16: an edge reads `moved_at` from the compacted topic instead of the history."""
    wh, pub = FakeWarehouse(), FakePublisher()
    reg = Registry(wh, pub)  # type: ignore[arg-type]
    reg.replica._clock = Clock()
    reg.replica.refresh()
    created = _member(version=10)
    renamed = created.model_copy(update={"name": "张三", "version": 11})
    moved = renamed.model_copy(update={"unit_id": "u2", "version": 12})
    renamed_again = moved.model_copy(update={"name": "李四", "version": 13})
    left = renamed_again.model_copy(update={"status": "left", "version": 14})
    reg.commit([Change(MEMBER, None, created)])
    reg.commit([Change(MEMBER, created, renamed)])
    reg.commit([Change(MEMBER, renamed, moved)])
    reg.commit([Change(MEMBER, moved, renamed_again)])
    reg.commit([Change(MEMBER, renamed_again, left)])
    assert _moved_at_sent(pub) == [0, 0, 12, 12, 14]


def test_a_member_value_whose_move_the_writer_does_not_know_carries_none() -> None:
    wh, pub = FakeWarehouse(), FakePublisher()
    reg = Registry(wh, pub)  # type: ignore[arg-type]
    held = _member(version=10)
    # The replica does not hold the record being changed (not started, or another version).
    reg.commit([Change(MEMBER, held, held.model_copy(update={"name": "张三", "version": 11}))])
    assert _moved_at_sent(pub) == [None]


def test_a_fed_member_value_without_moved_at_counts_as_moved_at_its_version() -> None:
    r = CheckinReplica(None)  # type: ignore[arg-type]
    r.put_value(_member(version=10), None)
    m = r.member("m")
    assert m is not None and m.moved_at == 10 and m.moved_after(_at(9))
    r.put_value(_member(version=20).model_copy(update={"id": "n"}), 0)
    n = r.member("n")
    assert n is not None and n.moved_at == 0 and not n.moved_after(_at(1))
    # A later value of a member moved before keeps the move (a compacted topic may still hold
    # several versions, read in order).
    r.put_value(_member(version=30).model_copy(update={"id": "n", "unit_id": "u9"}), 30)
    r.put_value(_member(version=31).model_copy(update={"id": "n", "unit_id": "u9"}), 30)
    n = r.member("n")
    assert n is not None and n.version == 31 and n.moved_at == 30
