"""Stops that stop (issue 13): the real processes, each signal sent, nothing left behind.

- `make run`'s process tree (infra/run_local.py: the API with its embedded sink, a faust
  worker, a Kafka broker) on free ports and a data folder of its own, stopped by SIGTERM,
  SIGINT and SIGHUP, each once to its process group and once to the main process alone (and
  through make itself: see CASES): a scan
  accepted just before the signal is in ClickHouse afterwards (the sink's batch is a minute
  long, so only the flush at shutdown can have written it), the API, the worker and the broker
  stop in that order within 30 s, and nothing listens on their ports or is left running.
- A worker told to stop after its broker died exits within 30 s (faust waited a minute for
  its consumer thread, then up to 20 minutes flushing its producer: streams/faust_fixes.py).
- The processes a test starts do not outlive it when the test run is killed (infra/lifetime.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra import stack as infra_stack
from infra.lifetime import die_with_parent
from services.settings import Settings
from services.tokens import sign_station
from tests.support.net import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

READY_S = 300

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 30.0


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its parent, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if alive(p)}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_worker_told_to_stop_exits_within_30s_when_its_broker_is_gone(
    tmp_path: Path, sig: signal.Signals
) -> None:
    broker = infra_stack.start_broker(tmp_path / "kafka", "gone.")
    worker: infra_stack.Proc | None = None
    try:
        settings = Settings(
            data_dir=tmp_path,
            kafka_port=broker.port,
            kafka_controller_port=broker.controller_port,
            kafka_bootstrap=broker.bootstrap,
            topic_prefix="gone.",
            worker_web_port=free_port(),
            secret_key="test-secret-" + uuid.uuid4().hex,
            admin_token="test-admin-" + uuid.uuid4().hex,
        )
        # A clock tick every second: records wait in the producer once the broker is gone, as
        # they did on the orphaned workers (faust's stop flushes them, for up to 20 minutes).
        env = infra_stack.child_env(settings, {"SESSION_TICK_S": "1"})
        worker = infra_stack.start_worker(
            infra_stack.worker_proc("worker", env, tmp_path / "worker.log"), timeout_s=120
        )
        assert broker.process is not None
        broker.process.kill()  # gone at once, as a lost broker host
        broker.process.wait(timeout=30)
        time.sleep(3)
        started = time.monotonic()
        worker.signal(sig)
        assert worker.popen is not None
        try:
            worker.popen.wait(timeout=STOP_WITHIN_S + 15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker ignored {sig.name} for 45 s: {worker.tail()}")
        took = time.monotonic() - started
        print(f"worker without its broker, {sig.name}: exited {worker.returncode} in {took:.1f} s")
        assert took < STOP_WITHIN_S, f"stopped after {took:.1f} s: {worker.tail()}"
        # A stop, not a death by the signal: the worker went through its shutdown (SIGHUP's
        # default would have ended it on the spot).
        assert b"Signal received" in worker.log_bytes(), "the worker died without stopping"
        assert not listening(settings.worker_web_port)
    finally:
        if worker is not None:
            worker.stop(kill=True)
        broker.stop()


ORPHAN_PARENT = """
import sys, time
from pathlib import Path
from infra import stack
from services.settings import Settings
root = Path(sys.argv[1])
broker = stack.start_broker(root / "kafka", "orphan.")
s = Settings(data_dir=root, kafka_port=broker.port, kafka_controller_port=broker.controller_port,
             kafka_bootstrap=broker.bootstrap, topic_prefix="orphan.",
             worker_web_port=int(sys.argv[2]), secret_key=sys.argv[3], admin_token=sys.argv[4])
worker = stack.start_worker(stack.worker_proc("worker", stack.child_env(s), root / "worker.log"))
print(broker.process.pid, worker.pid, flush=True)
time.sleep(600)
"""


def test_processes_a_test_started_stop_when_the_test_run_is_killed(tmp_path: Path) -> None:
    # The parent starts a broker and a worker through infra.stack, as the fixtures do, and is
    # then killed without any cleanup (a CI timeout, SIGKILL): both children must go.
    port = free_port()
    secrets = ["test-secret-" + uuid.uuid4().hex, "test-admin-" + uuid.uuid4().hex]
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_PARENT, str(tmp_path), str(port), *secrets],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    children: set[int] = set()
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline().decode()
        assert line, f"the parent did not start its children: {parent.wait(timeout=10)}"
        children = {int(p) for p in line.split()}
        assert all(alive(p) for p in children)
        parent.kill()
        parent.wait(timeout=10)
        left = wait_gone(children, STOP_WITHIN_S + 10)
        assert not left, f"still running after their parent died: {left}"
        assert not listening(port)
    finally:
        for p in children:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()


# ---- `make run` -----------------------------------------------------------------------------


@dataclass
class Run:
    """One data folder and its ports for every start of `make run` in this module (the broker's
    storage names its controller's port: the same ports each time)."""

    data_dir: Path
    env: dict[str, str]
    settings: Settings
    registry: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        s = self.settings
        return {
            "api": s.api_port,
            "kafka": s.kafka_port,
            "controller": s.kafka_controller_port,
            "worker": s.worker_web_port,
        }

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}{path}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    data_dir = tmp_path_factory.mktemp("make-run")
    values = {
        "DATA_DIR": str(data_dir),
        "API_PORT": str(free_port()),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "WORKER_WEB_PORT": str(free_port()),
        "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "ADMIN_TOKEN": "test-admin-" + uuid.uuid4().hex,
        # A minute-long batch: a scan sent just before the signal reaches ClickHouse only
        # through the flush the API's shutdown makes.
        "SINK_BATCH_MS": "60000",
        "PYTHONUNBUFFERED": "1",
    }
    env = {k: v for k, v in os.environ.items() if k not in values} | values
    settings = Settings(
        data_dir=data_dir,
        api_port=int(values["API_PORT"]),
        kafka_port=int(values["KAFKA_PORT"]),
        kafka_controller_port=int(values["KAFKA_CONTROLLER_PORT"]),
        worker_web_port=int(values["WORKER_WEB_PORT"]),
        secret_key=values["SECRET_KEY"],
        admin_token=values["ADMIN_TOKEN"],
    )
    # The migrate step `make run` runs first.
    subprocess.run(
        [sys.executable, "-m", "services.warehouse.migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    run = Run(data_dir, env, settings)
    # A first start, not measured: a fresh deployment's worker makes its changelog topics at
    # its first start and joined its group before they were in the metadata ("Ignoring missing
    # topic"): it applied nothing until its next rebalance (over 2 minutes here). main creates
    # those topics with the others since c6aca79; the cases below measure a deployment at rest.
    proc, _, _ = start(run)
    proc.terminate()
    proc.wait(timeout=STOP_WITHIN_S + 30)
    yield run


LAUNCHERS = {
    # What the Makefile runs after its migrate step (what a service manager would run).
    "runner": [sys.executable, "-m", "infra.run_local", "--no-demo"],
    # `make run` itself, the migrate step included.
    "make": ["make", "--no-print-directory", "run", "RUN_ARGS=--no-demo"],
}


def start(run: Run, launcher: str = "runner") -> tuple[subprocess.Popen[bytes], int, int]:
    """`make run`'s process tree, ready: the API answers and the worker joined its group.
    Returns its main process, the worker's pid and the broker's."""
    out_path = run.data_dir / "run.out"
    worker_log = run.data_dir / "worker.log"
    seen_out = out_path.stat().st_size if out_path.exists() else 0
    ready_before = (
        worker_log.read_bytes().count(infra_stack.WORKER_READY) if worker_log.exists() else 0
    )
    with out_path.open("ab") as out:
        proc = subprocess.Popen(
            LAUNCHERS[launcher],
            cwd=ROOT,
            env=run.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own group, as a terminal or a service manager gives it (and gone with this
            # test run, should it be killed).
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    def tail() -> str:
        return out_path.read_bytes()[seen_out:].decode(errors="replace")[-4000:]

    # Start-up is not what these tests measure (the stop is): a worker joining its group on a
    # loaded machine took more than 180 s once, with this session's added agents and topics.
    deadline = time.monotonic() + READY_S
    worker_pid = None
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"make run exited ({proc.returncode}): {tail()}"
            found = re.search(r"faust worker started \(pid (\d+)", tail())
            worker_pid = int(found.group(1)) if found else None
            ready = worker_log.exists() and worker_log.read_bytes().count(infra_stack.WORKER_READY)
            if worker_pid and ready > ready_before and infra_stack.healthy(run.settings.api_port):
                broker_pid = int((run.data_dir / "kafka" / "broker.pid").read_text())
                return proc, worker_pid, broker_pid
            time.sleep(0.3)
        raise AssertionError(f"make run not ready within {READY_S} s: {tail()}")
    except BaseException:
        # Interrupted or failed while starting: stopped as a service manager would.
        proc.terminate()
        try:
            proc.wait(timeout=STOP_WITHIN_S + 15)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise


def scan(run: Run) -> str:
    """A check-in through the API (202); its event id. The unit, community, station and member
    are created by the first start and found in the registry by the next ones."""
    with httpx.Client(timeout=30) as c:
        if not run.registry:
            ids = {}
            for key, path, body in (
                ("unit", "/v1/units", {"name": "停止测试单位"}),
                ("community", "/v1/communities", {"name": "停止测试社区"}),
            ):
                r = c.post(run.url(path), json=body, headers=run.admin)
                assert r.status_code == 201, r.text
                ids[key] = r.json()["id"]
            body = {
                "community_id": ids["community"],
                "name": "停止测试站",
                "kind": "service_station",
            }
            r = c.post(run.url("/v1/stations"), json=body, headers=run.admin)
            assert r.status_code == 201, r.text
            ids["station"] = r.json()["id"]
            body = {"name": "停止测试", "unit_id": ids["unit"], "community_id": ids["community"]}
            r = c.post(run.url("/v1/members"), json=body, headers=run.admin)
            assert r.status_code == 201, r.text
            ids["member"] = r.json()["id"]
            run.registry.update(ids)
        r = c.post(
            run.url("/v1/auth/tokens"),
            json={"role": "member", "subject_id": run.registry["member"]},
            headers=run.admin,
        )
        assert r.status_code == 201, r.text
        member = {"Authorization": f"Bearer {r.json()['token']}"}
        body = {
            "station_token": sign_station(run.settings, run.registry["station"]),
            "action": "in",
            "client_event_id": str(uuid.uuid4()),
        }
        r = c.post(run.url("/v1/checkins"), json=body, headers=member)
        assert r.status_code == 202, r.text
        return str(r.json()["event_id"])


def sessions_emitted(run: Run) -> float:
    """The worker's count of session records it published (0 until it answers)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{run.settings.worker_web_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    found = re.findall(r"^volunteer_agent_sessions_emitted_total (\S+)$", text, re.M)
    return float(found[0]) if found else 0.0


def applied(run: Run, before: float, timeout_s: float = 120) -> float:
    """Waits until the worker published the scan's session; how long that took. The stops are
    measured on a worker at rest: a stop waits for the batch in flight (faust's "Wait for
    streams"), and a fresh deployment's first batch, whose changelog topics faust has just
    made, waited over 25 s here for Kafka's acknowledgements."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if sessions_emitted(run) > before:
            return time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"the worker did not apply the scan within {timeout_s:.0f} s")


STORED = """
import json, sys
from services.settings import get_settings
from services.warehouse.client import connect
wh = connect(get_settings(), create_database=False)
print(json.dumps(wh.query("SELECT count() FROM checkins WHERE event_id = %(e)s", {"e": sys.argv[1]})))
"""


def stored(run: Run, event_id: str) -> int:
    """Rows of the scan in ClickHouse, read by a process of its own once `make run` is gone (the
    embedded chDB allows one process per folder: this also proves the API let go of it)."""
    res = subprocess.run(
        [sys.executable, "-c", STORED, event_id],
        cwd=ROOT,
        env=run.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    rows: list[list[int]] = json.loads(res.stdout.decode().strip().splitlines()[-1])
    return rows[0][0]


class Watch:
    """When each part stopped, polled every 50 ms: the API's port, the worker and the broker."""

    def __init__(self, run: Run, worker_pid: int, broker_pid: int) -> None:
        self.gone: dict[str, float] = {}
        self._checks = {
            "api": lambda: not listening(run.settings.api_port),
            "worker": lambda: not alive(worker_pid),
            "broker": lambda: not alive(broker_pid),
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set() and len(self.gone) < len(self._checks):
            for name, check in self._checks.items():
                if name not in self.gone and check():
                    self.gone[name] = time.monotonic()
            time.sleep(0.05)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


CASES = [
    *(
        pytest.param("runner", sig, target, id=f"{sig.name}-{target}")
        for target in ("group", "main")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    ),
    # Through make: a terminal's Ctrl-C or hang-up reaches the whole group; a SIGTERM to make
    # alone is forwarded by make to the runner (a SIGINT or SIGHUP to make alone is not: make
    # then waits for its child, which never heard of it).
    *(
        pytest.param("make", sig, target, id=f"make-{sig.name}-{target}")
        for sig, target in (
            (signal.SIGTERM, "group"),
            (signal.SIGHUP, "group"),
            (signal.SIGTERM, "main"),
        )
    ),
]


@pytest.mark.parametrize(("launcher", "sig", "target"), CASES)
def test_make_run_stops_everything_in_order_on_each_signal(
    run: Run, launcher: str, sig: signal.Signals, target: str
) -> None:
    proc, worker_pid, broker_pid = start(run, launcher)
    try:
        before = sessions_emitted(run)
        event_id = scan(run)
        print(
            f"{launcher}, {sig.name} to the {target}: scan applied in {applied(run, before):.1f} s"
        )
        tree = descendants(proc.pid)
        assert {worker_pid, broker_pid} <= tree
        with Watch(run, worker_pid, broker_pid) as watch:
            sent = time.monotonic()
            if target == "group":
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
            try:
                code = proc.wait(timeout=STOP_WITHIN_S + 30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"make run still running {STOP_WITHIN_S + 30:.0f} s after {sig.name}")
            took = time.monotonic() - sent
            time.sleep(0.2)
        after = {k: round(v - sent, 1) for k, v in watch.gone.items()}
        print(f"{launcher}, {sig.name} to the {target}: stopped in {took:.1f} s {after}")
        assert took < STOP_WITHIN_S, f"{sig.name} to the {target}: stopped after {took:.1f} s"
        # make ends itself with the signal it received once its child exited.
        assert code == 0 or (launcher == "make" and code == -sig), f"exit status {code}"
        assert set(watch.gone) == {"api", "worker", "broker"}, watch.gone
        order = sorted(watch.gone, key=watch.gone.__getitem__)
        assert order == ["api", "worker", "broker"], after
        assert [name for name, port in run.ports.items() if listening(port)] == []
        assert {p for p in tree if alive(p)} == set()
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in descendants(proc.pid) | {worker_pid, broker_pid}:
            if alive(p):
                os.kill(p, signal.SIGKILL)
    # The sink flushed on the way out: the scan is in ClickHouse (once, by its event id).
    assert stored(run, event_id) == 1


def test_make_run_restarts_a_dead_edge_and_still_stops_everything_in_time(run: Run) -> None:
    """Issue 16: `make run` supervises its check-in edges. One killed, the other keeps the
    port; a new edge process takes its place (counted in volunteer_edge_restarts_total), and
    a stop still takes everything down within the bound, the restarted edge included."""
    edged = replace(run, env={**run.env, "CHECKIN_EDGES": "2"})
    out_path = run.data_dir / "run.out"
    seen_out = out_path.stat().st_size if out_path.exists() else 0

    def out() -> str:
        return out_path.read_bytes()[seen_out:].decode(errors="replace")

    def serving_pids(n: int) -> set[int]:
        pids = set()
        for _ in range(n):
            with httpx.Client(timeout=10) as c:  # a connection each: the kernel picks an edge
                r = c.get(run.url("/healthz"))
            assert r.status_code == 200, r.text
            pids.add(int(r.json()["pid"]))
        return pids

    proc, worker_pid, broker_pid = start(edged)
    try:
        found = re.search(r"2 check-in edges started on port \d+ \(pids (\d+), (\d+),", out())
        assert found, out()[-3000:]
        first, second = int(found.group(1)), int(found.group(2))
        reads = re.search(r"reads process on 127\.0\.0\.1:(\d+)", out())
        assert reads, out()[-3000:]
        deadline = time.monotonic() + 120
        while serving_pids(10) != {first, second}:
            assert time.monotonic() < deadline, "both edges never served"
        os.kill(first, signal.SIGKILL)
        restarted = None
        deadline = time.monotonic() + 120
        while restarted is None:
            assert time.monotonic() < deadline, f"no edge restarted: {out()[-3000:]}"
            # Meanwhile the port answers: the other edge holds it.
            assert serving_pids(1) <= {second} | ({restarted} if restarted else set())
            m = re.search(r"edge1 restarted \(pid (\d+), restart 1\)", out())
            restarted = int(m.group(1)) if m else None
            time.sleep(0.2)
        assert restarted in descendants(proc.pid) and alive(restarted)
        deadline = time.monotonic() + 120
        while restarted not in serving_pids(10):
            assert time.monotonic() < deadline, f"the new edge never served: {out()[-3000:]}"
        assert scan(run)  # a check-in through the port, as before
        text = httpx.get(f"http://127.0.0.1:{reads.group(1)}/metrics", timeout=10).text
        assert re.search(r'^volunteer_edge_restarts_total\{edge="edge1"\} 1\.0$', text, re.M)
        tree = descendants(proc.pid)
        assert {second, restarted, worker_pid, broker_pid} <= tree
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=STOP_WITHIN_S + 30)
        took = time.monotonic() - sent
        assert took < STOP_WITHIN_S and code == 0, (took, code)
        assert wait_gone(tree, 5) == set()
        assert "restarted" not in out().split("stopped: API")[-1], "an edge restarted in the stop"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in descendants(proc.pid) | {worker_pid, broker_pid}:
            if alive(p):
                os.kill(p, signal.SIGKILL)
