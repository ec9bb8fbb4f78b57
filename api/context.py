"""The clients one API process holds, built in the lifespan and injected into handlers."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from services.publisher import Publisher
from services.registry import Registry
from services.settings import Settings
from services.sink import Sink
from services.warehouse.client import Warehouse


@dataclass
class AppContext:
    settings: Settings
    warehouse: Warehouse
    publisher: Publisher
    registry: Registry
    sink: Sink | None = None
    sink_thread: threading.Thread | None = None
