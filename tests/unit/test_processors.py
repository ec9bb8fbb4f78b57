"""Fixture payloads through the sink's processors, as snuba tests its message processors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.events import CheckinScanned, SessionRecorded
from services.processors import InvalidMessage, at_position, process

SCAN = CheckinScanned(
    event_id="e1",
    occurred_at=datetime(2026, 11, 2, 1, 0, tzinfo=UTC),
    member_id="mem_1",
    station_id="st_1",
    station_community_id="comm_1",
    unit_id="unit_1",
    member_community_id="comm_1",
    action="in",
    client_event_id="c1",
    received_at=datetime(2026, 11, 2, 1, 0, 5, tzinfo=UTC),
)


def test_checkin_becomes_one_row_in_column_order() -> None:
    route, row = process("checkins", SCAN.to_bytes())
    assert route.table == "checkins"
    assert dict(zip(route.columns, row, strict=True))["member_id"] == "mem_1"
    assert len(row) == len(route.columns)


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        ("checkins", b"not json", "not JSON"),
        ("checkins", json.dumps({"event_type": "checkin.scanned"}).encode(), "invalid event"),
        ("sessions", SCAN.to_bytes(), "does not belong"),
        ("nope", SCAN.to_bytes(), "no route"),
        ("checkins", None, "tombstone"),
    ],
)
def test_invalid_messages_name_their_problem(topic: str, raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        process(topic, raw)


def test_naive_timestamps_are_refused() -> None:
    payload = json.loads(SCAN.to_bytes())
    payload["occurred_at"] = "2026-11-02T01:00:00"
    with pytest.raises(InvalidMessage, match="time zone"):
        process("checkins", json.dumps(payload).encode())


def test_a_raw_scan_row_carries_its_place_in_the_log_once_the_sink_sets_it() -> None:
    route, row = process("checkins", SCAN.to_bytes())
    cols = dict(zip(route.columns, row, strict=True))
    # Without a message (a replay of rows, a test) the place is unknown, never invented.
    assert (cols["kafka_partition"], cols["kafka_offset"]) == (-1, -1)
    placed = dict(zip(route.columns, at_position(row, 3, 1234), strict=True))
    assert (placed["kafka_partition"], placed["kafka_offset"]) == (3, 1234)
    assert placed["event_id"] == "e1" and placed["received_at"] == SCAN.received_at


def test_a_session_row_names_the_scans_it_absorbed() -> None:
    rec = SessionRecorded(
        event_id="r1",
        occurred_at=SCAN.occurred_at,
        session_id="s1",
        revision=2,
        member_id="mem_1",
        unit_id="unit_1",
        member_community_id="comm_1",
        station_id="st_1",
        station_community_id="comm_1",
        start=SCAN.occurred_at,
        end=None,
        credited_seconds=0,
        status="open",
        checkin_event_id="e1",
        checkout_event_id=None,
        absorbed_event_ids=["e2"],
    )
    route, row = process("sessions", rec.to_bytes())
    assert dict(zip(route.columns, row, strict=True))["absorbed_event_ids"] == ["e2"]
