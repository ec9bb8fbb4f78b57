"""The check-in edge's settings and its pure parts (issue 16): CHECKIN_EDGES validated and
defaulted by the machine's cores, the reads port and upstream checked, and the edge's memory of
members' changes and revoked tokens (services.edge_feed) answering as the database would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.edge_feed import EdgeHistory, MemberChanges, RevokedTokens, history_window_s
from services.events import FieldChange, Member, RegistryChanged, TokenRevoked
from services.publisher import PublishUnavailable
from services.reads.registry import MemberThen
from services.registry import CheckinReplica
from services.settings import Settings


def test_checkin_edges_default_to_two_on_two_cores_and_none_on_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHECKIN_EDGES", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert Settings().edges == 2
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings().edges == 2
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert Settings().edges == 0
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert Settings().edges == 0


def test_checkin_edges_set_are_taken_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    monkeypatch.setenv("CHECKIN_EDGES", "4")
    assert Settings().edges == 4
    monkeypatch.setenv("CHECKIN_EDGES", "0")
    assert Settings().edges == 0
    for bad in ("-1", "65", "two"):
        monkeypatch.setenv("CHECKIN_EDGES", bad)
        with pytest.raises(ValidationError, match="checkin_edges"):
            Settings()


def test_the_reads_port_must_differ_from_the_public_port() -> None:
    with pytest.raises(ValidationError, match="READS_PORT"):
        Settings(api_port=8000, reads_port=8000)
    with pytest.raises(ValidationError, match="READS_PORT"):
        Settings(worker_web_port=6066, reads_port=6066)
    assert Settings(api_port=8000, reads_port=8001).reads_port == 8001


def test_the_upstream_must_be_an_http_address() -> None:
    with pytest.raises(ValidationError, match="EDGE_UPSTREAM"):
        Settings(edge_upstream="api:8000")
    assert Settings(edge_upstream="http://api:8000").edge_upstream == "http://api:8000"
    with pytest.raises(ValidationError, match="edge_catch_up_s"):
        Settings(edge_catch_up_s=0)


T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _changed(
    member: str, version: int, at: datetime, changes: dict[str, tuple[str | None, str]]
) -> RegistryChanged:
    return RegistryChanged(
        event_id=f"h-{member}-{version}",
        occurred_at=at,
        entity_kind="member",
        entity_id=member,
        version=version,
        operation="update",
        changed_by="admin",
        changes=[
            FieldChange(field=f, before=None if b is None else json.dumps(b), after=json.dumps(a))
            for f, (b, a) in changes.items()
        ],
    )


def test_member_changes_answer_as_the_registry_stood_then() -> None:
    h = MemberChanges()
    h.add(_changed("m1", 2, T0 + timedelta(hours=1), {"unit_id": ("u1", "u2")}))
    h.add(_changed("m1", 3, T0 + timedelta(hours=3), {"status": ("active", "left")}))
    # Re-sent (the same version): kept once; a change of the name is not an attribution.
    h.add(_changed("m1", 3, T0 + timedelta(hours=3), {"status": ("active", "left")}))
    h.add(_changed("m1", 4, T0 + timedelta(hours=4), {"name": ("甲", "乙")}))
    now = MemberThen("u2", "c1", None, "left")
    assert h.at(now, "m1", 4, T0) == MemberThen("u1", "c1", None, "active")
    assert h.at(now, "m1", 4, T0 + timedelta(hours=2)) == MemberThen("u2", "c1", None, "active")
    assert h.at(now, "m1", 4, T0 + timedelta(hours=5)) == now
    assert h.at(now, "m2", 1, T0) == now  # never changed
    assert len(h) == 1


def test_creations_and_other_kinds_are_not_kept() -> None:
    h = MemberChanges()
    created = _changed("m1", 1, T0, {"unit_id": (None, "u1")}).model_copy(
        update={"operation": "create"}
    )
    h.add(created)
    h.add(
        _changed("s1", 2, T0, {"community_id": ("c1", "c2")}).model_copy(
            update={"entity_kind": "station"}
        )
    )
    assert len(h) == 0


def test_revoked_tokens_are_unknown_before_the_first_load_then_answered() -> None:
    r = RevokedTokens()
    assert r.check_nowait("t1") is None
    future = datetime.now(UTC) + timedelta(days=1)
    r.add(
        TokenRevoked(
            event_id="r1",
            occurred_at=datetime.now(UTC),
            token_id="t1",
            role="member",
            subject_id="m1",
            expires_at=future,
            revoked_by="admin",
        )
    )
    r.loaded = True
    assert r.check_nowait("t1") is True and r.check_nowait("t2") is False
    r.prune(future.timestamp() + 1)
    assert r.check_nowait("t1") is False


def _member(version: int, unit: str) -> Member:
    return Member(
        id="m1",
        version=version,
        updated_at=T0,
        updated_by="admin",
        name="甲",
        unit_id=unit,
        community_id="c1",
    )


@pytest.mark.parametrize("history_first", [True, False])
def test_the_edge_replica_learns_a_move_from_the_history_in_either_order(
    history_first: bool,
) -> None:
    # The compacted topic holds the latest record only (moved to u2 at version 200): the move's
    # version comes from registry.history, read before or after the record.
    replica = CheckinReplica(None)  # type: ignore[arg-type]
    before_move = datetime.fromtimestamp(150 / 1e6, UTC)
    if history_first:
        replica.note_move("m1", 200)
    replica.put(_member(300, "u2"))  # a later change of the name only
    if not history_first:
        ref = replica._members["m1"]
        assert not ref.moved_after(before_move)  # what the record alone says: never moved
        replica.note_move("m1", 200)
    ref = replica._members["m1"]
    assert ref.moved_at == 200
    assert ref.moved_after(before_move)
    assert not ref.moved_after(datetime.fromtimestamp(250 / 1e6, UTC))


def test_the_history_waits_for_its_window_then_catches_up_once_for_a_move_it_lacks() -> None:
    changes = MemberChanges()
    replica = CheckinReplica(None)  # type: ignore[arg-type]
    # The member's value says it moved at version 200 (the compacted topic's `moved_at`).
    replica.put_value(_member(300, "u2"), 200)
    asked: list[float] = []

    def catch_up(timeout_s: float) -> bool:
        asked.append(timeout_s)
        changes.add(_changed("m1", 200, T0 + timedelta(hours=2), {"unit_id": ("u1", "u2")}))
        return True

    history = EdgeHistory(changes, replica, catch_up, 2.0, wait_s=0.01)
    now = MemberThen("u2", "c1", None, "active")
    # Before the window of the history is read: no answer rather than a wrong one.
    with pytest.raises(PublishUnavailable):
        history.at(now, "m1", 300, T0)
    changes.loaded.set()
    assert history.at(now, "m1", 300, T0) == MemberThen("u1", "c1", None, "active")
    assert asked == [2.0]
    # Held now: no second catch-up.
    assert history.at(now, "m1", 300, T0 + timedelta(hours=3)) == now
    assert asked == [2.0]


def test_changes_older_than_any_acceptable_scan_are_dropped() -> None:
    h = MemberChanges()
    h.add(_changed("m1", 2, T0, {"unit_id": ("u1", "u2")}))
    h.add(_changed("m1", 3, T0 + timedelta(days=5), {"unit_id": ("u2", "u3")}))
    h.add(_changed("m2", 4, T0, {"status": ("active", "left")}))
    assert h.latest("m1") == 3 and h.latest("m2") == 4 and h.latest("m3") == 0
    assert h.prune(T0 + timedelta(days=1)) == 2
    assert len(h) == 1 and h.latest("m1") == 3 and h.latest("m2") == 0
    # The window: MAX_SCAN_AGE_H, the clock skew, and an hour for producers' clocks.
    s = Settings(max_scan_age_h=72, max_clock_skew_s=120)
    assert history_window_s(s) == 72 * 3600 + 120 + 3600
