"""Python's cyclic garbage collector in a long-lived process: its pauses measured, its work kept
small (issue 16: the worker's goal is no collector pause over 100 ms).

Measured with `gc.callbacks` (a "start" and a "stop" per collection), into
`volunteer_gc_pause_seconds` and `volunteer_gc_pause_max_seconds`. A full collection walks
every tracked object of the heap; `freeze()` moves what exists now (the code, the app, a
recovered in-memory table) out of every later collection, so the walks cover only what
changed since, and the young generation's threshold is raised so objects of a batch die young
instead of being promoted and walked again (the API does the same, api/main.py).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from services import metrics

_started: list[float] = []
_max = 0.0
_installed = False


def _callback(phase: str, info: dict[str, Any]) -> None:
    global _max
    if phase == "start":
        _started.append(time.perf_counter())
        return
    if not _started:
        return
    pause = time.perf_counter() - _started.pop()
    metrics.GC_PAUSE_SECONDS.labels(generation=str(info.get("generation", "?"))).observe(pause)
    if pause > _max:
        _max = pause
        metrics.GC_PAUSE_MAX_SECONDS.set(pause)


def install() -> None:
    """Measures every collection from now on; idempotent."""
    global _installed
    if not _installed:
        gc.callbacks.append(_callback)
        _installed = True


def longest_pause() -> float:
    return _max


def freeze(young_threshold: int = 20_000) -> None:
    """What lives now leaves every later collection; young objects collected less often."""
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(young_threshold, g1, g2)
