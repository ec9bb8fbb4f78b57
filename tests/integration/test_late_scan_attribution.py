"""A scan queued offline before the member moved (or left) is the service of the unit and
community the member had when it was made, whenever it arrives (issue 12)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_late_scan_made_before_a_move_keeps_the_unit_and_community_of_its_time(
    stack: Stack,
) -> None:
    old_unit = stack.create("/v1/units", {"name": "县统计局"})["id"]
    new_unit = stack.create("/v1/units", {"name": "县审计局"})["id"]
    old_c = stack.create("/v1/communities", {"name": "东关社区"})["id"]
    new_c = stack.create("/v1/communities", {"name": "南街社区"})["id"]
    station = stack.create(
        "/v1/stations", {"community_id": old_c, "name": "东关服务站", "kind": "service_station"}
    )["id"]
    member = stack.create(
        "/v1/members", {"name": "孙九", "unit_id": old_unit, "community_id": old_c}
    )["id"]
    made_at = datetime.now(UTC) - timedelta(hours=2)
    r = stack.client.patch(
        f"/v1/members/{member}",
        json={"unit_id": new_unit, "community_id": new_c},
        headers=stack.admin,
    )
    assert r.status_code == 200, r.text
    token = stack.token("member", member)
    events = []
    for at in (made_at, datetime.now(UTC)):
        r = stack.client.post(
            "/v1/checkins",
            json={
                "station_token": sign_station(stack.settings, station),
                "action": "in",
                "client_event_id": str(uuid.uuid4()),
                "scanned_at": at.isoformat(),
            },
            headers=token,
        )
        assert r.status_code == 202, r.text
        events.append(r.json()["event_id"])
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]

    def rows() -> dict[str, tuple[str, str]]:
        got = wh.query(
            "SELECT event_id, unit_id, member_community_id FROM checkins FINAL "
            "WHERE event_id IN %(e)s",
            {"e": events},
        )
        return {str(e): (str(u), str(c)) for e, u, c in got}

    got = stack.wait_for(lambda: rows() if len(rows()) == 2 else None, timeout=30)
    assert got == {events[0]: (old_unit, old_c), events[1]: (new_unit, new_c)}


def test_a_late_scan_made_before_the_member_left_is_still_accepted(stack: Stack) -> None:
    unit = stack.create("/v1/units", {"name": "县档案局"})["id"]
    c = stack.create("/v1/communities", {"name": "西关社区"})["id"]
    station = stack.create(
        "/v1/stations", {"community_id": c, "name": "西关服务站", "kind": "service_station"}
    )["id"]
    member = stack.create("/v1/members", {"name": "周十", "unit_id": unit, "community_id": c})["id"]
    token = stack.token("member", member)
    r = stack.client.patch(f"/v1/members/{member}", json={"status": "left"}, headers=stack.admin)
    assert r.status_code == 200, r.text

    def checkin(at: datetime) -> int:
        body = {
            "station_token": sign_station(stack.settings, station),
            "action": "in",
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        return stack.client.post("/v1/checkins", json=body, headers=token).status_code

    assert checkin(datetime.now(UTC) - timedelta(hours=3)) == 202
    assert checkin(datetime.now(UTC)) == 403
