"""`make run`: Kafka, the faust worker and the API (with the embedded sink), in the foreground.

Ctrl-C or SIGTERM stops everything this started, in order: the API (which flushes its sink),
the worker, then the broker. Nothing is left running.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn

from api.main import create_app
from infra.kafka import Broker, KafkaError, create_topics, fetch
from services.settings import Settings, get_settings

log = logging.getLogger("run")
ROOT = Path(__file__).resolve().parent.parent


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


def load_demo(settings: Settings) -> dict[str, Any]:
    """One unit, one community, a station and a member, created once through the public API."""
    marker = settings.data_dir / "demo.json"
    if marker.exists():
        demo: dict[str, Any] = json.loads(marker.read_text())
        try:
            _call(settings, "GET", f"/v1/stations/{demo['station']['id']}")
            return demo
        except urllib.error.HTTPError:
            pass  # the data folder was reset: create the demo again
    unit = _call(settings, "POST", "/v1/units", {"name": "陇西县财政局"})
    community = _call(settings, "POST", "/v1/communities", {"name": "巩昌镇城关社区"})
    station = _call(
        settings,
        "POST",
        "/v1/stations",
        {"community_id": community["id"], "name": "城关社区党群服务站", "kind": "service_station"},
    )
    member = _call(
        settings,
        "POST",
        "/v1/members",
        {"name": "张伟", "unit_id": unit["id"], "community_id": community["id"]},
    )
    demo = {"unit": unit, "community": community, "station": station, "member": member}
    marker.write_text(json.dumps(demo, ensure_ascii=False, indent=2))
    return demo


def announce(settings: Settings, demo: dict[str, Any]) -> None:
    member_token = _call(
        settings, "POST", "/v1/auth/tokens", {"role": "member", "subject_id": demo["member"]["id"]}
    )["token"]
    base = settings.public_url
    st = demo["station"]
    print(
        f"""
==== 龙溪在职党员志愿服务 is running ====
Station QR code (PNG):  {base}/v1/stations/{st["id"]}/qr?format=png
    curl -H 'Authorization: Bearer {settings.admin_token}' -o qr.png '{base}/v1/stations/{st["id"]}/qr?format=png'
What the QR opens:      {st["qr_url"]}
Member page ({demo["member"]["name"]}, binds this browser):
                        {base}/me?t={member_token}
API docs:               {base}/docs
Health:                 {base}/healthz
Press Ctrl-C to stop everything.
""",
        flush=True,
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fetch()
    broker = Broker.from_settings(settings)
    worker: subprocess.Popen[bytes] | None = None
    try:
        broker.start()
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        create_topics(broker.bootstrap, settings.topic_prefix)
        worker_log = (settings.data_dir / "worker.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "-l", "info"],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("faust worker started (pid %d, log %s)", worker.pid, worker_log.name)

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host=settings.api_host,
                port=settings.api_port,
                log_level="info",
            )
        )

        def after_start() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.2)
            if server.should_exit:
                return
            try:
                announce(settings, load_demo(settings))
            except Exception:
                log.exception("loading the demo failed")

        threading.Thread(target=after_start, daemon=True).start()
        # uvicorn turns SIGINT/SIGTERM into a graceful shutdown of the API and its sink.
        server.run()
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        log.info("stopped: API, worker and Kafka")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
