"""The revocation list's non-blocking check for the event loop (services.revocations)."""

from __future__ import annotations

import threading
import time
from typing import Any

from services.revocations import RevocationList


class SlowWarehouse:
    def __init__(self) -> None:
        self.revoked = ["t1"]
        self.queries = 0
        self.gate = threading.Event()
        self.gate.set()

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.queries += 1
        self.gate.wait(5)
        return [(t,) for t in self.revoked]


def test_check_nowait_needs_a_first_load_then_answers_from_memory() -> None:
    wh = SlowWarehouse()
    rl = RevocationList(wh, publisher=None)  # type: ignore[arg-type]
    assert rl.check_nowait("t1") is None  # never loaded: the caller asks is_revoked in a thread
    rl.load()
    assert rl.check_nowait("t1") is True
    assert rl.check_nowait("t2") is False
    assert wh.queries == 1


def test_a_stale_list_is_refreshed_once_in_the_background_without_waiting() -> None:
    wh = SlowWarehouse()
    rl = RevocationList(wh, publisher=None)  # type: ignore[arg-type]
    rl.load()
    rl._loaded_at -= rl.REFRESH_S + 1  # stale
    wh.revoked = ["t1", "t2"]
    wh.gate.clear()  # the refresh hangs on the database
    t0 = time.monotonic()
    answers = [rl.check_nowait("t2") for _ in range(50)]
    assert time.monotonic() - t0 < 1.0  # nobody waited for the database
    assert answers == [False] * 50  # the previous set, meanwhile
    wh.gate.set()
    deadline = time.monotonic() + 5
    while rl.check_nowait("t2") is not True and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rl.check_nowait("t2") is True
    assert wh.queries == 2  # one refresh for the fifty stale checks


class _Publisher:
    def send_sync(self, *args: Any) -> None:
        pass


class _Warehouse(SlowWarehouse):
    def insert(self, *args: Any) -> None:
        pass


def test_a_revocation_made_while_a_refresh_runs_is_not_forgotten() -> None:
    from services.tokens import Principal

    wh = _Warehouse()
    rl = RevocationList(wh, _Publisher())  # type: ignore[arg-type]
    rl.load()
    rl._loaded_at -= rl.REFRESH_S + 1
    wh.gate.clear()  # the refresh's query answers what was stored before the revocation
    assert rl.check_nowait("t9") is False
    rl.revoke(Principal("member", "mem_1", "t9", int(time.time()) + 60), by="member:mem_1")
    assert rl.check_nowait("t9") is True
    wh.gate.set()
    deadline = time.monotonic() + 5
    while time.monotonic() - rl._loaded_at > rl.REFRESH_S and time.monotonic() < deadline:
        time.sleep(0.01)  # until the refresh finished
    assert wh.queries == 2
    assert rl.check_nowait("t9") is True
