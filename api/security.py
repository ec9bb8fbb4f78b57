"""Limits before work, and what every answer carries (issue 17).

One ASGI middleware, cheap enough for the check-in path (no per-request objects beyond a
closure):
- **Body limits per route class**, enforced before the route parses anything and before it
  authenticates: a declared `Content-Length` over the limit is answered 413 at once; a body sent
  without one (chunked) is counted while it is read and cut off at the limit. Check-ins are
  small, imports large (`IMPORT_MAX_BYTES`), everything else in between (`BODY_MAX_BYTES`).
- **Authentication before large bodies**: a body over 16 KB is read only for a request whose
  bearer token verifies (signature and expiry; revocation is the route's check): a stranger's
  large body is answered 401 before a byte of it is read (declared length), or at its 16th KB
  (sent without one). Every route that takes a large body needs a token anyway; the public ones
  (redeeming an activation code) take a few bytes.
- **A Content-Security-Policy on every HTML page**: scripts and styles from this origin only
  (the pages ship no inline script), no plugins, no framing, no foreign form targets.
- **`/metrics` behind a setting** (`METRICS_ACCESS`): loopback only (the default: Prometheus
  scrapes from the same host or through a sidecar), a bearer token, or open.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services import metrics
from services.logging import redact_access_log
from services.net import client_of, parse_networks
from services.settings import Settings
from services.tokens import InvalidToken, verify_bearer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Small: a check-in is a few hundred bytes of JSON.
CHECKIN_BODY_MAX_BYTES = 16 * 1024
# The most a request without a valid bearer token may send.
UNAUTHENTICATED_BODY_MAX_BYTES = 16 * 1024


def body_limit(settings: Settings, path: str) -> tuple[int, str]:
    """The largest request body a route class accepts (bytes), and the error code past it."""
    if path == "/v1/checkins":
        return CHECKIN_BODY_MAX_BYTES, "payload_too_large"
    if path.startswith("/v1/imports/"):
        return settings.import_max_bytes, "file_too_large"
    return settings.body_max_bytes, "payload_too_large"


class _TooLarge(Exception):
    pass


class _NotAuthenticated(Exception):
    pass


def _authenticated(settings: Settings, scope: Scope) -> bool:
    for k, v in scope.get("headers", ()):
        if k == b"authorization":
            scheme, _, token = bytes(v).decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return False
            try:
                verify_bearer(settings, token.strip())
            except InvalidToken:
                return False
            return True
    return False


def _error(status: int, code: str, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return headers, body


class Guard:
    """The middleware (pure ASGI: a BaseHTTPMiddleware would cost the check-in path a task and
    a queue per request)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, code = body_limit(self.settings, scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, 413, code, _limit_text(limit))
            return
        if (
            declared is not None
            and declared > UNAUTHENTICATED_BODY_MAX_BYTES
            and not _authenticated(self.settings, scope)
        ):
            await _unauthenticated(send)
            return
        started = False
        # Set when the body was cut off while the app read it: the app may turn the error into
        # an answer of its own (FastAPI answers 400 "error parsing the body"), which is dropped
        # and replaced by this one.
        refusal: _Refusal | None = None
        refused = False

        async def refuse() -> None:
            nonlocal refused
            if refusal is not None and not refused:
                refused = True
                await _answer(send, *refusal)

        async def send_with_csp(message: Message) -> None:
            nonlocal started
            if refusal is not None and not started:
                if message["type"] == "http.response.start":
                    await refuse()
                return
            if message["type"] == "http.response.start":
                started = True
                headers = message.setdefault("headers", [])
                names = {bytes(k).lower(): bytes(v) for k, v in headers}
                if names.get(b"content-type", b"").startswith(b"text/html"):
                    # Pages that set their own (stricter) policy keep it.
                    if b"content-security-policy" not in names:
                        headers.append((b"content-security-policy", CSP.encode()))
                    if b"x-content-type-options" not in names:
                        headers.append((b"x-content-type-options", b"nosniff"))
            await send(message)

        if declared is not None:
            await self.app(scope, receive, send_with_csp)
            return
        seen = 0
        authenticated: bool | None = None

        async def counted() -> Message:
            nonlocal seen, authenticated, refusal
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refusal = (413, code, _limit_text(limit), None)
                    raise _TooLarge
                if seen > UNAUTHENTICATED_BODY_MAX_BYTES:
                    if authenticated is None:
                        authenticated = _authenticated(self.settings, scope)
                    if not authenticated:
                        refusal = _UNAUTHENTICATED
                        raise _NotAuthenticated
            return message

        try:
            await self.app(scope, counted, send_with_csp)
        except (_TooLarge, _NotAuthenticated):
            if started:
                raise
        if not started:
            await refuse()


_Refusal = tuple[int, str, str, list[tuple[bytes, bytes]] | None]
_UNAUTHENTICATED: _Refusal = (
    401,
    "unauthorized",
    "a request body over 16 KB needs a valid bearer token; nothing was read",
    [(b"www-authenticate", b"Bearer")],
)


def _limit_text(limit: int) -> str:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return f"the request body is larger than this route accepts ({size}); nothing was recorded"


def _content_length(scope: Scope) -> int | None:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


async def _unauthenticated(send: Send) -> None:
    await _answer(send, *_UNAUTHENTICATED)


async def _answer(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers, body = _error(status, code, message)
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def client_address(request: Request, settings: Settings) -> str:
    """The client of a request: the connection's peer, or what a configured proxy
    (`TRUSTED_PROXIES`) says it forwarded for; never what a client wrote itself."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return client_of(peer, forwarded, parse_networks(settings.trusted_proxies))


def metrics_allowed(settings: Settings, client_host: str | None, authorization: str) -> bool:
    mode = settings.metrics_access
    if mode == "open":
        return True
    if mode == "token":
        want = f"Bearer {settings.metrics_token}"
        return bool(settings.metrics_token) and hmac.compare_digest(authorization, want)
    try:
        return client_host is not None and ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        # The in-process test client calls itself "testclient": not a network peer.
        return client_host == "testclient"


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(Guard, settings=settings)
    redact_access_log()

    # Operations (issue 7): Prometheus metrics of this process (and its embedded sink).
    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        host: str | None = client_address(request, settings)
        if host == (request.client.host if request.client else None) and (
            "x-forwarded-for" in request.headers or "forwarded" in request.headers
        ):
            # Forwarded by a proxy that is not configured: its peer address (often loopback)
            # is not the client's.
            host = None
        if not metrics_allowed(settings, host, request.headers.get("authorization", "")):
            # As if there were nothing here: the address itself says nothing to a stranger.
            return Response(
                _error(404, "not_found", "Not Found")[1],
                status_code=404,
                media_type="application/json",
            )
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)
