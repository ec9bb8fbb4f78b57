"""The check-in edge (issue 16): two real edge processes on one port in front of the reads
process, taking check-ins from what they read on Kafka, never opening chDB.

The reads process is the module's stack API (embedded chDB and sink), served over HTTP on a
loopback port of its own; the edges (`python -m api.edge`, started by infra.stack as `make run`
starts them) share another port with SO_REUSEPORT and pass every other request to it."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from infra import stack as infra_stack
from infra.kafka import create_topics
from services import topics
from services.edge_feed import EdgeFeed, EdgeHistory, MemberChanges, RevokedTokens
from services.events import FieldChange, Member, MemberUpserted, RegistryChanged
from services.reads.registry import MemberThen
from services.registry import CheckinReplica
from services.tokens import issue_bearer, sign_station
from tests.support.net import free_port
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

BURST = 4
PER_MIN = 0.5  # a slow refill: the bound below counts it by the elapsed time


def _free_pair() -> int:
    """A port p with p + 1 free too (each edge's own metrics port is EDGE_METRICS_PORT + k)."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two adjacent free ports")


@dataclass
class Edges:
    port: int
    metrics_port: int
    procs: list[infra_stack.Proc]
    reads_port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def edges(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edges]:
    # The reads process: the stack's app (lifespan already run by its TestClient) over HTTP.
    reads_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            stack.client.app, host="127.0.0.1", port=reads_port, lifespan="off", log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started
    port, metrics_port = free_port(), _free_pair()
    env = infra_stack.child_env(
        stack.settings,
        {
            "API_PORT": str(port),
            "EDGE_UPSTREAM": f"http://127.0.0.1:{reads_port}",
            "EDGE_METRICS_PORT": str(metrics_port),
            "METRICS_ACCESS": "open",
            "LIMIT_CHECKINS_MEMBER_BURST": str(BURST),
            "LIMIT_CHECKINS_MEMBER_PER_MIN": str(PER_MIN),
        },
    )
    procs = infra_stack.edge_procs(2, env, tmp_path_factory.mktemp("edges"))
    try:
        infra_stack.start_edges(procs, timeout_s=120)
        yield Edges(port, metrics_port, procs, reads_port)
    finally:
        infra_stack.stop_all(procs)
        server.should_exit = True
        thread.join(timeout=10)


def _station_and_member(stack: Stack, tag: str) -> tuple[str, str, str]:
    unit = stack.create("/v1/units", {"name": f"边缘单位{tag}"})["id"]
    c = stack.create("/v1/communities", {"name": f"边缘社区{tag}"})["id"]
    station = stack.create(
        "/v1/stations", {"community_id": c, "name": f"边缘站{tag}", "kind": "service_station"}
    )["id"]
    member = stack.create(
        "/v1/members", {"name": f"边缘{tag}", "unit_id": unit, "community_id": c}
    )["id"]
    return station, member, unit


def _scan(
    stack: Stack, e: Edges, station: str, headers: dict[str, str], at: datetime | None = None
) -> httpx.Response:
    body: dict[str, str] = {
        "station_token": sign_station(stack.settings, station),
        "action": "in",
        "client_event_id": str(uuid.uuid4()),
    }
    if at is not None:
        body["scanned_at"] = at.isoformat()
    # A connection of its own: the kernel picks an edge per connection.
    with httpx.Client(timeout=30) as c:
        return c.post(e.url("/v1/checkins"), json=body, headers=headers)


def _stored(stack: Stack, event_ids: list[str]) -> dict[str, tuple[str, str]]:
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    rows = wh.query(
        "SELECT event_id, unit_id, member_id FROM checkins FINAL WHERE event_id IN %(e)s",
        {"e": event_ids},
    )
    return {str(a): (str(b), str(c)) for a, b, c in rows}


def test_both_edges_serve_the_one_port_and_neither_opens_chdb(stack: Stack, edges: Edges) -> None:
    pids = set()
    for _ in range(40):
        r = httpx.get(edges.url("/healthz"), timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["role"] == "edge" and body["kafka"] == "ok" and body["registry"] == "ok"
        assert body["reads"] == "ok"
        pids.add(body["pid"])
    assert pids == {p.pid for p in edges.procs}
    for p in edges.procs:
        maps = Path(f"/proc/{p.pid}/maps").read_text()
        assert "chdb" not in maps.lower(), f"{p.name} loaded chDB"
    # Each edge answers alone on its own port, for Prometheus to scrape every one.
    for k, p in enumerate(edges.procs):
        own = f"http://127.0.0.1:{edges.metrics_port + k}"
        assert httpx.get(f"{own}/healthz", timeout=10).json()["pid"] == p.pid
        text = httpx.get(f"{own}/metrics", timeout=10).text
        assert "volunteer_checkins_total" in text


def test_a_member_created_through_the_reads_process_checks_in_at_once_through_an_edge(
    stack: Stack, edges: Edges
) -> None:
    station, member, unit = _station_and_member(stack, "甲")
    token = stack.token("member", member)
    # No wait: the edge that misses the member reads the log to its end once.
    r = _scan(stack, edges, station, token)
    assert r.status_code == 202, r.text
    event = r.json()["event_id"]
    got = stack.wait_for(lambda: _stored(stack, [event]), timeout=60)
    assert got == {event: (unit, member)}


def test_unknown_ids_bad_tokens_and_bad_bodies_are_refused_by_the_edge(
    stack: Stack, edges: Edges
) -> None:
    station, member, _ = _station_and_member(stack, "乙")
    token = stack.token("member", member)
    # Signed here: the API issues tokens only for members that exist.
    ghost = {"Authorization": "Bearer " + issue_bearer(stack.settings, "member", "mem_nobody")}
    r = _scan(stack, edges, station, ghost)
    assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found", r.text
    r = _scan(stack, edges, "sta_nowhere", token)
    assert r.status_code == 404 and r.json()["error"]["code"] == "station_not_found", r.text
    with httpx.Client(timeout=30) as c:
        body = {"station_token": "garbage", "action": "in", "client_event_id": str(uuid.uuid4())}
        r = c.post(edges.url("/v1/checkins"), json=body, headers=token)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_station_token"
        r = c.post(edges.url("/v1/checkins"), json={"action": "sideways"}, headers=token)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = c.post(edges.url("/v1/checkins"), content=b"{not json", headers=token)
        assert r.status_code in (400, 422), r.text
        r = c.post(edges.url("/v1/checkins"), json={}, headers={})
        assert r.status_code == 401


def test_a_token_revoked_through_the_reads_process_is_refused_by_every_edge(
    stack: Stack, edges: Edges
) -> None:
    station, member, _ = _station_and_member(stack, "丙")
    token = stack.token("member", member)
    assert _scan(stack, edges, station, token).status_code == 202
    r = stack.client.post(
        "/v1/auth/revoke", json={"token": token["Authorization"][7:]}, headers=stack.admin
    )
    assert r.status_code in (200, 202, 204), r.text
    time.sleep(1.5)  # a poll of the feed; well inside the 2 s the README promises
    codes = {_scan(stack, edges, station, token).status_code for _ in range(8)}
    assert codes == {401}


def test_a_late_scan_before_a_move_keeps_the_old_unit_on_the_edge(
    stack: Stack, edges: Edges
) -> None:
    station, member, old_unit = _station_and_member(stack, "丁")
    new_unit = stack.create("/v1/units", {"name": "边缘新单位"})["id"]
    made_at = datetime.now(UTC) - timedelta(hours=2)
    r = stack.client.patch(f"/v1/members/{member}", json={"unit_id": new_unit}, headers=stack.admin)
    assert r.status_code == 200, r.text
    token = stack.token("member", member)
    time.sleep(1.0)
    late = _scan(stack, edges, station, token, at=made_at)
    now = _scan(stack, edges, station, token)
    assert late.status_code == 202 and now.status_code == 202, (late.text, now.text)
    events = [late.json()["event_id"], now.json()["event_id"]]
    got = stack.wait_for(lambda: (g := _stored(stack, events)) and len(g) == 2 and g, timeout=60)
    assert got == {events[0]: (old_unit, member), events[1]: (new_unit, member)}


def test_other_routes_pass_through_to_the_reads_process(stack: Stack, edges: Edges) -> None:
    with httpx.Client(timeout=30) as c:
        r = c.get(edges.url("/v1/auth/me"), headers=stack.admin)
        assert r.status_code == 200 and r.json()["role"] == "admin", r.text
        r = c.post(edges.url("/v1/units"), json={"name": "经边缘创建"}, headers=stack.admin)
        assert r.status_code == 201, r.text
        assert (
            stack.client.get(f"/v1/units/{r.json()['id']}", headers=stack.admin).status_code == 200
        )
        r = c.get(edges.url("/v1/units/unit_nope"), headers=stack.admin)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unit_not_found"
        r = c.get(edges.url("/openapi.json"))
        assert r.status_code == 200 and "/v1/checkins" in r.json()["paths"]
        # A multipart upload of ~70 KB streamed through, the reads process's answer back.
        data = ("姓名,电话,单位\r\n" + "张伟,13900000001,县财政局\r\n" * 2000).encode()
        files = {"file": ("名单.csv", data, "application/octet-stream")}
        r = c.post(edges.url("/v1/imports/members?dry_run=true"), files=files, headers=stack.admin)
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_header", r.text
        # A page, with its security headers once (the edge adds none of its own to it).
        r = c.get(edges.url("/me"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert len(r.headers.get_list("content-security-policy")) == 1


def test_limits_are_per_edge_so_a_member_gets_at_most_n_times_the_burst(
    stack: Stack, edges: Edges
) -> None:
    # The documented bound (README, "The check-in edge"): each edge keeps its own buckets.
    station, member, _ = _station_and_member(stack, "戊")
    token = stack.token("member", member)
    started = time.monotonic()
    codes = [_scan(stack, edges, station, token).status_code for _ in range(6 * BURST)]
    refill = 2 * (time.monotonic() - started) * PER_MIN / 60
    accepted = codes.count(202)
    assert set(codes) <= {202, 429}, codes
    # More than one edge's burst (both served some), never more than both bursts (and what
    # both buckets refilled meanwhile).
    assert BURST < accepted <= 2 * BURST + int(refill) + 1, (codes, refill)


def test_an_edge_stops_cleanly_and_the_other_keeps_the_port(stack: Stack, edges: Edges) -> None:
    station, member, _ = _station_and_member(stack, "己")
    token = stack.token("member", member)
    first, second = edges.procs
    started = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.popen is not None
    first.popen.wait(timeout=30)
    took = time.monotonic() - started
    assert took < 10, f"an edge took {took:.1f} s to stop: {first.tail()}"
    assert b"Application shutdown complete" in first.log_bytes(), first.tail()
    assert all(_scan(stack, edges, station, token).status_code == 202 for _ in range(3))
    assert httpx.get(edges.url("/healthz"), timeout=10).json()["pid"] == second.pid


def test_an_edge_whose_reads_process_is_down_still_takes_check_ins(
    stack: Stack, edges: Edges, tmp_path: Path
) -> None:
    station, member, _ = _station_and_member(stack, "庚")
    token = stack.token("member", member)
    port = free_port()
    env = infra_stack.child_env(
        stack.settings,
        {"API_PORT": str(port), "EDGE_UPSTREAM": f"http://127.0.0.1:{free_port()}"},
    )
    (edge,) = infra_stack.edge_procs(1, env, tmp_path)
    try:
        infra_stack.start_edges([edge])
        alone = Edges(port, 0, [edge], 0)
        assert _scan(stack, alone, station, token).status_code == 202
        r = httpx.get(alone.url("/v1/auth/me"), headers=stack.admin, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "reads_unavailable"
        h = httpx.get(alone.url("/healthz"), timeout=30)
        assert h.status_code == 200 and h.json()["status"] == "degraded", h.text
        assert h.json()["reads"] == "down"
    finally:
        infra_stack.stop_all([edge])
    assert re.search(rb"edge ready", edge.log_bytes())


def _member_value(mid: str, unit: str, version: int, moved_at: int | None) -> MemberUpserted:
    at = datetime.fromtimestamp(version / 1e6, UTC)
    rec = Member(
        id=mid, name="甲", unit_id=unit, community_id="c1",
        version=version, updated_at=at, updated_by="admin:admin",
    )  # fmt: skip
    return MemberUpserted(
        event_id=f"v-{mid}-{version}", occurred_at=at, record=rec, moved_at=moved_at
    )


def _moved(mid: str, version: int, before: str, after: str) -> RegistryChanged:
    return RegistryChanged(
        event_id=f"h-{mid}-{version}",
        occurred_at=datetime.fromtimestamp(version / 1e6, UTC),
        entity_kind="member",
        entity_id=mid,
        version=version,
        operation="update",
        changed_by="admin:admin",
        changes=[FieldChange(field="unit_id", before=json.dumps(before), after=json.dumps(after))],
    )


def test_an_edge_starts_from_the_compacted_topics_and_reads_only_the_historys_window(
    stack: Stack,
) -> None:
    """Issue 16: an edge started after many history records reads none of them before it
    serves, and of the history afterwards only what a late scan can need (MAX_SCAN_AGE_H)."""
    from kafka import KafkaProducer

    s = stack.settings.model_copy(update={"topic_prefix": f"feed{uuid.uuid4().hex[:6]}."})
    create_topics(s.kafka_bootstrap, s.topic_prefix)
    now = datetime.now(UTC)
    us = int(now.timestamp() * 1e6)
    old_ms = int((now - timedelta(days=10)).timestamp() * 1000)
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=20)

    def send(
        spec: topics.TopicSpec, key: str, ev: MemberUpserted | RegistryChanged, ms: int
    ) -> None:
        producer.send(s.topic(spec.name), ev.to_bytes(), key.encode(), timestamp_ms=ms)

    n, old_changes = 300, 3000
    # Ten days ago: many changes (no acceptable scan is that old), the last member's included.
    for k in range(old_changes):
        send(topics.REGISTRY_HISTORY, f"m{k % n}", _moved(f"m{k % n}", k + 1, "u0", "u1"), old_ms)
    for k in range(n):
        send(topics.MEMBERS, f"m{k}", _member_value(f"m{k}", "u1", us - 10**9, 0), old_ms)
    # An hour ago `moved` went from u1 to u2; `unknown`'s value predates `moved_at`.
    move = us - 3600 * 10**6
    send(topics.MEMBERS, "moved", _member_value("moved", "u2", move, move), move // 1000)
    send(topics.REGISTRY_HISTORY, "moved", _moved("moved", move, "u1", "u2"), move // 1000)
    send(topics.MEMBERS, "unknown", _member_value("unknown", "u3", move, None), move // 1000)
    producer.flush()
    producer.close()

    replica, changes = CheckinReplica(None), MemberChanges()  # type: ignore[arg-type]
    feed = EdgeFeed(s, replica, changes, RevokedTokens())
    feed.start(timeout_s=120)
    try:
        history_topic = s.topic(topics.REGISTRY_HISTORY.name)
        assert feed.consumed_at_ready.get(history_topic, 0) == 0, feed.consumed_at_ready
        assert feed.consumed_at_ready[s.topic(topics.MEMBERS.name)] == n + 2
        moved, unknown, still = (replica.member(m) for m in ("moved", "unknown", "m7"))
        assert moved is not None and unknown is not None and still is not None
        # Routed right from the first scan: a scan before the move reads the history ...
        two_hours_ago = now - timedelta(hours=2)
        assert moved.moved_after(two_hours_ago) and not moved.moved_after(now)
        # ... a member never moved since its value does not, a value without the field does.
        assert not still.moved_after(two_hours_ago) and unknown.moved_after(two_hours_ago)
        assert changes.loaded.wait(60), "the history's window was not read"
        assert feed.history_consumed == 1, feed.consumed
        history = EdgeHistory(changes, replica, feed.catch_up, 2.0)
        then = history.at(MemberThen("u2", "c1", None, "active"), "moved", move, two_hours_ago)
        assert then.unit_id == "u1"
    finally:
        feed.stop()


def test_an_edge_started_after_a_move_keeps_a_late_scan_on_the_old_unit(
    stack: Stack, edges: Edges, tmp_path: Path
) -> None:
    station, member, old_unit = _station_and_member(stack, "辛")
    new_unit = stack.create("/v1/units", {"name": "边缘新单位辛"})["id"]
    made_at = datetime.now(UTC) - timedelta(hours=2)
    r = stack.client.patch(f"/v1/members/{member}", json={"unit_id": new_unit}, headers=stack.admin)
    assert r.status_code == 200, r.text
    token = stack.token("member", member)
    port = free_port()
    env = infra_stack.child_env(
        stack.settings,
        {"API_PORT": str(port), "EDGE_UPSTREAM": f"http://127.0.0.1:{edges.reads_port}"},
    )
    (edge,) = infra_stack.edge_procs(1, env, tmp_path)
    try:
        infra_stack.start_edges([edge])
        alone = Edges(port, 0, [edge], edges.reads_port)
        late = _scan(stack, alone, station, token, at=made_at)
        now = _scan(stack, alone, station, token)
    finally:
        infra_stack.stop_all([edge])
    assert late.status_code == 202 and now.status_code == 202, (late.text, now.text)
    # Ready from the compacted topics alone; the history read after.
    assert re.search(rb"edge ready .* from \d+ records of the compacted topics", edge.log_bytes())
    events = [late.json()["event_id"], now.json()["event_id"]]
    got = stack.wait_for(lambda: (g := _stored(stack, events)) and len(g) == 2 and g, timeout=60)
    assert got == {events[0]: (old_unit, member), events[1]: (new_unit, member)}
