"""What the member's pages read from the API (issue 19): the record's check as a Chinese page for
browsers (JSON for machines), the print page, station names of another community's station in
the member's sessions, the open session's start, re-binding by phone, the community's phone."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.tokens import sign_station
from tests.support.stack import Stack, api_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:4]
    unit = stack.create("/v1/units", {"name": f"县水务局{tag}"})
    home = stack.create("/v1/communities", {"name": f"北关社区{tag}", "phone": "0932-6621234"})
    away = stack.create("/v1/communities", {"name": f"南关社区{tag}"})
    s_home = stack.create(
        "/v1/stations",
        {"community_id": home["id"], "name": "北关党群服务站", "kind": "service_station"},
    )
    s_away = stack.create(
        "/v1/stations", {"community_id": away["id"], "name": "南关党员驿站", "kind": "member_post"}
    )
    phone = "139" + str(secrets.randbelow(10**8)).zfill(8)
    member = stack.create(
        "/v1/members",
        {"name": "王芳", "unit_id": unit["id"], "community_id": home["id"], "phone": phone},
    )
    # The answer shows the phone masked (services.privacy): keep the number as registered.
    member["phone"] = phone
    return {"home": home, "away": away, "s_home": s_home, "s_away": s_away, "member": member}


def test_the_community_phone_is_kept_and_checked(stack: Stack, county: dict[str, Any]) -> None:
    r = stack.client.get(f"/v1/communities/{county['home']['id']}", headers=stack.admin)
    assert r.status_code == 200 and r.json()["phone"] == "0932-6621234"
    r = stack.client.post(
        "/v1/communities", json={"name": "坏电话社区", "phone": "call me"}, headers=stack.admin
    )
    assert r.status_code == 422, r.text
    # The scan page tells an unbound phone whom to call.
    token = sign_station(stack.settings, county["s_home"]["id"])
    page = stack.client.get(f"/s/{token}")
    assert page.status_code == 200
    assert "没有激活码？请联系社区" in page.text and "0932-6621234" in page.text


def test_sessions_name_another_communitys_station_and_the_week_says_since_when(
    stack: Stack, county: dict[str, Any]
) -> None:
    m = county["member"]["id"]
    now = datetime.now(UTC)
    api_scan(stack, m, county["s_away"]["id"], "in", now - timedelta(minutes=50))
    api_scan(stack, m, county["s_away"]["id"], "out", now - timedelta(minutes=20))
    api_scan(stack, m, county["s_home"]["id"], "in", now - timedelta(minutes=10))
    mine = stack.token("member", m)

    def ready() -> Any:
        s = stack.client.get(f"/v1/members/{m}/sessions", headers=mine).json()
        return s if s["total"] == 2 else None

    sessions = stack.wait_for(ready, timeout=120)
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    assert sessions, (
        stack.client.get(f"/v1/members/{m}/sessions", headers=mine).json(),
        wh.query(
            "SELECT station_id, action, scanned_at FROM checkins FINAL WHERE member_id = %(m)s",
            {"m": m},
        ),
        wh.query(
            "SELECT session_id, revision, status, start, end FROM sessions WHERE member_id = %(m)s",
            {"m": m},
        ),
    )
    names = {i["station_id"]: i["station_name"] for i in sessions["items"]}
    assert names == {
        county["s_away"]["id"]: "南关党员驿站",
        county["s_home"]["id"]: "北关党群服务站",
    }
    week = stack.client.get(f"/v1/members/{m}/week", headers=mine).json()
    assert week["open_session"] is True
    since = datetime.fromisoformat(week["open_since"])
    assert abs((since - (now - timedelta(minutes=10))).total_seconds()) < 2


def test_rebinding_by_phone_needs_the_registered_number(
    stack: Stack, county: dict[str, Any]
) -> None:
    m = county["member"]
    org = stack.token("organizer", county["home"]["id"])

    def code() -> str:
        r = stack.client.post("/v1/activations", json={"member_id": m["id"]}, headers=org)
        assert r.status_code == 201, r.text
        return str(r.json()["code"])

    c = code()
    # Malformed: 422 before anything is looked up.
    r = stack.client.post("/v1/activations/redeem", json={"code": c, "phone": "12345"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    # Another number: as an unknown code (no oracle), and the code stays unspent.
    other = "13" + ("0" if m["phone"][2] != "0" else "1") + m["phone"][3:]
    r = stack.client.post("/v1/activations/redeem", json={"code": c, "phone": other})
    assert r.status_code == 404 and r.json()["error"]["code"] == "activation_not_found"
    r = stack.client.post("/v1/activations/redeem", json={"code": c, "phone": m["phone"]})
    assert r.status_code == 200, r.text
    assert r.json()["member_id"] == m["id"] and r.json()["member_name"] == "王芳"


def test_the_check_is_a_chinese_page_for_browsers_and_json_for_machines(
    stack: Stack, county: dict[str, Any]
) -> None:
    m = county["member"]["id"]
    today = datetime.now(UTC).date()
    r = stack.client.post(
        f"/v1/members/{m}/service-records",
        json={"from": str(today - timedelta(days=3)), "to": str(today)},
        headers=stack.token("member", m),
    )
    assert r.status_code == 201, r.text
    rec = r.json()
    code = rec["code"]
    assert stack.client.get(f"/v1/verify/{code}").json()["valid"] is True
    page = stack.client.get(f"/v1/verify/{code}", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "真实有效" in page.text and "王芳" in page.text and "北京时间" in page.text
    assert "member_name" not in page.text
    same = stack.client.get(f"/verify/{code}")
    assert same.status_code == 200 and "真实有效" in same.text
    wrong = stack.client.get(f"/verify/{code}", params={"hours": 999, "member_name": "王芳"})
    assert "与纸面不一致：服务时长" in wrong.text
    # Unknown: 404, in Chinese for a browser, the JSON error for a machine.
    guess = secrets.token_hex(8)
    r = stack.client.get(f"/verify/{guess}")
    assert r.status_code == 404 and "未找到此验证码对应的服务证明" in r.text
    r = stack.client.get(f"/v1/verify/{guess}", headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 404 and "未找到" in r.text
    r = stack.client.get(f"/v1/verify/{guess}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "record_not_found"
    # Bad input: 422, never a 500.
    r = stack.client.get(f"/verify/{code}", params={"hours": "many"})
    assert r.status_code == 422
    # The print page: a phone's viewport, a print button, the seal line, the QR to the check.
    p = stack.client.get(f"/records/{code}")
    assert p.status_code == 200
    assert 'name="viewport"' in p.text and 'id="print"' in p.text and "（盖章）" in p.text
    assert 'id="verify-qr" src="data:image/svg+xml;base64,' in p.text
    assert f"/verify/{code}" in p.text
    assert stack.client.get(f"/records/{guess}").status_code == 404
