"""The reconciliation of raw scans against sessions: its SQL on fixture rows in chDB, then the
job in the API process beside the embedded sink, through the real pipeline (broker, faust
worker, sink): 0 normally, and the member and scan named when the log holds a scan the session
state did not apply."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services import topics
from services.events import CheckinScanned, SessionRecorded, derived_id, utcnow
from services.processors import at_position, process
from services.reconcile import account
from services.settings import Settings
from services.timeutil import local
from services.tokens import sign_station
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import migrate
from tests.support.stack import Stack

STACK_ENV = {"RECONCILE_INTERVAL_S": "0.5", "RECONCILE_SETTLE_S": "1"}


# ---- the SQL, on fixture rows ----------------------------------------------------------------


@pytest.fixture(scope="module")
def wh(chdb_path: Path) -> Iterator[Warehouse]:
    name = f"r{uuid.uuid4().hex[:8]}"
    w = connect(Settings(clickhouse_dsn=f"chdb://{chdb_path}", clickhouse_database=name))
    migrate(w)
    yield w
    w.command(f"DROP DATABASE IF EXISTS {name}")


def _scan(event_id: str, member: str, scanned: datetime, received: datetime) -> CheckinScanned:
    return CheckinScanned(
        event_id=event_id,
        occurred_at=scanned,
        member_id=member,
        station_id="st",
        station_community_id="c",
        unit_id="u",
        member_community_id="c",
        action="in",
        client_event_id=event_id,
        received_at=received,
    )


def _session(sid: str, member: str, start: datetime, revision: int = 1, **kw: Any) -> bytes:
    return SessionRecorded(
        event_id=f"{sid}-{revision}",
        occurred_at=start,
        session_id=sid,
        revision=revision,
        member_id=member,
        unit_id="u",
        member_community_id="c",
        station_id="st",
        station_community_id="c",
        start=start,
        end=None,
        credited_seconds=0,
        status="closed",
        **kw,
    ).to_bytes()


@pytest.mark.clickhouse
def test_raw_scans_due_are_compared_with_the_scans_live_sessions_name(wh: Warehouse) -> None:
    now = utcnow()
    h = timedelta(hours=1)
    t = now - 5 * h
    raw: list[tuple[Any, ...]] = []

    def put(event_id: str, member: str, partition: int, offset: int, **kw: datetime) -> None:
        _, row = process("checkins", _scan(event_id, member, **kw).to_bytes())
        raw.append(row if partition < 0 else at_position(row, partition, offset))

    put("e1", "m1", 0, 0, scanned=t, received=t)
    # The phone re-sent it: one scan (the table keeps one of its offsets; either is committed).
    put("e1", "m1", 0, 4, scanned=t, received=t)
    put("e2", "m1", 0, 1, scanned=t, received=t)  # a double tap, absorbed
    put("e3", "m1", 0, 2, scanned=t + timedelta(minutes=1), received=t + h)
    put("e4", "m2", 0, 3, scanned=t, received=t)  # only a voided revision names it
    put("e5", "m2", 0, 9, scanned=t, received=t)  # past the agent's commit: not due yet
    put("e6", "m3", 1, 0, scanned=now - 30 * h, received=now - 3 * h)  # a late offline scan
    put("e7", "m3", -1, -1, scanned=t, received=t)  # written before positions were kept
    put("e8", "m3", 1, 1, scanned=now, received=now)  # received within the settle time
    wh.insert("checkins", raw, process("checkins", _scan("x", "x", now, now).to_bytes())[0].columns)

    sessions = [
        _session("s1", "m1", t, checkin_event_id="e1", checkout_event_id="e3",
                 absorbed_event_ids=["e2"]),
        _session("s2", "m2", t, checkin_event_id="e4", checkout_event_id=None),
        _session("s2", "m2", t, revision=2, checkin_event_id="e4", checkout_event_id=None,
                 voided=True),
        # Only the member's own sessions account for a scan (the sessions are read by member).
        _session("s3", "m9", t, checkin_event_id="e6", checkout_event_id=None),
    ]  # fmt: skip
    route, _ = process("sessions", sessions[0])
    wh.insert("sessions", [process("sessions", s)[1] for s in sessions], route.columns)

    result = account(
        wh,
        since=now - 48 * h,
        settled_before=now - timedelta(minutes=2),
        committed={0: 5, 1: 3},
        committed_at=now - timedelta(minutes=2),
        max_scan_age=timedelta(hours=72),
        limit=10,
    )
    day = local(t).date()
    by = {
        (p.partition, p.day): (p.raw_scans, p.accounted, p.unaccounted) for p in result.partitions
    }
    assert by == {
        (-1, day): (1, 0, 1),
        (0, day): (4, 3, 1),
        (1, local(now - 30 * h).date()): (1, 0, 1),
    }
    assert result.unaccounted_total == 3 and result.raw_scans == 6
    assert [(u.partition, u.member_id, u.event_id, u.offset) for u in result.unaccounted] == [
        (-1, "m3", "e7", -1),
        (0, "m2", "e4", 3),
        (1, "m3", "e6", 0),
    ]
    assert result.unaccounted_by_partition() == {-1: 1, 0: 1, 1: 1}

    # Listing is bounded, counting is not.
    few = account(
        wh,
        since=now - 48 * h,
        settled_before=now - timedelta(minutes=2),
        committed={0: 5, 1: 3},
        committed_at=now,
        max_scan_age=timedelta(hours=72),
        limit=1,
    )
    assert few.unaccounted_total == 3 and len(few.unaccounted) == 1


# ---- the job in the real pipeline --------------------------------------------------------------


@pytest.fixture(scope="module")
def place(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县审计局"})
    community = stack.create("/v1/communities", {"name": "南城社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "南城党群服务站", "kind": "service_station"},
    )
    members = [
        stack.create(
            "/v1/members",
            {"name": name, "unit_id": unit["id"], "community_id": community["id"]},
        )["id"]
        for name in ("周敏", "吴刚", "郑洁")
    ]
    return {"unit": unit, "community": community, "station": station, "members": members}


def _checkin(stack: Stack, member: str, station: str, action: str, when: datetime) -> str:
    body = {
        "station_token": sign_station(stack.settings, station),
        "action": action,
        "client_event_id": str(uuid.uuid4()),
        "scanned_at": when.isoformat(),
    }
    r = stack.client.post("/v1/checkins", json=body, headers=stack.token("member", member))
    assert r.status_code == 202, r.text
    return str(r.json()["event_id"])


def _latest(stack: Stack) -> dict[str, Any]:
    r = stack.client.get("/v1/admin/reconciliation", headers=stack.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _gauge(stack: Stack, partition: int) -> float | None:
    text = stack.client.get("/metrics").text
    m = re.search(rf'^volunteer_unaccounted_scans{{partition="{partition}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def _raw(stack: Stack, event_ids: list[str]) -> dict[str, tuple[int, int]]:
    wh: Warehouse = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    rows = wh.query(
        "SELECT event_id, kafka_partition, kafka_offset FROM checkins FINAL"
        " WHERE event_id IN %(ids)s",
        {"ids": event_ids},
    )
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_the_job_reports_nothing_normally_and_names_a_scan_the_sessions_never_applied(
    stack: Stack, place: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.reconcile")
    st = place["station"]["id"]
    a, b, c = place["members"]
    now = datetime.now(UTC)
    ids = [
        _checkin(stack, a, st, "in", now - timedelta(hours=2)),
        _checkin(stack, a, st, "in", now - timedelta(hours=2) + timedelta(seconds=30)),
        _checkin(stack, a, st, "out", now - timedelta(hours=1)),
        _checkin(stack, b, st, "in", now - timedelta(minutes=30)),
    ]
    # Every raw scan lands with its place in the log.
    raw = stack.wait_for(lambda: (lambda r: r if len(r) == 4 else None)(_raw(stack, ids)))
    assert raw, _raw(stack, ids)
    assert all(p >= 0 and o >= 0 for p, o in raw.values())

    # Normally: every scan due is named by a session; the double tap by the one it repeats.
    def settled_clean() -> dict[str, Any] | None:
        latest = _latest(stack)["latest"]
        if latest is None or datetime.fromisoformat(latest["committed_at"]) < now:
            return None
        due = sum(p["raw_scans"] for p in latest["partitions"])
        return latest if due >= 4 else None

    clean = stack.wait_for(settled_clean, timeout=60)
    assert clean, _latest(stack)
    assert clean["unaccounted_total"] == 0 and clean["unaccounted"] == []
    assert _latest(stack)["running_here"] is True
    for p, _ in raw.values():
        assert _gauge(stack, p) == 0

    # A scan the log holds that the session state never applies: one published straight to
    # the log, 100 h old, older than anything member c's state can still re-pair (96 h). The
    # worker refuses it to the dead letters and commits past it; the sink writes it to raw
    # `checkins` like any scan. (Dead letters are not in ClickHouse: such a scan is reported,
    # and `python -m services.deadletter list` shows why it was refused.)
    ev_now = _checkin(stack, c, st, "in", now - timedelta(minutes=5))
    late_id = derived_id("checkin", c, "late-" + uuid.uuid4().hex)
    late = CheckinScanned(
        event_id=late_id,
        occurred_at=now - timedelta(hours=100),
        member_id=c,
        station_id=st,
        station_community_id=place["community"]["id"],
        unit_id=place["unit"]["id"],
        member_community_id=place["community"]["id"],
        action="in",
        client_event_id=late_id,
        received_at=now,
    )
    # After the first scan is applied, so the member's state has its floor.
    stack.wait_for(
        lambda: stack.client.get(f"/v1/members/{c}/sessions", headers=stack.admin).json()["total"]
    )
    stack.client.app.state.ctx.publisher.send_sync(topics.CHECKINS, c, late)  # type: ignore[attr-defined]
    placed = stack.wait_for(lambda: _raw(stack, [late_id]).get(late_id))
    assert placed, "the late scan never reached raw checkins"
    partition, offset = placed

    def reported() -> dict[str, Any] | None:
        latest = _latest(stack)["latest"]
        if latest and any(u["event_id"] == late_id for u in latest["unaccounted"]):
            return latest
        return None

    found = stack.wait_for(reported, timeout=60)
    assert found, _latest(stack)
    (u,) = found["unaccounted"]
    assert (u["member_id"], u["partition"], u["offset"]) == (c, partition, offset)
    assert found["unaccounted_total"] == 1
    assert ev_now not in {x["event_id"] for x in found["unaccounted"]}
    assert _gauge(stack, partition) == 1
    logged = [r.getMessage() for r in caplog.records if late_id in r.getMessage()]
    assert logged and c in logged[0], caplog.text
    assert stack.client.get("/metrics").text.count("volunteer_reconcile_runs_total") >= 1


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_the_admin_read_refuses_bad_input_and_other_roles(
    stack: Stack, place: dict[str, Any]
) -> None:
    for bad in ("0", "-1", "many", "100000"):
        r = stack.client.get("/v1/admin/reconciliation", params={"limit": bad}, headers=stack.admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_request", r.text
    r = stack.client.get(
        "/v1/admin/reconciliation", headers=stack.token("organizer", place["community"]["id"])
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
