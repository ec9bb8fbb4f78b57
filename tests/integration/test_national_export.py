"""Records by the national rules: a record of service names the issuing community, its person in
charge, its handler, its phone, a certificate number, the date of issue and a masked volunteer
number (never a full identifier on the public pages); the export for the national volunteer
information system lists one row per service done at the community's stations."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import openpyxl
import pytest

from services.timeutil import LOCAL_TZ
from tests.support.stack import Stack, log_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

STACK_ENV = {"SESSION_REDERIVE_HORIZON_H": str(60 * 24), "SESSION_REVIEW_WINDOW_DAYS": "60"}
TODAY = datetime.now(LOCAL_TZ).date()
D1, D2 = TODAY - timedelta(days=10), TODAY - timedelta(days=3)


def at(d: date, h: int, mi: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, h, mi, tzinfo=LOCAL_TZ)


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县民政局"})
    c1 = stack.create(
        "/v1/communities",
        {"name": "交通社区", "phone": "0932-6621234", "person_in_charge": "刘书记"},
    )
    r = stack.client.patch(
        f"/v1/communities/{c1['id']}", json={"handler": "陈干事"}, headers=stack.admin
    )
    assert r.status_code == 200 and r.json()["handler"] == "陈干事", r.text
    c2 = stack.create("/v1/communities", {"name": "东铺社区"})
    s1 = stack.create(
        "/v1/stations",
        {"community_id": c1["id"], "name": "交通党群服务站", "kind": "service_station"},
    )
    s2 = stack.create(
        "/v1/stations", {"community_id": c2["id"], "name": "东铺党员驿站", "kind": "member_post"}
    )
    m1 = stack.create(
        "/v1/members",
        {
            "name": "郭静",
            "phone": "13600000001",
            "unit_id": unit["id"],
            "community_id": c1["id"],
            "reported_on": "2024-01-01",
        },
    )
    m2 = stack.create(
        "/v1/members",
        {"name": "何平", "phone": "13600000002", "unit_id": unit["id"], "community_id": c2["id"]},
    )
    r = stack.client.put(
        f"/v1/members/{m1['id']}/volunteer-no",
        json={"volunteer_no": " zy2023-6211 2201"},
        headers=stack.token("member", m1["id"]),
    )
    assert r.status_code == 200, r.text
    # 郭静 at home twice (2 h, 1.5 h) and once at 东铺; 何平 visits 交通 (1 h).
    for m, st, a, b in (
        (m1, s1, at(D1, 9), at(D1, 11)),
        (m1, s1, at(D2, 14), at(D2, 15, 30)),
        (m1, s2, at(D2, 8), at(D2, 9)),
        (m2, s1, at(D2, 19), at(D2, 20)),
    ):
        log_scan(stack, m, st, "in", a)
        log_scan(stack, m, st, "out", b)
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]

    def closed() -> bool:
        rows = wh.query(
            "SELECT count() FROM sessions FINAL WHERE status = 'closed' AND member_id IN %(m)s",
            {"m": [m1["id"], m2["id"]]},
        )
        return bool(rows[0][0] == 4)

    assert stack.wait_for(closed, timeout=60), "sessions did not arrive"
    return {"unit": unit, "c1": c1, "c2": c2, "m1": m1, "m2": m2}


def export(stack: Stack, c: dict[str, Any], fmt: str, headers: Any = None) -> Any:
    return stack.client.get(
        f"/v1/communities/{c['c1']['id']}/national-export"
        f"?from={D1 - timedelta(days=1)}&to={TODAY}&format={fmt}",
        headers=headers or stack.admin,
    )


# 郭静 entered her national volunteer number (lower case, with a space: stored normalized);
# 何平 has none, so his column is blank.
VOLUNTEER_NO = "ZY2023-62112201"
EXPECTED = [
    [
        "郭静",
        "13600000001",
        VOLUNTEER_NO,
        "交通社区",
        "在职党员到社区报到志愿服务",
        "交通党群服务站",
    ],
    [
        "郭静",
        "13600000001",
        VOLUNTEER_NO,
        "交通社区",
        "在职党员到社区报到志愿服务",
        "交通党群服务站",
    ],
    ["何平", "13600000002", "", "交通社区", "在职党员到社区报到志愿服务", "交通党群服务站"],
]


def test_one_row_per_service_at_the_communitys_stations(
    stack: Stack, county: dict[str, Any]
) -> None:
    r = export(stack, county, "csv")
    assert r.status_code == 200, r.text
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0] == [
        "志愿者姓名",
        "手机号码",
        "志愿者编号",
        "志愿服务组织",
        "活动名称",
        "服务地点",
        "服务日期",
        "开始时间",
        "结束时间",
        "服务时长（小时）",
        "成员编号",
    ]
    body = lines[1:]
    assert [row[:6] for row in body] == EXPECTED
    assert [row[6:10] for row in body] == [
        [D1.isoformat(), "09:00", "11:00", "2.0"],
        [D2.isoformat(), "14:00", "15:30", "1.5"],
        [D2.isoformat(), "19:00", "20:00", "1.0"],
    ]
    assert body[0][10] == county["m1"]["id"]
    x = export(stack, county, "xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(x.content)).worksheets[0]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [[v or "" for v in row[:6]] for row in rows] == EXPECTED
    assert [row[9] for row in rows] == [2.0, 1.5, 1.0]
    # The organizer of the community exports it; another community's organizer and HR cannot.
    org1 = stack.token("organizer", county["c1"]["id"])
    assert export(stack, county, "csv", org1).status_code == 200
    assert (
        export(stack, county, "csv", stack.token("organizer", county["c2"]["id"])).status_code
        == 404
    )
    assert export(stack, county, "csv", stack.token("hr", county["unit"]["id"])).status_code == 404


def test_bad_ranges_are_422(stack: Stack, county: dict[str, Any]) -> None:
    base = f"/v1/communities/{county['c1']['id']}/national-export"
    for q in (
        "?from=2026-02-01&to=2026-01-01",
        "?from=2024-01-01&to=2026-01-01",
        "?from=x&to=y",
        "?from=9999-12-31&to=9999-12-31",
        "",
    ):
        r = stack.client.get(base + q, headers=stack.admin)
        assert r.status_code == 422, (q, r.text)
        assert "error" in r.json()


def test_the_record_names_what_the_national_rules_ask(stack: Stack, county: dict[str, Any]) -> None:
    m1 = county["m1"]
    r = stack.client.post(
        f"/v1/members/{m1['id']}/service-records",
        json={"from": D1.isoformat(), "to": TODAY.isoformat()},
        headers=stack.token("member", m1["id"]),
    )
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    v = stack.client.get(f"/v1/verify/{code}").json()
    assert (v["person_in_charge"], v["handler"], v["contact_phone"]) == (
        "刘书记",
        "陈干事",
        "0932-6621234",
    )
    assert v["certificate_no"] == r.json()["code_display"]
    assert v["hours"] == 4.5 and v["sessions"] == 3
    # Her national volunteer number, masked: never a full identifier on the public answers.
    assert v["volunteer_no"] == "ZY20*******2201"
    page = stack.client.get(f"/records/{code}").text
    issued = datetime.now(LOCAL_TZ).date()
    for text in (
        "出具组织：交通社区",
        "负责人：刘书记",
        "经办人：陈干事",
        "联系电话：0932-6621234",
        f'证明编号：<span class="code" id="certificate-no">{r.json()["code_display"]}',
        f"出具日期：{issued.year}年{issued.month}月{issued.day}日",
        v["volunteer_no"],
        "仅计实际服务时间",
        "09:00–11:00",
    ):
        assert text in page, text
    verify_page = stack.client.get(f"/verify/{code}").text
    assert "刘书记" in verify_page and "证明编号" in verify_page
    for public in (page, verify_page, str(v)):
        assert m1["id"] not in public and "13600000001" not in public
        assert VOLUNTEER_NO not in public
    # Without a national number, the masked member id, as before.
    m2 = county["m2"]
    r = stack.client.post(
        f"/v1/members/{m2['id']}/service-records",
        json={"from": D1.isoformat(), "to": TODAY.isoformat()},
        headers=stack.token("member", m2["id"]),
    )
    assert r.status_code == 201, r.text
    v2 = stack.client.get(f"/v1/verify/{r.json()['code']}").json()
    assert "*" in v2["volunteer_no"] and v2["volunteer_no"][-4:] == m2["id"][-4:]


def test_the_export_with_full_phones_is_in_the_access_log(
    stack: Stack, county: dict[str, Any]
) -> None:
    """Full phones leave the system in this file: each download names who took it and whose
    phones it carried, like the not-served file."""
    org1 = stack.token("organizer", county["c1"]["id"])
    assert export(stack, county, "csv", org1).status_code == 200
    c1 = county["c1"]["id"]

    def logged() -> list[dict[str, Any]] | None:
        r = stack.client.get(
            "/v1/access-log",
            params={"kind": "phones_export", "actor_id": c1},
            headers=stack.admin,
        )
        assert r.status_code == 200, r.text
        items = [i for i in r.json()["items"] if i["route"].endswith("/national-export")]
        return items or None

    items = stack.wait_for(logged, timeout=60)
    assert items, "the national export was not logged"
    assert county["m1"]["id"] in items[0]["member_ids"]


def test_the_volunteer_number_is_the_members_and_their_units_to_set(
    stack: Stack, county: dict[str, Any]
) -> None:
    m1, m2 = county["m1"], county["m2"]
    url = f"/v1/members/{m1['id']}/volunteer-no"
    hr = stack.token("hr", county["unit"]["id"])

    def put(body: Any, headers: Any) -> Any:
        return stack.client.put(url, json=body, headers=headers)

    # Bad input: 422 naming the field, nothing stored; a citizen ID number is never stored.
    for body, code in (
        ({"volunteer_no": "abc"}, "invalid_volunteer_no"),
        ({"volunteer_no": "ZY2023_0001"}, "invalid_volunteer_no"),
        ({"volunteer_no": "x" * 65}, "invalid_request"),
        ({"volunteer_no": 12345678}, "invalid_request"),
        ({"volunteer_no": "62112219900307123X"}, "citizen_id_refused"),
        ({"volunteer_no": "621122 19900307 1234"}, "citizen_id_refused"),
        ({"volunteer_no": "ZY2023-0001", "name": "改名"}, "invalid_request"),
        ({}, "invalid_request"),
    ):
        r = put(body, hr)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code, (body, r.text)
    # Who: the member and their unit's HR (and the admin); the organizer keeps the rest of the
    # record but not this; another member or unit learns nothing (404).
    assert put({"volunteer_no": "ZY2023-62112201"}, hr).json() == {
        "member_id": m1["id"],
        "volunteer_no": "ZY20*******2201",
    }
    org = stack.token("organizer", county["c1"]["id"])
    assert put({"volunteer_no": "ZY2023-0001"}, org).status_code == 403
    assert put({"volunteer_no": "ZY2023-0001"}, stack.token("member", m2["id"])).status_code == 404
    other_hr = stack.token("hr", stack.create("/v1/units", {"name": "县水务局"})["id"])
    assert put({"volunteer_no": "ZY2023-0001"}, other_hr).status_code == 404
    # Every answer shows it masked; the member's history names who set it, masked too.
    rec = stack.client.get(f"/v1/members/{m1['id']}", headers=org).json()
    assert rec["volunteer_no"] == "ZY20*******2201"
    hist = stack.client.get(f"/v1/members/{m1['id']}/history", headers=stack.admin).json()
    changes = [
        (i["changed_by"], c["after"])
        for i in hist["items"]
        for c in i["changes"]
        if c["field"] == "volunteer_no"
    ]
    assert changes[0] == (f"member:{m1['id']}", "ZY20*******2201")
    assert "ZY2023-62112201" not in str(hist)
    # Her own data download carries it in full.
    mine = stack.client.get(
        f"/v1/members/{m1['id']}/my-data", headers=stack.token("member", m1["id"])
    )
    assert mine.status_code == 200 and VOLUNTEER_NO in mine.text


def test_a_communitys_signers_are_set_by_its_own_side(stack: Stack, county: dict[str, Any]) -> None:
    town = stack.create("/v1/towns", {"name": "文峰镇"})
    other_town = stack.create("/v1/towns", {"name": "巩昌镇"})
    c = stack.create("/v1/communities", {"name": "东铺社区二", "town_id": town["id"]})
    url = f"/v1/communities/{c['id']}/signers"

    def patch(body: Any, headers: Any) -> Any:
        return stack.client.patch(url, json=body, headers=headers)

    org = stack.token("organizer", c["id"])
    r = patch({"person_in_charge": "王书记", "handler": "赵干事"}, org)
    assert r.status_code == 200, r.text
    assert (r.json()["person_in_charge"], r.json()["handler"]) == ("王书记", "赵干事")
    # The office of the community's town too; null clears one, the other stays.
    r = patch({"handler": None}, stack.token("town", town["id"]))
    assert r.status_code == 200 and r.json()["handler"] is None, r.text
    assert r.json()["person_in_charge"] == "王书记"
    # Nobody else: another organizer or town office (403: the directory is public), the county
    # office (changes nothing), a member, HR.
    for who in (
        stack.token("organizer", county["c1"]["id"]),
        stack.token("town", other_town["id"]),
        stack.token("county", "county"),
        stack.token("member", county["m1"]["id"]),
        stack.token("hr", county["unit"]["id"]),
    ):
        r = patch({"handler": "冒名"}, who)
        assert r.status_code == 403, r.text
    # Only these two fields, each a line of 1-50 characters; something must be given.
    for body in (
        {},
        {"handler": ""},
        {"handler": "长" * 51},
        {"handler": "赵\u202e干事"},
        {"name": "改名"},
        {"town_id": other_town["id"]},
        {"handler": 5},
    ):
        r = patch(body, org)
        assert r.status_code == 422 and "error" in r.json(), (body, r.text)
    # Audited: the community's history names each change and who made it.
    hist = stack.client.get(f"/v1/communities/{c['id']}/history", headers=org).json()
    by = [
        (i["changed_by"], c2["field"], c2["after"])
        for i in hist["items"]
        for c2 in i["changes"]
        if c2["field"] in ("person_in_charge", "handler")
    ]
    assert by == [
        (f"organizer:{c['id']}", "person_in_charge", "王书记"),
        (f"organizer:{c['id']}", "handler", "赵干事"),
        (f"town:{town['id']}", "handler", None),
    ]
    # The records of service issued afterwards name them.
    unit = county["unit"]
    m = stack.create(
        "/v1/members",
        {"name": "孙立", "phone": "13600000009", "unit_id": unit["id"], "community_id": c["id"]},
    )
    patch({"handler": "钱干事"}, org)
    r = stack.client.post(
        f"/v1/members/{m['id']}/service-records",
        json={"from": D1.isoformat(), "to": TODAY.isoformat()},
        headers=stack.token("member", m["id"]),
    )
    assert r.status_code == 201, r.text
    v = stack.client.get(f"/v1/verify/{r.json()['code']}").json()
    assert (v["person_in_charge"], v["handler"]) == ("王书记", "钱干事")
