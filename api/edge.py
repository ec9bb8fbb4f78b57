"""The check-in edge (issue 16): `POST /v1/checkins` in processes of its own, N on one port.

A scan needs tokens (the secret), the registry replica, the revocation list, rate limits and a
Kafka producer, never ClickHouse: an edge reads what it needs from Kafka (services.edge_feed)
and never opens chDB, so in the embedded mode one process (the reads process: `api.main`) owns
chDB, serves every other route and runs the sink, while any number of edges take the scans.

**One public port.** The edges hold the public port (`API_PORT`) together, each binding it
with SO_REUSEPORT: the kernel spreads new connections over them evenly, each edge is a plain
process of its own (started, stopped, restarted and scraped alone), and one that stops takes
only its own connections with it. Each edge serves its own routes (the check-in, `/healthz`,
`/metrics`) and passes every other request, streamed both ways, to the reads process
(`EDGE_UPSTREAM`), appending the peer to X-Forwarded-For (the reads process lists the edges in
`TRUSTED_PROXIES`). So a county runs one program on one port with nothing in front of it, the
same in `make run` and in docker-compose; the pages, which call `/v1/...` on their own origin,
need no second address and no CORS. (A split in front, nginx or a cloud balancer routing
`/v1/checkins` to the edges' port, works as well where a county has one: the edge answers
only its own routes when `EDGE_UPSTREAM` is empty.)

Why SO_REUSEPORT rather than `uvicorn --workers N`: uvicorn's workers accept on one shared
socket and its supervisor restarts them as one group; with SO_REUSEPORT each process has its own
accept queue, the balance is the kernel's hash, and `make run` supervises the edges like the
worker (infra.stack.Proc: own log, stopped by pid, gone with its parent). Measured, it is at
least as cheap per check-in (docs/benchmarks.md, section 2c: 484 against 591 µs of CPU at two
processes).

Limits: each edge keeps its own token buckets (services.ratelimit), so with N edges a member's
burst is at most N x LIMIT_CHECKINS_MEMBER_BURST (README "The check-in edge"); activation
attempts are not an edge's: they go to the one reads process, whose limiter stays exact.

`python -m api.edge` runs one edge; `python -m api.edge --processes N` (docker-compose) runs N
and stops them together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api import errors, security
from api.context import Limits
from api.responses import ShownJSONResponse
from api.routers import checkins
from services.edge_feed import EdgeFeed, EdgeHistory, MemberChanges, RevokedTokens
from services.net import port_open
from services.publisher import Publisher, PublishUnavailable
from services.registry import CheckinRefs, CheckinReplica, NotFound
from services.sessions import SessionRules
from services.settings import Settings, get_settings, require_secrets

log = logging.getLogger("edge")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What an edge answers itself; everything else goes to the reads process.
EDGE_PATHS = frozenset({"/v1/checkins", "/healthz", "/metrics"})
READY_LOG = "edge ready"


class _NoDatabase:
    """An edge has no database; the feed's replica never asks one (it is fed, not refreshed)."""

    def query(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a check-in edge does not read ClickHouse")


@dataclass
class EdgeContext:
    """An edge's `api.context.ScanContext`: everything from Kafka and the settings."""

    settings: Settings
    publisher: Publisher
    replica: CheckinReplica
    member_history: EdgeHistory
    revocations: RevokedTokens
    feed: EdgeFeed
    limits: Limits = field(init=False)
    session_rules: SessionRules = field(init=False)

    def __post_init__(self) -> None:
        self.limits = Limits.from_settings(self.settings)
        self.session_rules = SessionRules.from_settings(self.settings)

    async def checkin_refs(self, station_id: str, member_id: str) -> CheckinRefs:
        # Created a moment ago through the reads process, perhaps: read the log to its end once.
        await asyncio.to_thread(self.feed.catch_up, self.settings.edge_catch_up_s)
        refs = self.replica.lookup(station_id, member_id)
        if refs is not None:
            return refs
        if not self.replica.fresh:
            # The log cannot be read: the scan could not be published either.
            raise PublishUnavailable("the registry topics are not readable")
        gone = self.replica.missing(station_id, member_id)
        if gone is not None and gone[0] == "station":
            raise NotFound("station", station_id)
        # The member, or a grid their record names that the log does not hold (never written).
        raise NotFound("member", member_id)


def create_edge_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    require_secrets(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replica = CheckinReplica(_NoDatabase())  # type: ignore[arg-type]
        history, revoked = MemberChanges(), RevokedTokens()
        feed = EdgeFeed(settings, replica, history, revoked)
        started = time.monotonic()
        await asyncio.to_thread(feed.start)
        publisher = Publisher(settings)
        await publisher.start()
        member_history = EdgeHistory(history, replica, feed.catch_up, settings.edge_catch_up_s)
        app.state.ctx = EdgeContext(settings, publisher, replica, member_history, revoked, feed)
        # The same collector tuning as the reads process (its registry replica is as large).
        from api.main import _tune_gc

        _tune_gc()
        # The history's window is read after this, in the background (services.edge_feed).
        log.info(
            "%s (pid %d): %d registry entries and %d revoked tokens from %d records of the "
            "compacted topics in %.1f s",
            READY_LOG,
            os.getpid(),
            len(replica),
            len(revoked),
            sum(feed.consumed_at_ready.values()),
            time.monotonic() - started,
        )
        try:
            yield
        finally:
            feed.stop()
            await publisher.aclose()
            publisher.close()

    app = FastAPI(
        title="龙溪在职党员志愿服务 check-in edge",
        lifespan=lifespan,
        default_response_class=ShownJSONResponse,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    security.install(app, settings)
    app.include_router(checkins.router)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """This edge: Kafka reachable and its registry read to the log's end within the
        replica's bound (503 otherwise: it cannot take scans); the reads process behind it is
        named (`degraded` while it does not answer: check-ins go on, pages do not)."""
        ctx: EdgeContext = app.state.ctx
        hosts = [h.rsplit(":", 1) for h in settings.kafka_bootstrap.split(",")]
        kafka = False
        for host, port in hosts:
            if await asyncio.to_thread(port_open, host, int(port), 1.0):
                kafka = True
                break
        kafka = kafka and ctx.publisher.failing_for() < 10.0
        fresh = ctx.replica.fresh
        reads = None
        if settings.edge_upstream:
            reads = "ok" if await _upstream_ok(settings.edge_upstream) else "down"
        ok = kafka and fresh
        body = {
            "status": "ok" if ok and reads != "down" else "degraded" if ok else "down",
            "role": "edge",
            "pid": os.getpid(),
            "kafka": "ok" if kafka else "down",
            "registry": "ok" if fresh else "stale",
            "registry_caught_up_s_ago": round(min(ctx.feed.caught_up_s_ago, 1e9), 3),
            "reads": reads,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    if not settings.edge_upstream:
        return app
    return PassThrough(app, settings.edge_upstream)  # type: ignore[return-value]


async def _upstream_ok(upstream: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as c:
            r = await c.get(f"{upstream.rstrip('/')}/healthz")
            return r.status_code < 500
    except httpx.HTTPError:
        return False


# Hop-by-hop headers (RFC 9110 7.6.1): one connection's, never passed on.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


class PassThrough:
    """ASGI: the edge's own paths to the edge app, every other request streamed to the reads
    process and its answer streamed back (status, headers and bytes as they are)."""

    def __init__(self, app: Any, upstream: str) -> None:
        self.app = app
        self.upstream = upstream.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Exports and imports may take minutes; connecting may not.
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(connect=5.0, read=600.0, write=600.0, pool=10.0),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] in EDGE_PATHS):
            await self.app(scope, receive, send)
            if scope["type"] == "lifespan" and self._client is not None:
                await self._client.aclose()
            return
        if scope["type"] != "http":  # websockets: none are served
            await send({"type": "websocket.close", "code": 1000})
            return
        await self._pass(scope, receive, send)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = []
        forwarded: list[bytes] = []
        has_body = False
        for k, v in scope["headers"]:
            name = bytes(k).lower()
            if name in _HOP:
                has_body = has_body or name == b"transfer-encoding"
                continue
            if name == b"x-forwarded-for":
                forwarded.append(bytes(v))
                continue
            if name == b"content-length":
                has_body = True
            headers.append((name, bytes(v)))
        peer = scope.get("client")
        if peer:
            forwarded.append(str(peer[0]).encode())
        if forwarded:
            headers.append((b"x-forwarded-for", b", ".join(forwarded)))

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = self.upstream + bytes(path).decode("latin-1")
        if query:
            url += "?" + bytes(query).decode("latin-1")
        client = self._http()
        request = client.build_request(
            scope["method"], url, headers=headers, content=body() if has_body else None
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("the reads process did not answer %s %s: %s", scope["method"], url, exc)
            status, code = 503, "reads_unavailable"
            payload = errors.error_body(
                code, "the reads process is not answering; check-ins still work, retry later"
            )
            data = json.dumps(payload).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(data)).encode()),
                        (b"retry-after", b"5"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": data})
            return
        try:
            out = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


# ---- processes ------------------------------------------------------------------------------


def listen_shared(host: str, port: int) -> socket.socket:
    """The public port, bound with SO_REUSEPORT so every edge process binds it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def listen_own(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve_one(settings: Settings) -> None:
    """One edge process on the shared port (and on its own metrics port, if set)."""
    import uvicorn

    from api.main import SERVER_OPTIONS
    from services.logging import configure as configure_logging
    from services.logging import uvicorn_log_config

    configure_logging(settings.log_format)
    sockets = [listen_shared(settings.api_host, settings.api_port)]
    index = int(os.environ.get("EDGE_INDEX", "0"))
    if settings.edge_metrics_port:
        sockets.append(listen_own(settings.metrics_host, settings.edge_metrics_port + index))
    quiet = os.environ.get("EDGE_ACCESS_LOG", "0") != "1"
    config = uvicorn.Config(
        create_edge_app(settings),
        log_level="info",
        access_log=not quiet,
        log_config=uvicorn_log_config(settings.log_format),
        **SERVER_OPTIONS,
    )
    uvicorn.Server(config).run(sockets=sockets)


def serve_many(n: int) -> int:
    """N edge processes (`python -m api.edge`, EDGE_INDEX 0..N-1); a stop signal goes to each,
    and when one exits on its own the others are stopped too (a container restarts the lot)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "api.edge"], env={**os.environ, "EDGE_INDEX": str(k)}
        )
        for k in range(n)
    ]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    code = 0
    while any(p.poll() is None for p in procs):
        for p in procs:
            if p.poll() is not None and not stopping:
                log.error("edge %d exited (%s): stopping the others", p.pid, p.returncode)
                code = p.returncode or 1
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = get_settings()
    require_secrets(settings)
    if args[:1] == ["--processes"]:
        n = int(args[1]) if len(args) > 1 else settings.edges
        return serve_many(max(1, n))
    serve_one(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
