"""`make run`: Kafka, the faust worker and the API (with the embedded sink), in the foreground.

With check-in edges (`CHECKIN_EDGES`), they hold the public port and this process supervises
them: one that dies on its own is started again with backoff (`infra.stack.Supervisor`).

SIGINT (Ctrl-C), SIGTERM or SIGHUP, to this process alone or to its process group, stops
everything this started, in order: the API (which flushes its sink), the worker, then the
broker. Nothing is left running (tests/integration/test_stops.py sends each signal both ways).

`--no-demo` skips loading the demo county (the stop tests, or a deployment of its own data).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn

from api.main import SERVER_OPTIONS, create_app
from infra import stack
from infra.kafka import Broker, KafkaError, fetch
from services import local_secrets, metrics
from services.demo.county import County, generate
from services.demo.loader import LoadedCounty, admin_client, load_county, load_posts
from services.logging import configure as configure_logging
from services.logging import uvicorn_log_config
from services.settings import InsecureSecrets, Settings, get_settings, require_secrets
from services.tokens import issue_bearer
from services.topics import Retention

log = logging.getLogger("run")


def _call(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{settings.api_port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {settings.admin_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def prepare_secrets() -> tuple[Settings, Path, list[str]]:
    """The settings `make run` starts with: SECRET_KEY and ADMIN_TOKEN from the environment (or
    `.env`) where set, otherwise from DATA_DIR's secrets file, generated on the first start
    (services.local_secrets). They go into this process's environment, so the worker it starts
    signs and verifies with the same ones. Returns the settings, the file and the names taken
    from it."""
    path, taken = local_secrets.apply(Settings(), os.environ)
    get_settings.cache_clear()
    return get_settings(), path, taken


def admin_token_hint(settings: Settings) -> tuple[str, str]:
    """Where the admin token is, for people and for a shell. Never the token itself: `make run`'s
    output ends up in terminals' scrollback, shared screens and CI logs, and the admin token
    never expires and cannot be revoked (it is configuration). The role tokens printed beside it
    expire and can be revoked."""
    path = local_secrets.path_in(settings.data_dir)
    try:
        stored = local_secrets.read(path)["ADMIN_TOKEN"]
    except (OSError, local_secrets.UnsafeSecretsFile):
        stored = None
    if stored is not None and hmac.compare_digest(stored, settings.admin_token):
        return (
            f"ADMIN_TOKEN in {path} (not printed: this output may end up in shared logs)",
            f"$(sed -n 's/^ADMIN_TOKEN=//p' {path})",
        )
    return "the ADMIN_TOKEN you set (not printed)", "$ADMIN_TOKEN"


def load_demo(settings: Settings) -> tuple[County, LoadedCounty]:
    """The demo county (services.demo), loaded through the public API as an office would.

    Idempotent: a re-run finds every unit, community, grid, station and member (by name, and
    members by phone) and creates nothing, so restarting `make run` is as fast as the first.
    """
    county = generate()

    async def load() -> LoadedCounty:
        async with admin_client(f"http://127.0.0.1:{settings.api_port}", settings.admin_token) as c:
            loaded = await load_county(c, county)
            # Standing posts (岗位认领): the case's 484 unit posts and 140 building groups.
            loaded.created |= await load_posts(
                c, county, loaded, lambda m: issue_bearer(settings, "member", m)
            )
            return loaded

    t = time.monotonic()
    loaded = asyncio.run(load())
    log.info(
        "demo county loaded in %.1fs (created %s; import: %s)",
        time.monotonic() - t,
        loaded.created,
        {k: v for k, v in (loaded.import_result or {}).items() if k != "errors"},
    )
    return county, loaded


def announce(settings: Settings, county: County, loaded: LoadedCounty) -> None:
    def token(role: str, subject_id: str) -> str:
        body = {"role": role, "subject_id": subject_id}
        return str(_call(settings, "POST", "/v1/auth/tokens", body)["token"])

    base = settings.public_url
    home = county.communities[0]
    member = next(m for m in county.members if m.community_key == home.key)
    unit = county.unit(member.unit_key)
    picks = [s for s in county.stations if s.community_key == home.key][:2]
    picks += [s for s in county.stations if s.kind == "member_post"][:1]
    stations = "\n".join(
        f"  {s.name}\n    poster (PNG):  {base}/v1/stations/{loaded.stations[s.key]['id']}/qr?format=png"
        f"\n    what it opens: {loaded.stations[s.key]['qr_url']}"
        for s in picks
    )
    admin_where, admin_shell = admin_token_hint(settings)
    member_token = token("member", loaded.members[member.key])
    organizer = token("organizer", loaded.communities[home.key])
    hr = token("hr", loaded.units[unit.key])
    county_office = token("county", "county")
    first_town = county.towns[0] if county.towns else None
    town_office = token("town", loaded.towns[first_town.key]) if first_town else ""
    print(
        f"""
==== 龙溪在职党员志愿服务 is running: demo county 巩昌镇 and 文峰镇 ====
{len(county.communities)} communities, {len(county.stations)} stations and posts, \
{len(county.grids)} grids, {len(county.units)} units, {len(county.members)} members.

Station QR codes (posters need the admin's or that community's organizer's token):
{stations}
    curl -H "Authorization: Bearer {admin_shell}" -o qr.png \
      '{base}/v1/stations/{loaded.stations[picks[0].key]["id"]}/qr?format=png'

Member page ({member.name}, {unit.name}, {home.name}; binds this browser):
  {base}/me?t={member_token}
Organizer dashboard of {home.name} (signs in with the token in the link):
  {base}/org?t={organizer}
HR page of {unit.name}:
  {base}/hr?t={hr}
County page (the county office; a town office starts at its town):
  {base}/county?t={county_office}
  {base}/county?t={town_office}
Admin token: {admin_where}

API docs: {base}/docs        Health: {base}/healthz
Simulate a week of scans: .venv/bin/python -m services.demo.simulate --weeks 1 --rate 200
Press Ctrl-C to stop everything.
""",
        flush=True,
    )


# The signals that stop `make run`: what a terminal (Ctrl-C, a closed window), a service
# manager or a container runtime sends.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Serving:
    server: uvicorn.Server | None = None


def _interrupt(signum: int, frame: object) -> None:
    # While the API serves, uvicorn's own handlers take SIGINT and SIGTERM (a graceful
    # shutdown that flushes the sink, then it raises the signal again, landing here after the
    # server stopped). It does not take SIGHUP, whose default would end this process on the
    # spot and leave the worker and the broker (each in a session of its own) running: the same
    # graceful shutdown. Before and after serving, the cleanup in main() runs instead.
    server = _Serving.server
    if server is not None and not server.should_exit:
        server.should_exit = True
        return
    raise KeyboardInterrupt


def _ignore(signum: int, frame: object) -> None:
    log.info("already stopping (signal %d ignored)", signum)


def _stopping() -> None:
    """From here on the cleanup runs to its end: a second signal (a supervisor's repeat, make's
    forwarded SIGTERM) must not cut it short and leave the worker or the broker running."""
    _Serving.server = None
    for sig in STOP_SIGNALS:
        signal.signal(sig, _ignore)


def behind_edges(settings: Settings) -> Settings:
    """The reads process's settings behind local edges: the edges (on loopback) are proxies
    whose X-Forwarded-For names the client (the activation limiter keys on it)."""
    trusted = ",".join(x for x in (settings.trusted_proxies, "127.0.0.1/32", "::1/128") if x)
    return settings.model_copy(update={"trusted_proxies": trusted})


def main() -> int:
    try:
        settings, secrets_path, generated = prepare_secrets()
        require_secrets(settings)
    except (InsecureSecrets, local_secrets.UnsafeSecretsFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings.log_format)
    if generated:
        log.info("%s from %s", " and ".join(generated), secrets_path)
    # The demo loader's requests are already in uvicorn's access log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fetch()
    broker = Broker.from_settings(settings)
    # The worker reads the same environment as this process (the settings came from it).
    worker = stack.worker_proc("worker", stack.child_env(), settings.data_dir / "worker.log")
    demo = "--no-demo" not in sys.argv[1:]
    edges: list[stack.Proc] = []
    seen: list[int] = []
    supervisor: stack.Supervisor | None = None
    # From here on a signal stops what was started, while the broker starts too.
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    try:
        stack.start_broker(broker, settings.topic_prefix, retention=Retention.of(settings))
    except BaseException as exc:
        _stopping()
        # Only a broker this run started is stopped (never one found on the port).
        if broker.process is not None:
            broker.stop()
        if isinstance(exc, KafkaError):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, KeyboardInterrupt):
            log.info("stopped while starting Kafka")
            return 0
        raise
    try:
        # Not waited for: the API and the demo load need the broker, not the worker, which
        # catches up with the log when it is ready.
        worker.start()
        log.info("faust worker started (pid %d, log %s)", worker.pid, worker.log_path)
        # With edges (CHECKIN_EDGES, api/edge.py) they hold the public port and take the
        # check-ins; this process serves every other route on a loopback port behind them.
        reads_settings, host, port = settings, settings.api_host, settings.api_port
        if settings.edges:
            host, port = "127.0.0.1", settings.reads_port or stack.free_port()
            reads_settings = behind_edges(settings)
            env = stack.child_env(extra={"EDGE_UPSTREAM": f"http://{host}:{port}"})
            edges = stack.edge_procs(settings.edges, env, settings.data_dir)
            # Their logs keep earlier runs' lines: only a line written after this start counts.
            seen = [e.log_bytes().count(stack.EDGE_READY) for e in edges]
            for e in edges:
                e.start()
            # A dead edge is started again (with backoff), the others holding the port
            # meanwhile; counted in volunteer_edge_restarts_total on the reads process's /metrics.
            supervisor = stack.Supervisor(
                edges, on_restart=lambda e: metrics.EDGE_RESTARTS.labels(edge=e.name).inc()
            )
            supervisor.start()
            log.info(
                "%d check-in edges started on port %d (pids %s, logs %s/edge*.log); "
                "reads process on %s:%d",
                len(edges),
                settings.api_port,
                ", ".join(str(e.pid) for e in edges),
                settings.data_dir,
                host,
                port,
            )

        server = _Serving.server = uvicorn.Server(
            uvicorn.Config(
                create_app(reads_settings),
                host=host,
                port=port,
                log_level="info",
                log_config=uvicorn_log_config(settings.log_format),
                **SERVER_OPTIONS,
            )
        )

        def after_start() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.2)

            def edges_ready() -> bool:
                return all(
                    e.log_bytes().count(stack.EDGE_READY) > before or not e.alive
                    for e, before in zip(edges, seen, strict=True)
                )

            while not edges_ready() and not server.should_exit:
                time.sleep(0.2)
            if edges:
                log.info("check-in edges serving on port %d", settings.api_port)
            if server.should_exit or not demo:
                return
            try:
                announce(settings, *load_demo(settings))
            except Exception:
                log.exception("loading the demo failed")

        threading.Thread(target=after_start, daemon=True).start()
        # uvicorn turns SIGINT/SIGTERM into a graceful shutdown of the API and its sink, then
        # re-raises the signal with the handlers it found (ours: a KeyboardInterrupt, so the
        # cleanup below runs either way).
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        log.info("stopped: API")
    except KeyboardInterrupt:
        log.info("interrupted while starting")
    finally:
        _stopping()
        if supervisor is not None:
            supervisor.stop()
        stack.stop_all(edges)
        if edges:
            log.info("stopped: check-in edges")
        worker.stop(timeout_s=30)
        log.info("stopped: worker")
        broker.stop()
        log.info("stopped: API, worker and Kafka")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
