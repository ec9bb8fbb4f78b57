"""Token revocation, rate limits, and records of service that anyone can verify."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县司法局"})
    community = stack.create("/v1/communities", {"name": "文峰社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "文峰党群服务站", "kind": "service_station"},
    )
    member = stack.create(
        "/v1/members", {"name": "陈静", "unit_id": unit["id"], "community_id": community["id"]}
    )
    return {"unit": unit, "community": community, "station": station, "member": member}


def test_a_revoked_token_is_refused_and_others_are_not(
    stack: Stack, county: dict[str, Any]
) -> None:
    member = county["member"]
    a, b = stack.token("member", member["id"]), stack.token("member", member["id"])
    assert stack.client.get("/v1/auth/me", headers=a).status_code == 200
    # A member may not revoke someone else's token...
    other_token = b["Authorization"].split()[1]
    organizer = stack.token("organizer", county["community"]["id"])
    r = stack.client.post("/v1/auth/revoke", json={"token": other_token}, headers=organizer)
    assert r.status_code == 403
    # ...but may withdraw their own (log out), and the admin may withdraw any.
    assert stack.client.post("/v1/auth/revoke", json={}, headers=a).status_code == 200
    r = stack.client.get("/v1/auth/me", headers=a)
    assert r.status_code == 401 and r.json()["error"]["message"] == "token revoked"
    assert stack.client.get("/v1/auth/me", headers=b).status_code == 200
    r = stack.client.post("/v1/auth/revoke", json={"token": other_token}, headers=stack.admin)
    assert r.status_code == 200
    assert stack.client.get("/v1/auth/me", headers=b).status_code == 401
    # The revocation is stored, so another process (or a restart) refuses it too.
    rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
        "SELECT count() FROM revoked_tokens FINAL WHERE subject_id = %(m)s", {"m": member["id"]}
    )
    assert rows[0][0] == 2


def test_checkins_are_rate_limited_per_member_with_retry_after(
    stack: Stack, county: dict[str, Any]
) -> None:
    m = stack.create(
        "/v1/members",
        {
            "name": "杨帆",
            "unit_id": county["unit"]["id"],
            "community_id": county["community"]["id"],
        },
    )
    me = stack.token("member", m["id"])
    token = sign_station(stack.settings, county["station"]["id"])
    burst = stack.settings.limit_checkins_member_burst
    statuses = []
    for i in range(burst + 1):
        body = {
            "station_token": token,
            "action": "in" if i % 2 == 0 else "out",
            "client_event_id": str(uuid.uuid4()),
        }
        r = stack.client.post("/v1/checkins", json=body, headers=me)
        statuses.append(r.status_code)
    assert statuses[:burst] == [202] * burst
    assert statuses[burst] == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    # Another member at the same station is not held back by this one.
    other = stack.token("member", county["member"]["id"])
    body = {"station_token": token, "action": "in", "client_event_id": str(uuid.uuid4())}
    assert stack.client.post("/v1/checkins", json=body, headers=other).status_code == 202


def test_token_issuing_is_rate_limited(stack: Stack, county: dict[str, Any]) -> None:
    admin_token = stack.token("admin", "admin")  # a revocable admin token with its own bucket
    codes = []
    for _ in range(stack.settings.limit_token_issue_burst + 1):
        r = stack.client.post(
            "/v1/auth/tokens",
            json={"role": "member", "subject_id": county["member"]["id"]},
            headers=admin_token,
        )
        codes.append(r.status_code)
    assert codes[-1] == 429 and set(codes[:-1]) == {201}


def test_record_of_service_is_issued_printed_and_verified(
    stack: Stack, county: dict[str, Any]
) -> None:
    m = stack.create(
        "/v1/members",
        {
            "name": "周杰",
            "unit_id": county["unit"]["id"],
            "community_id": county["community"]["id"],
        },
    )
    me = stack.token("member", m["id"])
    token = sign_station(stack.settings, county["station"]["id"])
    now = datetime.now(UTC)
    for action, at in (
        ("in", now - timedelta(hours=3)),
        ("out", now - timedelta(hours=1, minutes=30)),
    ):
        body = {
            "station_token": token,
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        assert stack.client.post("/v1/checkins", json=body, headers=me).status_code == 202

    def hours() -> Any:
        h = stack.client.get(f"/v1/members/{m['id']}/hours", headers=me).json()
        return h if h["sessions"] == 1 else None

    assert stack.wait_for(hours, timeout=40)
    b = stack.client.get(f"/v1/members/{m['id']}/hours/breakdown", headers=me).json()
    local_start = (now - timedelta(hours=3)).astimezone(CST)
    week = f"{local_start.isocalendar()[0]}-W{local_start.isocalendar()[1]:02d}"
    assert b["hours"] == 1.5 and b["sessions"] == 1
    assert b["by_week"] == [{"period": week, "hours": 1.5, "sessions": 1}]
    assert b["by_month"] == [{"period": local_start.strftime("%Y-%m"), "hours": 1.5, "sessions": 1}]
    today = now.date()
    period = {
        "from": (today - timedelta(days=7)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }
    r = stack.client.post(f"/v1/members/{m['id']}/service-records", json=period, headers=me)
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["hours"] == 1.5 and rec["sessions"] == 1 and rec["member_name"] == "周杰"

    page = stack.client.get(f"/records/{rec['code']}")
    assert page.status_code == 200
    assert "志愿服务证明" in page.text and "周杰" in page.text and "1.50" in page.text
    assert rec["code_display"] in page.text

    ok = stack.client.get(
        f"/v1/verify/{rec['code']}", params={"hours": 1.5, "sessions": 1, "member_name": "周杰"}
    )
    assert ok.status_code == 200 and ok.json()["valid"] is True
    # The code as printed, with dashes and in lower case, works too.
    assert stack.client.get(f"/v1/verify/{rec['code_display'].lower()}").status_code == 200
    altered = stack.client.get(
        f"/v1/verify/{rec['code']}", params={"hours": 15, "member_name": "周杰"}
    )
    assert altered.status_code == 200
    assert altered.json()["valid"] is False and altered.json()["mismatches"] == ["hours"]
    forged = rec["code"][:-1] + ("A" if rec["code"][-1] != "A" else "B")
    r = stack.client.get(f"/v1/verify/{forged}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "record_not_found"

    # Only those who may read the member's data may issue their record.
    stranger_unit = stack.create("/v1/units", {"name": "县统计局"})
    hr = stack.token("hr", stranger_unit["id"])
    r = stack.client.post(f"/v1/members/{m['id']}/service-records", json=period, headers=hr)
    assert r.status_code == 404
    r = stack.client.post(
        f"/v1/members/{m['id']}/service-records",
        json={"from": "2026-02-01", "to": "2026-01-01"},
        headers=me,
    )
    assert r.status_code == 422
