"""The OpenAPI document is complete and matches what the service does.

Static checks need no service: every operation is described, every JSON request body has an
example that its own model accepts, every error is documented with the error body. The live
checks (the documented success status of every operation equals what it answers) are in
test_access_matrix.py, which calls each operation's happy path. Here schemathesis also calls
the in-process app with generated requests: no 5xx, and answers that fit the document.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from api.main import create_app
from api.openapi import REQUEST_EXAMPLES
from services.settings import Settings
from tests.support.stack import Stack

APP = create_app(Settings())
DOC = APP.openapi()
OPS = [
    (method.upper(), path, op) for path, ops in DOC["paths"].items() for method, op in ops.items()
]
SCHEMAS = DOC["components"]["schemas"]


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"].rsplit("/", 1)[1])


def test_every_operation_has_a_summary_a_description_and_a_tag() -> None:
    for method, path, op in OPS:
        assert op.get("summary"), (method, path)
        assert op.get("tags"), (method, path)
    # A route without a docstring is a route nobody explained (who may call it, what it does).
    undocumented = [(m, p) for m, p, op in OPS if not op.get("description")]
    assert not undocumented


def test_every_json_request_body_has_an_example() -> None:
    missing = []
    for method, path, op in OPS:
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        name = _ref_name(content["application/json"]["schema"])
        if not SCHEMAS[name].get("examples"):
            missing.append((method, path, name))
    assert not missing
    assert set(REQUEST_EXAMPLES) <= set(SCHEMAS), set(REQUEST_EXAMPLES) - set(SCHEMAS)


def _body_models() -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(routes: Any) -> None:
        for r in routes:
            if isinstance(r, APIRoute) and r.body_field is not None:
                out[r.body_field.field_info.annotation.__name__] = r.body_field
            inner = getattr(getattr(r, "original_router", None), "routes", None)
            if inner:
                walk(inner)

    walk(APP.routes)
    return out


@pytest.mark.parametrize("name", sorted(REQUEST_EXAMPLES))
def test_each_example_is_accepted_by_its_model(name: str) -> None:
    from pydantic import TypeAdapter

    fields = {
        f.field_info.annotation.__name__.replace("[", "_").replace("]", "_"): f
        for f in _body_models().values()
    }
    assert name in fields, f"no request body model named {name}"
    TypeAdapter(fields[name].field_info.annotation).validate_python(REQUEST_EXAMPLES[name])


def test_every_error_is_documented_with_the_error_body() -> None:
    for method, path, op in OPS:
        responses = op["responses"]
        errors = [c for c in responses if c[0] in "45"]
        assert any(c.startswith("4") for c in errors) or path == "/healthz", (method, path)
        for code in errors:
            schema = responses[code]["content"]["application/json"]["schema"]
            if path == "/healthz":
                continue
            assert _ref_name(schema) == "ErrorBody", (method, path, code)
        if op.get("security"):
            assert "401" in responses, (method, path)
        success = [c for c in responses if c.startswith("2")]
        assert len(success) == 1, (method, path, success)
    assert "HTTPValidationError" not in SCHEMAS


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_schemathesis_finds_no_server_error_and_no_off_schema_answer(stack: Stack) -> None:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    app = stack.client.app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # GETs, and writes that cannot disturb other tests' data or the token rate limit.
    selected = schema.include(method="GET").exclude(path_regex=r"live-code")
    posts = schema.include(path_regex=r"^/v1/(verify|activations/redeem|feedback/)")
    failures: list[str] = []

    def check(case: Any) -> None:
        case.headers = {**(case.headers or {}), **stack.admin}
        response = case.call()
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except Exception as exc:  # collect every operation's failure, report together
            failures.append(f"{case.operation.label}: {str(exc)[:400]}")

    run = settings(
        max_examples=5,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )(check)
    for part in (selected, posts):
        for result in part.get_all_operations():
            given(result.ok().as_strategy())(run)()
    assert not failures, "\n".join(failures[:20])
