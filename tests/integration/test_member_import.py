"""Member spreadsheets through the real API, Kafka and chDB: good files in every encoding and
format, each kind of bad file and bad row, dry run, partial, re-import, scope and scale."""

from __future__ import annotations

import io
import time
from datetime import date
from typing import Any

import openpyxl
import pytest

from services.privacy import mask_phone
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HEADER = "姓名,手机号码,工作单位,居住社区,网格,报到日期"


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    u1 = stack.create("/v1/units", {"name": "县财政局"})
    u2 = stack.create("/v1/units", {"name": "县教育局"})
    c1 = stack.create("/v1/communities", {"name": "城关社区"})
    c2 = stack.create("/v1/communities", {"name": "东关社区"})
    g1 = stack.create("/v1/grids", {"community_id": c1["id"], "name": "第一网格", "level": 4})
    g2 = stack.create("/v1/grids", {"community_id": c2["id"], "name": "第一网格", "level": 4})
    return {"u1": u1, "u2": u2, "c1": c1, "c2": c2, "g1": g1, "g2": g2}


def upload(
    stack: Stack,
    data: bytes,
    query: str = "",
    headers: dict[str, str] | None = None,
    filename: str = "名单.csv",
) -> Any:
    return stack.client.post(
        f"/v1/imports/members{query}",
        files={"file": (filename, data, "application/octet-stream")},
        headers=headers or stack.admin,
    )


def csv_bytes(*rows: str, encoding: str = "utf-8", header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode(encoding)


def members(stack: Stack, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    r = stack.client.get(f"/v1/members?limit=500&{query}", headers=stack.admin)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["items"]
    return out


def by_phone(stack: Stack, phone: str) -> list[dict[str, Any]]:
    # Answers show phones masked (services.privacy); the search matches the full number.
    return [m for m in members(stack, q=phone) if m["phone"] == mask_phone(phone)]


def test_good_file_then_reimport_creates_nobody_twice(stack: Stack, county: dict[str, Any]) -> None:
    data = csv_bytes(
        "张伟,13900000001,县财政局,城关社区,第一网格,2022-03-15",
        "李娜,139 0000 0002,县教育局,东关社区,第一网格,2022-4-1",
        "王芳,13900000003,县财政局,城关社区,,",
        ",,,,,",  # a blank line Excel leaves at the end
    )
    r = upload(stack, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"], body["created"], body["errors"]) == (3, 0, 3, [])
    assert body["written"] is True
    zhang = by_phone(stack, "13900000001")[0]
    assert zhang["unit_id"] == county["u1"]["id"] and zhang["grid_id"] == county["g1"]["id"]
    assert zhang["reported_on"] == "2022-03-15" and zhang["updated_by"] == "admin:admin"
    li = by_phone(stack, "13900000002")[0]
    # Same grid name in another community: resolved within the member's community.
    assert li["grid_id"] == county["g2"]["id"] and li["reported_on"] == "2022-04-01"

    again = upload(stack, data).json()
    assert (again["accepted"], again["created"], again["updated"], again["unchanged"]) == (
        3,
        0,
        0,
        3,
    )
    assert len(by_phone(stack, "13900000001")) == 1

    # A re-import with a changed unit updates that member, and the history shows the move.
    moved = csv_bytes("张伟,13900000001,县教育局,城关社区,,2022-03-15")
    body = upload(stack, moved).json()
    assert (body["updated"], body["created"]) == (1, 0)
    after = by_phone(stack, "13900000001")[0]
    assert after["id"] == zhang["id"] and after["unit_id"] == county["u2"]["id"]
    # A blank grid cell leaves the grid the community assigned.
    assert after["grid_id"] == county["g1"]["id"]
    h = stack.client.get(f"/v1/members/{zhang['id']}/history", headers=stack.admin).json()
    assert h["items"][-1]["changes"] == [
        {"field": "unit_id", "before": county["u1"]["id"], "after": county["u2"]["id"]}
    ]


def test_bad_rows_are_all_reported_and_nothing_is_written(
    stack: Stack, county: dict[str, Any]
) -> None:
    data = csv_bytes(
        "赵一,13911111101,县财政局,城关社区,第一网格,2022-03-15",  # good (row 2)
        "赵二,12345,县财政局,城关社区,,",  # bad phone (row 3)
        "赵三,13911111103,县公安局,城关社区,,",  # unknown unit (row 4)
        "赵四,13911111104,县财政局,西关社区,,",  # unknown community (row 5)
        "赵五,13911111105,县财政局,城关社区,第九网格,",  # unknown grid (row 6)
        "赵六,13911111106,县财政局,城关社区,,2022/03/15",  # bad date (row 7)
        "赵七,13911111107,县财政局,城关社区,,2999-01-01",  # future date (row 8)
        "赵八,13911111101,县财政局,城关社区,,",  # phone repeated (row 9)
        ",13911111109,,城关社区,,",  # no name, no unit (row 10)
    )
    before = len(members(stack))
    r = upload(stack, data)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == "rows_rejected" and "未导入" in body["error"]["message"]
    assert (body["accepted"], body["rejected"], body["written"]) == (1, 8, False)
    got = {(e["row"], e["column"]) for e in body["errors"]}
    assert got == {
        (3, "手机号码"),
        (4, "工作单位"),
        (5, "居住社区"),
        (6, "网格"),
        (7, "报到日期"),
        (8, "报到日期"),
        (9, "手机号码"),
        (10, "姓名"),
        (10, "工作单位"),
    }
    messages = {(e["row"], e["column"]): e["message"] for e in body["errors"]}
    assert "县公安局" in messages[(4, "工作单位")]
    assert "第 2 行" in messages[(9, "手机号码")]
    assert "YYYY-MM-DD" in messages[(7, "报到日期")]
    assert len(members(stack)) == before

    # Dry run: the same report, status 200, nothing written.
    dry = upload(stack, data, "?dry_run=true")
    assert dry.status_code == 200 and dry.json()["rejected"] == 8 and not dry.json()["written"]
    assert len(members(stack)) == before
    good_dry = upload(stack, csv_bytes("钱一,13911111201,县财政局,城关社区,,"), "?dry_run=true")
    assert good_dry.json()["accepted"] == 1 and not good_dry.json()["written"]
    assert by_phone(stack, "13911111201") == []

    # Partial: the good row is written, the bad ones reported.
    part = upload(stack, data, "?partial=true")
    assert part.status_code == 200 and part.json()["written"] is True
    assert part.json()["accepted"] == 1 and part.json()["rejected"] == 8
    assert len(members(stack)) == before + 1
    assert by_phone(stack, "13911111101")[0]["name"] == "赵一"


@pytest.mark.parametrize(
    ("encoding", "bom"), [("gb18030", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b"")]
)
def test_encodings_offices_use(
    stack: Stack, county: dict[str, Any], encoding: str, bom: bytes
) -> None:
    phone = {"gb18030": "13922222201", "utf-8": "13922222202", "gbk": "13922222203"}[encoding]
    # 㐀 is outside GBK but inside GB18030: a real reason to decode as GB18030.
    name = "欧阳㐀" if encoding == "gb18030" else "欧阳娜娜"
    data = bom + csv_bytes(
        f"{name},{phone},县财政局,城关社区,第一网格,2021-12-01", encoding=encoding
    )
    r = upload(stack, data)
    assert r.status_code == 200, r.text
    assert by_phone(stack, phone)[0]["name"] == name


def test_xlsx_with_numeric_phone_and_real_date_cells(stack: Stack, county: dict[str, Any]) -> None:
    t = stack.client.get("/v1/imports/members/template?format=xlsx", headers=stack.admin)
    assert t.status_code == 200 and t.content.startswith(b"PK")
    wb = openpyxl.load_workbook(io.BytesIO(t.content))
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]][:6] == HEADER.split(",")
    ws.append(
        [
            "孙红",
            13933333301,
            "县教育局",
            "东关社区",
            "第一网格",
            date(2023, 5, 6),
            "教育局第二支部",
        ]
    )
    ws.append(["周明", "13933333302", "县教育局", "东关社区", None, "2023-05-07"])
    out = io.BytesIO()
    wb.save(out)
    r = upload(stack, out.getvalue(), filename="名单.xlsx")
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    sun = by_phone(stack, "13933333301")[0]
    assert sun["reported_on"] == "2023-05-06" and sun["party_branch"] == "教育局第二支部"
    assert sun["grid_id"] == county["g2"]["id"]

    csv_t = stack.client.get("/v1/imports/members/template?format=csv", headers=stack.admin)
    assert csv_t.content.startswith(b"\xef\xbb\xbf" + HEADER.encode())
    # The empty template itself is "header only": a clear error, not a silent success.
    r = upload(stack, csv_t.content)
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_rows"


def test_bad_files_get_clear_errors(stack: Stack, county: dict[str, Any]) -> None:
    cases = [
        (b"", 422, "empty_file"),
        (b"\r\n\r\n", 422, "empty_file"),
        ("姓名,电话,单位\r\n张伟,13900000001,县财政局\r\n".encode(), 422, "bad_header"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "unsupported_file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, 415, "unsupported_file"),
        (b"PK\x03\x04not really a zip", 415, "unsupported_file"),
        (b"\x00\x01\x02binary junk\x00", 415, "unsupported_file"),
    ]
    for data, status, code in cases:
        r = upload(stack, data)
        assert r.status_code == status and r.json()["error"]["code"] == code, (data[:20], r.text)
    r = upload(stack, "姓名,电话,单位\r\n".encode())
    message = r.json()["error"]["message"]
    for missing in ("手机号码", "工作单位", "居住社区", "网格", "报到日期"):
        assert missing in message
    assert "姓名" not in message.split("缺少这些列")[1].split("。")[0]

    r = stack.client.post(
        "/v1/imports/members", headers=stack.admin, files={"upload": ("a.csv", b"x")}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_file"
    r = stack.client.post("/v1/imports/members", headers=stack.admin, data={"file": "x"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "multipart_required"

    big = b"a" * (stack.settings.import_max_bytes + 1)
    t0 = time.monotonic()
    r = upload(stack, big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large", r.text[:200]
    assert time.monotonic() - t0 < 10


def test_scope_organizer_only_into_their_community(stack: Stack, county: dict[str, Any]) -> None:
    org = stack.token("organizer", county["c1"]["id"])
    data = csv_bytes(
        "吴一,13944444401,县财政局,城关社区,第一网格,2022-01-01",
        "吴二,13944444402,县财政局,东关社区,,2022-01-01",
        # Known in another community: an organizer may not pull them over.
        "李娜,13900000002,县教育局,城关社区,,",
    )
    r = upload(stack, data, headers=org)
    assert r.status_code == 422
    got = {(e["row"], e["column"]) for e in r.json()["errors"]}
    assert got == {(3, "居住社区"), (4, "手机号码")}
    r = upload(stack, data, "?partial=true", headers=org)
    assert r.status_code == 200 and r.json()["created"] == 1
    assert by_phone(stack, "13944444401")[0]["updated_by"] == f"organizer:{county['c1']['id']}"
    assert by_phone(stack, "13900000002")[0]["community_id"] == county["c2"]["id"]

    for role, subject in (
        ("hr", county["u1"]["id"]),
        ("member", by_phone(stack, "13944444401")[0]["id"]),
    ):
        r = upload(stack, data, headers=stack.token(role, subject))
        assert r.status_code == 403, role


def test_a_county_sized_file_imports_in_seconds(stack: Stack, county: dict[str, Any]) -> None:
    rows = [
        f"党员{i:04d},{13800000000 + i},{'县财政局' if i % 2 else '县教育局'},"
        f"{'城关社区' if i % 3 else '东关社区'},第一网格,2022-03-{1 + i % 28:02d}"
        for i in range(2280)
    ]
    data = csv_bytes(*rows)
    t0 = time.monotonic()
    r = upload(stack, data)
    first = time.monotonic() - t0
    assert r.status_code == 200, r.text[:500]
    assert r.json()["created"] == 2280
    assert first < 15, f"2,280 rows took {first:.1f}s"
    t0 = time.monotonic()
    again = upload(stack, data).json()
    assert again["unchanged"] == 2280 and again["created"] == 0
    assert time.monotonic() - t0 < 10
    total = stack.client.get("/v1/members?q=党员&limit=1", headers=stack.admin).json()["total"]
    assert total == 2280
