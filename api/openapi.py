"""The OpenAPI document, completed: the error body every 4xx/503 carries, the error responses each
operation can give, and an example for every JSON request body.

FastAPI documents 422 as `{"detail": [...]}`; this API answers every error as
`{"error": {"code", "message"}}` (api.errors), so the document is corrected here once rather
than on each route. Examples live in one table, keyed by the body's schema name; a test checks
that every request body has one and that each is accepted by its model.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from services.assessment import RULES_V1

MEMBER = "mem_1f2e3d4c5b6a7980"
UNIT = "unit_3f2a1b0c9d8e7f60"
COMMUNITY = "comm_0a1b2c3d4e5f6071"
GRID = "grid_5e6f708192a3b4c5"
SESSION = "0b1c2d3e-4f50-5617-8293-a4b5c6d7e8f9"
WISH = "wish_9a8b7c6d5e4f3a2b"
RESOURCE = "res_7c6d5e4f3a2b1c0d"


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable", examples=["member_not_found"])
    message: str = Field(
        description="for people; names the field when a request is invalid",
        examples=["no member 'mem_1f2e3d4c5b6a7980' visible to this caller"],
    )


class ErrorBody(BaseModel):
    """Every error answer: a 4xx, or 503 when a component (Kafka) is down."""

    error: ErrorDetail


_GRID_IN = {"community_id": COMMUNITY, "name": "东关第一网格", "level": 4}
_STATION_IN = {"community_id": COMMUNITY, "name": "东关党群服务站", "kind": "service_station"}
_MEMBER_IN = {
    "name": "张伟",
    "unit_id": UNIT,
    "community_id": COMMUNITY,
    "phone": "13812345678",
    "grid_id": GRID,
    "reported_on": "2026-03-01",
}

# Schema name -> an example request body.
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "TokenRequest": {"role": "member", "subject_id": MEMBER},
    "Preferences": {"weekly_nudge": False},
    "RevokeRequest": {"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl"},
    "UnitIn": {"name": "县司法局"},
    "CommunityIn": {"name": "东关社区"},
    "TownIn": {"name": "巩昌镇"},
    "CommunityPatch": {"phone": "0932-6621234"},
    "NamePatch": {"name": "县司法局"},
    "GridIn": _GRID_IN,
    "GridPatch": {"name": "东关第二网格"},
    "StationKindIn": {"code": "neighbourhood_center", "label": "邻里中心"},
    "StationKindPatch": {"label": "邻里服务中心"},
    "StationIn": _STATION_IN,
    "StationPatch": {"name": "东关党员驿站", "kind": "member_post", "lat": 35.04, "lon": 104.63},
    "MemberCreate": _MEMBER_IN,
    "MemberPatch": {"community_id": COMMUNITY, "grid_id": GRID},
    "Bulk_UnitIn_": {"items": [{"name": "县司法局"}, {"name": "县财政局"}]},
    "Bulk_CommunityIn_": {"items": [{"name": "东关社区"}, {"name": "西关社区"}]},
    "Bulk_GridIn_": {"items": [_GRID_IN]},
    "Bulk_StationIn_": {"items": [_STATION_IN]},
    "Bulk_MemberCreate_": {"items": [_MEMBER_IN]},
    "CheckinIn": {
        "station_token": "v1.st_0a1b2c3d4e5f6071.Zk9vYmFyYmF6cXV4cXV1eA",
        "action": "in",
        "client_event_id": "5b0f2c7e-3d1a-4e8b-9c2f-6a7d8e9f0a1b",
        "scanned_at": "2026-11-28T09:30:00+08:00",
    },
    # Assisted and team check-in, the WeChat binding (issue 14).
    "AssistedCheckinIn": {
        "member_id": MEMBER,
        "station_id": "st_0a1b2c3d4e5f6071",
        "action": "in",
        "client_event_id": "7c1e3d2a-4b5f-4a6e-8d9c-0b1a2c3d4e5f",
    },
    "KioskCheckinIn": {
        "member_id": MEMBER,
        "action": "out",
        "client_event_id": "8d2f4e3b-5c6a-4b7f-9e0d-1c2b3d4e5f60",
    },
    "TeamCheckinIn": {
        "station_token": "v1.st_0a1b2c3d4e5f6071.Zk9vYmFyYmF6cXV4cXV1eA",
        "action": "in",
        "member_ids": [MEMBER, "mem_2a3b4c5d6e7f8091"],
        "client_event_id": "9e3a5f4c-6d7b-4c8a-8f1e-2d3c4e5f6071",
        "activity_id": "act_0a1b2c3d4e5f6071",
    },
    "WechatBindingIn": {"code": "081aBc2w3XyZ0N0hQ41w3k8Xx92aBc2G"},
    "RecordRequest": {"from": "2026-01-01", "to": "2026-12-31"},
    "VolunteerNoIn": {"volunteer_no": "ZY2023-62112201"},
    "SignersPatch": {"person_in_charge": "刘书记", "handler": "陈干事"},
    "RulesIn": RULES_V1.model_dump(exclude={"version"})
    | {"description": "2027 年起：服务时长上限调整为 60 小时", "hours_cap": 60.0},
    "ReviewIn": {"action": "adjust", "credited_hours": 1.5, "reason": "忘记签退，核实服务1.5小时"},
    "MemberServiceIn": {
        "member_id": MEMBER,
        "period": "2026-Q3",
        "rating": 5,
        "comment": "认真负责",
    },
    "ArrangementIn": {"period": "2026-07", "rating": 4, "comment": "安排合理"},
    "UnitSummaryIn": {
        "period": "2026",
        "items": [{"member_id": MEMBER, "grade": "优秀", "comment": "全年坚持每周服务"}],
    },
    "WishIn": {
        "community_id": COMMUNITY,
        "title": "帮忙买药",
        "description": "每月一次，降压药",
        "resident_name": "张奶奶",
        "resident_contact": "南关小区3号楼",
    },
    "DispatchIn": {"assignee_kind": "member", "assignee_id": MEMBER},
    "_In": {"client_event_id": "5b0f2c7e-3d1a-4e8b-9c2f-6a7d8e9f0a1b"},
    "CompleteIn": {"session_id": SESSION},
    "ConfirmIn": {"rating": 5, "comment": "很满意"},
    "ReasonIn": {"reason": "居民已自行解决"},
    "ResourceIn": {
        "unit_id": UNIT,
        "community_id": COMMUNITY,
        "title": "公务车一辆（周末）",
        "description": "可用于接送行动不便的老人",
    },
    "ProjectIn": {"wish_id": WISH, "resource_id": RESOURCE},
    "CampaignIn": {
        "name": "疫情防控",
        "community_id": COMMUNITY,
        "starts_at": "2026-12-01T00:00:00+08:00",
        "ends_at": "2026-12-31T23:59:59+08:00",
        "count_community_stations": True,
        "assignments": [{"grid_id": GRID, "member_ids": [MEMBER], "unit_ids": [UNIT]}],
    },
    "ActivationIn": {"member_id": MEMBER},
    "ActivityIn": {
        "community_id": COMMUNITY,
        "title": "固定服务日：小区环境整治",
        "description": "清理楼道杂物，请自带手套",
        "station_id": "st_0a1b2c3d4e5f6071",
        "recurrence": "every saturday 09:00-11:00",
        "weeks": 4,
        "capacity": 12,
        "signup_lead_minutes": 60,
        "cancel_lead_minutes": 120,
    },
    "CancelIn": {"reason": "天气预警，活动取消"},
    "SignupIn": {"client_event_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"},
    "RedeemIn": {"code": "ABCD-EFGH"},
    "ExcusalIn": {"weeks": ["2026-W50", "2026-W51"], "reason": "business_trip", "note": "省外培训"},
    "DecisionIn": {"decision": "decline", "reason": "该周有固定服务日安排"},
    "PostIn": {
        "community_id": COMMUNITY,
        "grid_id": GRID,
        "kind": "unit_post",
        "title": "3号楼2单元党员责任岗",
        "description": "联系本单元住户，收集需求",
    },
    "PostDecisionIn": {"member_id": MEMBER, "decision": "approve"},
    "PostLeaveIn": {"reason": "工作调动"},
}

# What each error status means, wherever it is documented. Most are added to every operation
# they apply to by `complete` (below); a route names the others with `errors(...)`.
_DESCRIPTIONS = {
    "400": "the body could not be parsed (not JSON, or not the declared media type)",
    "401": "no bearer token, or one that is invalid, expired or revoked",
    "403": "the caller's role may not do this, or the object is outside the caller's scope",
    "404": "no such object visible to this caller (the same answer whether it exists or not)",
    "409": "the object's state, or another object, does not allow this",
    "410": "the object has expired",
    "413": "the body is larger than this route's limit (BODY_MAX_BYTES; check-ins 16 KB; "
    "imports IMPORT_MAX_BYTES)",
    "415": "the body's media type is not one this route reads",
    "422": "the request is invalid; the message names the field",
    "429": "rate limited; see Retry-After",
    "503": "Kafka did not acknowledge: nothing was recorded; retry",
}


def errors(*codes: int, why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route decorator: the error statuses this route answers beyond the
    ones every route of its kind answers, which `complete` adds by itself (400 and 413 with a
    body; 401 and 403 with a bearer token; 404 with an id in the path; 422 with parameters or a
    body; 503 for a write). Each answers the error body; `why` gives a route's own description.

        @router.post("/things", status_code=201, responses=errors(409, 429))
        @router.get("/things/{id}", responses={200: {...}} | errors(410, why={410: "..."}))

    tests/integration/test_contract.py runs schemathesis over HTTP against the live document:
    an answer with a status it does not list fails the suite."""
    why = why or {}
    return {
        code: {"model": ErrorBody, "description": why.get(code) or _DESCRIPTIONS[str(code)]}
        for code in codes
    }


def _error_response(op: dict[str, Any], code: str) -> None:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    resp = op["responses"].setdefault(code, {"description": _DESCRIPTIONS.get(code, "error")})
    content = resp.setdefault("content", {})
    media = content.setdefault("application/json", {})
    if code == "503" and "schema" in media:
        return  # /healthz documents its own 503 body
    media["schema"] = ref


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorDetail, ErrorBody):
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    for name, example in REQUEST_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]
    # FastAPI's own validation-error schemas describe a body this API never sends.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            codes = set(op.get("responses", {}))
            if op.get("security"):
                codes |= {"401", "403"}
            if "{" in path and op.get("security"):
                codes.add("404")
            if op.get("parameters") or "requestBody" in op:
                codes.add("422")
            if "requestBody" in op:
                # An unparsable body (FastAPI answers 400 before validation), and the body limit
                # of api.security, which answers before the route runs.
                codes |= {"400", "413"}
            if method in ("post", "patch", "put", "delete"):
                codes.add("503")
            for code in sorted(codes):
                if code[0] in "45":
                    _error_response(op, code)
    return doc


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
