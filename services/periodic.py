"""The jobs that run beside the sink on a timer (the reminders' decider, the slot-attendance
tallier): one daemon thread each, a run every interval until `stop` is set. A failed run is
logged and the next one comes as usual: a job that decides from the warehouse catches up on its
next run, and the sink it runs beside must not stop for it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _loop(name: str, every_s: float, stop: threading.Event, body: Callable[[], Any]) -> None:
    while not stop.wait(every_s):
        try:
            body()
        except Exception:
            log.exception("%s: run failed", name)


def every(
    name: str, every_s: float, stop: threading.Event, body: Callable[[], Any]
) -> threading.Thread:
    """Runs `body` every `every_s` seconds in a daemon thread named `name` (not yet started)."""
    return threading.Thread(target=_loop, args=(name, every_s, stop, body), name=name, daemon=True)
