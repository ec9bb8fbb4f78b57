"""Start and stop the local stack's processes: the Kafka broker, faust workers, the API.

One helper for everything that runs the stack: `make run` (infra.run_local), the integration
and browser tests (tests/integration/conftest.py), the benchmarks (bench.stack) and the fault
drills (bench.drills.stack). Every child is a `Proc`: its own session (a Ctrl-C in the terminal
reaches the parent, which then stops the children in order instead of their dying mid-write), its
output appended to a log file, signalled and stopped by its own pid only, every wait bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from infra.kafka import Broker, create_topics
from infra.lifetime import die_with_parent
from services.settings import Settings
from services.topics import Retention

log = logging.getLogger("run")

ROOT = Path(__file__).resolve().parent.parent
# What a faust worker logs once it has joined the group and seeked its partitions.
WORKER_READY = b"Worker]: Ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(s: Settings) -> dict[str, str]:
    """The environment that makes a child process read the same settings as `s` (the fields a
    stack varies per run: folders, ports, prefix, database, secrets, the sink's batching)."""
    return {
        "DATA_DIR": str(s.data_dir),
        "API_HOST": s.api_host,
        "API_PORT": str(s.api_port),
        "KAFKA_PORT": str(s.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
        "KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "TOPIC_PREFIX": s.topic_prefix,
        "SECRET_KEY": s.secret_key,
        "ADMIN_TOKEN": s.admin_token,
        "WORKER_WEB_PORT": str(s.worker_web_port),
        "CLICKHOUSE_DSN": s.clickhouse_dsn,
        "CLICKHOUSE_DATABASE": s.clickhouse_database,
        "SINK_BATCH_SIZE": str(s.sink_batch_size),
        "SINK_BATCH_MS": str(s.sink_batch_ms),
        "PYTHONUNBUFFERED": "1",
    }


def child_env(s: Settings | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, then the settings' (if any), then `extra`."""
    return {**os.environ, **(settings_env(s) if s is not None else {}), **(extra or {})}


# ---- the broker -----------------------------------------------------------------------------


def start_broker(
    broker: Broker | Path,
    topic_prefix: str | None = "",
    timeout_s: float = 90.0,
    retention: Retention | None = None,
) -> Broker:
    """Starts the broker (or a new one in a folder, on free ports) and creates the declared
    topics under `topic_prefix` (None: no topics), retained topics per `retention`."""
    b = broker if isinstance(broker, Broker) else Broker(broker, free_port(), free_port())
    b.start(timeout_s)
    if topic_prefix is not None:
        create_topics(b.bootstrap, topic_prefix, retention=retention)
    return b


# ---- processes ------------------------------------------------------------------------------


class Proc:
    """A child process and its log; started again after it stopped (same log, appended)."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        # Set when we signalled it: a supervisor restarts only a process that died on its own.
        self.expected_exit = False
        self.restarts = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Gone with this process, should it die without stopping it (infra/lifetime.py).
                preexec_fn=die_with_parent(),
            )
        self.expected_exit = False

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.expected_exit = True
            self.popen.send_signal(sig)

    def stop(self, kill: bool = False, timeout_s: float = 30.0) -> None:
        """SIGTERM (or SIGKILL) and wait; a process that does not stop in time is killed."""
        if self.popen is None:
            return
        self.signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def log_bytes(self) -> bytes:
        return self.log_path.read_bytes() if self.log_path.exists() else b""

    def tail(self, n: int = 3000) -> str:
        return self.log_bytes().decode(errors="replace")[-n:]

    def wait_until(self, ready: Callable[[], bool], timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited ({self.returncode}): {self.tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready within {timeout_s:.0f}s: {self.tail()}")

    def start_and_wait_log(self, marker: bytes, timeout_s: float = 90.0) -> None:
        """Starts it and waits for a new `marker` line in its log (the log may hold earlier
        runs' lines: only one written after this start counts)."""
        seen = self.log_bytes().count(marker)
        self.start()
        self.wait_until(lambda: self.log_bytes().count(marker) > seen, timeout_s)

    def vm_hwm_kb(self) -> int | None:
        """Peak resident memory (VmHWM) of the live process, in kB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None


# ---- faust workers --------------------------------------------------------------------------


WORKER_ARGV = [sys.executable, "-m", "streams", "worker", "-l", "info"]


def worker_proc(name: str, env: Mapping[str, str], log_path: Path) -> Proc:
    """A faust worker (`python -m streams worker`), not yet started."""
    return Proc(name, list(WORKER_ARGV), env, log_path)


def start_worker(proc: Proc, timeout_s: float = 90.0) -> Proc:
    """Starts the worker and waits until it is ready (joined, partitions seeked)."""
    proc.start_and_wait_log(WORKER_READY, timeout_s)
    return proc


def start_workers(
    n: int, s: Settings, root: Path, extra_env: Mapping[str, str] | None = None
) -> list[Proc]:
    """N workers of one deployment, each with its own folder (`root/workerK`: its state and
    log) and web port, started one after the other, each ready before the next starts."""
    out = []
    for k in range(1, n + 1):
        wdir = root / f"worker{k}"
        wdir.mkdir(parents=True, exist_ok=True)
        env = child_env(s, {"WORKER_WEB_PORT": str(free_port()), "DATA_DIR": str(wdir)})
        env.update(extra_env or {})
        out.append(start_worker(worker_proc(f"worker{k}", env, wdir / "log")))
    return out


# ---- the API --------------------------------------------------------------------------------


def api_argv(
    port: int, app: str = "api.main:create_app", host: str = "127.0.0.1", quiet: bool = True
) -> list[str]:
    """uvicorn serving the app factory in one process (the embedded chDB allows one per
    folder); `quiet`: no access log, warnings only."""
    argv = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", host, "--port", str(port)]
    argv += ["--workers", "1"]
    if quiet:
        argv += ["--no-access-log", "--log-level", "warning"]
    return argv


def api_proc(
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    app: str = "api.main:create_app",
    host: str = "127.0.0.1",
    quiet: bool = True,
) -> Proc:
    """The API (see api_argv), not yet started."""
    return Proc("api", api_argv(port, app, host, quiet), env, log_path)


def healthy(port: int, statuses: tuple[int, ...] = (200,), host: str = "127.0.0.1") -> bool:
    import httpx

    try:
        return httpx.get(f"http://{host}:{port}/healthz", timeout=2).status_code in statuses
    except httpx.HTTPError:
        return False


def start_api(
    proc: Proc, port: int, timeout_s: float = 120.0, statuses: tuple[int, ...] = (200,)
) -> Proc:
    """Starts the API and waits until /healthz answers one of `statuses` (503 is an API that
    is up while Kafka or ClickHouse is not)."""
    proc.start()
    proc.wait_until(lambda: healthy(port, statuses), timeout_s)
    return proc


# ---- check-in edges -------------------------------------------------------------------------

# What an edge logs once its registry is read and it serves (api.edge.READY_LOG).
EDGE_READY = b"edge ready"
EDGE_ARGV = [sys.executable, "-m", "api.edge"]


def edge_proc(index: int, env: Mapping[str, str], log_path: Path) -> Proc:
    """Check-in edge number `index` (`python -m api.edge`, api/edge.py), not yet started: it
    binds API_PORT with SO_REUSEPORT beside the others and passes what is not a check-in to
    EDGE_UPSTREAM."""
    return Proc(f"edge{index + 1}", list(EDGE_ARGV), {**env, "EDGE_INDEX": str(index)}, log_path)


def edge_procs(n: int, env: Mapping[str, str], log_dir: Path) -> list[Proc]:
    return [edge_proc(k, env, log_dir / f"edge{k + 1}.log") for k in range(n)]


def start_edges(edges: list[Proc], timeout_s: float = 120.0) -> list[Proc]:
    """Starts the edges together (each reads the registry topics at start) and waits until
    every one logged that it serves."""
    seen = [e.log_bytes().count(EDGE_READY) for e in edges]
    for e in edges:
        e.start()
    for e, before in zip(edges, seen, strict=True):
        e.wait_until(_logged_after(e, before), timeout_s)
    return edges


def _logged_after(proc: Proc, before: int) -> Callable[[], bool]:
    return lambda: proc.log_bytes().count(EDGE_READY) > before


class Supervisor:
    """Restarts the processes given to it that die on their own (not signalled by us: see
    `Proc.expected_exit`), in a thread of its own, each after a backoff: `first_s`, doubled
    for each restart of a process that lived less than `settled_s`, at most `max_s`; a process
    that stayed up `settled_s` starts from `first_s` again. `make run` supervises its check-in
    edges this way (a crashed or OOM-killed edge comes back while the others keep the port).
    `stop()` before stopping the processes, so none is restarted while they stop."""

    def __init__(
        self,
        procs: list[Proc],
        on_restart: Callable[[Proc], None] | None = None,
        first_s: float = 1.0,
        max_s: float = 30.0,
        settled_s: float = 60.0,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.procs = procs
        self.on_restart = on_restart
        self.first_s, self.max_s, self.settled_s = first_s, max_s, settled_s
        self.interval_s = interval_s
        self._clock = clock
        self._started_at = {id(p): clock() for p in procs}
        self._backoff = {id(p): first_s for p in procs}
        self._due: dict[int, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def check(self) -> list[Proc]:
        """One pass: notes each process that died on its own, restarts those whose backoff is
        over; the ones restarted."""
        restarted = []
        with self._lock:
            if self._stop.is_set():
                return []
            now = self._clock()
            for p in self.procs:
                key = id(p)
                if p.popen is None or p.alive or p.expected_exit:
                    continue
                due = self._due.get(key)
                if due is None:
                    lived = now - self._started_at[key]
                    if lived >= self.settled_s:
                        self._backoff[key] = self.first_s
                    delay = self._backoff[key]
                    self._due[key] = now + delay
                    log.error(
                        "%s (pid %d) exited (%s) after %.0f s: restarting it in %.0f s; %s",
                        p.name,
                        p.pid,
                        p.returncode,
                        lived,
                        delay,
                        p.tail(600).strip().replace("\n", " | ")[-600:],
                    )
                    continue
                if now < due:
                    continue
                del self._due[key]
                self._backoff[key] = min(self.max_s, self._backoff[key] * 2)
                p.start()
                p.restarts += 1
                self._started_at[key] = self._clock()
                log.warning("%s restarted (pid %d, restart %d)", p.name, p.pid, p.restarts)
                if self.on_restart is not None:
                    self.on_restart(p)
                restarted.append(p)
        return restarted

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # a failed start (e.g. out of memory): try again next pass
                log.exception("supervisor: restarting a process failed")

    def stop(self) -> None:
        """No restart after this returns (a pass under way finishes first)."""
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def stop_all(procs: list[Proc], timeout_s: float = 30.0) -> None:
    """SIGTERM to every one at once, then each waited for (killed past `timeout_s`)."""
    for p in procs:
        p.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        p.stop(timeout_s=max(0.1, deadline - time.monotonic()))
