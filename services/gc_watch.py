"""Python's cyclic garbage collector in a long-lived process: its pauses measured, its work kept
small (issue 16: the worker's goal is no collector pause over 100 ms).

Measured with `gc.callbacks` (a "start" and a "stop" per collection), into
`volunteer_gc_pause_seconds` and `volunteer_gc_pause_max_seconds`. A full collection walks
every tracked object of the heap: ~50 per parsed member state, so 1 M objects for the worker's
20,000 cached states, 2-5 s on the loaded benchmark machine (bench/findings.md, section 5).
`settle()` keeps the old generation empty instead: the worker calls it after each partition
of a batch, and what survived is frozen out of every later walk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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
        # Counted when scraped: the count walks the frozen list (O(objects)), far too slow for
        # every batch (a third of the worker's time when it was counted in `freeze`).
        metrics.GC_FROZEN_OBJECTS.set_function(gc.get_freeze_count)
        _installed = True


def longest_pause() -> float:
    return _max


def freeze() -> None:
    """What lives now leaves every later collection (no collection first: that would be the
    longest pause of all, over the whole heap)."""
    gc.freeze()


def settle() -> None:
    """Between units of work that leave long-lived, acyclic objects behind (the worker's
    parsed member states): the young generations are collected, so this unit's cyclic garbage
    is freed, and the survivors are frozen, so no full collection ever walks them. A frozen
    object is still freed by its reference count (an evicted state); only a frozen object that
    later becomes part of an unreachable cycle stays: `volunteer_gc_frozen_objects` shows it
    (it levels off at the cache's size when nothing leaks)."""
    gc.collect(1)
    freeze()


def release_free_memory() -> None:
    """Gives the C heap's free pages back to the system (glibc's `malloc_trim`): a recovery
    passes every changelog record through the heap once, and glibc keeps what was freed,
    so the worker's RSS stayed at the recovery's high-water mark (bench/state.py)."""
    name = ctypes.util.find_library("c")
    if not name:
        return
    libc = ctypes.CDLL(name)
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
