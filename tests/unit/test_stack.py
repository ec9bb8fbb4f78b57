"""The one stack helper (infra.stack) with small stand-in processes, and the drills' CPU
spinners: started, waited for, stopped by their own pid, bounded in time."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bench.drills.storm import Spinners
from infra import stack
from services.settings import Settings

READY = "import sys, time; print('Worker]: Ready', flush=True); time.sleep(60)"


def test_a_restarted_process_is_ready_only_when_it_says_so_again(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    p = stack.Proc("w", [sys.executable, "-c", READY], stack.child_env(), log)
    p.start_and_wait_log(stack.WORKER_READY, timeout_s=30)
    assert p.alive and log.read_bytes().count(stack.WORKER_READY) == 1
    p.stop(kill=True)
    assert not p.alive and p.expected_exit and p.returncode is not None
    p.start_and_wait_log(stack.WORKER_READY, timeout_s=30)  # same log, appended
    assert log.read_bytes().count(stack.WORKER_READY) == 2
    p.stop()
    assert not p.alive


def test_a_process_that_exits_before_it_is_ready_fails_the_wait_with_its_log(
    tmp_path: Path,
) -> None:
    code = "import sys; print('boom'); sys.exit(3)"
    p = stack.Proc("w", [sys.executable, "-c", code], stack.child_env(), tmp_path / "w.log")
    with pytest.raises(RuntimeError, match=r"w exited \(3\).*boom"):
        p.start_and_wait_log(stack.WORKER_READY, timeout_s=30)


def test_children_read_the_settings_they_are_given(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, topic_prefix="x.", kafka_port=1234, worker_web_port=4321)
    env = stack.child_env(s, {"TOPIC_PREFIX": "y."})
    assert env["KAFKA_PORT"] == "1234" and env["WORKER_WEB_PORT"] == "4321"
    assert env["DATA_DIR"] == str(tmp_path) and env["TOPIC_PREFIX"] == "y."
    assert env["PATH"]  # this process's environment underneath


def test_spinners_busy_a_core_and_stop_on_request() -> None:
    sp = Spinners([0], max_s=30)
    sp.start()
    try:
        assert sp.running == 1
    finally:
        sp.stop()
    assert sp.running == 0 and sp.procs == []


def test_spinners_stop_by_themselves_when_their_time_is_up() -> None:
    sp = Spinners([0], max_s=1)
    sp.start()
    deadline = time.monotonic() + 20
    while sp.running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sp.running == 0
    sp.stop()


SLEEPER = "import time; time.sleep(60)"


def _died(p: stack.Proc) -> None:
    """Killed from outside (an OOM kill, a crash): not by the Proc, so not expected."""
    assert p.popen is not None
    os.kill(p.pid, signal.SIGKILL)
    p.popen.wait(timeout=10)


def test_a_supervised_process_that_dies_is_restarted_with_a_growing_backoff(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    p = stack.Proc("edge1", [sys.executable, "-c", SLEEPER], stack.child_env(), tmp_path / "e.log")
    p.start()
    restarted: list[str] = []
    sup = stack.Supervisor(
        [p], lambda q: restarted.append(q.name), first_s=1, max_s=4, settled_s=60,
        clock=lambda: clock[0],
    )  # fmt: skip
    try:
        first = p.pid
        _died(p)
        assert sup.check() == [] and not p.alive  # noted; due in 1 s
        clock[0] += 0.5
        assert sup.check() == []
        clock[0] += 0.6
        assert sup.check() == [p] and p.alive and p.pid != first and p.restarts == 1
        assert restarted == ["edge1"]
        # Died again at once: twice the wait; then capped.
        for backoff in (2.0, 4.0, 4.0):
            _died(p)
            sup.check()
            clock[0] += backoff - 0.1
            assert sup.check() == [] and not p.alive
            clock[0] += 0.2
            assert sup.check() == [p] and p.alive
        # Up for a minute: the next death waits the first backoff again.
        clock[0] += 61
        _died(p)
        sup.check()
        clock[0] += 1.1
        assert sup.check() == [p] and p.restarts == 5
        # Stopped by us: never restarted.
        p.stop()
        clock[0] += 100
        assert sup.check() == [] and not p.alive
        # After the supervisor stops, nothing is restarted.
        p.start()
        sup.stop()
        _died(p)
        clock[0] += 100
        assert sup.check() == [] and not p.alive
    finally:
        sup.stop()
        p.stop(kill=True)
