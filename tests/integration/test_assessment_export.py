"""The assessment file (the whole unit read in one pass) lists exactly the rows the JSON pages list
(each page reads only its own members), in member order, with the same figures; and the rules the
whole-unit reads must keep are checked by hand on a unit with every kind of member.

The year's rollup, feedback and wishes rows are written straight into the warehouse (as the
sink writes them), so the case does not wait for a year of scans: a member who served for the
unit and moved away, ratings and summaries from this unit and from another, wishes in and out of
the year or not done, a member reported in the middle of the year, and members with nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from openpyxl import load_workbook

from services import topics
from services.processors import ROUTES
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CST = timezone(timedelta(hours=8))
# The last complete ISO year: every week of it has passed, so required weeks are the whole year.
YEAR = datetime.now(CST).date().isocalendar()[0] - 1
WEEKS_IN_YEAR = date(YEAR, 12, 28).isocalendar()[1]

# The sink's own columns for the table these tests fill directly.
MEMBER_WEEKS = ROUTES[topics.MEMBER_WEEKS.name].columns
FEEDBACK = [
    "feedback_id",
    "version",
    "kind",
    "member_id",
    "unit_id",
    "community_id",
    "period",
    "period_start",
    "period_end",
    "rating",
    "grade",
    "comment",
    "author_role",
    "author_id",
    "recorded_at",
]
WISHES = [
    "wish_id",
    "revision",
    "status",
    "community_id",
    "title",
    "fulfilled_by_member_id",
    "created_at",
    "updated_at",
    "done_at",
    "last_event_id",
]


def week(n: int, year: int = YEAR) -> str:
    return f"{year}-W{n:02d}"


SESSIONS = [
    "session_id",
    "revision",
    "member_id",
    "unit_id",
    "member_community_id",
    "station_id",
    "station_community_id",
    "start",
    "end",
    "credited_seconds",
    "status",
    "flags",
]


def sessions_of(row: list[Any]) -> list[list[Any]]:
    """Sessions adding up to one weekly row (the Wednesday of its week, 10:00 local); a row
    with time but no counted session is an unadjusted anomaly; a row's version is the
    sessions' revision, so a later version replaces the earlier sessions."""
    wk, member, station, station_c, member_c, _, unit_id, n, seconds, version, _ = row
    y, w = wk.split("-W")
    start = datetime.combine(
        date.fromisocalendar(int(y), int(w), 3), datetime.min.time(), CST
    ) + timedelta(hours=10)
    count = max(int(n), 1)
    out = []
    for i in range(count):
        secs = seconds // count + (seconds % count if i == 0 else 0)
        out.append(
            [
                f"s-{member}-{wk}-{station}-{i}",
                version,
                member,
                unit_id,
                member_c,
                station,
                station_c,
                start + timedelta(hours=i),
                start + timedelta(hours=i, seconds=secs),
                secs,
                "closed",
                [] if n else ["checkout_without_checkin"],
            ]
        )
    return out


@pytest.fixture(scope="module")
def unit(stack: Stack) -> dict[str, Any]:
    u = stack.create("/v1/units", {"name": "县审计局"})["id"]
    other = stack.create("/v1/units", {"name": "县统计局"})["id"]
    c = stack.create("/v1/communities", {"name": "东关社区"})["id"]

    def member(name: str, unit_id: str = u, **extra: Any) -> str:
        body = {"name": name, "unit_id": unit_id, "community_id": c, **extra}
        return str(stack.create("/v1/members", body)["id"])

    m = {
        "full": member(
            "全勤",
            reported_on=f"{YEAR - 1}-06-01",
            phone="13912345678",
            party_branch="审计局第一党支部",
        ),
        "mid": member("年中", reported_on=date.fromisocalendar(YEAR, 27, 3).isoformat()),
        "moved": member("调离", other),  # served for this unit, belongs to the other one now
        "elsewhere": member("外单位", other),  # served for the other unit only
        **{f"idle{i}": member(f"未服务{i}") for i in range(5)},
    }
    now = datetime.now(UTC)

    def mw(who: str, n: int, station: str, sessions: int, seconds: int, **kw: Any) -> list[Any]:
        return [
            kw.get("week", week(n)),
            m[who],
            station,
            c,
            c,
            None,
            kw.get("unit", u),
            sessions,
            seconds,
            kw.get("version", 1),
            now,
        ]

    rows = [
        mw("full", 2, "st1", 1, 3600),
        mw("full", 2, "st2", 2, 5400),  # two stations, one week
        mw("full", 9, "st1", 1, 1800, version=1),
        mw("full", 9, "st1", 1, 2700, version=2),  # replaces the row above
        mw("full", 30, "st1", 0, 900),  # credited time, no counted session: not an active week
        mw("full", 52, "st1", 1, 3600, week=week(52, YEAR - 1)),  # the year before
        mw("mid", 40, "st1", 1, 7200),
        mw("moved", 3, "st1", 1, 3600),
        mw("moved", 20, "st1", 1, 1800, unit=other),  # after the move: the other unit's
        mw("elsewhere", 5, "st1", 1, 3600, unit=other),
    ]
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    wh.insert("member_weeks", rows, MEMBER_WEEKS)
    # The sessions behind those weekly rows, as the sink writes them: the assessment's hours and
    # sessions are the calendar year's sessions, its active weeks the ISO year's weekly rows.
    wh.insert("sessions", [s for r in rows for s in sessions_of(r)], SESSIONS)

    def fb(i: int, kind: str, who: str, unit_id: str, month: int, **kw: Any) -> list[Any]:
        start = date(YEAR, month, 1)
        return [
            f"fb{i}",
            1,
            kind,
            m[who],
            unit_id,
            c,
            f"{YEAR}-{month:02d}",
            start,
            start + timedelta(days=27),
            kw.get("rating"),
            kw.get("grade"),
            kw.get("comment", ""),
            "organizer",
            c,
            now,
        ]

    wh.insert(
        "feedback",
        [
            fb(1, "member_service", "full", u, 3, rating=4),
            fb(2, "member_service", "full", u, 5, rating=5),
            fb(3, "member_service", "full", u, 6),  # no rating
            fb(4, "member_service", "full", other, 7, rating=1),  # about another unit
            fb(5, "unit_summary", "full", u, 9, grade="优秀", comment="九月"),
            fb(6, "unit_summary", "full", u, 4, grade="良好", comment="四月"),
            fb(7, "unit_summary", "full", u, 10, comment="十月，未评等次"),
            fb(8, "unit_summary", "moved", u, 2, grade="一般"),
            fb(9, "member_service", "moved", u, 2, rating=2),
        ],
        FEEDBACK,
    )
    mid_year = datetime(YEAR, 7, 1, 4, tzinfo=UTC)

    def wish(i: int, who: str, status: str, done: datetime) -> list[Any]:
        return [f"wish{i}", 3, status, c, "心愿", m[who], done, done, done, f"ev{i}"]

    wh.insert(
        "wishes",
        [
            wish(1, "full", "done", mid_year),
            wish(2, "full", "confirmed", mid_year),
            wish(3, "full", "accepted", mid_year),  # not done
            wish(4, "full", "done", mid_year.replace(year=YEAR - 1)),  # the year before
            wish(5, "moved", "done", mid_year),
            wish(6, "elsewhere", "done", mid_year),
        ],
        WISHES,
    )
    return {"unit": u, "other": other, "community": c, "m": m}


def _json_pages(stack: Stack, unit_id: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = stack.client.get(
            f"/v1/units/{unit_id}/assessments",
            params={"year": YEAR, "limit": limit, "offset": offset},
            headers=stack.admin,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == 8
        items += body["items"]
        if len(body["items"]) < limit:
            return items
        offset += limit


def test_whole_unit_file_equals_the_pages_and_the_hand_count(
    stack: Stack, unit: dict[str, Any]
) -> None:
    u, m = unit["unit"], unit["m"]
    items = _json_pages(stack, u, limit=3)
    ids = [i["member_id"] for i in items]
    # Everyone of the unit's year once, in member order; the one who serves elsewhere is not.
    assert ids == sorted(set(m.values()) - {m["elsewhere"]})
    by = {i["member_id"]: i for i in items}

    full = by[m["full"]]
    assert (full["hours"], full["sessions"], full["active_weeks"]) == (3.5, 4, 2)
    assert full["required_weeks"] == WEEKS_IN_YEAR
    assert (full["wishes_fulfilled"], full["feedback_avg"], full["evaluation"]) == (2, 4.5, "优秀")
    assert [s["period"] for s in full["summaries"]] == [f"{YEAR}-04", f"{YEAR}-09", f"{YEAR}-10"]
    mid = by[m["mid"]]
    assert (mid["hours"], mid["active_weeks"]) == (2.0, 1)
    assert mid["required_weeks"] == WEEKS_IN_YEAR - 26
    moved = by[m["moved"]]
    assert (moved["name"], moved["hours"], moved["sessions"]) == ("调离", 1.0, 1)
    assert (moved["wishes_fulfilled"], moved["feedback_avg"], moved["evaluation"]) == (
        1,
        2.0,
        "一般",
    )
    idle = by[m["idle0"]]
    assert (idle["hours"], idle["active_weeks"], idle["feedback_avg"], idle["evaluation"]) == (
        0.0,
        0,
        None,
        None,
    )
    assert idle["required_weeks"] == WEEKS_IN_YEAR and idle["summaries"] == []

    # The CSV: the same rows, in the same order, with every figure.
    r = stack.client.get(
        f"/v1/units/{u}/assessments", params={"year": YEAR, "format": "csv"}, headers=stack.admin
    )
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, data = rows[0], rows[1:]
    # Name first, the id last; the office's columns: phone masked, party branch, report date.
    assert header[:5] == ["姓名", "手机号码", "党支部", "报到日期", "居住社区"]
    assert header[-2:] == ["规则版本", "成员编号"]
    office = {
        "全勤": ["139****5678", "审计局第一党支部", f"{YEAR - 1}-06-01"],
        "年中": ["", "", date.fromisocalendar(YEAR, 27, 3).isoformat()],
    }

    def text(v: Any) -> str:
        return "" if v is None else str(v)

    want = [
        [
            i["name"],
            *office.get(i["name"], ["", "", ""]),
            "东关社区",
            *(text(i[k]) for k in ("hours", "sessions", "active_weeks", "required_weeks")),
            text(i["excused_weeks"]),
            *(text(i[k]) for k in ("wishes_fulfilled", "feedback_avg", "evaluation")),
            text(i["score"]),
            i["grade"],
            "1",
            i["member_id"],
        ]
        for i in items
    ]
    assert data == want

    # The XLSX: the same cells, typed.
    x = stack.client.get(
        f"/v1/units/{u}/assessments", params={"year": YEAR, "format": "xlsx"}, headers=stack.admin
    )
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    table = [list(row) for row in ws.iter_rows(values_only=True)]
    assert table[0] == header
    assert [row[-1] for row in table[1:]] == ids
    # The header stays in view, the columns are wide enough to read.
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width == 10 and ws.column_dimensions["Q"].width == 22
    for row, i in zip(table[1:], items, strict=True):
        assert row[5:14] == [
            i["hours"],
            i["sessions"],
            i["active_weeks"],
            i["required_weeks"],
            i["excused_weeks"],
            i["wishes_fulfilled"],
            i["feedback_avg"],
            i["evaluation"],
            i["score"],
        ]

    # The other unit's file: its own member and the mover, with the other unit's service only.
    other = stack.client.get(
        f"/v1/units/{unit['other']}/assessments",
        params={"year": YEAR, "format": "csv"},
        headers=stack.admin,
    )
    other_rows = list(csv.reader(io.StringIO(other.content.decode("utf-8-sig"))))[1:]
    assert {row[0]: (row[5], row[10]) for row in other_rows} == {
        "调离": ("0.5", "1"),
        "外单位": ("1.0", "1"),
    }
