from __future__ import annotations

import threading
import time

import pytest

from services.batching import BatchLoader


def test_concurrent_lookups_share_queries_and_get_their_own_values() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def fetch(keys: list[int]) -> dict[int, str]:
        calls.append(sorted(keys))
        gate.wait(1)  # the first query is slow: later keys pile up behind it
        return {k: f"v{k}" for k in keys if k % 7}

    loader: BatchLoader[int, str] = BatchLoader(fetch)
    results: dict[int, str | None] = {}

    def ask(k: int) -> None:
        results[k] = loader.get(k)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(1, 51)]
    for t in threads:
        t.start()
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    assert results == {k: (f"v{k}" if k % 7 else None) for k in range(1, 51)}
    assert sum(len(c) for c in calls) == 50
    assert len(calls) < 25  # far fewer queries than keys


def test_a_failed_fetch_reaches_every_waiter_and_the_loader_goes_on() -> None:
    state = {"fail": True}

    def fetch(keys: list[str]) -> dict[str, int]:
        if state["fail"]:
            raise RuntimeError("database away")
        return {k: len(k) for k in keys}

    loader: BatchLoader[str, int] = BatchLoader(fetch)
    with pytest.raises(RuntimeError, match="database away"):
        loader.get("abc")
    state["fail"] = False
    assert loader.get("abcd") == 4
