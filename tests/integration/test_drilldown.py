"""The drill-down (county → town → community → grid, and by unit) and the check-in heatmap.

A county of two towns is built through the API; its weeks' roll-up rows are written straight
into `member_weeks` (as the sink writes the agent's records), scans into `checkins` (the
heatmap's roll-up is fed by its materialised view), a wish into `wishes`. Every level is
checked by hand, against the community's own weekly endpoint (the one read layer), and for
adding up to its parent.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from services import topics
from services.events import ActivityFields, ExcusalRecorded, SignupFields
from services.processors import ROUTES, route_for_event
from services.processors.activities import ACTIVITY_COLUMNS, SIGNUP_COLUMNS
from services.publisher import Publisher
from services.reads.slot_weeks import tallies
from services.slot_weeks_job import Tallier, tally
from services.timeutil import LOCAL_TZ, iso_week
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

NOW = datetime.now(UTC)
WEEK = iso_week(NOW - timedelta(days=21))
_Y, _W = WEEK.split("-W")
MONDAY = date.fromisocalendar(int(_Y), int(_W), 1)
WEEK_END = MONDAY + timedelta(days=6)
WEEKS = [iso_week(NOW - timedelta(days=21 + 7 * i)) for i in range(7, -1, -1)]


def _wh(stack: Stack) -> Any:
    return stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    t1 = stack.create("/v1/towns", {"name": "巩昌镇"})["id"]
    t2 = stack.create("/v1/towns", {"name": "文峰镇"})["id"]
    empty_town = stack.create("/v1/towns", {"name": "柯寨镇"})["id"]
    u1 = stack.create("/v1/units", {"name": "县财政局"})["id"]
    u2 = stack.create("/v1/units", {"name": "县医院"})["id"]
    a = stack.create("/v1/communities", {"name": "南城社区", "town_id": t1})["id"]
    b = stack.create("/v1/communities", {"name": "西城社区", "town_id": t1})["id"]
    c = stack.create("/v1/communities", {"name": "交通社区", "town_id": t2})["id"]
    g1 = stack.create("/v1/grids", {"community_id": a, "name": "第1网格", "level": 4})["id"]
    g2 = stack.create("/v1/grids", {"community_id": a, "name": "第2网格", "level": 4})["id"]
    g1a = stack.create(
        "/v1/grids", {"community_id": a, "name": "1号楼", "level": 5, "parent_id": g1}
    )["id"]
    st_a = stack.create(
        "/v1/stations", {"community_id": a, "name": "南城党群服务站", "kind": "service_station"}
    )["id"]
    st_c = stack.create(
        "/v1/stations", {"community_id": c, "name": "交通党员驿站", "kind": "member_post"}
    )["id"]

    def member(name: str, unit: str, community: str, **extra: Any) -> str:
        body = {"name": name, "unit_id": unit, "community_id": community, **extra}
        return str(stack.create("/v1/members", body)["id"])

    later = (WEEK_END + timedelta(days=1)).isoformat()
    early = (MONDAY - timedelta(days=100)).isoformat()
    m = {
        "a1": member("甲一", u1, a, grid_id=g1, reported_on=early),  # served this week
        "a2": member("甲二", u1, a, grid_id=g1a, reported_on=early),  # level 5: grid 1's
        "a3": member("甲三", u2, a, grid_id=g2, reported_on=early),  # served 5 weeks ago only
        "a4": member("甲四", u2, a, reported_on=later),  # reported after the week
        "b1": member("乙一", u1, b, reported_on=early),  # served 2 weeks ago: not lapsed
        "c1": member("丙一", u2, c),  # no report date: registered, not "reported"
        "c2": member("丙二", u1, c, reported_on=early),
    }
    week_cols = ROUTES[topics.MEMBER_WEEKS.name].columns

    def row(who: str, week: str, sessions: int, seconds: int, grid: str | None = None) -> list[Any]:
        community = {"a": a, "b": b, "c": c}[who[0]]
        unit = {"a1": u1, "a2": u1, "a3": u2, "a4": u2, "b1": u1, "c1": u2, "c2": u1}[who]
        return [week, m[who], "st_x", community, community, grid, unit, sessions, seconds, 1, NOW]

    rows = [
        row("a1", WEEK, 2, 5400, g1),
        row("a2", WEEK, 1, 3600, g1a),
        row("a3", WEEKS[-6], 1, 1800, g2),
        row("b1", WEEKS[-3], 1, 3600),
        row("b1", WEEK, 0, 600),  # credited time, no counted session
        row("c1", WEEK, 1, 7200),
        row("c2", WEEKS[-2], 1, 3600),
    ]
    _wh(stack).insert("member_weeks", rows, week_cols)

    # Scans: Tuesday 09:xx local at 南城's station, twice delivered; one at 交通 on Sunday 20:xx.
    tuesday_9 = datetime.combine(MONDAY + timedelta(days=1), datetime.min.time()).replace(
        hour=9, minute=15, tzinfo=LOCAL_TZ
    )
    sunday_20 = datetime.combine(WEEK_END, datetime.min.time()).replace(
        hour=20, minute=5, tzinfo=LOCAL_TZ
    )
    scan_cols = ROUTES[topics.CHECKINS.name].columns

    def scan(
        eid: str, who: str, station: str, community: str, at: datetime, action: str
    ) -> list[Any]:
        row = {
            "event_id": eid,
            "member_id": m[who],
            "station_id": station,
            "station_community_id": community,
            "unit_id": u1,
            "member_community_id": community,
            "action": action,
            "client_event_id": eid,
            "scanned_at": at,
            "received_at": at,
            "kafka_partition": 0,
            "kafka_offset": 0,
        }
        # The route's other columns (who assisted, the phone's id, ...) as the sink's defaults.
        return [row.get(c, "" if c == "assist" else None) for c in scan_cols]

    scans = [
        scan("e1", "a1", st_a, a, tuesday_9, "in"),
        scan("e2", "a2", st_a, a, tuesday_9 + timedelta(minutes=10), "in"),
        scan("e3", "a2", st_a, a, tuesday_9 + timedelta(minutes=50), "out"),  # not a check-in
        scan("e4", "c1", st_c, c, sunday_20, "in"),
    ]
    _wh(stack).insert("checkins", scans, scan_cols)
    _wh(stack).insert("checkins", scans[:2], scan_cols)  # re-delivered: the same scans

    wish_cols = ROUTES[topics.WISHES.name].columns
    done = datetime.combine(MONDAY + timedelta(days=2), datetime.min.time()).replace(
        hour=10, tzinfo=LOCAL_TZ
    )
    wish = dict.fromkeys(wish_cols)
    wish.update(
        wish_id="w1",
        revision=3,
        status="done",
        community_id=a,
        title="修水管",
        description="",
        resident_name="",
        resident_contact="",
        rating_comment="",
        created_at=done,
        updated_at=done,
        done_at=done,
        fulfilled_by_member_id=m["a1"],
        fulfilled_by_unit_id=u1,
        last_event_id="x",
    )
    _wh(stack).insert("wishes", [[wish[k] for k in wish_cols]], wish_cols)

    # 丙二 (交通, did not serve the week) was excused for it, and for the week before (which
    # they served: served wins), asked and approved by 交通; 甲三 (南城) for a week of the trend
    # they did not serve, approved by 南城.
    asked = NOW - timedelta(days=60)
    for rid, who, community, unit, weeks in (
        ("exc_drill", "c2", c, u1, (WEEK, WEEKS[-2])),
        ("exc_drill_a3", "a3", a, u2, (WEEKS[-4],)),
    ):
        excusal = {
            "request_id": rid,
            "member_id": m[who],
            "community_id": community,
            "unit_id": unit,
        }
        for e in (
            ExcusalRecorded(
                event_id=f"{rid}-request", occurred_at=asked, action="request", weeks=weeks,
                reason="training", actor_role="member", actor_id=m[who], **excusal,
            ),
            ExcusalRecorded(
                event_id=f"{rid}-approve", occurred_at=asked + timedelta(hours=2),
                action="approve", actor_role="organizer", actor_id=community, **excusal,
            ),
        ):  # fmt: skip
            route = route_for_event(e)
            _wh(stack).insert(route.table, [route.to_row(e)], route.columns)

    _slots(stack, m, {"a": a, "c": c, "st_a": st_a, "st_c": st_c, "u1": u1, "u2": u2})
    return {
        "t1": t1, "t2": t2, "empty_town": empty_town, "u1": u1, "u2": u2, "a": a, "b": b,
        "c": c, "g1": g1, "g2": g2, "st_a": st_a, "st_c": st_c, "m": m,
    }  # fmt: skip


def _local(day: date, hour: int) -> datetime:
    return datetime.combine(day, datetime.min.time()).replace(hour=hour, tzinfo=LOCAL_TZ)


def _slots(stack: Stack, m: dict[str, str], ids: dict[str, str]) -> None:
    """Service slots, sign-ups and sessions, then the slot-attendance roll-up as its job tallies
    it (published to Kafka, written by the sink). The week's no-shows: 甲二 (南城, placed, no
    scan) and 丙一, 丙二 (交通); 甲一 attended (a session at the station over the slot); 甲三
    withdrew; a cancelled slot and 甲二's no-show a week earlier do not count in the week."""
    wh = _wh(stack)
    wed, thu = MONDAY + timedelta(days=2), MONDAY + timedelta(days=3)

    def slot(aid: str, community: str, station: str, day: date, status: str = "open") -> Any:
        start = _local(day, 14)
        return ActivityFields(
            community_id=community, title="清扫楼道", description="", station_id=station,
            grid_id=None, starts_at=start, ends_at=start + timedelta(hours=2), capacity=10,
            signup_deadline=start, cancel_deadline=start - timedelta(hours=2), unit_ids=(),
            rule_id=None, activity_id=aid, revision=2, status=status, created_by=community,
            created_at=start - timedelta(days=5), updated_at=start - timedelta(days=5),
            last_event_id=f"{aid}-e",
        )  # fmt: skip

    acts = [
        slot("act_a", ids["a"], ids["st_a"], wed),
        slot("act_c", ids["c"], ids["st_c"], thu),
        slot("act_gone", ids["a"], ids["st_a"], thu, status="cancelled"),
        slot("act_before", ids["a"], ids["st_a"], wed - timedelta(weeks=1)),
    ]
    wh.insert(
        "activities",
        [[list(v) if isinstance(v, tuple) else v for v in (getattr(a, k) for k in ACTIVITY_COLUMNS)]
         for a in acts],
        ACTIVITY_COLUMNS,
    )  # fmt: skip
    places = [
        ("act_a", "a1", ids["u1"], "placed"),
        ("act_a", "a2", ids["u1"], "placed"),
        ("act_a", "a3", ids["u2"], "withdrawn"),
        ("act_c", "c1", ids["u2"], "placed"),
        ("act_c", "c2", ids["u1"], "placed"),
        ("act_gone", "a1", ids["u1"], "placed"),
        ("act_before", "a2", ids["u1"], "placed"),
    ]
    signup_rows = []
    for seq, (aid, who, unit, status) in enumerate(places, 1):
        at = NOW - timedelta(days=40)
        s = SignupFields(
            activity_id=aid, member_id=m[who], unit_id=unit, community_id=ids[who[0]],
            version=1, status=status, seq=seq, signed_up_at=at, updated_at=at,
            last_event_id=f"su{seq}", signup_event_id=f"su{seq}",
        )  # fmt: skip
        signup_rows.append([*(getattr(s, k) for k in SignupFields.model_fields), f"cmd{seq}"])
    wh.insert("activity_signups", signup_rows, SIGNUP_COLUMNS)
    start = _local(wed, 13) + timedelta(minutes=50)
    session = {
        "session_id": "sess_slot_a1", "revision": 2, "member_id": m["a1"], "unit_id": ids["u1"],
        "member_community_id": ids["a"], "station_id": ids["st_a"],
        "station_community_id": ids["a"], "start": start, "end": start + timedelta(hours=2),
        "credited_seconds": 7200, "status": "closed", "flags": [], "checkin_event_id": "ci_a1",
        "checkout_event_id": "co_a1", "member_grid_id": None, "voided": 0, "counted": 1,
        "absorbed_event_ids": [],
    }  # fmt: skip
    cols = ROUTES[topics.SESSIONS.name].columns
    wh.insert("sessions", [[session[k] for k in cols]], cols)

    settings = stack.settings.model_copy(update={"slot_weeks_look_back": 5})
    publisher = Publisher(settings)
    try:
        assert Tallier(settings, wh, publisher).run_once() == 5
        stack.wait_for(lambda: len(tallies(wh, WEEK)) == 4, timeout=60)
        stack.wait_for(lambda: len(tallies(wh, WEEKS[-2])) == 1, timeout=60)
    finally:
        publisher.close()


def _get(
    stack: Stack, path: str, headers: dict[str, str] | None = None, **params: str | None
) -> Any:
    query = {k: v for k, v in {"week": WEEK, **params}.items() if v is not None}
    r = stack.client.get(path, params=query, headers=headers or stack.admin)
    assert r.status_code == 200, r.text
    return r.json()


def _fig(row: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("registered", "served", "hours", "active", "reported", "wishes_fulfilled", "lapsed")
    return tuple(row[k] for k in keys)


def test_the_county_by_town(stack: Stack, county: dict[str, Any]) -> None:
    body = _get(stack, "/v1/county/drilldown")
    assert body["by"] == "town" and body["lapsed_weeks"] == 4
    rows = {r["name"]: r for r in body["items"]}
    assert list(rows) == ["巩昌镇", "文峰镇", "柯寨镇"]
    # 巩昌镇 (南城 + 西城): registered 甲一 甲二 甲三 乙一 (甲四 reported after the week);
    # served 甲一 甲二; hours 1.5 + 1 + 乙一's 600 s; active 5, reported 4; the wish; lapsed:
    # 甲三 (last served 5 weeks ago). 乙一 served 2 weeks ago.
    assert _fig(rows["巩昌镇"]) == (4, 2, round(9600 / 3600, 2), 5, 4, 1, 1)
    assert rows["巩昌镇"]["rate"] == 0.5 and rows["巩昌镇"]["reported_rate"] == 0.8
    # 文峰镇 (交通): 丙一 served (no report date: registered, not reported), 丙二 served a week ago.
    assert _fig(rows["文峰镇"]) == (2, 1, 2.0, 2, 1, 0, 0)
    assert _fig(rows["柯寨镇"]) == (0, 0, 0.0, 0, 0, 0, 0)
    assert rows["巩昌镇"]["id"] == county["t1"]
    # The trend: 8 weeks, oldest first; this week last.
    trend = rows["巩昌镇"]["trend"]
    assert [p["week"] for p in trend] == WEEKS
    assert trend[-1]["served"] == 2 and trend[-3]["served"] == 1 and trend[-6]["served"] == 1
    assert _fig(body["total"]) == (6, 3, round(16800 / 3600, 2), 7, 5, 1, 1)


def test_each_level_adds_up_and_matches_the_weekly_read(
    stack: Stack, county: dict[str, Any]
) -> None:
    c = county
    town = _get(stack, f"/v1/towns/{c['t1']}/drilldown")
    assert town["by"] == "community"
    rows = {r["name"]: r for r in town["items"]}
    assert list(rows) == ["南城社区", "西城社区"]
    county_row = next(r for r in _get(stack, "/v1/county/drilldown")["items"] if r["id"] == c["t1"])
    assert _fig(town["total"]) == _fig(county_row)
    # 交通 (town 2): its excused member leaves the rate's base, as the weekly read does.
    t2 = _get(stack, f"/v1/towns/{c['t2']}/drilldown")["items"]
    jiaotong = next(r for r in t2 if r["id"] == c["c"])
    weekly = _get(stack, f"/v1/communities/{c['c']}/weekly")
    assert (jiaotong["excused"], jiaotong["served"], jiaotong["registered"]) == (1, 1, 2)
    assert jiaotong["rate"] == weekly["rate"] == 1.0
    by_town = {r["id"]: r for r in _get(stack, "/v1/county/drilldown")["items"]}
    assert by_town[c["t2"]]["excused"] == 1 and by_town[c["t1"]]["excused"] == 0
    for r in town["items"]:
        weekly = _get(stack, f"/v1/communities/{r['id']}/weekly")
        assert (r["registered"], r["served"], r["hours"], r["excused"], r["rate"]) == (
            weekly["members_registered"],
            weekly["members_served"],
            weekly["hours"],
            weekly["excused"],
            weekly["rate"],
        )
    grids = _get(stack, f"/v1/communities/{c['a']}/drilldown")
    assert grids["by"] == "grid"
    by_grid = {r["name"]: r for r in grids["items"]}
    # 甲二 lives in a level-5 grid of grid 1: grid 1's. 甲四 has no grid (the last row).
    assert list(by_grid) == ["第1网格", "第2网格", "未划分网格"]
    assert _fig(by_grid["第1网格"]) == (2, 2, 2.5, 2, 2, 1, 0)
    assert _fig(by_grid["第2网格"]) == (1, 0, 0.0, 1, 1, 0, 1)
    assert by_grid["未划分网格"]["id"] is None and by_grid["未划分网格"]["active"] == 1
    assert _fig(grids["total"]) == _fig(rows["南城社区"])


def test_by_unit_at_every_level(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    units = {r["name"]: r for r in _get(stack, "/v1/county/drilldown", by="unit")["items"]}
    # 县财政局: 甲一 甲二 乙一 丙二 registered; 甲一 甲二 served; hours 1.5+1+600 s; the wish.
    assert _fig(units["县财政局"]) == (4, 2, round(9600 / 3600, 2), 4, 4, 1, 0)
    # 县医院: 甲三 丙一 registered (甲四 reported later); 丙一 served.
    assert _fig(units["县医院"]) == (2, 1, 2.0, 3, 1, 0, 1)
    in_town = {
        r["name"]: r for r in _get(stack, f"/v1/towns/{c['t2']}/drilldown", by="unit")["items"]
    }
    assert _fig(in_town["县医院"]) == (1, 1, 2.0, 1, 0, 0, 0)


def test_the_heatmap_counts_each_check_in_once(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    body = _get(stack, "/v1/county/heatmap")
    assert body["weeks"] == WEEKS
    rows = {r["station_id"]: r for r in body["items"]}
    # Tuesday 09:00 is hour 24 + 9 of the local week; Sunday 20:00 is 6 * 24 + 20.
    assert rows[c["st_a"]]["counts"][33] == 2 and rows[c["st_a"]]["total"] == 2
    assert rows[c["st_c"]]["counts"][164] == 1 and rows[c["st_c"]]["total"] == 1
    town = _get(stack, f"/v1/towns/{c['t2']}/heatmap")
    assert [r["station_id"] for r in town["items"]] == [c["st_c"]]
    assert _get(stack, f"/v1/towns/{c['empty_town']}/heatmap")["items"] == []
    one = _get(stack, f"/v1/communities/{c['a']}/heatmap")
    assert [r["name"] for r in one["items"]] == ["南城党群服务站"]


def test_every_table_downloads(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    r = stack.client.get(
        f"/v1/towns/{c['t1']}/drilldown",
        params={"week": WEEK, "format": "csv"},
        headers=stack.admin,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0][:4] == ["社区", "登记党员数", "已服务人数", "本周服务率"]
    assert [ln[0] for ln in lines[1:]] == ["南城社区", "西城社区", "合计"]
    assert len(lines[0]) == 12 + 8 and lines[0][10] == "本周请假人数"
    assert lines[0][11] == "活动报名未到(次)" and [ln[11] for ln in lines[1:]] == ["1", "0", "1"]
    r = stack.client.get(
        "/v1/county/heatmap", params={"week": WEEK, "format": "xlsx"}, headers=stack.admin
    )
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    head = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    assert head[:3] == ["站点", "合计", "周一00时"] and len(head) == 2 + 168


def test_who_reads_which_rollup(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    county_office = stack.token("county", "county")
    town1, town2 = stack.token("town", c["t1"]), stack.token("town", c["t2"])
    org_a = stack.token("organizer", c["a"])
    cases = [
        ("/v1/county/drilldown", [(county_office, 200), (town1, 403), (org_a, 403)]),
        (f"/v1/towns/{c['t1']}/drilldown", [(county_office, 200), (town1, 200), (town2, 404)]),
        (f"/v1/communities/{c['a']}/drilldown", [(town1, 200), (town2, 404), (org_a, 200)]),
        (f"/v1/communities/{c['c']}/heatmap", [(town2, 200), (town1, 404), (org_a, 404)]),
        ("/v1/towns/town_0123456789abcdef/drilldown", [(county_office, 404), (town1, 404)]),
    ]
    for path, expected in cases:
        for headers, status in expected:
            r = stack.client.get(path, params={"week": WEEK}, headers=headers)
            assert r.status_code == status, (path, r.text)
    # A town office reads its own communities' desks, not another town's.
    assert stack.client.get(f"/v1/communities/{c['a']}/weekly", headers=town1).status_code == 200
    assert stack.client.get(f"/v1/communities/{c['c']}/weekly", headers=town1).status_code == 404
    assert stack.client.get(f"/v1/grids/{c['g1']}/weekly", headers=town1).status_code == 200
    # The county office reads every desk and changes nothing.
    assert (
        stack.client.get(f"/v1/communities/{c['c']}/weekly", headers=county_office).status_code
        == 200
    )
    r = stack.client.patch(f"/v1/towns/{c['t1']}", json={"name": "改名镇"}, headers=county_office)
    assert r.status_code == 403


def test_bad_input_is_a_422(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    for path, params in (
        ("/v1/county/drilldown", {"by": "grid"}),
        ("/v1/county/drilldown", {"by": "street"}),
        (f"/v1/towns/{c['t1']}/drilldown", {"by": "town"}),
        (f"/v1/communities/{c['a']}/drilldown", {"week": "2026-W99"}),
        ("/v1/county/heatmap", {"format": "pdf"}),
    ):
        r = stack.client.get(path, params=params, headers=stack.admin)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["error"]["code"]
    assert stack.client.get("/v1/county/drilldown").status_code == 401


def test_no_shows_at_every_level(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    by_town = {r["id"]: r for r in _get(stack, "/v1/county/drilldown")["items"]}
    # 甲二 in 巩昌镇 (南城); 丙一 and 丙二 in 文峰镇 (交通); nobody in 柯寨镇.
    assert [by_town[c[t]]["no_shows"] for t in ("t1", "t2", "empty_town")] == [1, 2, 0]
    town = _get(stack, f"/v1/towns/{c['t1']}/drilldown")
    assert {r["name"]: r["no_shows"] for r in town["items"]} == {"南城社区": 1, "西城社区": 0}
    grids = {r["name"]: r for r in _get(stack, f"/v1/communities/{c['a']}/drilldown")["items"]}
    assert grids["第1网格"]["no_shows"] == 1 and grids["第2网格"]["no_shows"] == 0  # 甲二: 1号楼
    units = {r["name"]: r for r in _get(stack, "/v1/county/drilldown", by="unit")["items"]}
    assert (units["县财政局"]["no_shows"], units["县医院"]["no_shows"]) == (2, 1)
    assert _get(stack, "/v1/county/drilldown")["total"]["no_shows"] == 3
    # The week before: 甲二's other no-show.
    before = _get(stack, "/v1/county/drilldown", week=WEEKS[-2])
    assert before["total"]["no_shows"] == 1
    # Tallied again, nothing changed: the job publishes nothing.
    assert tally(_wh(stack), NOW, 5) == []


def test_trend_points_leave_out_the_excused_as_the_weekly_read(
    stack: Stack, county: dict[str, Any]
) -> None:
    c = county
    for town in (c["t1"], c["t2"]):
        for r in _get(stack, f"/v1/towns/{town}/drilldown")["items"]:
            for point in r["trend"]:
                weekly = _get(stack, f"/v1/communities/{r['id']}/weekly", week=point["week"])
                assert (point["registered"], point["served"], point["excused"], point["rate"]) == (
                    weekly["members_registered"],
                    weekly["members_served"],
                    weekly["excused"],
                    weekly["rate"],
                ), (r["name"], point["week"])
    by_id = {r["id"]: r for r in _get(stack, f"/v1/towns/{c['t1']}/drilldown")["items"]}
    # 甲三 (南城) excused in a trend week they did not serve: out of that point's base.
    point = by_id[c["a"]]["trend"][-4]
    assert point["excused"] == 1 and point["rate"] == 0.0 and point["registered"] == 3
    jiaotong = _get(stack, f"/v1/towns/{c['t2']}/drilldown")["items"][0]
    # 丙二 served the week before although excused: served wins, nobody left out.
    assert jiaotong["trend"][-2]["excused"] == 0 and jiaotong["trend"][-2]["rate"] == 0.5
    assert jiaotong["trend"][-1]["excused"] == 1 and jiaotong["trend"][-1]["rate"] == 1.0


def test_the_heatmap_window(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    one = _get(stack, "/v1/county/heatmap", weeks="1")
    assert one["weeks"] == [WEEK]
    assert {r["station_id"]: r["total"] for r in one["items"]}[c["st_a"]] == 2
    year = _get(stack, "/v1/county/heatmap", weeks="52")
    assert len(year["weeks"]) == 52 and year["weeks"][-1] == WEEK
    span = stack.client.get(
        "/v1/county/heatmap", params={"from": WEEKS[0], "to": WEEK}, headers=stack.admin
    )
    assert span.status_code == 200 and span.json()["weeks"] == WEEKS
    # A window after the week's scans holds none of them.
    later = iso_week(NOW)
    after = _get(stack, f"/v1/towns/{c['t2']}/heatmap", week=later, weeks="2")
    assert after["weeks"][-1] == later and [r["total"] for r in after["items"]] == [0]
    r = stack.client.get(
        f"/v1/communities/{c['a']}/heatmap",
        params={"from": WEEK, "to": WEEK, "format": "csv"},
        headers=stack.admin,
    )
    assert r.status_code == 200 and f"{WEEK}-{WEEK}" in r.headers["content-disposition"]
    bad: list[tuple[dict[str, str], str, str]] = [
        ({"weeks": "0"}, "weeks", ""),
        ({"weeks": "53"}, "weeks", ""),
        ({"weeks": "many"}, "weeks", ""),
        ({"from": WEEK}, "to", "invalid_window"),
        ({"to": WEEK}, "from", "invalid_window"),
        ({"from": WEEK, "to": WEEKS[0]}, "from", "invalid_window"),
        ({"from": "2024-W01", "to": "2025-W10"}, "to", "invalid_window"),
        ({"from": WEEKS[0], "to": WEEK, "weeks": "4"}, "from", "invalid_window"),
        ({"from": "2026-W99", "to": WEEK}, "from", "invalid_week"),
    ]
    for params, field, code in bad:
        r = stack.client.get("/v1/county/heatmap", params=params, headers=stack.admin)
        assert r.status_code == 422, (params, r.text)
        err = r.json()["error"]
        assert field in err["message"], (params, err)
        assert not code or err["code"] == code, (params, err)


def test_a_town_office_reads_its_members(stack: Stack, county: dict[str, Any]) -> None:
    c, m = county, county["m"]
    town1, town2 = stack.token("town", c["t1"]), stack.token("town", c["t2"])
    for path in ("", "/hours", "/sessions", "/weekly", "/excusals"):
        mine = stack.client.get(f"/v1/members/{m['a1']}{path}", headers=town1)
        assert mine.status_code == 200, (path, mine.text)
        other = stack.client.get(f"/v1/members/{m['a1']}{path}", headers=town2)
        assert other.status_code == 404, (path, other.text)
        # The 404 of a member that does not exist: the id's existence does not leak.
        assert other.json()["error"]["code"] == "member_not_found"
    # Another town's member answers as one that does not exist.
    assert stack.client.get(f"/v1/members/{m['c1']}", headers=town1).status_code == 404
    assert stack.client.get(f"/v1/members/{m['c1']}", headers=town2).status_code == 200
    # Reads only: no change, no phone in full.
    r = stack.client.patch(f"/v1/members/{m['a1']}", json={"name": "改名"}, headers=town1)
    assert r.status_code == 403
    r = stack.client.get(f"/v1/members/{m['a1']}/phone", headers=town1)
    assert r.status_code == 404
    # A member with a phone, in a community of the third town: its office reads them with the
    # phone masked; town 1's office does not read them.
    d = stack.create("/v1/communities", {"name": "柯寨社区", "town_id": c["empty_town"]})["id"]
    body = {"name": "丁一", "unit_id": c["u1"], "community_id": d, "phone": "13812340009"}
    with_phone = stack.create("/v1/members", body)["id"]
    town3 = stack.token("town", c["empty_town"])
    r = stack.client.get(f"/v1/members/{with_phone}", headers=town3)
    assert r.status_code == 200 and r.json()["phone"] == "138****0009", r.text
    assert "13812340009" not in r.text
    assert stack.client.get(f"/v1/members/{with_phone}", headers=town1).status_code == 404


def test_a_change_after_the_week_leaves_its_figures(stack: Stack, county: dict[str, Any]) -> None:
    # Runs last: it changes the registry. 甲一 leaves today and 乙一 moves to 交通 (甲四 has reported by now): the week's
    # figures stand as the registry stood then (the trend is read a week at a time across it).
    c = county
    before = _get(stack, "/v1/county/drilldown")
    for member, body in (
        (c["m"]["a1"], {"status": "left"}),
        (c["m"]["b1"], {"community_id": c["c"]}),
    ):
        r = stack.client.patch(f"/v1/members/{member}", json=body, headers=stack.admin)
        assert r.status_code == 200, r.text
    after = _get(stack, "/v1/county/drilldown")
    assert [(_fig(r), r["trend"]) for r in after["items"]] == [
        (_fig(r), r["trend"]) for r in before["items"]
    ]
    # This week is another matter: the current registry counts.
    now = _get(stack, "/v1/county/drilldown", week=iso_week(NOW))
    rows = {r["name"]: r for r in now["items"]}
    assert rows["巩昌镇"]["registered"] == 3 and rows["文峰镇"]["registered"] == 3
