"""The error statuses of the OpenAPI document come from one place (api.openapi): `complete`
adds what every operation of a kind answers, `errors(...)` what one route answers beyond that.
The live proof that no answer is undocumented is tests/integration/test_contract.py. No network.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from api import openapi
from api.main import create_app
from api.openapi import errors
from services.settings import Settings

DOC = create_app(Settings()).openapi()
OPS = [(m.upper(), p, op) for p, ops in DOC["paths"].items() for m, op in ops.items()]
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


class Thing(BaseModel):
    name: str


def _schema(op: dict[str, Any], code: str) -> Any:
    return op["responses"][code]["content"]["application/json"]["schema"]


def test_errors_builds_documented_error_answers() -> None:
    built = errors(409, 429, why={409: "the name is taken"})
    assert list(built) == [409, 429]
    assert built[409]["description"] == "the name is taken"
    assert built[429]["description"] == "rate limited; see Retry-After"
    assert all(v["model"] is openapi.ErrorBody for v in built.values())
    with pytest.raises(KeyError):
        errors(418)  # a status nobody described is a mistake, not a silent default


def test_a_route_using_errors_documents_them_with_the_error_body() -> None:
    app = FastAPI()
    openapi.install(app)

    @app.post("/things", status_code=201, responses=errors(409))
    def create(body: Thing) -> Thing:
        return body

    @app.get("/open")
    def open_() -> dict[str, str]:
        return {}

    doc = app.openapi()
    op = doc["paths"]["/things"]["post"]
    # Its own 409, and what every body answers: unparsable (400), too large (413), invalid (422).
    assert {"201", "400", "409", "413", "422", "503"} <= set(op["responses"])
    for code in ("400", "409", "413", "422", "503"):
        assert _schema(op, code) == ERROR_BODY, code
    # No body, no parameters, no token: nothing but its success.
    assert set(doc["paths"]["/open"]["get"]["responses"]) == {"200"}


def test_every_operation_with_a_body_documents_unparsable_and_too_large() -> None:
    with_body = [(m, p, op) for m, p, op in OPS if "requestBody" in op]
    assert len(with_body) >= 40
    for method, path, op in with_body:
        for code in ("400", "413", "422"):
            assert _schema(op, code) == ERROR_BODY, (method, path, code)


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("POST", "/v1/checkins", {"400", "401", "403", "404", "413", "422", "429", "503"}),
        ("POST", "/v1/auth/tokens", {"429"}),
        ("POST", "/v1/members", {"409"}),
        ("POST", "/v1/members/bulk", {"409"}),
        ("PATCH", "/v1/grids/{grid_id}", {"404", "409"}),
        ("POST", "/v1/station-kinds", {"409"}),
        ("GET", "/v1/verify/{code}", {"404"}),
        ("GET", "/v1/stations/{station_id}/live-code", {"401", "404"}),
        ("POST", "/v1/activations", {"404"}),
        ("POST", "/v1/activations/redeem", {"404", "409", "410", "429"}),
        ("POST", "/v1/projects", {"404", "409"}),
        ("POST", "/v1/wishes/{wish_id}/confirm", {"409"}),
        ("POST", "/v1/resources/{resource_id}/withdraw", {"409"}),
        ("POST", "/v1/members/{member_id}/service-records", {"409"}),
    ],
)
def test_route_specific_statuses_are_documented(method: str, path: str, codes: set[str]) -> None:
    op = DOC["paths"][path][method.lower()]
    assert codes <= set(op["responses"]), codes - set(op["responses"])
    for code in codes:
        assert _schema(op, code) == ERROR_BODY, code
