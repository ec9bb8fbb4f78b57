"""Access that holds: every operation of the API, called by every kind of caller.

Two of everything: units U1/U2, towns T1/T2, communities C1 (in T1) and C2 (in T2) (a grid and
a station each), members M1 (U1/C1) and M2 (U2/C2), the county office, and in scope 1 a served session, wishes in every state, resources, a
project, a campaign, feedback. Each operation of the OpenAPI document has a row in CASES naming
who may call it; a row is required (`test_every_operation_has_a_case`), so an endpoint added
later without one fails the suite. For each row:

- no token: 401; a token with a role or a scope that does not fit: 403 or 404, nothing
  published to Kafka nor written to ClickHouse, and nothing of scope 1 in the answer;
- every entitled caller: the documented success status (so the case is known to be valid);
- a guessed id of the right shape answers 404, and a refused caller gets the same answer for a
  real id of another scope as for a guessed one (existence does not leak), unless the row says
  why the caller may know the object exists.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest

from api.main import create_app
from services.settings import Settings
from services.tokens import _key, issue_bearer, sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PRINCIPALS = ("m1", "m2", "org1", "org2", "hr1", "hr2", "admin", "county", "town1", "town2")
ALL = frozenset(PRINCIPALS)
SCOPE1 = frozenset({"m1", "org1", "hr1", "admin"})
# The county office reads what organizers read, everywhere; a town office its communities' desks
# (judged by the community's town) and the roll-ups of its town.
COUNTY = frozenset({"county"})
OFFICES = frozenset({"county", "town1"})
NOT_TOWNS = frozenset(PRINCIPALS) - {"town1", "town2"}
YEAR = datetime.now(UTC).year
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Operations anyone may call without a bearer token (each is tested on its own below).
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/v1/verify/{code}"),
    ("POST", "/v1/activations/redeem"),
    # Authenticated by the station tablet's X-Screen-Key, not a bearer token.
    ("GET", "/v1/stations/{station_id}/live-code"),
    # The tablet's 代签到 (tests/integration/test_assisted_checkin.py).
    ("GET", "/v1/stations/{station_id}/kiosk/members"),
    ("POST", "/v1/stations/{station_id}/kiosk/checkins"),
}


@dataclass
class World:
    ids: dict[str, str]
    headers: dict[str, dict[str, str]]
    # Strings of scope 1 (M1, C1, U1) that a caller outside it must never be shown.
    private: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


Body = Callable[[World], Any]


@dataclass(frozen=True)
class Case:
    allowed: frozenset[str]
    # Who may see scope 1's private data in the answer; default: `allowed`.
    entitled: frozenset[str] | None = None
    # Path parameter -> key in World.ids (default: the parameter's usual object in scope 1).
    params: dict[str, str] = field(default_factory=dict)
    body: Body | None = None
    query: dict[str, str] = field(default_factory=dict)
    multipart: bool = False
    # The caller whose write is the happy path (reads: every allowed caller is tried).
    happy: str | None = None
    # Codes a refused caller may get (besides 401 without a token).
    refused_codes: frozenset[int] = frozenset({403, 404})
    # Refused callers who may learn that the object exists (403 for a real id, 404 for a guess).
    knows_it_exists: frozenset[str] = frozenset()
    why: str = ""
    # The happy path's status when it is not the documented success (a feature off here).
    happy_status: int | None = None


PARAM_DEFAULT = {
    "unit_id": "u1",
    "community_id": "c1",
    "grid_id": "g1",
    "station_id": "s1",
    "member_id": "m1",
    "session_id": "sess1",
    "resource_id": "res1",
    "project_id": "proj1",
    "campaign_id": "camp1",
    "code": "kind1",
    "wish_id": "w_get",
    "activity_id": "act1",
    "request_id": "exc1",
    "post_id": "post1",
    "town_id": "t1",
}


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _activity_body(w: World, title: str) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=3)
    return {
        "community_id": w.ids["c1"],
        "title": title,
        "station_id": w.ids["s1"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "capacity": 5,
    }


def _rules_body(w: World) -> dict[str, Any]:
    return dict(w.extra["rules"])


def _import_csv(w: World) -> dict[str, Any]:
    phone = "139" + str(secrets.randbelow(10**8)).zfill(8)
    csv = (
        "姓名,手机号码,工作单位,居住社区,网格,报到日期\n"
        f"{_name('导入')},{phone},{w.extra['u1_name']},{w.extra['c1_name']},,\n"
    )
    return {"file": ("members.csv", csv.encode(), "text/csv")}


def _roster_csv(w: World) -> dict[str, Any]:
    phone = "139" + str(secrets.randbelow(10**8)).zfill(8)
    csv = f"姓名,手机号码,党支部\n{_name('名单')},{phone},机关党支部\n"
    return {"file": ("roster.csv", csv.encode(), "text/csv")}


ORG_OR_ADMIN = frozenset({"org1", "admin"})
# A community's desk (its weeks, lists, review queue): its organizer, the admin and the offices.
DESK = ORG_OR_ADMIN | OFFICES
HR_OR_ADMIN = frozenset({"hr1", "admin"})
# The member, their organizer, their unit's HR, the admin, the county office and the office of
# the town their community lies in (town1 reads M1 of C1 in T1; town2 gets the 404).
MEMBER_READ = SCOPE1 | OFFICES
DIRECTORY = "registry directory (units, communities, kinds): readable by every signed-in caller"
# Grids and stations are readable by everyone except another community's organizer.
NOT_ORG2 = ALL - {"org2"}
# A member or organizer named in a request body that the caller may not read answers as an
# unknown one: the route's 422 naming the field (the same code and message as a guessed id).
NAMED_IN_BODY = frozenset({403, 404, 422})

CASES: dict[tuple[str, str], Case] = {
    # ---- auth
    ("POST", "/v1/auth/tokens"): Case(
        frozenset({"admin"}), body=lambda w: {"role": "member", "subject_id": w.ids["m1"]}
    ),
    ("GET", "/v1/auth/me"): Case(ALL, entitled=ALL, why="the caller's own token"),
    ("POST", "/v1/auth/revoke"): Case(
        frozenset({"admin", "m1"}),
        body=lambda w: {"token": w.extra["throwaway_m1"]},
        happy="admin",
    ),
    # ---- registry: units, communities
    ("POST", "/v1/units"): Case(frozenset({"admin"}), body=lambda w: {"name": _name("单位")}),
    ("POST", "/v1/units/bulk"): Case(
        frozenset({"admin"}), body=lambda w: {"items": [{"name": _name("单位")}]}
    ),
    ("GET", "/v1/units"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("GET", "/v1/units/{unit_id}"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("PATCH", "/v1/units/{unit_id}"): Case(
        frozenset({"admin"}),
        body=lambda w: {"name": w.extra["u1_name"]},
        knows_it_exists=ALL,
        why=DIRECTORY,
    ),
    ("GET", "/v1/units/{unit_id}/history"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("POST", "/v1/communities"): Case(frozenset({"admin"}), body=lambda w: {"name": _name("社区")}),
    ("POST", "/v1/communities/bulk"): Case(
        frozenset({"admin"}), body=lambda w: {"items": [{"name": _name("社区")}]}
    ),
    ("GET", "/v1/communities"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("GET", "/v1/communities/{community_id}"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("PATCH", "/v1/communities/{community_id}"): Case(
        frozenset({"admin"}),
        body=lambda w: {"name": w.extra["c1_name"]},
        knows_it_exists=ALL,
        why=DIRECTORY,
    ),
    ("GET", "/v1/communities/{community_id}/history"): Case(ALL, entitled=ALL, why=DIRECTORY),
    # ---- registry: grids
    ("POST", "/v1/grids"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"community_id": w.ids["c1"], "name": _name("网格"), "level": 4},
        happy="org1",
    ),
    ("POST", "/v1/grids/bulk"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "items": [{"community_id": w.ids["c1"], "name": _name("网格"), "level": 4}]
        },
        happy="org1",
    ),
    ("GET", "/v1/grids"): Case(ALL, entitled=ALL, query={}, why="confined to the caller"),
    ("GET", "/v1/grids/{grid_id}"): Case(NOT_ORG2, entitled=ALL),
    ("PATCH", "/v1/grids/{grid_id}"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"name": w.extra["g1_name"]},
        knows_it_exists=NOT_ORG2,
        why="grids are readable by all but another community's organizer",
    ),
    ("GET", "/v1/grids/{grid_id}/history"): Case(NOT_ORG2, entitled=ALL),
    ("GET", "/v1/grids/{grid_id}/weekly"): Case(DESK, knows_it_exists=NOT_ORG2),
    # ---- registry: station kinds
    ("GET", "/v1/station-kinds"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("POST", "/v1/station-kinds"): Case(
        frozenset({"admin"}),
        body=lambda w: {"code": "k" + uuid.uuid4().hex[:8], "label": "测试站点"},
    ),
    ("PATCH", "/v1/station-kinds/{code}"): Case(
        frozenset({"admin"}), body=lambda w: {"label": "测试类型"}, knows_it_exists=ALL
    ),
    ("GET", "/v1/station-kinds/{code}/history"): Case(ALL, entitled=ALL, why=DIRECTORY),
    # ---- registry: stations
    ("POST", "/v1/stations"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "community_id": w.ids["c1"],
            "name": _name("站点"),
            "kind": "service_station",
        },
        happy="org1",
    ),
    ("POST", "/v1/stations/bulk"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "items": [{"community_id": w.ids["c1"], "name": _name("站点"), "kind": "member_post"}]
        },
        happy="org1",
    ),
    ("GET", "/v1/stations"): Case(ALL, entitled=ALL, why="confined to the caller"),
    ("GET", "/v1/stations/{station_id}"): Case(NOT_ORG2, entitled=ALL),
    ("PATCH", "/v1/stations/{station_id}"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"name": w.extra["s1_name"]},
        knows_it_exists=NOT_ORG2,
        why="stations are readable by all but another community's organizer",
    ),
    ("GET", "/v1/stations/{station_id}/history"): Case(NOT_ORG2, entitled=ALL),
    ("GET", "/v1/stations/{station_id}/qr"): Case(
        ORG_OR_ADMIN, knows_it_exists=NOT_ORG2 - ORG_OR_ADMIN
    ),
    ("GET", "/v1/stations/{station_id}/weekly"): Case(
        DESK, knows_it_exists=NOT_ORG2 - ORG_OR_ADMIN
    ),
    ("POST", "/v1/stations/{station_id}/screen-keys"): Case(
        ORG_OR_ADMIN, happy="org1", knows_it_exists=NOT_ORG2 - ORG_OR_ADMIN
    ),
    ("POST", "/v1/stations/{station_id}/screen-keys/revoke"): Case(
        ORG_OR_ADMIN, happy="org1", knows_it_exists=NOT_ORG2 - ORG_OR_ADMIN
    ),
    # ---- registry: members
    ("POST", "/v1/members"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"name": _name("成员"), "unit_id": w.ids["u1"], "community_id": w.ids["c1"]},
        happy="org1",
    ),
    ("POST", "/v1/members/bulk"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "items": [{"name": _name("成员"), "unit_id": w.ids["u1"], "community_id": w.ids["c1"]}]
        },
        happy="org1",
    ),
    ("GET", "/v1/members"): Case(
        NOT_TOWNS, entitled=SCOPE1 | COUNTY, why="confined to the caller; no list for a town"
    ),
    ("GET", "/v1/members/{member_id}"): Case(MEMBER_READ),
    ("PATCH", "/v1/members/{member_id}"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"name": w.extra["m1_name"]},
        happy="org1",
        # The member themself, their unit's HR and the county may read the record, not change it.
        knows_it_exists=frozenset({"m1", "hr1", "county"}),
    ),
    ("GET", "/v1/members/{member_id}/history"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/hours"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/hours/breakdown"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/sessions"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/weekly"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/week"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/feedback"): Case(MEMBER_READ),
    ("GET", "/v1/members/{member_id}/wishes"): Case(MEMBER_READ),
    ("POST", "/v1/members/{member_id}/service-records"): Case(
        MEMBER_READ,
        body=lambda w: {"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"},
        happy="m1",
    ),
    # ---- imports
    ("POST", "/v1/imports/members"): Case(
        ORG_OR_ADMIN,
        body=_import_csv,
        multipart=True,
        happy="org1",
        # Another organizer's rows naming C1 are rejected row by row; nothing is written.
        refused_codes=frozenset({403, 404, 422}),
    ),
    ("GET", "/v1/imports/members/template"): Case(ALL, entitled=ALL, why="an empty template"),
    # ---- the unit's loop (issue 15)
    ("POST", "/v1/imports/units/{unit_id}/roster"): Case(
        HR_OR_ADMIN, body=_roster_csv, multipart=True, happy="hr1"
    ),
    ("GET", "/v1/imports/unit-roster/template"): Case(ALL, entitled=ALL, why="an empty template"),
    ("GET", "/v1/units/{unit_id}/roster"): Case(HR_OR_ADMIN),
    ("GET", "/v1/communities/{community_id}/reports"): Case(DESK),
    ("POST", "/v1/members/{member_id}/report-receipt"): Case(ORG_OR_ADMIN, happy="org1"),
    ("GET", "/v1/members/{member_id}/quarterly-card"): Case(MEMBER_READ),
    ("GET", "/v1/communities/{community_id}/national-export"): Case(
        ORG_OR_ADMIN, query={"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31", "format": "csv"}
    ),
    # Records by the national rules (issue 15): the member's national volunteer number is set by
    # the member and their unit's HR; a community's signers by its organizer and its town's office.
    ("PUT", "/v1/members/{member_id}/volunteer-no"): Case(
        frozenset({"m1", "hr1", "admin"}),
        body=lambda w: {"volunteer_no": "ZY2023-62112201"},
        happy="m1",
    ),
    ("PATCH", "/v1/communities/{community_id}/signers"): Case(
        frozenset({"org1", "town1", "admin"}),
        body=lambda w: {"handler": "陈干事"},
        happy="org1",
        knows_it_exists=frozenset({"org2", "town2"}),
        why=DIRECTORY,
    ),
    # A wish's resident contact in full: the community and the member who accepted it; whoever
    # else reads the wish (the county office, the fulfilling member's HR) is refused with 403.
    ("GET", "/v1/wishes/{wish_id}/contact"): Case(
        frozenset({"m1", "org1", "admin"}),
        knows_it_exists=frozenset({"hr1", "county"}),
        why="they read the wish, not the resident's phone",
    ),
    # ---- check-ins and sessions
    ("POST", "/v1/checkins"): Case(
        frozenset({"m1", "m2"}),
        body=lambda w: {
            "station_token": sign_station(w.extra["settings"], w.ids["s1"]),
            "action": "in",
            "client_event_id": str(uuid.uuid4()),
        },
        happy="m1",
        why="any member may serve at any station",
    ),
    ("GET", "/v1/communities/{community_id}/review-queue"): Case(
        DESK, knows_it_exists=ALL - ORG_OR_ADMIN - {"org2"}
    ),
    ("POST", "/v1/sessions/{session_id}/review"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"action": "approve"},
        happy="org1",
        # The role check comes first: members and HR learn nothing about the session.
    ),
    ("GET", "/v1/sessions/{session_id}/reviews"): Case(
        ORG_OR_ADMIN, why="the audit trail of reviews: a role gate (organizer, admin)"
    ),
    # ---- weekly, dashboard, organizer
    ("GET", "/v1/communities/{community_id}/weekly"): Case(DESK),
    ("GET", "/v1/communities/{community_id}/weekly/breakdown"): Case(DESK),
    ("GET", "/v1/weekly/communities"): Case(
        frozenset({"org1", "org2", "admin", "county"}),
        entitled=ORG_OR_ADMIN | COUNTY,
        why="confined to the caller: an organizer gets their own community's week",
    ),
    ("GET", "/v1/communities/{community_id}/on-site"): Case(DESK),
    ("GET", "/v1/communities/{community_id}/inbox"): Case(DESK),
    ("GET", "/v1/members/{member_id}/inbox"): Case(
        frozenset({"m1"}), why="a member's reminders are theirs alone (not even the admin's)"
    ),
    ("GET", "/v1/members/{member_id}/reminder-preferences"): Case(frozenset({"m1"})),
    ("PUT", "/v1/members/{member_id}/reminder-preferences"): Case(
        frozenset({"m1"}), body=lambda w: {"weekly_nudge": True}
    ),
    ("GET", "/v1/communities/{community_id}/posters"): Case(
        ORG_OR_ADMIN, why="the posters carry the stations' tokens: not the offices'"
    ),
    ("GET", "/v1/communities/{community_id}/roster"): Case(DESK),
    ("GET", "/v1/communities/{community_id}/feedback"): Case(DESK),
    ("GET", "/v1/units/{unit_id}/weekly"): Case(HR_OR_ADMIN),
    ("GET", "/v1/units/{unit_id}/feedback"): Case(HR_OR_ADMIN),
    ("GET", "/v1/units/{unit_id}/wishes"): Case(HR_OR_ADMIN),
    ("GET", "/v1/units/{unit_id}/assessments"): Case(HR_OR_ADMIN),
    # ---- assessments, rankings
    ("GET", "/v1/assessment-rules"): Case(ALL, entitled=ALL, why="rules are public to all"),
    ("POST", "/v1/assessment-rules"): Case(frozenset({"admin"}), body=_rules_body),
    ("GET", "/v1/rankings"): Case(ALL, entitled=ALL, why="county rankings are public"),
    # ---- operations
    ("GET", "/v1/admin/reconciliation"): Case(frozenset({"admin"})),
    # ---- feedback
    ("POST", "/v1/feedback/member-service"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"member_id": w.ids["m1"], "period": str(YEAR), "rating": 4},
        happy="org1",
        refused_codes=NAMED_IN_BODY,
    ),
    ("POST", "/v1/feedback/community-arrangement"): Case(
        frozenset({"m1", "m2"}),
        body=lambda w: {"period": str(YEAR), "rating": 4},
        happy="m1",
        why="each member rates their own community",
    ),
    ("POST", "/v1/feedback/unit-summaries"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "period": str(YEAR),
            "items": [{"member_id": w.ids["m1"], "grade": "优秀"}],
        },
        happy="org1",
        refused_codes=NAMED_IN_BODY,
    ),
    # ---- wishes
    ("POST", "/v1/wishes"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "community_id": w.ids["c1"],
            "title": "买药",
            "resident_name": "张奶奶",
        },
        happy="org1",
    ),
    ("GET", "/v1/wishes"): Case(
        NOT_TOWNS, entitled=SCOPE1 | COUNTY, why="confined to the caller; no list for a town"
    ),
    # A wish is the community's list item: the county office reads every community's; a town
    # office reads its figures from the roll-ups, not the wishes themselves.
    ("GET", "/v1/wishes/{wish_id}"): Case(SCOPE1 | COUNTY),
    ("POST", "/v1/wishes/{wish_id}/dispatch"): Case(
        ORG_OR_ADMIN,
        params={"wish_id": "w_dispatch"},
        body=lambda w: {"assignee_kind": "member", "assignee_id": w.ids["m1"]},
        happy="org1",
    ),
    ("POST", "/v1/wishes/{wish_id}/accept"): Case(
        frozenset({"m1"}),
        params={"wish_id": "w_accept"},
        body=lambda w: {},
    ),
    ("POST", "/v1/wishes/{wish_id}/decline"): Case(
        frozenset({"m1"}),
        params={"wish_id": "w_decline"},
        body=lambda w: {"reason": "出差"},
    ),
    ("POST", "/v1/wishes/{wish_id}/complete"): Case(
        frozenset({"m1"}),
        params={"wish_id": "w_complete"},
        body=lambda w: {"session_id": w.ids["sess1"]},
    ),
    ("POST", "/v1/wishes/{wish_id}/confirm"): Case(
        ORG_OR_ADMIN,
        params={"wish_id": "w_confirm"},
        body=lambda w: {"rating": 5},
        happy="org1",
    ),
    ("POST", "/v1/wishes/{wish_id}/cancel"): Case(
        ORG_OR_ADMIN,
        params={"wish_id": "w_cancel"},
        body=lambda w: {"reason": "居民已自行解决"},
        happy="org1",
    ),
    # ---- resources and projects
    ("POST", "/v1/resources"): Case(
        HR_OR_ADMIN,
        body=lambda w: {"unit_id": w.ids["u1"], "community_id": w.ids["c1"], "title": "车辆"},
        happy="hr1",
    ),
    ("GET", "/v1/resources"): Case(
        NOT_TOWNS - {"m1", "m2"}, entitled=frozenset({"hr1", "org1", "admin", "county"})
    ),
    ("GET", "/v1/resources/{resource_id}"): Case(frozenset({"hr1", "org1", "admin", "county"})),
    ("POST", "/v1/resources/{resource_id}/withdraw"): Case(
        HR_OR_ADMIN,
        params={"resource_id": "res_withdraw"},
        body=lambda w: {},
        happy="hr1",
        # The organizer C1 was offered the resource: it may see it, not withdraw it.
        knows_it_exists=frozenset({"org1", "county"}),
    ),
    ("POST", "/v1/projects"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {"wish_id": w.ids["w_project"], "resource_id": w.ids["res_project"]},
        happy="org1",
    ),
    ("GET", "/v1/projects"): Case(
        NOT_TOWNS - {"m1", "m2"}, entitled=frozenset({"hr1", "org1", "admin", "county"})
    ),
    ("GET", "/v1/projects/{project_id}"): Case(frozenset({"hr1", "org1", "admin", "county"})),
    # ---- campaigns
    ("POST", "/v1/campaigns"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "name": "疫情防控",
            "community_id": w.ids["c1"],
            "starts_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(days=6)).isoformat(),
            "assignments": [{"grid_id": w.ids["g1"], "member_ids": [w.ids["m1"]]}],
        },
        happy="org1",
    ),
    ("GET", "/v1/campaigns"): Case(
        frozenset({"org1", "org2", "admin", "county"}), entitled=ORG_OR_ADMIN | COUNTY
    ),
    ("GET", "/v1/campaigns/{campaign_id}"): Case(
        frozenset({"org1", "hr1", "admin", "county"}), why="HR of a unit sent into the campaign"
    ),
    ("GET", "/v1/campaigns/{campaign_id}/summary"): Case(
        frozenset({"org1", "hr1", "admin", "county"})
    ),
    # ---- towns (issue 15)
    ("POST", "/v1/towns"): Case(frozenset({"admin"}), body=lambda w: {"name": _name("镇")}),
    ("GET", "/v1/towns"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("GET", "/v1/towns/{town_id}"): Case(ALL, entitled=ALL, why=DIRECTORY),
    ("PATCH", "/v1/towns/{town_id}"): Case(
        frozenset({"admin"}),
        body=lambda w: {"name": w.extra["t1_name"]},
        knows_it_exists=ALL,
        why=DIRECTORY,
    ),
    ("GET", "/v1/towns/{town_id}/history"): Case(ALL, entitled=ALL, why=DIRECTORY),
    # ---- roll-ups (issue 15): figures only, no person named
    ("GET", "/v1/county/drilldown"): Case(frozenset({"admin", "county"})),
    ("GET", "/v1/county/heatmap"): Case(frozenset({"admin", "county"})),
    ("GET", "/v1/towns/{town_id}/drilldown"): Case(frozenset({"admin", "county", "town1"})),
    ("GET", "/v1/towns/{town_id}/heatmap"): Case(frozenset({"admin", "county", "town1"})),
    ("GET", "/v1/communities/{community_id}/drilldown"): Case(DESK),
    ("GET", "/v1/communities/{community_id}/heatmap"): Case(DESK),
    # ---- service slots (活动) and sign-up
    ("POST", "/v1/activities"): Case(
        ORG_OR_ADMIN,
        body=lambda w: _activity_body(w, "矩阵新活动"),
        happy="org1",
    ),
    ("GET", "/v1/activities"): Case(ALL, entitled=ALL, why="a community's notice board"),
    ("GET", "/v1/activities/no-shows"): Case(
        frozenset({"org1", "org2", "hr1", "hr2", "admin"}),
        entitled=frozenset({"org1", "hr1", "admin"}),
        why="confined to the caller: an organizer's community, HR's unit",
    ),
    ("GET", "/v1/activities/{activity_id}"): Case(
        ALL, entitled=ALL, why="a slot is a public notice; `mine` is the caller's own"
    ),
    ("GET", "/v1/activities/{activity_id}/roster"): Case(
        frozenset({"org1", "hr1", "hr2", "admin"}),
        entitled=frozenset({"org1", "hr1", "admin"}),
        why="HR reads any slot's roster confined to its own unit's members",
    ),
    ("POST", "/v1/activities/{activity_id}/cancel"): Case(
        ORG_OR_ADMIN,
        params={"activity_id": "act_cancel"},
        body=lambda w: {"reason": "矩阵取消"},
        happy="org1",
        knows_it_exists=frozenset({"org2"}),
        why="another organizer reads the notice, may not cancel it",
    ),
    ("POST", "/v1/activities/{activity_id}/signup"): Case(
        frozenset({"m1"}),
        params={"activity_id": "act_signup"},
        body=lambda w: {},
        refused_codes=frozenset({403, 404, 409}),
        knows_it_exists=frozenset({"m2"}),
        why="another community's member reads the notice and is refused activity_not_in_community",
    ),
    ("DELETE", "/v1/activities/{activity_id}/signup"): Case(
        frozenset({"m1"}),
        params={"activity_id": "act_withdraw"},
        refused_codes=frozenset({403, 404, 409}),
        knows_it_exists=frozenset({"m2"}),
        why="another member who is not signed up is refused not_signed_up",
    ),
    # ---- activations
    ("POST", "/v1/activations"): Case(
        ORG_OR_ADMIN, body=lambda w: {"member_id": w.ids["m1"]}, happy="org1"
    ),
    # ---- personal information care (issue 15)
    ("GET", "/v1/members/{member_id}/phone"): Case(
        ORG_OR_ADMIN, why="a phone in full: who must call the member (logged)"
    ),
    ("GET", "/v1/members/{member_id}/my-data"): Case(
        frozenset({"m1"}), why="everything held about a member: theirs alone"
    ),
    ("GET", "/v1/access-log"): Case(
        frozenset({"admin"}), refused_codes=frozenset({403}), why="the admin's"
    ),
    # ---- assisted and team check-in, the WeChat binding (issue 14)
    ("GET", "/v1/communities/{community_id}/assisted/members"): Case(
        ORG_OR_ADMIN, query={"q": "矩阵"}
    ),
    ("POST", "/v1/communities/{community_id}/assisted/checkins"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "member_id": w.ids["m1"],
            "station_id": w.ids["s1"],
            "action": "in",
            "client_event_id": str(uuid.uuid4()),
        },
        happy="org1",
    ),
    ("GET", "/v1/me/team"): Case(
        frozenset({"m1", "m2"}), entitled=frozenset({"m1"}), why="the calling member's own team"
    ),
    ("POST", "/v1/team-checkins"): Case(
        frozenset({"m1"}),
        body=lambda w: {
            "station_token": sign_station(w.extra["settings"], w.ids["s1"]),
            "action": "in",
            "member_ids": [w.ids["m1team"]],
            "client_event_id": str(uuid.uuid4()),
        },
        refused_codes=NAMED_IN_BODY,
        why="M1 leads a member of C1; M2 leads nobody (422, as an unknown member)",
    ),
    ("POST", "/v1/me/wechat-binding"): Case(
        frozenset({"m1", "m2"}),
        body=lambda w: {"code": "code-matrix"},
        happy="m1",
        happy_status=409,
        why="each member binds their own WeChat; WeChat is not configured here (wechat_off)",
    ),
    ("DELETE", "/v1/me/wechat-binding"): Case(
        frozenset({"m1", "m2"}), happy="m1", why="each member unbinds their own WeChat"
    ),
    # ---- excused weeks and standing posts (issue 14)
    ("POST", "/v1/members/{member_id}/excusals"): Case(
        frozenset({"m1", "org1", "admin"}),
        body=lambda w: {"weeks": [_week_ahead(3)], "reason": "business_trip"},
        happy="m1",
        why="the member asks, or their organizer for them",
    ),
    ("GET", "/v1/members/{member_id}/excusals"): Case(MEMBER_READ),
    ("GET", "/v1/communities/{community_id}/excusals"): Case(DESK),
    ("GET", "/v1/units/{unit_id}/excusals"): Case(HR_OR_ADMIN),
    ("POST", "/v1/excusals/{request_id}/decision"): Case(
        ORG_OR_ADMIN, body=lambda w: {"decision": "approve"}, happy="org1"
    ),
    ("POST", "/v1/posts"): Case(
        ORG_OR_ADMIN,
        body=lambda w: {
            "community_id": w.ids["c1"],
            "grid_id": w.ids["g5"],
            "kind": "unit_post",
            "title": _name("岗位"),
        },
        happy="org1",
    ),
    ("GET", "/v1/posts"): Case(
        ALL - {"hr1", "hr2"} - OFFICES - {"town2"},
        entitled=frozenset({"m1", "org1", "admin"}),
        why="confined to the caller's community (a member's own)",
    ),
    ("GET", "/v1/posts/{post_id}"): Case(
        frozenset({"m1", "org1", "admin"}), why="a member of the post's community reads it"
    ),
    ("POST", "/v1/posts/{post_id}/claim"): Case(
        frozenset({"m1"}), params={"post_id": "post_claim"}, why="a member of its community"
    ),
    ("POST", "/v1/posts/{post_id}/decision"): Case(
        ORG_OR_ADMIN,
        params={"post_id": "post_decide"},
        body=lambda w: {"member_id": w.ids["m1"], "decision": "approve"},
        happy="org1",
    ),
    ("POST", "/v1/posts/{post_id}/leave"): Case(
        frozenset({"m1", "org1", "admin"}),
        params={"post_id": "post_leave"},
        body=lambda w: {"reason": "工作调动"},
        happy="m1",
        why="its holder leaves, the organizer ends it",
    ),
}


def _week_ahead(n: int) -> str:
    y, wk, _ = (datetime.now(SHANGHAI).date() + timedelta(weeks=n)).isocalendar()
    return f"{y}-W{wk:02d}"


def operations(app: Any) -> dict[tuple[str, str], dict[str, Any]]:
    doc = app.openapi()
    return {
        (method.upper(), path): op
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }


def documented_success(op: dict[str, Any]) -> int:
    codes = sorted(int(c) for c in op["responses"] if c.startswith("2"))
    assert len(codes) == 1, op["responses"]
    return codes[0]


def test_every_operation_has_a_case() -> None:
    ops = set(operations(create_app(Settings())))
    missing = sorted(ops - set(CASES) - PUBLIC)
    stale = sorted((set(CASES) | PUBLIC) - ops)
    assert not missing, f"operations without an access case: {missing}"
    assert not stale, f"cases for operations that do not exist: {stale}"


# ---- the world --------------------------------------------------------------------------------


def _wish_state(stack: Stack, wish_id: str) -> str | None:
    r = stack.client.get(f"/v1/wishes/{wish_id}", headers=stack.admin)
    return str(r.json()["status"]) if r.status_code == 200 else None


def _wait_wishes(stack: Stack, want: dict[str, str]) -> None:
    def done() -> bool:
        return all(_wish_state(stack, w) == s for w, s in want.items())

    assert stack.wait_for(done, timeout=90), {w: _wish_state(stack, w) for w in want}


def _post(stack: Stack, path: str, headers: dict[str, str], body: Any, status: int) -> Any:
    r = stack.client.post(path, json=body, headers=headers)
    assert r.status_code == status, (path, r.text)
    return r.json()


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    ids: dict[str, str] = {}
    extra: dict[str, Any] = {"settings": stack.settings}
    for n in (1, 2):
        t = stack.create("/v1/towns", {"name": f"矩阵镇{n}-{uuid.uuid4().hex[:4]}"})
        ids[f"t{n}"] = t["id"]
        extra[f"t{n}_name"] = t["name"]
        u = stack.create("/v1/units", {"name": f"县矩阵局{n}-{uuid.uuid4().hex[:4]}"})
        c = stack.create(
            "/v1/communities", {"name": f"矩阵社区{n}-{uuid.uuid4().hex[:4]}", "town_id": t["id"]}
        )
        g = stack.create("/v1/grids", {"community_id": c["id"], "name": f"一网格{n}", "level": 4})
        s = stack.create(
            "/v1/stations",
            {"community_id": c["id"], "name": f"矩阵服务站{n}", "kind": "service_station"},
        )
        m = stack.create(
            "/v1/members",
            {
                "name": f"矩阵党员{n}号",
                "unit_id": u["id"],
                "community_id": c["id"],
                "grid_id": g["id"],
                "phone": f"1381234{n:04d}",
                # Reported, so that their community may confirm it (报到回执).
                "reported_on": "2024-03-01",
            },
        )
        ids |= {f"u{n}": u["id"], f"c{n}": c["id"], f"g{n}": g["id"], f"s{n}": s["id"]}
        ids[f"m{n}"] = m["id"]
        if n == 1:
            extra |= {
                "u1_name": u["name"],
                "c1_name": c["name"],
                "g1_name": g["name"],
                "s1_name": s["name"],
                "m1_name": m["name"],
            }
    # A member of C1 whose team leader is M1 (team check-in).
    ids["m1team"] = stack.create(
        "/v1/members",
        {
            "name": "矩阵队员",
            "unit_id": ids["u1"],
            "community_id": ids["c1"],
            "team_leader_id": ids["m1"],
        },
    )["id"]
    kind = stack.create("/v1/station-kinds", {"code": "matrix_kind", "label": "矩阵站"})
    ids["kind1"] = kind["id"]

    headers: dict[str, dict[str, str]] = {"admin": stack.admin}
    for n in (1, 2):
        headers[f"m{n}"] = stack.token("member", ids[f"m{n}"])
        headers[f"org{n}"] = stack.token("organizer", ids[f"c{n}"])
        headers[f"hr{n}"] = stack.token("hr", ids[f"u{n}"])
        headers[f"town{n}"] = stack.token("town", ids[f"t{n}"])
    headers["county"] = stack.token("county", "county")
    extra["throwaway_m1"] = issue_bearer(stack.settings, "member", ids["m1"])

    # A served session for M1, through the API and the worker.
    token = sign_station(stack.settings, ids["s1"])
    now = datetime.now(UTC)
    for action, at in (("in", now - timedelta(hours=3)), ("out", now - timedelta(hours=2))):
        body = {
            "station_token": token,
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        _post(stack, "/v1/checkins", headers["m1"], body, 202)

    seen: list[str] = []

    def session() -> str | None:
        r = stack.client.get(f"/v1/members/{ids['m1']}/sessions", headers=stack.admin)
        seen[:] = [r.text]
        items = [i for i in r.json()["items"] if i["status"] == "closed"]
        return str(items[0]["id"]) if items else None

    sid = stack.wait_for(session, timeout=120)
    assert sid, f"the session did not arrive: {seen}"
    ids["sess1"] = sid

    # Wishes in every state the transitions need.
    org = headers["org1"]
    names = ("w_get", "w_dispatch", "w_accept", "w_decline", "w_complete")
    names += ("w_confirm", "w_cancel", "w_project", "w_p0")
    for name in names:
        body = {"community_id": ids["c1"], "title": f"心愿{name}", "resident_name": "李大爷"}
        ids[name] = _post(stack, "/v1/wishes", org, body, 202)["id"]
    _wait_wishes(stack, {ids[n]: "ordered" for n in names})
    to_m1 = {"assignee_kind": "member", "assignee_id": ids["m1"]}
    for n in ("w_get", "w_accept", "w_decline", "w_complete", "w_confirm"):
        _post(stack, f"/v1/wishes/{ids[n]}/dispatch", org, to_m1, 202)
    _wait_wishes(stack, {ids[n]: "dispatched" for n in ("w_get", "w_complete", "w_confirm")})
    for n in ("w_get", "w_complete", "w_confirm"):
        _post(stack, f"/v1/wishes/{ids[n]}/accept", headers["m1"], {}, 202)
    _wait_wishes(stack, {ids[n]: "accepted" for n in ("w_get", "w_complete", "w_confirm")})
    for n in ("w_get", "w_confirm"):
        _post(stack, f"/v1/wishes/{ids[n]}/complete", headers["m1"], {"session_id": sid}, 202)

    # Resources (U1 offers to C1) and a project.
    hr = headers["hr1"]
    for name in ("res1", "res_withdraw", "res_project"):
        body = {"unit_id": ids["u1"], "community_id": ids["c1"], "title": f"资源{name}"}
        ids[name] = _post(stack, "/v1/resources", hr, body, 202)["id"]

    def resources() -> bool:
        return all(
            stack.client.get(f"/v1/resources/{ids[n]}", headers=stack.admin).status_code == 200
            for n in ("res1", "res_withdraw", "res_project")
        )

    assert stack.wait_for(resources, timeout=90)
    body = {"wish_id": ids["w_p0"], "resource_id": ids["res1"]}
    ids["proj1"] = _post(stack, "/v1/projects", org, body, 202)["project_id"]
    done = {ids[n]: "done" for n in ("w_get", "w_confirm")}
    _wait_wishes(stack, {**done, ids["w_p0"]: "dispatched"})

    # A campaign with U1 sent in; feedback about M1.
    camp = {
        "name": "下沉值守",
        "community_id": ids["c1"],
        "starts_at": (now - timedelta(days=2)).isoformat(),
        "ends_at": (now + timedelta(days=5)).isoformat(),
        "assignments": [{"grid_id": ids["g1"], "unit_ids": [ids["u1"]]}],
    }
    ids["camp1"] = _post(stack, "/v1/campaigns", org, camp, 201)["id"]
    fb = {"member_id": ids["m1"], "session_id": sid, "rating": 5, "comment": "矩阵评价"}
    _post(stack, "/v1/feedback/member-service", org, fb, 201)

    # Service slots of C1; M1 signed up for two of them.
    w0 = World(ids, headers, [], extra)
    for name in ("act1", "act_signup", "act_withdraw", "act_cancel"):
        ids[name] = _post(stack, "/v1/activities", org, _activity_body(w0, name), 202)["ids"][0]

    def slots_landed() -> bool:
        return all(
            stack.client.get(f"/v1/activities/{ids[n]}", headers=org).status_code == 200
            for n in ("act1", "act_signup", "act_withdraw", "act_cancel")
        )

    assert stack.wait_for(slots_landed, timeout=90)
    for name in ("act1", "act_withdraw"):
        _post(stack, f"/v1/activities/{ids[name]}/signup", headers["m1"], {}, 202)

    def signed_up() -> bool:
        return all(
            (
                stack.client.get(f"/v1/activities/{ids[n]}", headers=headers["m1"]).json()["mine"]
                or {}
            ).get("status")
            == "placed"
            for n in ("act1", "act_withdraw")
        )

    assert stack.wait_for(signed_up, timeout=90)
    # Excused weeks and standing posts (issue 14): a pending request of M1; posts of C1 on a
    # level-5 grid: one open, one for M1 to claim, one with M1's claim pending, one M1 holds.
    g5 = {"community_id": ids["c1"], "name": "矩阵1号楼", "level": 5, "parent_id": ids["g1"]}
    ids["g5"] = stack.create("/v1/grids", g5)["id"]
    body = {"weeks": [_week_ahead(1)], "reason": "training"}
    ids["exc1"] = _post(stack, f"/v1/members/{ids['m1']}/excusals", headers["m1"], body, 202)[
        "request_id"
    ]
    for name in ("post1", "post_claim", "post_decide", "post_leave"):
        body = {"community_id": ids["c1"], "grid_id": ids["g5"], "kind": "unit_post"}
        ids[name] = _post(stack, "/v1/posts", org, {**body, "title": name}, 202)["post_id"]

    def visible(path: str) -> bool:
        return stack.client.get(path, headers=stack.admin).status_code == 200

    def post_of(name: str) -> dict[str, Any]:
        out: dict[str, Any] = stack.client.get(f"/v1/posts/{ids[name]}", headers=stack.admin).json()
        return out

    paths = [f"/v1/posts/{ids[n]}" for n in ("post1", "post_claim", "post_decide", "post_leave")]
    assert stack.wait_for(lambda: all(visible(p) for p in paths), timeout=90)
    for name in ("post_decide", "post_leave"):
        _post(stack, f"/v1/posts/{ids[name]}/claim", headers["m1"], None, 202)
    assert stack.wait_for(
        lambda: all(post_of(n)["pending_claims"] for n in ("post_decide", "post_leave")),
        timeout=90,
    )
    body = {"member_id": ids["m1"], "decision": "approve"}
    _post(stack, f"/v1/posts/{ids['post_leave']}/decision", org, body, 202)
    assert stack.wait_for(lambda: post_of("post_leave")["holder_id"] == ids["m1"], timeout=90)

    def excusal_seen() -> bool:
        r = stack.client.get(f"/v1/members/{ids['m1']}/excusals", headers=stack.admin)
        return ids["exc1"] in r.text

    assert stack.wait_for(excusal_seen, timeout=90)

    rules = stack.client.get("/v1/assessment-rules", headers=stack.admin).json()["items"][-1]
    rules.pop("version")
    extra["rules"] = rules

    private = [
        ids["m1"],
        extra["m1_name"],
        "13812340001",
        sid,
        ids["camp1"],
        ids["proj1"],
        ids["res1"],
        ids["exc1"],
        *(ids[n] for n in ("post1", "post_claim", "post_decide", "post_leave")),
        *(ids[n] for n in names),
    ]
    return World(ids, headers, private, extra)


# ---- calling ----------------------------------------------------------------------------------


def _path(template: str, case: Case, w: World, guess: bool = False) -> str:
    out = template
    for name in [p[1:-1] for p in template.split("/") if p.startswith("{")]:
        real = w.ids[case.params.get(name, PARAM_DEFAULT[name])]
        value = _guess(real) if guess else real
        out = out.replace("{" + name + "}", value)
    return out


def _guess(real: str) -> str:
    """An id of the same shape as `real` that nobody issued."""
    prefix, _, rest = real.rpartition("_")
    return (f"{prefix}_" if prefix else "") + secrets.token_hex(max(len(rest), 8))[: len(rest) or 8]


def _call(stack: Stack, method: str, path: str, case: Case, w: World, who: str | None) -> Any:
    headers = w.headers[who] if who else {}
    kwargs: dict[str, Any] = {"headers": headers, "params": case.query}
    if case.body is not None and method != "GET":
        if case.multipart:
            kwargs["files"] = case.body(w)
        else:
            kwargs["json"] = case.body(w)
    return stack.client.request(method, path, **kwargs)


@contextmanager
def nothing_written(stack: Stack) -> Iterator[list[str]]:
    """Counts every publish and every write-through insert the API process makes."""
    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]
    writes: list[str] = []
    saved = {
        (obj, name): getattr(obj, name)
        for obj, name in (
            (ctx.publisher, "send_sync"),
            (ctx.publisher, "send"),
            (ctx.publisher, "send_many_sync"),
            (ctx.warehouse, "insert"),
        )
    }

    def spy(obj: Any, name: str) -> Any:
        original = saved[(obj, name)]
        if name == "send":

            async def asend(*a: Any, **k: Any) -> Any:
                writes.append(f"publisher.send {a[:1]}")
                return await original(*a, **k)

            return asend

        def wrapper(*a: Any, **k: Any) -> Any:
            writes.append(f"{name} {a[:1]}")
            return original(*a, **k)

        return wrapper

    for obj, name in saved:
        setattr(obj, name, spy(obj, name))
    try:
        yield writes
    finally:
        for (obj, name), original in saved.items():
            setattr(obj, name, original)


def _assert_no_private(w: World, r: Any, who: str, what: str) -> None:
    # What the caller sent (an id in the path or the body) may be echoed back; nothing else.
    sent = r.request.url.path + r.request.read().decode(errors="replace")
    leaked = [s for s in w.private if s in r.text and s not in sent]
    assert not leaked, f"{what} as {who} shows scope 1's {leaked}: {r.text[:500]}"


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]} {k[1]}")
def test_access(stack: Stack, world: World, key: tuple[str, str]) -> None:
    method, template = key
    case = CASES[key]
    w = world
    op = operations(stack.client.app)[key]
    success = documented_success(op)
    path = _path(template, case, w)
    what = f"{method} {path}"
    entitled = case.entitled if case.entitled is not None else case.allowed

    # No token at all.
    r = _call(stack, method, path, case, w, None)
    assert r.status_code == 401, f"{what} without a token: {r.status_code} {r.text}"
    assert r.json()["error"]["code"] == "unauthorized"

    # Everyone who is not allowed: refused, nothing written, nothing of scope 1 shown.
    for who in PRINCIPALS:
        if who in case.allowed:
            continue
        with nothing_written(stack) as writes:
            r = _call(stack, method, path, case, w, who)
        assert r.status_code in case.refused_codes, f"{what} as {who}: {r.status_code} {r.text}"
        assert "error" in r.json(), r.text
        assert not writes, f"{what} as {who} was refused but wrote {writes}"
        _assert_no_private(w, r, who, what)

        if "{" in template:
            guessed = _call(stack, method, _path(template, case, w, guess=True), case, w, who)
            assert guessed.status_code in case.refused_codes, guessed.text
            if who not in case.knows_it_exists:
                assert (guessed.status_code, guessed.json()["error"]["code"]) == (
                    r.status_code,
                    r.json()["error"]["code"],
                ), f"{what} as {who}: a real id answers {r.text}, a guessed one {guessed.text}"

    # The rightful callers: the documented success status.
    if method == "GET":
        for who in case.allowed:
            r = _call(stack, method, path, case, w, who)
            assert r.status_code == success, f"{what} as {who}: {r.status_code} {r.text}"
            if who not in entitled:
                _assert_no_private(w, r, who, what)
            if "{" in template and who in entitled:
                # A guessed id is unknown even to the admin and the rightful caller.
                guessed = _call(stack, method, _path(template, case, w, guess=True), case, w, who)
                assert guessed.status_code == 404, f"{what} guessed as {who}: {guessed.text}"
    else:
        who = case.happy or min(case.allowed)
        r = _call(stack, method, path, case, w, who)
        expected = case.happy_status or success
        assert r.status_code == expected, f"{what} as {who}: {r.status_code} {r.text}"


def test_no_answer_carries_a_station_token_outside_its_organizer_and_the_admin(
    stack: Stack, world: World
) -> None:
    """Every GET of the API, as every caller: a station's signed poster token (the `/s/...`
    link, the QR code's content) appears only in answers to its own organizer and the admin;
    a member or HR holding one could check in from anywhere (issue 17)."""
    tokens = {n: sign_station(stack.settings, world.ids[f"s{n}"]) for n in (1, 2)}
    checked = 0
    for (method, template), case in sorted(CASES.items()):
        if method != "GET":
            continue
        path = _path(template, case, world)
        for who in PRINCIPALS:
            if who == "admin":
                continue
            r = _call(stack, method, path, case, world, who)
            for n, token in tokens.items():
                if who == f"org{n}":
                    continue
                assert token not in r.text, f"GET {path} as {who} shows station s{n}'s token"
            checked += 1
    assert checked > 100
    # ... while the station's organizer still gets it (the sweep above can see a leak).
    r = stack.client.get(f"/v1/stations/{world.ids['s1']}", headers=world.headers["org1"])
    assert r.json()["qr_url"].endswith("/s/" + tokens[1])


# ---- tokens ------------------------------------------------------------------------------------


def test_expired_revoked_and_foreign_tokens_are_refused(stack: Stack, world: World) -> None:
    m1 = world.ids["m1"]
    path = f"/v1/members/{m1}/hours"

    def status(token: str) -> Any:
        return stack.client.get(path, headers={"Authorization": f"Bearer {token}"})

    good = issue_bearer(stack.settings, "member", m1)
    assert status(good).status_code == 200

    expired = issue_bearer(stack.settings, "member", m1, ttl_s=-5)
    r = status(expired)
    assert r.status_code == 401 and r.json()["error"]["message"] == "token expired", r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"

    foreign = issue_bearer(Settings(secret_key="another-deployment-key"), "member", m1)
    assert status(foreign).status_code == 401

    # Right key, but no expiry, or a role that does not exist: refused.
    key = _key(stack.settings, "bearer", 1)
    no_exp = jwt.encode({"role": "member", "sub": m1, "jti": "x"}, key, algorithm="HS256")
    assert status(no_exp).status_code == 401
    exp = int(time.time()) + 600
    root = jwt.encode({"role": "root", "sub": m1, "jti": "y", "exp": exp}, key, "HS256")
    assert status(root).status_code == 401
    unsigned = jwt.encode({"role": "admin", "sub": "admin", "jti": "z", "exp": exp}, None, "none")
    assert status(unsigned).status_code == 401
    assert status("not-a-token").status_code == 401

    auth = {"Authorization": f"Bearer {good}"}
    assert stack.client.post("/v1/auth/revoke", json={}, headers=auth).status_code == 200
    r = status(good)
    assert r.status_code == 401 and r.json()["error"]["message"] == "token revoked", r.text


# ---- the public operations ---------------------------------------------------------------------


def test_public_operations_reveal_nothing_without_their_credential(
    stack: Stack, world: World
) -> None:
    assert stack.client.get("/healthz").status_code == 200
    # A guessed verification code, a guessed activation code: 404, nothing of anyone's.
    r = stack.client.get("/v1/verify/" + secrets.token_hex(8))
    assert r.status_code == 404 and r.json()["error"]["code"] == "record_not_found"
    # The same check as a browser's page (issue 19): 404, in Chinese, nothing of anyone's.
    r = stack.client.get("/verify/" + secrets.token_hex(8))
    assert r.status_code == 404 and "未找到此验证码" in r.text
    r = stack.client.post("/v1/activations/redeem", json={"code": "ABCD-EFGH"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "activation_not_found"
    # An issued code works once, for its own member only.
    code = _post(
        stack, "/v1/activations", world.headers["org1"], {"member_id": world.ids["m1"]}, 201
    )["code"]
    r = stack.client.post("/v1/activations/redeem", json={"code": code})
    assert r.status_code == 200 and r.json()["member_id"] == world.ids["m1"], r.text
    assert stack.client.post("/v1/activations/redeem", json={"code": code}).status_code == 409

    # A station screen: its key reads its own station's code and no other.
    s1, s2 = world.ids["s1"], world.ids["s2"]
    assert stack.client.get(f"/v1/stations/{s1}/live-code").status_code == 401
    bad = {"X-Screen-Key": "forged"}
    assert stack.client.get(f"/v1/stations/{s1}/live-code", headers=bad).status_code == 401
    key = _post(stack, f"/v1/stations/{s1}/screen-keys", world.headers["org1"], None, 201)["key"]
    r = stack.client.get(f"/v1/stations/{s1}/live-code", headers={"X-Screen-Key": key})
    assert r.status_code == 200 and r.json()["station_id"] == s1
    r = stack.client.get(f"/v1/stations/{s2}/live-code", headers={"X-Screen-Key": key})
    assert r.status_code == 404
    # A member's bearer token is not a screen key.
    r = stack.client.get(f"/v1/stations/{s1}/live-code", headers=world.headers["m1"])
    assert r.status_code == 401


# ---- every read scoped by the one policy (issue 17) ----------------------------------------


@pytest.fixture(scope="module")
def m2_session(stack: Stack, world: World) -> str:
    """An hour served by M2 at C2's station, through the API and the worker."""
    ids = world.ids
    token = sign_station(stack.settings, ids["s2"])
    now = datetime.now(UTC)
    for action, at in (("in", now - timedelta(hours=5)), ("out", now - timedelta(hours=4))):
        body = {
            "station_token": token,
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        _post(stack, "/v1/checkins", world.headers["m2"], body, 202)

    def session() -> str | None:
        r = stack.client.get(f"/v1/members/{ids['m2']}/sessions", headers=stack.admin)
        items = [i for i in r.json()["items"] if i["status"] == "closed"]
        return str(items[0]["id"]) if items else None

    sid = stack.wait_for(session, timeout=120)
    assert sid, "M2's session did not arrive"
    return str(sid)


def _same_as_unknown(real: Any, guessed: Any, real_id: str, guess_id: str) -> None:
    """An object outside the caller's scope answers as an id nobody issued: the same status,
    code and message (but for the id the caller sent, which the message names)."""
    assert real.status_code == guessed.status_code, (real.text, guessed.text)
    a, b = real.json()["error"], guessed.json()["error"]
    assert a["code"] == b["code"], (a, b)
    assert a["message"].replace(real_id, "<id>") == b["message"].replace(guess_id, "<id>"), (a, b)


def _both(
    stack: Stack, path: str, headers: dict[str, str], real: Any, guessed: Any
) -> tuple[Any, Any]:
    with nothing_written(stack) as writes:
        r = stack.client.post(path, json=real, headers=headers)
        g = stack.client.post(path, json=guessed, headers=headers)
    assert not writes, f"{path} was refused but wrote {writes}"
    return r, g


def test_a_phone_clash_names_no_member(stack: Stack, world: World) -> None:
    ids = world.ids
    body = {
        "name": _name("撞号"),
        "unit_id": ids["u2"],
        "community_id": ids["c2"],
        "phone": "13812340001",  # M1's
    }
    for who in ("org2", "admin"):
        with nothing_written(stack) as writes:
            r = stack.client.post("/v1/members", json=body, headers=world.headers[who])
        assert r.status_code == 409 and r.json()["error"]["code"] == "phone_taken", r.text
        assert not writes
        _assert_no_private(world, r, who, "POST /v1/members with M1's phone")
    # A dry-run import by another community: the row is refused, naming nobody.
    u2 = stack.client.get(f"/v1/units/{ids['u2']}", headers=stack.admin).json()["name"]
    c2 = stack.client.get(f"/v1/communities/{ids['c2']}", headers=stack.admin).json()["name"]
    csv = (
        f"姓名,手机号码,工作单位,居住社区,网格,报到日期\n{_name('导入')},13812340001,{u2},{c2},,\n"
    )
    with nothing_written(stack) as writes:
        r = stack.client.post(
            "/v1/imports/members",
            params={"dry_run": "true"},
            files={"file": ("members.csv", csv.encode(), "text/csv")},
            headers=world.headers["org2"],
        )
    assert r.status_code in (200, 422) and not writes, r.text
    assert r.json()["accepted"] == 0 if r.status_code == 200 else "error" in r.json()
    _assert_no_private(world, r, "org2", "a dry-run import with M1's phone")


def test_not_yours_answers_as_not_found(stack: Stack, world: World, m2_session: str) -> None:
    ids, h = world.ids, world.headers
    ghost_m1, ghost_m2 = _guess(ids["m1"]), _guess(ids["m2"])

    # Feedback about another community's member: by id, by a session of theirs, in a summary.
    path = "/v1/feedback/member-service"
    for extra in ({"period": str(YEAR)}, {"session_id": ids["sess1"]}):
        r, g = _both(
            stack,
            path,
            h["org2"],
            {"member_id": ids["m1"], "rating": 1, **extra},
            {"member_id": ghost_m1, "rating": 1, **extra},
        )
        _same_as_unknown(r, g, ids["m1"], ghost_m1)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_member"), r.text
    r, g = _both(
        stack,
        "/v1/feedback/unit-summaries",
        h["org2"],
        {"period": str(YEAR), "items": [{"member_id": ids["m1"], "grade": "较差"}]},
        {"period": str(YEAR), "items": [{"member_id": ghost_m1, "grade": "较差"}]},
    )
    _same_as_unknown(r, g, ids["m1"], ghost_m1)
    assert r.json()["error"]["message"].startswith("items.0.member_id:"), r.text

    # A wish dispatched to another community's member.
    r, g = _both(
        stack,
        f"/v1/wishes/{ids['w_get']}/dispatch",
        h["org1"],
        {"assignee_kind": "member", "assignee_id": ids["m2"]},
        {"assignee_kind": "member", "assignee_id": ghost_m2},
    )
    _same_as_unknown(r, g, ids["m2"], ghost_m2)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_member"), r.text

    # Someone else's session as a wish's evidence: neither its existence nor its status shows.
    ghost_session = _guess(m2_session)
    r, g = _both(
        stack,
        f"/v1/wishes/{ids['w_complete']}/complete",
        h["m1"],
        {"session_id": m2_session},
        {"session_id": ghost_session},
    )
    _same_as_unknown(r, g, m2_session, ghost_session)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_session"), r.text

    # A wish dispatched to someone else: 404, as a wish that does not exist.
    wish, ghost_wish = ids["w_accept"], _guess(ids["w_accept"])
    with nothing_written(stack) as writes:
        r = stack.client.post(f"/v1/wishes/{wish}/accept", json={}, headers=h["m2"])
        g = stack.client.post(f"/v1/wishes/{ghost_wish}/accept", json={}, headers=h["m2"])
    assert not writes
    _same_as_unknown(r, g, wish, ghost_wish)
    assert r.status_code == 404, r.text

    # A resource offered to another community, matched by C2's organizer.
    c2_wish = _post(
        stack,
        "/v1/wishes",
        h["org2"],
        {"community_id": ids["c2"], "title": "修水管", "resident_name": "王大妈"},
        202,
    )["id"]
    seen = stack.wait_for(
        lambda: stack.client.get(f"/v1/wishes/{c2_wish}", headers=h["org2"]).status_code == 200,
        timeout=90,
    )
    assert seen, "C2's wish did not arrive"
    ghost_res = _guess(ids["res1"])
    r, g = _both(
        stack,
        "/v1/projects",
        h["org2"],
        {"wish_id": c2_wish, "resource_id": ids["res1"]},
        {"wish_id": c2_wish, "resource_id": ghost_res},
    )
    _same_as_unknown(r, g, ids["res1"], ghost_res)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_resource"), r.text


def test_a_campaign_names_only_members_its_author_may_read(stack: Stack, world: World) -> None:
    ids = world.ids
    now = datetime.now(UTC)

    def campaign(member: str) -> dict[str, Any]:
        return {
            "name": "越界值守",
            "community_id": ids["c1"],
            "starts_at": (now - timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
            "assignments": [{"grid_id": ids["g1"], "member_ids": [ids["m1"], member]}],
        }

    ghost = _guess(ids["m2"])
    r, g = _both(
        stack, "/v1/campaigns", world.headers["org1"], campaign(ids["m2"]), campaign(ghost)
    )
    _same_as_unknown(r, g, ids["m2"], ghost)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_member"), r.text
    assert r.json()["error"]["message"].startswith("assignments.0.member_ids.1:"), r.text


def test_campaign_reads_count_only_the_members_the_caller_may_read(
    stack: Stack, world: World, m2_session: str
) -> None:
    """The admin opens a campaign in C1 naming both members and both units: each reader sees
    only the members (and their hours) a direct read would show them."""
    ids, h = world.ids, world.headers
    now = datetime.now(UTC)
    body = {
        "name": "跨社区下沉",
        "community_id": ids["c1"],
        "starts_at": (now - timedelta(days=2)).isoformat(),
        "ends_at": (now + timedelta(days=5)).isoformat(),
        "count_community_stations": True,
        "assignments": [
            {
                "grid_id": ids["g1"],
                "member_ids": [ids["m1"], ids["m2"]],
                "unit_ids": [ids["u1"], ids["u2"]],
            }
        ],
    }
    camp = _post(stack, "/v1/campaigns", stack.admin, body, 201)["id"]

    def summary(who: str) -> Any:
        r = stack.client.get(f"/v1/campaigns/{camp}/summary", headers=h[who])
        assert r.status_code == 200, r.text
        return r

    # Other tests add members to U1 and C1: count the two served members, whose hours are known
    # to be the only service in the campaign's units.
    full = stack.wait_for(
        lambda: (s := summary("admin").json())["members_served"] == 2 and s, timeout=60
    )
    assert full, summary("admin").text
    outside = {"org1": ids["m2"], "hr1": ids["m2"], "hr2": ids["m1"]}
    seen: dict[str, Any] = {}
    for who, other in outside.items():
        r = summary(who)
        s = seen[who] = r.json()
        assert other not in r.text, f"{who} sees {other} in {r.text}"
        assert s["members_served"] == s["assigned_members_served"] == 1, r.text
        assert s["by_grid"][0]["members_served"] == 1
        assert s["members_assigned"] < full["members_assigned"]
    assert seen["org1"]["hours"] == seen["hr1"]["hours"] > 0
    assert round(seen["org1"]["hours"] + seen["hr2"]["hours"], 2) == full["hours"]
    assert stack.client.get(f"/v1/campaigns/{camp}/summary", headers=h["org2"]).status_code == 404

    # The campaign itself names only the members the caller may read.
    for who, other in outside.items():
        r = stack.client.get(f"/v1/campaigns/{camp}", headers=h[who])
        assert r.status_code == 200 and other not in r.text, r.text
        (mine,) = r.json()["assignments"][0]["member_ids"]
        assert mine != other
    r = stack.client.get("/v1/campaigns", params={"limit": 500}, headers=h["org1"])
    (listed,) = [c for c in r.json()["items"] if c["id"] == camp]
    assert listed["assignments"][0]["member_ids"] == [ids["m1"]]
    r = stack.client.get(f"/v1/campaigns/{camp}", headers=stack.admin)
    assert r.json()["assignments"][0]["member_ids"] == [ids["m1"], ids["m2"]]
