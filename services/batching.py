"""Coalescing concurrent point lookups into one query (the "data loader" pattern).

Many request threads asking for one row each would queue one query each on the database
connection (an embedded chDB handle runs them one at a time, ~5-10 ms apiece). A loader thread
takes every key asked for meanwhile and answers them all with one `WHERE id IN (...)` query,
so the cost per key falls with the load instead of the queue growing with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BatchLoader(Generic[K, V]):
    def __init__(
        self,
        fetch_many: Callable[[list[K]], dict[K, V]],
        max_batch: int = 500,
        name: str = "batch-loader",
    ) -> None:
        self._fetch_many = fetch_many
        self._max_batch = max_batch
        self._name = name
        self._pending: dict[K, Future[V | None]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def get(self, key: K, timeout_s: float = 30.0) -> V | None:
        """The value for `key`, or None if there is none; raises what the fetch raised."""
        with self._wake:
            fut = self._pending.get(key)
            if fut is None:
                fut = Future()
                self._pending[key] = fut
                self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
        return fut.result(timeout=timeout_s)

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                keys = list(self._pending)[: self._max_batch]
                batch = {k: self._pending.pop(k) for k in keys}
            try:
                found = self._fetch_many(keys)
            except Exception as exc:  # every waiter of this batch gets the failure
                for f in batch.values():
                    f.set_exception(exc)
                continue
            for k, f in batch.items():
                f.set_result(found.get(k))
