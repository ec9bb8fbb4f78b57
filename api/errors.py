"""Every error is `{"error": {"code", "message"}}` with a 4xx, or 503 when a component is down."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.metrics import CHECKINS as CHECKIN_METRIC
from services.publisher import PublishRefused, PublishUnavailable
from services.registry import NotFound

log = logging.getLogger(__name__)

CHECKIN_PATH = "/v1/checkins"


def _count_refused_checkin(request: Request, code: str) -> None:
    """volunteer_checkins_total{result=<error code>} for refused check-ins (operations)."""
    if request.url.path == CHECKIN_PATH and request.method == "POST":
        CHECKIN_METRIC.labels(result=code).inc()


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        _count_refused_checkin(request, exc.code)
        return _json(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        _count_refused_checkin(request, "invalid_request")
        return _json(422, "invalid_request", _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "malformed_body",  # FastAPI's own: a body that is not parsable JSON
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
        }.get(exc.status_code, "http_error")
        return _json(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _json(404, f"{exc.kind}_not_found", str(exc))

    @app.exception_handler(PublishRefused)
    async def _too_large(_: Request, exc: PublishRefused) -> JSONResponse:
        return _json(413, "payload_too_large", f"{exc}; nothing was recorded")

    @app.exception_handler(PublishUnavailable)
    async def _kafka_down(request: Request, exc: PublishUnavailable) -> JSONResponse:
        _count_refused_checkin(request, "kafka_unavailable")
        log.warning("publish failed: %s", exc)
        return _json(
            503,
            "kafka_unavailable",
            "The event log (Kafka) is not answering; nothing was recorded. Retry with the same "
            "client_event_id.",
            {"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _json(500, "internal_error", "internal error")
