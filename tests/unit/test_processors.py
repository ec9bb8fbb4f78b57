"""Fixture payloads through the sink's processors, as snuba tests its message processors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.events import CheckinScanned
from services.processors import InvalidMessage, process

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
